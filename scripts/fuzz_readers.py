#!/usr/bin/env python
"""Fuzz every dataset reader of ssal, checkpoints and split files with mutated and hostile inputs.

The script writes one small valid file of each supported format (E-Gait HDF5 + labels, BVH,
a folder of BVH + labels.csv, ``.npz`` dataset, pose ``.npy`` and ``.npz``, canonical
``.ssal`` directory), then feeds ``ssal.data.load_dataset`` with mutations of them: bit flips,
random overwrites, truncations at random offsets, insertions, deletions, splices of two files,
numbers replaced by NaN/inf/huge/negative values (text formats), random bytes and empty files,
plus a fixed list of hand-made hostile inputs (huge declared shapes, negative channel counts,
...). Checkpoints (a tiny ``classifier.pt``, ``encoder.pt`` and a pretraining run's
``checkpoint.pt``) are mutated byte-wise and field-wise (any field set to a value of another
type or size, removed, or a weight replaced by a tensor of another shape or dtype) and loaded as
``ssal predict`` / ``--resume`` do; split files (``split.json``) are mutated as JSON and as
bytes and read with :func:`ssal.data.splits.load_split`. Settings files (``--config``, joint
maps; alias bombs included), exported ONNX models and output paths are the third stream
(``scripts/fuzz_settings.py``, share ``--settings-share``). With ``--cli-cases`` the hand-made
cases of ``scripts/hostile_cases.py`` (issue 15) run first through the command line.
Every input must either load or raise :class:`ssal.errors.SsalInputError`; anything else
(another exception, a hang past ``--timeout`` seconds, a ``MemoryError`` under the address
space limit ``--memory-gb``) is a crash, printed with the input's description and saved under
``--crash-dir`` when given.

Usage::

    python scripts/fuzz_readers.py --iterations 20000 --seed 0
    python scripts/fuzz_readers.py --seconds 300 --seed 1 --crash-dir /tmp/crashes
    python scripts/fuzz_readers.py --iterations 100000 --cli-cases --log fuzz.log

Exit status: 0 when no crash was found, 1 otherwise.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ssal.data.bvh import write_bvh
from ssal.data.egait import write_egait
from ssal.data.io import load_dataset, save_dataset
from ssal.data.npz import write_npz
from ssal.data.preprocess import PreprocessConfig, sequences_to_dataset
from ssal.errors import SsalInputError

# ---------------------------------------------------------------------------------------
# Valid seed files
# ---------------------------------------------------------------------------------------

#: A BVH rig whose joint names map onto E-Gait-16 (parents first).
BVH_RIG = [
    ("Hips", -1, (0, 0, 0)), ("Spine", 0, (0, 10, 0)), ("Neck", 1, (0, 10, 0)), ("Head", 2, (0, 5, 0)),
    ("LeftArm", 2, (6, 0, 0)), ("LeftForeArm", 4, (10, 0, 0)), ("LeftHand", 5, (8, 0, 0)),
    ("RightArm", 2, (-6, 0, 0)), ("RightForeArm", 7, (-10, 0, 0)), ("RightHand", 8, (-8, 0, 0)),
    ("LeftUpLeg", 0, (4, 0, 0)), ("LeftLeg", 10, (0, -18, 0)), ("LeftFoot", 11, (0, -17, 0)),
    ("RightUpLeg", 0, (-4, 0, 0)), ("RightLeg", 13, (0, -18, 0)), ("RightFoot", 14, (0, -17, 0)),
]


def walker(rng: np.random.Generator, frames: int, joints: int = 16) -> np.ndarray:
    """A plausible ``(T, V, 3)`` E-Gait-16 walker (standing pose, moving forward, some noise)."""
    base = np.array([
        [0, 1.0, 0], [0, 1.25, 0], [0, 1.5, 0], [0, 1.7, 0],
        [0.2, 1.45, 0], [0.25, 1.15, 0], [0.28, 0.9, 0],
        [-0.2, 1.45, 0], [-0.25, 1.15, 0], [-0.28, 0.9, 0],
        [0.1, 0.95, 0], [0.1, 0.5, 0], [0.1, 0.05, 0],
        [-0.1, 0.95, 0], [-0.1, 0.5, 0], [-0.1, 0.05, 0],
    ])
    if joints != 16:
        base = rng.normal(size=(joints, 3))
    t = np.arange(frames)[:, None, None]
    seq = base[None] + np.array([0, 0, 0.04])[None, None] * t + rng.normal(scale=0.01, size=(frames, joints, 3))
    return seq


def h36m_walker(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A ``(T, 17, 3)`` Human3.6M-17 walker built from the E-Gait walker."""
    e = walker(rng, frames)
    out = np.zeros((frames, 17, 3))
    # H36M17 index of each E-Gait joint (see ssal.skeleton.H36M17_TO_EGAIT16)
    idx = (0, 7, 8, 10, 11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3)
    out[:, list(idx)] = e
    out[:, 9] = e[:, 3] + np.array([0, 0, 0.1])  # nose
    return out


def write_seeds(root: Path, seed: int = 0) -> dict[str, Path]:
    """Write one small valid input of each format under ``root``; returns ``{kind: path}``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    seeds: dict[str, Path] = {}

    names = [f"{i:03d}_gait" for i in range(3)]
    seqs = [walker(rng, int(t)) for t in (8, 12, 20)]
    write_egait(root / "features.h5", root / "labels.h5", seqs, [0, 1, 3], names)
    seeds["egait"] = root / "features.h5"
    seeds["egait_labels"] = root / "labels.h5"

    joints = [r[0] for r in BVH_RIG]
    parents = [r[1] for r in BVH_RIG]
    offsets = np.array([r[2] for r in BVH_RIG], dtype=float)
    motion = np.zeros((10, 6 + 3 * (len(BVH_RIG) - 1)))
    motion[:, 1] = 40.0
    motion[:, 2] = np.arange(10) * 2.0
    motion[:, 6:] = rng.normal(scale=5.0, size=(10, motion.shape[1] - 6))
    write_bvh(root / "walk.bvh", joints, parents, offsets, motion, 1 / 30)
    seeds["bvh"] = root / "walk.bvh"
    folder = root / "mocap"
    folder.mkdir(exist_ok=True)
    write_bvh(folder / "a.bvh", joints, parents, offsets, motion, 1 / 30)
    write_bvh(folder / "b.bvh", joints, parents, offsets, motion[::-1].copy(), 1 / 60)
    (folder / "labels.csv").write_text("file,label\na.bvh,happy\nb,2\n", encoding="utf-8")
    seeds["bvh_folder"] = folder

    x = np.stack([walker(rng, 10) for _ in range(4)]).transpose(0, 3, 1, 2)  # (N, C, T, V)
    write_npz(root / "data.npz", x, np.array([0, 1, -1, 2]), names=["a", "b", "c", "d"],
              lengths=np.array([10, 8, 6, 10]), classes=["happy", "angry", "sad", "neutral"], compressed=False)
    seeds["npz"] = root / "data.npz"

    np.save(root / "pose.npy", h36m_walker(rng, 9))
    seeds["pose_npy"] = root / "pose.npy"
    np.savez(root / "poses.npz", walk1=h36m_walker(rng, 7), walk2=h36m_walker(rng, 11))
    seeds["pose_npz"] = root / "poses.npz"

    ds = sequences_to_dataset([walker(rng, 6), walker(rng, 9)], [1, -1], ["s0", "s1"],
                              ["happy", "angry", "sad", "neutral"], config=PreprocessConfig(length=8))
    save_dataset(ds, root / "corpus.ssal")
    seeds["ssal"] = root / "corpus.ssal"
    return seeds


#: Dataset size the fuzzed split files are checked against.
SPLIT_N = 12


def write_model_seeds(root: Path) -> dict[str, Path]:
    """A tiny ``classifier.pt``, ``encoder.pt``, a run's ``checkpoint.pt`` and a ``split.json``."""
    import torch

    from ssal.checkpoint import save_checkpoint
    from ssal.config import resolve_config
    from ssal.data.splits import save_split
    from ssal.inference import save_classifier
    from ssal.methods.moco import build_learner
    from ssal.models import build_encoder
    from ssal.models.base import BackboneFeatures
    from ssal.models.heads import LinearClassifier
    from ssal.skeleton import EGAIT16

    root.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    cfg = {"name": "stgcn", "base_channels": 4, "num_layers": 2, "hidden_dim": None}
    enc = build_encoder(cfg, EGAIT16)
    feats = BackboneFeatures(enc)
    classes = ["happy", "angry", "sad", "neutral"]
    pre = PreprocessConfig(length=16).to_dict()
    seeds = {"classifier": root / "classifier.pt", "encoder_pt": root / "encoder.pt", "run_ckpt": root / "checkpoint.pt",
             "split": root / "split.json"}
    save_classifier(seeds["classifier"], feats, LinearClassifier(feats.out_dim, 4), encoder_config=cfg,
                    layout=EGAIT16, classes=classes, preprocess=pre, clip_len=16, protocol="linear")
    save_checkpoint({"stage": "pretrain", "config": None, "encoder_config": cfg, "layout": "egait16",
                     "classes": classes, "preprocess": pre, "clip_len": 16,
                     "encoder": {k: v.detach().clone() for k, v in enc.state_dict().items()}}, seeds["encoder_pt"])
    config = resolve_config("skeletonclr", overrides=["model.queue_size=16", "model.encoder.channels=[4,8]",
                                                      "model.encoder.strides=[1,2]"])
    learner = build_learner(config["model"], EGAIT16)
    opt = torch.optim.SGD(learner.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0)
    save_checkpoint({"config": config, "layout": "egait16", "classes": classes, "epoch": 1, "step_in_epoch": 0,
                     "global_step": 3, "model": learner.state_dict(), "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict(), "rng": {"torch": torch.get_rng_state()},
                     "aug_generator": torch.Generator().get_state(), "history": [{"epoch": 1, "loss": 1.0}]},
                    seeds["run_ckpt"])
    save_split({"train": list(range(8)), "val": [8, 9], "test": [10, 11]}, seeds["split"], meta={"seed": 0})
    return seeds


def _hostile_values():
    import torch

    return [None, -1, 0, 1, 3, 2**31, 10**9, 2**70, -2**63, 1.5, float("nan"), float("inf"), -1e308, 1e-308,
            "", "x", "egait16", "h36m17", "cffn", "stgcn", "backbone", "\n\x1b[31m\x07", "a" * 5000, [], [1], [0, 0],
            ["a", "b"], [None], {}, {"a": 1}, {"name": "stgcn"}, True, False, torch.zeros(0), torch.zeros(3, 3),
            torch.ones(2, dtype=torch.int64), torch.tensor(5), torch.zeros(4, 1, 1, 1), torch.zeros(2, dtype=torch.uint8),
            torch.zeros(2, 2, dtype=torch.float16), torch.zeros(2, dtype=torch.bool), [[[[[1]]]]],
            {"fc.weight": torch.zeros(4, 3)}, 10**6, 100_000, -0.0]


def _tree_slots(node, depth: int = 0, out=None):
    """Every (container, key) pair of a checkpoint tree, down to depth 4."""
    out = [] if out is None else out
    if depth > 4:
        return out
    if isinstance(node, dict):
        for k in list(node):
            out.append((node, k))
            _tree_slots(node[k], depth + 1, out)
    elif isinstance(node, list):
        for i in range(min(len(node), 8)):
            out.append((node, i))
            _tree_slots(node[i], depth + 1, out)
    return out


def mutate_checkpoint(rng: random.Random, state: dict) -> tuple[dict, str]:
    """One field-level mutation of a loaded checkpoint (in place): a value of another type or
    size, a removed key, an added key, or a weight of another shape/dtype."""
    import torch

    slots = _tree_slots(state)
    container, key = rng.choice(slots)
    action = rng.random()
    if action < 0.15 and isinstance(container, dict):
        del container[key]
        return state, f"drop {key!r}"
    if action < 0.25 and isinstance(container.get(key) if isinstance(container, dict) else None, torch.Tensor):
        t = container[key]
        shape = [rng.choice([0, 1, 2, 3, 7]) for _ in range(rng.randint(0, 4))]
        dtype = rng.choice([torch.float32, torch.float64, torch.int64, torch.uint8, torch.float16, torch.bool])
        container[key] = torch.zeros(shape, dtype=dtype)
        return state, f"tensor {key!r} {tuple(t.shape)} -> {shape} {dtype}"
    if action < 0.3 and isinstance(container, dict):
        container[rng.choice(["extra", "clip_len", "feature", "head", "preprocess", "fc.weight", 5])] = rng.choice(
            _hostile_values())
        return state, "add a key"
    value = rng.choice(_hostile_values())
    container[key] = value
    return state, f"set {key!r} = {str(value)[:40]!r}"


def mutate_split(rng: random.Random, text: str) -> tuple[str, str]:
    """Structure-aware mutation of a split file."""
    doc = json.loads(text)
    hostile = [None, -1, 0, 2**70, "1", "", [], {}, [1.5], [True], [-3], [10**30], [[0]], {"a": [0]}, 1e308,
               list(range(20)), [0] * 30, "one", 2, 3, "ssal-split"]
    kind = rng.random()
    if kind < 0.15:
        return "[" * rng.choice([10, 1000, 100_000]) + "]" * rng.choice([0, 10, 100_000]), "deep nesting"
    if kind < 0.25:
        part = rng.choice(["train", "val", "test"])
        return text.replace(f'"{part}": [', f'"{part}": [1{"0" * rng.choice([20, 400, 5000])}, ', 1), "huge integer"
    if kind < 0.4:
        doc.pop(rng.choice(list(doc)), None)
        if "parts" in doc and isinstance(doc["parts"], dict) and rng.random() < 0.5:
            doc["parts"].pop(rng.choice(["train", "val", "test"]), None)
        return json.dumps(doc), "drop a key"
    if kind < 0.7 and isinstance(doc.get("parts"), dict):
        part = rng.choice(list(doc["parts"]) or ["train"])
        values = doc["parts"].get(part) or []
        if values and rng.random() < 0.5:
            values[rng.randrange(len(values))] = rng.choice(hostile)
            doc["parts"][part] = values
        else:
            doc["parts"][part] = rng.choice(hostile)
        return json.dumps(doc, allow_nan=True), f"part {part!r} mutated"
    key = rng.choice(["format", "version", "parts", "meta", "extra"])
    doc[key] = rng.choice(hostile)
    return json.dumps(doc, allow_nan=True), f"set {key!r}"


# ---------------------------------------------------------------------------------------
# Mutations
# ---------------------------------------------------------------------------------------

INTERESTING_NUMBERS = [
    "nan", "-nan", "inf", "-inf", "1e308", "-1e308", "1e999", "0", "-0", "-1", "-2", "-1000000000",
    "1000000000", "99999999999999999999999", "10" * 200, "0.0000000001", "1e-320", "0x10", "1_0", "",
]


def mutate_bytes(rng: random.Random, data: bytes, donors: list[bytes]) -> tuple[bytes, str]:
    """One random byte-level mutation of ``data``; returns the result and its description."""
    n = len(data)
    kind = rng.choice(["flip", "overwrite", "truncate", "insert", "delete", "duplicate", "splice",
                       "zero_run", "ff_run", "multi_flip"])
    if n == 0:
        kind = "insert"
    if kind == "flip":
        i = rng.randrange(n)
        b = bytearray(data)
        b[i] ^= 1 << rng.randrange(8)
        return bytes(b), f"flip bit at {i}"
    if kind == "multi_flip":
        b = bytearray(data)
        k = rng.randint(2, 32)
        for _ in range(k):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        return bytes(b), f"flip {k} bits"
    if kind == "overwrite":
        i = rng.randrange(n)
        k = rng.randint(1, 16)
        return data[:i] + rng.randbytes(k) + data[i + k:], f"overwrite {k} bytes at {i}"
    if kind == "truncate":
        i = rng.randrange(n)
        return data[:i], f"truncate at {i} of {n}"
    if kind == "insert":
        i = rng.randint(0, n)
        k = rng.randint(1, 64)
        return data[:i] + rng.randbytes(k) + data[i:], f"insert {k} bytes at {i}"
    if kind == "delete":
        i = rng.randrange(n)
        k = rng.randint(1, 64)
        return data[:i] + data[i + k:], f"delete {k} bytes at {i}"
    if kind == "duplicate":
        i = rng.randrange(n)
        k = rng.randint(1, 256)
        return data[:i + k] + data[i:i + k] + data[i + k:], f"duplicate {k} bytes at {i}"
    if kind == "splice":
        other = rng.choice(donors) if donors else rng.randbytes(64)
        i, j = rng.randint(0, n), rng.randint(0, len(other))
        return data[:i] + other[j:], f"splice at {i} with a donor tail from {j}"
    fill = b"\x00" if kind == "zero_run" else b"\xff"
    i = rng.randrange(n)
    k = rng.randint(1, 128)
    return data[:i] + fill * k + data[i + k:], f"{kind} of {k} at {i}"


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def mutate_text(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Text-aware mutation: replace numbers or keywords, drop or repeat lines."""
    kind = rng.choice(["number", "numbers", "drop_line", "repeat_line", "keyword", "swap_lines"])
    lines = data.split(b"\n")
    if kind in ("number", "numbers"):
        matches = list(_NUMBER.finditer(data))
        if not matches:
            return data, "no numbers"
        chosen = [rng.choice(matches)] if kind == "number" else rng.sample(matches, min(len(matches), rng.randint(2, 20)))
        out = bytearray(data)
        for m in sorted(chosen, key=lambda m: -m.start()):
            out[m.start():m.end()] = rng.choice(INTERESTING_NUMBERS).encode()
        return bytes(out), f"replace {len(chosen)} number(s)"
    if kind == "drop_line":
        i = rng.randrange(len(lines))
        return b"\n".join(lines[:i] + lines[i + 1:]), f"drop line {i}"
    if kind == "repeat_line":
        i = rng.randrange(len(lines))
        k = rng.randint(1, 50)
        return b"\n".join(lines[:i] + [lines[i]] * k + lines[i + 1:]), f"repeat line {i} x{k}"
    if kind == "swap_lines":
        i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
        lines[i], lines[j] = lines[j], lines[i]
        return b"\n".join(lines), f"swap lines {i} {j}"
    words = [b"HIERARCHY", b"ROOT", b"JOINT", b"End Site", b"OFFSET", b"CHANNELS", b"MOTION", b"Frames:",
             b"Frame Time:", b"{", b"}", b"Xrotation", b"Yposition", b"file,label", b",", b"\xff\xfe", b"\x00"]
    i = rng.randint(0, len(data))
    w = rng.choice(words)
    return data[:i] + b" " + w + b" " + data[i:], f"insert keyword {w!r} at {i}"


def mutate_json(rng: random.Random, text: str) -> tuple[str, str]:
    """Structure-aware mutation of the canonical ``meta.json``."""
    meta = json.loads(text)
    key = rng.choice(list(meta))
    value = rng.choice([None, -1, 0, 1, 2**70, float("nan"), float("inf"), -1.5, "x", "", [], {}, [1, 2],
                        ["a"] * 3, {"a": 1}, True, "float64", "egait16", "h36m17", [10**12, 3, 8, 16],
                        [2, 3, 8, 17], [2, 3, 8], "\udcff"])
    if rng.random() < 0.2:
        del meta[key]
        return json.dumps(meta), f"drop key {key!r}"
    meta[key] = value
    return json.dumps(meta, allow_nan=True, ensure_ascii=True), f"set {key!r} = {value!r}"


# ---------------------------------------------------------------------------------------
# Hand-made hostile inputs
# ---------------------------------------------------------------------------------------


def _npy_header_only(shape: tuple[int, ...], dtype: str = "<f8", pad: int = 64) -> bytes:
    """A ``.npy`` header declaring ``shape``, followed by only ``pad`` zero bytes of data."""
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\x00" * pad


def hostile_inputs(root: Path, seeds: dict[str, Path]) -> Iterator[tuple[Path, str]]:
    """Hand-made inputs every reader must refuse with :class:`SsalInputError` (written lazily)."""
    import h5py

    d = root / "hostile"
    d.mkdir(exist_ok=True)

    p = d / "huge_declared.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("g1", shape=(10**9, 48), dtype="f8", chunks=(1024, 48))
    yield p, "HDF5 dataset declaring (1e9, 48)"

    p = d / "many_sparse.h5"
    with h5py.File(p, "w") as f:
        for i in range(200):
            f.create_dataset(f"g{i}", shape=(100_000, 48), dtype="f8", chunks=(1000, 48))
    yield p, "HDF5 with 200 sparse (1e5, 48) datasets"

    p = d / "strings.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("g", data=np.array([["a"] * 48] * 5, dtype="S3"))
    yield p, "HDF5 dataset of strings"

    p = d / "group.h5"
    with h5py.File(p, "w") as f:
        f.create_group("grp")
    yield p, "HDF5 with a group"

    p = d / "features_biglabel.h5"
    write_egait(p, None, [walker(np.random.default_rng(0), 6)], None, ["k"])
    with h5py.File(d / "labels_biglabel.h5", "w") as f:
        f.create_dataset("k", shape=(10**9,), dtype="i8", chunks=(4096,))
    yield p, "E-Gait label dataset declaring 1e9 entries"

    p = d / "features_missing.h5"
    write_egait(p, d / "labels_missing.h5", [walker(np.random.default_rng(0), 6)] * 2, [0, 1], ["k1", "k2"])
    with h5py.File(d / "labels_missing.h5", "w") as f:
        f.create_dataset("other", data=np.int64(1))
    yield p, "E-Gait label file with mismatched keys"

    p = d / "nan.h5"
    s = walker(np.random.default_rng(0), 6)
    s[2, 3, 1] = np.nan
    write_egait(p, None, [s], None, ["a"])
    yield p, "E-Gait sequence with NaN"

    p = d / "wrong_joints.h5"
    write_egait(p, None, [np.zeros((6, 15, 3))], None, ["a"])
    yield p, "E-Gait sequence with 15 joints"

    p = d / "huge_values.h5"
    write_egait(p, None, [walker(np.random.default_rng(0), 6) * 1e300], None, ["a"])
    yield p, "E-Gait sequence with values near 1e300"

    for shape, label in (((10**9, 3, 75, 16), "1e9 sequences"), ((4, 3, 10**9, 16), "1e9 frames"),
                         ((2**40, 2**40, 3, 16), "overflowing product")):
        p = d / f"npz_{len(list(d.iterdir()))}.npz"
        with zipfile.ZipFile(p, "w") as z:
            z.writestr("x.npy", _npy_header_only(shape))
        yield p, f"npz header declaring {label}"
        p = d / f"npy_{len(list(d.iterdir()))}.npy"
        p.write_bytes(_npy_header_only(shape))
        yield p, f"npy header declaring {label}"

    p = d / "zipbomb.npz"
    with zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("x.npy", "w", force_zip64=True) as fh:
            fh.write(_npy_header_only((200, 3, 100_000, 16), "<f4", pad=0))
            chunk = b"\x00" * (1 << 20)
            for _ in range(200 * 3 * 100_000 * 16 * 4 // (1 << 20)):
                fh.write(chunk)
    yield p, "compressed npz expanding to ~3.8 GB of zeros"

    p = d / "raw_member.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x", b"not an array")
    yield p, "npz member 'x' without .npy suffix"

    p = d / "scalar_names.npz"
    np.savez(p, x=np.zeros((2, 3, 8, 16)), names=np.array(5), classes=np.array(3))
    yield p, "npz with 0-d names and classes"

    p = d / "complex.npz"
    np.savez(p, x=np.ones((2, 3, 8, 16), dtype=complex))
    yield p, "npz with complex x"

    p = d / "empty_x.npz"
    np.savez(p, x=np.zeros((0, 3, 8, 16)))
    yield p, "npz with zero sequences"

    for frames, ft in (("1000000000", "0.0333"), ("5", "inf"), ("5", "1e308"), ("5", "1e-320"),
                       ("1" + "0" * 400, "0.03"), ("-5", "0.03")):
        p = d / f"bvh_{len(list(d.iterdir()))}.bvh"
        text = seeds["bvh"].read_text()
        text = re.sub(r"Frames: \d+", f"Frames: {frames}", text)
        text = re.sub(r"Frame Time: \S+", f"Frame Time: {ft}", text)
        p.write_text(text)
        yield p, f"BVH declaring {frames[:12]} frames at frame time {ft}"

    for n in ("-2", "-5", "-1000", "1000000000"):
        p = d / f"bvh_channels_{n}.bvh"
        p.write_text(seeds["bvh"].read_text().replace("CHANNELS 3", f"CHANNELS {n}", 1))
        yield p, f"BVH with CHANNELS {n}"

    p = d / "bvh_many_joints.bvh"
    lines = ["HIERARCHY", "ROOT Hips", "{", "OFFSET 0 0 0", "CHANNELS 1 Xposition"]
    lines += ["JOINT J%d { OFFSET 0 0 0 }" % i for i in range(5000)]
    lines += ["}", "MOTION", "Frames: 2000", "Frame Time: 0.0333333"] + ["0"] * 2000
    p.write_text("\n".join(lines) + "\n")
    yield p, "BVH with 5000 joints without channels"

    folder = d / "bad_csv"
    shutil.copytree(seeds["bvh_folder"], folder)
    (folder / "labels.csv").write_text("a.bvh,--1\nb.bvh,\u00b2\n", encoding="utf-8")
    yield folder, "BVH folder with labels '--1' and a superscript digit"

    p = d / "fifo.bvh"
    try:
        os.mkfifo(p)
        yield p, "a FIFO named .bvh"
    except (AttributeError, OSError):
        pass

    yield d / ("n" * 5000 + ".npz"), "file name longer than NAME_MAX"
    yield Path(os.fsdecode(b"\xff\xfe-not-utf8.h5")), "missing file with a non-UTF-8 name"

    p = Path(os.fsdecode(os.fsencode(str(d)) + b"/bad-\xff.npz"))
    p.write_bytes(b"\x00garbage")
    yield p, "garbage file with a non-UTF-8 name"

    for name in ("dir.h5", "dir.npz", "dir.npy", "dir.bvh"):
        p = d / name
        p.mkdir(exist_ok=True)
        yield p, f"a directory named {name}"

    canon = d / "canon_meta.ssal"
    shutil.copytree(seeds["ssal"], canon)
    meta = json.loads((canon / "meta.json").read_text())
    meta["meta"] = [1, 2]
    meta["fps"] = float("nan")
    (canon / "meta.json").write_text(json.dumps(meta))
    yield canon, "canonical meta.json with list 'meta' and NaN fps"

    canon = d / "canon_bigy.ssal"
    shutil.copytree(seeds["ssal"], canon)
    (canon / "y.npy").write_bytes(_npy_header_only((10**12,), "<i8"))
    yield canon, "canonical y.npy declaring 1e12 labels"

    canon = d / "canon_nan.ssal"
    shutil.copytree(seeds["ssal"], canon)
    x = np.load(canon / "x.npy")
    x[0, 0, 0, 0] = np.inf
    np.save(canon / "x.npy", x)
    yield canon, "canonical x.npy holding inf"


# ---------------------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------------------


class Timeout(Exception):
    """Raised by SIGALRM when one input takes too long."""


def _alarm(_signum, _frame):
    raise Timeout()


def _load_checkpoint_like_the_cli(path: Path) -> None:
    """What ``ssal predict`` / ``embed`` / ``--resume`` do with a checkpoint file."""
    import torch

    from ssal.checkpoint import load_checkpoint
    from ssal.inference import load
    from ssal.skeleton import get_layout
    from ssal.training.engine import check_learner_size
    from ssal.training.run_files import check_run_checkpoint

    state = load_checkpoint(path)
    if "model" in state or "optimizer" in state:  # a run's checkpoint.pt
        ck = check_run_checkpoint(path)
        check_learner_size(ck["config"]["model"], get_layout(ck["layout"]))
        return
    model = load(path)
    x = torch.zeros(2, 3, 10, model.layout.num_joints).numpy() + np.arange(model.layout.num_joints)[None, None, None]
    model.embed(x)
    if model.head is not None:
        probs = model.predict(x)
        if probs.shape != (2, len(model.classes)) or not np.isfinite(probs).all():
            raise AssertionError(f"predict returned {probs.shape} / non-finite values")


#: The case files of the settings stream (``scripts/fuzz_settings.py``).
SETTINGS_FILES = ("config.yaml", "jointmap.yaml", "model.onnx", "outputs.json")


def _settings():
    """``scripts/fuzz_settings.py`` as a module (it sits beside this script)."""
    import importlib.util

    if "fuzz_settings" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fuzz_settings", Path(__file__).with_name("fuzz_settings.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_settings"] = module
        spec.loader.exec_module(module)
    return sys.modules["fuzz_settings"]


def try_input(path: Path, timeout: float) -> tuple[str, str | None]:
    """Load ``path``: ``("loaded", None)``, ``("refused", None)`` (SsalInputError) or
    ``("crash", report)`` for any other exception, a multi-line message, a timeout or a
    dataset that holds NaN/inf. ``.pt`` files are loaded as checkpoints, ``.json`` files as
    split files, everything else as a dataset."""
    from ssal.data.splits import load_split

    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            if path.name in SETTINGS_FILES:
                problem = _settings().try_setting(path)
                return ("crash", problem) if problem else ("loaded", None)
            if path.suffix == ".pt":
                _load_checkpoint_like_the_cli(path)
                return "loaded", None
            if path.suffix == ".json":
                split = load_split(path, n=SPLIT_N)
                if "train" not in split or any(v.dtype != np.int64 for v in split.values()):
                    return "crash", "load_split returned a split without 'train' or with non-int64 indices"
                return "loaded", None
            ds = load_dataset(path)
        if not np.isfinite(np.asarray(ds.x, dtype=np.float64)).all():
            return "crash", "loaded a dataset holding NaN/inf values"
        return "loaded", None
    except SsalInputError as exc:
        if "\n" in str(exc):
            return "crash", f"SsalInputError message spans several lines: {exc!r}"
        return "refused", None
    except Timeout:
        return "crash", f"timeout after {timeout} s"
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - everything else is a crash
        return "crash", "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:])
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def model_inputs(rng: random.Random, work: Path, seeds: dict[str, Path]) -> Iterator[tuple[Path, str]]:
    """An endless stream of mutated checkpoints and split files written under ``work``."""
    import io as _io

    import torch

    originals = {k: seeds[k].read_bytes() for k in ("classifier", "encoder_pt", "run_ckpt", "split")}
    states = {k: torch.load(_io.BytesIO(originals[k]), weights_only=True)
              for k in ("classifier", "encoder_pt", "run_ckpt")}
    count = 0
    while True:
        count += 1
        case = work / f"model{count % 4}"
        if case.exists():
            shutil.rmtree(case)
        case.mkdir()
        kind = rng.choice(["classifier", "classifier", "encoder_pt", "run_ckpt", "split", "split"])
        if kind == "split":
            p = case / "split.json"
            r = rng.random()
            if r < 0.6:
                text, how = mutate_split(rng, originals["split"].decode())
                p.write_text(text, encoding="utf-8")
            elif r < 0.8:
                data, how = mutate_text(rng, originals["split"])
                p.write_bytes(data)
            else:
                data, how = mutate_bytes(rng, originals["split"], [])
                p.write_bytes(data)
            yield p, f"split: {how}"
            continue
        p = case / "c.pt"
        if rng.random() < 0.75:
            state = copy.deepcopy(states[kind])
            hows = []
            for _ in range(rng.choice([1, 1, 2, 3])):
                state, how = mutate_checkpoint(rng, state)
                hows.append(how)
            buf = _io.BytesIO()
            torch.save(state, buf)
            p.write_bytes(buf.getvalue())
            yield p, f"{kind} fields: {'; '.join(hows)}"
        else:
            data, how = mutate_bytes(rng, originals[kind], [])
            p.write_bytes(data)
            yield p, f"{kind} bytes: {how}"


def run_cli_cases(report) -> int:
    """The hand-made cases of ``scripts/hostile_cases.py`` through the command line; returns
    how many ran (each failure is reported)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile_cases", Path(__file__).with_name("hostile_cases.py"))
    cases = importlib.util.module_from_spec(spec)
    sys.modules["hostile_cases"] = cases  # dataclasses look their module up while it loads
    spec.loader.exec_module(cases)
    ran = 0
    with tempfile.TemporaryDirectory(prefix="ssal-fuzz-cli-") as tmp:
        base = cases.make_base(Path(tmp))
        for name, build in cases.CASES.items():
            ran += 1
            case = build(base)
            try:
                code, _, err = cases.run_case(case)
                found = cases.problems(case, code, err)
            except BaseException as exc:  # noqa: BLE001
                found = [f"{type(exc).__name__}: {exc}"]
            if found:
                report(Path(tmp) / name, f"cli case {name}", "; ".join(found))
    return ran


def mutated_inputs(rng: random.Random, work: Path, seeds: dict[str, Path]) -> Iterator[tuple[Path, str]]:
    """An endless stream of mutated inputs written under ``work``."""
    files = {k: v for k, v in seeds.items() if v.is_file() and k != "egait_labels"}
    donors = [p.read_bytes() for p in files.values()]
    originals = {k: p.read_bytes() for k, p in files.items()}
    count = 0
    while True:
        count += 1
        kind = rng.choice(list(files) + ["egait_labels", "bvh_folder", "ssal", "ssal", "random", "empty"])
        case = work / f"case{count % 4}"
        if case.exists():
            shutil.rmtree(case)
        case.mkdir()
        if kind == "random":
            suffix = rng.choice([".h5", ".bvh", ".npz", ".npy", ".hdf5"])
            p = case / f"random{suffix}"
            p.write_bytes(rng.randbytes(rng.choice([1, 8, 100, 1000, 5000])))
            yield p, f"random bytes {suffix}"
            continue
        if kind == "empty":
            suffix = rng.choice([".h5", ".bvh", ".npz", ".npy"])
            p = case / f"empty{suffix}"
            p.write_bytes(b"")
            yield p, f"empty {suffix}"
            continue
        if kind == "egait_labels":
            shutil.copy(seeds["egait"], case / "features.h5")
            data, how = mutate_bytes(rng, seeds["egait_labels"].read_bytes(), donors)
            (case / "labels.h5").write_bytes(data)
            yield case / "features.h5", f"labels.h5: {how}"
            continue
        if kind == "bvh_folder":
            target = case / "mocap"
            shutil.copytree(seeds["bvh_folder"], target)
            name = rng.choice(["a.bvh", "b.bvh", "labels.csv"])
            data = (target / name).read_bytes()
            data, how = mutate_text(rng, data) if rng.random() < 0.6 else mutate_bytes(rng, data, donors)
            (target / name).write_bytes(data)
            yield target, f"bvh folder {name}: {how}"
            continue
        if kind == "ssal":
            target = case / "corpus.ssal"
            shutil.copytree(seeds["ssal"], target)
            name = rng.choice(["meta.json", "meta.json", "x.npy", "y.npy", "lengths.npy"])
            f = target / name
            if name == "meta.json" and rng.random() < 0.6:
                text, how = mutate_json(rng, f.read_text())
                f.write_text(text, encoding="utf-8", errors="surrogateescape")
            else:
                data, how = mutate_bytes(rng, f.read_bytes(), donors)
                f.write_bytes(data)
            if rng.random() < 0.05:
                f.unlink()
                how = "deleted"
            yield target, f"ssal {name}: {how}"
            continue
        data = originals[kind]
        steps = rng.choice([1, 1, 1, 2, 3])
        hows = []
        for _ in range(steps):
            if kind == "bvh" and rng.random() < 0.6:
                data, how = mutate_text(rng, data)
            else:
                data, how = mutate_bytes(rng, data, donors)
            hows.append(how)
        p = case / files[kind].name
        p.write_bytes(data)
        yield p, f"{kind}: {'; '.join(hows)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000, help="mutated inputs to try (default 2000)")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds allowed per input")
    parser.add_argument("--memory-gb", type=float, default=4.0, help="address-space limit (0: none)")
    parser.add_argument("--crash-dir", default=None, help="copy crashing inputs here")
    parser.add_argument("--no-hostile", action="store_true", help="skip the hand-made hostile inputs")
    parser.add_argument("--cli-cases", action="store_true",
                        help="also run the cases of scripts/hostile_cases.py through the command line")
    parser.add_argument("--model-share", type=float, default=0.3,
                        help="share of mutated inputs that are checkpoints or split files (default 0.3)")
    parser.add_argument("--settings-share", type=float, default=0.2,
                        help="share of settings files, ONNX models and output paths (scripts/fuzz_settings.py)")
    parser.add_argument("--log", default=None, help="also append progress and crashes to this file")
    args = parser.parse_args(argv)
    log_fh = open(args.log, "a", encoding="utf-8") if args.log else None

    def say(text: str) -> None:
        print(text, flush=True)
        if log_fh is not None:
            log_fh.write(text + "\n")
            log_fh.flush()

    if args.memory_gb > 0:
        import resource

        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    rng = random.Random(args.seed)
    tried = crashes = 0
    crash_dir = Path(args.crash_dir) if args.crash_dir else None
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ssal-fuzz-") as tmp:
        root = Path(tmp)
        seeds = write_seeds(root / "seeds", args.seed)
        for kind, path in seeds.items():
            if kind != "egait_labels":
                outcome, problem = try_input(path, args.timeout)
                if outcome != "loaded":
                    print(f"seed {kind} does not load: {outcome} {problem}", file=sys.stderr)
                    return 1

        def report(path: Path, what: str, problem: str) -> None:
            nonlocal crashes
            crashes += 1
            say(f"CRASH #{crashes} on {what[:200]} ({os.fsencode(str(path))[:200]!r}):\n{problem}")
            if crash_dir is not None:
                crash_dir.mkdir(parents=True, exist_ok=True)
                dest = crash_dir / f"crash{crashes:04d}{path.suffix}"
                try:
                    if path.is_dir():
                        shutil.copytree(path, dest)
                    elif path.is_file():
                        shutil.copy(path, dest)
                    (crash_dir / f"crash{crashes:04d}.txt").write_text(f"{what}\n{problem}\n")
                except OSError:
                    pass

        if not args.no_hostile:
            for path, what in hostile_inputs(root, seeds):
                tried += 1
                t0 = time.monotonic()
                outcome, problem = try_input(path, args.timeout)
                if outcome == "loaded":
                    problem = "hand-made hostile input was accepted"
                if problem:
                    report(path, what, problem)
                elif time.monotonic() - t0 > 5:
                    print(f"slow ({time.monotonic() - t0:.1f} s): {what}", flush=True)

        if args.cli_cases:
            tried += run_cli_cases(report)
            say(f"cli cases done: {tried} inputs, {crashes} crashes, {time.monotonic() - start:.0f} s")

        models = write_model_seeds(root / "model-seeds")
        for kind, path in models.items():
            outcome, problem = try_input(path, args.timeout)
            if outcome != "loaded":
                say(f"seed {kind} does not load: {outcome} {problem}")
                return 1
        settings_seeds = _settings().write_settings_seeds(root / "settings-seeds")
        for kind, path in settings_seeds.items():
            outcome, problem = try_input(path, args.timeout)
            if outcome != "loaded":
                say(f"seed {kind} does not load: {outcome} {problem}")
                return 1
        work = root / "work"
        work.mkdir()
        readers = mutated_inputs(rng, work, seeds)
        others = model_inputs(rng, work, models)
        settings = _settings().settings_inputs(rng, work, settings_seeds)
        counts = {"readers": 0, "models": 0, "settings": 0}
        while True:
            if tried >= args.iterations and args.seconds is None:
                break
            if args.seconds is not None and time.monotonic() - start > args.seconds:
                break
            r = rng.random()
            stream = ("models" if r < args.model_share else
                      "settings" if r < args.model_share + args.settings_share else "readers")
            path, what = next({"models": others, "settings": settings, "readers": readers}[stream])
            tried += 1
            counts[stream] += 1
            _, problem = try_input(path, args.timeout)
            if problem:
                report(path, what, problem)
            if tried % 1000 == 0:
                peak = 0
                try:
                    with open("/proc/self/status") as fh:
                        peak = next(int(ln.split()[1]) // 1024 for ln in fh if ln.startswith("VmHWM:"))
                except (OSError, StopIteration):
                    pass
                say(f"{tried} inputs ({counts['readers']} reader, {counts['models']} checkpoint/split, "
                    f"{counts['settings']} settings/ONNX/output), "
                    f"{crashes} crashes, peak RSS {peak} MB, {time.monotonic() - start:.0f} s")
    say(f"tried {tried} inputs in {time.monotonic() - start:.0f} s: {crashes} crash(es); "
        f"{counts['readers']} mutated reader inputs, {counts['models']} mutated checkpoints/split files, "
        f"{counts['settings']} settings files, ONNX models and output paths")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
