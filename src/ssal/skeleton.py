"""Skeleton layouts: joints, bones, body parts, mirror pairs and the ST-GCN graph.

Each layout is defined once here; everything downstream (augmentations, models, readers)
reads joint counts, body parts and mirror pairs from a :class:`SkeletonLayout` and never
hard-codes ``V``.

Tensor contract (the whole code base): one sequence is ``(C=3, T, V)`` with xyz
coordinates, T frames and V joints; a batch is ``(N, C, T, V)``. Readers convert at the edge.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import overload

import numpy as np

from .errors import SsalInputError

#: The five body parts every layout must name (SSA's spatial mask picks one or two of them).
BODY_PARTS = ("trunk", "left_arm", "right_arm", "left_leg", "right_leg")


@dataclass(frozen=True, eq=False)
class SkeletonLayout:
    """A skeleton: joint names, bones, centre joint, mirror pairs, body parts, upper body.

    Attributes:
        name: short identifier stored in datasets and checkpoints (e.g. ``"egait16"``).
        joints: joint names, index = position along the V axis.
        edges: undirected bones as ``(i, j)`` index pairs.
        center: the centre (root) joint used by the ST-GCN spatial partition and root-centring.
        mirror_pairs: ``(left, right)`` index pairs swapped by a left/right flip.
        parts: the five body parts (:data:`BODY_PARTS`) as tuples of joint indices.
        upper_body: joints moved by SSA's upper-body jitter (arms, optionally upper trunk).
        up_axis: index of the vertical coordinate (1 = y-up).
    """

    name: str
    joints: tuple[str, ...]
    edges: tuple[tuple[int, int], ...]
    center: int
    mirror_pairs: tuple[tuple[int, int], ...]
    parts: Mapping[str, tuple[int, ...]]
    upper_body: tuple[int, ...]
    up_axis: int = 1
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        v = len(self.joints)
        if len(set(self.joints)) != v:
            raise ValueError(f"layout {self.name}: joint names are not unique")
        for a, b in self.edges:
            if not (0 <= a < v and 0 <= b < v) or a == b:
                raise ValueError(f"layout {self.name}: bad edge ({a}, {b})")
        if not 0 <= self.center < v:
            raise ValueError(f"layout {self.name}: centre joint {self.center} out of range")
        if tuple(self.parts) != BODY_PARTS:
            raise ValueError(f"layout {self.name}: parts must be {BODY_PARTS} in that order")
        covered = sorted(j for p in self.parts.values() for j in p)
        if covered != list(range(v)):
            raise ValueError(f"layout {self.name}: body parts must cover each joint exactly once")
        for a, b in self.mirror_pairs:
            if not (0 <= a < v and 0 <= b < v):
                raise ValueError(f"layout {self.name}: bad mirror pair ({a}, {b})")
        self._index.update({n: i for i, n in enumerate(self.joints)})

    @property
    def num_joints(self) -> int:
        """V, the number of joints."""
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name."""
        return self._index[joint]

    def mirror_permutation(self) -> np.ndarray:
        """Index array ``p`` such that ``x[..., p]`` swaps left and right joints."""
        perm = np.arange(self.num_joints)
        for a, b in self.mirror_pairs:
            perm[a], perm[b] = b, a
        return perm

    def parents(self) -> np.ndarray:
        """Parent of each joint in the tree rooted at :attr:`center` (-1 for the root)."""
        parent = -np.ones(self.num_joints, dtype=np.int64)
        adj: dict[int, list[int]] = {j: [] for j in range(self.num_joints)}
        for a, b in self.edges:
            adj[a].append(b)
            adj[b].append(a)
        seen = {self.center}
        stack = [self.center]
        while stack:
            j = stack.pop()
            for k in adj[j]:
                if k not in seen:
                    seen.add(k)
                    parent[k] = j
                    stack.append(k)
        return parent

    def adjacency(self, max_hop: int = 1, dilation: int = 1) -> np.ndarray:
        """ST-GCN "spatial" partition adjacency, shape ``(3, V, V)``, float32.

        Follows Yan et al. (2018): neighbours within ``max_hop`` hops are split into the root
        itself, joints closer to the centre joint (centripetal) and joints farther from it
        (centrifugal); the adjacency is column-normalised (``A D^-1``) before partitioning.
        """
        v = self.num_joints
        hop = hop_distance(v, self.edges, max_hop)
        valid = range(0, max_hop + 1, dilation)
        adjacency = np.zeros((v, v))
        for h in valid:
            adjacency[hop == h] = 1
        norm = _normalize_digraph(adjacency)
        parts = []
        for h in valid:
            a_root = np.zeros((v, v))
            a_close = np.zeros((v, v))
            a_far = np.zeros((v, v))
            for i in range(v):
                for j in range(v):
                    if hop[j, i] != h:
                        continue
                    if hop[j, self.center] == hop[i, self.center]:
                        a_root[j, i] = norm[j, i]
                    elif hop[j, self.center] > hop[i, self.center]:
                        a_close[j, i] = norm[j, i]
                    else:
                        a_far[j, i] = norm[j, i]
            if h == 0:
                parts.append(a_root)
            else:
                parts.append(a_root + a_close)
                parts.append(a_far)
        return np.stack(parts).astype(np.float32)

    def check_array(self, x: np.ndarray, where: str | None = None, joint_axis: int = -1) -> None:
        """Raise :class:`SsalInputError` if ``x`` does not have this layout's joint count."""
        if x.shape[joint_axis] != self.num_joints:
            raise SsalInputError(
                where,
                f"expected {self.num_joints} joints for layout {self.name}, "
                f"got {x.shape[joint_axis]} (array shape {tuple(x.shape)})",
            )


def hop_distance(num_nodes: int, edges: Sequence[tuple[int, int]], max_hop: int = 1) -> np.ndarray:
    """Shortest-path hop count between joints; ``inf`` beyond ``max_hop``."""
    a = np.zeros((num_nodes, num_nodes))
    for i, j in edges:
        a[i, j] = a[j, i] = 1
    hop = np.full((num_nodes, num_nodes), np.inf)
    reach = [np.linalg.matrix_power(a + np.eye(num_nodes), d) for d in range(max_hop + 1)]
    for d in range(max_hop, -1, -1):
        hop[reach[d] > 0] = d
    return hop


def _normalize_digraph(a: np.ndarray) -> np.ndarray:
    deg = a.sum(0)
    inv = np.zeros_like(deg)
    inv[deg > 0] = 1.0 / deg[deg > 0]
    return a @ np.diag(inv)


# --------------------------------------------------------------------------------------
# Built-in layouts
# --------------------------------------------------------------------------------------

EGAIT16 = SkeletonLayout(
    name="egait16",
    joints=(
        "root", "spine", "neck", "head",
        "left_shoulder", "left_elbow", "left_hand",
        "right_shoulder", "right_elbow", "right_hand",
        "left_hip", "left_knee", "left_foot",
        "right_hip", "right_knee", "right_foot",
    ),
    edges=(
        (0, 1), (0, 10), (0, 13), (1, 2), (2, 3), (2, 4), (2, 7), (4, 5), (5, 6),
        (7, 8), (8, 9), (10, 11), (11, 12), (13, 14), (14, 15),
    ),
    center=0,
    mirror_pairs=((4, 7), (5, 8), (6, 9), (10, 13), (11, 14), (12, 15)),
    parts={
        "trunk": (0, 1, 2, 3),
        "left_arm": (4, 5, 6),
        "right_arm": (7, 8, 9),
        "left_leg": (10, 11, 12),
        "right_leg": (13, 14, 15),
    },
    # SSA jitter moves the arm joints; the trunk above the hips is optional (setting in augment).
    upper_body=(4, 5, 6, 7, 8, 9),
)
"""E-Gait / STEP 16-joint layout (SPEC section 1)."""

H36M17 = SkeletonLayout(
    name="h36m17",
    joints=(
        "pelvis", "right_hip", "right_knee", "right_ankle",
        "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head",
        "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
    ),
    edges=(
        (0, 1), (1, 2), (2, 3), (0, 4), (4, 5), (5, 6), (0, 7), (7, 8), (8, 9), (9, 10),
        (8, 11), (11, 12), (12, 13), (8, 14), (14, 15), (15, 16),
    ),
    center=0,
    mirror_pairs=((4, 1), (5, 2), (6, 3), (11, 14), (12, 15), (13, 16)),
    parts={
        "trunk": (0, 7, 8, 9, 10),
        "left_arm": (11, 12, 13),
        "right_arm": (14, 15, 16),
        "left_leg": (4, 5, 6),
        "right_leg": (1, 2, 3),
    },
    upper_body=(11, 12, 13, 14, 15, 16),
)
"""Human3.6M 17-joint layout, as output by VideoPose3D / MotionBERT ``(T, 17, 3)``."""

LAYOUTS: dict[str, SkeletonLayout] = {EGAIT16.name: EGAIT16, H36M17.name: H36M17}

#: For each E-Gait-16 joint, source joint names that may stand for it, best first. Names are
#: compared after :func:`normalize_joint_name`. Covers Human3.6M-17 and CMU-style BVH skeletons.
EGAIT16_ALIASES: dict[str, tuple[str, ...]] = {
    "root": ("root", "pelvis", "hips", "hip", "mhip"),
    "spine": ("spine", "spine1", "chest", "spine2", "lowerback"),
    "neck": ("neck", "thorax", "neck1", "upperchest", "spine3"),
    "head": ("head", "headtop", "headend", "neck1", "necknose"),
    # BVH rigs (CMU, Mixamo) call the clavicle "LeftShoulder" and the shoulder joint "LeftArm".
    "left_shoulder": ("leftarm", "leftupperarm", "leftshoulder", "lshoulder", "lshldr"),
    "left_elbow": ("leftelbow", "leftforearm", "lelbow", "leftlowerarm", "lforearm"),
    "left_hand": ("lefthand", "leftwrist", "lwrist", "lhand"),
    "right_shoulder": ("rightarm", "rightupperarm", "rightshoulder", "rshoulder", "rshldr"),
    "right_elbow": ("rightelbow", "rightforearm", "relbow", "rightlowerarm", "rforearm"),
    "right_hand": ("righthand", "rightwrist", "rwrist", "rhand"),
    "left_hip": ("lefthip", "leftupleg", "lhip", "leftupperleg", "lthigh"),
    "left_knee": ("leftknee", "leftleg", "lknee", "leftlowerleg", "lshin"),
    "left_foot": ("leftfoot", "leftankle", "lankle", "lfoot"),
    "right_hip": ("righthip", "rightupleg", "rhip", "rightupperleg", "rthigh"),
    "right_knee": ("rightknee", "rightleg", "rknee", "rightlowerleg", "rshin"),
    "right_foot": ("rightfoot", "rightankle", "rankle", "rfoot"),
}


def normalize_joint_name(name: str) -> str:
    """Lower-case a joint name and drop separators and rig prefixes (``mixamorig:``)."""
    name = name.split(":")[-1].lower()
    return "".join(ch for ch in name if ch.isalnum())


def resolve_joint_mapping(
    source_joints: Sequence[str],
    target: SkeletonLayout = EGAIT16,
    aliases: Mapping[str, Sequence[str]] | None = None,
    where: str | None = None,
    *,
    parents: Sequence[int] | None = None,
    joint_map: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Index into ``source_joints`` for each joint of ``target``, matched by name.

    For E-Gait-16 without an explicit alias table the joints are placed by the rules of
    :mod:`ssal.jointmatch` (any common rig: side markers, part synonyms, clavicles and end
    sites told apart; ``parents`` settles the rest), falling back to the alias table
    :data:`EGAIT16_ALIASES`. ``joint_map`` (target joint -> source joint name, the
    ``--joint-map`` file) overrides any joint it names. For other targets the alias table
    (default: the target's own names) lists candidate names, best first.

    Raises:
        SsalInputError: a target joint has no match among ``source_joints`` (the message names
            the joints not placed and the names seen) or a joint-map name the rig lacks.
    """
    from .jointmatch import apply_joint_map, match_egait16

    forced = apply_joint_map(source_joints, joint_map, where) if joint_map else {}
    missing: list[str] = []
    if aliases is None and target.name == EGAIT16.name:
        placed, missing = match_egait16(source_joints, parents)
        placed.update(forced)
        missing = [j for j in missing if j not in placed]
        if not missing:
            return np.asarray([placed[j] for j in target.joints], dtype=np.int64)
        try:  # the alias table knows a few rigs the rules may not
            return resolve_joint_mapping(source_joints, target, EGAIT16_ALIASES, where, joint_map=joint_map)
        except SsalInputError:
            pass
    else:
        if aliases is None:
            aliases = {j: (j,) for j in target.joints}
        norm: dict[str, int] = {}
        for i, n in enumerate(source_joints):
            norm.setdefault(normalize_joint_name(n), i)
        placed = {}
        for joint in target.joints:
            if joint in forced:
                placed[joint] = forced[joint]
                continue
            candidates = [normalize_joint_name(a) for a in aliases.get(joint, (joint,))]
            hit = next((norm[c] for c in candidates if c in norm), None)
            if hit is None:
                missing.append(joint)
            else:
                placed[joint] = hit
        if not missing:
            return np.asarray([placed[j] for j in target.joints], dtype=np.int64)
    shown = [n for n in source_joints if not n.endswith("End")][:60]
    raise SsalInputError(
        where,
        f"cannot map skeleton onto {target.name}: no joint found for {', '.join(missing)} "
        f"(source joints: {', '.join(shown)}); name them in a joint map (--joint-map FILE, "
        f"YAML 'target: source joint')",
    )


def map_to_layout(
    positions: np.ndarray,
    source: SkeletonLayout | Sequence[str],
    target: SkeletonLayout = EGAIT16,
    aliases: Mapping[str, Sequence[str]] | None = None,
    where: str | None = None,
    *,
    parents: Sequence[int] | None = None,
    joint_map: Mapping[str, str] | None = None,
) -> np.ndarray:
    """Map joint positions ``(T, J, 3)`` of another skeleton onto ``target`` by joint name.

    ``source`` is a layout or a list of joint names. Human3.6M-17 maps onto E-Gait-16 with
    pelvis->root, spine->spine, thorax->neck, head->head, shoulders/elbows/wrists->arm joints
    and hips/knees/ankles->leg joints (the nose joint is dropped).
    """
    if isinstance(source, SkeletonLayout):
        if source.name == target.name:
            return positions
        names = list(source.joints)
        if source.name == H36M17.name and target.name == EGAIT16.name:
            idx = np.asarray(H36M17_TO_EGAIT16, dtype=np.int64)
            return positions[:, idx]
    else:
        names = list(source)
    if positions.ndim != 3 or positions.shape[1] != len(names) or positions.shape[2] != 3:
        raise SsalInputError(
            where, f"expected positions of shape (T, {len(names)}, 3), got {tuple(positions.shape)}"
        )
    idx = resolve_joint_mapping(names, target, aliases, where, parents=parents, joint_map=joint_map)
    return positions[:, idx]


#: H36M17 index for each E-Gait-16 joint.
H36M17_TO_EGAIT16 = (0, 7, 8, 10, 11, 12, 13, 14, 15, 16, 4, 5, 6, 1, 2, 3)


def get_layout(name_or_layout: str | SkeletonLayout) -> SkeletonLayout:
    """A built-in layout by name (``egait16``, ``h36m17``), or the layout itself."""
    if isinstance(name_or_layout, SkeletonLayout):
        return name_or_layout
    try:
        return LAYOUTS[name_or_layout]
    except KeyError:
        raise SsalInputError(
            None, f"unknown skeleton layout {name_or_layout!r}; built in: {', '.join(LAYOUTS)}"
        ) from None


# --------------------------------------------------------------------------------------
# BlazePose-33 (MediaPipe Pose) and its mapping onto E-Gait-16
# --------------------------------------------------------------------------------------

BLAZEPOSE33 = SkeletonLayout(
    name="blazepose33",
    joints=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer",
        "right_eye_inner", "right_eye", "right_eye_outer",
        "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_pinky", "right_pinky",
        "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee",
        "left_ankle", "right_ankle", "left_heel", "right_heel",
        "left_foot_index", "right_foot_index",
    ),
    edges=(
        # face (MediaPipe's POSE_CONNECTIONS) ...
        (0, 1), (1, 2), (2, 3), (3, 7), (0, 4), (4, 5), (5, 6), (6, 8), (9, 10),
        # ... joined to the body by nose-shoulder and nose-mouth bones (ours, so the graph is connected)
        (0, 11), (0, 12), (0, 9), (0, 10),
        # arms and hands
        (11, 12), (11, 13), (13, 15), (15, 17), (15, 19), (15, 21), (17, 19),
        (12, 14), (14, 16), (16, 18), (16, 20), (16, 22), (18, 20),
        # trunk and legs
        (11, 23), (12, 24), (23, 24), (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),
        (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
    ),
    # BlazePose has no hip-centre landmark (its world origin is the hip midpoint); the left hip
    # stands in as the graph centre.
    center=23,
    mirror_pairs=(
        (1, 4), (2, 5), (3, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16), (17, 18), (19, 20),
        (21, 22), (23, 24), (25, 26), (27, 28), (29, 30), (31, 32),
    ),
    parts={
        "trunk": (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10),
        "left_arm": (11, 13, 15, 17, 19, 21),
        "right_arm": (12, 14, 16, 18, 20, 22),
        "left_leg": (23, 25, 27, 29, 31),
        "right_leg": (24, 26, 28, 30, 32),
    },
    upper_body=(11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22),
)
"""MediaPipe Pose (BlazePose GHUM 3D) 33-landmark layout, index = MediaPipe's ``PoseLandmark``.

"left" is the *person's* left, as MediaPipe names it. MediaPipe's world landmarks are metres,
origin at the hip midpoint (re-centred every frame), x to the image right, **y down**, z away
from the camera (a right-handed camera frame); :func:`blazepose_to_egait16` maps and turns
them upright. Unlike the other layouts its trunk part holds the face landmarks and its
centre is the left hip (see ``center``); ssal does not train on it, it is the video reader's
source layout.
"""

LAYOUTS[BLAZEPOSE33.name] = BLAZEPOSE33

#: For each E-Gait-16 joint, the BlazePose-33 landmarks averaged to make it (equal weights):
#: root = hip centre, spine = centre of hips and shoulders (E-Gait's spine joint sits at
#: 0.49 of the root-neck segment, measured on the STEP release's features4DCVAEGCN.h5),
#: neck = shoulder centre, head = ear centre, hands = wrists, feet = ankles.
BLAZEPOSE33_TO_EGAIT16: dict[str, tuple[int, ...]] = {
    "root": (23, 24),
    "spine": (11, 12, 23, 24),
    "neck": (11, 12),
    "head": (7, 8),
    "left_shoulder": (11,), "left_elbow": (13,), "left_hand": (15,),
    "right_shoulder": (12,), "right_elbow": (14,), "right_hand": (16,),
    "left_hip": (23,), "left_knee": (25,), "left_foot": (27,),
    "right_hip": (24,), "right_knee": (26,), "right_foot": (28,),
}


def blazepose_mapping_matrix(target: SkeletonLayout = EGAIT16) -> np.ndarray:
    """``(V_target, 33)`` averaging weights with ``target = W @ blazepose`` (rows sum to 1)."""
    if target.name != EGAIT16.name:
        raise SsalInputError(None, f"BlazePose-33 maps onto {EGAIT16.name} only, not {target.name}")
    w = np.zeros((target.num_joints, BLAZEPOSE33.num_joints))
    for joint, sources in BLAZEPOSE33_TO_EGAIT16.items():
        w[target.index(joint), list(sources)] = 1.0 / len(sources)
    return w


@overload
def blazepose_to_egait16(
    landmarks: np.ndarray, visibility: np.ndarray, *, upright: bool = True
) -> tuple[np.ndarray, np.ndarray]: ...


@overload
def blazepose_to_egait16(
    landmarks: np.ndarray, visibility: None = None, *, upright: bool = True
) -> tuple[np.ndarray, None]: ...


def blazepose_to_egait16(
    landmarks: np.ndarray, visibility: np.ndarray | None = None, *, upright: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """Map BlazePose-33 positions ``(..., 33, 3)`` onto E-Gait-16 ``(..., 16, 3)``.

    With ``upright=True`` (for MediaPipe's y-down world landmarks) the result is rotated 180
    degrees about x (``y -> -y``, ``z -> -z``): y points up and, since a rotation is not a
    mirror, the person's left stays their left (it keeps ``left x up = forward``). Pass
    ``upright=False`` for image coordinates. A mapped joint's visibility ``(..., 16)`` is the
    lowest visibility of the landmarks averaged into it.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.shape[-2:] != (BLAZEPOSE33.num_joints, 3):
        raise SsalInputError(None, f"expected BlazePose-33 landmarks (..., 33, 3), got {pts.shape}")
    out = np.einsum("vj,...jc->...vc", blazepose_mapping_matrix(EGAIT16), pts)
    if upright:
        out[..., 1] *= -1.0
        out[..., 2] *= -1.0
    vis = None
    if visibility is not None:
        v = np.asarray(visibility, dtype=np.float64)
        vis = np.stack([v[..., list(BLAZEPOSE33_TO_EGAIT16[j])].min(axis=-1) for j in EGAIT16.joints], axis=-1)
    return out, vis


def check_batch(x, layout: SkeletonLayout | None = None) -> None:
    """Raise :class:`SsalInputError` unless ``x`` is a non-empty floating-point batch
    ``(N, 3, T, V)`` (the one tensor contract of augmentations and encoders; V from ``layout``)."""
    shape = tuple(x.shape)
    if x.ndim != 4 or shape[1] != 3:
        want = f"(N, 3, T, {layout.num_joints})" if layout is not None else "(N, 3, T, V)"
        raise SsalInputError(None, f"a batch must be {want}, got shape {shape}")
    if layout is not None and shape[3] != layout.num_joints:
        raise SsalInputError(None, f"batch has {shape[3]} joints, layout {layout.name} has {layout.num_joints} "
                                   f"(shape {shape})")
    if shape[0] == 0 or shape[2] == 0:
        raise SsalInputError(None, f"a batch must not be empty, got shape {shape}")
    if not x.is_floating_point():
        raise SsalInputError(None, f"a batch must be floating point, got {x.dtype}")
