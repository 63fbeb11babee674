"""The one output-path guard (:func:`ssal.outputs.check_output_file` / ``check_output_dir`` with
``inputs=``) and the one output lock (:func:`ssal.outputs.output_lock`).

Property: for random relative layouts of input files and folders, an output path that equals,
contains or lies inside an input (also through a symbolic link or a hard link) is refused with
:class:`SsalInputError` naming the output and the input; every unrelated path is accepted.
Special files are never outputs; an existing file needs ``overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.errors import SsalInputError
from ssal.outputs import (
    LOCK_NAME,
    check_output_dir,
    check_output_file,
    check_unlocked,
    lock_file,
    output_lock,
)

PROPS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

NAMES = st.sampled_from(["a", "b", "c", "d.csv", "e.npy", "f.bvh"])
#: A relative path of 1 to 3 parts.
REL = st.lists(NAMES, min_size=1, max_size=3).map(lambda parts: Path(*parts))


def _related(out: Path, inp: Path) -> bool:
    """``out`` equals, contains or lies inside ``inp`` (as relative paths, no links)."""
    return out == inp or inp in out.parents or out in inp.parents


def _make_inputs(root: Path, files: list[Path], folders: list[Path]) -> tuple[list[Path], list[Path]]:
    """Create the input layout under ``root``; layouts where a file and a folder collide keep
    what was made first (the returned lists are what exists)."""
    made_folders, made_files = [], []
    for d in folders:
        try:
            (root / d).mkdir(parents=True, exist_ok=True)
            (root / d / "labels.csv").write_text("name,label\n")
            made_folders.append(d)
        except (FileExistsError, NotADirectoryError):
            pass
    for f in files:
        try:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            if (root / f).exists():
                if (root / f).is_file():
                    made_files.append(f)
                continue
            (root / f).write_bytes(b"data")
            made_files.append(f)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            pass
    return made_files, made_folders


@PROPS
@given(files=st.lists(REL, min_size=1, max_size=3), folders=st.lists(REL, max_size=2), out=REL,
       as_dir=st.booleans())
def test_output_related_to_an_input_is_refused(files, folders, out, as_dir):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        made_files, made_folders = _make_inputs(root, files, folders)
        inputs = [root / f for f in made_files] + [root / d for d in made_folders]
        target = root / out
        related = [i for i in made_files + made_folders if _related(out, i)]
        # A path through an existing file cannot be created: the guard refuses it for that
        # reason too, so only layouts where the output's folder could exist are judged.
        blocked = any((root / p).is_file() for p in out.parents if p != Path("."))
        try:
            if as_dir:
                check_output_dir(target, overwrite=True, inputs=inputs)
            else:
                check_output_file(target, overwrite=True, inputs=inputs, create_parents=True)
        except SsalInputError as exc:
            assert related or blocked or (target.exists() and (target.is_dir() != as_dir)), exc.one_line()
            if related:
                assert str(target) in exc.one_line()
            return
        assert not related, f"{out} accepted though it is related to the input {related[0]}"


@PROPS
@given(inp=REL, out=REL, via=st.sampled_from(["symlink", "hardlink"]))
def test_links_to_an_input_are_refused(inp, out, via):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src = root / "data" / inp
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_bytes(b"data")
        link = root / "links" / out
        link.parent.mkdir(parents=True, exist_ok=True)
        if via == "symlink":
            link.symlink_to(src)
        else:
            os.link(src, link)
        with pytest.raises(SsalInputError, match="is the input"):
            check_output_file(link, overwrite=True, inputs=[src])
        # The folder around the link is no input: a file beside it is fine.
        check_output_file(link.with_name(link.name + ".other"), inputs=[src])


def test_folder_input_protects_its_files(tmp_path):
    folder = tmp_path / "bvh"
    folder.mkdir()
    (folder / "labels.csv").write_text("name,label\n")
    with pytest.raises(SsalInputError, match="inside the input folder"):
        check_output_file(folder / "labels.csv", suffixes=(".csv",), overwrite=True, inputs=[folder])
    with pytest.raises(SsalInputError, match="inside the input folder"):
        check_output_file(folder / "new.bvh", inputs=[folder])
    with pytest.raises(SsalInputError, match="contains the input"):
        check_output_dir(tmp_path, overwrite=True, inputs=[folder / "labels.csv"])
    check_output_file(tmp_path / "predictions.csv", inputs=[folder, "builtin", None])


@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
def test_special_files_are_never_outputs(tmp_path, kind):
    if kind == "fifo":
        path = tmp_path / "x.npy"
        os.mkfifo(path)
    elif kind == "socket":
        path = Path(tempfile.mkdtemp(dir="/tmp")) / "s.npy"  # short: AF_UNIX paths are limited
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        sock.close()
    else:
        path = Path(os.devnull)
        if not Path(path).exists():
            pytest.skip("no /dev/null")
    try:
        with pytest.raises(SsalInputError, match="not a regular file"):
            check_output_file(path, overwrite=True)
        with pytest.raises(SsalInputError, match="not a directory"):
            check_output_dir(path, overwrite=True)
        # A symbolic link to the special file is refused the same way.
        link = tmp_path / "link.npy"
        link.symlink_to(path)
        with pytest.raises(SsalInputError, match="not a regular file"):
            check_output_file(link, overwrite=True)
    finally:
        if kind == "socket":
            shutil.rmtree(path.parent, ignore_errors=True)


def test_existing_file_needs_overwrite(tmp_path):
    out = tmp_path / "x.npy"
    out.write_bytes(b"old")
    with pytest.raises(SsalInputError, match="exists; pass --overwrite to replace it"):
        check_output_file(out, suffixes=(".npy",), what="features file")
    assert check_output_file(out, suffixes=(".npy",), overwrite=True) == out
    assert out.read_bytes() == b"old"


def test_lock_excludes_a_live_holder_and_is_released(tmp_path):
    out = tmp_path / "run"
    with output_lock(out, directory=True) as lock:
        assert lock == out / LOCK_NAME and lock.is_file()
        rec = json.loads(lock.read_text())
        assert rec["pid"] == os.getpid() and rec["host"] == socket.gethostname() and rec["started"]
        # Nested holds in one process, and the checks of this process, pass.
        with output_lock(out, directory=True):
            check_output_dir(out)
        assert lock.is_file()
        (out / "result.txt").write_text("done")
    assert not (out / LOCK_NAME).exists()
    # Released on an exception too; a directory the lock created and nothing filled is removed.
    fresh = tmp_path / "a" / "b"
    with pytest.raises(KeyboardInterrupt):
        with output_lock(fresh, directory=True):
            raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()


def test_a_concurrent_writability_probe_is_no_content(tmp_path, monkeypatch):
    """Found by CI: a second process probing ``out`` while the lock holder checked it made the
    holder refuse its own, empty directory."""
    out = tmp_path / "run"
    out.mkdir()
    seen = []
    real_mkstemp = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, name = real_mkstemp(*args, **kwargs)
        seen.append(Path(name))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    check_output_dir(out)
    assert len(seen) == 1 and seen[0].parent == out and not seen[0].exists()
    # The probe the other process holds for a moment, seen by this one's emptiness check.
    seen[0].write_text("")
    check_output_dir(out)
    (out / "result.txt").write_text("x")
    with pytest.raises(SsalInputError, match="not empty"):
        check_output_dir(out)


def test_lock_survives_its_directory_removed_by_a_refused_racer(tmp_path, monkeypatch):
    """A racer that created the directory and was refused removes it (it is empty) between this
    process's mkdir and its open of the lock: the lock creates the directory again."""
    import ssal.outputs as outputs

    out = tmp_path / "run"
    real_open = os.open
    calls = []

    def racing_open(path, flags, *args):
        if Path(path) == out / LOCK_NAME and flags & os.O_CREAT and not calls:
            calls.append(path)
            out.rmdir()  # the racer's clean-up lands first
        return real_open(path, flags, *args)

    monkeypatch.setattr(outputs.os, "open", racing_open)
    with output_lock(out, directory=True) as lock:
        assert calls and lock.is_file()
    assert not out.exists()  # created again by this lock, left empty: removed on release
    # A file lock whose folder vanished is an error naming the lock, not a retry.
    with pytest.raises(SsalInputError, match="cannot create the lock file"):
        with output_lock(tmp_path / "gone" / "x.csv"):
            pass


def test_lock_held_by_another_live_process_refuses(tmp_path):
    out = tmp_path / "x.csv"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = lock_file(out)
        assert lock.name == "x.csv.lock"
        lock.write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname(), "started": "now"}))
        with pytest.raises(SsalInputError) as exc:
            with output_lock(out):
                pass
        line = exc.value.one_line()
        assert f"pid {holder.pid}" in line and "another ssal process" in line and str(lock) in line
        with pytest.raises(SsalInputError, match="another ssal process"):
            check_output_file(out)
        with pytest.raises(SsalInputError, match="another ssal process"):
            check_unlocked(out)
        assert lock.exists()
    finally:
        holder.kill()
        holder.wait()


def test_stale_lock_is_recovered(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead = int(done.stdout)
    out = tmp_path / "run"
    out.mkdir()
    (out / LOCK_NAME).write_text(json.dumps({"pid": dead, "host": socket.gethostname(), "started": "then"}))
    check_output_dir(out)  # a stale lock is no holder and no content
    with output_lock(out, directory=True) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert not (out / LOCK_NAME).exists()


def test_lock_of_another_host_is_kept(tmp_path):
    out = tmp_path / "x.npz"
    lock = lock_file(out)
    lock.write_text(json.dumps({"pid": 1, "host": socket.gethostname() + "-elsewhere", "started": "now"}))
    with pytest.raises(SsalInputError, match="-elsewhere"):
        with output_lock(out):
            pass


def test_secondary_torchrun_ranks_take_no_lock(tmp_path, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setenv("RANK", "1")
    with output_lock(out, directory=True) as lock:
        assert lock is None
    assert not out.exists()


# ---------------------------------------------------------------------------------------------
# The commands: nothing is written over what they read, special files, --overwrite

TINY = ["--method", "skeletonclr", "--epochs", "1", "--set", "data.builtin_n=96", "--set", "train.batch_size=16",
        "--set", "model.queue_size=40", "--set", "model.encoder.channels=[8,16]",
        "--set", "model.encoder.strides=[1,2]", "--set", "model.augment.general.clip_len=20",
        "--set", "run.knn_every=0", "--no-progress"]


def _cli(argv, capsys) -> tuple[int, str, str]:
    from ssal.cli.main import main

    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(argv, capsys, *needles: str) -> str:
    rc, _, err = _cli(argv, capsys)
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from ssal.cli.main import main

    run = tmp_path_factory.mktemp("guard") / "pre"
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["pretrain", *TINY, "--out", str(run)]) == 0
    return run / "encoder.pt"


def test_embed_never_replaces_its_input(encoder, tmp_path, capsys):
    import numpy as np

    x = tmp_path / "walk.npy"
    np.save(x, np.random.default_rng(0).normal(size=(40, 17, 3)).astype(np.float32))
    before = x.read_bytes()
    line = _refused(["embed", "--checkpoint", encoder, x, "--out", x, "--overwrite"], capsys, "is the input")
    assert str(x) in line and x.read_bytes() == before
    # the checkpoint is an input too, also under another name (a hard link: the same inode)
    ck_before = encoder.read_bytes()
    alias = tmp_path / "ck.npy"
    os.link(encoder, alias)
    _refused(["embed", "--checkpoint", encoder, x, "--out", alias, "--overwrite"], capsys, "is the input")
    assert encoder.read_bytes() == ck_before


def test_embed_overwrite_and_special_files(encoder, tmp_path, capsys):
    feats = tmp_path / "feats.npy"
    rc, _, err = _cli(["embed", "--checkpoint", encoder, "builtin", "--out", feats], capsys)
    assert rc == 0, err
    first = feats.read_bytes()
    _refused(["embed", "--checkpoint", encoder, "builtin", "--out", feats], capsys, "pass --overwrite")
    assert feats.read_bytes() == first
    rc, _, err = _cli(["embed", "--checkpoint", encoder, "builtin", "--out", feats, "--overwrite"], capsys)
    assert rc == 0, err
    fifo = tmp_path / "pipe.npy"
    os.mkfifo(fifo)
    _refused(["embed", "--checkpoint", encoder, "builtin", "--out", fifo, "--overwrite"], capsys, "not a regular file")
    assert fifo.is_fifo()
    _refused(["show", "builtin", "--out", os.devnull, "--overwrite"], capsys)
    assert Path(os.devnull).is_char_device()


def test_predict_never_replaces_the_folders_labels(encoder, tmp_path, capsys):
    folder = tmp_path / "bvh"
    folder.mkdir()
    labels = folder / "labels.csv"
    labels.write_text("name,label\nwalk,happy\n")
    before = labels.read_bytes()
    line = _refused(["predict", "--checkpoint", encoder, folder, "--out", labels, "--overwrite"], capsys,
                    "inside the input folder")
    assert str(labels) in line and str(folder) in line and labels.read_bytes() == before
    _refused(["predict", "--checkpoint", encoder, folder, "--out", folder / "walk.json"], capsys,
             "inside the input folder")
    assert sorted(p.name for p in folder.iterdir()) == ["labels.csv"]


def test_data_commands_guard_their_sources(tmp_path, capsys):
    src = tmp_path / "src.npz"
    rc, _, err = _cli(["data", "synth", "--n", "12", "--out", src], capsys)
    assert rc == 0, err
    before = src.read_bytes()
    _refused(["data", "synth", "--n", "12", "--out", src], capsys, "pass --overwrite")
    assert src.read_bytes() == before
    corpus = tmp_path / "c.ssal"
    rc, _, err = _cli(["data", "convert", src, "--out", corpus], capsys)
    assert rc == 0, err
    meta = (corpus / "meta.json").read_bytes()
    _refused(["data", "convert", corpus, "--out", corpus, "--overwrite"], capsys, "is the input")
    link = tmp_path / "link.ssal"
    link.symlink_to(corpus)
    _refused(["data", "convert", corpus, "--out", link, "--overwrite"], capsys, "is the input")
    _refused(["data", "convert", corpus, "--out", corpus / "inner.ssal"], capsys, "inside the input folder")
    assert (corpus / "meta.json").read_bytes() == meta
    gif = tmp_path / "a.gif"
    rc, _, err = _cli(["show", src, "--out", gif], capsys)
    assert rc == 0, err
    _refused(["show", src, "--out", gif], capsys, "pass --overwrite")
    rc, _, err = _cli(["show", src, "--out", gif, "--overwrite"], capsys)
    assert rc == 0, err


def test_supervised_refuses_a_bad_split_before_writing(tmp_path, capsys):
    from ssal.data.splits import save_split

    bad = tmp_path / "bad.json"
    save_split({"train": [0, 1, 2], "val": [3], "test": [10**6]}, bad)
    out = tmp_path / "sup"
    _refused(["supervised", "--split", bad, "--out", out, "--epochs", "1", "--set", "data.builtin_n=96"], capsys)
    assert not out.exists()
