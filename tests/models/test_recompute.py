"""The recomputed AFF block (ssal.models.recompute): same values, gradients and running
statistics as the plain block, far fewer saved tensors."""

from __future__ import annotations

import copy

import pytest
import torch

from ssal.models.aff import AFFBackbone, AFFBlock
from ssal.models.recompute import recompute_applicable, recompute_disabled
from ssal.skeleton import EGAIT16


def _saved_bytes(fn) -> int:
    """Bytes of the distinct tensors autograd saves while ``fn()`` runs."""
    seen: dict[tuple[int, torch.dtype], int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        seen[(t.data_ptr(), t.dtype)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def _pair(seed: int = 0) -> tuple[AFFBackbone, AFFBackbone]:
    torch.manual_seed(seed)
    net = AFFBackbone(EGAIT16, channels=8, depth=2, num_blocks=2).train()
    return net, copy.deepcopy(net)


def test_recomputed_block_matches_plain_values_gradients_and_statistics():
    net, plain = _pair()
    x = torch.randn(6, 3, 20, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = net(xa)
    with recompute_disabled():
        yb = plain(xb)
    assert torch.equal(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-6)
    for (name, pa), pb in zip(net.named_parameters(), plain.parameters()):
        assert pa.grad is not None, name
        torch.testing.assert_close(pa.grad, pb.grad, rtol=0, atol=1e-6, msg=name)
    # running statistics counted once per call, as a plain call counts them
    for (name, ba), bb in zip(net.named_buffers(), plain.buffers()):
        assert torch.equal(ba, bb), name
    assert int(net.blocks[0].norm1.num_batches_tracked) == 1


def test_recomputed_block_keeps_far_fewer_saved_tensors():
    net, plain = _pair()
    x = torch.randn(16, 3, 40, 16)
    lean = _saved_bytes(lambda: net(x))
    with recompute_disabled():
        full = _saved_bytes(lambda: plain(x))
    # the plain blocks keep about 16 maps each, the recomputed ones their input only
    assert lean < 0.3 * full, (lean, full)


def test_frozen_parameters_and_input_gradient_only():
    net, plain = _pair(1)
    for m in (net, plain):
        for p in m.blocks.parameters():
            p.requires_grad_(False)
    x = torch.randn(4, 3, 12, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    net(xa).square().sum().backward()
    with recompute_disabled():
        plain(xb).square().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=0, atol=1e-5)
    assert all(p.grad is None for p in net.blocks.parameters())


def test_plain_path_in_eval_and_without_grad():
    block = AFFBlock(8, num_blocks=2).eval()
    x = torch.randn(2, 8, 6, 16, requires_grad=True)
    assert not recompute_applicable(block, x)
    block.train()
    assert recompute_applicable(block, x)
    with torch.no_grad():
        assert not recompute_applicable(block, x)
    with recompute_disabled():
        assert not recompute_applicable(block, x)


@pytest.mark.parametrize("dtype", [torch.bfloat16])
def test_recompute_under_autocast(dtype):
    net, plain = _pair(2)
    x = torch.randn(4, 3, 16, 16)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        ya = net(xa)
        with recompute_disabled():
            yb = plain(xb)
    torch.testing.assert_close(ya, yb, rtol=0, atol=0)
    ya.float().sum().backward()
    yb.float().sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-2, atol=1e-2)


def test_flop_counter_and_global_module_hooks_survive_the_backward_pass():
    """Tools that hook every module (FlopCounterMode's module tracker) run through a training
    step; the recomputation's FLOPs are counted (it runs the blocks' forward once more)."""
    from torch.utils.flop_counter import FlopCounterMode

    net, plain = _pair(3)
    x = torch.randn(4, 3, 16, 16)
    counts = []
    for model, ctx in ((net, None), (plain, recompute_disabled())):
        counter = FlopCounterMode(display=False)
        if ctx is not None:
            ctx.__enter__()
        try:
            with counter:
                model(x).sum().backward()
        finally:
            if ctx is not None:
                ctx.__exit__(None, None, None)
        counts.append(counter.get_total_flops())
    assert counts[0] > counts[1] > 0
    # global hooks are back in place after the step
    seen = []
    handle = torch.nn.modules.module.register_module_forward_hook(lambda m, i, o: seen.append(type(m).__name__))
    try:
        net(x).sum().backward()
    finally:
        handle.remove()
    assert "AFFBlock" in seen
