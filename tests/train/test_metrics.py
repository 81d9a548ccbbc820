import json
import time

import pytest

from gptkit.train.metrics import MetricsLog, Throughput, read_metrics


def test_throughput_counts_steps_tokens_and_leaves_out_paused_time():
    speed = Throughput(tokens_per_step=1000, flops_per_token=1e6, peak_flops=1e12)
    speed.steps = 4
    with speed.paused():
        time.sleep(0.2)
    time.sleep(0.04)
    rates = speed.measure()
    assert rates["ms_per_step"] == pytest.approx(10, rel=0.5)  # 40 ms over 4 steps, the paused 200 ms left out
    assert rates["tokens_per_s"] == pytest.approx(4000 / 0.04, rel=0.5)
    assert rates["mfu"] == pytest.approx(rates["tokens_per_s"] * 1e6 / 1e12)


def test_tokens_per_second_can_count_learned_tokens_only_while_mfu_counts_the_work():
    speed = Throughput(tokens_per_step=1000, flops_per_token=1e6, peak_flops=1e12)
    speed.steps = 4
    time.sleep(0.04)
    rates = speed.measure(learned_tokens=400.0)  # e.g. the assistant's tokens of 4 steps of chat rows
    seconds = rates["ms_per_step"] * 4 / 1000
    assert rates["tokens_per_s"] == pytest.approx(400 / seconds)
    assert rates["mfu"] == pytest.approx(4000 / seconds * 1e6 / 1e12)


def test_truncate_keeps_records_up_to_the_checkpoint_and_skips_torn_lines(tmp_path):
    log = MetricsLog(tmp_path)
    for step in range(1, 6):
        log.append({"kind": "train", "step": step, "train_loss": 1.0})
    with open(log.path, "a") as f:
        f.write('{"kind": "train", "st')  # a line torn by a kill
    assert len(read_metrics(log.path)) == 5
    log.truncate_after(3)
    assert [r["step"] for r in read_metrics(log.path)] == [1, 2, 3]
    assert all(json.loads(line) for line in log.path.read_text().splitlines())
