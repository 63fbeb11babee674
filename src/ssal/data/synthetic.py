"""The built-in synthetic emotional-gait corpus (``--data builtin``).

A procedural walker on the E-Gait-16 skeleton (:data:`ssal.skeleton.EGAIT16`; y up, metres,
30 fps). Every sequence is produced by a small forward-kinematics model whose joint angles are
periodic functions of the gait phase; the parameters of that model (cadence, stride length,
arm swing, elbow flexion, trunk and head pitch, bounce, jerkiness, ...) are drawn per subject
and per trial and shifted by the published kinematic cues of emotional gait:

* Roether, Omlor, Christensen & Giese (2009), *Critical features for the perception of
  emotion from gait*, J. Vision 9(6):15 -- sad: slow, reduced limb flexion, head inclined;
  angry: fast, heavy, increased elbow flexion; happy: fast, increased arm swing, upright.
* Karg, Kühnlenz & Buss (2010), *Recognition of affect based on gait patterns*, IEEE SMC-B
  40(4) -- velocity, stride length, cadence and head/trunk inclination separate the emotions.
* Montepare, Goldstein & Clausen (1987), *The identification of emotions from gait
  information*, J. Nonverbal Behav. 11(1) -- sad: less arm swing; angry: heavy-footed, long
  strides; happy: bouncy.

The emotion effect of a trial is ``intensity * (global cue + subject's own cue deviation)``
with a per-trial intensity and a per-subject expressiveness, so emotions overlap the way real
walkers' do (see ``docs/synthetic.md`` for the model and its calibration).

Everything is vectorised over the N sequences (numpy, one ``(N, T_max)`` time grid); the only
per-sequence step cuts the grid to each sequence's own length. Output is deterministic for a
given ``seed`` (one :class:`numpy.random.Generator`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..skeleton import EGAIT16, SkeletonLayout
from .dataset import EGAIT_EMOTIONS, GaitDataset
from .preprocess import PreprocessConfig, sequences_to_dataset

#: Version of the generator; stored in ``meta`` and bumped whenever the output changes.
GENERATOR_VERSION = 1

# --------------------------------------------------------------------------------------
# Gait style parameters and the emotion cues
# --------------------------------------------------------------------------------------

#: Style parameters: name -> (neutral mean, between-subject sd, within-subject (trial) sd).
STYLE_PARAMS: dict[str, tuple[float, float, float]] = {
    "cadence": (108.0, 7.0, 3.0),        # steps per minute
    "stride": (1.50, 0.10, 0.04),        # stride length / leg length
    "arm_swing": (18.0, 6.0, 2.5),       # shoulder flexion amplitude, degrees
    "elbow": (18.0, 7.0, 3.0),           # mean elbow flexion, degrees
    "arm_abduction": (8.0, 3.0, 1.0),    # arms away from the body, degrees
    "trunk_pitch": (4.0, 3.0, 1.0),      # forward trunk inclination, degrees
    "head_pitch": (4.0, 5.0, 2.0),       # head inclination (down) relative to the trunk, degrees
    "bounce": (0.010, 0.004, 0.002),     # extra vertical pelvis oscillation, metres
    "jerk": (0.0, 0.3, 0.1),             # sharpness of the periodic waveforms (0 = sinusoid)
    "knee_swing": (58.0, 5.0, 2.0),      # peak knee flexion in swing, degrees
    "hunch": (0.0, 0.012, 0.004),        # shoulders forward and down, metres
    "sway": (0.025, 0.008, 0.003),       # lateral pelvis sway amplitude, metres
    "twist": (5.0, 2.0, 1.0),            # thorax counter-rotation amplitude, degrees
    "pelvis_yaw": (6.0, 2.0, 1.0),       # pelvis rotation amplitude, degrees
}

#: Emotion cues: shift of each style parameter at full intensity (units of STYLE_PARAMS).
EMOTION_CUES: dict[str, dict[str, float]] = {
    "happy": {
        "cadence": 12.0, "stride": 0.12, "arm_swing": 12.0, "elbow": 6.0, "arm_abduction": 2.0,
        "trunk_pitch": -3.0, "head_pitch": -8.0, "bounce": 0.014, "jerk": 0.4, "knee_swing": 4.0,
        "hunch": -0.005, "twist": 3.0, "pelvis_yaw": 2.0,
    },
    "angry": {
        "cadence": 8.0, "stride": 0.22, "arm_swing": 10.0, "elbow": 28.0, "arm_abduction": 6.0,
        "trunk_pitch": 6.0, "head_pitch": 2.0, "bounce": 0.004, "jerk": 1.5, "knee_swing": 6.0,
        "hunch": 0.010, "twist": 4.0, "pelvis_yaw": 3.0,
    },
    "sad": {
        "cadence": -16.0, "stride": -0.30, "arm_swing": -10.0, "elbow": -8.0, "arm_abduction": -2.0,
        "trunk_pitch": 10.0, "head_pitch": 18.0, "bounce": -0.007, "jerk": -0.2, "knee_swing": -10.0,
        "hunch": 0.030, "twist": -2.0, "pelvis_yaw": -2.0,
    },
    "neutral": {},
}


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the generator (recorded in ``meta["synthetic"]``).

    Attributes:
        seqs_per_subject: mean number of sequences per simulated subject.
        min_frames, max_frames: sequence length range (inclusive) at ``fps``.
        fps: frame rate.
        intensity: (low, high) of the uniform per-trial emotion intensity.
        expressiveness_sd: log-normal sd of the per-subject expressiveness multiplier.
        cue_sd: sd of a subject's own deviation from each global cue, as a fraction of it.
        noise: (low, high) of the per-sequence sensor noise sd, metres.
        dropout_prob: probability that a sequence has a tracking dropout.
        dropout_frames: (low, high) frames a dropped joint stays frozen.
        turn_sd: sd of the constant turning rate, rad/s.
    """

    seqs_per_subject: int = 20
    min_frames: int = 40
    max_frames: int = 75
    fps: float = 30.0
    intensity: tuple[float, float] = (0.15, 1.1)
    expressiveness_sd: float = 0.35
    cue_sd: float = 0.5
    noise: tuple[float, float] = (0.003, 0.012)
    dropout_prob: float = 0.25
    dropout_frames: tuple[int, int] = (3, 10)
    turn_sd: float = 0.08

    def __post_init__(self) -> None:
        if not 1 <= self.min_frames <= self.max_frames:
            raise ValueError("need 1 <= min_frames <= max_frames")
        if self.seqs_per_subject < 1:
            raise ValueError("seqs_per_subject must be >= 1")


# --------------------------------------------------------------------------------------
# Sampling of the per-sequence parameters
# --------------------------------------------------------------------------------------


def _sample_subjects(rng: np.random.Generator, n_subjects: int, cfg: SyntheticConfig) -> dict[str, np.ndarray]:
    """Anthropometry, personal style, asymmetry and own emotion cues of each subject."""
    s: dict[str, np.ndarray] = {}
    s["height"] = np.clip(rng.normal(1.72, 0.09, n_subjects), 1.50, 1.98)
    s["leg_ratio"] = rng.normal(0.490, 0.012, n_subjects)      # hip-to-ankle / height
    s["thigh_share"] = rng.normal(0.50, 0.015, n_subjects)     # thigh / leg
    s["trunk_ratio"] = rng.normal(0.300, 0.010, n_subjects)    # root-to-neck / height
    s["arm_ratio"] = rng.normal(0.330, 0.010, n_subjects)      # shoulder-to-hand / height
    s["shoulder_ratio"] = rng.normal(0.110, 0.006, n_subjects)  # half shoulder width / height
    s["hip_ratio"] = rng.normal(0.055, 0.004, n_subjects)      # half hip width / height
    s["step_width"] = np.clip(rng.normal(0.10, 0.025, n_subjects), 0.03, 0.2)
    for name, (mean, sd_subject, _) in STYLE_PARAMS.items():
        s[name] = mean + sd_subject * rng.standard_normal(n_subjects)
    # Asymmetries: left/right amplitude ratios and a phase lag of the arms.
    s["arm_asym"] = rng.normal(0.0, 0.12, n_subjects)
    s["leg_asym"] = rng.normal(0.0, 0.04, n_subjects)
    s["arm_lag"] = rng.normal(0.15, 0.10, n_subjects)
    s["expressiveness"] = np.exp(cfg.expressiveness_sd * rng.standard_normal(n_subjects))
    # Each subject expresses each emotion in its own way: a deviation from the global cue.
    for emotion, cues in EMOTION_CUES.items():
        for name, delta in cues.items():
            s[f"cue:{emotion}:{name}"] = delta * (1.0 + cfg.cue_sd * rng.standard_normal(n_subjects))
    return s


def _sample_trials(
    rng: np.random.Generator,
    labels: np.ndarray,
    subjects: np.ndarray,
    subj: dict[str, np.ndarray],
    cfg: SyntheticConfig,
) -> dict[str, np.ndarray]:
    """Per-sequence parameters: subject style + intensity * emotion cue + trial noise."""
    n = len(labels)
    intensity = rng.uniform(*cfg.intensity, n) * subj["expressiveness"][subjects]
    p: dict[str, np.ndarray] = {}
    for name, (_, _, sd_trial) in STYLE_PARAMS.items():
        cue = np.zeros(n)
        for k, emotion in enumerate(EGAIT_EMOTIONS):
            key = f"cue:{emotion}:{name}"
            if key in subj:
                sel = labels == k
                cue[sel] = subj[key][subjects[sel]]
        p[name] = subj[name][subjects] + intensity * cue + sd_trial * rng.standard_normal(n)
    for name in ("height", "leg_ratio", "thigh_share", "trunk_ratio", "arm_ratio", "shoulder_ratio",
                 "hip_ratio", "step_width", "arm_asym", "leg_asym", "arm_lag"):
        p[name] = subj[name][subjects]
    p["intensity"] = intensity
    p["phase0"] = rng.uniform(0.0, 2.0 * np.pi, n)
    p["heading"] = rng.uniform(-np.pi, np.pi, n)
    p["turn_rate"] = cfg.turn_sd * rng.standard_normal(n)
    p["cadence_drift"] = rng.normal(0.0, 0.03, n)  # relative change of cadence over 1 s
    p["noise"] = rng.uniform(*cfg.noise, n)
    # Physical limits so no draw breaks the skeleton.
    p["cadence"] = np.clip(p["cadence"], 70.0, 150.0)
    p["stride"] = np.clip(p["stride"], 0.7, 2.2)
    p["arm_swing"] = np.clip(p["arm_swing"], 2.0, 50.0)
    p["elbow"] = np.clip(p["elbow"], 3.0, 95.0)
    p["arm_abduction"] = np.clip(p["arm_abduction"], 2.0, 25.0)
    p["head_pitch"] = np.clip(p["head_pitch"], -25.0, 50.0)
    p["trunk_pitch"] = np.clip(p["trunk_pitch"], -8.0, 30.0)
    p["bounce"] = np.clip(p["bounce"], 0.0, 0.05)
    p["jerk"] = np.clip(p["jerk"], -0.5, 3.0)
    p["knee_swing"] = np.clip(p["knee_swing"], 30.0, 80.0)
    p["sway"] = np.clip(p["sway"], 0.0, 0.06)
    p["twist"] = np.clip(p["twist"], 0.0, 15.0)
    p["pelvis_yaw"] = np.clip(p["pelvis_yaw"], 0.0, 15.0)
    return p


# --------------------------------------------------------------------------------------
# Forward kinematics
# --------------------------------------------------------------------------------------


def _col(a: np.ndarray) -> np.ndarray:
    """A per-sequence ``(N,)`` array as a column ``(N, 1)`` that broadcasts over time."""
    return np.asarray(a)[:, None]


def _osc(phase: np.ndarray, sharpness: np.ndarray) -> np.ndarray:
    """A periodic wave in [-1, 1] of ``phase (N, T)``: nearly ``sin`` for small
    ``sharpness (N,)``, squarer (abrupter) as it grows (``tanh(k sin) / tanh(k)``, ``k = e^s``)."""
    k = _col(np.exp(sharpness))
    return np.tanh(k * np.sin(phase)) / np.tanh(k)


def _walk_local(p: dict[str, np.ndarray], t: np.ndarray, layout: SkeletonLayout) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions in the walker's own frame, and the forward progress per frame.

    Frame: x to the walker's left, y up, z forward; origin on the ground below the pelvis at
    zero lateral sway. Returns ``pos (N, T, V, 3)`` and ``dz (N, T)`` (forward displacement of
    the pelvis between consecutive frames, from the planted stance foot).
    """
    n, n_t = t.shape
    rad = np.deg2rad
    j = layout.index

    height = p["height"]
    leg = p["leg_ratio"] * height
    thigh = _col(p["thigh_share"] * leg)
    shin = _col((1.0 - p["thigh_share"]) * leg)
    ankle_h = _col(0.039 * height)
    trunk = p["trunk_ratio"] * height
    spine_len, neck_len = _col(0.4 * trunk), _col(0.6 * trunk)
    head_len = _col(0.10 * height)
    arm = p["arm_ratio"] * height
    upper_arm, forearm = _col(0.56 * arm), _col(0.44 * arm)
    half_sh, half_hip = _col(p["shoulder_ratio"] * height), _col(p["hip_ratio"] * height)

    # Gait phase: stride frequency = cadence / 120 strides per second, with a slow drift.
    freq = _col(p["cadence"] / 120.0) * (1.0 + _col(p["cadence_drift"]) * t)
    phase = _col(p["phase0"]) + 2.0 * np.pi * freq * t
    sharp = p["jerk"]

    # Hip flexion amplitude from the stride length: stride ~ 4 * leg * sin(amplitude).
    hip_amp = np.arcsin(np.clip(p["stride"] / 4.0, 0.05, 0.9))
    sides = {"left": (1.0, 0.0), "right": (-1.0, np.pi)}
    legs: dict[str, dict[str, np.ndarray]] = {}
    for side, (sgn, offset) in sides.items():
        ph = phase + offset
        amp = _col(hip_amp * (1.0 + sgn * p["leg_asym"]))
        hip_flex = rad(5.0) + amp * _osc(ph, 0.5 * sharp)
        knee = (
            rad(3.0)
            + _col(rad(p["knee_swing"])) * np.maximum(np.cos(ph + 0.15), 0.0) ** 1.5
            + rad(12.0) * np.maximum(np.cos(ph - 2.3), 0.0) ** 2
        )
        # The shank never swings up past 70 degrees behind the vertical.
        knee = np.minimum(knee, hip_flex + rad(70.0))
        shank = hip_flex - knee
        knee_rel_y = -thigh * np.cos(hip_flex)
        knee_rel_z = thigh * np.sin(hip_flex)
        foot_rel_y = knee_rel_y - shin * np.cos(shank)
        foot_rel_z = knee_rel_z + shin * np.sin(shank)
        legs[side] = {
            "phase": ph, "knee_y": knee_rel_y, "knee_z": knee_rel_z, "foot_y": foot_rel_y, "foot_z": foot_rel_z,
        }

    # Pelvis height: the lower foot stands on the ground (ankle at ankle height), plus bounce.
    low_left = legs["left"]["foot_y"] <= legs["right"]["foot_y"]
    stance_y = np.where(low_left, legs["left"]["foot_y"], legs["right"]["foot_y"])
    pelvis_y = ankle_h - stance_y + _col(p["bounce"]) * np.cos(2.0 * phase)
    # Forward progress: the stance foot stays planted, so the pelvis moves by minus its motion.
    # dz[t] = z(t-1) - z(t) of the foot that is the stance foot at frame t.
    stance_z = np.where(low_left, legs["left"]["foot_z"], legs["right"]["foot_z"])
    stance_z_before = np.where(low_left[:, 1:], legs["left"]["foot_z"][:, :-1], legs["right"]["foot_z"][:, :-1])
    dz = np.zeros((n, n_t))
    dz[:, 1:] = np.maximum(stance_z_before - stance_z[:, 1:], 0.0)
    # Lateral sway of the pelvis towards the stance leg (left stance around phase = pi).
    sway = -_col(p["sway"]) * np.cos(phase)
    pelvis_yaw = _col(rad(p["pelvis_yaw"])) * _osc(phase, sharp)

    pos = np.zeros((n, n_t, layout.num_joints, 3))
    pos[:, :, j("root")] = np.stack([sway, pelvis_y, np.zeros_like(sway)], axis=-1)
    for side, (sgn, _) in sides.items():
        lg = legs[side]
        hip_x = sway + sgn * half_hip * np.cos(pelvis_yaw)
        hip_z = sgn * half_hip * np.sin(pelvis_yaw)
        foot_x = sgn * _col(0.5 * p["step_width"]) * np.ones_like(sway)
        pos[:, :, j(f"{side}_hip")] = np.stack([hip_x, pelvis_y, hip_z], axis=-1)
        pos[:, :, j(f"{side}_knee")] = np.stack(
            [0.5 * (hip_x + foot_x) + sgn * 0.01, pelvis_y + lg["knee_y"], hip_z + lg["knee_z"]], axis=-1
        )
        pos[:, :, j(f"{side}_foot")] = np.stack([foot_x, pelvis_y + lg["foot_y"], hip_z + lg["foot_z"]], axis=-1)

    # Trunk: forward pitch (with a small oscillation at twice the stride frequency) and roll.
    pitch = _col(rad(p["trunk_pitch"])) + rad(1.5) * np.cos(2.0 * phase + 0.4)
    roll = 0.6 * sway / _col(trunk)
    spine = pos[:, :, j("root")] + _tilted(spine_len, pitch, roll)
    neck = spine + _tilted(neck_len, pitch, 1.3 * roll)
    head_pitch = pitch + _col(rad(p["head_pitch"])) + rad(1.0) * np.cos(2.0 * phase + 1.0)
    head = neck + _tilted(head_len, head_pitch, roll)
    pos[:, :, j("spine")], pos[:, :, j("neck")], pos[:, :, j("head")] = spine, neck, head

    # Shoulders: thorax counter-rotation, hunch (forward and down).
    twist = -_col(rad(p["twist"])) * _osc(phase, sharp)
    hunch = _col(p["hunch"])
    for side, (sgn, offset) in sides.items():
        drop = np.broadcast_to(-0.02 * _col(height) - 0.5 * hunch, twist.shape)
        # Offset (sgn * half width, drop, hunch) from the neck, turned by the twist about y.
        off_x, off_z = sgn * half_sh, hunch
        sh = neck + np.stack(
            [off_x * np.cos(twist) - off_z * np.sin(twist), drop, off_x * np.sin(twist) + off_z * np.cos(twist)],
            axis=-1,
        )
        # Arm swing opposite to the same-side leg, with a lag, and asymmetric amplitude.
        ph = phase + offset + _col(p["arm_lag"])
        swing_amp = _col(rad(p["arm_swing"]) * (1.0 + sgn * p["arm_asym"]))
        wave = _osc(ph, sharp)
        flex = rad(-3.0) - swing_amp * wave
        elbow = _col(rad(p["elbow"])) + 0.5 * swing_amp * np.maximum(-wave, 0.0)
        abd = _col(rad(p["arm_abduction"]))
        elbow_pos = sh + upper_arm[..., None] * _arm_dir(flex, abd, sgn)
        hand_pos = elbow_pos + forearm[..., None] * _arm_dir(flex + elbow, 0.5 * abd, sgn)
        pos[:, :, j(f"{side}_shoulder")] = sh
        pos[:, :, j(f"{side}_elbow")] = elbow_pos
        pos[:, :, j(f"{side}_hand")] = hand_pos
    return pos, dz


def _tilted(length: np.ndarray, pitch: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """An upward segment of ``length`` tilted forward by ``pitch`` and sideways by ``roll``."""
    return length[..., None] * np.stack(
        [np.sin(roll), np.cos(pitch) * np.cos(roll), np.sin(pitch) * np.cos(roll)], axis=-1
    )


def _arm_dir(flex: np.ndarray, abduction: np.ndarray, sgn: float) -> np.ndarray:
    """Unit direction of a hanging limb segment flexed forward by ``flex``, out by ``abduction``."""
    abduction = np.broadcast_to(abduction, flex.shape)
    return np.stack(
        [sgn * np.sin(abduction), -np.cos(abduction) * np.cos(flex), np.cos(abduction) * np.sin(flex)], axis=-1
    )


def _to_world(pos: np.ndarray, dz: np.ndarray, p: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """Place the local walker on its path: heading about y (with slow turning) plus progress."""
    heading = p["heading"][:, None] + p["turn_rate"][:, None] * t  # (N, T)
    c, s = np.cos(heading), np.sin(heading)
    # Local forward (0, 0, 1) maps to (sin h, 0, cos h); local left (1, 0, 0) to (cos h, 0, -sin h).
    path_x = np.cumsum(dz * s, axis=1)
    path_z = np.cumsum(dz * c, axis=1)
    lx, ly, lz = pos[..., 0], pos[..., 1], pos[..., 2]
    cc, ss = c[..., None], s[..., None]
    out = np.empty_like(pos)
    out[..., 0] = cc * lx + ss * lz + path_x[..., None]
    out[..., 1] = ly
    out[..., 2] = -ss * lx + cc * lz + path_z[..., None]
    return out


def _dropouts(
    rng: np.random.Generator, pos: np.ndarray, lengths: np.ndarray, cfg: SyntheticConfig
) -> np.ndarray:
    """Tracking dropouts: in a random subset of sequences one or two joints freeze (hold their
    last tracked position) for a few frames, as a marker or pose tracker that loses a joint."""
    n: int  # typed, so that the numpy stubs pick the array overloads of rng.random / rng.integers
    n_t: int
    v: int
    n, n_t, v, _ = pos.shape
    frozen = np.zeros((n, n_t, v), dtype=bool)
    frames = np.arange(n_t)
    for _slot in range(2):
        hit = rng.random(n) < (cfg.dropout_prob if _slot == 0 else cfg.dropout_prob * 0.3)
        joint = rng.integers(0, v, n)
        dur = rng.integers(cfg.dropout_frames[0], cfg.dropout_frames[1] + 1, n)
        start = rng.integers(1, np.maximum(lengths - dur, 2))
        span = (frames[None, :] >= start[:, None]) & (frames[None, :] < (start + dur)[:, None]) & hit[:, None]
        frozen[np.arange(n)[:, None], frames[None, :], joint[:, None]] |= span
    # Index of the last non-frozen frame, per joint (forward fill).
    src = np.where(frozen, 0, frames[None, :, None])
    src = np.maximum.accumulate(src, axis=1)
    return np.take_along_axis(pos, src[..., None], axis=1)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def generate_sequences(
    n: int,
    seed: int,
    config: SyntheticConfig | None = None,
    layout: SkeletonLayout = EGAIT16,
) -> tuple[list[np.ndarray], np.ndarray, list[str], np.ndarray]:
    """Generate ``n`` raw walking sequences with emotion labels.

    Args:
        n: number of sequences.
        seed: seed of the :class:`numpy.random.Generator`; equal seeds give equal output.
        config: generator knobs (default :class:`SyntheticConfig()`).
        layout: must name the E-Gait-16 joints (the kinematic model places them by name).

    Returns:
        ``(sequences, labels, names, subjects)``: one float32 ``(T_i, V, 3)`` array per
        sequence (y up, metres, root of frame 0 at the origin, walking path kept), class
        indices into :data:`~ssal.data.EGAIT_EMOTIONS` (balanced to within one), names like
        ``"s007_00012_Happy"`` and the subject index of each sequence.
    """
    cfg = config or SyntheticConfig()
    if n < 0:
        raise ValueError("n must be >= 0")
    rng = np.random.default_rng(seed)
    n_subjects = max(1, int(np.ceil(n / cfg.seqs_per_subject)))
    n_classes = len(EGAIT_EMOTIONS)
    labels = rng.permutation(np.arange(n) % n_classes).astype(np.int64)
    subjects = rng.integers(0, n_subjects, n).astype(np.int64)
    subj = _sample_subjects(rng, n_subjects, cfg)
    p = _sample_trials(rng, labels, subjects, subj, cfg)
    lengths = rng.integers(cfg.min_frames, cfg.max_frames + 1, n)

    t = np.broadcast_to(np.arange(cfg.max_frames) / cfg.fps, (n, cfg.max_frames))
    local, dz = _walk_local(p, t, layout)
    world = _to_world(local, dz, p, t)
    world = world + p["noise"][:, None, None, None] * rng.standard_normal(world.shape)
    world = _dropouts(rng, world, lengths, cfg)
    world = world - world[:, :1, layout.center : layout.center + 1, :]
    world = world.astype(np.float32)

    sequences = [world[i, : lengths[i]].copy() for i in range(n)]
    names = [f"s{subjects[i]:03d}_{i:05d}_{EGAIT_EMOTIONS[labels[i]].capitalize()}" for i in range(n)]
    return sequences, labels, names, subjects


def generate(
    n: int = 2000,
    seed: int = 0,
    config: PreprocessConfig | None = None,
    synthetic: SyntheticConfig | None = None,
) -> GaitDataset:
    """The built-in corpus as a preprocessed :class:`GaitDataset`.

    Args:
        n: number of sequences.
        seed: generator seed.
        config: preprocessing (default :class:`PreprocessConfig()`: root at the origin in every
            frame, face +z, scale to the reference height, loop to 75 frames).
        synthetic: generator knobs.

    ``meta`` records the generator, its version, seed, knobs and each sequence's subject
    (``meta["subjects"]``, for subject-disjoint splits).
    """
    syn = synthetic or SyntheticConfig()
    from .preprocess import check_bytes, dataset_bytes

    # raw sequences (float32 result and the kinematic model's float64 temporaries), then padding
    raw = int(n) * syn.max_frames * EGAIT16.num_joints * 3 * (4 + 4 * 8)
    check_bytes(raw + dataset_bytes(n, config, EGAIT16.num_joints), "builtin",
                f"generating {n} synthetic sequences")
    sequences, labels, names, subjects = generate_sequences(n, seed, syn)
    meta: dict[str, Any] = {
        "generator": "ssal.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n": int(n),
        "synthetic": asdict(syn),
        "subjects": subjects.tolist(),
    }
    return sequences_to_dataset(
        sequences, labels, names, EGAIT_EMOTIONS, EGAIT16, syn.fps, config, source="builtin", meta=meta
    )


_BUILTIN_CACHE: dict[tuple[int, int, str], GaitDataset] = {}


def load_builtin(n: int = 2000, seed: int = 0, center: str = PreprocessConfig.center) -> GaitDataset:
    """The default dataset (``--data builtin``), cached in memory per ``(n, seed, center)``.

    ``center`` is the preprocessing's centring mode (:class:`PreprocessConfig`). Returns a fresh
    :class:`GaitDataset` object each call (arrays shared, read-only), so callers may change its
    attributes without affecting the cache.
    """
    key = (int(n), int(seed), str(center))
    if key not in _BUILTIN_CACHE:
        ds = generate(n, seed, PreprocessConfig(center=center))
        ds.x.setflags(write=False)
        _BUILTIN_CACHE[key] = ds
    ds = _BUILTIN_CACHE[key]
    return GaitDataset(
        x=ds.x, y=ds.y.copy(), names=list(ds.names), lengths=ds.lengths.copy(), classes=list(ds.classes),
        layout=ds.layout, fps=ds.fps, meta=dict(ds.meta),
    )
