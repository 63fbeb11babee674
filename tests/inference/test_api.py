"""The notebook API and ``ssal predict`` / ``ssal embed``: BVH, .npz and Human3.6M .npy input,
CLI and API agreement, and the error paths of prediction."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import ssal
from ssal.checkpoint import load_checkpoint
from ssal.cli.main import main
from ssal.config import resolve_config
from ssal.data.bvh import write_bvh
from ssal.data.npz import write_npz
from ssal.data.preprocess import PreprocessConfig
from ssal.data.synthetic import generate_sequences
from ssal.errors import SsalInputError
from ssal.inference import EmotionModel, load, save_classifier
from ssal.models.heads import LinearClassifier
from ssal.skeleton import EGAIT16, H36M17, H36M17_TO_EGAIT16
from ssal.training.engine import pretrain

# A CMU-style rig (centimetres, clavicles, hand and toe ends); names map onto E-Gait-16.
CMU_RIG = [
    ("Hips", -1, (0, 0, 0)),
    ("LowerBack", 0, (0, 2, 0)), ("Spine", 1, (0, 12, 0)), ("Spine1", 2, (0, 12, 0)),
    ("Neck", 3, (0, 10, 0)), ("Head", 4, (0, 12, 0)),
    ("LeftShoulder", 3, (4, 8, 0)), ("LeftArm", 6, (14, 0, 0)), ("LeftForeArm", 7, (0, -28, 0)),
    ("LeftHand", 8, (0, -24, 0)),
    ("RightShoulder", 3, (-4, 8, 0)), ("RightArm", 10, (-14, 0, 0)), ("RightForeArm", 11, (0, -28, 0)),
    ("RightHand", 12, (0, -24, 0)),
    ("LeftUpLeg", 0, (9, -2, 0)), ("LeftLeg", 14, (0, -42, 0)), ("LeftFoot", 15, (0, -42, 0)),
    ("LeftToeBase", 16, (0, -6, 12)),
    ("RightUpLeg", 0, (-9, -2, 0)), ("RightLeg", 18, (0, -42, 0)), ("RightFoot", 19, (0, -42, 0)),
    ("RightToeBase", 20, (0, -6, 12)),
]
CMU_NAMES = [r[0] for r in CMU_RIG]


def walking_motion(frames: int = 60, fps: float = 30.0, speed_cm: float = 130.0) -> np.ndarray:
    """A walking-like cycle: forward root translation with bounce, swinging legs (opposite
    phase), bending knees, counter-swinging arms with bent elbows (ZYX channels)."""
    t = np.arange(frames) / fps
    phase = 2 * np.pi * 1.0 * t  # one stride per second
    m = np.zeros((frames, 6 + 3 * (len(CMU_RIG) - 1)))
    m[:, 0] = 1.5 * np.sin(phase)  # sway
    m[:, 1] = 95.0 + 2.0 * np.cos(2 * phase)  # bounce
    m[:, 2] = speed_cm * t  # walk along +z

    def x_rot(joint: str) -> int:  # column of the joint's Xrotation (third of ZYX)
        return 6 + 3 * (CMU_NAMES.index(joint) - 1) + 2

    m[:, x_rot("LeftUpLeg")] = -25 * np.sin(phase)
    m[:, x_rot("RightUpLeg")] = 25 * np.sin(phase)
    m[:, x_rot("LeftLeg")] = 30 * np.clip(np.sin(phase + 1.0), 0, None)
    m[:, x_rot("RightLeg")] = 30 * np.clip(np.sin(phase + 1.0 + np.pi), 0, None)
    m[:, x_rot("LeftArm")] = 20 * np.sin(phase)
    m[:, x_rot("RightArm")] = -20 * np.sin(phase)
    m[:, x_rot("LeftForeArm")] = -15
    m[:, x_rot("RightForeArm")] = -15
    return m


def egait_to_h36m(seq: np.ndarray) -> np.ndarray:
    """An E-Gait-16 ``(T, 16, 3)`` sequence as Human3.6M-17 (nose between neck and head)."""
    out = np.zeros((seq.shape[0], H36M17.num_joints, 3), dtype=np.float64)
    out[:, list(H36M17_TO_EGAIT16)] = seq
    nose = H36M17.joints.index("neck_nose")
    out[:, nose] = 0.5 * (seq[:, EGAIT16.joints.index("neck")] + seq[:, EGAIT16.joints.index("head")])
    return out


def y_down(seq: np.ndarray) -> np.ndarray:
    """The camera-space convention of many pose estimators: a 180 degree turn about x."""
    out = seq.copy()
    out[..., 1] *= -1
    out[..., 2] *= -1
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """An encoder.pt from a two-step pretraining, a classifier.pt on it, and input files."""
    root = tmp_path_factory.mktemp("api")
    cfg = resolve_config("skeletonclr", overrides={
        "data": {"builtin_n": 48, "builtin_seed": 5},
        "train": {"batch_size": 16, "epochs": 1},
        "run": {"knn_every": 0, "progress": False, "device": "cpu", "max_steps": 2},
        "model": {"queue_size": 32, "encoder": {"channels": [8, 16], "strides": [1, 2]},
                  "augment": {"general": {"clip_len": 20}}},
    })
    pretrain(cfg, root / "pre")
    encoder_path = root / "pre" / "encoder.pt"
    model = load(encoder_path)
    torch.manual_seed(0)
    head = LinearClassifier(model.encoder.out_dim, 4)
    with torch.no_grad():
        head.fc.weight.mul_(20.0)  # confident, input-dependent probabilities
        head.fc.bias.copy_(torch.tensor([0.3, -0.2, 0.1, 0.0]))
    # A non-default preprocessing length, to see that it travels with the checkpoint.
    pre = PreprocessConfig(length=48).to_dict()
    save_classifier(root / "classifier.pt", model.encoder, head, encoder_config=cfg["model"]["encoder"],
                    layout=EGAIT16, classes=["happy", "angry", "sad", "neutral"], preprocess=pre, clip_len=20,
                    protocol="linear")

    write_bvh(root / "walk.bvh", CMU_NAMES, [r[1] for r in CMU_RIG], np.array([r[2] for r in CMU_RIG], float),
              walking_motion(), 1 / 30)

    seqs, labels, names, _ = generate_sequences(3, seed=11)
    t = max(len(s) for s in seqs)
    x = np.zeros((3, t, EGAIT16.num_joints, 3), np.float32)
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s
    write_npz(root / "raw.npz", x, labels, names=names, lengths=[len(s) for s in seqs], order="NTVC")

    h36 = egait_to_h36m(seqs[0].astype(np.float64))
    np.save(root / "pose.npy", h36)
    np.save(root / "pose_ydown.npy", y_down(h36))
    return {"root": root, "encoder": encoder_path, "classifier": root / "classifier.pt",
            "bvh": root / "walk.bvh", "npz": root / "raw.npz", "npy": root / "pose.npy",
            "npy_ydown": root / "pose_ydown.npy", "h36": h36, "seqs": seqs, "names": names}


@pytest.fixture(scope="module")
def model(files) -> EmotionModel:
    return ssal.load(files["classifier"])


def _cli(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _read_csv(path: Path, classes: list[str]) -> tuple[list[str], np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["name", "emotion", *classes]
    probs = np.array([[float(r[c]) for c in classes] for r in rows])
    for r, p in zip(rows, probs):
        assert r["emotion"] == classes[int(np.argmax(p))]
    return [r["name"] for r in rows], probs


def test_import_ssal_is_light_and_exposes_load():
    code = ("import sys, ssal; assert 'torch' not in sys.modules, 'import ssal pulled in torch'; "
            "f = ssal.load; assert 'torch' in sys.modules; "
            "from ssal import EmotionModel, load; assert f is load and EmotionModel.__name__ == 'EmotionModel'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert ssal.load is load and ssal.EmotionModel is EmotionModel
    with pytest.raises(AttributeError):
        ssal.no_such_thing  # noqa: B018


def test_loaded_classifier_carries_its_settings(model):
    assert model.head is not None and model.classes == ["happy", "angry", "sad", "neutral"]
    assert model.layout.name == "egait16" and model.clip_len == 20
    assert model.preprocess.length == 48  # from the checkpoint, not the default 75


@pytest.mark.parametrize("kind", ["bvh", "npz", "npy"])
def test_predict_cli_csv_json_and_api_agree(files, model, kind, capsys, tmp_path):
    inp = files[kind]
    rc, out, err = _cli(["predict", "--checkpoint", files["classifier"], inp, "--out", tmp_path / "p.csv"], capsys)
    assert rc == 0, err
    names, probs = _read_csv(tmp_path / "p.csv", model.classes)
    rc, _, err = _cli(["predict", "--checkpoint", files["classifier"], inp, "--out", tmp_path / "p.json"], capsys)
    assert rc == 0, err
    rows = json.loads((tmp_path / "p.json").read_text())
    probs_json = np.array([[r[c] for c in model.classes] for r in rows])
    # Printed to stdout without --out.
    rc, out, err = _cli(["predict", "--checkpoint", files["classifier"], inp], capsys)
    assert rc == 0, err
    printed = list(csv.DictReader(out.splitlines()))
    assert [r["name"] for r in printed] == names

    expected_n = {"bvh": 1, "npz": 3, "npy": 1}[kind]
    assert probs.shape == (expected_n, 4) and probs_json.shape == (expected_n, 4)
    assert [r["name"] for r in rows] == names
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probs_json.sum(axis=1), 1.0, atol=1e-5)
    assert (probs >= 0).all()
    if kind == "npz":
        assert names == files["names"]
        assert np.ptp(probs, axis=0).max() > 1e-4  # depends on the input, not the bias alone

    api = model.predict(inp)  # the same file through the API
    np.testing.assert_allclose(api, probs, atol=1e-5)
    np.testing.assert_allclose(api, probs_json, atol=1e-5)
    assert model.predict_labels(inp) == [r["emotion"] for r in rows]
    if kind == "npz":  # raw (N, T, V, 3) sequences through the API
        np.testing.assert_allclose(model.predict([s for s in files["seqs"]]), probs, atol=1e-5)
    if kind == "npy":  # a (T, 17, 3) pose-estimator array through the API
        np.testing.assert_allclose(model.predict(files["h36"]), probs, atol=1e-5)


def test_y_down_pose_output_is_turned_upright_in_cli_and_api(files, model, capsys, tmp_path):
    rc, _, err = _cli(["predict", "--checkpoint", files["classifier"], files["npy_ydown"], "--out",
                       tmp_path / "d.json"], capsys)
    assert rc == 0, err
    cli = np.array([[r[c] for c in model.classes] for r in json.loads((tmp_path / "d.json").read_text())])
    upright = model.predict(files["npy"])
    np.testing.assert_allclose(cli, upright, atol=1e-4)
    np.testing.assert_allclose(model.predict(y_down(files["h36"])), cli, atol=1e-5)


def test_api_accepts_batches_datasets_and_sequences(files, model):
    ds = model.read(files["npz"])
    assert ds.x.shape == (3, 3, 48, 16)  # the checkpoint's preprocessing length
    p_ds = model.predict(ds)
    np.testing.assert_allclose(model.predict(ds.x), p_ds, atol=1e-6)
    np.testing.assert_allclose(model.predict(torch.from_numpy(np.asarray(ds.x))), p_ds, atol=1e-6)
    np.testing.assert_allclose(model.predict(np.stack([files["seqs"][0][:40]] * 2)), model.predict(
        [files["seqs"][0][:40]] * 2), atol=1e-6)
    feats = model.embed(ds)
    assert feats.shape == (3, model.encoder.out_dim) and np.isfinite(feats).all()
    with pytest.raises(SsalInputError, match="cannot read an array"):
        model.predict(np.zeros((2, 5)))
    with pytest.raises(SsalInputError, match="NaN"):
        bad = np.array(ds.x, copy=True)
        bad[0, 0, 0, 0] = np.nan
        model.predict(bad)


@pytest.mark.parametrize("kind", ["npz", "bvh"])
def test_embed_cli_writes_model_embed(files, kind, capsys, tmp_path):
    for ck in ("classifier", "encoder"):
        out = tmp_path / f"{ck}.npy"
        rc, _, err = _cli(["embed", "--checkpoint", files[ck], files[kind], "--out", out], capsys)
        assert rc == 0, err
        feats = np.load(out)
        m = ssal.load(files[ck])
        assert feats.dtype == np.float32 and feats.shape == ({"npz": 3, "bvh": 1}[kind], m.encoder.out_dim)
        np.testing.assert_allclose(feats, m.embed(files[kind]), atol=1e-6)
    # The classifier holds the pretrained encoder unchanged, and both resize to its clip length:
    # on the same prepared batch they give the same features.
    enc, clf = ssal.load(files["encoder"]), ssal.load(files["classifier"])
    assert enc.clip_len == clf.clip_len == 20 and enc.head is None
    batch = clf.read(files[kind]).x
    np.testing.assert_allclose(enc.embed(batch), clf.embed(batch), atol=1e-6)


def test_embed_builtin_uses_the_checkpoints_corpus(files, capsys, tmp_path):
    """encoder.pt was pretrained on a 48-sequence built-in corpus (seed 5): `embed builtin`
    embeds that corpus, not the 2,000-sequence default."""
    from ssal.data.synthetic import load_builtin

    out = tmp_path / "b.npy"
    rc, _, err = _cli(["embed", "--checkpoint", files["encoder"], "builtin", "--out", out], capsys)
    assert rc == 0, err
    feats = np.load(out)
    assert feats.shape == (48, ssal.load(files["encoder"]).encoder.out_dim)
    np.testing.assert_allclose(feats, ssal.load(files["encoder"]).embed(load_builtin(48, 5)), atol=1e-6)


def test_predict_with_encoder_checkpoint_is_refused(files, capsys):
    rc, out, err = _cli(["predict", "--checkpoint", files["encoder"], files["npz"]], capsys)
    assert rc == 2 and out == ""
    assert err.startswith("error: ") and "encoder.pt" in err and "without a classifier" in err
    assert len(err.strip().splitlines()) == 1
    with pytest.raises(SsalInputError, match="without a classifier"):
        ssal.load(files["encoder"]).predict(files["npz"])


def test_predict_missing_and_corrupt_inputs(files, capsys, tmp_path):
    missing = tmp_path / "nowhere.bvh"
    rc, _, err = _cli(["predict", "--checkpoint", files["classifier"], missing], capsys)
    assert rc == 2 and "nowhere.bvh" in err and "not found" in err
    (tmp_path / "junk.bvh").write_text("HIERARCHY\nROOT Hips\n{\n  OFFSET 0 0\n")
    (tmp_path / "junk.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not a zip at all")
    (tmp_path / "wrong.npy").write_bytes(b"")
    np.save(tmp_path / "shape.npy", np.zeros((30, 5, 3)))
    for name in ("junk.bvh", "junk.npy", "junk.npz", "wrong.npy", "shape.npy"):
        rc, out, err = _cli(["predict", "--checkpoint", files["classifier"], tmp_path / name], capsys)
        assert rc == 2, (name, err)
        assert name in err and err.startswith("error: ") and "Traceback" not in err, (name, err)
    # A missing or corrupt checkpoint is named too.
    rc, _, err = _cli(["predict", "--checkpoint", tmp_path / "none.pt", files["npz"]], capsys)
    assert rc == 2 and "none.pt" in err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    rc, _, err = _cli(["embed", "--checkpoint", tmp_path / "bad.pt", files["npz"], "--out", tmp_path / "e.npy"],
                      capsys)
    assert rc == 2 and "bad.pt" in err and not (tmp_path / "e.npy").exists()


def test_classifier_checkpoint_holds_what_predict_needs(files):
    ck = load_checkpoint(files["classifier"])
    assert ck["stage"] == "classifier" and ck["layout"] == "egait16" and ck["clip_len"] == 20
    assert set(ck["head"]) == {"fc.weight", "fc.bias"} and ck["preprocess"]["length"] == 48
