"""The typed run configuration: schema defaults, presets, overrides typed by the schema, errors."""

from __future__ import annotations

import dataclasses
import inspect
import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml

from ssal.augment import PartMask, TemporalMask, UpperBodyJitter
from ssal.cli.main import main
from ssal.config import (
    CFFNConfig,
    Config,
    ExtremeConfig,
    SSAConfig,
    STGCNConfig,
    resolve_config,
    typed_config,
    validate_config,
)
from ssal.errors import SsalInputError
from ssal.methods.registry import available_methods, encoder_name
from ssal.models import CFFN, STGCN

TINY = [
    "data.builtin_n=48", "data.builtin_seed=3", "train.batch_size=16", "run.knn_every=0",
    "run.progress=false", "run.threads=1", "model.queue_size=32", "model.encoder.channels=[4,8]",
    "model.encoder.strides=[1,2]", "model.encoder.image_channels=4", "model.encoder.image_depth=1",
    "model.augment.general.clip_len=12", "run.max_steps=1",
]


def cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def pretrain_args(out, *sets: str) -> list[str]:
    args = ["pretrain", "--method", "ssal", "--out", str(out), "--device", "cpu", "--no-progress"]
    for item in (*TINY, *sets):
        args += ["--set", item]
    return args


def test_scientific_notation_override_is_saved_as_a_float(tmp_path):
    code, err = cli(pretrain_args(tmp_path / "run", "model.augment.strong.jitter_offset_std=1e-1"))
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    value = saved["model"]["augment"]["strong"]["jitter_offset_std"]
    assert isinstance(value, float) and value == 0.1


@pytest.mark.parametrize("setting, key", [
    ("model.augment.strong.jiter=1", "model.augment.strong.jiter"),
    ("train.lr=abc", "train.lr"),
])
def test_unknown_key_and_wrong_type_exit_2_naming_the_key(tmp_path, setting, key):
    code, err = cli(pretrain_args(tmp_path / "run", setting))
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and f"'{key}'" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_wrong_type_message_says_what_was_expected_and_given():
    with pytest.raises(SsalInputError) as info:
        resolve_config("ssal", overrides=["train.lr=abc"])
    assert str(info.value) == "setting 'train.lr' must be a number, got str 'abc'"
    with pytest.raises(SsalInputError, match="known here: .*jitter_offset_std"):
        resolve_config("ssal", overrides=["model.augment.strong.jiter=1"])


@pytest.mark.parametrize("setting, fragment", [
    ("model.augment.strong.jitter=2", "true or false"),         # OmegaConf alone would take it
    ("run.compile=1", "true or false"),
    ("train.epochs=true", "whole number"),
    ("run.device=3", "text"),
    ("train.epochs=1.5", "whole number"),
    ("model.augment.strong.jitter_p=1.5", "at most 1"),
    ("train.lr=.nan", "finite"),
    ("run.allocator=huge", "one of reuse, release, bounded, system"),
    ("model.augment.general.crop_ratio=[0.5]", "2 numbers"),
    ("model.encoder.name=resnet", "one of stgcn, cffn"),
])
def test_bad_values_are_refused_at_resolve_time(setting, fragment):
    with pytest.raises(SsalInputError, match=fragment):
        resolve_config("ssal", overrides=[setting])


def test_variants_follow_the_encoder_name_and_strong_kind():
    cfg = typed_config(resolve_config("ssal"))
    assert isinstance(cfg.model.encoder, CFFNConfig) and isinstance(cfg.model.augment.strong, SSAConfig)
    cfg = typed_config(resolve_config("aimclr"))
    assert type(cfg.model.encoder) is STGCNConfig and isinstance(cfg.model.augment.strong, ExtremeConfig)
    # switching the strong view on the command line switches the schema of its section
    cfg = resolve_config("ssal", overrides=["model.augment.strong_kind=extreme", "model.augment.strong.blur=false"])
    assert cfg["model"]["augment"]["strong"]["blur"] is False and "jitter" not in cfg["model"]["augment"]["strong"]
    with pytest.raises(SsalInputError, match="unknown setting 'model.encoder.image_channels'"):
        resolve_config("aimclr", overrides=["model.encoder.image_channels=8"])


def test_config_file_layer_and_priority(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("train:\n  lr: 1e-2\n  epochs: 7\n")
    cfg = resolve_config("ssal", f, ["train.epochs=3"])
    assert cfg["train"]["lr"] == 0.01 and cfg["train"]["epochs"] == 3
    f.write_text("train:\n  lr: fast\n")
    with pytest.raises(SsalInputError) as info:
        resolve_config("ssal", f)
    assert str(info.value).startswith(str(f)) and "'train.lr'" in str(info.value)


def test_saved_configs_validate_again_and_legacy_values_read():
    cfg = resolve_config("skeletonclr")
    assert validate_config(cfg) == cfg
    old = {**cfg, "run": {**cfg["run"], "amp": True}}  # ssal 0.1 wrote booleans
    assert validate_config(old)["run"]["amp"] == "auto"


def test_registry_lists_the_preset_files():
    assert available_methods() == ("ssal", "aimclr", "mamp", "pstl", "skeletonclr")
    assert [encoder_name(m) for m in available_methods()] == ["cffn", "stgcn", "transformer", "stgcn", "stgcn"]
    with pytest.raises(SsalInputError, match="unknown method 'simclr'"):
        resolve_config("simclr")


def _defaults(fn) -> dict:
    return {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_components_take_their_defaults_from_the_schema():
    ssa = SSAConfig()
    assert _defaults(UpperBodyJitter.__init__) == {
        "offset_std": ssa.jitter_offset_std, "frame_std": ssa.jitter_frame_std,
        "include_trunk": ssa.jitter_trunk, "p": ssa.jitter_p}
    assert _defaults(PartMask.__init__)["max_parts"] == ssa.spatial_mask_max_parts
    assert _defaults(TemporalMask.__init__)["ratio"] == ssa.temporal_mask_ratio
    # the encoders' schemas list exactly their constructors' settings, with the same defaults
    for cls, schema in ((STGCN, STGCNConfig), (CFFN, CFFNConfig)):
        fields = {f.name: getattr(schema(), f.name) for f in dataclasses.fields(schema) if f.name != "name"}
        assert _defaults(cls.__init__) == fields


def test_schema_defaults_are_the_ssal_method():
    assert dataclasses.asdict(Config()) == {**resolve_config("ssal"), "method": "ssal"}


def test_aimclr_preset_leaves_time_flip_off():
    from ssal.augment import Flip, TimeFlip
    from ssal.methods import build_learner

    cfg = resolve_config("aimclr", overrides=["model.encoder.channels=[4]", "model.encoder.strides=[1]"])
    assert cfg["model"]["augment"]["strong"]["time_flip"] is False
    kinds = {type(t) for t in build_learner(cfg["model"], "egait16").strong}
    assert Flip in kinds and TimeFlip not in kinds


@pytest.mark.parametrize("key", ["model.encoder.name", "model.augment.strong_kind"])
@pytest.mark.parametrize("value", ["[1, a]", "{}", "{a: 1}"])
def test_a_variant_name_that_is_not_a_text_is_one_error(key, value):
    # found by the settings stream of the fuzz run: a list or mapping as a variant name
    with pytest.raises(SsalInputError, match=key.replace(".", r"\.")):
        resolve_config("ssal", overrides=[f"{key}={value}"])
