#!/usr/bin/env python
"""Fuzz the inputs that are not datasets: settings files, joint maps, exported ONNX models and
output paths (the ``settings`` stream of ``scripts/fuzz_readers.py``).

Each case is a small file under a work folder whose name says what it is:

* ``config.yaml``: a valid run configuration mutated as text, as bytes and as YAML structure,
  plus alias bombs (aliases of aliases) at random depths; read as ``--config`` is
  (:func:`ssal.config.resolve_config`);
* ``jointmap.yaml``: a joint map mutated the same ways; read by
  :func:`ssal.jointmatch.load_joint_map`;
* ``model.onnx``: an exported classifier whose ssal metadata (a JSON object inside the file) is
  mutated field-wise, or whose bytes are; loaded with :func:`ssal.inference.onnx_model.load_onnx`
  and run on a batch;
* ``outputs.json``: an input file or folder and an output path in a random relation (the same
  path, inside, containing, beside, a symlink to it, a FIFO); checked by
  :func:`ssal.outputs.check_output_file`, which must refuse exactly the paths that would
  overwrite an input.

The rule is the readers': load, or raise :class:`ssal.errors.SsalInputError` with one line, in
bounded time; anything else is a crash. An output path accepted where it would overwrite an
input is a crash too.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import yaml

CONFIG_SEED = """\
method: ssal
seed: 3
data:
  source: builtin
  builtin_n: 64
  val_fraction: 0.2
  window: null
train: {epochs: 2, batch_size: 16, lr: 0.05, lr_milestones: [1]}
model:
  queue_size: 32
  encoder: {name: cffn, channels: [8, 16], strides: [1, 2], image_channels: 4}
  augment: {general: {clip_len: 20, crop_ratio: [0.5, 1.0]}, strong: {jitter_offset_std: 0.05}}
eval: {linear: {epochs: 3}, semi: {fractions: [0.1], seeds: [0]}}
run: {knn_every: 1, progress: false, threads: 1}
"""

JOINT_MAP_SEED = """\
root: Hips
spine: Spine
neck: Neck
head: Head
left_shoulder: LeftArm
"""


def write_settings_seeds(root: Path) -> dict[str, Path]:
    """The valid seeds: a config, a joint map and (when onnx is installed) an exported model."""
    root.mkdir(parents=True, exist_ok=True)
    seeds = {"config": root / "config.yaml", "jointmap": root / "jointmap.yaml"}
    seeds["config"].write_text(CONFIG_SEED, encoding="utf-8")
    seeds["jointmap"].write_text(JOINT_MAP_SEED, encoding="utf-8")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return seeds
    from ssal.data.preprocess import PreprocessConfig
    from ssal.inference import save_classifier
    from ssal.inference.export import export_model
    from ssal.models import build_encoder
    from ssal.models.heads import LinearClassifier
    from ssal.skeleton import EGAIT16

    cfg = {"name": "stgcn", "base_channels": 4, "num_layers": 2, "hidden_dim": None}
    enc = build_encoder(cfg, EGAIT16)
    save_classifier(root / "classifier.pt", enc, LinearClassifier(enc.out_dim, 4), encoder_config=cfg,
                    layout=EGAIT16, classes=["happy", "angry", "sad", "neutral"],
                    preprocess=PreprocessConfig(length=16).to_dict(), clip_len=16, protocol="linear")
    export_model(root / "classifier.pt", "onnx", root / "model.onnx")
    seeds["onnx"] = root / "model.onnx"
    return seeds


# ---------------------------------------------------------------------------------------------
# mutations
# ---------------------------------------------------------------------------------------------

HOSTILE = [None, True, -1, 0, 2**63, 1e308, float("nan"), "", "x" * 300, [], {}, [1, "a"], {"a": {"b": {}}},
           "\x1b[31m", "a\nb", -1e-9, 10**9]


def alias_bomb(rng: random.Random) -> str:
    """A YAML document of aliases of aliases (``depth`` levels of ``width`` references each),
    under a known or an unknown key."""
    depth, width = rng.randint(2, 12), rng.randint(2, 9)
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for d in range(1, depth):
        lines.append(f"a{d}: &a{d} [" + ", ".join([f"*a{d - 1}"] * width) + "]")
    key = rng.choice(["model", "data", "train", "zzz", "run"])
    lines.append(f"{key}: {{queue_size: *a{depth - 1}}}")
    return "\n".join(lines) + "\n"


def _slots(node, path=()):
    """Every ``(path, value)`` of a nested mapping / list."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _slots(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _slots(v, (*path, i))


def mutate_tree(rng: random.Random, tree) -> tuple[object, str]:
    """One field of a YAML/JSON tree replaced by a hostile value, removed, or renamed."""
    tree = copy.deepcopy(tree)
    slots = [s for s in _slots(tree) if s[0]]
    if not slots:
        return rng.choice(HOSTILE), "whole document replaced"
    path, _ = rng.choice(slots)
    parent = tree
    for k in path[:-1]:
        parent = parent[k]
    r = rng.random()
    if r < 0.6:
        value = rng.choice(HOSTILE)
        parent[path[-1]] = value
        return tree, f"{'.'.join(map(str, path))} = {value!r:.60}"
    if r < 0.8 and isinstance(parent, dict):
        del parent[path[-1]]
        return tree, f"{'.'.join(map(str, path))} removed"
    if isinstance(parent, dict):
        parent[f"{path[-1]}_x"] = parent.pop(path[-1])
        return tree, f"{'.'.join(map(str, path))} renamed"
    return tree, "unchanged"


def mutate_bytes(rng: random.Random, data: bytes) -> tuple[bytes, str]:
    """Bit flips, truncation, insertion of control or binary bytes."""
    b = bytearray(data)
    r = rng.random()
    if r < 0.3 and b:
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b), "bit flips"
    if r < 0.5:
        return bytes(b[: rng.randrange(len(b) + 1)]), "truncated"
    if r < 0.8:
        i = rng.randrange(len(b) + 1)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        return bytes(b[:i] + junk + b[i:]), "binary inserted"
    i = rng.randrange(len(b) + 1)
    return bytes(b[:i] + rng.choice([b"&a ", b"*a ", b"!!python/object:os.system ", b"{{{{", b"- - - -"]) + b[i:]), \
        "YAML syntax inserted"


def _yaml_case(rng: random.Random, seed_text: str) -> tuple[bytes, str]:
    r = rng.random()
    if r < 0.15:
        return alias_bomb(rng).encode(), "alias bomb"
    if r < 0.6:
        tree, how = mutate_tree(rng, yaml.safe_load(seed_text))
        try:
            return yaml.safe_dump(tree, allow_unicode=True).encode("utf-8", "surrogatepass"), f"field: {how}"
        except (yaml.YAMLError, UnicodeEncodeError):
            return seed_text.encode(), "unchanged (mutation not representable)"
    data, how = mutate_bytes(rng, seed_text.encode())
    return data, f"bytes: {how}"


def _onnx_case(rng: random.Random, seed: Path, case: Path) -> str:
    """A copy of the exported model with its ssal metadata mutated (or its bytes)."""
    import onnx

    if rng.random() < 0.2:
        data, how = mutate_bytes(rng, seed.read_bytes())
        case.write_bytes(data)
        return f"onnx bytes: {how}"
    model = onnx.load(str(seed))
    props = {p.key: p for p in model.metadata_props}
    meta = json.loads(props["ssal"].value)
    tree, how = mutate_tree(rng, meta)
    props["ssal"].value = json.dumps(tree, allow_nan=True) if rng.random() < 0.9 else "{not json"
    onnx.save(model, str(case))
    return f"onnx metadata: {how}"


RELATIONS = ("same", "inside_folder", "contains", "beside", "symlink", "fifo", "unrelated", "parent_missing")


def _output_case(rng: random.Random, case: Path) -> tuple[Path, str]:
    """An input (a file or a folder of files) and an output path in a random relation; the
    case file ``outputs.json`` says which, and whether the guard must refuse it (``None``: either
    answer is right)."""
    folder = case / "in"
    folder.mkdir()
    (folder / "walk.bvh").write_text("HIERARCHY\n", encoding="utf-8")
    (folder / "labels.csv").write_text("walk.bvh,happy\n", encoding="utf-8")
    input_is_folder = rng.random() < 0.5
    inp = folder if input_is_folder else folder / "walk.bvh"
    rel = rng.choice(RELATIONS)
    must_refuse = True
    if rel == "same":
        out = inp if not input_is_folder else folder / "labels.csv"
    elif rel == "inside_folder":
        out = folder / rng.choice(["labels.csv", "walk.bvh", "new.csv"])
        # an existing file needs --overwrite; a new file inside a folder that is read may go either way
        must_refuse = True if out.exists() else None
    elif rel == "contains":
        out = case  # a directory holding the input
    elif rel == "beside":
        out = case / "predictions.csv"
        must_refuse = False
    elif rel == "symlink":
        out = case / "link.csv"
        target = inp if not input_is_folder else folder / "labels.csv"
        os.symlink(target, out)
    elif rel == "fifo":
        out = case / "pipe.csv"
        os.mkfifo(out)
    elif rel == "parent_missing":
        out = case / "no" / "such" / "out.csv"
    else:
        out = case / "other" / "out.csv"
        out.parent.mkdir()
        must_refuse = False
    spec = {"input": str(inp), "output": str(out), "relation": rel, "must_refuse": must_refuse}
    p = case / "outputs.json"
    p.write_text(json.dumps(spec), encoding="utf-8")
    return p, f"output {rel} (input {'folder' if input_is_folder else 'file'})"


def settings_inputs(rng: random.Random, work: Path, seeds: dict[str, Path]) -> Iterator[tuple[Path, str]]:
    """An endless stream of mutated settings files, ONNX models and output-path cases."""
    texts = {k: seeds[k].read_text(encoding="utf-8") for k in ("config", "jointmap")}
    kinds = ["config", "config", "jointmap", "outputs", "outputs"] + (["onnx", "onnx"] if "onnx" in seeds else [])
    count = 0
    while True:
        count += 1
        case = work / f"settings{count % 4}"
        if case.exists() or case.is_symlink():
            shutil.rmtree(case)
        case.mkdir()
        kind = rng.choice(kinds)
        if kind == "outputs":
            yield _output_case(rng, case)
            continue
        if kind == "onnx":
            p = case / "model.onnx"
            yield p, _onnx_case(rng, seeds["onnx"], p)
            continue
        data, how = _yaml_case(rng, texts[kind])
        p = case / f"{kind}.yaml"
        p.write_bytes(data)
        yield p, f"{kind}: {how}"


def try_setting(path: Path) -> str | None:
    """Read one settings case as the commands do; ``None`` when it loaded or was refused with
    one line, else the problem (raised exceptions are left to the caller's net)."""
    from ssal.errors import SsalInputError

    try:
        if path.name == "config.yaml":
            from ssal.config import resolve_config

            resolve_config("ssal", path)
        elif path.name == "jointmap.yaml":
            from ssal.jointmatch import load_joint_map
            from ssal.skeleton import EGAIT16

            load_joint_map(path, EGAIT16.joints)
        elif path.name == "model.onnx":
            from ssal.inference.onnx_model import load_onnx

            model = load_onnx(path)
            x = np.zeros((2, 3, 12, model.layout.num_joints), dtype=np.float32) + np.arange(model.layout.num_joints)
            out = model.predict(x) if model.has_classifier else model.embed(x)
            if out.shape[0] != 2 or not np.isfinite(out).all():
                return f"ONNX model returned {out.shape} / non-finite values"
        elif path.name == "outputs.json":
            from ssal.outputs import check_output_file

            spec = json.loads(path.read_text(encoding="utf-8"))
            try:
                check_output_file(spec["output"], inputs=[spec["input"]])
            except SsalInputError as exc:
                if "\n" in str(exc):
                    return f"SsalInputError message spans several lines: {exc!r}"
                if spec["must_refuse"] is False:
                    return f"output path refused though it overwrites nothing: {spec} ({exc.one_line()})"
                return None
            if spec["must_refuse"] is True:
                return f"output path accepted though it would overwrite an input or a special file: {spec}"
        return None
    except SsalInputError as exc:
        if "\n" in str(exc):
            return f"SsalInputError message spans several lines: {exc!r}"
        return None


__all__ = ["alias_bomb", "settings_inputs", "try_setting", "write_settings_seeds"]
