"""Video input: BlazePose-33 -> E-Gait-16 mapping, masking / gap filling / stretches /
resampling (hand-computed, no extra needed), and, with the ``video`` extra installed, the
whole path on a video made from a real photograph: landmarks on every frame, left and right
kept, upright, ``ssal pose`` / ``predict`` / ``embed`` / ``show``, and the one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ssal.cli.main import main
from ssal.config import resolve_config
from ssal.data.io import load_dataset
from ssal.data.video import (
    INSTALL_HINT,
    VideoInfo,
    VideoPoses,
    VideoSettings,
    is_video_path,
    mask_and_fill,
    resample_times,
    split_stretches,
    walk_sequences,
)
from ssal.errors import SsalInputError
from ssal.inference import save_classifier
from ssal.models import build_encoder
from ssal.models.heads import LinearClassifier
from ssal.skeleton import BLAZEPOSE33, EGAIT16, blazepose_mapping_matrix, blazepose_to_egait16

J = {name: i for i, name in enumerate(BLAZEPOSE33.joints)}
E = {name: i for i, name in enumerate(EGAIT16.joints)}


def _cli(argv, capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def standing_blazepose() -> np.ndarray:
    """A person facing the camera in MediaPipe's world convention (metres, hip-centred, y down,
    x to the image right, z away from the camera): their left side is on the image right."""
    p = np.zeros((33, 3))
    for side, sx in (("left", 1.0), ("right", -1.0)):
        p[J[f"{side}_hip"]] = (0.1 * sx, 0.0, 0.0)
        p[J[f"{side}_knee"]] = (0.1 * sx, 0.45, 0.0)
        p[J[f"{side}_ankle"]] = (0.1 * sx, 0.9, 0.0)
        p[J[f"{side}_heel"]] = (0.1 * sx, 0.92, 0.05)
        p[J[f"{side}_foot_index"]] = (0.1 * sx, 0.93, -0.12)
        p[J[f"{side}_shoulder"]] = (0.18 * sx, -0.5, 0.0)
        p[J[f"{side}_elbow"]] = (0.2 * sx, -0.22, 0.0)
        for k in ("wrist", "pinky", "index", "thumb"):
            p[J[f"{side}_{k}"]] = (0.2 * sx, 0.02, -0.02)
        p[J[f"{side}_ear"]] = (0.07 * sx, -0.7, 0.02)
        for k in ("eye_inner", "eye", "eye_outer"):
            p[J[f"{side}_{k}"]] = (0.03 * sx, -0.72, -0.08)
        p[J[f"mouth_{side}"]] = (0.03 * sx, -0.62, -0.08)
    p[J["nose"]] = (0.0, -0.67, -0.1)
    return p


# --------------------------------------------------------------------------------------
# Without the extra: layout, mapping, masking, stretches, resampling
# --------------------------------------------------------------------------------------


def test_blazepose_layout_is_mediapipe_order_and_mirrors():
    assert BLAZEPOSE33.num_joints == 33
    assert (BLAZEPOSE33.index("left_shoulder"), BLAZEPOSE33.index("right_hip"), BLAZEPOSE33.index("right_foot_index")) \
        == (11, 24, 32)
    perm = BLAZEPOSE33.mirror_permutation()
    for i, name in enumerate(BLAZEPOSE33.joints):
        other = name.replace("left", "#").replace("right", "left").replace("#", "right")
        assert BLAZEPOSE33.joints[perm[i]] == other
    assert (BLAZEPOSE33.parents() >= 0).sum() == 32  # one connected tree
    w = blazepose_mapping_matrix()
    assert w.shape == (16, 33) and np.allclose(w.sum(axis=1), 1.0)


def test_mapping_hand_computed_upright_and_left_kept():
    p = standing_blazepose()
    x, vis = blazepose_to_egait16(p, np.linspace(0.0, 1.0, 33))
    # root = hip centre, neck = shoulder centre, head = ear centre, spine = their midpoint; y, z turned.
    assert np.allclose(x[E["root"]], (0.0, 0.0, 0.0))
    assert np.allclose(x[E["neck"]], (0.0, 0.5, 0.0))
    assert np.allclose(x[E["head"]], (0.0, 0.7, -0.02))
    assert np.allclose(x[E["spine"]], (0.0, 0.25, 0.0))
    assert np.allclose(x[E["left_hand"]], (0.2, -0.02, 0.02))
    assert np.allclose(x[E["right_foot"]], (-0.1, -0.9, 0.0))
    # visibility of a mapped joint: the lowest of its sources (head = ears 7 and 8)
    assert vis[E["head"]] == pytest.approx(7 / 32)
    assert vis[E["root"]] == pytest.approx(23 / 32)
    # Upright, and a rotation (not a mirror): left along +x, and left x up points where the
    # nose points (forward = towards the camera, +z after the turn).
    assert x[E["head"]][1] > x[E["neck"]][1] > x[E["root"]][1] > x[E["left_foot"]][1]
    lateral = x[E["left_shoulder"]] - x[E["right_shoulder"]]
    forward = np.cross(lateral, x[E["neck"]] - x[E["root"]])
    nose = p[J["nose"]] * (1, -1, -1)
    assert lateral[0] > 0 and forward[2] > 0
    assert np.dot(nose - x[E["head"]], forward) > 0


def test_mask_and_fill_interpolates_short_gaps_only():
    t = np.arange(12, dtype=float)
    x = np.repeat(t[:, None, None], 3, axis=2).repeat(2, axis=1)  # value = frame index
    x[3:5] = 99.0  # garbage where masked
    x[7:10, 1] = -5.0
    ok = np.ones((12, 2), bool)
    ok[3:5, :] = False  # 2 frames: filled
    ok[7:10, 1] = False  # 3 frames on joint 1: too long for max_gap 2
    ok[0, 0] = False  # at the edge: no anchor before it
    out, after, filled = mask_and_fill(x, ok, max_gap_frames=2)
    assert np.allclose(out[3:5, :, 0], [[3, 3], [4, 4]])  # linear between frames 2 and 5
    assert filled[3:5].all() and after[3:5].all()
    assert not after[7:10, 1].any() and np.all(out[7:10, 1] == -5.0)
    assert not after[0, 0] and after[0, 1]
    assert filled.sum() == 4


def test_split_stretches_and_resample_times():
    usable = np.array([1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1], bool)
    assert split_stretches(usable, 1) == [(0, 3), (4, 8), (10, 11)]
    assert split_stretches(usable, 4) == [(4, 8)]
    # a linear ramp sampled at 25 fps resampled to 30 fps is the ramp at the new times
    times = np.arange(26) / 25.0
    x = (3.0 * times + 1.0)[:, None, None] * np.ones((1, 2, 3))
    y = resample_times(x, times, 30.0)
    assert y.shape == (31, 2, 3)
    assert np.allclose(y[:, 0, 0], 3.0 * np.arange(31) / 30.0 + 1.0)
    # uneven timestamps (variable frame rate) are honoured
    t2 = np.array([0.0, 0.1, 0.15, 0.4])
    y2 = resample_times(t2[:, None] * 10.0, t2, 10.0)
    assert np.allclose(y2[:, 0], [0.0, 1.0, 2.0, 3.0, 4.0])


def synthetic_poses(frames: int = 160, fps: float = 30.0) -> VideoPoses:
    """A walker in MediaPipe's convention: legs swing; no person in frames 40-42 (short gap) and
    80-99 (long gap); both ankles out of the picture (visibility 0.25) in frames 130-159."""
    base = standing_blazepose()
    t = np.arange(frames) / fps
    world = np.repeat(base[None], frames, axis=0).astype(np.float32)
    swing = 0.25 * np.sin(2 * np.pi * t)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        world[:, J[f"{side}_ankle"], 2] += sign * swing
        world[:, J[f"{side}_knee"], 2] += 0.5 * sign * swing
    vis = np.full((frames, 33), 0.95, np.float32)
    for gap in (slice(40, 43), slice(80, 100)):
        world[gap] = np.nan
        vis[gap] = 0.0
    vis[130:, [J["left_ankle"], J["right_ankle"]]] = 0.25
    return VideoPoses(source="walk.mp4", world=world, image=np.zeros_like(world), visibility=vis, times=t,
                      info=VideoInfo(fps=fps, frame_count=frames, width=640, height=480))


def test_walk_sequences_fill_split_and_refuse():
    poses = synthetic_poses()
    seqs = walk_sequences(poses, VideoSettings(), fps=30.0)
    # frames 0-79 (gap 40-42 filled) and 100-129 (ankles hidden from 130 on, 1.0 s minimum)
    assert [(s.first_frame, s.stop_frame) for s in seqs] == [(0, 80), (100, 130)]
    assert [s.name for s in seqs] == ["walk.mp4@0.00-2.63s", "walk.mp4@3.33-4.30s"]
    assert seqs[0].positions.shape == (80, 16, 3) and seqs[1].positions.shape == (30, 16, 3)
    assert seqs[0].filled[40:43].all() and seqs[0].filled.sum() == 3 * 16
    assert np.isfinite(seqs[0].positions).all()
    # the filled frames lie on the line between frames 39 and 43 (a linear swing there is close)
    a, b = seqs[0].positions[39], seqs[0].positions[43]
    assert np.allclose(seqs[0].positions[41], (a + b) / 2)
    # y up in the output
    assert (seqs[0].positions[:, E["head"], 1] > seqs[0].positions[:, E["left_foot"], 1]).all()
    # a shorter minimum keeps the last stretch's start; min_visibility 0 keeps the hidden ankles
    assert [(s.first_frame, s.stop_frame) for s in walk_sequences(poses, VideoSettings(min_visibility=0.2))] == \
        [(0, 80), (100, 160)]
    # resampled to the working rate: 2.63 s at 30 fps -> 15 fps halves the frames
    assert walk_sequences(poses, VideoSettings(), fps=15.0)[0].positions.shape[0] == 40
    with pytest.raises(SsalInputError, match=r"no stretch of at least 5 s .*left_foot"):
        walk_sequences(poses, VideoSettings(min_duration=5.0))
    empty = synthetic_poses()
    empty.world[:] = np.nan
    with pytest.raises(SsalInputError, match="walk.mp4: no person found in any of its 160 frames"):
        walk_sequences(empty)
    with pytest.raises(SsalInputError, match="--min-visibility"):
        VideoSettings(min_visibility=1.5)


def test_missing_extra_is_one_line_naming_the_install(monkeypatch, capsys, tmp_path):
    clip = tmp_path / "walk.mp4"
    clip.write_bytes(b"\x00" * 64)
    monkeypatch.setitem(sys.modules, "cv2", None)  # import cv2 -> ImportError
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    for argv in (["pose", clip, "--out", tmp_path / "p.npz"], ["show", clip, "--out", tmp_path / "o.gif"]):
        rc, _, err = _cli(argv, capsys)
        assert rc == 2
        assert err.count("\n") == 1 and INSTALL_HINT in err and "walk.mp4" in err
    with pytest.raises(SsalInputError, match="not installed"):
        load_dataset(clip)
    assert is_video_path("A.MP4") and is_video_path(Path("x.webm")) and not is_video_path("x.npz")


def test_core_import_does_not_load_the_video_stack():
    code = ("import sys, ssal, ssal.inference, ssal.cli.main, ssal.data.io, ssal.data.video, ssal.visualisation.video; "
            "ssal.cli.main.build_parser(); "
            "assert not {'cv2', 'mediapipe'} & set(sys.modules), sorted({'cv2', 'mediapipe'} & set(sys.modules))")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --------------------------------------------------------------------------------------
# With the extra: a video written from a real photograph
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video_stack():
    """OpenCV, with MediaPipe's pose model ready; skips without the extra, fails instead where
    SSAL_REQUIRE_VIDEO=1 (CI installs the extra, so these tests must run there)."""
    from ssal.data.video import import_cv2, import_mediapipe_pose

    try:
        import_mediapipe_pose()
        return import_cv2()
    except SsalInputError as exc:
        if os.environ.get("SSAL_REQUIRE_VIDEO") == "1":
            pytest.fail(f"SSAL_REQUIRE_VIDEO=1 but the video extra is unusable: {exc}")
        pytest.skip(f"the 'video' extra is not installed ({exc})")


def write_video(cv2, path: Path, frames: list[np.ndarray], fps: float = 25.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def photo_frames(n: int = 30) -> list[np.ndarray]:
    """Grace Hopper's portrait (a photograph matplotlib ships) moved left to right across a
    grey 480x360 frame in ``n`` frames: head and shoulders in the picture, hips below it."""
    import matplotlib.cbook
    from PIL import Image

    photo = Image.open(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB")
    photo = np.asarray(photo.resize((256, 300)))
    frames = []
    for k in range(n):
        canvas = np.full((360, 480, 3), 128, np.uint8)
        x0 = 10 + k * (480 - 256 - 20) // max(n - 1, 1)
        canvas[60:360, x0:x0 + 256] = photo
        frames.append(canvas)
    return frames


@pytest.fixture(scope="module")
def photo_video(video_stack, tmp_path_factory) -> Path:
    """:func:`photo_frames` as a 30-frame MPEG-4 video at 25 fps."""
    return write_video(video_stack, tmp_path_factory.mktemp("video") / "hopper.mp4", photo_frames())


@pytest.fixture(scope="module")
def photo_poses(photo_video):
    from ssal.data.video import extract_poses

    return extract_poses(photo_video, progress=False)


def test_landmarks_on_every_frame_of_a_photo_video(photo_poses):
    poses = photo_poses
    assert poses.num_frames == 30 and poses.detected.all()
    assert poses.world.shape == (30, 33, 3) and poses.visibility.shape == (30, 33)
    assert np.allclose(np.diff(poses.times), 0.04, atol=1e-3)
    assert (poses.info.fps, poses.info.width, poses.info.height) == (25.0, 480, 360)
    # the face and shoulders are seen; the photo moves right, so do its image landmarks,
    # while the world landmarks stay hip-centred
    assert (poses.visibility[:, [J["nose"], J["left_shoulder"], J["right_shoulder"]]] > 0.9).all()
    nose_x = poses.image[:, J["nose"], 0]
    assert nose_x[-1] - nose_x[0] > 150
    hips = poses.world[:, [J["left_hip"], J["right_hip"]]].mean(axis=1)
    assert np.abs(hips).max() < 0.05


def test_photo_video_mapping_keeps_left_right_and_is_upright(photo_poses):
    x, vis = blazepose_to_egait16(photo_poses.world, photo_poses.visibility)
    img = photo_poses.image
    # She faces the camera: her left shoulder is on the image right, in the model's naming,
    # and stays her left (+x, the image right) after the mapping.
    assert (img[:, J["left_shoulder"], 0] > img[:, J["right_shoulder"], 0]).all()
    assert (x[:, E["left_shoulder"], 0] > x[:, E["right_shoulder"], 0] + 0.1).all()
    # upright: head above neck above spine above root, in every frame
    y = x[..., 1]
    assert (y[:, E["head"]] > y[:, E["neck"]]).all() and (y[:, E["neck"]] > y[:, E["spine"]]).all()
    assert (y[:, E["spine"]] > y[:, E["root"]]).all()
    # a rotation, not a mirror: left x up points the way her nose points (towards the camera)
    lateral = x[:, E["left_shoulder"]] - x[:, E["right_shoulder"]]
    forward = np.cross(lateral, x[:, E["neck"]] - x[:, E["root"]])
    nose = photo_poses.world[:, J["nose"]] * np.array([1.0, -1.0, -1.0])
    assert (np.einsum("tc,tc->t", nose - x[:, E["head"]], forward) > 0).all()
    assert (forward[:, 2] > 0).all()


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    """A small (untrained) classifier checkpoint: predict only needs it to be input-dependent."""
    cfg = resolve_config("skeletonclr", overrides={"model": {"encoder": {"channels": [8, 16], "strides": [1, 2]}}})
    torch.manual_seed(0)
    encoder = build_encoder(cfg["model"]["encoder"], EGAIT16)
    head = LinearClassifier(encoder.out_dim, 4)
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(path, encoder, head, encoder_config=cfg["model"]["encoder"], layout=EGAIT16,
                    classes=["happy", "angry", "sad", "neutral"], preprocess=None, clip_len=None, protocol="linear")
    return path


def test_pose_predict_embed_show_on_the_photo_video(photo_video, classifier, capsys, tmp_path, video_stack):
    cv2 = video_stack
    out = tmp_path / "poses.npz"
    # Default masking refuses it (her hips are below the picture) with one line and exit 2 ...
    rc, _, err = _cli(["pose", photo_video, "--out", out, "--no-progress"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "no stretch of at least 1 s" in err and "root" in err
    assert not out.exists()
    # ... and keeps every frame with --min-visibility 0: 30 frames at 25 fps -> 35 at 30 fps
    rc, printed, _ = _cli(["pose", photo_video, "--out", out, "--min-visibility", "0", "--no-progress"], capsys)
    assert rc == 0 and "1 sequence(s)" in printed
    with np.load(out) as z:
        assert z["x"].shape == (1, 35, 16, 3) and z["lengths"].tolist() == [35]
        assert z["blazepose_world"].shape == (30, 33, 3) and float(z["fps"]) == 30.0
        assert str(z["names"][0]) == "hopper.mp4@0.00-1.16s"
        assert (z["x"][0, :, E["head"], 1] > z["x"][0, :, E["root"], 1]).all()
    ds = load_dataset(out)
    assert len(ds) == 1 and ds.lengths.tolist() == [35] and ds.names == ["hopper.mp4@0.00-1.16s"]

    # predict on the video and on its poses.npz: the same probabilities
    rc, _, _ = _cli(["predict", "--checkpoint", classifier, photo_video, "--min-visibility", "0",
                     "--out", tmp_path / "v.json"], capsys)
    assert rc == 0
    rc, _, _ = _cli(["predict", "--checkpoint", classifier, out, "--out", tmp_path / "p.json"], capsys)
    assert rc == 0
    from_video = json.loads((tmp_path / "v.json").read_text())
    from_npz = json.loads((tmp_path / "p.json").read_text())
    assert [r["name"] for r in from_video] == ["hopper.mp4@0.00-1.16s"]
    probs = np.array([[r[c] for c in ("happy", "angry", "sad", "neutral")] for r in from_video + from_npz])
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and np.allclose(probs[0], probs[1], atol=1e-5)
    rc, _, err = _cli(["predict", "--checkpoint", classifier, photo_video], capsys)
    assert rc == 2 and "no stretch" in err  # the default masking, as for `ssal pose`

    rc, _, _ = _cli(["embed", "--checkpoint", classifier, photo_video, "--min-visibility", "0",
                     "--out", tmp_path / "f.npy"], capsys)
    assert rc == 0 and np.load(tmp_path / "f.npy").shape[0] == 1

    # show: the skeleton over the frames, as a GIF (30 frames) and an MP4 (30 frames)
    from PIL import Image

    rc, printed, _ = _cli(["show", photo_video, "--out", tmp_path / "o.gif", "--min-visibility", "0",
                           "--max-width", "240"], capsys)
    assert rc == 0 and "30 in 1 sequence(s)" in printed
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 30 and gif.size == (240, 180)
    rc, _, _ = _cli(["show", photo_video, "--out", tmp_path / "o.mp4"], capsys)
    assert rc == 0
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 30 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 480
    cap.release()
    rc, _, _ = _cli(["show", photo_video, "--out", tmp_path / "o.png", "--frame", "29"], capsys)
    assert rc == 0
    # The bones drawn on frame 29: her left arm (blue) on the image right, her right arm (red)
    # on the image left, as she faces the camera.
    with Image.open(tmp_path / "o.png") as png:
        drawn = np.asarray(png.convert("RGB"))
    cap = cv2.VideoCapture(str(photo_video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 29)
    plain = cv2.cvtColor(cap.read()[1], cv2.COLOR_BGR2RGB)
    cap.release()
    assert drawn.shape == plain.shape == (360, 480, 3)
    changed = (drawn != plain).any(axis=2)
    blue = changed & (drawn == (0x1F, 0x5F, 0xD0)).all(axis=2)
    red = changed & (drawn == (0xD0, 0x30, 0x20)).all(axis=2)
    assert blue.sum() > 50 and red.sum() > 50
    assert np.flatnonzero(blue.any(axis=0)).mean() > np.flatnonzero(red.any(axis=0)).mean() + 40
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_not_a_video_and_no_person_are_one_line_errors(video_stack, classifier, capsys, tmp_path):
    fake = tmp_path / "clip.mp4"
    fake.write_text("this is not a video\n")
    frames = [np.full((240, 320, 3), 40 + 6 * k, np.uint8) for k in range(20)]  # a grey fade, nobody
    empty = write_video(video_stack, tmp_path / "empty.avi", frames)
    cases = [
        (["pose", fake, "--out", tmp_path / "a.npz"], "clip.mp4: not a video"),
        (["predict", "--checkpoint", classifier, fake], "clip.mp4: not a video"),
        (["show", fake, "--out", tmp_path / "a.gif"], "clip.mp4: not a video"),
        (["pose", empty, "--out", tmp_path / "b.npz"], "empty.avi: no person found in any of its 20 frames"),
        (["predict", "--checkpoint", classifier, empty], "empty.avi: no person found"),
        (["show", empty, "--out", tmp_path / "b.gif"], "empty.avi: no person found"),
        (["pose", tmp_path / "missing.mp4", "--out", tmp_path / "c.npz"], "missing.mp4: file not found"),
    ]
    for argv, message in cases:
        rc, _, err = _cli(argv, capsys)
        assert rc == 2, argv
        assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not list(tmp_path.glob("*.npz")) and not list(tmp_path.glob("*.gif"))


def test_a_walker_who_leaves_the_picture_gives_two_sequences(video_stack, tmp_path):
    """30 frames with her, 1 s (25 frames) of an empty frame, 30 frames with her again."""
    from ssal.data.video import extract_poses

    frames = photo_frames()
    empty = [np.full_like(frames[0], 128)] * 25
    video = write_video(video_stack, tmp_path / "twice.mp4", frames + empty + frames[::-1])
    poses = extract_poses(video, progress=False)
    assert poses.detected.tolist() == [True] * 30 + [False] * 25 + [True] * 30
    seqs = walk_sequences(poses, VideoSettings(min_visibility=0.0))
    assert [(s.first_frame, s.stop_frame) for s in seqs] == [(0, 30), (55, 85)]
    assert [s.name for s in seqs] == ["twice.mp4@0.00-1.16s", "twice.mp4@2.20-3.36s"]
    assert [s.positions.shape[0] for s in seqs] == [35, 35]
