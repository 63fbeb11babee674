"""Checkpoints never run code on load and every bad file is a clear SsalInputError."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.checkpoint import FORMAT_VERSION, atomic_write_bytes, load_checkpoint, save_checkpoint
from ssal.cli.main import main
from ssal.errors import SsalInputError


class RunsShell:
    """Unpickling this object would run a shell command creating ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class RunsPython:
    """Unpickling this object would call ``exec`` creating ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def good_state() -> dict:
    return {"model": {"w": torch.arange(12.0).reshape(3, 4)}, "layout": "egait16", "config": {"seed": 0},
            "epoch": 1}


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.pt"
    save_checkpoint(good_state(), path)
    return path


def test_good_checkpoint_round_trip(good):
    state = load_checkpoint(good, expect_layout="egait16")
    assert torch.equal(state["model"]["w"], torch.arange(12.0).reshape(3, 4))
    assert state["format_version"] == FORMAT_VERSION and state["epoch"] == 1


@pytest.mark.parametrize("payload", [RunsShell, RunsPython])
@pytest.mark.parametrize("container", ["torch-zip", "pickle-0", "pickle-2", "pickle-4"])
def test_code_execution_on_load_is_refused(tmp_path, payload, container):
    marker = tmp_path / "marker"
    evil = {"kind": "ssal-checkpoint", "format_version": FORMAT_VERSION, "model": payload(marker)}
    path = tmp_path / "evil.pt"
    if container == "torch-zip":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=int(container.split("-")[1])))
    # Sanity: the payload does run when unpickled without protection.
    if container == "pickle-2":
        probe = tmp_path / "probe"
        pickle.loads(pickle.dumps(payload(probe), protocol=2))
        assert probe.exists()
    with pytest.raises(SsalInputError) as info:
        load_checkpoint(path)
    assert not marker.exists(), "the checkpoint ran code on load"
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg
    assert "weights_only" not in msg and "Re-running" not in msg  # no advice to turn safety off
    if container == "torch-zip":
        assert "references Python code" in msg
    else:  # a bare pickle is refused at the door, before any unpickling
        assert "not the zip format torch.save writes" in msg


def test_resume_from_a_malicious_checkpoint_is_refused_by_the_cli(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = tmp_path / "run"
    run.mkdir()
    torch.save({"kind": "ssal-checkpoint", "format_version": FORMAT_VERSION, "x": RunsShell(marker)},
               run / "checkpoint.pt")
    code = main(["pretrain", "--out", str(run), "--resume", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_checkpoint(good, tmp_path, cut):
    data = good.read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(data[: int(cut * len(data))])
    with pytest.raises(SsalInputError, match="cut.pt: (checkpoint file is empty|not a readable checkpoint)"):
        load_checkpoint(path)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(min_size=1, max_size=4096))
def test_random_bytes_checkpoint(tmp_path, blob):
    path = tmp_path / "rand.pt"
    path.write_bytes(blob)
    with pytest.raises(SsalInputError, match="rand.pt: "):
        load_checkpoint(path)


def test_mutated_checkpoints_load_or_refuse(good, tmp_path):
    """Bit flips and overwrites: a clean SsalInputError or a dict, never another exception."""
    data = good.read_bytes()
    rng = random.Random(0)
    path = tmp_path / "m.pt"
    refused = 0
    for _ in range(150):
        b = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            i = rng.randrange(len(b))
            if rng.random() < 0.5:
                b[i] ^= 1 << rng.randrange(8)
            else:
                b[i:i + 8] = rng.randbytes(8)
        path.write_bytes(bytes(b))
        try:
            assert isinstance(load_checkpoint(path), dict)
        except SsalInputError as exc:
            assert "\n" not in str(exc)
            refused += 1
    assert refused > 0


def test_other_format_version(tmp_path):
    path = tmp_path / "v2.pt"
    state = good_state()
    state.update(kind="ssal-checkpoint", format_version=FORMAT_VERSION + 1)
    torch.save(state, path)
    with pytest.raises(SsalInputError, match=f"format version {FORMAT_VERSION + 1} is not supported"):
        load_checkpoint(path)


def test_other_layout(good):
    with pytest.raises(SsalInputError, match="trained on layout 'egait16', data has 'h36m17'"):
        load_checkpoint(good, expect_layout="h36m17")


def test_not_an_ssal_checkpoint(tmp_path):
    torch.save({"state_dict": {"w": torch.zeros(2)}}, tmp_path / "other.pt")
    with pytest.raises(SsalInputError, match="not an ssal checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(SsalInputError, match="not an ssal checkpoint"):
        load_checkpoint(tmp_path / "list.pt")


def test_missing_empty_directory_and_fifo(tmp_path):
    with pytest.raises(SsalInputError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(SsalInputError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")
    (tmp_path / "dir.pt").mkdir()
    with pytest.raises(SsalInputError, match="not a regular file"):
        load_checkpoint(tmp_path / "dir.pt")
    os.mkfifo(tmp_path / "fifo.pt")
    with pytest.raises(SsalInputError, match="not a regular file"):
        load_checkpoint(tmp_path / "fifo.pt")  # would block forever if opened


def test_failed_write_keeps_the_old_checkpoint(good, tmp_path, monkeypatch):
    before = good.read_bytes()

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        save_checkpoint({**good_state(), "epoch": 2}, good)
    monkeypatch.undo()
    assert good.read_bytes() == before
    assert load_checkpoint(good)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.pt"]  # no temp file left behind
    atomic_write_bytes(good, b"replaced")
    assert good.read_bytes() == b"replaced"
