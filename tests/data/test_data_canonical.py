"""Canonical .ssal format: round trip, memmap, float16, chunked writer, atomicity, validation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ssal.data.canonical import CanonicalWriter, read_canonical, write_canonical
from ssal.data.dataset import GaitDataset
from ssal.data.io import load_dataset, save_dataset
from ssal.errors import SsalInputError

CLASSES = ["happy", "angry", "sad", "neutral"]


def small(n=6, t=10):
    rng = np.random.default_rng(3)
    return GaitDataset(
        x=rng.normal(size=(n, 3, t, 16)).astype(np.float32),
        y=np.array([0, 1, 2, 3, -1, 0][:n]),
        names=[f"s{i}" for i in range(n)],
        lengths=np.arange(n) + 5,
        classes=CLASSES,
        fps=30.0,
        meta={"preprocess": {"center": "first_frame"}, "source": "mem", "seed": np.int64(4)},
    )


def test_roundtrip_memmap(tmp_path):
    ds = small()
    path = save_dataset(ds, tmp_path / "c.ssal")
    back = load_dataset(path)
    assert isinstance(back.x, np.memmap) and not back.x.flags.writeable
    np.testing.assert_array_equal(back.x, ds.x)
    np.testing.assert_array_equal(back.y, ds.y)
    np.testing.assert_array_equal(back.lengths, ds.lengths)
    assert back.names == ds.names and back.classes == CLASSES and back.fps == 30.0
    assert back.meta["preprocess"] == {"center": "first_frame"} and back.meta["seed"] == 4
    sub = back.subset([4, 1])
    assert sub.names == ["s4", "s1"] and sub.y.tolist() == [-1, 1]
    # nothing left behind beside the target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.ssal"]


def test_float16_and_overwrite(tmp_path):
    ds = small()
    write_canonical(ds, tmp_path / "h.ssal", dtype="float16")
    back = read_canonical(tmp_path / "h.ssal")
    assert back.x.dtype == np.float16
    np.testing.assert_allclose(back.x.astype(np.float32), ds.x, atol=2e-3)
    write_canonical(ds.subset([0, 1]), tmp_path / "h.ssal")  # replaces atomically
    assert len(read_canonical(tmp_path / "h.ssal")) == 2
    with pytest.raises(SsalInputError, match="already exists"):
        write_canonical(ds, tmp_path / "h.ssal", overwrite=False)
    with pytest.raises(SsalInputError):
        write_canonical(ds, tmp_path / "d.ssal", dtype="int8")


def test_chunked_writer(tmp_path):
    ds = small(n=6)
    with CanonicalWriter(tmp_path / "w.ssal", n=6, T=10, classes=CLASSES, meta={"source": "gen"}) as w:
        for start in range(0, 6, 4):
            sl = slice(start, start + 4)
            w.append(ds.x[sl], ds.y[sl], ds.names[sl], ds.lengths[sl])
    back = read_canonical(tmp_path / "w.ssal")
    np.testing.assert_array_equal(back.x, ds.x)
    assert back.names == ds.names and back.meta["source"] == "gen"


def test_writer_failure_leaves_nothing(tmp_path):
    ds = small()
    with pytest.raises(RuntimeError):
        with CanonicalWriter(tmp_path / "f.ssal", n=6, T=10, classes=CLASSES) as w:
            w.append(ds.x[:2], ds.y[:2], ds.names[:2])
            raise RuntimeError("generator crashed")
    assert list(tmp_path.iterdir()) == []
    w = CanonicalWriter(tmp_path / "g.ssal", n=6, T=10, classes=CLASSES)
    w.append(ds.x[:2], ds.y[:2], ds.names[:2])
    with pytest.raises(ValueError, match="2 of 6"):
        w.finalize()
    w.abort()
    with pytest.raises(ValueError):
        CanonicalWriter(tmp_path / "k.ssal", n=1, T=10, classes=CLASSES).append(
            np.zeros((1, 3, 9, 16)), [0], ["a"]
        )


def _corrupt(path, what):
    meta_path = path / "meta.json"
    meta = json.loads(meta_path.read_text())
    if what == "version":
        meta["version"] = 99
    elif what == "shape":
        meta["shape"][0] = 7
    elif what == "dtype":
        meta["dtype"] = "float16"
    elif what == "names":
        meta["names"] = meta["names"][:-1]
    elif what == "y":
        np.save(path / "y.npy", np.zeros(3, dtype=np.int64))
    elif what == "x":
        (path / "x.npy").unlink()
    elif what == "json":
        meta_path.write_text("{not json")
        return
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize("what, match", [
    ("version", "version"), ("shape", "shape"), ("dtype", "dtype"), ("names", "names"),
    ("y", "y"), ("x", "x.npy"), ("json", "JSON"),
])
def test_validation(tmp_path, what, match):
    path = write_canonical(small(), tmp_path / "v.ssal")
    _corrupt(path, what)
    with pytest.raises(SsalInputError, match=match) as info:
        read_canonical(path)
    assert "v.ssal" in str(info.value)
