"""How far a whole job is: one line per stage, ``stage k of n``, with an estimate of the time left.

A job (``ssal demo``, ``ssal reproduce``: :func:`~.jobs.run_protocols`) runs many stages: each
method's pretraining once per pretraining seed, then each method's protocols, then the
from-scratch references of each encoder architecture. :func:`protocol_stages` lists them up
front with a cost each; :class:`JobProgress` logs, through the experiment's ``log``, at the start
of each stage::

    [demo] stage 4 of 23: pretrain aimclr, seed 0 (elapsed 0:02:41, time left ~0:11:05)

**How the time left is estimated.** A stage's cost is a count of encoder passes over
sequences, a forward pass counting 1 and a backward pass 2 (a training pass 3):

* pretraining: ``pretrain_epochs x training sequences x 4`` (the query view forward and
  backward, the key view forward);
* a method's protocols: kNN and the linear probes encode every sequence twice per pretraining
  seed (the probes' heads train on cached features, counted as nothing); finetune is
  ``finetune_epochs x (3 x training + validation sequences)``; each semi-supervised fraction
  ``epochs x 3 x labelled subset + validation passes x validation sequences`` per label-subset seed; SSAL's
  branch maps add two passes per seed;
* the references: the same end-to-end and semi-supervised passes from scratch, and two
  passes per seed on the random initialisations.

The time left is the sum over the stages not yet finished (the starting one included) of
``cost x seconds per unit``, where seconds per unit is measured on the finished stages: those
of the same kind and method (or architecture) when there are some, else those of the same
method, else those of the same kind, else all. It is unknown until one stage has been timed.
The model is deliberately rough (methods differ by views and widths, data loading is not
counted); measuring per kind and method corrects most of that after the first stage of each.

Resumed stages count as done instantly: a stage whose result is reused takes its line with
``(reused)`` and neither its time nor its cost enters the rates; one resumed from a checkpoint
part-way runs, but its time does not enter the rates either. The lines go to ``log`` whatever
``progress`` (tqdm bars) is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..methods.registry import encoder_name
from .experiment import Experiment
from .pretraining import schedule_seeds
from .protocols import semi_epochs, semi_val_every
from .references import reference_methods

#: Passes counted per sequence: a forward pass, and a training (forward + backward) pass.
FORWARD, TRAINING = 1.0, 3.0
#: Passes per sequence and epoch of pretraining: the query view trained, the key view encoded.
PRETRAIN_PASSES = TRAINING + FORWARD
#: Forward passes per sequence of the frozen protocols of one encoder (kNN, the linear probes).
FROZEN_PASSES = 2 * FORWARD


@dataclass(frozen=True)
class Stage:
    """One stage of a job: its key, the words of its line, its cost and what it is timed with
    (``kind``: pretrain, evaluate, references; ``family``: the method or architecture)."""

    key: str
    label: str
    cost: float
    kind: str
    family: str


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours unbounded) of a non-negative number of seconds."""
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def parse_duration(text: str) -> float:
    """Seconds of an ``H:MM:SS`` duration (:func:`format_duration`)."""
    h, m, s = (int(p) for p in text.split(":"))
    return float(h * 3600 + m * 60 + s)


@dataclass
class JobProgress:
    """The stages of a job and the line logged at the start of each (module docstring).

    ``workers``: stages that run at once (:mod:`.stage_pool`). With one, a stage ends when the
    next starts; with more, each ends at :meth:`done`, and the time left is the remaining
    cost shared among the workers. ``clock`` (seconds) is :func:`time.perf_counter` unless a
    test gives its own.
    """

    stages: list[Stage]
    log: Callable[[str], None]
    job: str = "job"
    clock: Callable[[], float] = time.perf_counter
    workers: int = 1
    _by_key: dict[str, Stage] = field(init=False)
    _started: list[str] = field(init=False, default_factory=list)
    _timed: list[tuple[Stage, float]] = field(init=False, default_factory=list)
    _running: dict[str, tuple[Stage, float, bool]] = field(init=False, default_factory=dict)
    _t0: float = field(init=False)

    def __post_init__(self) -> None:
        self.stages = list(self.stages)
        self._by_key = {s.key: s for s in self.stages}
        if len(self._by_key) != len(self.stages):
            raise ValueError("two stages share a key")
        self._t0 = self.clock()

    @property
    def total(self) -> int:
        """``n``: the number of stages."""
        return len(self.stages)

    def start(self, key: str, *, reused: bool = False, partial: bool = False) -> None:
        """Log the line of stage ``key`` (with one worker, the running stage ends here).

        ``reused``: its result exists already (done at once, as if it took no time);
        ``partial``: it resumes part-way (it runs, but is not timed for the rates)."""
        now = self.clock()
        if self.workers <= 1:
            self._close_all(now)
        stage = self._by_key.get(key)
        if stage is None:  # a stage the plan did not list: counted from now on
            stage = Stage(key, key, 0.0, "other", "other")
            self.stages.append(stage)
            self._by_key[key] = stage
        self._started.append(key)
        left = self.time_left(include=None if reused else stage)
        words = "time left unknown (no stage timed yet)" if left is None else f"time left ~{format_duration(left)}"
        self.log(f"[{self.job}] stage {len(self._started)} of {self.total}: {stage.label}"
                 f"{' (reused)' if reused else ''} (elapsed {format_duration(now - self._t0)}, {words})")
        if not reused:
            self._running[key] = (stage, now, not partial)

    def done(self, key: str) -> None:
        """Stage ``key`` has ended (needed with several workers; harmless with one)."""
        self._close(key, self.clock())

    def finish(self) -> None:
        """Close the running stages and log the job's total time."""
        now = self.clock()
        self._close_all(now)
        self.log(f"[{self.job}] {len(self._started)} of {self.total} stages done in {format_duration(now - self._t0)}")

    def time_left(self, include: Stage | None = None) -> float | None:
        """Estimated seconds of ``include`` and of every stage not started yet, shared among
        the workers (None: unknown)."""
        pending = [s for s in self.stages if s.key not in self._started]
        if include is not None:
            pending.append(include)
        total = 0.0
        for s in pending:
            rate = self._rate(s)
            if rate is None:
                return None
            total += s.cost * rate
        return total / max(1, min(self.workers, len(pending)))

    def _close(self, key: str, now: float) -> None:
        if key in self._running:
            stage, t, timed = self._running.pop(key)
            if timed and stage.cost > 0:
                self._timed.append((stage, now - t))

    def _close_all(self, now: float) -> None:
        for key in list(self._running):
            self._close(key, now)

    def _rate(self, stage: Stage) -> float | None:
        """Seconds per unit of cost, from the finished stages most like ``stage``."""
        if stage.cost <= 0:
            return 0.0
        for like in (lambda s: s.kind == stage.kind and s.family == stage.family,
                     lambda s: s.family == stage.family, lambda s: s.kind == stage.kind, lambda s: True):
            done = [(s.cost, t) for s, t in self._timed if like(s)]
            if done:
                return sum(t for _, t in done) / sum(c for c, _ in done)
        return None


def pretrain_key(name: str, seed: int) -> str:
    """The stage key of ``name``'s pretraining with ``seed``."""
    return f"pretrain:{name}:{seed}"


def evaluate_key(name: str) -> str:
    """The stage key of ``name``'s protocols."""
    return f"evaluate:{name}"


def references_key(arch: str) -> str:
    """The stage key of the references of encoder architecture ``arch``."""
    return f"references:{arch}"


def _end_to_end_cost(exp: Experiment) -> float:
    """Passes of the finetune (or supervised) protocol and the semi-supervised runs."""
    s = exp.schedule.evaluation
    n_train, n_val = len(exp.split["train"]), len(exp.split["val"])
    cost = s.finetune_epochs * (TRAINING * n_train + FORWARD * n_val)
    n_lab = int((exp.dataset.y[exp.split["train"]] >= 0).sum())
    for f in s.fractions:
        epochs = semi_epochs(s, f, n_lab, exp.dataset.num_classes)
        subset = max(exp.dataset.num_classes, int(round(f * n_lab)))
        validations = -(-epochs // semi_val_every(s, epochs))
        cost += len(s.seeds) * (epochs * TRAINING * subset + validations * FORWARD * n_val)
    return cost


def protocol_stages(exp: Experiment, methods: Sequence[str], references: bool = True) -> list[Stage]:
    """The stages of :func:`~.jobs.run_protocols` in the order they run, with their costs."""
    seeds = schedule_seeds(exp)
    n_train, n_all = len(exp.split["train"]), len(exp.dataset)
    epochs = exp.schedule.pretrain.pretrain_epochs
    frozen = FROZEN_PASSES * n_all
    stages = [Stage(pretrain_key(m, seed), f"pretrain {m}, seed {seed}", PRETRAIN_PASSES * epochs * n_train,
                    "pretrain", m) for m in methods for seed in seeds]
    end_to_end = _end_to_end_cost(exp)
    for m in methods:
        branch_maps = frozen * len(seeds) if encoder_name(m) == "cffn" else 0.0
        stages.append(Stage(evaluate_key(m), f"evaluate {m} ({len(seeds)} seed(s))",
                            frozen * len(seeds) + end_to_end + branch_maps, "evaluate", m))
    if references:
        for arch, m in reference_methods(methods).items():
            stages.append(Stage(references_key(arch), f"references of {arch} (supervised, random init)",
                                end_to_end + frozen * len(seeds), "references", m))
    return stages


__all__ = ["JobProgress", "Stage", "protocol_stages", "pretrain_key", "evaluate_key", "references_key",
           "format_duration", "parse_duration"]
