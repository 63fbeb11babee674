"""The ssal metadata and the declared shapes of an exported ONNX file are checked at load.

A small hand-built ONNX graph (mean over time and joints, a matrix product, softmax) stands in
for an export, so that hundreds of mutated files can be loaded in seconds: every mutation of
the metadata (a field removed, a wrong type, a number out of range, another version, not JSON)
and every graph whose input or output does not fit the metadata is a one-line
:class:`SsalInputError` from :func:`load_onnx`, never another exception; opening a model writes
nothing under ``$HOME`` (onnxruntime's telemetry is off).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ssal.data.preprocess import MAX_LENGTH, PreprocessConfig
from ssal.errors import SsalInputError
from ssal.inference.onnx_model import KINDS, REQUIRED_FIELDS, check_export_metadata, load_onnx
from ssal.skeleton import LAYOUTS
from ssal.training.checkpoint_fields import FEATURES, MAX_OUTPUT_DIM

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ["happy", "angry", "sad", "neutral"]
V = 16
BASE_META = {
    "version": 1, "kind": "classifier", "source": "classifier.pt", "layout": "egait16", "classes": CLASSES,
    "preprocess": PreprocessConfig(length=40).to_dict(), "clip_len": 24, "example_frames": 24, "out_dim": 4,
    "feature": "output", "method": "skeletonclr",
    "encoder_config": {"name": "stgcn", "channels": [8, 16, 16], "dropout": 0.0},
}


def model_bytes(meta: object = BASE_META, *, in_shape=("N", 3, "T", V), out_shape=("N", 4), width: int = 4,
                channels: int = 3, inputs: int = 1, raw: str | None = None, axes=(2, 3)) -> bytes:
    """A serialised ONNX model ``x -> softmax(mean_{T,V}(x) @ W)`` with ``meta`` as its ssal metadata."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape) if in_shape is not None else None)
    y = helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                      list(out_shape) if out_shape is not None else None)
    w = numpy_helper.from_array(np.random.RandomState(0).randn(channels, width).astype(np.float32), "W")
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=list(axes), keepdims=0),
             helper.make_node("MatMul", ["m", "W"], ["l"]),
             helper.make_node("Softmax", ["l"], ["probabilities"], axis=1)]
    graph_inputs = [x] + [helper.make_tensor_value_info(f"extra{i}", TensorProto.FLOAT, ["N"]) for i in range(inputs - 1)]
    graph = helper.make_graph(nodes, "g", graph_inputs, [y], initializer=[w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None or raw is not None:
        helper.set_model_props(model, {"ssal": raw if raw is not None else json.dumps(meta)})
    return model.SerializeToString()


@pytest.fixture
def write(tmp_path):
    counter = iter(range(10**9))

    def _write(data: bytes) -> Path:
        p = tmp_path / f"m{next(counter)}.onnx"
        p.write_bytes(data)
        return p
    return _write


def test_valid_file_loads_and_predicts(write):
    model = load_onnx(write(model_bytes()))
    assert model.classes == CLASSES and model.clip_len == 24 and model.kind == "classifier"
    probs = model.predict(np.random.default_rng(0).normal(size=(5, 3, 30, V)).astype(np.float32))
    assert probs.shape == (5, 4) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert 1 <= model.batch_size <= 512


def _not(valid):
    return lambda v: not valid(v)


def _whole_in(lo, hi):
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


ANY = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
#: Per field, values that must be refused.
BAD_VALUES = {
    "version": ANY.filter(lambda v: not (type(v) is int and v == 1)),
    "kind": ANY.filter(lambda v: v not in KINDS),
    "layout": ANY.filter(lambda v: not (isinstance(v, str) and v in LAYOUTS)),
    "classes": ANY.filter(lambda v: not isinstance(v, list)) | st.just([]) | st.just(["a", "a"])
    | st.lists(st.integers(), min_size=1, max_size=3) | st.just(["x" * 201]) | st.just([f"c{i}" for i in range(1001)]),
    "preprocess": ANY.filter(lambda v: not isinstance(v, dict))
    | st.dictionaries(st.sampled_from(["length", "min_frames", "max_frames", "center", "scale", "nope"]),
                      # a whole float (1.0) is a valid count: PreprocessConfig reads it as the int
                      st.one_of(st.text(max_size=4), st.floats().filter(lambda f: not float(f).is_integer()),
                                st.integers(-2**70, 0), st.integers(10**6, 2**70),
                                st.lists(st.integers(), max_size=2)), min_size=1, max_size=3).filter(
        lambda d: "nope" in d or any(not isinstance(v, bool) and not (isinstance(v, int) and v > 0)
                                     for k, v in d.items() if k in ("length", "min_frames", "max_frames"))
        or any(not isinstance(v, str) for k, v in d.items() if k == "center")),
    "clip_len": ANY.filter(lambda v: v is not None and not _whole_in(1, MAX_LENGTH)(v))
    | st.integers(MAX_LENGTH + 1, 2**70) | st.integers(-2**70, 0) | st.just(1e9),
    "out_dim": ANY.filter(lambda v: not _whole_in(4, 4)(v)) | st.integers(MAX_OUTPUT_DIM + 1, 2**70)
    | st.integers(-2**70, 0) | st.integers(5, MAX_OUTPUT_DIM) | st.just(4.0),
    "feature": ANY.filter(lambda v: v is not None and v not in FEATURES),
    "example_frames": ANY.filter(lambda v: v is not None and not _whole_in(1, MAX_LENGTH)(v)),
    "source": ANY.filter(lambda v: v is not None and not isinstance(v, str)) | st.just("s" * 1001),
    "method": ANY.filter(lambda v: v is not None and not isinstance(v, str)),
    "encoder_config": ANY.filter(lambda v: v is not None and not isinstance(v, dict))
    | st.just({"name": "stgcn", "channels": [10**6] * 4}) | st.just({"name": "no-such-encoder"})
    | st.just({"name": "stgcn", "channels": float("nan")}),
}


@st.composite
def mutated(draw):
    """``(what, raw metadata text)`` of a mutation that must be refused."""
    how = draw(st.sampled_from(["remove", "value", "value", "value", "whole", "raw"]))
    meta = json.loads(json.dumps(BASE_META))
    if how == "remove":
        name = draw(st.sampled_from(REQUIRED_FIELDS))
        del meta[name]
        return f"without {name}", json.dumps(meta)
    if how == "value":
        name = draw(st.sampled_from(sorted(BAD_VALUES)))
        meta[name] = draw(BAD_VALUES[name])
        return f"{name}={meta[name]!r:.80}", json.dumps(meta)
    if how == "whole":
        value = draw(ANY.filter(lambda v: not isinstance(v, dict)))
        return f"metadata {value!r:.80}", json.dumps(value)
    return "raw", draw(st.sampled_from(["", "{", "not json", "[" * 100_000 + "]" * 100_000,
                                        '{"version": 1, ' * 50_000, "x" * (5 * 2**20)]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=mutated())
def test_any_metadata_mutation_is_one_ssal_input_error_from_load_onnx(write, case):
    what, raw = case
    path = write(model_bytes(raw=raw))
    with pytest.raises(SsalInputError) as info:
        load_onnx(path)
    msg = info.value.one_line()
    assert path.name in msg and "\n" not in msg, (what, msg)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=mutated().filter(lambda c: c[0] != "raw"))
def test_the_validator_names_the_field(case):
    what, raw = case
    with pytest.raises(SsalInputError) as info:
        check_export_metadata(json.loads(raw), "model.onnx")
    msg = info.value.one_line()
    assert msg.startswith("model.onnx: ")
    if what.startswith("without ") or ("=" in what and not what.startswith("metadata ")):
        field = what.split()[-1] if what.startswith("without ") else what.split("=")[0]
        assert repr(field) in msg or field in msg, (what, msg)


def test_encoder_kind_accepts_any_width_and_clip_len_null():
    meta = {**BASE_META, "kind": "encoder", "out_dim": 256, "clip_len": None}
    checked = check_export_metadata(meta, "e.onnx")
    assert checked.out_dim == 256 and checked.clip_len is None and checked.kind == "encoder"


@pytest.mark.parametrize("graph, says", [
    (dict(out_shape=("N", 5), width=5), "output has shape (?, 5)"),
    (dict(in_shape=("N", 2, "T", V), channels=2), "input has shape (?, 2, ?, 16)"),
    (dict(in_shape=("N", 3, "T", 17)), "input has shape (?, 3, ?, 17)"),
    (dict(in_shape=("N", 3, V), axes=(2,)), "input has shape (?, 3, 16)"),
    (dict(out_shape=("N", 4, 1)), "output has shape"),  # onnxruntime merges it to unknown
    (dict(in_shape=(2, 3, "T", V), out_shape=(2, 4)), "fixed batch size of 2"),
    (dict(in_shape=("N", 3, 30, V)), "fixed length of 30 frames"),
    (dict(inputs=2), "2 inputs"),
])
def test_graph_that_does_not_fit_the_metadata_is_refused_at_load(write, graph, says):
    path = write(model_bytes(**graph))
    with pytest.raises(SsalInputError) as info:
        load_onnx(path)
    assert says in info.value.one_line() and path.name in info.value.one_line()


def test_output_wider_than_declared_is_refused_at_load_or_predict_never_a_broadcast_error(write):
    path = write(model_bytes(width=5))  # declares (N, 4), computes (N, 5)
    try:
        model = load_onnx(path)
    except SsalInputError:
        return
    with pytest.raises(SsalInputError, match=path.name):
        model.predict(np.zeros((3, 3, 24, V), np.float32))


def test_not_a_file_and_missing_metadata(write, tmp_path):
    with pytest.raises(SsalInputError, match="directory"):
        load_onnx(tmp_path)
    with pytest.raises(SsalInputError, match="no ssal metadata"):
        load_onnx(write(model_bytes(meta=None)))
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)
    with pytest.raises(SsalInputError, match="not a regular file"):
        load_onnx(fifo)


def test_reading_a_model_writes_nothing_under_home(write, tmp_path, monkeypatch):
    """onnxruntime writes ~/.cache/Microsoft/DeveloperTools/.onnxruntime/{deviceid,onnxruntime.db}
    when imported without ORT_DISABLE_TELEMETRY; ssal sets it before importing onnxruntime. A
    child process, since this one may have imported onnxruntime already."""
    path = write(model_bytes())
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("ORT_DISABLE_TELEMETRY", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(ROOT / "src"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    code = ("import sys, numpy as np, ssal\n"
            "m = ssal.load(sys.argv[1])\n"
            "p = m.predict(np.zeros((2, 3, 24, 16), np.float32))\n"
            "assert p.shape == (2, 4)\n"
            "import onnxruntime\n")
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(str(p.relative_to(home)) for p in home.rglob("*")) == []
