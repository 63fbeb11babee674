"""How much affect information does each contrastive augmentation destroy? A raw-pose probe, no encoder.

Why: MoCo pretraining makes an encoder map two augmented views of a clip to the same feature,
so whatever an augmentation changes is, at best, information the encoder learns to discard. If
an augmentation changes the cues that carry emotion (tempo, posture, arm swing), features made
invariant to it cannot read emotion through those cues. This script measures that directly on
the input, with a fixed linear probe on raw pose and no network training at all (a proxy: a
linear probe trained on augmented clips, not a nonlinear encoder).

Task ("bandai-affect"): Bandai-Namco dataset-1, capture session ``d1s0`` only (one performer,
one rig calibration, ``ssal.data.bvh_header.session_of``), styles happy, sad, angry, proud,
not-confident (5 classes, chance 20 %), 11 recordings per class over 10 actions, 55 recordings.
Clips of 60 frames (30 fps) every 20 frames. Split: leave-one-action-out (10 folds; each
action's recordings are one fold's test set, so a recording is never on two sides, and the
probe must read the affect from actions it has not been trained on).

Probe: ``ssal.evaluation.probes`` - every 4th frame of a clip flattened (``raw_pose_features``),
standardised with the training clips' statistics, L2 logistic regression (C = 1, L-BFGS). Every
probe input, clean or augmented, has the pretraining clip length (32 frames, the CPU plan's
``clip_len``): clean clips are resampled with ``ssal.evaluation.features.resize_time`` as ssal's
evaluation does; views whose first step is the temporal crop get the 60-frame clip and output
32 frames, as in pretraining; every other transform is applied to the resampled 32-frame clip,
as in pretraining where it follows the crop. A recording is predicted by the argmax of the mean
clip probability of its clips (``recording_vote``).

Augmentations: each transform alone, built from the typed sections of the method presets
(``ssal/config/methods/*.yaml`` resolved through the schema, ``clip_len`` 32) at preset
strength, with application probability 1 wherever the preset uses a probability; then the
composed views exactly as the presets build them (``general_augment`` / ``ssa_augment`` /
``extreme_augment``): the general view T of SkeletonCLR and SSAL, SSAL's strong (SSA) view and
AimCLR's extreme view. One setting that no preset uses is added because the hypothesis is
about it: temporal crop-and-resize with ``crop_ratio`` 0.5-1 (changes the apparent tempo). The
presets' crop is shift-only (``crop_ratio`` [1, 1]: a window of the full length, shifted in
mirrored padding), which does not change the tempo.

Three probes per view A, over all folds, all tested on A(test clips):

* ``test-time``: trained on clean training clips. The drop against the clean probe is how far
  A moves the affect readout of the pose.
* ``invariant``: trained on A(training clips) (``--copies`` augmented copies of each clip).
  Roughly what a representation made invariant to A's random draws can still read: the affect
  information that survives A. For a transform that is a fixed bijection at probability 1 (flip,
  time flip) this equals the clean probe by construction (the same relabelling on both sides,
  no invariance asked), hence the third probe.
* ``mixed``: trained on the clean training clips *and* the augmented copies (the identity
  joins the orbit, as in pretraining where the presets apply flip, time flip, noise, blur and
  axis mask with probability 0.5, so a clip and its transformed version form a positive pair).
  One readout must then serve x and A(x): a drop means the cue is not shared by x and A(x),
  i.e. an encoder invariant to A (x and A(x) mapped together) loses it.

Each is compared with the clean probe (clean train, clean test) on the same recordings:
accuracy with a 95 % percentile bootstrap interval over recordings, the paired difference
(view minus clean, in points) with its bootstrap interval, and the verdict word of
``ssal.evaluation.uncertainty.verdict``: ``loses`` = the view reads significantly less affect
than the clean pose (the interval of the difference lies below 0), ``ties`` = no detectable
difference, ``beats`` = significantly more. Clip accuracy is scored per recording (fraction of
its clips right) and bootstrapped over recordings too, since clips of a recording are not
independent. With 55 recordings a recording-level interval is about +-12 points wide, so
only large losses are called; the clip-level columns are tighter.

Tempo check: the same protocol with a probe on only the per-clip mean joint speed (mean
Euclidean frame-to-frame displacement of each of the 16 joints: 16 numbers, no posture). If
this probe is well above chance, tempo/energy carries affect; if crop-and-resize takes it down,
crop-and-resize destroys that cue. Note that ssal's preprocessing centres the root in every
frame (``PreprocessConfig.center = "per_frame"``), so walking speed over ground is already
gone; what remains is limb speed (cadence, swing amplitude) in units of the height.

How to read the tables (one line per view, a column pair per probe): ``test-time ... loses``
alone = A moves the cue but a probe that has seen A still finds it; ``invariant`` or ``mixed
... loses`` = A removes affect information that a representation invariant to A cannot get
back - the candidates for the pretraining deficit. The ``VIEW`` lines show the total effect of
each method's composed views. Reference line: the clean probe, chance 20 %.

    python benchmarks/bench_affect_cues.py --data ../shared/data/bandai-namco --out DIR [--quick]

``--quick``: the first 3 folds and 1 augmented copy. Results: ``DIR/results.json`` and
``DIR/table.md``. When the data folder is absent the script says so and exits with status 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ssal.checkpoint import atomic_write_text
from ssal.evaluation.probes import fit_logistic, logistic_proba, raw_pose_features, recording_vote, standardize
from ssal.evaluation.uncertainty import Interval, bootstrap_ci, paired_difference, verdict
from ssal.models.base import resize_time

#: The task is the shipped spec's (files, session, classes, clip window, leave-one-action-out).
SPEC = "bandai-affect"
#: The pretraining clip length of the CPU plan (``clip_len`` of ``ssal/experiments/schedules/default.yaml``).
CLIP_LEN = 32
#: Raw-pose feature: every STEP-th frame of the 32-frame clip (8 frames x 3 x 16 = 384 numbers).
STEP = 4

#: A view: called as ``aug(x, generator)`` on ``(N, C, T, V)``, returns ``(N, C, T', V)``.
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: A probe's feature map: ``(N, C, T, V)`` clips -> ``(N, D)`` features.
Features = Callable[[np.ndarray], np.ndarray]
#: A fold: ``(name, train clip indices, test clip indices)``.
Fold = tuple[str, np.ndarray, np.ndarray]

#: The probes of a view (module docstring): test-time, invariant, mixed.
MODES = ("test-time", "invariant", "mixed")


# ----------------------------------------------------------------------------- features


def pose_features(x: np.ndarray) -> np.ndarray:
    """The raw-pose probe's features: every :data:`STEP`-th frame, flattened."""
    return raw_pose_features(x, step=STEP)


def speed_features(x: np.ndarray) -> np.ndarray:
    """``(N, C, T, V)`` -> ``(N, V)``: per joint, the mean Euclidean frame-to-frame displacement.

    A tempo / movement-energy cue without posture; invariant to any rotation of the skeleton.
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 4 or a.shape[2] < 2:
        raise ValueError(f"speed_features: expected (N, C, T>=2, V), got shape {a.shape}")
    step = np.linalg.norm(np.diff(a, axis=2), axis=1)  # (N, T-1, V)
    return step.mean(axis=1).astype(np.float32)


# ----------------------------------------------------------------------------- core


@dataclass
class UnitScores:
    """Per-recording scores of one probe over all folds (the units of the bootstrap).

    Attributes:
        recordings: recording ids, in fold order then first-seen order within the fold's test
            clips (identical for every probe of one run, so scores pair by position).
        folds: the fold (test action) of each recording.
        labels: the class of each recording.
        predicted: the recording vote (argmax of the mean clip probability).
        rec_correct: 1.0 where the recording vote is right, else 0.0.
        clip_acc: fraction of the recording's clips whose own argmax is right.
    """

    recordings: list[str]
    folds: list[str]
    labels: np.ndarray
    predicted: np.ndarray
    rec_correct: np.ndarray
    clip_acc: np.ndarray


@dataclass
class AffectCueResult:
    """What :func:`affect_cue_scores` measured: the clean probe and every view's two modes."""

    clean: UnitScores
    views: dict[str, dict[str, UnitScores]] = field(default_factory=dict)


def resamples_time(aug: Augment) -> bool:
    """Whether ``aug`` starts with the temporal crop/resize (it then takes the full clip and
    outputs ``clip_len`` frames), read from the transforms' ``uses_lengths`` marker."""
    if getattr(aug, "uses_lengths", False):
        return True
    steps = getattr(aug, "transforms", None)
    return bool(steps is not None and len(steps) and getattr(steps[0], "uses_lengths", False))


def augmented_clips(aug: Augment, x_full: torch.Tensor, clip_len: int, generator: torch.Generator) -> np.ndarray:
    """``aug`` applied as in pretraining, output brought to ``clip_len`` frames.

    Views starting with the temporal crop get the full clips; other transforms get the clips
    resampled to ``clip_len`` (where they act in pretraining: after the crop).
    """
    with torch.no_grad():
        if resamples_time(aug):
            out = aug(x_full, generator)
        else:
            out = aug(resize_time(x_full, clip_len), generator)
        out = resize_time(out, clip_len)
    return out.numpy()


def _scores(proba: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Recording vote and per-recording clip accuracy of one fold's test clips."""
    order, rec_proba = recording_vote(proba, groups)
    clip_right = (proba.argmax(axis=1) == y).astype(np.float64)
    pos = {g: i for i, g in enumerate(order)}
    idx = np.array([pos[g] for g in groups])
    clip_acc = np.bincount(idx, weights=clip_right, minlength=len(order)) / np.bincount(idx, minlength=len(order))
    labels = np.zeros(len(order), dtype=np.int64)
    for g, lab in zip(groups, y):  # a recording's clips share its label
        labels[pos[g]] = lab
    pred = rec_proba.argmax(axis=1)
    return order, labels, pred, (pred == labels).astype(np.float64), clip_acc


class _Collector:
    """Concatenates per-fold unit scores into one :class:`UnitScores`."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, list[str], np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, fold: str, proba: np.ndarray, y: np.ndarray, groups: Sequence[str]) -> None:
        self.parts.append((fold, *_scores(proba, y, groups)))

    def result(self) -> UnitScores:
        return UnitScores(
            recordings=[r for p in self.parts for r in p[1]],
            folds=[p[0] for p in self.parts for _ in p[1]],
            labels=np.concatenate([p[2] for p in self.parts]),
            predicted=np.concatenate([p[3] for p in self.parts]),
            rec_correct=np.concatenate([p[4] for p in self.parts]),
            clip_acc=np.concatenate([p[5] for p in self.parts]),
        )


def _generator(seed: int, fold: int, stream: int) -> torch.Generator:
    """A generator of its own per (seed, fold, stream): stream 0 the test clips, 1.. the copies."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + 1_009 * int(fold) + int(stream))


def affect_cue_scores(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray,
    groups: Sequence[str],
    folds: Sequence[Fold],
    num_classes: int,
    views: Mapping[str, Augment],
    *,
    clip_len: int = CLIP_LEN,
    copies: int = 2,
    seed: int = 0,
    features: Features = pose_features,
    log: Callable[[str], None] | None = None,
) -> AffectCueResult:
    """The core measurement: a clean probe and, per view, its ``test-time``, ``invariant`` and ``mixed`` probes.

    ``test-time``: trained on clean training clips, tested on A(test clips); ``invariant``:
    trained on ``copies`` augmented copies of the training clips, tested on A(test clips);
    ``mixed``: trained on the clean training clips plus those copies, tested on A(test clips).

    Args:
        x: ``(N, C, T, V)`` clips at their full length.
        y: ``(N,)`` class of each clip.
        groups: recording id of each clip (a recording's clips vote together and must lie in
            one fold's test part).
        folds: ``(name, train_idx, test_idx)`` triples; each recording in one test part.
        num_classes: number of classes.
        views: name -> augmentation (``aug(x, generator)``).
        clip_len: frames of every probe input (clean clips are resampled to it).
        copies: augmented copies of each training clip for the ``invariant`` and ``mixed`` probes.
        seed: seeds the augmentations (a generator per fold and stream; every view of a fold
            draws from the same seeds).
        features: the probe's feature map (default: raw pose).
        log: progress callback (one line per fold), if any.

    Returns:
        :class:`AffectCueResult`; every :class:`UnitScores` lists the recordings in the same
        order, so any two pair by position (:func:`summarize`).
    """
    xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
    y = np.asarray(y, dtype=np.int64)
    groups = list(groups)
    if copies < 1:
        raise ValueError("copies must be >= 1")
    clean = _Collector()
    per_view: dict[str, dict[str, _Collector]] = {name: {m: _Collector() for m in MODES} for name in views}
    for k, (fold_name, train_idx, test_idx) in enumerate(folds):
        t0 = time.perf_counter()
        tr_idx = torch.as_tensor(np.asarray(train_idx, dtype=np.int64))
        te_idx = torch.as_tensor(np.asarray(test_idx, dtype=np.int64))
        x_tr, x_te = xt.index_select(0, tr_idx), xt.index_select(0, te_idx)
        y_tr, y_te = y[np.asarray(train_idx)], y[np.asarray(test_idx)]
        g_te = [groups[i] for i in np.asarray(test_idx)]
        leak = set(g_te) & {groups[i] for i in np.asarray(train_idx)}
        if leak:
            raise ValueError(f"fold {fold_name}: recording {sorted(leak)[0]!r} on both sides")
        f_tr = features(resize_time(x_tr, clip_len).numpy())
        f_te = features(resize_time(x_te, clip_len).numpy())
        f_te_views = {name: features(augmented_clips(aug, x_te, clip_len, _generator(seed, k, 0)))
                      for name, aug in views.items()}
        # test-time: one clean fit per fold scores the clean and every augmented test set
        tr_std, te_std, *views_std = standardize(f_tr, f_te, *f_te_views.values())
        w, b = fit_logistic(tr_std, y_tr, num_classes)

        def proba(a: np.ndarray, w: torch.Tensor = w, b: torch.Tensor = b) -> np.ndarray:
            return torch.softmax(torch.as_tensor(a, dtype=torch.float64) @ w.T + b, dim=1).numpy()

        clean.add(fold_name, proba(te_std), y_te, g_te)
        for name, a in zip(f_te_views, views_std):
            per_view[name]["test-time"].add(fold_name, proba(a), y_te, g_te)
        # invariant: trained on augmented copies of the training clips; mixed: on the clean
        # clips and the copies (the identity joins the orbit)
        for name, aug in views.items():
            f_aug_tr = np.concatenate([features(augmented_clips(aug, x_tr, clip_len, _generator(seed, k, c)))
                                       for c in range(1, copies + 1)])
            p = logistic_proba(f_aug_tr, np.tile(y_tr, copies), f_te_views[name], num_classes)
            per_view[name]["invariant"].add(fold_name, p, y_te, g_te)
            p = logistic_proba(np.concatenate([f_tr, f_aug_tr]), np.tile(y_tr, copies + 1), f_te_views[name],
                               num_classes)
            per_view[name]["mixed"].add(fold_name, p, y_te, g_te)
        if log is not None:
            log(f"  fold {k + 1}/{len(folds)} ({fold_name}): {len(set(g_te))} test recordings, "
                f"{len(train_idx)} train / {len(test_idx)} test clips, {time.perf_counter() - t0:.1f} s")
    return AffectCueResult(clean.result(), {n: {m: c.result() for m, c in d.items()} for n, d in per_view.items()})


# ----------------------------------------------------------------------------- summaries


@dataclass
class Row:
    """One line of a table: a probe's accuracies and its paired difference to the clean probe."""

    view: str
    mode: str
    rec: Interval
    clip: Interval
    rec_diff: Interval | None = None
    clip_diff: Interval | None = None

    @property
    def rec_verdict(self) -> str:
        return verdict(self.rec_diff) if self.rec_diff is not None else "-"

    @property
    def clip_verdict(self) -> str:
        return verdict(self.clip_diff) if self.clip_diff is not None else "-"

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view, "mode": self.mode,
            "recording_acc": self.rec.to_dict(), "clip_acc": self.clip.to_dict(),
            "recording_diff_vs_clean": None if self.rec_diff is None else self.rec_diff.to_dict(),
            "recording_verdict": self.rec_verdict,
            "clip_diff_vs_clean": None if self.clip_diff is None else self.clip_diff.to_dict(),
            "clip_verdict": self.clip_verdict,
        }


def summarize(result: AffectCueResult, seed: int = 0) -> list[Row]:
    """Bootstrap intervals over recordings and paired differences to the clean probe."""
    c = result.clean
    rows = [Row("clean (no augmentation)", "clean", bootstrap_ci(c.rec_correct, seed=seed), bootstrap_ci(c.clip_acc, seed=seed))]
    for name, modes in result.views.items():
        for mode, s in modes.items():
            if s.recordings != c.recordings:
                raise ValueError(f"{name}/{mode}: recordings differ from the clean probe's; cannot pair")
            rows.append(Row(name, mode, bootstrap_ci(s.rec_correct, seed=seed), bootstrap_ci(s.clip_acc, seed=seed),
                            paired_difference(s.rec_correct, c.rec_correct, seed=seed),
                            paired_difference(s.clip_acc, c.clip_acc, seed=seed)))
    return rows


def _diff(iv: Interval | None, word: str) -> str:
    if iv is None:
        return "-"
    return f"{iv.mean * 100:+.1f} [{iv.lo * 100:+.1f}, {iv.hi * 100:+.1f}] {word}"


def markdown_table(rows: Sequence[Row], level: str = "recording") -> str:
    """One line per view, a column pair per probe mode: accuracy % [95% CI] and the paired
    difference to the clean probe in points [95% CI] with its verdict (view minus clean).

    ``level``: ``"recording"`` (recording vote) or ``"clip"`` (clip accuracy per recording).
    """
    if level not in ("recording", "clip"):
        raise ValueError(f"level must be 'recording' or 'clip', got {level!r}")
    clip = level == "clip"
    modes = list(dict.fromkeys(r.mode for r in rows if r.mode != "clean"))
    by_view: dict[str, dict[str, Row]] = {}
    for r in rows:
        by_view.setdefault(r.view, {})[r.mode] = r
    head = "| view | " + " | ".join(f"{m}: acc % | {m}: vs clean, pts" for m in modes) + " |"
    lines = [head, "|---|" + "---|" * (2 * len(modes))]
    for view, cells in by_view.items():
        out = [view]
        if "clean" in cells:  # the reference line: its accuracy under every mode's column
            r = cells["clean"]
            acc = (r.clip if clip else r.rec).format()
            out += [acc, "(reference)"] * len(modes)
        else:
            for m in modes:
                r = cells.get(m)
                if r is None:
                    out += ["-", "-"]
                    continue
                acc = (r.clip if clip else r.rec).format()
                out += [acc, _diff(r.clip_diff if clip else r.rec_diff, r.clip_verdict if clip else r.rec_verdict)]
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- views


@dataclass(frozen=True)
class ViewSpec:
    """A view of the benchmark: its module and how it was built."""

    name: str
    module: torch.nn.Module
    note: str


def build_views(layout: Any, clip_len: int = CLIP_LEN) -> list[ViewSpec]:
    """Each transform alone (preset strength, probability 1) and the presets' composed views.

    Settings come from the method presets resolved through the schema (``resolve_config``
    with ``model.augment.general.clip_len`` = ``clip_len``), the composed views from the same
    builders the learner uses.
    """
    from ssal.augment import (
        AxisMask,
        Flip,
        GaussianBlur,
        GaussianNoise,
        PartMask,
        Rotate,
        Shear,
        TemporalCropResize,
        TemporalMask,
        TimeFlip,
        UpperBodyJitter,
        extreme_augment,
        general_augment,
        ssa_augment,
    )
    from ssal.config.resolve import resolve_config, typed_config

    aug = {m: typed_config(resolve_config(m, overrides=[f"model.augment.general.clip_len={clip_len}"])).model.augment
           for m in ("skeletonclr", "ssal", "aimclr")}
    g, s, e = aug["ssal"].general, aug["ssal"].strong, aug["aimclr"].strong
    if aug["skeletonclr"].general != g or aug["aimclr"].general != g:
        raise RuntimeError("the presets' general sets differ; this script assumes one general view T")
    crop = tuple(g.crop_ratio)
    views = [
        ViewSpec("crop (preset, shift-only)", TemporalCropResize(g.clip_len, g.pad_ratio, crop),
                 f"TemporalCropResize crop_ratio {list(crop)}, pad {g.pad_ratio:.3g}: all presets' crop"),
        ViewSpec("crop-and-resize 0.5-1", TemporalCropResize(g.clip_len, g.pad_ratio, (0.5, 1.0)),
                 "TemporalCropResize crop_ratio [0.5, 1] (a setting, in no preset): changes the tempo"),
        ViewSpec("shear", Shear(g.shear_amplitude, p=1.0), f"Shear amplitude {g.shear_amplitude}"),
        ViewSpec("upper-body jitter", UpperBodyJitter(layout, s.jitter_offset_std, s.jitter_frame_std,
                                                      s.jitter_trunk, p=1.0),
                 f"SSA jitter offset {s.jitter_offset_std} m, frame {s.jitter_frame_std} m, trunk {s.jitter_trunk}"),
        ViewSpec("part mask", PartMask(layout, s.spatial_mask_min_parts, s.spatial_mask_max_parts, p=1.0),
                 f"SSA part mask {s.spatial_mask_min_parts}-{s.spatial_mask_max_parts} parts"),
        ViewSpec("temporal mask", TemporalMask(s.temporal_mask_ratio, s.temporal_mask_frames, p=1.0),
                 f"SSA temporal mask ratio {s.temporal_mask_ratio} of {clip_len} frames"),
        ViewSpec("flip", Flip(layout, p=1.0, lateral_axis=e.flip_axis, mirror=e.flip_mirror),
                 f"AimCLR flip (joint swap, mirror {e.flip_mirror}); preset p {e.flip_p}"),
        ViewSpec("rotate", Rotate(e.rotate_degrees, e.rotate_minor_degrees, p=1.0, symmetric=e.rotate_symmetric),
                 f"AimCLR rotate U(0,{e.rotate_degrees:g}) deg main axis, U(0,{e.rotate_minor_degrees:g}) others"),
        ViewSpec("time flip", TimeFlip(p=1.0),
                 f"AimCLR time flip (off in the aimclr preset: time_flip {e.time_flip})"),
        ViewSpec("gaussian noise", GaussianNoise(e.noise_std, p=1.0), f"AimCLR noise std {e.noise_std} m; preset p {e.noise_p}"),
        ViewSpec("gaussian blur", GaussianBlur(e.blur_kernel, tuple(e.blur_sigma), p=1.0, normalize=e.blur_normalize),
                 f"AimCLR blur kernel {e.blur_kernel}, sigma {list(e.blur_sigma)}, normalize {e.blur_normalize} "
                 f"(scales the skeleton 1-5x); preset p {e.blur_p}"),
        ViewSpec("axis mask", AxisMask(p=1.0), f"AimCLR axis mask; preset p {e.axis_mask_p}"),
        ViewSpec("VIEW general T (SkeletonCLR/SSAL/AimCLR)", general_augment(aug["ssal"], layout),
                 "crop (shift-only) + shear, as the presets build it"),
        ViewSpec("VIEW SSAL strong (SSA)", ssa_augment(aug["ssal"], layout),
                 "T + upper-body jitter + part mask + temporal mask (ssal preset)"),
        ViewSpec("VIEW AimCLR extreme", extreme_augment(aug["aimclr"], layout),
                 "T + flip/rotate/noise/blur/axis mask with the preset's probabilities (aimclr preset)"),
    ]
    return views


# ----------------------------------------------------------------------------- data


def load_task(root: Path) -> tuple[Any, list[Fold], Any]:
    """The clips of the ``bandai-affect`` spec and all 10 of its leave-one-action-out folds
    (validation and test alike, in sorted action order); returns ``(GaitDataset, folds, spec)``."""
    from ssal.experiments.corpus import read_evaluation
    from ssal.experiments.folds import make_folds
    from ssal.experiments.spec import load_spec

    spec = load_spec(SPEC)
    ev = read_evaluation(root, spec.evaluation)
    folds = [(f.name.split("/", 1)[1], f.train, f.test) for f in make_folds(ev, spec.split)]
    return ev.dataset, folds, spec


# ----------------------------------------------------------------------------- output


def _units(s: UnitScores) -> dict[str, Any]:
    return {"recordings": s.recordings, "folds": s.folds, "labels": s.labels.tolist(),
            "predicted": s.predicted.tolist(), "clip_acc": [round(float(v), 6) for v in s.clip_acc]}


def _per_class(s: UnitScores, classes: Sequence[str]) -> dict[str, float]:
    return {c: float(s.rec_correct[s.labels == i].mean()) for i, c in enumerate(classes) if (s.labels == i).any()}


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--data", default="../shared/data/bandai-namco",
                    help="the Bandai-Namco folder (holding dataset-1/data)")
    ap.add_argument("--out", default=None, help="output folder (default runs/affect-cues-<timestamp>)")
    ap.add_argument("--quick", action="store_true", help="3 folds, 1 augmented copy")
    ap.add_argument("--copies", type=int, default=None, help="augmented copies per training clip (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machine)")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    torch.set_num_threads(max(1, args.threads))

    root = Path(args.data)
    if not (root / "dataset-1" / "data").is_dir():
        print(f"bench_affect_cues: no {root / 'dataset-1' / 'data'}; nothing to do")
        return 0
    out = Path(args.out) if args.out else Path("runs") / f"affect-cues-{time.strftime('%Y%m%d-%H%M%S')}"
    copies = args.copies if args.copies is not None else (1 if args.quick else 2)

    ds, folds, spec = load_task(root)
    ev_spec = spec.evaluation
    session = ", ".join(ev_spec.where.get("session", ()))
    if args.quick:
        folds = folds[:3]
    n_rec = len(dict.fromkeys(ds.recording_ids))
    print(f"# bench_affect_cues: {len(ds)} clips of {n_rec} recordings, classes {ds.classes}, "
          f"{len(folds)} leave-one-action-out folds, clip_len {CLIP_LEN}, copies {copies}, seed {args.seed}",
          flush=True)
    specs = build_views(ds.layout, CLIP_LEN)
    views = {v.name: v.module for v in specs}
    tables: dict[str, list[Row]] = {}
    results: dict[str, AffectCueResult] = {}
    for probe, feats in (("raw pose", pose_features), ("joint speed", speed_features)):
        print(f"probe: {probe}", flush=True)
        t0 = time.perf_counter()
        res = affect_cue_scores(ds.x, ds.y, ds.recording_ids, folds, len(ds.classes), views, clip_len=CLIP_LEN,
                                copies=copies, seed=args.seed, features=feats, log=print)
        print(f"  {time.perf_counter() - t0:.1f} s", flush=True)
        results[probe] = res
        tables[probe] = summarize(res, seed=args.seed)

    n_units = len(results["raw pose"].clean.recordings)
    legend = "\n".join(f"- **{v.name}**: {v.note}" for v in specs)
    text = (
        f"# Affect cues destroyed by each augmentation (bandai-affect, raw-pose probe)\n\n"
        f"Session {session}, classes {', '.join(ds.classes)} (chance {100 / len(ds.classes):.0f} %), "
        f"{n_units} recordings, {len(ds)} clips ({ev_spec.window} frames every {ev_spec.stride}); leave-one-action-out, "
        f"{len(folds)} folds; every probe input resampled to {CLIP_LEN} frames; {copies} augmented "
        f"cop{'y' if copies == 1 else 'ies'} per training clip for `invariant` and `mixed`; seed {args.seed}. "
        f"CIs: 95 % bootstrap over recordings; differences are view minus clean, paired on recordings; "
        f"verdict `loses` = significantly less affect than the clean pose.\n\n"
        f"## Raw-pose probe (every {STEP}th frame, 384 numbers): recording vote\n\n"
        f"{markdown_table(tables['raw pose'])}\n\n"
        f"## Raw-pose probe: clip accuracy (per recording, averaged over recordings)\n\n"
        f"{markdown_table(tables['raw pose'], 'clip')}\n\n"
        f"## Tempo check: joint-speed probe (mean frame-to-frame displacement per joint, 16 numbers): "
        f"recording vote\n\n{markdown_table(tables['joint speed'])}\n\n"
        f"## Joint-speed probe: clip accuracy\n\n{markdown_table(tables['joint speed'], 'clip')}\n\n"
        f"## Views\n\n{legend}\n"
    )
    print()
    print(text, flush=True)
    elapsed = time.perf_counter() - t_start
    payload = {
        "benchmark": "bench_affect_cues", "task": "bandai-affect",
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "elapsed_s": round(elapsed, 1),
        "settings": {"data": str(root), "spec": SPEC, "session": session, "classes": list(ds.classes),
                     "window": ev_spec.window, "stride": ev_spec.stride, "clip_len": CLIP_LEN, "raw_pose_step": STEP, "copies": copies,
                     "seed": args.seed, "quick": bool(args.quick), "folds": [f[0] for f in folds],
                     "threads": torch.get_num_threads(), "torch": torch.__version__},
        "views": {v.name: {"note": v.note, "module": repr(v.module)} for v in specs},
        "probes": {
            probe: {
                "rows": [r.to_dict() for r in tables[probe]],
                "per_class_recording_acc": {
                    "clean": _per_class(res.clean, ds.classes),
                    **{f"{n}/{m}": _per_class(s, ds.classes) for n, d in res.views.items() for m, s in d.items()}},
                "units": {"clean": _units(res.clean),
                          **{f"{n}/{m}": _units(s) for n, d in res.views.items() for m, s in d.items()}},
            }
            for probe, res in results.items()
        },
    }
    atomic_write_text(out / "results.json", json.dumps(payload, indent=1, allow_nan=False) + "\n")
    atomic_write_text(out / "table.md", text)
    print(f"wrote {out / 'results.json'} and {out / 'table.md'} ({elapsed:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
