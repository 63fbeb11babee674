"""``torchrun`` entry of tests/training/test_distributed.py: ``ssal pretrain`` with per-rank dumps.

Run as ``torchrun ... tests/training/dist_hooks.py DUMP_DIR pretrain --out ...``: the ``ssal`` command
line after ``DUMP_DIR`` runs unchanged, with :class:`ssal.training.engine.PretrainCallbacks` that record
the last step's local and gathered keys (:func:`install_key_recorder`) and make every rank write
``DUMP_DIR/rank<r>.pt`` at the end (its learner state, the keys, the step count and history).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import ssal.training.engine as engine
from ssal.cli.main import main
from ssal.training.distributed import DistContext


def install_key_recorder(learner: nn.Module) -> dict[str, Tensor]:
    """Remember the last step's local keys, gathered keys and queue pointer.

    Wraps the ``gather_cat`` the learner enqueues its keys through (``ssal.methods.moco``'s
    name for ``ssal.training.distributed.gather_cat``) and returns the record it fills.
    """
    import ssal.methods.moco as moco

    original = moco.gather_cat
    record: dict[str, Tensor] = {}

    def gather(keys: Tensor) -> Tensor:
        record["ptr_before"] = learner.queue.ptr.detach().cpu().clone()
        record["local"] = keys.detach().float().cpu().clone()
        out = original(keys)
        record["gathered"] = out.detach().float().cpu().clone()
        record["steps"] = record.get("steps", torch.zeros((), dtype=torch.long)) + 1
        return out

    moco.gather_cat = gather
    return record


def make_callbacks(folder: Path) -> engine.PretrainCallbacks:
    """Callbacks that write ``folder/rank<r>.pt`` at the end of the run."""
    keys: dict[str, Tensor] = {}

    def built(_ctx: DistContext, learner: nn.Module) -> None:
        nonlocal keys
        keys = install_key_recorder(learner)

    def finished(ctx: DistContext, learner: nn.Module, result: Any) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {
            "rank": ctx.rank, "world_size": ctx.world_size, "active": ctx.active,
            "model": {k: v.detach().cpu().clone() for k, v in learner.state_dict().items()},
            "keys": dict(keys), "global_step": result.steps_done, "history": result.history,
        }
        torch.save(state, folder / f"rank{ctx.rank}.pt")

    return engine.PretrainCallbacks(on_learner_built=built, on_finished=finished)


if __name__ == "__main__":
    callbacks = make_callbacks(Path(sys.argv[1]))
    plain = engine.pretrain
    # The command line imports ``pretrain`` from ssal.training.engine when it runs.
    engine.pretrain = lambda *args, **kwargs: plain(*args, callbacks=callbacks, **kwargs)
    sys.exit(main(sys.argv[2:]))
