"""Rule-based rig matching: the joint names of five real rigs, joint maps, units, left stays left."""

from __future__ import annotations

import numpy as np
import pytest

from ssal.data.bvh import UNITS, guess_units, parse_bvh, read_bvh, read_bvh_with_info, write_bvh
from ssal.errors import SsalInputError
from ssal.jointmatch import load_joint_map, match_egait16, parse_joint_name
from ssal.skeleton import EGAIT16, resolve_joint_mapping


def tree(spec: list[tuple[str, str | None]]) -> tuple[list[str], list[int]]:
    """Names and parent indices from ``(name, parent name)`` pairs, parents first."""
    names = [n for n, _ in spec]
    return names, [names.index(p) if p else -1 for _, p in spec]


def chain(parent: str | None, *names: str) -> list[tuple[str, str | None]]:
    out, prev = [], parent
    for n in names:
        out.append((n, prev))
        prev = n
    return out


# Bandai-Namco-Research-Motiondataset (both datasets): 6 channels on every joint, a floor root.
BANDAI = (
    chain(None, "joint_Root", "Hips", "Spine", "Chest", "Neck", "Head", "HeadEnd")
    + chain("Chest", "Shoulder_L", "UpperArm_L", "LowerArm_L", "Hand_L", "Hand_LEnd")
    + chain("Chest", "Shoulder_R", "UpperArm_R", "LowerArm_R", "Hand_R", "Hand_REnd")
    + chain("Hips", "UpperLeg_L", "LowerLeg_L", "Foot_L", "Toes_L", "Toes_LEnd")
    + chain("Hips", "UpperLeg_R", "LowerLeg_R", "Foot_R", "Toes_R", "Toes_REnd")
)
# CMU mocap (cgspeed BVH conversion).
CMU = (
    [("Hips", None)]
    + chain("Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase")
    + chain("Hips", "RHipJoint", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase")
    + chain("Hips", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head")
    + chain("Spine1", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftFingerBase", "LeftHandIndex1")
    + [("LThumb", "LeftHand")]
    + chain("Spine1", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightFingerBase", "RightHandIndex1")
    + [("RThumb", "RightHand")]
)
# Mixamo (Adobe auto-rigger), namespaced names.
MIX = "mixamorig:"
MIXAMO = [(MIX + n, MIX + p if p else None) for n, p in (
    chain(None, "Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "HeadTop_End")
    + chain("Spine2", "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "LeftHandThumb1", "LeftHandThumb2")
    + chain("LeftHand", "LeftHandIndex1", "LeftHandIndex2")
    + chain("Spine2", "RightShoulder", "RightArm", "RightForeArm", "RightHand", "RightHandThumb1")
    + chain("Hips", "LeftUpLeg", "LeftLeg", "LeftFoot", "LeftToeBase", "LeftToe_End")
    + chain("Hips", "RightUpLeg", "RightLeg", "RightFoot", "RightToeBase", "RightToe_End")
)]
# Blender Rigify human metarig: the hips bone is "spine", no bone is called neck or head.
RIGIFY = (
    chain(None, "spine", "spine.001", "spine.002", "spine.003", "spine.004", "spine.005", "spine.006", "face")
    + chain("spine.003", "shoulder.L", "upper_arm.L", "forearm.L", "hand.L", "f_index.01.L")
    + chain("spine.003", "shoulder.R", "upper_arm.R", "forearm.R", "hand.R", "f_index.01.R")
    + [("breast.L", "spine.003"), ("breast.R", "spine.003"), ("pelvis.L", "spine"), ("pelvis.R", "spine")]
    + chain("spine", "thigh.L", "shin.L", "foot.L", "toe.L") + [("heel.02.L", "foot.L")]
    + chain("spine", "thigh.R", "shin.R", "foot.R", "toe.R") + [("heel.02.R", "foot.R")]
)
# Rigify's deform bones (DEF- prefix, limbs in two segments).
RIGIFY_DEF = [("DEF-" + n, "DEF-" + p if p else None) for n, p in (
    chain(None, "spine", "spine.001", "spine.002", "spine.003", "spine.004", "spine.005", "spine.006")
    + chain("spine.003", "shoulder.L", "upper_arm.L", "upper_arm.L.001", "forearm.L", "forearm.L.001", "hand.L")
    + chain("spine.003", "shoulder.R", "upper_arm.R", "upper_arm.R.001", "forearm.R", "forearm.R.001", "hand.R")
    + chain("spine", "thigh.L", "thigh.L.001", "shin.L", "shin.L.001", "foot.L", "toe.L")
    + chain("spine", "thigh.R", "thigh.R.001", "shin.R", "shin.R.001", "foot.R", "toe.R")
)]
# Unreal Engine 4 mannequin: a floor "root" above "pelvis", twist and IK bones.
UNREAL = (
    chain(None, "root", "pelvis", "spine_01", "spine_02", "spine_03", "neck_01", "head")
    + chain("spine_03", "clavicle_l", "upperarm_l", "lowerarm_l", "hand_l", "index_01_l")
    + [("lowerarm_twist_01_l", "lowerarm_l"), ("upperarm_twist_01_l", "upperarm_l")]
    + chain("spine_03", "clavicle_r", "upperarm_r", "lowerarm_r", "hand_r", "thumb_01_r")
    + chain("pelvis", "thigh_l", "calf_l", "foot_l", "ball_l") + [("calf_twist_01_l", "calf_l")]
    + chain("pelvis", "thigh_r", "calf_r", "foot_r", "ball_r") + [("thigh_twist_01_r", "thigh_r")]
    + chain("root", "ik_foot_root", "ik_foot_l") + [("ik_hand_gun", "root")]
)
# Poser / DAZ BVH export.
POSER = (
    chain(None, "hip", "abdomen", "chest", "neck", "head")
    + chain("chest", "lCollar", "lShldr", "lForeArm", "lHand") + chain("chest", "rCollar", "rShldr", "rForeArm", "rHand")
    + chain("hip", "lThigh", "lShin", "lFoot") + chain("hip", "rThigh", "rShin", "rFoot")
)

EXPECTED = {
    "bandai": (BANDAI, dict(root="Hips", spine="Spine", neck="Neck", head="Head", left_shoulder="UpperArm_L",
                            left_elbow="LowerArm_L", left_hand="Hand_L", right_shoulder="UpperArm_R",
                            right_elbow="LowerArm_R", right_hand="Hand_R", left_hip="UpperLeg_L",
                            left_knee="LowerLeg_L", left_foot="Foot_L", right_hip="UpperLeg_R",
                            right_knee="LowerLeg_R", right_foot="Foot_R")),
    "cmu": (CMU, dict(root="Hips", spine="Spine", neck="Neck", head="Head", left_shoulder="LeftArm",
                      left_elbow="LeftForeArm", left_hand="LeftHand", right_shoulder="RightArm",
                      right_elbow="RightForeArm", right_hand="RightHand", left_hip="LeftUpLeg", left_knee="LeftLeg",
                      left_foot="LeftFoot", right_hip="RightUpLeg", right_knee="RightLeg", right_foot="RightFoot")),
    "mixamo": (MIXAMO, {k: MIX + v for k, v in dict(
        root="Hips", spine="Spine1", neck="Neck", head="Head", left_shoulder="LeftArm", left_elbow="LeftForeArm",
        left_hand="LeftHand", right_shoulder="RightArm", right_elbow="RightForeArm", right_hand="RightHand",
        left_hip="LeftUpLeg", left_knee="LeftLeg", left_foot="LeftFoot", right_hip="RightUpLeg",
        right_knee="RightLeg", right_foot="RightFoot").items()}),
    "rigify": (RIGIFY, dict(root="spine", spine="spine.001", neck="spine.003", head="spine.006",
                            left_shoulder="upper_arm.L", left_elbow="forearm.L", left_hand="hand.L",
                            right_shoulder="upper_arm.R", right_elbow="forearm.R", right_hand="hand.R",
                            left_hip="thigh.L", left_knee="shin.L", left_foot="foot.L", right_hip="thigh.R",
                            right_knee="shin.R", right_foot="foot.R")),
    "rigify-def": (RIGIFY_DEF, {k: "DEF-" + v for k, v in dict(
        root="spine", spine="spine.001", neck="spine.003", head="spine.006", left_shoulder="upper_arm.L",
        left_elbow="forearm.L", left_hand="hand.L", right_shoulder="upper_arm.R", right_elbow="forearm.R",
        right_hand="hand.R", left_hip="thigh.L", left_knee="shin.L", left_foot="foot.L", right_hip="thigh.R",
        right_knee="shin.R", right_foot="foot.R").items()}),
    "unreal": (UNREAL, dict(root="pelvis", spine="spine_02", neck="neck_01", head="head", left_shoulder="upperarm_l",
                            left_elbow="lowerarm_l", left_hand="hand_l", right_shoulder="upperarm_r",
                            right_elbow="lowerarm_r", right_hand="hand_r", left_hip="thigh_l", left_knee="calf_l",
                            left_foot="foot_l", right_hip="thigh_r", right_knee="calf_r", right_foot="foot_r")),
    "poser": (POSER, dict(root="hip", spine="abdomen", neck="neck", head="head", left_shoulder="lShldr",
                          left_elbow="lForeArm", left_hand="lHand", right_shoulder="rShldr", right_elbow="rForeArm",
                          right_hand="rHand", left_hip="lThigh", left_knee="lShin", left_foot="lFoot",
                          right_hip="rThigh", right_knee="rShin", right_foot="rFoot")),
}


@pytest.mark.parametrize("rig", sorted(EXPECTED))
def test_rig_maps_onto_egait16(rig):
    spec, expected = EXPECTED[rig]
    names, parents = tree(spec)
    placed, missing = match_egait16(names, parents)
    assert missing == []
    assert {t: names[i] for t, i in placed.items()} == expected
    idx = resolve_joint_mapping(names, EGAIT16, parents=parents)
    assert [names[i] for i in idx] == [expected[j] for j in EGAIT16.joints]


@pytest.mark.parametrize("rig", ["bandai", "cmu", "mixamo", "unreal", "poser"])
def test_names_alone_suffice_for_named_trunks(rig):
    spec, expected = EXPECTED[rig]
    names, _ = tree(spec)
    placed, missing = match_egait16(names)
    assert missing == [] and {t: names[i] for t, i in placed.items()} == expected


def test_rigify_without_hierarchy_names_what_is_missing():
    names, _ = tree(RIGIFY)
    with pytest.raises(SsalInputError, match="no joint found for .*neck, head") as info:
        resolve_joint_mapping(names, EGAIT16, where="rig.bvh")
    msg = str(info.value)
    assert "rig.bvh" in msg and "upper_arm.L" in msg and "--joint-map" in msg


@pytest.mark.parametrize("name, side, part", [
    ("UpperArm_L", "left", "upper_arm"), ("upper_arm.L", "left", "upper_arm"), ("upperarm_l", "left", "upper_arm"),
    ("mixamorig:LeftForeArm", "left", "forearm"), ("LHipJoint", "left", "hip"), ("l_elbow", "left", "forearm"),
    ("R_Knee", "right", "shin"), ("rightupleg", "right", "thigh"), ("lShldr", "left", "upper_arm"),
    ("Bip01 L Thigh", "left", "thigh"), ("DEF-shin.R.001", "right", "shin"), ("clavicle_r", "right", "clavicle"),
    ("LeftHandIndex1", "left", None), ("LeftHandEnd", "left", None), ("LeftToeBase", "left", None),
    ("upperarm_twist_01_l", "left", None), ("Hand_LEnd", None, None), ("Hips", None, "center"),
    ("joint_Root", None, "root"), ("spine_02", None, "spine"), ("leg", None, None),
])
def test_parse_joint_name(name, side, part):
    w = parse_joint_name(name)
    assert (w.side, w.part) == (side, part)


def test_joint_map_overrides_and_fills(tmp_path):
    names, parents = tree(RIGIFY)
    jm = tmp_path / "map.yaml"
    jm.write_text("root: spine\nneck: spine.004\nhead: spine.006\n")
    mapping = load_joint_map(jm, EGAIT16.joints)
    idx = resolve_joint_mapping(names, EGAIT16, joint_map=mapping)  # no hierarchy: the map fills the gap
    got = dict(zip(EGAIT16.joints, (names[i] for i in idx)))
    assert got["neck"] == "spine.004" and got["head"] == "spine.006" and got["left_hand"] == "hand.L"
    bad = tmp_path / "bad.yaml"
    bad.write_text("nose: Head\n")
    with pytest.raises(SsalInputError, match="unknown target joint"):
        load_joint_map(bad, EGAIT16.joints)
    with pytest.raises(SsalInputError, match="no joint 'Chin'"):
        resolve_joint_mapping(names, EGAIT16, joint_map={"head": "Chin"})


def test_guess_units():
    # height proxy (trunk + leg chain) of an adult: about 1.45 m
    assert guess_units(1.45) == "m" and guess_units(145.0) == "cm" and guess_units(1450.0) == "mm"
    assert guess_units(1.45 / 0.0254) == "in" and guess_units(1.45 / UNITS["cmu"]) == "cmu"
    assert guess_units(1.2 * 100) == "cm"  # a child in centimetres


def _bandai_rig_file(path, frame_time: float, frames: int) -> None:
    """A Bandai-named rig facing +z (left side on +x), in centimetres, 6 channels on the root."""
    spec = BANDAI
    names = [n for n, _ in spec if not n.endswith("End")]
    parents = [names.index(p) if p else -1 for n, p in spec if not n.endswith("End")]
    off = {"joint_Root": (0, 0, 0), "Hips": (0, 94, 0), "Spine": (0, 15, 0), "Chest": (0, 9, 0),
           "Neck": (0, 16, 0), "Head": (0, 6, 0), "Shoulder_L": (5, 13, 0), "UpperArm_L": (10, 0, 0),
           "LowerArm_L": (0, -28, 0), "Hand_L": (0, -25, 0), "UpperLeg_L": (9, -5, 0),
           "LowerLeg_L": (0, -42, 0), "Foot_L": (0, -41, 0), "Toes_L": (0, -6, 12)}
    for n in list(off):
        if n.endswith("_L"):
            x, y, z = off[n]
            off[n[:-2] + "_R"] = (-x, y, z)
    offsets = np.array([off[n] for n in names], dtype=float)
    motion = np.zeros((frames, 6 + 3 * (len(names) - 1)))
    motion[:, 2] = np.arange(frames) * 4.0  # walks along +z
    write_bvh(path, names, parents, offsets, motion, frame_time)


def test_left_stays_left_on_a_known_frame(tmp_path):
    path = tmp_path / "dataset-1_walk_normal_001.bvh"
    _bandai_rig_file(path, 1 / 120, 13)
    seq, info = read_bvh_with_info(path)
    assert info.units == "auto:cm" and info.source_fps == 120.0
    assert seq.shape == (4, 16, 3)  # 13 frames at 120 fps -> frames 0, 4, 8, 12 at 30 fps
    f0 = seq[0]
    j = EGAIT16.index
    # frame 0 by hand: left hand at x = (5 + 10) cm, right hand at -15 cm, head 140 cm up
    np.testing.assert_allclose(f0[j("left_hand")], [0.15, (94 + 15 + 9 + 13 - 28 - 25) / 100, 0], atol=1e-9)
    np.testing.assert_allclose(f0[j("right_hand")], [-0.15, (94 + 15 + 9 + 13 - 28 - 25) / 100, 0], atol=1e-9)
    np.testing.assert_allclose(f0[j("head")], [0, 1.40, 0], atol=1e-9)
    for a, b in EGAIT16.mirror_pairs:  # every left joint on the +x (left) side
        assert f0[a, 0] > 0 > f0[b, 0], EGAIT16.joints[a]
    np.testing.assert_allclose(seq[2, j("root"), 2], 0.32, atol=1e-9)  # 8 source frames x 4 cm


def test_real_files_left_is_left(require_shared):
    """In each real file, the joint mapped to left_hip lies on the subject's left at frame 0
    (left = up x forward, forward = toe minus ankle of the raw rig)."""
    files = {
        ("bandai-namco", "dataset-1", "data", "dataset-1_walk_angry_001.bvh"): ("Foot_L", "Toes_L"),
        ("bandai-namco", "dataset-2", "data", "dataset-2_walk_normal_001.bvh"): ("Foot_L", "Toes_L"),
        ("bvh", "cmu_01_01.bvh"): ("LeftFoot", "LeftToeBase"),
    }
    for parts, (ankle, toe) in files.items():
        path = require_shared(*parts)
        mot = parse_bvh(path)
        raw = mot.positions()[0]
        fwd = raw[mot.joints.index(toe)] - raw[mot.joints.index(ankle)]
        fwd[1] = 0.0
        left = np.cross([0.0, 1.0, 0.0], fwd)
        seq, info = read_bvh_with_info(path)
        assert info.joints["left_hip"] in ("UpperLeg_L", "LeftUpLeg")
        across = seq[0, EGAIT16.index("left_hip")] - seq[0, EGAIT16.index("right_hip")]
        assert np.dot(across, left) > 0, parts[-1]
        assert info.units == ("auto:cmu" if parts[0] == "bvh" else "auto:cm")


def test_a_few_real_bandai_files_read(require_shared):
    folder = require_shared("bandai-namco", "dataset-1", "data")
    for name in ("dataset-1_walk_angry_001.bvh", "dataset-1_bow_sad_001.bvh", "dataset-1_dash_happy_001.bvh"):
        seq = read_bvh(folder / name)
        assert seq.shape[1:] == (16, 3) and np.isfinite(seq).all()
        head, feet = seq[:, EGAIT16.index("head"), 1], np.minimum(seq[:, 12, 1], seq[:, 15, 1])
        assert 1.2 < float(np.median(head - feet)) < 1.9  # metres, from centimetres
