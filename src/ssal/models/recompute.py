"""Recomputation of a whole module in the backward pass: keep its input, not its activations.

:func:`recomputed` runs ``module(x)`` as one autograd node that saves only ``x`` and the
module's parameters. The forward pass is the module's own forward, run once without building a
graph (BatchNorm layers in training mode update their running statistics there, once, exactly
as a plain call does). The backward pass runs the same forward again on detached copies of
``x`` and the parameters, with throw-away copies of the buffers (so running statistics are not
updated a second time), and differentiates it. Training-mode BatchNorm normalises with the
batch's own statistics, which the recomputation recomputes from the same input, so values and
gradients equal the plain call's.

This is :func:`torch.utils.checkpoint.checkpoint` made safe for modules with BatchNorm (a
checkpointed BatchNorm counts every batch twice) and with the parameters passed as inputs of
the node, so their gradients reach hooks (DDP) like any other. The image branch of CFFN uses it
for each AFF block (:class:`~ssal.models.aff.AFFBlock`): the FFTs, the complex MLP and the
channel MLP keep about 16 maps of the branch's size per block for the backward pass, where this
keeps one (benchmarks/RESULTS.md section 0 gives the memory and time of a training step).

The module's forward must accept ``recompute=False`` (the plain path) and draw no random
numbers. Under ``torch.compile`` callers use the plain path: the compiler plans the saved
tensors itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.func import functional_call

_ENABLED = [True]


@dataclass(frozen=True)
class AutocastState:
    """The autocast state a forward pass ran under, to run its recomputation under the same
    (as ``torch.utils.checkpoint`` does): under bf16 autocast an input may arrive in bf16 while
    the weights are fp32, and only autocast makes their products agree."""

    device_type: str
    enabled: bool
    dtype: torch.dtype

    @classmethod
    def of(cls, x: Tensor) -> AutocastState:
        """The current autocast state of ``x``'s device type."""
        device_type = x.device.type
        return cls(device_type, torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type))

    def restored(self) -> torch.autocast:
        """A context manager that enters this state."""
        return torch.autocast(self.device_type, dtype=self.dtype, enabled=self.enabled)


@contextmanager
def recompute_disabled() -> Iterator[None]:
    """Within this block :func:`recompute_applicable` says no: modules run their plain path
    (for comparisons of memory, time and gradients)."""
    _ENABLED.append(False)
    try:
        yield
    finally:
        _ENABLED.pop()


def recompute_applicable(module: nn.Module, x: Tensor) -> bool:
    """Whether ``module(x)`` should run through :func:`recomputed`: training mode, a graph is
    being built and something needs a gradient, not inside ``torch.compile``."""
    if not (_ENABLED[-1] and module.training and torch.is_grad_enabled()):
        return False
    if torch.compiler.is_compiling():
        return False
    return x.requires_grad or any(p.requires_grad for p in module.parameters())


#: The global module hooks of torch.nn (``register_module_forward_hook`` and the like).
_GLOBAL_HOOKS = ("_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
                 "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
                 "_global_is_full_backward_hook")


@contextmanager
def _without_global_module_hooks() -> Iterator[None]:
    """Global module hooks switched off for the recomputation: it is not a forward pass of the
    model, and tools that hook every module (``torch.utils.flop_counter.FlopCounterMode``'s
    module tracker) would register gradient hooks inside this node's backward pass, which the
    autograd engine refuses there. Their ops are still seen by dispatch modes (FLOP counting)."""
    from torch.nn.modules import module as nn_module

    saved = {name: getattr(nn_module, name, None) for name in _GLOBAL_HOOKS}
    if not any(saved.values()):  # nothing registered: the common case
        yield
        return
    try:
        for name, hooks in saved.items():
            if hooks is not None:
                setattr(nn_module, name, type(hooks)())
        yield
    finally:
        for name, hooks in saved.items():
            if hooks is not None:
                setattr(nn_module, name, hooks)


class _Recomputed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, module: nn.Module, names: tuple[str, ...], x: Tensor, *params: Tensor) -> Tensor:
        ctx.module, ctx.names = module, names
        ctx.autocast = AutocastState.of(x)
        ctx.save_for_backward(x, *params)
        return module(x, recompute=False)

    @staticmethod
    def backward(ctx, grad_y: Tensor):
        x, *params = ctx.saved_tensors
        needs = ctx.needs_input_grad[2:]
        leaves = [t.detach().requires_grad_(need) for t, need in zip((x, *params), needs)]
        state: dict[str, Tensor] = dict(zip(ctx.names, leaves[1:]))
        state.update({name: b.clone() for name, b in ctx.module.named_buffers()})
        with torch.enable_grad(), ctx.autocast.restored(), _without_global_module_hooks():
            y = functional_call(ctx.module, state, (leaves[0],), {"recompute": False}, strict=True)
        wanted = [t for t in leaves if t.requires_grad]
        grads = iter(torch.autograd.grad(y, wanted, grad_y, allow_unused=True) if wanted else ())
        return (None, None, *(next(grads) if t.requires_grad else None for t in leaves))


def recomputed(module: nn.Module, x: Tensor) -> Tensor:
    """``module(x, recompute=False)`` as one autograd node that keeps only ``x`` and the
    parameters for the backward pass (module docstring)."""
    named = list(module.named_parameters())
    return _Recomputed.apply(module, tuple(n for n, _ in named), x, *(p for _, p in named))


__all__ = ["AutocastState", "recompute_applicable", "recompute_disabled", "recomputed"]
