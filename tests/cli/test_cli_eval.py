"""The evaluation commands in-process on tiny data: pretrain, then knn, linear, finetune, semi,
supervised and predict; the refusals of demo and the protocols."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import ssal
from ssal.checkpoint import load_checkpoint
from ssal.cli.main import main
from ssal.data.io import save_dataset
from ssal.data.synthetic import generate

TINY = [
    "--set", "data.builtin_n=96", "--set", "data.builtin_seed=2",
    "--set", "train.batch_size=16", "--set", "model.queue_size=40",
    "--set", "model.encoder.channels=[8,16]", "--set", "model.encoder.strides=[1,2]",
    "--set", "model.augment.general.clip_len=20", "--set", "run.knn_every=1",
]


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _results(out: Path) -> dict:
    data = json.loads((out / "results.json").read_text())
    (entry,) = data["methods"].values()
    return entry


def _check_report(entry: dict, n_test: int) -> None:
    assert 0.0 <= entry["top1"] <= 1.0 and 0.0 <= entry["macro_f1"] <= 1.0
    assert entry["n"] == n_test
    conf = np.asarray(entry["confusion"])
    assert conf.shape == (4, 4) and conf.sum() == n_test
    assert entry["top1"] == pytest.approx(np.trace(conf) / n_test)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny SkeletonCLR pretraining through ``ssal pretrain`` (shared by every test)."""
    root = tmp_path_factory.mktemp("cli_eval")
    rc = main(["pretrain", "--method", "skeletonclr", "--out", str(root / "pre"), "--epochs", "1",
               "--no-progress", *TINY])
    assert rc == 0
    return root


@pytest.fixture(scope="module")
def test_size(run) -> int:
    split = json.loads((run / "pre" / "split.json").read_text())
    return len(split["parts"]["test"]) if "parts" in split else len(split["test"])


def test_pretrain_wrote_encoder(run):
    ck = load_checkpoint(run / "pre" / "encoder.pt")
    assert ck["config"]["data"]["builtin_n"] == 96 and ck["config"]["method"] == "skeletonclr"
    assert ck["config"]["model"]["encoder"]["channels"] == [8, 16]


def test_knn(run, test_size, capsys):
    out = run / "knn"
    rc, stdout, err = _cli(["knn", "--checkpoint", run / "pre" / "encoder.pt", "--out", out], capsys)
    assert rc == 0, err
    entry = _results(out)
    assert set(entry) == {"knn", "feature"}
    _check_report(entry["knn"], test_size)
    # SkeletonCLR's ST-GCN (channels [8, 16], no fc) is read on its 16-d pooled feature.
    assert entry["feature"] == "pooled 16-d"
    assert "| method | feature | knn |" in stdout


def test_knn_on_the_backbone_feature_of_a_cffn(tmp_path, capsys):
    pre = tmp_path / "pre"
    rc, _, err = _cli(["pretrain", "--method", "ssal", "--out", pre, *TINY, "--set", "train.epochs=1",
                       "--set", "model.encoder.image_channels=4", "--set", "model.encoder.image_depth=1"], capsys)
    assert rc == 0, err
    for feature, expected in (("output", "fused 128-d"), ("backbone", "branch maps pooled 20-d")):
        out = tmp_path / feature
        rc, _, err = _cli(["knn", "--checkpoint", pre / "encoder.pt", "--out", out, "--feature", feature], capsys)
        assert rc == 0, err
        assert _results(out)["feature"] == expected


def test_linear_trains_only_the_head(run, test_size, capsys):
    out = run / "linear"
    rc, _, err = _cli(["linear", "--checkpoint", run / "pre" / "encoder.pt", "--out", out, "--epochs", "3"],
                      capsys)
    assert rc == 0, err
    _check_report(_results(out)["linear"], test_size)
    clf = load_checkpoint(out / "classifier.pt")
    enc = load_checkpoint(run / "pre" / "encoder.pt")
    assert clf["stage"] == "classifier" and clf["protocol"] == "linear" and clf["method"] == "skeletonclr"
    assert clf["encoder"].keys() == enc["encoder"].keys()
    for k, v in enc["encoder"].items():  # weights and BatchNorm statistics untouched
        assert torch.equal(clf["encoder"][k], v), k
    assert clf["head"]["fc.weight"].shape == (4, ssal.load(out / "classifier.pt").encoder.out_dim)
    assert clf["clip_len"] == 20 and clf["classes"] == enc["classes"]


def test_linear_standardize_flag(run, test_size, capsys):
    out = run / "linear_std"
    rc, stdout, err = _cli(["linear", "--checkpoint", run / "pre" / "encoder.pt", "--out", out, "--epochs", "3",
                            "--standardize"], capsys)
    assert rc == 0, err
    assert set(_results(out)) == {"linear_std", "feature"} and "linear (std. features)" in stdout
    _check_report(_results(out)["linear_std"], test_size)
    clf = load_checkpoint(out / "classifier.pt")
    assert clf["protocol"] == "linear_std" and ssal.load(out / "classifier.pt").head is not None


def test_linear_classifier_predicts_its_data(run, capsys, tmp_path):
    ds = generate(12, seed=9)
    save_dataset(ds, tmp_path / "d.npz")
    rc, _, err = _cli(["predict", "--checkpoint", run / "linear" / "classifier.pt", tmp_path / "d.npz",
                       "--out", tmp_path / "p.json"], capsys)
    assert rc == 0, err
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [r["name"] for r in rows] == ds.names
    probs = np.array([[r[c] for c in ds.classes] for r in rows])
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ssal.load(run / "linear" / "classifier.pt").predict(tmp_path / "d.npz"), probs,
                               atol=1e-5)


def test_finetune_writes_a_trained_classifier(run, test_size, capsys):
    out = run / "finetune"
    rc, _, err = _cli(["finetune", "--checkpoint", run / "pre" / "encoder.pt", "--out", out, "--epochs", "1"],
                      capsys)
    assert rc == 0, err
    _check_report(_results(out)["finetune"], test_size)
    clf = load_checkpoint(out / "classifier.pt")
    enc = load_checkpoint(run / "pre" / "encoder.pt")
    assert clf["protocol"] == "finetune"
    changed = [k for k, v in enc["encoder"].items() if v.is_floating_point() and not torch.equal(clf["encoder"][k], v)]
    assert changed, "finetune left the encoder unchanged"


def test_semi_fractions_and_seeds(run, test_size, capsys):
    out = run / "semi"
    rc, stdout, err = _cli(["semi", "--checkpoint", run / "pre" / "encoder.pt", "--out", out, "--epochs", "1",
                            "--fractions", "0.1", "--seeds", "0", "1"], capsys)
    assert rc == 0, err
    semi = _results(out)["semi"]
    assert list(semi) == ["0.1"]
    entry = semi["0.1"]
    assert [r["seed"] for r in entry["runs"]] == [0, 1] and 0.0 <= entry["mean"] <= 1.0
    assert entry["fraction"] == 0.1 and all(n >= 4 for n in entry["n_labels"])  # one per class at least
    for r in entry["runs"]:
        _check_report(r["report"], test_size)
    assert "semi 10%" in stdout


def test_supervised_on_a_file(run, capsys):
    data = run / "data.npz"
    save_dataset(generate(64, seed=4), data)
    out = run / "supervised"
    rc, _, err = _cli(["supervised", "--arch", "skeletonclr", "--data", data, "--out", out, "--epochs", "1",
                       "--fractions", "0.25", "--seeds", "0"], capsys)
    assert rc == 0, err
    results = json.loads((out / "results.json").read_text())
    entry = results["methods"]["supervised-stgcn"]
    assert 0.0 <= entry["supervised"]["top1"] <= 1.0 and len(entry["semi"]["0.25"]["runs"]) == 1
    assert json.loads((out / "split.json").read_text())
    clf = ssal.load(out / "classifier.pt")
    assert clf.head is not None and clf.meta["protocol"] == "supervised"


def test_protocol_errors_exit_2(run, capsys, tmp_path):
    rc, _, err = _cli(["knn", "--checkpoint", tmp_path / "missing.pt"], capsys)
    assert rc == 2 and "missing.pt" in err
    rc, _, err = _cli(["linear", "--checkpoint", run / "pre" / "encoder.pt", "--data", tmp_path / "no.npz",
                       "--out", tmp_path / "o"], capsys)
    assert rc == 2 and "no.npz" in err


def test_demo_refuses_a_non_empty_out(capsys, tmp_path):
    out = tmp_path / "demo"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    before = sorted(p.name for p in out.iterdir())
    rc, _, err = _cli(["demo", "--quick", "--out", out, "--no-progress"], capsys)
    assert rc == 2 and "not empty" in err and "--resume" in err and "--overwrite" in err
    assert sorted(p.name for p in out.iterdir()) == before and (out / "notes.txt").read_text() == "mine"
    rc, _, err = _cli(["demo", "--out", tmp_path / "fresh", "--resume"], capsys)
    assert rc == 2 and "nothing to resume" in err


def test_pretrain_aimclr_writes_aimclrs_encoder(tmp_path, capsys):
    """Acceptance: `ssal pretrain --method aimclr` (preset encoder, nothing overridden) writes an
    ST-GCN with AimCLR's widths and parameter count on the E-Gait layout."""
    out = tmp_path / "aimclr"
    rc, _, err = _cli(["pretrain", "--method", "aimclr", "--out", out, "--set", "data.builtin_n=48",
                       "--set", "train.batch_size=16", "--set", "train.epochs=1", "--set", "model.queue_size=32",
                       "--set", "model.augment.general.clip_len=12", "--set", "run.knn_every=0"], capsys)
    assert rc == 0, err
    model = ssal.load(out / "encoder.pt")
    enc = model.encoder
    assert [b.gcn.conv.out_channels for b in enc.backbone.blocks] == [16, 16, 16, 16, 32, 32, 32, 64, 64, 256]
    assert enc.out_dim == 256 and model.layout.name == "egait16"
    # AimCLR's Model has 843,152 parameters with its 256 -> 128 fc; the projector replaces that fc.
    assert sum(p.numel() for p in enc.parameters()) == 843_152 - (256 * 128 + 128)
    ck = load_checkpoint(out / "checkpoint.pt")
    head = {k: tuple(v.shape) for k, v in ck["model"].items() if k.startswith("head_q.") and k.endswith("weight")}
    assert sorted(head.values()) == [(128, 256), (256, 256)]  # Linear(256, 256) - ReLU - Linear(256, 128)


def test_knn_on_given_data_splits_with_the_checkpoints_fractions(run, capsys):
    # --data: no split.json beside the encoder applies, so the split is drawn from the
    # checkpoint's data.val_fraction / data.test_fraction.
    from ssal.data.splits import stratified_split

    given = generate(80, seed=5)
    data = run / "knn_data.npz"
    save_dataset(given, data)
    out = run / "knn_given"
    rc, _, err = _cli(["knn", "--checkpoint", run / "pre" / "encoder.pt", "--data", data, "--out", out], capsys)
    assert rc == 0, err
    cfg = load_checkpoint(run / "pre" / "encoder.pt")["config"]["data"]
    expected = stratified_split(given.y, val=cfg["val_fraction"], test=cfg["test_fraction"], seed=0)
    assert _results(out)["knn"]["n"] == len(expected["test"]) > 0


def test_predict_and_embed_set_their_allocator_policy(run, capsys, tmp_path, monkeypatch):
    import ssal.training.allocator
    from ssal.config.schema import PREDICT_ALLOCATOR

    seen: list[str] = []
    monkeypatch.setattr(ssal.training.allocator, "set_allocator_policy", lambda policy: seen.append(policy) or True)
    ds = generate(6, seed=3)
    save_dataset(ds, tmp_path / "d.npz")
    clf = run / "linear" / "classifier.pt"
    assert _cli(["predict", "--checkpoint", clf, tmp_path / "d.npz", "--out", tmp_path / "p.csv"], capsys)[0] == 0
    assert _cli(["predict", "--checkpoint", clf, tmp_path / "d.npz", "--out", tmp_path / "q.csv",
                 "--allocator", "system"], capsys)[0] == 0
    assert _cli(["embed", "--checkpoint", clf, tmp_path / "d.npz", "--out", tmp_path / "e.npy"], capsys)[0] == 0
    assert seen == [PREDICT_ALLOCATOR, "system", PREDICT_ALLOCATOR] and PREDICT_ALLOCATOR == "reuse"
    with pytest.raises(SystemExit) as exc:  # argparse: one line naming the choices, exit code 2
        main(["predict", "--checkpoint", str(clf), str(tmp_path / "d.npz"), "--allocator", "huge"])
    assert exc.value.code == 2 and "invalid choice: 'huge'" in capsys.readouterr().err
