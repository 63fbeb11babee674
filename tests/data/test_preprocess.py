"""Preprocessing: validation, length fixing, centring, facing alignment, scale."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.data.preprocess import (
    REFERENCE_HEIGHT,
    PreprocessConfig,
    across_vector,
    align_facing,
    center_sequences,
    fix_length,
    height_proxy,
    loop_to_length,
    resample_fps,
    resample_to_length,
    rotate_about_up,
    scale_sequences,
    sequences_to_dataset,
)
from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16, H36M17

CLASSES = ["happy", "angry", "sad", "neutral"]


def standing_pose(height_scale: float = 1.0) -> np.ndarray:
    """A hand-made E-Gait-16 standing pose facing +z (left side at +x), ``(16, 3)``."""
    p = np.zeros((16, 3))
    p[0] = [0, 1.0, 0]          # root
    p[1] = [0, 1.25, 0]         # spine
    p[2] = [0, 1.5, 0]          # neck
    p[3] = [0, 1.65, 0]         # head
    p[4] = [0.18, 1.5, 0]       # left shoulder
    p[5] = [0.2, 1.2, 0]
    p[6] = [0.2, 0.95, 0]
    p[7] = [-0.18, 1.5, 0]      # right shoulder
    p[8] = [-0.2, 1.2, 0]
    p[9] = [-0.2, 0.95, 0]
    p[10] = [0.1, 0.95, 0]      # left hip
    p[11] = [0.1, 0.5, 0]
    p[12] = [0.1, 0.08, 0]
    p[13] = [-0.1, 0.95, 0]     # right hip
    p[14] = [-0.1, 0.5, 0]
    p[15] = [-0.1, 0.08, 0]
    return p * height_scale


def walking(t: int, heading: float = 0.0, offset=(3.0, 0.0, -2.0), scale: float = 1.0) -> np.ndarray:
    """A pose translated along its facing direction, rotated by ``heading`` about y."""
    pose = standing_pose(scale)
    frames = np.repeat(pose[None], t, axis=0)
    frames[:, :, 2] += np.linspace(0, 0.04 * t, t)[:, None]  # walk towards +z
    frames[:, 6, 1] += 0.05 * np.sin(np.arange(t))[:, None].ravel()  # swing a hand
    c, s = np.cos(heading), np.sin(heading)
    rot = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return frames @ rot.T + np.asarray(offset)


def test_hand_pose_height_proxy():
    # trunk 0.25 + 0.25 + 0.15 = 0.65, legs 0.45 + 0.42 = 0.87 -> 1.52
    assert height_proxy(standing_pose()[None], EGAIT16) == pytest.approx(1.52)
    assert height_proxy(standing_pose(2.0)[None], EGAIT16) == pytest.approx(3.04)


def test_loop_padding_repeats_frames():
    seq = np.arange(5)[:, None] * np.ones((5, 2))
    out = loop_to_length(seq, 12)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 0, 1])


def test_loop_cuts_longer_to_centre():
    seq = np.arange(10, dtype=float)
    np.testing.assert_array_equal(loop_to_length(seq, 4), [3, 4, 5, 6])
    np.testing.assert_array_equal(loop_to_length(seq, 10), seq)


def test_resample_keeps_endpoints_and_is_linear():
    seq = np.stack([np.arange(7.0), np.arange(7.0) ** 2], axis=1)
    out = resample_to_length(seq, 13)
    assert out.shape == (13, 2)
    np.testing.assert_allclose(out[0], seq[0])
    np.testing.assert_allclose(out[-1], seq[-1])
    np.testing.assert_allclose(out[1], [0.5, 0.5])  # halfway between frames 0 and 1
    np.testing.assert_allclose(resample_to_length(seq, 4)[:, 0], [0, 2, 4, 6])
    assert fix_length(seq, 13, "resample").shape == (13, 2)


def test_resample_fps_halves_and_keeps_duration():
    seq = np.arange(9.0)[:, None]
    np.testing.assert_allclose(resample_fps(seq, 120.0, 60.0)[:, 0], [0, 2, 4, 6, 8])
    np.testing.assert_allclose(resample_fps(seq, 120.0, 30.0)[:, 0], [0, 4, 8])
    up = resample_fps(seq[:3], 30.0, 60.0)
    np.testing.assert_allclose(up[:, 0], [0, 0.5, 1, 1.5, 2])
    with pytest.raises(SsalInputError):
        resample_fps(seq, 0.0, 30.0)


def test_center_modes():
    x = walking(6)[None]
    first = center_sequences(x, "first_frame", 0)
    np.testing.assert_allclose(first[0, 0, 0], 0, atol=1e-12)
    # the walking path is kept: later roots move
    assert np.linalg.norm(first[0, -1, 0]) > 0.1
    per = center_sequences(x, "per_frame", 0)
    np.testing.assert_allclose(per[0, :, 0], 0, atol=1e-12)
    assert center_sequences(x, "none", 0) is x


@pytest.mark.parametrize("heading", [0.0, 0.7, -2.0, np.pi])
def test_align_facing_hip_vector_along_plus_x(heading):
    x = walking(8, heading=heading)[None]
    out = align_facing(x, EGAIT16)
    across = across_vector(out, EGAIT16)[0, 0]
    assert across[0] > 0
    assert abs(across[2]) < 1e-9
    # the subject walks towards +z afterwards
    assert out[0, -1, 0, 2] - out[0, 0, 0, 2] > 0.2
    # a rigid motion: bone lengths unchanged, frame-0 root fixed
    np.testing.assert_allclose(out[0, 0, 0], x[0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(
        np.linalg.norm(out[0, :, 3] - out[0, :, 2], axis=-1), np.linalg.norm(x[0, :, 3] - x[0, :, 2], axis=-1)
    )


def test_align_facing_other_layout():
    pose = np.zeros((2, 17, 3))
    pose[:, H36M17.index("left_hip")] = [0, 0, 1]
    pose[:, H36M17.index("right_hip")] = [0, 0, -1]
    out = align_facing(pose[None], H36M17)
    across = across_vector(out, H36M17)[0, 0]
    np.testing.assert_allclose(across, [2, 0, 0], atol=1e-12)


def test_rotate_about_up_hand_computed():
    pts = np.array([[[1.0, 5.0, 0.0]]])  # (T=1, V=1, 3) at angle 0 from +x
    out = rotate_about_up(pts, np.asarray(np.pi / 2), up_axis=1)
    # angle 0 - pi/2: from +x towards -z
    np.testing.assert_allclose(out[0, 0], [0, 5, -1], atol=1e-12)


def test_scale_to_reference_height():
    x = np.stack([walking(5, scale=100.0), walking(5, scale=0.5)])  # cm-like and small
    out = scale_sequences(x, EGAIT16)
    np.testing.assert_allclose(height_proxy(out, EGAIT16), REFERENCE_HEIGHT)
    with pytest.raises(SsalInputError, match="degenerate"):
        scale_sequences(np.zeros((1, 5, 16, 3)), EGAIT16, names=["z"], source="f.h5")


def test_sequences_to_dataset_shapes_labels_meta():
    seqs = [walking(10, heading=1.0), walking(80), walking(75, scale=100.0)]
    ds = sequences_to_dataset(seqs, [0, None, 3], ["a", "b", "c"], CLASSES, source="mem.h5", meta={"k": 1})
    assert ds.x.shape == (3, 3, 75, 16) and ds.x.dtype == np.float32
    np.testing.assert_array_equal(ds.y, [0, -1, 3])
    np.testing.assert_array_equal(ds.lengths, [10, 80, 75])
    assert ds.meta["source"] == "mem.h5" and ds.meta["k"] == 1
    assert ds.meta["preprocess"] == PreprocessConfig().to_dict()
    # centring: root of frame 0 at the origin
    np.testing.assert_allclose(ds.x[:, :, 0, 0], 0, atol=1e-6)
    # scale: all three equally sized
    seq_tv3 = ds.x.transpose(0, 2, 3, 1).astype(np.float64)
    np.testing.assert_allclose(height_proxy(seq_tv3, EGAIT16), REFERENCE_HEIGHT, rtol=1e-5)
    # loop: frames 10.. repeat frames 0..
    np.testing.assert_allclose(ds.x[0, :, 10], ds.x[0, :, 0], atol=1e-6)


def test_switches_off_keep_positions():
    seq = walking(75)
    cfg = PreprocessConfig(center="none", scale=False, align_facing=False)
    ds = sequences_to_dataset([seq], None, ["s"], CLASSES, config=cfg)
    np.testing.assert_allclose(ds.x[0].transpose(1, 2, 0), seq, atol=1e-6)
    assert ds.y[0] == -1


def test_resample_mode_in_pipeline():
    seq = walking(30)
    cfg = PreprocessConfig(center="none", scale=False, align_facing=False, length=50, length_mode="resample")
    ds = sequences_to_dataset([seq], [1], ["s"], CLASSES, config=cfg)
    got = ds.x[0].transpose(1, 2, 0)
    np.testing.assert_allclose(got[0], seq[0], atol=1e-6)
    np.testing.assert_allclose(got[-1], seq[-1], atol=1e-6)


@pytest.mark.parametrize(
    "seq, match",
    [
        (np.full((10, 16, 3), np.nan), "NaN"),
        (np.zeros((2, 16, 3)), "frame"),
        (np.zeros((10, 15, 3)), "16 joints"),
        (np.zeros((10, 16)), "shape"),
        (np.zeros((200_001, 16, 3), dtype=np.float32), "limit"),
    ],
)
def test_bad_sequences_raise_with_source_and_name(seq, match):
    if np.isnan(seq).any():
        seq = walking(10)
        seq[4, 3, 1] = np.inf
        match = "NaN or inf"
    with pytest.raises(SsalInputError, match=match) as info:
        sequences_to_dataset([walking(10), seq], None, ["good", "bad_one"], CLASSES, source="corpus.h5")
    assert "corpus.h5" in str(info.value) and "bad_one" in str(info.value)


def test_bad_labels_and_config():
    with pytest.raises(SsalInputError, match="outside"):
        sequences_to_dataset([walking(10)], [4], ["a"], CLASSES)
    with pytest.raises(SsalInputError, match="integer"):
        sequences_to_dataset([walking(10)], ["happy"], ["a"], CLASSES)
    with pytest.raises(SsalInputError):
        PreprocessConfig(center="middle")
    with pytest.raises(SsalInputError):
        PreprocessConfig(length_mode="stretch")
    with pytest.raises(SsalInputError, match="unknown"):
        PreprocessConfig.from_dict({"centre": "none"})
    assert PreprocessConfig.from_dict(PreprocessConfig(length=50).to_dict()).length == 50
