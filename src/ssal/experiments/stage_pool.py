"""Running a job's independent stages side by side in worker processes.

A job (:func:`~.jobs.run_protocols`) is a list of :class:`Task` objects: a stage key (the
:mod:`.progress` line of the stage), a module-level function ``fn(exp, *args)`` and the keys of
the tasks whose results it needs (``after``). :func:`run_tasks` runs them

* in this process, one after another in list order, with ``workers=1``;
* in ``workers`` spawned processes of ``threads`` torch threads each otherwise. The experiment
  is sent to each worker once; whenever a worker is free the first task in list order whose
  ``after`` tasks are done starts there. Its progress line is logged as it starts, and the
  log lines the task wrote are logged, in order, when it ends (workers never write to the
  terminal themselves, so lines of two tasks never interleave).

Why processes: on a CPU the demo's encoders are small (16-64 channels), and two one-thread
processes do about 1.2x the work of one two-thread process (each op's threads wait on each
other); the stages are independent apart from the evaluations waiting for their pretraining.
Every task seeds its own random state (pretraining seeds, protocol seeds), so its result does
not depend on which process runs it or when; only the threads per process differ, which moves
float sums by round-off.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Container, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from .experiment import Experiment


@dataclass(frozen=True)
class Task:
    """One stage of a job: ``fn(exp, *args)`` after the tasks keyed in ``after``."""

    key: str
    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    after: tuple[str, ...] = ()
    #: Passed to the progress line: its result exists already / it resumes part-way.
    reused: bool = False
    partial: bool = False


@dataclass(frozen=True)
class WorkerPlan:
    """How many worker processes run a job's stages, with how many torch threads each."""

    workers: int
    threads: int | None

    @classmethod
    def resolve(cls, workers: int | None, device: str, cores: int | None = None) -> WorkerPlan:
        """``run.workers`` of the configuration: ``None`` (auto) is one process per core on a
        CPU with 2 to 4 cores (one thread each), one process on a GPU or a single core, and
        4 processes sharing the cores beyond that; ``1`` runs in this process."""
        n = cores if cores is not None else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else (os.cpu_count() or 1)
        if workers is None:
            workers = 1 if device != "cpu" or n < 2 else min(n, 4)
        workers = max(1, int(workers))
        return cls(workers, None if workers == 1 else max(1, n // workers))


@dataclass
class _State:
    exp: Experiment | None = None
    lines: list[str] = field(default_factory=list)


_WORKER = _State()


def _init_worker(exp: Experiment, threads: int | None) -> None:
    if threads:
        torch.set_num_threads(threads)
    _WORKER.exp = replace(exp, progress=False, log=_WORKER.lines.append)


def _run_in_worker(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, list[str]]:
    assert _WORKER.exp is not None, "worker not initialised"
    _WORKER.lines.clear()
    result = fn(_WORKER.exp, *args)
    return result, list(_WORKER.lines)


def run_tasks(exp: Experiment, tasks: Sequence[Task], plan: WorkerPlan,
              on_start: Callable[[Task], None] = lambda t: None,
              on_done: Callable[[Task], None] = lambda t: None) -> dict[str, Any]:
    """Run ``tasks`` (module docstring); ``{key: result}``. ``on_start`` / ``on_done`` are
    called in this process as each task starts and ends (the progress lines)."""
    keys = [t.key for t in tasks]
    if len(set(keys)) != len(keys):
        raise ValueError("two tasks share a key")
    unknown = sorted({a for t in tasks for a in t.after} - set(keys))
    if unknown:
        raise ValueError(f"tasks wait for unknown keys {unknown}")
    results: dict[str, Any] = {}
    if plan.workers <= 1:
        for task in _in_order(tasks):
            on_start(task)
            results[task.key] = task.fn(exp, *task.args)
            on_done(task)
        return results
    pending = list(tasks)
    running: dict[Future[tuple[Any, list[str]]], Task] = {}
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(plan.workers, mp_context=context, initializer=_init_worker,
                             initargs=(replace(exp, log=print), plan.threads)) as pool:
        while pending or running:
            while len(running) < plan.workers:
                ready = _next_ready(pending, results)
                if ready is None:
                    break
                pending.remove(ready)
                on_start(ready)
                running[pool.submit(_run_in_worker, ready.fn, ready.args)] = ready
            if not running:
                raise ValueError("tasks wait for each other")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                task = running.pop(future)
                result, lines = future.result()  # a task's exception ends the job here
                for line in lines:
                    exp.log(line)
                results[task.key] = result
                on_done(task)
    return results


def _next_ready(pending: Sequence[Task], done: Container[str]) -> Task | None:
    """The first of ``pending`` whose ``after`` tasks are all ``done`` (None: none is)."""
    return next((t for t in pending if all(a in done for a in t.after)), None)


def _in_order(tasks: Sequence[Task]) -> list[Task]:
    """``tasks`` in list order, each moved after the tasks it waits for."""
    done: set[str] = set()
    order: list[Task] = []
    pending = list(tasks)
    while pending:
        ready = _next_ready(pending, done)
        if ready is None:
            raise ValueError("tasks wait for each other")
        pending.remove(ready)
        order.append(ready)
        done.add(ready.key)
    return order


__all__ = ["Task", "WorkerPlan", "run_tasks"]
