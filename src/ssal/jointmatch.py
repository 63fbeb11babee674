"""Rule-based matching of any BVH rig's joint names onto E-Gait-16.

An alias table cannot list every rig, so joint names are parsed instead:

1. **Clean**: a namespace (``mixamorig:``, ``Armature|``) and common rig prefixes (``DEF-``,
   ``ORG-``, ``Bip01``, ``CC_Base_``, ``joint_``) are dropped.
2. **Tokenise**: the name is split at separators (``_ . - space``), at camelCase humps and at
   digits: ``LHipJoint`` -> ``L Hip Joint``, ``upper_arm.L`` -> ``upper arm L``,
   ``mixamorig:LeftForeArm`` -> ``Left Fore Arm``, ``spine_02`` -> ``spine 02``.
3. **Side**: a first or last token ``left``/``l`` or ``right``/``r`` (so ``Left``, ``L``,
   ``_L``, ``.L``, ``l_``, ``_l`` and the glued ``lShldr`` / ``lefthand`` forms).
4. **Part**: the remaining letters, joined, are looked up *exactly* in :data:`PART_SYNONYMS`
   (``upperarm``, ``arm``, ``shldr`` are an upper arm; ``forearm``, ``lowerarm``, ``elbow`` a
   forearm; ``thigh``, ``upleg``, ``upperleg`` a thigh; ``shin``, ``calf``, ``lowerleg``,
   ``leg`` a shin; ...). Exact lookup keeps end sites (``LeftHandEnd``), fingers
   (``LeftHandIndex1``), toes and twist bones away from the hand, foot and arm joints.

Ambiguous words are settled by the rest of the rig: a sided ``shoulder`` is the clavicle when
the same side also has an upper-arm joint (CMU's ``LeftShoulder`` + ``LeftArm``, Rigify's
``shoulder.L`` + ``upper_arm.L``, Bandai-Namco's ``Shoulder_L`` + ``UpperArm_L``) and the
shoulder joint otherwise (``left_shoulder``); a sided ``hip`` is the hip joint unless the side
has a thigh (CMU's ``LHipJoint`` sits on the pelvis, ``LeftUpLeg`` is the hip). The centre is
an unsided ``hips``/``pelvis``/``hip`` before ``root`` (Bandai-Namco's and Unreal's ``root``
lies on the floor), else the lowest common ancestor of the two thighs. The E-Gait ``spine``
is the middle one of the spine joints between the centre and the neck (``spine``, ``chest``,
``lowerback``, ``spine_01``...). Where a rig names no neck or head (Rigify's
``spine.004``-``spine.006``) and the hierarchy is known, the neck is the joint where the arms
branch off and the head the last joint of the trunk chain above it.

A rig outside these rules is mapped by hand with a joint map (``--joint-map FILE``, YAML
``target joint: source joint name``); the error of a failed match names the joints it could
not place and the names it saw.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import SsalInputError, display_path

#: Part of each normalised joint word (letters only, lower case). ``shoulder`` and a sided
#: ``hip`` are ambiguous and resolved per rig (module docstring).
PART_SYNONYMS: dict[str, str] = {
    # trunk (unsided)
    "hips": "center", "pelvis": "center", "hip": "hip", "mhip": "center", "hipcenter": "center",
    "root": "root",
    "spine": "spine", "chest": "spine", "upperchest": "spine", "lowerback": "spine", "torso": "spine",
    "abdomen": "spine", "abdomenlower": "spine", "abdomenupper": "spine", "chestlower": "spine",
    "chestupper": "spine", "waist": "spine", "back": "spine", "upperback": "spine", "spineupper": "spine",
    "spinelower": "spine", "spinemid": "spine", "midspine": "spine",
    "neck": "neck", "neckbase": "neck", "thorax": "thorax", "neckupper": "neckupper",
    "head": "head", "headtop": "headtop", "headend": "headtop", "headtopend": "headtop",
    # arms
    "clavicle": "clavicle", "collar": "clavicle", "collarbone": "clavicle", "shoulder": "shoulder",
    "upperarm": "upper_arm", "uparm": "upper_arm", "arm": "upper_arm", "shldr": "upper_arm",
    "humerus": "upper_arm", "shoulderjoint": "upper_arm",
    "forearm": "forearm", "lowerarm": "forearm", "loarm": "forearm", "elbow": "forearm",
    "hand": "hand", "wrist": "hand",
    # legs
    "thigh": "thigh", "upleg": "thigh", "upperleg": "thigh", "femur": "thigh", "hipjoint": "hip",
    "shin": "shin", "calf": "shin", "lowerleg": "shin", "loleg": "shin", "knee": "shin", "leg": "leg",
    "tibia": "shin",
    "foot": "foot", "ankle": "foot",
}

#: Words dropped from a name before the lookup (``LHipJoint`` is a ``hip``).
FILLER_WORDS = frozenset({"joint", "jnt", "bone", "bn", "def", "org", "mch", "jt"})

_PREFIX = re.compile(r"^(?:def|org|mch|cc_base|bip0*\d*|joint|jnt|b)[-_ .]+", re.IGNORECASE)
_TOKENS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right", "lft": "left", "rgt": "right"}

#: E-Gait-16 limb joints: (target suffix, parts in order of preference).
_LIMB_TARGETS = (
    ("shoulder", ("upper_arm", "shoulder")),
    ("elbow", ("forearm",)),
    ("hand", ("hand",)),
    ("hip", ("thigh", "hip")),
    ("knee", ("shin", "leg")),
    ("foot", ("foot",)),
)


@dataclass(frozen=True)
class JointWord:
    """A joint name parsed by :func:`parse_joint_name`."""

    name: str
    side: str | None  # "left", "right" or None
    word: str  # the letters left after the side marker, lower case
    part: str | None  # a value of PART_SYNONYMS, or None (fingers, toes, end sites, ...)
    number: int | None  # trailing number (spine_02 -> 2)


def _tokens(name: str) -> list[str]:
    base = re.split(r"[:|]", name)[-1]
    base = _PREFIX.sub("", base)
    out: list[str] = []
    for chunk in re.split(r"[^A-Za-z0-9]+", base):
        out.extend(_TOKENS.findall(chunk))
    return out


def parse_joint_name(name: str) -> JointWord:
    """Side, part word and number of one joint name (see the module docstring)."""
    tokens = _tokens(name)
    number = next((int(t) for t in reversed(tokens) if t.isdigit()), None)
    words = [t.lower() for t in tokens if not t.isdigit()]
    side = None
    if len(words) > 1 and words[0] in _SIDES:
        side = _SIDES[words.pop(0)]
    elif len(words) > 1 and words[-1] in _SIDES:
        side = _SIDES[words.pop()]
    words = [w for w in words if w not in FILLER_WORDS] or words
    word = "".join(words)
    if side is None:
        # glued forms: "leftarm", "rightupleg", "lshldr", "rthigh", "lhand"
        for prefix, s in (("left", "left"), ("right", "right"), ("l", "left"), ("r", "right")):
            rest = word[len(prefix):]
            if word.startswith(prefix) and rest in PART_SYNONYMS and PART_SYNONYMS[rest] not in (
                    "center", "root", "spine", "neck", "head", "headtop", "thorax", "neckupper"):
                side, word = s, rest
                break
    part = PART_SYNONYMS.get(word)
    if side is not None and part in ("center", "root", "spine", "neck", "head", "headtop", "thorax"):
        part = None  # a sided trunk word (a "left neck" helper bone) is no trunk joint
    if side is None and part in ("clavicle", "shoulder", "upper_arm", "forearm", "hand", "thigh", "shin",
                                 "leg", "foot"):
        part = None  # a limb joint without a side cannot be placed
    if side is None and part == "hip":
        part = "center"  # an unsided "hip" is the pelvis (Poser/DAZ rigs)
    return JointWord(name, side, word, part, number)


def _ancestors(j: int, parents: Sequence[int]) -> list[int]:
    out = []
    while j >= 0:
        out.append(j)
        j = int(parents[j])
    return out


def _lca(a: int, b: int, parents: Sequence[int]) -> int | None:
    up = set(_ancestors(a, parents))
    return next((j for j in _ancestors(b, parents) if j in up), None)


def match_egait16(
    names: Sequence[str], parents: Sequence[int] | None = None
) -> tuple[dict[str, int], list[str]]:
    """Place E-Gait-16 joints on a rig by the rules of this module.

    Args:
        names: the rig's joint names (end sites included or not).
        parents: parent index per joint (-1 for the root), when the hierarchy is known; it
            settles ties (a candidate below the joint placed before it wins) and lets rigs
            without a centre, neck or head name be placed.

    Returns:
        ``(placed, missing)``: E-Gait joint name -> index into ``names``, and the E-Gait
        joints that could not be placed.
    """
    words = [parse_joint_name(n) for n in names]
    placed: dict[str, int] = {}

    def below(j: int, anchor: int | None) -> bool:
        return parents is None or anchor is None or anchor in _ancestors(j, parents)

    def pick(cands: list[int], anchor: int | None = None) -> int | None:
        if not cands:
            return None
        under = [j for j in cands if below(j, anchor)]
        return (under or cands)[0]

    # limbs first: the centre may be derived from the thighs
    for side in ("left", "right"):
        anchor: int | None = None
        for suffix, parts in _LIMB_TARGETS:
            if suffix == "hip":
                anchor = None
            cands: list[int] = []
            for part in parts:
                cands = [j for j, w in enumerate(words) if w.side == side and w.part == part]
                if cands:
                    break
            hit = pick(cands, anchor)
            if hit is not None:
                placed[f"{side}_{suffix}"] = hit
                anchor = hit

    def unsided(*parts: str) -> list[int]:
        for part in parts:
            cands = [j for j, w in enumerate(words) if w.side is None and w.part == part]
            if cands:
                return cands
        return []

    root_cands = unsided("center", "root")
    root: int | None = root_cands[0] if root_cands else None
    if parents is not None and "left_hip" in placed and "right_hip" in placed:
        # the centre lies above both legs; of the named candidates the deepest wins (a
        # "Hips" below a floor "root"), else the lowest common ancestor of the two thighs
        common = set(_ancestors(placed["left_hip"], parents)) & set(_ancestors(placed["right_hip"], parents))
        named = [j for j in root_cands if j in common]
        if named:
            root = max(named, key=lambda j: len(_ancestors(j, parents)))
        elif root is None:
            root = _lca(placed["left_hip"], placed["right_hip"], parents)
    if root is not None:
        placed["root"] = root

    neck = pick(unsided("neck", "thorax"), root)
    if neck is None and parents is not None and "left_shoulder" in placed and "right_shoulder" in placed:
        branch = _lca(placed["left_shoulder"], placed["right_shoulder"], parents)
        if branch is not None and branch != root:
            neck = branch
    if neck is not None:
        placed["neck"] = neck
    head = pick(unsided("head", "headtop"), neck)
    if head is None and parents is not None and neck is not None:
        # the last trunk-like joint of the chain above the neck (Rigify's spine.004-.006)
        j, chain = neck, []
        while True:
            kids = [k for k in range(len(names)) if int(parents[k]) == j and words[k].side is None
                    and words[k].part in ("spine", "neck", "neckupper", "head", "headtop")]
            if not kids:
                break
            j = kids[0]
            chain.append(j)
        if chain:
            head = chain[-1]
    if head is not None:
        placed["head"] = head

    taken = {placed.get("root"), placed.get("neck"), placed.get("head")}
    spine = [j for j, w in enumerate(words) if w.side is None and w.part == "spine" and j not in taken]
    if parents is not None and root is not None and neck is not None:
        chain = _ancestors(neck, parents)
        if root in chain:
            between = chain[1:chain.index(root)][::-1]  # root-side first
            named = [j for j in spine if j in between]
            spine = named or ([between[(len(between) - 1) // 2]] if between else spine)
    if spine:
        placed["spine"] = spine[(len(spine) - 1) // 2]

    order = ("root", "spine", "neck", "head", "left_shoulder", "left_elbow", "left_hand", "right_shoulder",
             "right_elbow", "right_hand", "left_hip", "left_knee", "left_foot", "right_hip", "right_knee",
             "right_foot")
    missing = [t for t in order if t not in placed]
    return {t: placed[t] for t in order if t in placed}, missing


def load_joint_map(path: str | os.PathLike[str], targets: Sequence[str]) -> dict[str, str]:
    """Read a joint map: YAML (or JSON) ``target joint: source joint name``, by the budgeted
    YAML reader (:mod:`ssal.config.yaml_safe`: size checked before reading, aliases, depth).

    Raises:
        SsalInputError: naming the map: missing, oversized or unreadable file, a document past a
            budget, not a mapping, unknown target joints, non-string source names.
    """
    from .config import yaml_safe

    p = Path(path)
    where = display_path(p)
    if not p.is_file():
        raise SsalInputError(where, "joint map file not found")
    doc = yaml_safe.load_file(p, where, what="joint map", invalid="cannot read joint map")
    if not isinstance(doc, dict) or not doc:
        raise SsalInputError(where, "a joint map must be a YAML mapping 'target joint: source joint name'")
    unknown = [str(k) for k in doc if str(k) not in targets]
    if unknown:
        raise SsalInputError(where, f"unknown target joint(s) {', '.join(unknown)}; targets: {', '.join(targets)}")
    bad = [str(k) for k, v in doc.items() if not isinstance(v, str) or not v]
    if bad:
        raise SsalInputError(where, f"source joint of {', '.join(bad)} must be a joint name")
    return {str(k): str(v) for k, v in doc.items()}


def apply_joint_map(
    names: Sequence[str], joint_map: Mapping[str, str], where: str | None = None
) -> dict[str, int]:
    """Indices of a joint map's source names in ``names`` (exact, else case-insensitive).

    Raises:
        SsalInputError: a source name the rig does not have.
    """
    exact = {n: i for i, n in reversed(list(enumerate(names)))}
    lower = {n.lower(): i for i, n in reversed(list(enumerate(names)))}
    out: dict[str, int] = {}
    for target, source in joint_map.items():
        hit = exact.get(source, lower.get(source.lower()))
        if hit is None:
            raise SsalInputError(
                where, f"joint map: {target} -> {source!r}, but the file has no joint {source!r} "
                       f"(joints: {', '.join(names[:60])})")
        out[target] = hit
    return out


__all__ = ["PART_SYNONYMS", "JointWord", "parse_joint_name", "match_egait16", "load_joint_map", "apply_joint_map"]
