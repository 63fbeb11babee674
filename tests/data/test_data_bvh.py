"""BVH reader: hand-computed forward kinematics, the real CMU file, folders, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ssal.data.bvh import CMU_UNITS_TO_METRES, parse_bvh, read_bvh, read_bvh_folder, write_bvh
from ssal.data.io import load_dataset
from ssal.data.preprocess import PreprocessConfig
from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16

CMU = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bvh" / "cmu_01_01.bvh"

from bvh_rig import NAMES, OFFSETS, PARENTS, RIG, rig_motion  # noqa: F401 - the shared test rig


def test_fk_hand_computed(tmp_path):
    path = tmp_path / "rig.bvh"
    write_bvh(path, NAMES, PARENTS, OFFSETS, rig_motion(4), 1 / 30)
    mot = parse_bvh(path)
    assert [n for n in mot.joints if not n.endswith("End")] == NAMES and mot.fps == 30.0
    pos = mot.positions()
    j = {n: mot.joints.index(n) for n in NAMES}
    # frame 0: no rotations, positions are summed offsets + root translation
    np.testing.assert_allclose(pos[0, j["Head"]], [1, 65, 0], atol=1e-9)
    # left elbow turns its child's +x offset about y by 90 deg: +x -> -z
    np.testing.assert_allclose(pos[0, j["LeftForeArm"]], [1 + 16, 60, 0], atol=1e-9)
    np.testing.assert_allclose(pos[0, j["LeftHand"]], [17, 60, -8], atol=1e-9)
    # frame 1: spine rotated +90 deg about z, the chain above bends towards -x; root moved z=2
    np.testing.assert_allclose(pos[1, j["Spine"]], [1, 50, 2], atol=1e-9)
    np.testing.assert_allclose(pos[1, j["Neck"]], [1 - 10, 50, 2], atol=1e-9)
    np.testing.assert_allclose(pos[1, j["Head"]], [1 - 15, 50, 2], atol=1e-9)
    np.testing.assert_allclose(pos[1, j["LeftArm"]], [-9, 56, 2], atol=1e-9)
    # legs do not depend on the spine
    np.testing.assert_allclose(pos[1, j["LeftFoot"]], [5, 5, 2], atol=1e-9)


def test_read_bvh_maps_and_resamples(tmp_path):
    path = tmp_path / "rig.bvh"
    write_bvh(path, NAMES, PARENTS, OFFSETS, rig_motion(13), 1 / 120)
    seq = read_bvh(path, fps=30.0, units_to_metres=0.01)
    assert seq.shape == (4, 16, 3)  # frames 0, 4, 8, 12 of 13 at 120 fps
    np.testing.assert_allclose(seq[0, EGAIT16.index("head")], [0.01, 0.65, 0.0], atol=1e-9)
    np.testing.assert_allclose(seq[2, EGAIT16.index("root"), 2], 0.16, atol=1e-9)


def test_cmu_file_reads_as_plausible_human():
    if not CMU.is_file():
        pytest.skip("shared CMU BVH not available")
    mot = parse_bvh(CMU)
    assert mot.motion.shape == (2752, 96) and round(mot.fps) == 120
    seq = read_bvh(CMU, units_to_metres=CMU_UNITS_TO_METRES)
    assert seq.shape == (688, 16, 3)  # 2752 frames at 120 fps -> 30 fps
    y = seq[..., 1]
    head, feet = y[:, EGAIT16.index("head")], np.minimum(y[:, 12], y[:, 15])
    assert (head > feet).mean() > 0.95
    stature = np.median(head - feet)
    assert 1.2 < stature < 1.9, stature  # head joint (not the top) above the ankles: ~1.32 m
    left = seq[0, EGAIT16.index("left_shoulder")] - seq[0, EGAIT16.index("right_shoulder")]
    assert left[0] > 0  # faces +z at the start: left side along +x


def test_cmu_agrees_with_bvhio(tmp_path):
    bvhio = pytest.importorskip("bvhio")
    if not CMU.is_file():
        pytest.skip("shared CMU BVH not available")
    text = CMU.read_text().splitlines()
    k = text.index("MOTION")
    short = text[: k + 1] + ["Frames: 20", text[k + 2]] + text[k + 3 : k + 3 + 20]
    (tmp_path / "short.bvh").write_text("\n".join(short) + "\n")
    mine = parse_bvh(tmp_path / "short.bvh")
    pos = mine.positions()
    root = bvhio.readAsHierarchy(str(tmp_path / "short.bvh"))
    for frame in (0, 19):
        root.loadPose(frame)
        for joint, _, _ in root.layout():
            np.testing.assert_allclose(pos[frame, mine.joints.index(joint.Name)], list(joint.PositionWorld), atol=1e-3)


def test_folder_with_labels_csv(tmp_path):
    for name in ("b.bvh", "a.bvh"):
        write_bvh(tmp_path / name, NAMES, PARENTS, OFFSETS, rig_motion(12), 1 / 30)
    (tmp_path / "labels.csv").write_text("file,label\na.bvh,sad\nb,0\n")
    ds = load_dataset(tmp_path, preprocess=PreprocessConfig(length=12))
    assert ds.names == ["a.bvh", "b.bvh"] and ds.y.tolist() == [2, 0] and ds.x.shape == (2, 3, 12, 16)
    (tmp_path / "labels.csv").write_text("file,label\na.bvh,sad\n")
    with pytest.raises(SsalInputError, match="b.bvh"):
        read_bvh_folder(tmp_path)
    (tmp_path / "labels.csv").write_text("a.bvh,sad\nb.bvh,furious\n")
    with pytest.raises(SsalInputError, match="furious"):
        read_bvh_folder(tmp_path)


def test_single_bvh_is_unlabelled(tmp_path):
    write_bvh(tmp_path / "one.bvh", NAMES, PARENTS, OFFSETS, rig_motion(10), 1 / 30)
    ds = load_dataset(tmp_path / "one.bvh")
    assert len(ds) == 1 and ds.y[0] == -1 and ds.lengths[0] == 10


def _good_text(tmp_path) -> str:
    write_bvh(tmp_path / "g.bvh", NAMES, PARENTS, OFFSETS, rig_motion(6), 1 / 30)
    return (tmp_path / "g.bvh").read_text()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda t: "", "empty"),
        (lambda t: "hello world\n1 2 3\n", "not a BVH"),
        (lambda t: t.rsplit("\n", 3)[0] + "\n", "truncated"),
        (lambda t: t.split("MOTION")[0], "MOTION"),
        (lambda t: t.replace("Frames: 6", "Frames: 6").rstrip("\n") + " 7.0\n", "channels"),
        (lambda t: t.replace("Frames: 6", "Frames: 6").rstrip("\n").rsplit(" ", 1)[0] + " nan\n", "NaN"),
        (lambda t: t.replace("LeftFoot", "LeftToe"), "no joint found"),
    ],
)
def test_bad_bvh(tmp_path, mutate, match):
    path = tmp_path / "bad.bvh"
    path.write_text(mutate(_good_text(tmp_path)))
    with pytest.raises(SsalInputError, match=match) as info:
        read_bvh(path)
    assert "bad.bvh" in str(info.value)


def test_bvh_frame_limit(tmp_path):
    write_bvh(tmp_path / "long.bvh", NAMES, PARENTS, OFFSETS, rig_motion(40), 1 / 30)
    with pytest.raises(SsalInputError, match="limit"):
        read_bvh(tmp_path / "long.bvh", config=PreprocessConfig(max_frames=20))
