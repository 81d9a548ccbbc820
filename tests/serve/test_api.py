"""The OpenAI-compatible API of a real server process: the official `openai` client gets completions and
streams equal to what the library generates; concurrent requests equal the same requests made one at a
time; bad requests get the right 4xx with a message, and the server lives through all of them."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from serving import API_KEY, Server

from gptkit.run import load_run

AUTH = {"Authorization": f"Bearer {API_KEY}"}


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)


@pytest.fixture(scope="module")
def library_run(trained_run):
    return load_run(trained_run, device="cpu")


def post(server, body, headers=AUTH, timeout=60.0) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/completions", json=body, headers=headers, timeout=timeout)


def test_the_openai_client_gets_what_the_library_generates(server, client, library_run):
    answer = client.completions.create(model=server.model, prompt="ROMEO:", max_tokens=40, temperature=0.8, seed=7)
    expected = library_run.generate("ROMEO:", 40, temperature=0.8, seed=7)
    assert answer.choices[0].text == expected and len(expected) > 0
    assert answer.choices[0].finish_reason == "length" and answer.object == "text_completion"
    assert answer.usage.prompt_tokens == 6 and answer.usage.completion_tokens == 40
    assert answer.model == server.model and [m.id for m in client.models.list().data] == [server.model]


def test_a_stream_arrives_in_pieces_and_adds_up_to_the_whole_answer(server, client):
    request = dict(model=server.model, prompt="KING:", max_tokens=2000, temperature=1.0, top_p=0.9, seed=3)
    whole = client.completions.create(**request).choices[0].text
    arrivals, texts = [], []
    for chunk in client.completions.create(**request, stream=True, stream_options={"include_usage": True}):
        arrivals.append(time.monotonic())
        texts += [chunk.choices[0].text] if chunk.choices else []
    assert len([t for t in texts if t]) >= 5 and "".join(texts) == whole  # pieces, as they were made
    assert arrivals[-1] - arrivals[0] > 0.1  # spread over the generation, not all at the end
    assert texts[-1] == "" and chunk.usage.completion_tokens == 2000  # the finish chunk, then usage
    raw = post(server, {"prompt": "KING:", "max_tokens": 5, "seed": 1, "stream": True}).text
    events = [line[6:] for line in raw.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]" and json.loads(events[-2])["choices"][0]["finish_reason"] == "length"
    streamed = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
    assert streamed == post(server, {"prompt": "KING:", "max_tokens": 5, "seed": 1}).json()["choices"][0]["text"]


def test_stop_strings_n_echo_and_top_k_are_honoured(server, client, library_run):
    request = dict(prompt="ROMEO:", max_tokens=300, temperature=1.0, seed=4, stop=["\n"])
    stopped = client.completions.create(model=server.model, echo=True, **request)
    text, unstopped = stopped.choices[0].text, library_run.generate("ROMEO:", 300, temperature=1.0, seed=4)
    assert "\n" in unstopped and text == "ROMEO:" + unstopped[: unstopped.index("\n")]
    assert stopped.choices[0].finish_reason == "stop"
    several = client.completions.create(
        model=server.model, prompt=["A", "B"], max_tokens=10, n=2, seed=5, extra_body={"top_k": 5}
    )
    assert [c.index for c in several.choices] == [0, 1, 2, 3]
    for c in several.choices:
        prompt, seed = ["A", "B"][c.index // 2], 5 + c.index % 2
        assert c.text == library_run.generate(prompt, 10, temperature=1.0, top_k=5, seed=seed)


def test_twenty_concurrent_requests_equal_the_same_requests_one_at_a_time(server):
    requests = [
        {
            "prompt": ["ROMEO:", "JULIET:", "First Citizen:", ""][i % 4],
            "max_tokens": 30 + i,
            "temperature": 0.5 + i / 20,
            "seed": i,
            "top_k": i % 3 * 10,
            "stream": i % 2 == 1,
        }
        for i in range(20)
    ]

    def text_of(body) -> str:
        response = post(server, body)
        assert response.status_code == 200, response.text
        if not body["stream"]:
            return response.json()["choices"][0]["text"]
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        return "".join(json.loads(e)["choices"][0]["text"] for e in events if e != "[DONE]")

    one_at_a_time = [text_of(body) for body in requests]
    with ThreadPoolExecutor(max_workers=20) as pool:
        together = list(pool.map(text_of, requests))
    assert together == one_at_a_time and len(set(together)) == 20


@pytest.mark.parametrize(
    "body, headers, status, says",
    [
        (b'{"prompt": "ROMEO:", "max_tokens": 5', AUTH, 400, "not valid JSON"),
        (b'["ROMEO:"]', AUTH, 400, "JSON object"),
        ({"prompt": "ROMEO:", "max_tokens": -3}, AUTH, 400, "max_tokens"),
        ({"prompt": "ROMEO:", "max_tokens": 10**6}, AUTH, 400, "max_tokens: at most 20000"),
        ({"prompt": "ROMEO:", "temperature": "hot"}, AUTH, 400, "temperature"),
        ({"prompt": "ROMEO:", "max_token": 5}, AUTH, 400, "unknown or unsupported field 'max_token'"),
        ({"prompt": "ROMEO:", "logprobs": 2}, AUTH, 400, "logprobs"),
        ({"prompt": "x" * 50_000}, AUTH, 400, "more than this server's limit"),
        ({"prompt": "ROMEO: \u2603"}, AUTH, 400, "not in the model's vocabulary"),
        (b"x" * 2_000_000, AUTH, 413, "larger than"),
        ({"prompt": "ROMEO:"}, {"Authorization": "Bearer wrong"}, 401, "wrong API key"),
        ({"prompt": "ROMEO:"}, {}, 401, "no API key"),
        ({"prompt": "ROMEO:", "model": "gpt-4"}, AUTH, 404, "not served here"),
        ({"prompt": ["A", "B", "C"], "n": 3}, AUTH, 400, "at most 8 completions per request"),
        ({"prompt": "A", "temperature": 1e-9}, AUTH, 400, "temperature: use 0 for greedy"),
        ({"prompt": "A", "seed": 2**70}, AUTH, 400, "seed"),
        (b'{"prompt": "A", "max_tokens": ' + b"9" * 5000 + b"}", AUTH, 400, "not valid JSON"),
        ({"prompt": "A"}, {**AUTH, "Origin": "http://evil.example"}, 403, "refused"),
    ],
)
def test_bad_requests_get_the_right_4xx_and_the_server_survives(server, body, headers, status, says):
    if isinstance(body, bytes):
        response = httpx.post(
            f"{server.url}/v1/completions", content=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        response = post(server, body, headers=headers)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert says in error["message"] and error["type"]
    assert server.alive()
    assert post(server, {"prompt": "ROMEO:", "max_tokens": 3}).status_code == 200


def test_the_openai_client_raises_its_own_errors_for_4xx(server):
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.completions.create(model=server.model, prompt="A", max_tokens=2)
    right = openai.OpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        right.completions.create(model=server.model, prompt="A", max_tokens=-1)
    assert httpx.get(f"{server.url}/v1/nothing", headers=AUTH).json()["error"]["message"].startswith("GET /v1/nothing")


def test_nulls_take_the_defaults_shared_with_sample_and_chat(server):
    from gptkit.sampling import SamplingConfig

    body = {"prompt": "A", "max_tokens": None, "temperature": None, "n": None, "stop": None, "stream": None}
    answer = post(server, body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["usage"]["completion_tokens"] == SamplingConfig().max_new_tokens
    seeded = {"prompt": "A", "seed": 5, "max_tokens": 30}
    same = dict(seeded, temperature=SamplingConfig().temperature, top_k=0, top_p=1, repetition_penalty=1)
    assert post(server, seeded).json()["choices"][0]["text"] == post(server, same).json()["choices"][0]["text"]


def test_a_streaming_client_that_goes_away_stops_its_generation(server):
    before = server.wait_idle()["cancelled"]
    body = {"prompt": "ROMEO:", "max_tokens": 20000, "stream": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, headers=AUTH, timeout=60) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    began = time.monotonic()  # the connection is closed here, long before 20000 tokens
    after = server.wait_idle(timeout=10)
    assert after["cancelled"] == before + 1 and time.monotonic() - began < 10
    assert post(server, {"prompt": "A", "max_tokens": 2}).status_code == 200


def test_a_waiting_client_that_gives_up_stops_its_generation(server):
    before = server.wait_idle()["cancelled"]
    with pytest.raises(httpx.ReadTimeout):  # not streamed: the client gives up after 1 s of 20000 tokens
        post(server, {"prompt": "ROMEO:", "max_tokens": 20000}, timeout=1.0)
    began = time.monotonic()
    after = server.wait_idle(timeout=10)
    assert after["cancelled"] == before + 1 and time.monotonic() - began < 10


def test_late_requests_time_out_and_a_full_queue_is_refused(trained_run):
    strict = Server(trained_run, "--timeout", "1", "--max-queue", "1", "--max-tokens", "50000")
    try:
        late = httpx.post(f"{strict.url}/v1/completions", json={"prompt": "A", "max_tokens": 50000}, timeout=60)
        assert late.status_code == 504 and "timed out" in late.json()["error"]["message"]
        results = []

        def ask():
            body = {"prompt": "A", "max_tokens": 50000}
            results.append(httpx.post(f"{strict.url}/v1/completions", json=body, timeout=60).status_code)

        threads = [threading.Thread(target=ask) for _ in range(4)]  # one runs, one waits, the rest are refused
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results)[-1] == 504 and 503 in results
        assert strict.alive() and strict.health()["timed_out"] >= 2
    finally:
        strict.stop()


def test_an_omitted_max_tokens_stays_within_the_servers_cap():
    from gptkit.sampling import SamplingConfig
    from gptkit.serve.requests import parse_completion_request
    from gptkit.serve.settings import ServeSettings

    assert parse_completion_request(b'{"prompt": "hi"}', ServeSettings(max_tokens=100)).max_tokens == 100
    default = SamplingConfig().max_new_tokens
    assert parse_completion_request(b'{"prompt": "hi"}', ServeSettings(max_tokens=1000)).max_tokens == default
