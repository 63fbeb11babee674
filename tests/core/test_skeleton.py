import numpy as np
import pytest

from ssal.errors import SsalInputError
from ssal.skeleton import EGAIT16, H36M17, map_to_layout, resolve_joint_mapping


@pytest.mark.parametrize("layout", [EGAIT16, H36M17])
def test_adjacency_spatial_partition(layout):
    a = layout.adjacency()
    v = layout.num_joints
    assert a.shape == (3, v, v)
    # root partition is the normalised self-loop only; the three parts sum to A D^-1, whose
    # columns sum to one.
    np.testing.assert_allclose(a.sum(axis=(0, 1)), np.ones(v), rtol=1e-6)
    assert np.all(np.diag(a[0]) > 0)
    assert np.all(np.diag(a[1]) == 0) and np.all(np.diag(a[2]) == 0)


def test_mirror_permutation_is_involution():
    p = EGAIT16.mirror_permutation()
    assert (p[p] == np.arange(16)).all()
    assert p[4] == 7 and p[12] == 15 and p[0] == 0


def test_h36m_maps_onto_egait_by_name_and_table():
    x = np.random.default_rng(0).normal(size=(5, 17, 3))
    by_table = map_to_layout(x, H36M17)
    by_name = map_to_layout(x, list(H36M17.joints))
    np.testing.assert_array_equal(by_table, by_name)
    np.testing.assert_array_equal(by_table[:, EGAIT16.index("left_hand")], x[:, H36M17.index("left_wrist")])


def test_cmu_bvh_names_map():
    names = ["Hips", "LHipJoint", "LeftUpLeg", "LeftLeg", "LeftFoot", "RHipJoint", "RightUpLeg",
             "RightLeg", "RightFoot", "LowerBack", "Spine", "Spine1", "Neck", "Neck1", "Head",
             "LeftShoulder", "LeftArm", "LeftForeArm", "LeftHand", "RightShoulder", "RightArm",
             "RightForeArm", "RightHand"]
    idx = resolve_joint_mapping(names)
    got = [names[i] for i in idx]
    assert got[4] == "LeftArm" and got[0] == "Hips" and got[3] == "Head" and got[5] == "LeftForeArm" and got[15] == "RightFoot"


def test_missing_joint_names_the_file():
    with pytest.raises(SsalInputError, match="walk.bvh: .*no joint found for .*left_hand"):
        resolve_joint_mapping(["Hips", "Spine"], where="walk.bvh")
