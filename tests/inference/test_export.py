"""``ssal export`` (ONNX through onnxruntime, TorchScript) and ``ssal predict`` on an ONNX file.

One module-scoped export per encoder kind (the dynamo exporter costs seconds per model), reused
by the parity, dynamic-shape and predict tests. Skipped where onnxruntime / onnxscript are not
installed (they are in the ``test`` extra).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

import ssal
from ssal.cli.main import main
from ssal.data.preprocess import PreprocessConfig
from ssal.errors import SsalInputError
from ssal.inference import save_classifier
from ssal.models import build_encoder
from ssal.models.heads import LinearClassifier
from ssal.skeleton import EGAIT16
from synthetic_npz import write_synthetic_npz  # tests/synthetic_npz.py

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

CLASSES = ["happy", "angry", "sad", "neutral"]
ENCODERS = {
    "stgcn": {"name": "stgcn", "channels": [8, 16, 16], "dropout": 0.0},
    "cffn": {"name": "cffn", "out_dim": 16, "channels": [8, 16, 16], "dropout": 0.0, "image_channels": 8,
             "image_depth": 1, "image_blocks": 2, "image_mlp_ratio": 1.0},
}


def _randomise_batchnorm(module: torch.nn.Module, seed: int) -> None:
    """Non-trivial running statistics, so that exports and folds are tested on real affines."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(torch.rand(n, generator=g) - 0.5)


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def exported(request, tmp_path_factory):
    name = request.param
    root = tmp_path_factory.mktemp(f"export_{name}")
    torch.manual_seed(0)
    enc = build_encoder(ENCODERS[name], EGAIT16)
    _randomise_batchnorm(enc, 1)
    head = LinearClassifier(enc.out_dim, len(CLASSES))
    with torch.no_grad():
        # Centre and scale the logits on random input (untrained features barely vary), so the
        # probabilities depend strongly on the input and the parity checks can see errors.
        feats = enc.eval()(torch.randn(16, 3, 24, 16, generator=torch.Generator().manual_seed(9)))
        logits = (feats - feats.mean(0)) @ head.fc.weight.T
        head.fc.weight.mul_(2.0 / logits.std(0, keepdim=True).T)
        head.fc.bias.copy_(-head.fc.weight @ feats.mean(0))
    save_classifier(root / "classifier.pt", enc, head, encoder_config=ENCODERS[name], layout=EGAIT16,
                    classes=CLASSES, preprocess=PreprocessConfig(length=40).to_dict(), clip_len=24,
                    protocol="linear")
    rc = main(["export", "--checkpoint", str(root / "classifier.pt"), "--format", "onnx",
               "--out", str(root / "model.onnx")])
    assert rc == 0
    return {"name": name, "root": root, "checkpoint": root / "classifier.pt", "onnx": root / "model.onnx"}


def test_onnx_probabilities_equal_pytorch_at_any_batch_and_length(exported):
    model = ssal.load(exported["checkpoint"], optimize=False)
    sess = ort.InferenceSession(str(exported["onnx"]), providers=["CPUExecutionProvider"])
    assert [d if isinstance(d, int) else "dyn" for d in sess.get_inputs()[0].shape] == ["dyn", 3, "dyn", 16]
    g = torch.Generator().manual_seed(2)
    for n, t in ((1, 24), (7, 24), (3, 31)):
        x = torch.randn(n, 3, t, 16, generator=g)
        with torch.no_grad():
            ref = torch.softmax(model.head(model.encoder(x)), dim=1).numpy()
        got = sess.run(None, {"x": x.numpy()})[0]
        assert got.shape == (n, len(CLASSES))
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-4)
        assert n == 1 or np.abs(ref - ref.mean(axis=0)).max() > 0.05  # outputs depend on the input


def test_predict_on_onnx_equals_predict_on_checkpoint(exported, tmp_path, capsys):
    write_synthetic_npz(tmp_path / "in.npz", 5, seed=3)
    out = {}
    for kind in ("checkpoint", "onnx"):
        path = tmp_path / f"{kind}.csv"
        assert main(["predict", "--checkpoint", str(exported[kind]), str(tmp_path / "in.npz"), "--out", str(path)]) == 0
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
        out[kind] = (rows, np.array([[float(r[c]) for c in CLASSES] for r in rows]))
    capsys.readouterr()
    assert [r["name"] for r in out["onnx"][0]] == [r["name"] for r in out["checkpoint"][0]]
    np.testing.assert_allclose(out["onnx"][1], out["checkpoint"][1], rtol=0, atol=1e-4)
    # The API path as well, on the unrounded probabilities.
    onnx_model = ssal.load(exported["onnx"])
    assert onnx_model.has_classifier and onnx_model.classes == CLASSES and onnx_model.clip_len == 24
    np.testing.assert_allclose(onnx_model.predict(tmp_path / "in.npz"),
                               ssal.load(exported["checkpoint"]).predict(tmp_path / "in.npz"), rtol=0, atol=1e-4)
    with pytest.raises(SsalInputError, match="outputs probabilities"):
        onnx_model.embed(tmp_path / "in.npz")


def test_torchscript_export_of_encoder_and_classifier(exported, tmp_path):
    model = ssal.load(exported["checkpoint"], optimize=False)
    ts = tmp_path / "classifier.ts"
    assert main(["export", "--checkpoint", str(exported["checkpoint"]), "--format", "torchscript",
                 "--out", str(ts)]) == 0
    extra = {"ssal.json": ""}
    loaded = torch.jit.load(str(ts), _extra_files=extra)
    meta = json.loads(extra["ssal.json"])
    assert meta["kind"] == "classifier" and meta["classes"] == CLASSES and meta["clip_len"] == 24
    x = torch.randn(5, 3, 29, 16)
    with torch.no_grad():
        ref = torch.softmax(model.head(model.encoder(x)), dim=1)
        torch.testing.assert_close(loaded(x), ref, rtol=0, atol=1e-4)
    # An encoder checkpoint exports embeddings.
    from ssal.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(exported["checkpoint"])
    del ck["head"]
    save_checkpoint(ck, tmp_path / "encoder.pt")
    assert main(["export", "--checkpoint", str(tmp_path / "encoder.pt"), "--format", "torchscript",
                 "--out", str(tmp_path / "encoder.ts")]) == 0
    emb = torch.jit.load(str(tmp_path / "encoder.ts"))
    with torch.no_grad():
        torch.testing.assert_close(emb(x), model.encoder(x), rtol=0, atol=1e-4)
    assert emb(x).shape == (5, model.encoder.out_dim)


def test_export_errors_are_one_line(tmp_path, capsys):
    rc = main(["export", "--checkpoint", str(tmp_path / "missing.pt"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")])
    assert rc == 2 and not (tmp_path / "m.onnx").exists() and "missing.pt" in capsys.readouterr().err
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    rc = main(["predict", "--checkpoint", str(tmp_path / "junk.onnx"), str(tmp_path / "x.npz")])
    err = capsys.readouterr().err
    assert rc == 2 and "junk.onnx" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------ arguments checked before any work


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_args")
    torch.manual_seed(0)
    enc = build_encoder(ENCODERS["stgcn"], EGAIT16)
    save_classifier(root / "classifier.pt", enc, LinearClassifier(enc.out_dim, len(CLASSES)),
                    encoder_config=ENCODERS["stgcn"], layout=EGAIT16, classes=CLASSES,
                    preprocess=PreprocessConfig(length=40).to_dict(), clip_len=24, protocol="linear")
    return root / "classifier.pt"


@pytest.fixture
def no_work(monkeypatch):
    """Make reading the checkpoint fail loudly: the case must be refused before any work."""
    import ssal.inference.loading as loading

    def fail(*_a, **_k):
        raise AssertionError("the export started work before refusing its arguments")

    monkeypatch.setattr(loading, "load", fail)


def _export(capsys, *argv: str) -> tuple[int, str]:
    rc = main(["export", *argv])
    err = capsys.readouterr().err
    return rc, err


def _one_line(err: str) -> bool:
    return err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_export_out_into_a_directory_or_proc_is_refused_before_work(small_checkpoint, tmp_path, capsys, no_work, fmt):
    suffix = ".onnx" if fmt == "onnx" else ".pt"
    folder = tmp_path / f"folder{suffix}"
    folder.mkdir()
    for out, says in ((folder, "directory"), (f"/proc/ssal-cannot-write-here/m{suffix}", "/proc"),
                      (tmp_path / "missing-folder" / f"m{suffix}", "folder"),
                      (tmp_path / "m.txt", "export file must end in")):
        rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", fmt, "--out", str(out))
        assert rc == 2 and _one_line(err) and says in err, (out, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]


def test_export_onto_its_own_checkpoint_is_refused_and_leaves_it_unchanged(small_checkpoint, capsys, no_work):
    before = small_checkpoint.read_bytes()
    rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "torchscript",
                      "--out", str(small_checkpoint), "--overwrite")
    assert rc == 2 and _one_line(err)
    assert small_checkpoint.read_bytes() == before


def test_export_to_an_existing_file_needs_overwrite(small_checkpoint, tmp_path, capsys):
    out = tmp_path / "model.ts"
    out.write_bytes(b"keep me")
    rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "torchscript", "--out", str(out))
    assert rc == 2 and _one_line(err) and out.read_bytes() == b"keep me"
    rc = main(["export", "--checkpoint", str(small_checkpoint), "--format", "torchscript", "--out", str(out),
               "--overwrite"])
    assert rc == 0 and out.read_bytes() != b"keep me"
    assert torch.jit.load(str(out))(torch.randn(2, 3, 24, 16)).shape == (2, len(CLASSES))


def test_export_of_an_onnx_or_other_file_as_checkpoint_is_refused(tmp_path, capsys, no_work):
    for name in ("model.onnx", "model.ONNX", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
        rc, err = _export(capsys, "--checkpoint", str(tmp_path / name), "--format", "onnx",
                          "--out", str(tmp_path / "out.onnx"))
        assert rc == 2 and _one_line(err) and name in err
    assert not (tmp_path / "out.onnx").exists()


def test_export_frames_out_of_range_is_refused_at_once(small_checkpoint, tmp_path, capsys, no_work):
    import time

    for frames in ("1000000000", "0", "-3", "100001"):
        t0 = time.monotonic()
        rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "torchscript",
                          "--out", str(tmp_path / "m.pt"), "--frames", frames)
        assert rc == 2 and _one_line(err) and "--frames" in err and time.monotonic() - t0 < 2
    assert not (tmp_path / "m.pt").exists()


def test_export_frames_whose_trace_would_not_fit_in_memory_are_refused(small_checkpoint, tmp_path, capsys):
    # 100,000 frames is a valid length, but one sequence's activations (16 joints x 16 channels x
    # 100,000 frames) exceed MAX_SAMPLE_ACTIVATION_BYTES: refused from the meta-device estimate.
    rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "torchscript",
                      "--out", str(tmp_path / "m.pt"), "--frames", "100000")
    assert rc == 2 and _one_line(err) and "--frames" in err
    assert list(tmp_path.iterdir()) == []


def test_export_opset_outside_the_exporters_range_is_refused_with_nothing_written(small_checkpoint, tmp_path,
                                                                                 capsys, no_work):
    from ssal.inference.export import opset_range

    lo, hi = opset_range()
    assert lo <= 18 <= hi
    for opset in ("1", str(lo - 1), str(hi + 1)):
        rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "onnx",
                          "--out", str(tmp_path / "m.onnx"), "--opset", opset)
        assert rc == 2 and _one_line(err) and "--opset" in err and "written" not in err
    rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "torchscript",
                      "--out", str(tmp_path / "m.pt"), "--opset", "18")
    assert rc == 2 and _one_line(err)
    assert list(tmp_path.iterdir()) == []


def test_export_opset_the_exporter_does_not_honour_is_one_line_with_nothing_written(small_checkpoint, tmp_path,
                                                                                    capsys, monkeypatch):
    # Widen the accepted range so that the exporter is asked for opset 17: it cannot convert
    # ssal's graph down (it logs a traceback and keeps 18); the written file's opset_import is
    # checked before the file is moved into place.
    import ssal.inference.export as export

    monkeypatch.setattr(export, "opset_range", lambda: (7, 23))
    out = tmp_path / "m.onnx"
    rc, err = _export(capsys, "--checkpoint", str(small_checkpoint), "--format", "onnx", "--out", str(out),
                      "--opset", "17")
    assert rc == 2 and _one_line(err) and "opset 17" in err, err
    assert list(tmp_path.iterdir()) == []


def test_export_with_a_supported_opset_writes_it(small_checkpoint, tmp_path, capsys):
    import onnx

    out = tmp_path / "m20.onnx"
    assert main(["export", "--checkpoint", str(small_checkpoint), "--format", "onnx", "--out", str(out),
                 "--opset", "20"]) == 0
    assert "written" in capsys.readouterr().out
    assert [o.version for o in onnx.load(str(out)).opset_import if o.domain in ("", "ai.onnx")] == [20]
    assert ssal.load(out).predict(np.zeros((2, 3, 24, 16), np.float32)).shape == (2, len(CLASSES))
