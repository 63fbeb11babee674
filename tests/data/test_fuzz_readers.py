"""Hostile input for every reader: each must load or raise SsalInputError, never crash or hang.

Inputs come from the seed files of ``scripts/fuzz_readers.py`` (one small valid file per
format) cut, flipped and overwritten by hypothesis, plus hand-made hostile files: huge declared
shapes (refused before allocating, checked with tracemalloc), NaN/inf, wrong joint counts,
mismatched label keys, non-UTF-8 names, FIFOs, directories and empty files. The CLI turns each
refusal into exit code 2 and one ``error: <path>: <problem>`` line.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import shutil
import signal
import tracemalloc
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.cli.main import main
from ssal.data import preprocess
from ssal.data.egait import write_egait
from ssal.data.io import load_dataset
from ssal.errors import SsalInputError

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("fuzz_readers", ROOT / "scripts" / "fuzz_readers.py")
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)

FILE_KINDS = ["egait", "egait_labels", "bvh", "npz", "pose_npy", "pose_npz"]
HYP = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def seeds(tmp_path_factory) -> dict[str, Path]:
    return fuzz.write_seeds(tmp_path_factory.mktemp("seeds"), seed=0)


@contextmanager
def time_limit(seconds: float):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def fire(_signum, _frame):
        raise TimeoutError(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def outcome(path) -> str:
    """``"loaded"`` (and the data are finite) or ``"refused"`` (SsalInputError); anything else raises."""
    with time_limit(30), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = load_dataset(path)
        except SsalInputError as exc:
            assert "\n" not in str(exc)
            return "refused"
    assert np.isfinite(np.asarray(ds.x, dtype=np.float64)).all()
    assert len(ds) > 0
    return "loaded"


def refused(path, match: str | None = None) -> SsalInputError:
    with time_limit(30), pytest.raises(SsalInputError) as info:
        load_dataset(path)
    if match is not None:
        assert re.search(match, str(info.value)), str(info.value)
    assert "\n" not in str(info.value)
    return info.value


def copy_case(seeds: dict[str, Path], kind: str, dest: Path) -> Path:
    """A private copy of seed ``kind`` (with the E-Gait pair kept together) in ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    if kind in ("egait", "egait_labels"):
        shutil.copy(seeds["egait"], dest / "features.h5")
        shutil.copy(seeds["egait_labels"], dest / "labels.h5")
        return dest / ("features.h5" if kind == "egait" else "labels.h5")
    src = seeds[kind]
    if src.is_dir():
        shutil.copytree(src, dest / src.name)
    else:
        shutil.copy(src, dest / src.name)
    return dest / src.name


# ---------------------------------------------------------------------------------------
# The seeds themselves load
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["egait", "bvh", "bvh_folder", "npz", "pose_npy", "pose_npz", "ssal"])
def test_seed_files_load(seeds, kind):
    assert outcome(seeds[kind]) == "loaded"


# ---------------------------------------------------------------------------------------
# Property-based: truncation, bit flips, overwrites, random bytes
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", FILE_KINDS)
@HYP
@given(cut=st.floats(0.0, 1.0, exclude_max=True))
def test_truncated_files_are_refused_cleanly(seeds, tmp_path_factory, kind, cut):
    case = tmp_path_factory.mktemp("trunc")
    target = copy_case(seeds, kind, case)
    data = target.read_bytes()
    at = int(cut * len(data))
    target.write_bytes(data[:at])
    path = case / "features.h5" if kind == "egait_labels" else target
    result = outcome(path)
    # A cut file misses data and must be refused; only a BVH cut inside its last frame line
    # (e.g. "0.123456" -> "0.1234") is still a well-formed file.
    if kind != "bvh" or at <= data.rstrip(b"\n").rfind(b"\n"):
        assert result == "refused"


@pytest.mark.parametrize("kind", FILE_KINDS + ["ssal_x", "ssal_y", "ssal_meta"])
@HYP
@given(data=st.data())
def test_mutated_files_load_or_refuse(seeds, tmp_path_factory, kind, data):
    case = tmp_path_factory.mktemp("mut")
    if kind.startswith("ssal_"):
        root = copy_case(seeds, "ssal", case)
        target = root / {"ssal_x": "x.npy", "ssal_y": "y.npy", "ssal_meta": "meta.json"}[kind]
        path = root
    else:
        target = copy_case(seeds, kind, case)
        path = case / "features.h5" if kind == "egait_labels" else target
    raw = bytearray(target.read_bytes())
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        if data.draw(st.booleans(), label="flip"):
            raw[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        else:
            chunk = data.draw(st.binary(min_size=1, max_size=16), label="bytes")
            raw[pos:pos + len(chunk)] = chunk
    target.write_bytes(bytes(raw))
    outcome(path)


@pytest.mark.parametrize("suffix", [".h5", ".hdf5", ".bvh", ".npz", ".npy"])
@HYP
@given(blob=st.binary(min_size=0, max_size=2048))
def test_random_bytes_are_refused(tmp_path_factory, suffix, blob):
    path = tmp_path_factory.mktemp("rand") / f"random{suffix}"
    path.write_bytes(blob)
    assert outcome(path) == "refused"


@HYP
@given(values=st.lists(st.sampled_from(fuzz.INTERESTING_NUMBERS), min_size=1, max_size=6), data=st.data())
def test_bvh_numbers_replaced_by_hostile_values(seeds, tmp_path_factory, values, data):
    text = seeds["bvh"].read_text()
    matches = list(re.finditer(r"-?\d+(?:\.\d+)?", text))
    out = text
    chosen = sorted({data.draw(st.integers(0, len(matches) - 1)) for _ in values}, reverse=True)
    for idx, value in zip(chosen, values):
        m = matches[idx]
        out = out[: m.start()] + value + out[m.end():]
    path = tmp_path_factory.mktemp("bvhnum") / "walk.bvh"
    path.write_text(out)
    outcome(path)


# ---------------------------------------------------------------------------------------
# Declared sizes above the limits: refused before allocating
# ---------------------------------------------------------------------------------------


def npy_header(shape, dtype="<f8", pad=64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\x00" * pad


def peak_bytes_while_refusing(path, match) -> int:
    tracemalloc.start()
    try:
        refused(path, match)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _huge_h5(p: Path) -> Path:
    with h5py.File(p, "w") as f:
        f.create_dataset("g", shape=(10**9, 48), dtype="f8", chunks=(1024, 48))
    return p


def _many_sparse_h5(p: Path) -> Path:
    with h5py.File(p, "w") as f:
        for i in range(30):  # each within max_frames, together above MAX_VALUES
            f.create_dataset(f"g{i}", shape=(100_000, 48), dtype="f8", chunks=(1000, 48))
    return p


def _huge_npz(p: Path) -> Path:
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", npy_header((10**9, 3, 75, 16), pad=1 << 20))
    return p


def _huge_npy(p: Path) -> Path:
    p.write_bytes(npy_header((10**8, 17, 3)))
    return p


def _huge_bvh(p: Path, seeds) -> Path:
    p.write_text(re.sub(r"Frames: \d+", "Frames: 1000000000", seeds["bvh"].read_text()))
    return p


def _huge_labels(p: Path) -> Path:
    write_egait(p, None, [fuzz.walker(np.random.default_rng(0), 6)], None, ["k"])
    with h5py.File(p.with_name("labels_big.h5"), "w") as f:
        f.create_dataset("k", shape=(10**9,), dtype="i8", chunks=(4096,))
    return p


@pytest.mark.parametrize("case", ["h5", "h5_many", "npz", "npy", "bvh", "ssal_y", "labels"])
def test_huge_declared_sizes_refused_before_allocating(seeds, tmp_path, case):
    if case == "h5":
        path, match = _huge_h5(tmp_path / "big.h5"), "1000000000 frames, more than the limit"
    elif case == "h5_many":
        path, match = _many_sparse_h5(tmp_path / "many.h5"), "MAX_VALUES"
    elif case == "npz":
        path, match = _huge_npz(tmp_path / "big.npz"), "MAX_VALUES"
    elif case == "npy":
        path, match = _huge_npy(tmp_path / "big.npy"), "MAX_VALUES"
    elif case == "bvh":
        path, match = _huge_bvh(tmp_path / "big.bvh", seeds), "MAX_VALUES"
    elif case == "labels":
        path, match = _huge_labels(tmp_path / "features_big.h5"), "label must be one integer"
    else:
        path = copy_case(seeds, "ssal", tmp_path)
        (path / "y.npy").write_bytes(npy_header((10**12,), "<i8"))
        match = "y.npy has shape"
    peak = peak_bytes_while_refusing(path, match)
    assert peak < 64 * 2**20, f"peak {peak / 2**20:.1f} MiB while refusing {case}"


def test_limits_are_module_settings(seeds, monkeypatch):
    # The documented knob works both ways: a lower limit refuses the valid seed.
    assert outcome(seeds["npz"]) == "loaded"
    monkeypatch.setattr(preprocess, "MAX_VALUES", 100)
    refused(seeds["npz"], "more than the limit of 100")
    refused(seeds["egait"], "more than the limit of 100")
    refused(seeds["bvh"], "more than the limit of 100")


# ---------------------------------------------------------------------------------------
# Hand-made hostile inputs, one property each
# ---------------------------------------------------------------------------------------


def test_nan_inf_and_huge_values_refused(tmp_path):
    rng = np.random.default_rng(0)
    for i, bad in enumerate([np.nan, np.inf, -np.inf, 1e300]):
        s = fuzz.walker(rng, 8)
        s[3, 2, 1] = bad
        write_egait(tmp_path / f"f{i}.h5", None, [s], None, ["a"])
        refused(tmp_path / f"f{i}.h5", "NaN or inf|larger than")
        np.save(tmp_path / f"p{i}.npy", np.where(np.arange(17)[None, :, None] == 4, bad, fuzz.h36m_walker(rng, 8)))
        refused(tmp_path / f"p{i}.npy", "NaN or inf|larger than")
        x = fuzz.walker(rng, 8)[None].transpose(0, 3, 1, 2).copy()
        x[0, 1, 2, 3] = bad
        np.savez(tmp_path / f"n{i}.npz", x=x)
        refused(tmp_path / f"n{i}.npz", "NaN or inf|larger than")


def test_zero_frames_and_wrong_joint_counts(tmp_path):
    write_egait(tmp_path / "zero.h5", None, [np.zeros((0, 16, 3))], None, ["a"])
    refused(tmp_path / "zero.h5", "0 frame")
    write_egait(tmp_path / "j15.h5", None, [np.zeros((8, 15, 3))], None, ["a"])
    refused(tmp_path / "j15.h5", "wrong joint count")
    np.savez(tmp_path / "j15.npz", x=np.zeros((2, 3, 8, 15)))
    refused(tmp_path / "j15.npz", "axis order|joints")
    np.savez(tmp_path / "t0.npz", x=np.zeros((2, 3, 0, 16)))
    refused(tmp_path / "t0.npz", "frame")
    np.savez(tmp_path / "n0.npz", x=np.zeros((0, 3, 8, 16)))
    refused(tmp_path / "n0.npz", "no sequences")
    np.save(tmp_path / "p16.npy", np.zeros((8, 16, 3)))
    refused(tmp_path / "p16.npy", "expected a")


def test_label_keys_mismatched_or_missing(tmp_path):
    rng = np.random.default_rng(1)
    seqs = [fuzz.walker(rng, 8), fuzz.walker(rng, 9)]
    write_egait(tmp_path / "features.h5", tmp_path / "labels.h5", seqs, [0, 1], ["k1", "k2"])
    with h5py.File(tmp_path / "labels.h5", "w") as f:
        f.create_dataset("k1", data=np.int64(0))
        f.create_dataset("other", data=np.int64(1))
    refused(tmp_path / "features.h5", "no label for key 'k2'")
    with h5py.File(tmp_path / "labels.h5", "w") as f:
        f.create_dataset("k1", data=np.int64(0))
        f.create_dataset("k2", data=np.array([b"happy"]))
    refused(tmp_path / "features.h5", "label must be one integer")
    with h5py.File(tmp_path / "labels.h5", "w") as f:
        f.create_dataset("k1", data=np.int64(0))
        f.create_dataset("k2", data=np.float64(np.nan))
    refused(tmp_path / "features.h5", "not an integer")
    # suffix labels on only some keys
    write_egait(tmp_path / "mixed.h5", None, seqs, None, ["001_Happy", "002"])
    refused(tmp_path / "mixed.h5", "no emotion suffix")
    # npz labels that do not fit
    x = np.stack(seqs[:1] * 2).transpose(0, 3, 1, 2)[:, :, :8]
    np.savez(tmp_path / "y.npz", x=x, y=np.array([0]))
    refused(tmp_path / "y.npz", "'y' has 1 entries")
    np.savez(tmp_path / "y2.npz", x=x, y=np.array([0, 9]))
    refused(tmp_path / "y2.npz", "label 9 outside")


def test_hdf5_non_numeric_groups_and_non_utf8_keys(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("g", data=np.array([["a"] * 48] * 5, dtype="S3"))
    refused(tmp_path / "s.h5", "expected numbers")
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f.create_group("grp")
    refused(tmp_path / "g.h5", "is a group")
    walk = fuzz.walker(np.random.default_rng(2), 8).reshape(8, 48)
    with h5py.File(tmp_path / "k.h5", "w") as f:
        f.create_dataset(b"\xff\xfe_key", data=walk)
        f.create_dataset("002_Happy", data=walk)
    refused(tmp_path / "k.h5", "no emotion suffix")  # a bytes key used to crash label_from_key
    with h5py.File(tmp_path / "k2.h5", "w") as f:
        f.create_dataset(b"\xff\xfe_key", data=walk)
    ds = load_dataset(tmp_path / "k2.h5")
    assert ds.names == ["\\xff\\xfe_key"]


def test_npz_oddities(tmp_path):
    with zipfile.ZipFile(tmp_path / "raw.npz", "w") as z:
        z.writestr("x", b"not an array")
    refused(tmp_path / "raw.npz", "not a .npy array")
    np.savez(tmp_path / "scalar.npz", x=np.zeros((2, 3, 8, 16)), names=np.array(5))
    refused(tmp_path / "scalar.npz", "'names' must be a 1-D array")
    np.savez(tmp_path / "complex.npz", x=np.ones((2, 3, 8, 16), dtype=complex))
    refused(tmp_path / "complex.npz", "real numbers")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused(tmp_path / "obj.npy", "Python objects")
    (tmp_path / "pickle.npy").write_bytes(b"\x80\x04\x95" + b"\x00" * 40)
    refused(tmp_path / "pickle.npy", "not a NumPy")
    with zipfile.ZipFile(tmp_path / "bad_header.npz", "w") as z:
        z.writestr("x.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f8', ")
    refused(tmp_path / "bad_header.npz", "header")


def test_bvh_hostile_headers_do_not_hang(seeds, tmp_path):
    text = seeds["bvh"].read_text()
    cases = {
        "neg_channels": text.replace("CHANNELS 3", "CHANNELS -2", 1),  # used to loop forever
        "neg_channels5": text.replace("CHANNELS 3", "CHANNELS -5", 1),
        "inf_time": re.sub(r"Frame Time: \S+", "Frame Time: inf", text),
        "big_time": re.sub(r"Frame Time: \S+", "Frame Time: 1e308", text),
        "tiny_time": re.sub(r"Frame Time: \S+", "Frame Time: 1e-320", text),
        "huge_frames": re.sub(r"Frames: \d+", "Frames: 1" + "0" * 400, text),
        "neg_frames": re.sub(r"Frames: \d+", "Frames: -5", text),
        "nan_offset": text.replace("OFFSET 0.000000 10.000000 0.000000", "OFFSET nan 10 0", 1),
        "two_roots": text.replace("MOTION", "ROOT X { OFFSET 0 0 0 }\nMOTION", 1),
    }
    joints = "\n".join(f"JOINT J{i} {{ OFFSET 0 0 0 }}" for i in range(3000))
    cases["many_joints"] = f"HIERARCHY\nROOT Hips\n{{\nOFFSET 0 0 0\nCHANNELS 1 Xposition\n{joints}\n}}\nMOTION\nFrames: 4\nFrame Time: 0.03\n0\n0\n0\n0\n"
    for name, content in cases.items():
        p = tmp_path / f"{name}.bvh"
        p.write_text(content)
        with time_limit(10):
            refused(p)


def test_bvh_folder_csv_labels(seeds, tmp_path):
    folder = tmp_path / "mocap"
    shutil.copytree(seeds["bvh_folder"], folder)
    for bad in ("a.bvh,--1\nb.bvh,0\n", "a.bvh,\u00b2\nb.bvh,0\n", "a.bvh,99999999999999999999\nb.bvh,0\n",
                "a.bvh,0\nb.bvh,0\nc.bvh,1\n", "a.bvh,0\n"):
        (folder / "labels.csv").write_text(bad, encoding="utf-8")
        refused(folder)
    (folder / "labels.csv").write_bytes(b"a.bvh,\xff\xfe\nb.bvh,0\n")
    refused(folder, "not UTF-8")
    (folder / "labels.csv").write_bytes(b"a.bvh,0\x00\nb.bvh,0\n")
    refused(folder)


def test_canonical_meta_oddities(seeds, tmp_path):
    edits = {
        "meta_list": lambda m: m.update(meta=[1, 2]),
        "nan_fps": lambda m: m.update(fps=float("nan")),
        "zero_fps": lambda m: m.update(fps=0),
        "inf_shape": lambda m: m.update(shape=[2, 3, float("inf"), 16]),
        "str_shape": lambda m: m.update(shape="2,3,8,16"),
        "names_dict": lambda m: m.update(names={"a": 1}),
        "names_short": lambda m: m.update(names=["s0"]),
        "bool_version": lambda m: m.update(version=True),
        "dtype": lambda m: m.update(dtype="float64"),
        "layout": lambda m: m.update(layout="nope"),
        "no_shape": lambda m: m.pop("shape"),
    }
    for i, edit in enumerate(edits.values()):
        root = copy_case(seeds, "ssal", tmp_path / str(i))
        meta = json.loads((root / "meta.json").read_text())
        edit(meta)
        (root / "meta.json").write_text(json.dumps(meta))
        refused(root)
    root = copy_case(seeds, "ssal", tmp_path / "deep")
    (root / "meta.json").write_text("[" * 100_000 + "]" * 100_000)
    refused(root)
    root = copy_case(seeds, "ssal", tmp_path / "inf")
    x = np.load(root / "x.npy")
    x[1, 0, 0, 0] = np.inf
    np.save(root / "x.npy", x)
    refused(root, "NaN or inf values \\(first: sequence 1")
    root = copy_case(seeds, "ssal", tmp_path / "noy")
    (root / "y.npy").unlink()
    refused(root, "missing y.npy")


# ---------------------------------------------------------------------------------------
# Paths: empty files, directories, FIFOs, long and non-UTF-8 names
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".h5", ".bvh", ".npz", ".npy", ".ssal"])
def test_empty_files_and_directories(tmp_path, suffix):
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    refused(empty)
    d = tmp_path / f"dir{suffix}"
    d.mkdir()
    refused(d)


def test_fifo_and_long_names_do_not_hang(tmp_path):
    fifo = tmp_path / "pipe.bvh"
    os.mkfifo(fifo)
    refused(fifo, "not a regular file")
    refused(tmp_path / ("n" * 5000 + ".npz"))
    refused(str(tmp_path / "nul\x00byte.h5"))
    with pytest.raises(SsalInputError):
        load_dataset(12345)


def test_non_utf8_file_names(seeds, tmp_path):
    raw_dir = os.fsencode(str(tmp_path))
    good = raw_dir + b"/walk-\xff\xfe.npz"
    shutil.copy(seeds["npz"], os.fsdecode(good))
    # bytes and surrogate-escaped str both work for a valid file
    assert len(load_dataset(good)) == 4
    assert len(load_dataset(os.fsdecode(good))) == 4
    bad = raw_dir + b"/bad-\xff.h5"
    with open(bad, "wb") as fh:
        fh.write(b"\x89HDF\r\n\x1a\n" + b"\x00" * 100)
    for source in (bad, os.fsdecode(bad)):
        err = refused(source)
        text = str(err)
        text.encode("utf-8")  # printable: the undecodable byte is escaped, no lone surrogate
        assert "\\udcff" in text or "\\xff" in text
    refused(raw_dir + b"/missing-\xff.bvh", "not found")


# ---------------------------------------------------------------------------------------
# The CLI: exit code 2, one line on stderr, no traceback
# ---------------------------------------------------------------------------------------


def _cli_hostile_paths(seeds, tmp_path) -> list[str]:
    paths = []
    for kind in ("egait", "bvh", "npz", "pose_npy"):
        data = seeds[kind].read_bytes()
        p = tmp_path / f"cut_{seeds[kind].name}"
        p.write_bytes(data[: len(data) // 2])
        paths.append(str(p))
    root = copy_case(seeds, "ssal", tmp_path / "c")
    (root / "meta.json").write_text("{not json")
    paths.append(str(root))
    paths.append(str(_huge_h5(tmp_path / "big.h5")))
    paths.append(str(_huge_npz(tmp_path / "big.npz")))
    (tmp_path / "e.bvh").write_bytes(b"")
    paths.append(str(tmp_path / "e.bvh"))
    paths.append(str(tmp_path / "missing.npz"))
    paths.append(str(tmp_path / "x.unknown"))
    bad = os.fsencode(str(tmp_path)) + b"/bad-\xff.npy"
    with open(bad, "wb") as fh:
        fh.write(b"garbage")
    paths.append(os.fsdecode(bad))  # how sys.argv holds a non-UTF-8 name
    return paths


def test_cli_data_info_refuses_hostile_input(seeds, tmp_path, capsys):
    for path in _cli_hostile_paths(seeds, tmp_path):
        with time_limit(30):
            code = main(["data", "info", path])
        captured = capsys.readouterr()
        assert code == 2, path
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
        assert "Traceback" not in captured.err
        shown = os.fsdecode(path).encode("utf-8", "backslashreplace").decode()
        assert lines[0].startswith(f"error: {shown}"), (lines[0], shown)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(blob=st.binary(max_size=512), suffix=st.sampled_from([".h5", ".bvh", ".npz", ".npy"]))
def test_cli_random_bytes(tmp_path_factory, capsys, blob, suffix):
    path = tmp_path_factory.mktemp("cli") / f"r{suffix}"
    path.write_bytes(blob)
    assert main(["data", "info", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ")


def test_fuzz_script_covers_checkpoints_and_split_files(capsys):
    # A short run of the fuzzer's checkpoint / split-file stream (the long run is in the
    # closing note of issue 15): every mutated checkpoint and split file loads or is refused.
    code = fuzz.main(["--iterations", "60", "--seed", "1", "--no-hostile", "--model-share", "1.0",
                      "--memory-gb", "0", "--timeout", "60"])
    out = capsys.readouterr().out
    assert code == 0, out[-3000:]
    assert "0 crash(es)" in out and "60 mutated checkpoints/split files" in out
