import pytest

from gptkit.config import RunConfig, parse_overrides, resolve_config, valid_keys
from gptkit.errors import GptkitError


def test_defaults_are_nanogpts_cpu_recipe():
    config = resolve_config()
    m, t = config.model, config.train
    assert (m.n_layer, m.n_head, m.n_embd, m.block_size, m.dropout, t.batch_size) == (4, 4, 128, 64, 0.0, 12)
    assert resolve_config(preset="cpu-baby").to_dict()["model"] == config.to_dict()["model"]


def test_set_overrides_are_parsed_by_field_type():
    config = resolve_config(
        overrides=["model.n_layer=6", "train.lr=3e-4", "train.compile=true", "train.device=cpu", "train.max_iters=1e3"]
    )
    assert config.model.n_layer == 6 and isinstance(config.model.n_layer, int)
    assert config.train.lr == 3e-4 and config.train.compile is True
    assert config.train.device == "cpu" and config.train.max_iters == 1000


def test_precedence_defaults_preset_toml_set(tmp_path):
    toml = tmp_path / "cfg.toml"
    toml.write_text('preset = "shakespeare"\n[model]\nn_layer = 3\n[train]\nlr = 5e-4\n[[data]]\npath = "d"\n')
    config = resolve_config(toml_path=str(toml), overrides=["train.lr=1e-4"])
    assert config.model.n_embd == 384  # from the preset named in the file
    assert config.model.n_layer == 3  # file beats preset
    assert config.train.lr == 1e-4  # --set beats file
    assert config.data[0].path == "d" and config.preset == "shakespeare"


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(GptkitError) as err:
        resolve_config(overrides=["model.n_layers=6"])
    assert "model.n_layers" in str(err.value) and "model.n_layer," in str(err.value)
    assert len(valid_keys()) > 20


@pytest.mark.parametrize(
    "pair, expected",
    [
        ("model.n_layer=six", "expects int"),
        ("train.compile=maybe", "expects bool"),
        ("n_layer=6", "section.key"),
        ("model.n_head=5", "not divisible"),
        ("train.dtype=fp8", "train.dtype"),
        ("model.attn_dropout=1.5", "model.attn_dropout"),
    ],
)
def test_bad_values_name_the_key(pair, expected):
    with pytest.raises(GptkitError, match=expected):
        resolve_config(overrides=[pair])


def test_config_round_trips_through_json():
    config = resolve_config(preset="shakespeare", overrides=["train.seed=7"])
    assert RunConfig.from_dict(config.to_dict()).to_dict() == config.to_dict()


def test_parse_overrides_nests_keys():
    assert parse_overrides(["model.n_layer=2", "train.lr=1"]) == {"model": {"n_layer": "2"}, "train": {"lr": "1"}}


def test_unknown_preset_and_missing_toml(tmp_path):
    with pytest.raises(GptkitError, match="cpu-baby"):
        resolve_config(preset="huge")
    with pytest.raises(GptkitError, match="no such file"):
        resolve_config(toml_path=str(tmp_path / "none.toml"))


def test_data_and_stages_together_are_refused(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[train]\nmax_iters = 5\n[[data]]\npath = "x"\n[[stages]]\nsteps = 5\ndata = [{path = "y"}]\n')
    with pytest.raises(GptkitError, match="not both"):
        resolve_config(toml_path=str(toml))
    toml.write_text('[train]\nmax_iters = 5\n[[stages]]\nsteps = "five"\ndata = [{path = "y"}]\n')
    with pytest.raises(GptkitError, match=r"stages\[1\]\.steps. expects int"):
        resolve_config(toml_path=str(toml))


def test_resolve_config_leaves_its_base_unchanged():
    base = resolve_config(overrides=["model.n_layer=3"])
    before = base.to_dict()
    resolved = resolve_config(preset="cpu-baby", overrides=["train.max_iters=7", "model.n_layer=5"], base=base)
    assert resolved is not base and resolved.train.max_iters == 7 and resolved.model.n_layer == 5
    assert base.to_dict() == before
