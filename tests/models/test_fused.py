"""The memory-lean BN -> ReLU -> conv node equals the three modules, and the bit dropout mask."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from same_step import assert_same_step  # tests/same_step.py
from ssal.models.fused import bn_relu_conv, fused_applicable
from ssal.models.stgcn import MaskDropout, _half_keep_mask


def _pair(c_in: int = 6, c_out: int = 5, stride: int = 2) -> tuple[nn.BatchNorm2d, nn.Conv2d]:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(c_in)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    conv = nn.Conv2d(c_in, c_out, (9, 1), (stride, 1), (4, 0))
    return bn, conv


@pytest.mark.parametrize("channels_last, spectral", [(False, False), (True, False), (True, True), (False, True)])
def test_fused_node_equals_the_modules_values_gradients_and_running_stats(channels_last: bool, spectral: bool,
                                                                          monkeypatch) -> None:
    """Also with the temporal convolution through a DFT over time (ssal.models.spectral; the
    threshold lowered so that these narrow layers take it)."""
    import ssal.models.spectral as spectral_module

    if spectral:
        monkeypatch.setattr(spectral_module, "TRAIN_MIN_CHANNELS", 1)
        monkeypatch.setattr(spectral_module, "TRAIN_MIN_FRAMES", 1)
    bn, conv = _pair()
    bn2, conv2 = copy.deepcopy(bn), copy.deepcopy(conv)
    x = torch.randn(4, 6, 21, 7) * 2 + 0.3
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    assert fused_applicable(xa, bn)
    assert spectral_module.train_applicable(xa, conv.weight, conv.stride, conv.padding) is spectral
    ya = bn_relu_conv(xa, bn, conv)
    yb = conv2(torch.relu(bn2(xb)))
    assert ya.shape == yb.shape == (4, 5, 11, 7)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
    for pa, pb in [(bn.weight, bn2.weight), (bn.bias, bn2.bias), (conv.weight, conv2.weight), (conv.bias, conv2.bias)]:
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(bn.running_mean, bn2.running_mean)
    torch.testing.assert_close(bn.running_var, bn2.running_var)
    assert int(bn.num_batches_tracked) == int(bn2.num_batches_tracked) == 1


def test_fused_node_keeps_only_the_bn_input_for_backward() -> None:
    """The saved full-size tensors are the input alone (the ReLU output is not kept)."""
    bn, conv = _pair(stride=1)
    x = torch.randn(4, 6, 21, 7, requires_grad=True)
    big = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.numel() >= x.numel():
            big.append(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        bn_relu_conv(x, bn, conv)
    assert len(set(big)) == 1
    big.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        conv(torch.relu(bn(x)))
    assert len(set(big)) == 2  # the modules keep the BN input and the ReLU output


def test_fused_node_is_not_used_where_semantics_differ() -> None:
    bn, conv = _pair()
    x = torch.randn(2, 6, 9, 3)
    bn.eval()
    assert not fused_applicable(x, bn)
    bn.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not fused_applicable(x, bn)
    bn.eval()
    torch.testing.assert_close(bn_relu_conv(x, bn, conv), conv(torch.relu(bn(x))))


@pytest.mark.parametrize("channels_last", [False, True])
def test_half_keep_mask_is_a_fair_coin_in_the_input_layout(channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.randn(8, 16, 30, 17)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    m = _half_keep_mask(x)
    assert m.shape == x.shape and m.dtype == torch.bool
    assert m.is_contiguous(memory_format=torch.channels_last) == channels_last
    frac = m.float().mean().item()
    assert abs(frac - 0.5) < 0.01  # 65,280 fair coins: std 0.002
    # neighbouring entries are independent: P(both kept) = 1/4
    pair = (m[..., 1:] & m[..., :-1]).float().mean().item()
    assert abs(pair - 0.25) < 0.01
    assert not torch.equal(m, _half_keep_mask(x))


def test_mask_dropout_half_scales_kept_entries_by_two() -> None:
    torch.manual_seed(0)
    drop = MaskDropout(0.5).train()
    x = torch.ones(4, 8, 10, 5).contiguous(memory_format=torch.channels_last)
    y = drop(x)
    assert set(torch.unique(y).tolist()) == {0.0, 2.0}
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(drop.eval()(x), x)


def _block(stride: int = 1, c_in: int = 6, c_out: int = 6, dropout: float = 0.0):
    from ssal.models.stgcn import STGCNBlock
    from ssal.skeleton import EGAIT16

    torch.manual_seed(1)
    block = STGCNBlock(c_in, c_out, 3, EGAIT16.num_joints, stride=stride, dropout=dropout)
    with torch.no_grad():
        block.edge_importance.uniform_(0.5, 1.5)
        block.gcn.bias.uniform_(-0.5, 0.5)
        for bn in (block.tcn[0], block.tcn[3]):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-0.5, 0.5)
    adjacency = torch.from_numpy(EGAIT16.adjacency()).float()
    return block, adjacency


def _layer_by_modules(block: nn.Module, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """An ST-GCN layer with its modules called one by one (no fused node)."""
    a = adjacency * block.edge_importance
    bn1, _, conv, bn2, drop = block.tcn
    return torch.relu(drop(bn2(conv(torch.relu(bn1(block.gcn(x, a)))))) + block.residual(x))


@pytest.mark.parametrize("stride,c_out,spectral", [(1, 6, False), (2, 8, False), (1, 6, True), (2, 8, True)])
def test_graph_node_equals_the_modules_values_gradients_and_running_stats(stride: int, c_out: int, spectral: bool,
                                                                          monkeypatch) -> None:
    """The ST-GCN layer's training path (graph conv -> BN -> ReLU -> conv as one node) against
    the same modules called one by one, on a channels-last input as the backbone runs it; also
    with the temporal convolution through a DFT over time."""
    import ssal.models.spectral as spectral_module
    from ssal.models.stgcn import graph_bn_relu_conv

    if spectral:
        monkeypatch.setattr(spectral_module, "TRAIN_MIN_CHANNELS", 1)
        monkeypatch.setattr(spectral_module, "TRAIN_MIN_FRAMES", 1)

    block, adjacency = _block(stride, 6, c_out)
    ref = copy.deepcopy(block)
    x = (torch.randn(4, 6, 20, 16) * 2 + 0.3).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya = block(xa, adjacency)
    a = adjacency * ref.edge_importance
    bn1, _, conv, bn2, _ = ref.tcn
    yb = torch.relu(bn2(conv(torch.relu(bn1(ref.gcn(xb, a))))) + ref.residual(xb))
    assert_same_step(block, ref, xa, xb, ya, yb)
    # the layer keeps its input for the backward pass, not the graph convolution's output
    big: list[int] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.numel() >= x.numel() * c_out // 6 // stride:
            big.append(t.data_ptr())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        graph_bn_relu_conv(xa, a.detach(), block.gcn, block.tcn[0], block.tcn[2])
    assert set(big) == {xa.data_ptr()}


@pytest.mark.parametrize("channels_last", [True, False])
def test_bias_gradient_sum_equals_the_two_axis_sum(channels_last: bool) -> None:
    from ssal.models.stgcn import sum_over_batch_and_time

    g = torch.randn(3, 5, 7, 4, dtype=torch.float64)
    if channels_last:
        g = g.contiguous(memory_format=torch.channels_last)
    slow = torch.zeros(5, 4, dtype=torch.float64)
    for n in range(3):
        for t in range(7):
            slow += g[n, :, t, :]
    got = sum_over_batch_and_time(g)
    assert got.shape == (5, 4)
    torch.testing.assert_close(got, slow)


@pytest.mark.parametrize("stride,c_out,dropout,chunk,last", [(1, 6, 0.5, 16, False), (2, 8, 0.5, 1 << 20, False),
                                                          (2, 8, 0.0, 16, False), (1, 6, 0.5, 16, True)])
def test_layer_tail_node_equals_the_modules_with_the_same_dropout_draw(stride: int, c_out: int, dropout: float,
                                                                      chunk: int, last: bool, monkeypatch) -> None:
    """BN -> dropout -> + residual -> ReLU as one node (ssal.models.fused.bn_dropout_add_relu)
    against the modules one by one, drawing the same mask from the same generator state; the
    mask applied in chunks of 16 entries too (``DROP_CHUNK``), with a ragged last chunk."""
    import ssal.models.fused as fused

    monkeypatch.setattr(fused, "DROP_CHUNK", chunk)
    block, adjacency = _block(stride, 6, c_out, dropout)
    ref = copy.deepcopy(block)
    x = (torch.randn(3, 6, 21, 16) * 2 + 0.3).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    torch.manual_seed(7)
    ya = block(xa, adjacency, last=last)
    torch.manual_seed(7)
    yb = _layer_by_modules(ref, xb, adjacency)
    if dropout:
        assert 0.3 < (yb == 0).float().mean().item() < 0.9  # the dropout did drop
    assert_same_step(block, ref, xa, xb, ya, yb)


def test_layer_tail_node_keeps_the_mask_as_bits() -> None:
    """The tail saves BatchNorm's input, its output and 1 byte per 8 mask entries: no bool mask,
    no dropout output."""
    from ssal.models.fused import bn_dropout_add_relu

    bn = nn.BatchNorm2d(8).train()
    y = torch.randn(4, 8, 10, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    res = torch.randn(4, 8, 10, 16).contiguous(memory_format=torch.channels_last).requires_grad_()
    saved: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = bn_dropout_add_relu(y, bn, 0.5, res)
    assert out is not None and out.is_contiguous(memory_format=torch.channels_last)
    big = [t for t in saved if t.numel() == y.numel()]
    assert len(big) == 2 and all(t.dtype == torch.float32 for t in big)
    bits = [t for t in saved if t.dtype == torch.uint8]
    assert len(bits) == 1 and bits[0].numel() == y.numel() // 8
    assert not [t for t in saved if t.dtype == torch.bool]
    # the last layer's tail keeps a byte per entry for the ReLU instead of its output
    saved.clear()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = bn_dropout_add_relu(y, bn, 0.5, res, keep_output=False)
    assert out is not None
    assert [t.dtype for t in saved if t.numel() == y.numel()] == [torch.float32, torch.uint8]
    # not applicable: another rate, eval mode, a residual of another shape
    assert bn_dropout_add_relu(y, bn, 0.3, res) is None
    assert bn_dropout_add_relu(y, bn, 0.5, res[:, :4]) is None
    assert bn_dropout_add_relu(y, bn.eval(), 0.5, res) is None


def test_residual_conv_bn_node_keeps_only_its_input_and_equals_the_modules() -> None:
    from ssal.models.fused import conv_bn

    torch.manual_seed(3)
    conv, bn = nn.Conv2d(6, 10, 1, (2, 1)), nn.BatchNorm2d(10).train()
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    conv_b, bn_b = copy.deepcopy(conv), copy.deepcopy(bn)
    x = torch.randn(4, 6, 11, 16).contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    big: list[torch.Tensor] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 4 and t.shape[0] == 4:
            big.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        ya = conv_bn(xa, conv, bn)
    assert len(big) == 1 and big[0] is xa
    yb = bn_b(conv_b(xb))
    torch.testing.assert_close(ya, yb)
    g = torch.randn_like(ya)
    ya.backward(g)
    yb.backward(g)
    torch.testing.assert_close(xa.grad, xb.grad, rtol=1e-4, atol=1e-5)
    for pa, pb in zip([*conv.parameters(), *bn.parameters()], [*conv_b.parameters(), *bn_b.parameters()]):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_mean, bn_b.running_mean)
    torch.testing.assert_close(bn.running_var, bn_b.running_var)


def test_key_encoder_forward_without_grad_equals_the_modules() -> None:
    """MoCo's key encoder runs training-mode BatchNorm without grad: the layer's nodes run their
    forward only, with the same values and running statistics as the modules."""
    block, adjacency = _block(2, 6, 8, 0.5)
    ref = copy.deepcopy(block)
    x = (torch.randn(3, 6, 21, 16) * 2 + 0.3).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert fused_applicable(x, block.tcn[0])
        torch.manual_seed(7)
        ya = block(x, adjacency, last=True)
        torch.manual_seed(7)
        yb = _layer_by_modules(ref, x, adjacency)
    torch.testing.assert_close(ya, yb, rtol=1e-5, atol=1e-5)
    for ba, bb in zip(block.buffers(), ref.buffers()):
        torch.testing.assert_close(ba, bb)


def test_the_dft_forward_runs_with_and_without_grad(monkeypatch) -> None:
    """Found by profiling: grad is always off inside ``Function.forward``, so a choice made from
    the grad mode there turned the DFT form off everywhere. It is made from the shapes only: the
    query views (grad) and the key encoder (no grad) both take it."""
    import ssal.models.spectral as spectral_module

    monkeypatch.setattr(spectral_module, "TRAIN_MIN_CHANNELS", 1)
    monkeypatch.setattr(spectral_module, "TRAIN_MIN_FRAMES", 1)
    calls: list[bool] = []
    real = spectral_module.conv_forward

    def spy(*args, **kwargs):
        calls.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(spectral_module, "conv_forward", spy)
    block, adjacency = _block(1, 6, 6, 0.5)
    x = torch.randn(2, 6, 20, 16).contiguous(memory_format=torch.channels_last)
    block(x.requires_grad_(), adjacency)
    assert len(calls) == 1
    with torch.no_grad():
        block(x, adjacency)
    assert len(calls) == 2
