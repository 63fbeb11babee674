#!/usr/bin/env python
"""The hostile cases of issue 15, each a small file (or run directory) and an ``ssal`` command.

Every case names what it builds and what the command must do: exit code 2 with exactly one
``error: ...`` line on stderr and no traceback (most cases), or exit 0 for valid files that
used to be refused (a BVH with a UTF-8 BOM, ...). ``tests/cli/test_hostile_cases.py`` runs each
case as its own test; ``python scripts/hostile_cases.py --memory-gb 2.5`` runs them all in one
process under an address-space limit and prints the peak resident memory (VmHWM), which is how
the memory bound in docs/data.md ("Limits") is checked; ``scripts/fuzz_readers.py`` runs them
before its mutations.

Usage::

    python scripts/hostile_cases.py [--memory-gb 2.5] [--only NAME ...] [--json]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fuzz_readers import BVH_RIG, walker, write_seeds  # noqa: E402

#: A run small enough to pretrain in about a second on one CPU thread.
TINY_RUN = [
    "data.builtin_n=48", "data.builtin_seed=3", "train.batch_size=16", "train.lr=0.05",
    "run.knn_every=0", "run.progress=false", "run.threads=1", "model.queue_size=32",
    "model.encoder.channels=[4,8]", "model.encoder.strides=[1,2]",
    "model.augment.general.clip_len=12", "run.max_steps=2",
]


@dataclass
class Case:
    """One hostile case: the command line and what it must do."""

    argv: list[str]
    code: int = 2
    #: a text the one error line must contain (lower-cased comparison)
    says: str = ""
    #: part of the memory set (run under the address-space limit)
    memory: bool = False
    #: extra check on the case directory after the run (returns a problem or None)
    after: Callable[[], str | None] | None = None


@dataclass
class Base:
    """Shared valid inputs the cases start from."""

    root: Path
    seeds: dict[str, Path]
    classifier: Path
    encoder: Path
    data: Path
    run: Path | None = None
    extra: dict = field(default_factory=dict)


def tiny_run_args(out: Path, *extra: str, epochs: bool = True) -> list[str]:
    """``ssal pretrain`` arguments of a tiny SkeletonCLR run into ``out``."""
    args = ["pretrain", "--method", "skeletonclr", "--out", str(out), "--seed", "0", "--device", "cpu",
            "--no-progress"] + (["--epochs", "1"] if epochs else [])
    for item in TINY_RUN:
        args += ["--set", item]
    return args + list(extra)


def make_base(root: Path) -> Base:
    """Seed files, a tiny classifier.pt and encoder.pt (random weights, no training)."""
    import torch

    from ssal.checkpoint import save_checkpoint
    from ssal.data.preprocess import PreprocessConfig
    from ssal.inference import save_classifier
    from ssal.models import build_encoder
    from ssal.models.base import BackboneFeatures
    from ssal.models.heads import LinearClassifier
    from ssal.skeleton import EGAIT16

    root.mkdir(parents=True, exist_ok=True)
    seeds = write_seeds(root / "seeds", 0)
    torch.manual_seed(0)
    cfg = {"name": "stgcn", "base_channels": 4, "num_layers": 2, "hidden_dim": None}
    enc = build_encoder(cfg, EGAIT16)
    feats = BackboneFeatures(enc)
    head = LinearClassifier(feats.out_dim, 4)
    classes = ["happy", "angry", "sad", "neutral"]
    pre = PreprocessConfig(length=16).to_dict()
    classifier = root / "classifier.pt"
    save_classifier(classifier, feats, head, encoder_config=cfg, layout=EGAIT16, classes=classes,
                    preprocess=pre, clip_len=16, protocol="linear")
    encoder = root / "encoder.pt"
    save_checkpoint({"stage": "pretrain", "config": None, "encoder_config": cfg, "layout": "egait16",
                     "classes": classes, "preprocess": pre, "clip_len": 16,
                     "encoder": {k: v.detach().clone() for k, v in enc.state_dict().items()}}, encoder)
    return Base(root=root, seeds=seeds, classifier=classifier, encoder=encoder, data=seeds["npz"])


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _npy_header(shape, descr, pad: int = 64) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * pad


def _egait(path: Path, names=("a",), frames: int = 8, scale: float = 1.0) -> Path:
    from ssal.data.egait import write_egait

    rng = np.random.default_rng(0)
    write_egait(path, None, [walker(rng, frames) * scale for _ in names], None, list(names))
    return path


def _mutated_checkpoint(base: Base, name: str, edit: Callable[[dict], None], source: Path | None = None) -> Path:
    import torch

    state = torch.load(source or base.classifier, weights_only=True)
    edit(state)
    out = base.root / name
    out.mkdir(parents=True, exist_ok=True)
    path = out / "c.pt"
    torch.save(state, path)
    return path


def _predict(base: Base, ck: Path) -> list[str]:
    return ["predict", "--checkpoint", str(ck), str(base.data)]


def _split(base: Base, name: str, text: str) -> list[str]:
    d = base.root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "split.json").write_text(text, encoding="utf-8")
    return ["knn", "--checkpoint", str(base.encoder), "--data", "builtin", "--split", str(d / "split.json"),
            "--out", str(d / "out")]


def _fifo(path: Path) -> Path:
    if not path.exists():
        os.mkfifo(path)
    return path


def _bvh_text(base: Base) -> str:
    return base.seeds["bvh"].read_text(encoding="utf-8")


def _run_copy(base: Base, name: str) -> Path:
    """A copy of the tiny run directory (made once, on first use)."""
    from ssal.cli.main import main

    if base.run is None:
        base.run = base.root / "tiny-run"
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
            code = main(tiny_run_args(base.run))
        if code != 0:
            raise RuntimeError(f"the tiny pretraining run failed with exit code {code}")
    dest = base.root / name
    shutil.copytree(base.run, dest)
    return dest


def _edit_run_checkpoint(run: Path, edit: Callable[[dict], None]) -> None:
    import torch

    state = torch.load(run / "checkpoint.pt", weights_only=True)
    edit(state)
    torch.save(state, run / "checkpoint.pt")


# ------------------------------------------------------------------------------------------
# the cases (names follow the list)
# ------------------------------------------------------------------------------------------


def hdf5_tiny_chunks(base: Base) -> Case:
    import h5py

    p = base.root / "tiny_chunks.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("g", shape=(100_000, 48), dtype="f8", chunks=(1, 1))
    return Case(["data", "info", str(p)], says="chunks", memory=True)


def npz_dtype_s1000000000(base: Base) -> Case:
    p = base.root / "s1e9.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", _npy_header((1,), "|S1000000000"))
    return Case(["data", "info", str(p)], says="memory", memory=True)


def npz_subarray_dtype(base: Base) -> Case:
    p = base.root / "subarray.npz"
    hdr = _npy_header((4,), "<f8").replace(b"'descr': '<f8'", b"'descr': ('<f8', (1000, 1000))")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", hdr)
    return Case(["data", "info", str(p)], says="dtype", memory=True)


def npz_names_u250000000(base: Base) -> Case:
    p = base.root / "names_u.npz"
    buf = io.BytesIO()
    np.save(buf, np.zeros((2, 3, 8, 16)))
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x.npy", buf.getvalue())
        z.writestr("names.npy", _npy_header((2,), "<U250000000"))
    return Case(["data", "info", str(p)], says="memory", memory=True)


def npz_699050_four_frame_sequences(base: Base) -> Case:
    # The file held 699,050 sequences (its raw float64 copy alone is over the limit);
    # 200,000 fit the raw budget, so what refuses them here is the padding to 75 frames.
    p = base.root / "many_short.npz"
    np.savez_compressed(p, x=np.zeros((200_000, 3, 4, 16), dtype=np.float16))
    return Case(["data", "info", str(p)], says="padding 200000 sequences", memory=True)


def bvh_folder_frame_time_1000(base: Base) -> Case:
    from ssal.data.bvh import write_bvh

    d = base.root / "slow_bvh"
    d.mkdir(exist_ok=True)
    joints = [r[0] for r in BVH_RIG]
    parents = [r[1] for r in BVH_RIG]
    offsets = np.array([r[2] for r in BVH_RIG], dtype=float)
    motion = np.zeros((4, 6 + 3 * (len(BVH_RIG) - 1)))
    motion[:, 1] = 40.0
    for i in range(100):
        write_bvh(d / f"s{i:03d}.bvh", joints, parents, offsets, motion, 1000.0)
    return Case(["data", "info", str(d)], says="memory", memory=True)


def bvh_258_mb(base: Base) -> Case:
    p = base.root / "huge.bvh"
    with open(p, "wb") as fh:  # sparse: the size is refused before anything is read
        fh.write(_bvh_text(base).encode())
        fh.truncate(258 * 2**20)
    return Case(["data", "info", str(p)], says="larger than the limit", memory=True)


def meta_json_61_mb(base: Base) -> Case:
    d = base.root / "big_meta.ssal"
    shutil.copytree(base.seeds["ssal"], d)
    meta = json.loads((d / "meta.json").read_text())
    meta["meta"] = {"pad": ["x" * 60] * 1_000_000}
    (d / "meta.json").write_text(json.dumps(meta))
    return Case(["data", "info", str(d)], says="larger than the limit", memory=True)


def checkpoint_inflating_storage(base: Base) -> Case:
    d = base.root / "inflate"
    d.mkdir(exist_ok=True)
    p = d / "c.pt"
    with zipfile.ZipFile(base.classifier) as src, zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if "/data/" in info.filename and info.filename.endswith("/0"):
                data = data + b"\0" * (64 * 2**20)  # a record that deflates from ~64 KB
            dst.writestr(info.filename, data)
    return Case(_predict(base, p), says="compressed", memory=True)


def hdf5_external_storage_etc_passwd(base: Base) -> Case:
    import h5py

    p = base.root / "ext_passwd.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("g", shape=(4, 48), dtype="u1", external=[("/etc/passwd", 0, 4 * 48)])
    return Case(["data", "info", str(p)], says="external")


def hdf5_external_link(base: Base) -> Case:
    import h5py

    other = _egait(base.root / "elink_target.h5")
    p = base.root / "elink.h5"
    with h5py.File(p, "w") as f:
        f["g"] = h5py.ExternalLink(str(other), "a")
    return Case(["data", "info", str(p)], says="external link")


def _nonempty_eval_dir(base: Base, name: str) -> tuple[Path, Callable[[], str | None]]:
    d = base.root / name
    d.mkdir(exist_ok=True)
    (d / "results.json").write_text('{"keep": true}')
    (d / "classifier.pt").write_bytes(b"keep")

    def after() -> str | None:
        ok = (d / "results.json").read_text() == '{"keep": true}' and (d / "classifier.pt").read_bytes() == b"keep"
        return None if ok else "files in the non-empty --out were replaced"

    return d, after


def knn_out_nonempty(base: Base) -> Case:
    d, after = _nonempty_eval_dir(base, "knn_out")
    return Case(["knn", "--checkpoint", str(base.encoder), "--data", "builtin", "--out", str(d)],
                says="not empty", after=after)


def linear_out_nonempty(base: Base) -> Case:
    d, after = _nonempty_eval_dir(base, "linear_out")
    return Case(["linear", "--checkpoint", str(base.encoder), "--data", "builtin", "--out", str(d)],
                says="not empty", after=after)


def hdf5_key_newline(base: Base) -> Case:
    import h5py

    p = base.root / "key_newline.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("bad\nkey", data=np.zeros((8, 47)))
    return Case(["data", "info", str(p)], says="bad\\nkey")


def hdf5_key_esc_bel(base: Base) -> Case:
    import h5py

    p = base.root / "key_esc.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("k\x1b[2J\x07", data=np.zeros((8, 47)))
    return Case(["data", "info", str(p)], says="\\x1b[2j\\x07")


def npz_name_newline(base: Base) -> Case:
    p = base.root / "name_newline.npz"
    x = np.stack([walker(np.random.default_rng(0), 8)] * 2).transpose(0, 3, 1, 2).copy()
    x[1, 0, 0, 0] = np.nan
    np.savez(p, x=x, names=np.array(["ok", "bad\nname\x1b"]))
    return Case(["data", "info", str(p)], says="bad\\nname\\x1b")


def zip_member_newline(base: Base) -> Case:
    p = base.root / "member_newline.npz"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x\nevil\x1b.npy", b"not an array")
    return Case(["data", "info", str(p)], says="\\n")


def file_name_newline(base: Base) -> Case:
    p = base.root / "bad\nname\x1b.h5"
    p.write_bytes(b"garbage")
    return Case(["data", "info", str(p)], says="bad\\nname\\x1b.h5")


def numpy_warnings_on_1e308(base: Base) -> Case:
    p = _egait(base.root / "e308.h5", scale=1e308 / 2)
    return Case(["data", "info", str(p)], says="coordinates larger")


def meta_json_fps_1e_308(base: Base) -> Case:
    d = base.root / "tiny_fps.ssal"
    shutil.copytree(base.seeds["ssal"], d)
    meta = json.loads((d / "meta.json").read_text())
    meta["fps"] = 1e-308
    (d / "meta.json").write_text(json.dumps(meta))
    return Case(["data", "info", str(d)], says="fps")


def npz_bad_order_names_the_file(base: Base) -> Case:
    p = base.root / "bad_order.npz"
    np.savez(p, x=np.zeros((2, 3, 8, 16)), order=np.array("XYZW"))
    return Case(["data", "info", str(p)], says="bad_order.npz")


def bvh_utf8_bom(base: Base) -> Case:
    p = base.root / "bom.bvh"
    p.write_bytes(b"\xef\xbb\xbf" + _bvh_text(base).encode())
    return Case(["data", "info", str(p)], code=0)


def labels_csv_bom(base: Base) -> Case:
    d = base.root / "csv_bom"
    shutil.copytree(base.seeds["bvh_folder"], d)
    (d / "labels.csv").write_bytes(b"\xef\xbb\xbf" + (d / "labels.csv").read_bytes())
    return Case(["data", "info", str(d)], code=0)


def bvh_joint_named_motionsensor(base: Base) -> Case:
    from ssal.data.bvh import write_bvh

    rig = BVH_RIG + [("MOTIONSensor", 3, (0, 2, 0))]  # an extra sensor joint on the head
    motion = np.zeros((10, 6 + 3 * (len(rig) - 1)))
    motion[:, 1] = 40.0
    motion[:, 2] = np.arange(10) * 2.0
    p = base.root / "motion_sensor.bvh"
    write_bvh(p, [r[0] for r in rig], [r[1] for r in rig], np.array([r[2] for r in rig], dtype=float), motion, 1 / 30)
    return Case(["data", "info", str(p)], code=0)


def labels_csv_conflicting_duplicates(base: Base) -> Case:
    d = base.root / "csv_dup"
    shutil.copytree(base.seeds["bvh_folder"], d)
    (d / "labels.csv").write_text("file,label\na.bvh,happy\nb,2\na.bvh,sad\n")
    return Case(["data", "info", str(d)], says="another label")


def npz_timedelta_labels(base: Base) -> Case:
    p = base.root / "td_labels.npz"
    x = np.stack([walker(np.random.default_rng(0), 8)] * 2).transpose(0, 3, 1, 2)
    np.savez(p, x=x, y=np.array([1, 2], dtype="m8[s]"))
    return Case(["data", "info", str(p)], says="timedelta")


def npz_timedelta_coordinates(base: Base) -> Case:
    p = base.root / "td_x.npz"
    np.savez(p, x=np.ones((2, 3, 8, 16), dtype="m8[s]"))
    return Case(["data", "info", str(p)], says="timedelta")


def config_negative_epochs(base: Base) -> Case:
    out = base.root / "neg_epochs"
    return Case(tiny_run_args(out, "--set", "train.epochs=-3", epochs=False), says="train.epochs",
                after=lambda: "the run wrote files" if out.exists() and any(out.iterdir()) else None)


def show_fps_zero(base: Base) -> Case:
    return Case(["show", str(base.seeds["npz"]), "--fps", "0", "--out", str(base.root / "fps0.gif")], says="--fps",
                after=lambda: "a GIF was written" if (base.root / "fps0.gif").exists() else None)


def run_killed_before_first_checkpoint(base: Base) -> Case:
    run = base.root / "killed_early"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "split.json").write_text("{}")
    return Case(tiny_run_args(run, "--resume"), code=0,
                after=lambda: None if (run / "encoder.pt").is_file() else "no encoder.pt after resuming")


def run_killed_before_first_checkpoint_plain_rerun(base: Base) -> Case:
    run = base.root / "killed_early_plain"
    run.mkdir(exist_ok=True)
    (run / "config.yaml").write_text("seed: 0\n")
    (run / "split.json").write_text("{}")
    return Case(tiny_run_args(run), code=0,
                after=lambda: None if (run / "encoder.pt").is_file() else "no encoder.pt after the rerun")


def checkpoint_empty_head(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_empty_head", lambda s: s.update(head={}))),
                says="'head'")


def checkpoint_preprocess_length_string(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_len_str",
                                                   lambda s: s["preprocess"].update(length="seventy"))),
                says="preprocess.length")


def checkpoint_empty_class_list(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_no_classes", lambda s: s.update(classes=[]))),
                says="'classes'")


def checkpoint_clip_len_1e9(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_clip", lambda s: s.update(clip_len=10**9))),
                says="clip_len", memory=True)


def checkpoint_layout_list(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_layout", lambda s: s.update(layout=["egait16"]))),
                says="'layout'")


def checkpoint_huge_channel_counts(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(
        base, "ck_channels", lambda s: s["encoder_config"].update(base_channels=10**6))), says="parameters",
        memory=True)


def checkpoint_head_weight_int(base: Base) -> Case:
    return Case(_predict(base, _mutated_checkpoint(base, "ck_head_int",
                                                   lambda s: s["head"].update({"fc.weight": 3}))),
                says="'head'")


def resume_checkpoint_of_another_model_shape(base: Base) -> Case:
    import torch

    run = _run_copy(base, "resume_shape")

    def edit(state: dict) -> None:
        key = next(k for k, v in state["model"].items() if v.ndim >= 2)
        state["model"][key] = torch.zeros(3, 3)

    _edit_run_checkpoint(run, edit)
    return Case(tiny_run_args(run, "--resume"), says="'model'")


def resume_checkpoint_without_config(base: Base) -> Case:
    run = _run_copy(base, "resume_noconfig")
    _edit_run_checkpoint(run, lambda s: s.pop("config"))
    return Case(tiny_run_args(run, "--resume"), says="'config'")


def resume_wrong_rng_state(base: Base) -> Case:
    import torch

    run = _run_copy(base, "resume_rng")
    _edit_run_checkpoint(run, lambda s: s.update(rng={"torch": torch.zeros(7, dtype=torch.uint8)}))
    return Case(tiny_run_args(run, "--resume"), says="'rng'")


def resume_directory_where_temp_file_expected(base: Base) -> Case:
    run = _run_copy(base, "resume_tmpdir")
    (run / ".checkpoint.pt.abc.tmp").mkdir()
    return Case(tiny_run_args(run, "--resume"), says="temporary file")


def resume_directory_where_a_run_file_is_written(base: Base) -> Case:
    run = _run_copy(base, "resume_encoder_dir")
    (run / "encoder.pt").unlink()
    (run / "encoder.pt").mkdir()
    return Case(tiny_run_args(run, "--resume"), says="is a directory")


def split_version_string(base: Base) -> Case:
    return Case(_split(base, "split_version", json.dumps({"format": "ssal-split", "version": "one",
                                                          "parts": {"train": [0, 1]}})), says="version")


def split_huge_integer(base: Base) -> Case:
    return Case(_split(base, "split_huge", '{"format": "ssal-split", "parts": {"train": [1' + "0" * 400 + "]}}"),
                says="split.json")


def split_deep_nesting(base: Base) -> Case:
    return Case(_split(base, "split_deep", "[" * 100_000 + "]" * 100_000), says="split.json")


def split_without_train(base: Base) -> Case:
    return Case(_split(base, "split_notrain", json.dumps({"format": "ssal-split", "parts": {"val": [0]}})),
                says="'train'")


def _unwritable(name: str) -> str:
    return f"/proc/ssal-cannot-write-here/{name}"


def out_unwritable_predict(base: Base) -> Case:
    return Case(_predict(base, base.classifier) + ["--out", _unwritable("p.csv")], says="/proc")


def out_unwritable_embed(base: Base) -> Case:
    return Case(["embed", "--checkpoint", str(base.classifier), str(base.data), "--out", _unwritable("f.npy")],
                says="/proc")


def out_unwritable_pretrain(base: Base) -> Case:
    return Case(tiny_run_args(Path(_unwritable("run"))), says="/proc")


def out_unwritable_show(base: Base) -> Case:
    return Case(["show", str(base.seeds["npz"]), "--out", _unwritable("g.gif")], says="/proc")


def out_unwritable_synth(base: Base) -> Case:
    return Case(["data", "synth", "--n", "8", "--out", _unwritable("c.npz")], says="/proc")


def predict_out_existing_directory(base: Base) -> Case:
    d = base.root / "predict_dir.csv"
    d.mkdir(exist_ok=True)
    return Case(_predict(base, base.classifier) + ["--out", str(d)], says="directory")


def run_dir_dangling_symlink(base: Base) -> Case:
    link = base.root / "dangling_run"
    if not link.is_symlink():
        link.symlink_to(base.root / "no-such-target")
    return Case(tiny_run_args(link), says="dangling")


def show_fps_nan(base: Base) -> Case:
    return Case(["show", str(base.seeds["npz"]), "--fps", "nan", "--out", str(base.root / "nan.gif")], says="--fps")


def synth_n_1e9(base: Base) -> Case:
    return Case(["data", "synth", "--n", "1000000000", "--out", str(base.root / "huge.npz")], says="memory",
                memory=True)


def npy_subarray_dtype(base: Base) -> Case:
    p = base.root / "subarray.npy"
    p.write_bytes(_npy_header((4,), "<f8").replace(b"'descr': '<f8'", b"'descr': ('<f8', (17, 3))"))
    return Case(["data", "info", str(p)], says="dtype")


def npz_empty_person_axis(base: Base) -> Case:
    p = base.root / "no_person.npz"
    np.savez(p, x=np.zeros((2, 0, 3, 8, 16)), order=np.array("NMCTV"))
    return Case(["data", "info", str(p)], says="person")


def hdf5_external_link_to_fifo(base: Base) -> Case:
    import h5py

    fifo = _fifo(base.root / "fifo_link_target.h5")
    p = base.root / "elink_fifo.h5"
    with h5py.File(p, "w") as f:
        f["g"] = h5py.ExternalLink(str(fifo), "a")
    return Case(["data", "info", str(p)], says="external link")


def hdf5_external_storage_on_fifo(base: Base) -> Case:
    import h5py

    fifo = _fifo(base.root / "fifo_storage")
    p = base.root / "ext_fifo.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("g", shape=(4, 48), dtype="f8", external=[(str(fifo), 0, 4 * 48 * 8)])
    return Case(["data", "info", str(p)], says="external")


def hdf5_virtual_dataset_on_fifo(base: Base) -> Case:
    import h5py

    fifo = _fifo(base.root / "fifo_vds.h5")
    p = base.root / "vds_fifo.h5"
    layout = h5py.VirtualLayout(shape=(4, 48), dtype="f8")
    layout[:] = h5py.VirtualSource(str(fifo), "a", shape=(4, 48))
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("g", layout, fillvalue=0)
    return Case(["data", "info", str(p)], says="virtual")


def _laughs(levels: int = 10, key: str = "a") -> str:
    lines = [f"{key}0: &{key}0 [lol]"]
    for i in range(1, levels + 1):
        lines.append(f"{key}{i}: &{key}{i} [" + ", ".join([f"*{key}{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _nothing_written(out: Path) -> Callable[[], str | None]:
    return lambda: "the run wrote files" if out.exists() and any(out.iterdir()) else None


def config_billion_laughs_unknown_key(base: Base) -> Case:
    p = base.root / "laughs.yaml"
    p.write_text(_laughs(), encoding="utf-8")
    out = base.root / "laughs_run"
    return Case(tiny_run_args(out, "--config", str(p)), says="laughs.yaml", after=_nothing_written(out))


def config_billion_laughs_known_key(base: Base) -> Case:
    p = base.root / "laughs_model.yaml"
    p.write_text("model:\n" + "".join(f"  {line}\n" for line in _laughs().splitlines()), encoding="utf-8")
    out = base.root / "laughs_model_run"
    return Case(tiny_run_args(out, "--config", str(p)), says="refused", after=_nothing_written(out))


def set_billion_laughs(base: Base) -> Case:
    value = "{a: &a [x], " + ", ".join(
        f"c{i}: &c{i} [" + ",".join([f"*{'a' if i == 0 else f'c{i - 1}'}"] * 9) + "]" for i in range(9)) + "}"
    out = base.root / "laughs_set_run"
    return Case(tiny_run_args(out, "--set", f"model={value}"), says="--set model", after=_nothing_written(out))


def pretrain_device_cuda_99(base: Base) -> Case:
    out = base.root / "cuda99_run"
    return Case(tiny_run_args(out, "--device", "cuda:99"), says="cuda:99", after=_nothing_written(out))


def pretrain_device_meta(base: Base) -> Case:
    out = base.root / "meta_run"
    return Case(tiny_run_args(out, "--device", "meta"), says="--device", after=_nothing_written(out))


def pretrain_threads_4096(base: Base) -> Case:
    out = base.root / "threads_run"
    return Case(tiny_run_args(out, "--set", "run.threads=4096"), says="run.threads", after=_nothing_written(out))


def pretrain_clip_len_100000(base: Base) -> Case:
    out = base.root / "clip_run"
    return Case(tiny_run_args(out, "--set", "model.augment.general.clip_len=100000"),
                says="model.augment.general.clip_len", after=_nothing_written(out))


def predict_device_meta(base: Base) -> Case:
    return Case(["predict", "--checkpoint", str(base.classifier), "--device", "meta", str(base.data)],
                says="--device")


def joint_map_deep_nesting(base: Base) -> Case:
    p = base.root / "deep_joint_map.yaml"
    p.write_text("root: " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    return Case(["data", "info", str(base.seeds["bvh_folder"]), "--joint-map", str(p)], says="deep_joint_map.yaml")


def joint_map_sparse_3_gb(base: Base) -> Case:
    p = base.root / "huge_joint_map.yaml"
    with open(p, "wb") as fh:
        fh.truncate(3 * 2**30)
    return Case(["data", "info", str(base.seeds["bvh_folder"]), "--joint-map", str(p)], says="huge_joint_map.yaml",
                memory=True)


def _onnx_file(base: Base, name: str, edit: Callable[[dict], None] | None = None, width: int = 4) -> Path:
    """A tiny ONNX model ``x -> softmax(mean(x) @ W)`` with ssal metadata (``edit`` applied)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    meta = {"version": 1, "kind": "classifier", "layout": "egait16", "classes": ["happy", "angry", "sad", "neutral"],
            "preprocess": {"length": 40}, "clip_len": 24, "out_dim": 4}
    if edit is not None:
        edit(meta)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "T", 16])
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", width])
    w = numpy_helper.from_array(np.ones((3, width), np.float32), "W")
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["l"]), helper.make_node("Softmax", ["l"], ["probabilities"], axis=1)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializer=[w]),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    helper.set_model_props(model, {"ssal": json.dumps(meta)})
    path = base.root / name
    onnx.save(model, str(path))
    return path


def onnx_metadata_clip_len_1e9(base: Base) -> Case:
    return Case(_predict(base, _onnx_file(base, "clip1e9.onnx", lambda m: m.update(clip_len=10**9))), says="clip_len")


def onnx_metadata_without_out_dim(base: Base) -> Case:
    return Case(_predict(base, _onnx_file(base, "no_out_dim.onnx", lambda m: m.pop("out_dim"))), says="out_dim")


def onnx_output_wider_than_metadata(base: Base) -> Case:
    return Case(_predict(base, _onnx_file(base, "wide.onnx", width=5)), says="output has shape")


def export_out_unwritable(base: Base) -> Case:
    return Case(["export", "--checkpoint", str(base.classifier), "--format", "onnx", "--out", _unwritable("m.onnx")],
                says="/proc")


def export_frames_1e9(base: Base) -> Case:
    return Case(["export", "--checkpoint", str(base.classifier), "--format", "onnx", "--out",
                 str(base.root / "frames.onnx"), "--frames", "1000000000"], says="--frames", memory=True)


def export_checkpoint_onnx(base: Base) -> Case:
    return Case(["export", "--checkpoint", str(_onnx_file(base, "as_checkpoint.onnx")), "--format", "onnx",
                 "--out", str(base.root / "again.onnx")], says="onnx")


def export_opset_1(base: Base) -> Case:
    out = base.root / "opset1.onnx"
    return Case(["export", "--checkpoint", str(base.classifier), "--format", "onnx", "--out", str(out),
                 "--opset", "1"], says="--opset", after=lambda: "a file was written" if out.exists() else None)


def bvh_127_mb_two_character_lines(base: Base) -> Case:
    text = _bvh_text(base)
    head = text[: text.index("MOTION")]
    p = base.root / "two_char_lines.bvh"
    with open(p, "w", encoding="ascii") as fh:
        fh.write(head + "MOTION\nFrames: 1\nFrame Time: 0.01\n")
        block = "1\n" * 2**20
        for _ in range(63):  # 126 MiB of "1\n": 66 million lines
            fh.write(block)
    return Case(["data", "info", str(p)], says="memory", memory=True)


#: Every case by name, in the issue's order.
CASES: dict[str, Callable[[Base], Case]] = {
    f.__name__: f for f in (
        hdf5_tiny_chunks, npz_dtype_s1000000000, npz_subarray_dtype, npz_names_u250000000,
        npz_699050_four_frame_sequences, bvh_folder_frame_time_1000, bvh_258_mb, meta_json_61_mb,
        checkpoint_inflating_storage, hdf5_external_storage_etc_passwd, hdf5_external_link,
        knn_out_nonempty, linear_out_nonempty, hdf5_key_newline, hdf5_key_esc_bel, npz_name_newline,
        zip_member_newline, file_name_newline, numpy_warnings_on_1e308, meta_json_fps_1e_308,
        npz_bad_order_names_the_file, bvh_utf8_bom, labels_csv_bom, bvh_joint_named_motionsensor,
        labels_csv_conflicting_duplicates, npz_timedelta_labels, npz_timedelta_coordinates,
        config_negative_epochs, show_fps_zero, run_killed_before_first_checkpoint,
        run_killed_before_first_checkpoint_plain_rerun, checkpoint_empty_head,
        checkpoint_preprocess_length_string, checkpoint_empty_class_list, checkpoint_clip_len_1e9,
        checkpoint_layout_list, checkpoint_huge_channel_counts, checkpoint_head_weight_int,
        resume_checkpoint_of_another_model_shape, resume_checkpoint_without_config, resume_wrong_rng_state,
        resume_directory_where_temp_file_expected, resume_directory_where_a_run_file_is_written,
        split_version_string, split_huge_integer,
        split_deep_nesting, split_without_train, out_unwritable_predict, out_unwritable_embed,
        out_unwritable_pretrain, out_unwritable_show, out_unwritable_synth, predict_out_existing_directory,
        run_dir_dangling_symlink, show_fps_nan, synth_n_1e9, npy_subarray_dtype, npz_empty_person_axis,
        hdf5_external_link_to_fifo, hdf5_external_storage_on_fifo, hdf5_virtual_dataset_on_fifo,
        config_billion_laughs_unknown_key, config_billion_laughs_known_key, set_billion_laughs, pretrain_device_cuda_99,
        pretrain_device_meta, pretrain_threads_4096, pretrain_clip_len_100000, predict_device_meta, joint_map_deep_nesting,
        joint_map_sparse_3_gb,
        onnx_metadata_clip_len_1e9, onnx_metadata_without_out_dim, onnx_output_wider_than_metadata,
        export_out_unwritable, export_frames_1e9, export_checkpoint_onnx, export_opset_1, bvh_127_mb_two_character_lines,
    )
}


def run_case(case: Case) -> tuple[int, str, str]:
    """Run ``case`` through ``ssal``'s entry point in this process: ``(code, stdout, stderr)``."""
    from ssal.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(case.argv)
    return code, out.getvalue(), err.getvalue()


def problems(case: Case, code: int, err: str) -> list[str]:
    """What is wrong with the outcome of ``case`` (empty when it behaved)."""
    found = []
    if code != case.code:
        found.append(f"exit code {code}, expected {case.code}")
    if "Traceback" in err:
        found.append("a traceback reached the user")
    if case.code == 2:
        if err.count("\n") != 1 or not err.startswith("error: "):
            found.append(f"stderr is not one 'error:' line: {err[:300]!r}")
        if any(ch in err[:-1] for ch in "\x1b\x07\r\n"):
            found.append("raw control characters in the message")
        if case.says and case.says.lower() not in err.lower():
            found.append(f"the message does not say {case.says!r}: {err[:300]!r}")
    elif case.code == 0 and err.strip():
        found.append(f"stderr not empty: {err[:300]!r}")
    if case.after is not None:
        extra = case.after()
        if extra:
            found.append(extra)
    return found


def vm_hwm() -> int:
    """Peak resident memory of this process in bytes (Linux ``VmHWM``; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memory-gb", type=float, default=0.0, help="address-space limit (RLIMIT_AS), 0: none")
    parser.add_argument("--only", nargs="*", help="run only these cases")
    parser.add_argument("--memory-set", action="store_true", help="run only the cases of the memory set")
    parser.add_argument("--json", action="store_true", help="print one JSON object per case")
    args = parser.parse_args(argv)
    if args.memory_gb > 0:
        import resource

        limit = int(args.memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    torch.set_num_threads(1)
    names = args.only or list(CASES)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="ssal-hostile-") as tmp:
        base = make_base(Path(tmp))
        baseline = vm_hwm()
        for name in names:
            case = CASES[name](base)
            if args.memory_set and not case.memory:
                continue
            t0 = time.monotonic()
            try:
                code, _, err = run_case(case)
                found = problems(case, code, err)
            except BaseException as exc:  # noqa: BLE001 - a crash of the harness is a failure too
                code, err, found = -1, "", [f"{type(exc).__name__}: {exc}"]
            failed += bool(found)
            row = {"case": name, "code": code, "seconds": round(time.monotonic() - t0, 2),
                   "peak_rss_mb": round(vm_hwm() / 2**20), "problems": found, "message": err.strip()[:300]}
            print(json.dumps(row) if args.json else
                  f"{'FAIL' if found else 'ok  '} {name}: exit {code} ({row['seconds']} s, peak {row['peak_rss_mb']} MB)"
                  + (f" -- {'; '.join(found)}" if found else ""), flush=True)
        print(json.dumps({"baseline_rss_mb": round(baseline / 2**20), "peak_rss_mb": round(vm_hwm() / 2**20),
                          "failed": failed}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
