"""Property-based tests (hypothesis) of the command line against hostile checkpoints, split
files, configs and output paths (issue 15).

Each property generates inputs with random field types and sizes and runs ``ssal`` in this
process. Inputs that are invalid by construction must give exit code 2 with exactly one
``error:`` line and no traceback (and write nothing); inputs that may happen to be valid (a
checkpoint field set to a value of the right type) must give exit code 0 or that one line.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.cli.main import main
from ssal.config import DEFAULTS, RANGES

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("hostile_cases", ROOT / "scripts" / "hostile_cases.py")
cases = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("hostile_cases", cases)
_spec.loader.exec_module(cases)

PROPS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

#: Control characters and line breaks that must never reach the terminal raw.
RAW = ("\x1b", "\x07", "\r", "\u2028")


def run(argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, err.getvalue()


def assert_one_line(code: int, err: str, allow_ok: bool = False) -> None:
    assert "Traceback" not in err
    if allow_ok and code == 0:
        return
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1, repr(err)
    assert not any(c in err[:-1] for c in RAW), repr(err)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    threads = torch.get_num_threads()
    yield cases.make_base(tmp_path_factory.mktemp("props"))
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------------
# value strategies
# ------------------------------------------------------------------------------------------

texts = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2**70, 2**70), st.sampled_from([0, -1, 10**9, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True), texts,
)
tensors = st.builds(
    lambda shape, dtype: torch.zeros(shape, dtype=dtype),
    st.lists(st.integers(0, 5), max_size=3),
    st.sampled_from([torch.float32, torch.float64, torch.int64, torch.uint8, torch.bool]),
)
values = st.recursive(st.one_of(scalars, tensors),
                      lambda inner: st.one_of(st.lists(inner, max_size=4),
                                              st.dictionaries(texts, inner, max_size=4)), max_leaves=8)


# ------------------------------------------------------------------------------------------
# checkpoints
# ------------------------------------------------------------------------------------------

CHECKPOINT_FIELDS = [
    ("layout",), ("classes",), ("clip_len",), ("feature",), ("preprocess",), ("encoder_config",), ("encoder",),
    ("head",), ("format_version",), ("kind",), ("config",),
    ("preprocess", "length"), ("preprocess", "center"), ("preprocess", "scale"), ("preprocess", "max_frames"),
    ("encoder_config", "name"), ("encoder_config", "base_channels"), ("encoder_config", "num_layers"),
    ("encoder_config", "channels"), ("encoder_config", "temporal_kernel"), ("encoder_config", "dropout"),
    ("head", "fc.weight"), ("head", "fc.bias"),
]


@PROPS
@given(field=st.sampled_from(CHECKPOINT_FIELDS), value=values, drop=st.booleans())
def test_checkpoints_with_random_fields(base, tmp_path_factory, field, value, drop):
    state = torch.load(base.classifier, weights_only=True)
    node = state
    for key in field[:-1]:
        node = node[key]
    if drop:
        node.pop(field[-1], None)
    else:
        node[field[-1]] = value
    path = tmp_path_factory.mktemp("ck") / "c.pt"
    torch.save(state, path)
    code, err = run(["predict", "--checkpoint", str(path), str(base.data)])
    assert_one_line(code, err, allow_ok=True)


@PROPS
@given(data=st.binary(max_size=2000), keep=st.integers(0, 100_000))
def test_checkpoints_cut_and_spliced(base, tmp_path_factory, data, keep):
    raw = base.classifier.read_bytes()
    path = tmp_path_factory.mktemp("ckb") / "c.pt"
    path.write_bytes(raw[: keep % (len(raw) + 1)] + data)
    code, err = run(["predict", "--checkpoint", str(path), str(base.data)])
    assert_one_line(code, err, allow_ok=True)


# ------------------------------------------------------------------------------------------
# split files
# ------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**80, 2**80), st.floats(allow_nan=False), texts),
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(texts, inner, max_size=5)), max_leaves=10)


@st.composite
def invalid_splits(draw) -> str:
    """Split-file texts that cannot be valid for the 4-sequence data."""
    kind = draw(st.sampled_from(["doc", "part", "index", "nesting", "huge", "bytes"]))
    doc = {"format": "ssal-split", "version": 1, "parts": {"train": [0, 1], "val": [2], "test": [3]}}
    if kind == "doc":
        key = draw(st.sampled_from(["format", "version", "parts"]))
        bad = draw(json_values.filter(lambda v: v != doc[key] and not (key == "version" and v is True)))
        doc[key] = bad
        if key == "parts" and isinstance(bad, dict) and "train" in bad:
            doc[key] = {**bad, "train": "not a list"}
    elif kind == "part":
        part = draw(st.sampled_from(["train", "val", "test"]))
        doc["parts"][part] = draw(json_values.filter(lambda v: not (isinstance(v, list) and all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 4 for i in v))))
        if part != "train" and isinstance(doc["parts"][part], list) and not doc["parts"][part]:
            doc["parts"][part] = [-1]
    elif kind == "index":
        doc["parts"]["train"].append(draw(st.one_of(st.integers(4, 2**80), st.integers(-2**80, -1), st.sampled_from(
            [0, 1, 1.5, "0", None, True, []]))))
    elif kind == "nesting":
        depth = draw(st.integers(1000, 200_000))
        return "[" * depth + "]" * draw(st.sampled_from([0, depth]))
    elif kind == "huge":
        return '{"format": "ssal-split", "parts": {"train": [' + "9" * draw(st.integers(20, 6000)) + "]}}"
    else:
        return draw(st.binary(max_size=200)).decode("latin-1")
    return json.dumps(doc)


@PROPS
@given(text=invalid_splits())
def test_split_files_with_random_fields(base, tmp_path_factory, text):
    d = tmp_path_factory.mktemp("split")
    (d / "split.json").write_text(text, encoding="utf-8", errors="surrogatepass")
    out = d / "out"
    code, err = run(["knn", "--checkpoint", str(base.encoder), "--data", str(base.data), "--split",
                     str(d / "split.json"), "--out", str(out)])
    assert_one_line(code, err)
    assert not (out / "results.json").exists()


# ------------------------------------------------------------------------------------------
# configs
# ------------------------------------------------------------------------------------------


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


SETTINGS = {k: v for k, v in _flat(DEFAULTS).items() if k not in ("model",)}
letters = st.text(alphabet="abcdefghij_", min_size=1, max_size=12).filter(
    lambda t: t not in ("y", "n", "yes", "no", "on", "off", "true", "false", "null", "nan", "inf"))


#: Settings that ``cases.tiny_run_args`` passes as flags, which override ``--set``.
FLAG_KEYS = {"run.device", "seed", "run.progress"}


@st.composite
def invalid_settings(draw) -> tuple[str, str]:
    """``--set key=value`` pairs whose value cannot be valid for the key.

    Keys that the tiny run's own flags set (``--device``, ``--seed``, ``--no-progress``) are left
    out: a command-line flag deliberately wins over ``--set``."""
    key = draw(st.sampled_from(sorted(k for k in SETTINGS if k not in FLAG_KEYS)))
    default = SETTINGS[key]
    if key == "data.units":  # a text (a unit's name) or a positive number
        value = draw(st.sampled_from(["-5", "0", "[1, 2]", "{a: 1}", "true", ".nan"]))
    elif isinstance(default, bool):
        value = draw(st.one_of(letters, st.integers(-5, 5).map(str), st.just("[1, 2]"), st.just("{a: 1}")))
    elif isinstance(default, (int, float)):
        below = None
        if key in RANGES:
            lo, hi, _ = RANGES[key]
            below = st.sampled_from([repr(lo - 1) if isinstance(lo, int) else repr(lo - 1.0), repr(hi * 10 + 10)])
        options = [letters, st.just(".nan"), st.just(".inf"), st.just("[1, 2]"), st.just("{a: 1}"), st.just("true")]
        if isinstance(default, int) and not isinstance(default, bool):
            options.append(st.just("1.5"))
        value = draw(st.one_of(*(options + ([below] if below is not None else []))))
    elif isinstance(default, str):
        value = draw(st.one_of(st.integers(-5, 5).map(str), st.just("[1, 2]") if key != "data.label_map" else st.just("[1]"),
                               st.just("{a: 1}"), st.just("1.5")))
    elif isinstance(default, list):
        value = draw(st.one_of(letters, st.just("[a, b]"), st.just("[-1]"), st.just("{a: 1}"), st.just("3")))
    else:  # None defaults: optional numbers or texts
        value = draw(st.one_of(st.just("[1, 2]"), st.just("{a: 1}"), st.just("-5") if key != "data.labels" else
                               st.just("[x]")))
    return key, value


@PROPS
@given(pair=invalid_settings())
def test_configs_with_random_settings(base, tmp_path_factory, pair):
    key, value = pair
    out = tmp_path_factory.mktemp("cfg") / "run"
    code, err = run(cases.tiny_run_args(out, "--set", f"{key}={value}", epochs=key != "train.epochs"))
    assert_one_line(code, err)
    assert not out.exists() or not any(out.iterdir())


@PROPS
@given(text=st.one_of(texts, st.dictionaries(texts, json_values, max_size=4).map(json.dumps),
                      st.binary(max_size=100).map(lambda b: b.decode("latin-1"))))
def test_config_files_with_random_content(base, tmp_path_factory, text):
    d = tmp_path_factory.mktemp("cfgfile")
    (d / "c.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    code, err = run(cases.tiny_run_args(d / "run", "--config", str(d / "c.yaml")))
    # Most random YAML is refused (unknown keys, not a mapping); a few texts are empty or a
    # plain scalar-free mapping and run: either way no traceback and at most one line.
    assert_one_line(code, err, allow_ok=True)


# ------------------------------------------------------------------------------------------
# output paths
# ------------------------------------------------------------------------------------------

OUT_KINDS = ["proc", "under_a_file", "missing_parent", "dangling_link", "dir_for_file", "file_for_dir",
             "nonempty_dir", "link_loop"]


def _make_out(root: Path, kind: str, name: str, want_dir: bool) -> Path:
    if kind == "proc":
        return Path("/proc/ssal-no-such-dir") / name
    if kind == "under_a_file":
        (root / "plain").write_text("x")
        return root / "plain" / name
    if kind == "missing_parent":
        return root / "no" / "such" / name if not want_dir else Path("/proc/ssal-none") / name
    if kind == "dangling_link":
        link = root / name
        link.symlink_to(root / "nothing-here")
        return link
    if kind == "dir_for_file" or (kind == "nonempty_dir" and not want_dir):
        d = root / name
        d.mkdir()
        (d / "keep").write_text("x")
        return d
    if kind == "file_for_dir":
        f = root / name
        f.write_text("x")
        return f if want_dir else Path("/proc/ssal-none") / name
    if kind == "nonempty_dir":
        d = root / name
        d.mkdir()
        (d / "keep").write_text("x")
        return d
    a, b = root / f"{name}.a", root / f"{name}.b"
    a.symlink_to(b)
    b.symlink_to(a)
    return a


@PROPS
@given(command=st.sampled_from(["predict", "embed", "show", "synth", "pretrain", "knn", "linear", "supervised"]),
       kind=st.sampled_from(OUT_KINDS),
       stem=st.text(alphabet=st.sampled_from("ab\n\x1b\x07 é"), min_size=1, max_size=8))
def test_output_paths(base, tmp_path_factory, command, kind, stem):
    root = tmp_path_factory.mktemp("out")
    suffix = {"predict": ".csv", "embed": ".npy", "show": ".gif", "synth": ".npz"}.get(command, "")
    want_dir = suffix == ""
    out = _make_out(root, kind, "o" + stem + suffix, want_dir)
    before = sorted(p.name for p in root.rglob("*"))
    argv = {
        "predict": ["predict", "--checkpoint", str(base.classifier), str(base.data), "--out", str(out)],
        "embed": ["embed", "--checkpoint", str(base.classifier), str(base.data), "--out", str(out)],
        "show": ["show", str(base.data), "--out", str(out)],
        "synth": ["data", "synth", "--n", "8", "--out", str(out)],
        "pretrain": cases.tiny_run_args(out),
        "knn": ["knn", "--checkpoint", str(base.encoder), "--data", str(base.data), "--out", str(out)],
        "linear": ["linear", "--checkpoint", str(base.encoder), "--data", str(base.data), "--out", str(out)],
        "supervised": ["supervised", "--data", str(base.data), "--out", str(out), "--epochs", "1"],
    }[command]
    code, err = run(argv)
    assert_one_line(code, err)
    assert sorted(p.name for p in root.rglob("*")) == before  # nothing half-written


def test_unexpected_exceptions_become_one_line_with_a_debug_hint(monkeypatch):
    from ssal.cli import data_cmd

    def boom(args):
        raise ZeroDivisionError("line one\nline two\x1b[31m")

    monkeypatch.setattr(data_cmd, "cmd_info", boom)
    code, err = run(["data", "info", "builtin"])
    assert code == 1 and err.count("\n") == 1 and "Traceback" not in err
    assert "ZeroDivisionError" in err and "--debug" in err and "\x1b" not in err
    with pytest.raises(ZeroDivisionError):
        run(["--debug", "data", "info", "builtin"])


def test_numpy_warnings_never_reach_the_user(tmp_path):
    # float overflow inside numpy warns; the CLI's net keeps stderr to the one error line
    from ssal.data.egait import write_egait

    seq = cases.walker(np.random.default_rng(0), 8) * 1e300
    write_egait(tmp_path / "f.h5", None, [seq], None, ["a"])
    code, err = run(["data", "info", str(tmp_path / "f.h5")])
    assert_one_line(code, err)
    assert "Warning" not in err and math.isfinite(1.0)
