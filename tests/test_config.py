"""Config loading: precedence, typed overrides, unknown keys with suggestions, round trips."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from vseg.config import (
    BasslSegmentConfig,
    ClipsConfig,
    PuzzlesConfig,
    ScenesConfig,
    SegmentConfig,
    ShotsConfig,
    StageConfig,
    SynthConfig,
    config_to_yaml,
    load_config,
    parse_override,
    parse_shard,
    parse_size,
)
from vseg.errors import ConfigError
from vseg.train.methods.hico import HicoConfig
from vseg.train.methods.finetune import FinetuneConfig
from vseg.train.methods.scrl import ScrlConfig


class Optim(StageConfig):
    lr: float = 0.03
    momentum: float = 0.9


class Nested(StageConfig):
    optim: Optim = Optim()
    epochs: int = 100


def test_precedence_defaults_file_set_then_explicit(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("movies: 5\nseed: 3\nshots_per_movie: 50\n")
    config = load_config(SynthConfig, path, ["seed=4", "fps=25"], {"shots_per_movie": 60})
    assert (config.movies, config.seed, config.fps, config.shots_per_movie) == (5, 4, 25.0, 60)
    assert config.width == 426  # default


@pytest.mark.parametrize(
    "item, expected",
    [
        ("a=1", ("a", 1)),
        ("a.b=0.5", ("a.b", 0.5)),
        ("a=true", ("a", True)),
        ("a=null", ("a", None)),
        ("a=[3, 8]", ("a", [3, 8])),
        ("a=426x240", ("a", "426x240")),
        ("a=", ("a", None)),
        ("a=x=y", ("a", "x=y")),
    ],
)
def test_override_values_are_parsed_as_yaml(item, expected):
    assert parse_override(item) == expected


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_override("jpeg_quality")


def test_nested_keys_and_nested_suggestions():
    config = load_config(Nested, None, ["optim.lr=0.06", "epochs=2"])
    assert config.optim.lr == 0.06 and config.optim.momentum == 0.9 and config.epochs == 2
    with pytest.raises(ConfigError) as info:
        load_config(Nested, None, ["optim.lrr=0.1"])
    assert "unknown config key 'optim.lrr' (from --set); did you mean 'optim.lr'?" == str(info.value)


def test_unknown_key_without_a_close_match_lists_the_valid_keys():
    with pytest.raises(ConfigError) as info:
        load_config(Nested, None, ["zzz=1"])
    assert "Valid keys: optim, epochs." in str(info.value)


def test_values_are_validated_with_ranges():
    with pytest.raises(ConfigError, match="jpeg_quality"):
        load_config(PuzzlesConfig, None, ["jpeg_quality=101"])
    with pytest.raises(ConfigError, match="expected WIDTHxHEIGHT"):
        load_config(PuzzlesConfig, None, ["resize=big"])
    with pytest.raises(ConfigError, match="0 <= INDEX < COUNT"):
        load_config(PuzzlesConfig, None, ["shard=4/4"])
    with pytest.raises(ConfigError, match="min <= max"):
        load_config(SynthConfig, None, ["scene_shots=[5, 2]"])


def test_yaml_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=f"{bad}: not valid YAML at line"):
        load_config(SynthConfig, bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(SynthConfig, listing)


def test_effective_config_round_trips(tmp_path):
    config = load_config(PuzzlesConfig, None, ["resize=320x180", "shard=1/3", "split=train"])
    path = tmp_path / "effective.yaml"
    path.write_text(config_to_yaml(config, "prep puzzles"))
    assert path.read_text().startswith("# effective config of `vseg prep puzzles`")
    assert load_config(PuzzlesConfig, path) == config


def test_size_and_shard_parsers():
    assert parse_size("426x240") == (426, 240)
    assert parse_shard("2/5") == (2, 5)
    for bad in ("0x10", "426", "x240"):
        with pytest.raises(ValueError):
            parse_size(bad)
    for bad in ("1/0", "3/2", "a/b"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def test_every_shipped_preset_validates():
    from vseg.adapt import AdaptConfig
    from vseg.presets import CONFIG_DIR

    from vseg.train.methods import FINETUNE, load_method, method_names

    methods = {name: load_method(name).config_model for name in [*method_names(), FINETUNE]}  # from the registry
    assert methods["scrl"] is ScrlConfig and methods["hico"] is HicoConfig and methods[FINETUNE] is FinetuneConfig
    models = {
        **methods,
        "synth": SynthConfig,
        "puzzles": PuzzlesConfig,
        "segment": SegmentConfig,
        "segment_bassl": BasslSegmentConfig,
        "clips": ClipsConfig,
        "shots": ShotsConfig,
        "scenes": ScenesConfig,
        "adapt": AdaptConfig,
    }
    presets = sorted(CONFIG_DIR.rglob("*.yaml"))
    assert presets
    for path in presets:
        if path.parent.name == "demo":  # a section per stage, each checked by the demo's own loader
            continue
        model = models.get(path.parent.name)
        assert model is not None, f"no config model for preset folder {path.parent.name}"
        assert isinstance(load_config(model, path), BaseModel)
    # the paper's boundary protocol is spelled out in segment/scrl.yaml and is also the default; so is BaSSL's
    # pre-training in bassl/paper.yaml
    assert load_config(methods["bassl"], CONFIG_DIR / "bassl" / "paper.yaml") == methods["bassl"]()
    assert load_config(BasslSegmentConfig, CONFIG_DIR / "segment_bassl" / "paper.yaml") == BasslSegmentConfig()
    assert load_config(SegmentConfig, CONFIG_DIR / "segment" / "scrl.yaml") == SegmentConfig()
    # prep shots and scenes ship PySceneDetect's and vseg's defaults; the demo's changes load for every stage
    assert load_config(ShotsConfig, CONFIG_DIR / "shots" / "default.yaml") == ShotsConfig()
    assert load_config(ScenesConfig, CONFIG_DIR / "scenes" / "default.yaml") == ScenesConfig()
    from vseg.demo import STAGES, stage_configs

    assert set(stage_configs()) == set(STAGES)
    # HiCo's clip settings are the defaults of prep clips
    assert load_config(ClipsConfig, CONFIG_DIR / "clips" / "default.yaml") == ClipsConfig()
    # HiCo's HACS-s settings are the defaults too; the others differ where the reference's configs do
    hacs_s = load_config(HicoConfig, CONFIG_DIR / "hico" / "hacs_s.yaml")
    assert hacs_s.model_dump(exclude={"train": {"workers", "log_every"}}) == HicoConfig().model_dump(
        exclude={"train": {"workers", "log_every"}}
    )
    assert (hacs_s.optim.lr, hacs_s.optim.reference_batch, hacs_s.train.batch_size) == (0.9, 96, 96)
    assert (hacs_s.train.epochs, hacs_s.optim.warmup_epochs, hacs_s.optim.warmup_start_lr) == (120, 5, 0.001)
    baseline = load_config(HicoConfig, CONFIG_DIR / "hico" / "baseline_s.yaml")
    assert (baseline.data.clips_per_video, baseline.data.max_dis, baseline.data.topical) == (2, None, False)
    assert (baseline.optim.lr, baseline.train.batch_size) == (0.6, 64)
    for name, epochs, warmup in (("hacs_l", 600, 60), ("k400_untrimmed", 500, 50)):
        long = load_config(HicoConfig, CONFIG_DIR / "hico" / f"{name}.yaml")
        assert (long.train.epochs, long.optim.warmup_epochs, long.optim.bn_lars_exclude) == (epochs, warmup, True)


def test_paper_presets_train_in_float32_as_the_references():
    """SCRL and HiCo train without mixed precision; their presets do too (bf16 is --set train.amp=true)."""
    from vseg.adapt import AdaptConfig
    from vseg.presets import preset

    papers = {
        ScrlConfig: ["scrl/with_imagenet", "scrl/without_imagenet"],
        HicoConfig: ["hico/hacs_s", "hico/baseline_s", "hico/hacs_l", "hico/k400_untrimmed", "hico/pt_k400"],
        FinetuneConfig: ["finetune/ucf101", "finetune/hmdb51", "finetune/ucf101_linear", "finetune/hmdb51_linear"],
    }
    for model, names in papers.items():
        assert model().train.amp is False, model.__name__
        for name in names:
            assert load_config(model, preset(name)).train.amp is False, name
    assert load_config(AdaptConfig, preset("adapt/gpu")).scrl.train.amp is True  # not a paper setting: fast
