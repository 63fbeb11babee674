"""Settings and devices this machine cannot run are refused before anything starts: one
``error:`` line (exit 2) naming the flag or the setting, never a crash mid-run."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import torch

from ssal.cli.main import main
from ssal.config import resolve_config, typed_config
from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16
from ssal.training import engine

TINY = ["data.builtin_n=48", "data.builtin_seed=3", "train.batch_size=16", "run.knn_every=0",
        "run.progress=false", "run.threads=1", "model.queue_size=32", "model.encoder.channels=[4,8]",
        "model.encoder.strides=[1,2]", "model.augment.general.clip_len=12", "run.max_steps=2"]


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def pretrain_args(out: Path, *extra: str) -> list[str]:
    args = ["pretrain", "--method", "skeletonclr", "--out", str(out)]
    for item in TINY:
        args += ["--set", item]
    return args + list(extra)


def assert_refused(code: int, err: str, says: str) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, repr(err)
    assert says in err, err


def nothing_written(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


# -- the resolver ------------------------------------------------------------------------------

def test_resolve_device_accepts_what_the_machine_has():
    assert engine.resolve_device("cpu") == torch.device("cpu")
    assert engine.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert engine.resolve_device(torch.device("cpu")) == torch.device("cpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        assert engine.resolve_device(f"cuda:{n - 1}") == torch.device("cuda", n - 1)
        with pytest.raises(SsalInputError, match=f"has {n} CUDA GPU"):
            engine.resolve_device(f"cuda:{n}")


@pytest.mark.parametrize("name", ["meta", "xpu", "nonsense", "cuda:-1", "cpu:x", ""])
def test_resolve_device_refuses_the_rest_naming_the_setting(name):
    with pytest.raises(SsalInputError) as err:
        engine.resolve_device(name, "--device")
    assert str(err.value).startswith("--device: ") and "\n" not in str(err.value)


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:99"])
def test_cuda_is_refused_without_a_gpu(name):
    with pytest.raises(SsalInputError, match="run.device: .*no CUDA GPU"):
        engine.resolve_device(name)


def test_mps_only_where_available():
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        assert engine.resolve_device("mps").type == "mps"
    else:
        with pytest.raises(SsalInputError, match="MPS"):
            engine.resolve_device("mps")


def test_threads_are_bounded_by_the_machine():
    cores = os.cpu_count() or 1
    assert engine.resolve_threads(None) is None
    assert engine.resolve_threads(cores) == cores
    with pytest.raises(SsalInputError, match="run.threads: .*CPU cores"):
        engine.resolve_threads(cores + 1)
    with pytest.raises(SsalInputError, match="run.threads"):
        engine.resolve_threads(0)


def test_step_estimate_of_the_defaults_is_within_the_bound():
    for method in ("ssal", "aimclr", "skeletonclr"):
        settings = typed_config(resolve_config(method))
        assert 0 < engine.check_step_size(settings, EGAIT16) <= engine.MAX_STEP_ACTIVATION_BYTES


def test_step_estimate_refuses_a_huge_clip_naming_the_settings():
    settings = typed_config(resolve_config("skeletonclr", overrides=TINY + ["model.augment.general.clip_len=100000"]))
    with pytest.raises(SsalInputError, match="train.batch_size.*model.augment.general.clip_len") as err:
        engine.check_step_size(settings, EGAIT16, 48)
    assert "MAX_STEP_ACTIVATION_BYTES" in str(err.value)
    # the batch is at most the data: the same clip on two sequences fits
    assert engine.check_step_size(settings, EGAIT16, 2) <= engine.MAX_STEP_ACTIVATION_BYTES


# -- through the command line ------------------------------------------------------------------

@no_cuda
@pytest.mark.parametrize("device", ["cuda:99", "meta"])
def test_pretrain_device_flag(tmp_path, device):
    out = tmp_path / "run"
    code, err = run(pretrain_args(out, "--device", device))
    assert_refused(code, err, "--device")
    assert device in err and nothing_written(out)


def test_pretrain_run_device_setting(tmp_path):
    out = tmp_path / "run"
    code, err = run(pretrain_args(out, "--set", "run.device=meta"))
    assert_refused(code, err, "run.device")
    assert nothing_written(out)


def test_pretrain_threads_4096(tmp_path):
    out = tmp_path / "run"
    code, err = run(pretrain_args(out, "--set", "run.threads=4096"))
    assert_refused(code, err, "run.threads")
    assert nothing_written(out)


def test_pretrain_clip_len_100000_is_refused_before_training(tmp_path):
    out = tmp_path / "run"
    code, err = run(pretrain_args(out, "--set", "model.augment.general.clip_len=100000"))
    assert_refused(code, err, "model.augment.general.clip_len")
    assert nothing_written(out)


@pytest.fixture(scope="module")
def encoder_pt(tmp_path_factory):
    out = tmp_path_factory.mktemp("devices") / "run"
    code, err = run(pretrain_args(out, "--device", "cpu"))
    assert code == 0, err
    return out / "encoder.pt"


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_predict_and_embed_device_meta(tmp_path, encoder_pt, command):
    args = [command, "--checkpoint", str(encoder_pt), "--device", "meta", "builtin"]
    if command == "embed":
        args += ["--out", str(tmp_path / "f.npy")]
    code, err = run(args)
    assert_refused(code, err, "--device")
    assert not (tmp_path / "f.npy").exists()


def test_load_refuses_meta(encoder_pt):
    from ssal.inference import load

    with pytest.raises(SsalInputError, match="--device"):
        load(encoder_pt, device="meta")
