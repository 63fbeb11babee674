"""The 2023 baselines from the command line, on tiny built-in data: ``ssal pretrain --method
pstl`` / ``mamp``, then ``linear``, ``semi``, ``export`` and ``predict`` read their encoders."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from ssal.cli.main import main
from synthetic_npz import write_synthetic_npz  # tests/synthetic_npz.py

DATA = ["--set", "data.builtin_n=96", "--set", "data.builtin_seed=2", "--set", "train.batch_size=16",
        "--set", "model.augment.general.clip_len=20"]
SMALL = {
    "pstl": ["--set", "model.encoder.channels=[8,16]", "--set", "model.encoder.strides=[1,2]",
             "--set", "model.pstl.projector_dim=32"],
    "mamp": ["--set", "model.encoder.dim=16", "--set", "model.encoder.depth=1", "--set", "model.encoder.num_heads=2",
             "--set", "model.encoder.num_frames=20", "--set", "model.mamp.decoder_dim=16",
             "--set", "model.mamp.decoder_depth=1", "--set", "model.mamp.decoder_heads=2"],
}


def _cli(argv, capsys) -> tuple[int, str]:
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize("method", sorted(SMALL))
def test_pretrain_probe_export_and_predict(method, tmp_path, capsys):
    pre = tmp_path / "pre"
    rc, err = _cli(["pretrain", "--method", method, "--out", pre, "--epochs", "2", "--no-progress",
                    *DATA, *SMALL[method]], capsys)
    assert rc == 0, err
    metrics = [json.loads(line) for line in (pre / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(np.isfinite(m["loss"]) for m in metrics)

    lin = tmp_path / "linear"
    rc, err = _cli(["linear", "--checkpoint", pre / "encoder.pt", "--out", lin, "--epochs", "2"], capsys)
    assert rc == 0, err
    (entry,) = json.loads((lin / "results.json").read_text())["methods"].values()
    assert 0.0 <= entry["linear"]["top1"] <= 1.0

    rc, err = _cli(["semi", "--checkpoint", pre / "encoder.pt", "--out", tmp_path / "semi",
                    "--set", "eval.finetune.epochs=1", "--set", "eval.semi.fractions=[0.5]",
                    "--set", "eval.semi.seeds=[0]"], capsys)
    assert rc == 0, err

    onnx = tmp_path / "model.onnx"
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    rc, err = _cli(["export", "--checkpoint", lin / "classifier.pt", "--format", "onnx", "--out", onnx], capsys)
    assert rc == 0, err
    write_synthetic_npz(tmp_path / "in.npz", 6, seed=4)
    probs = {}
    for kind, ck in (("torch", lin / "classifier.pt"), ("onnx", onnx)):
        out = tmp_path / f"{kind}.csv"
        rc, err = _cli(["predict", "--checkpoint", ck, tmp_path / "in.npz", "--out", out], capsys)
        assert rc == 0, err
        rows = list(csv.DictReader(out.open()))
        classes = [c for c in rows[0] if c not in ("name", "emotion", "confidence")]
        probs[kind] = np.array([[float(r[c]) for c in classes] for r in rows])
    assert probs["torch"].shape[0] == 6
    np.testing.assert_allclose(probs["onnx"], probs["torch"], rtol=0, atol=1e-4)
