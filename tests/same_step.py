"""A shared check of the fused/matmul training forms against the modules they replace."""

from __future__ import annotations

import torch
from torch import nn


def assert_same_step(block: nn.Module, ref: nn.Module, xa: torch.Tensor, xb: torch.Tensor, ya: torch.Tensor,
                     yb: torch.Tensor) -> None:
    """Outputs, input and parameter gradients (one backward pass of the same random gradient)
    and buffers (running statistics) of ``block`` equal ``ref``'s."""
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-4)
    for (name, pa), pb in zip(block.named_parameters(), ref.parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-4, msg=name)
    for ba, bb in zip(block.buffers(), ref.buffers()):
        torch.testing.assert_close(ba, bb)
