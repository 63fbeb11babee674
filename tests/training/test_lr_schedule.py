"""``train.schedule`` and ``train.optimizer``: the cosine schedule against PSTL's
``adjust_learning_rate`` written out, and the optimiser each name builds."""

from __future__ import annotations

import math

import pytest
import torch

from ssal.config.schema import TrainConfig
from ssal.errors import SsalInputError
from ssal.training.engine import build_optimizer, schedule_factor


def _reference_lr(epoch: int, max_epoch: int, lr_max: float, warmup: int, lr_min: float = 0.0) -> float:
    """PSTL ``procedure.py`` ``BaseProcessor.adjust_learning_rate``, as written there."""
    if epoch < warmup:
        return lr_max * epoch / warmup
    return lr_min + (lr_max - lr_min) * (1 + math.cos(math.pi * (epoch - warmup) / (max_epoch - warmup))) / 2


def _train(**changes):
    from dataclasses import asdict

    return {**asdict(TrainConfig()), **changes}


@pytest.mark.parametrize("min_lr", [0.0, 1e-3])
def test_cosine_is_the_references(min_lr):
    train = _train(schedule="cosine", lr=5e-3, epochs=150, warmup_epochs=10, min_lr=min_lr)
    factor = schedule_factor(train)
    for epoch in (0, 1, 9, 10, 11, 80, 149):
        assert 5e-3 * factor(epoch) == pytest.approx(_reference_lr(epoch, 150, 5e-3, 10, min_lr), rel=1e-12, abs=1e-15)
    assert factor(0) == 0.0 and factor(10) == 1.0


def test_engine_scheduler_steps_the_cosine_per_epoch():
    train = _train(schedule="cosine", lr=0.1, epochs=4, warmup_epochs=0, optimizer="adam")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([p], train)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule_factor(train))
    seen = []
    for _ in range(4):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.1, 0.1 * (1 + math.cos(math.pi / 4)) / 2, 0.05, 0.1 * (1 + math.cos(3 * math.pi / 4)) / 2])


def test_step_schedule_is_unchanged():
    factor = schedule_factor(_train(lr_milestones=[2], lr_gamma=0.1, warmup_epochs=0))
    assert [factor(e) for e in range(4)] == pytest.approx([1, 1, 0.1, 0.1])


def test_optimizers_by_name():
    p = [torch.nn.Parameter(torch.zeros(2))]
    assert type(build_optimizer(p, _train(optimizer="adam"))) is torch.optim.Adam
    assert type(build_optimizer(p, _train(optimizer="adamw"))) is torch.optim.AdamW
    assert type(build_optimizer(p, _train())) is torch.optim.SGD
    with pytest.raises(SsalInputError, match="unknown optimizer"):
        build_optimizer(p, _train(optimizer="lamb"))
