"""SimAM energy/attention against hand-computed values, and the energy-based joint/frame drop."""

from __future__ import annotations

import math

import pytest
import torch

from ssal.models.simam import E_LAMBDA, simam_attention, simam_drop, simam_energy


def _energy_loops(x: torch.Tensor, lam: float = E_LAMBDA) -> list:
    """SimAM inverse energy with plain Python loops over a nested list copy of ``x``."""
    data = x.tolist()
    out = []
    for sample in data:
        out_s = []
        for chan in sample:
            values = [val for row in chan for val in row]
            m = len(values)
            mean = sum(values) / m
            var = sum((val - mean) ** 2 for val in values) / (m - 1)
            out_s.append([[(val - mean) ** 2 / (4 * (var + lam)) + 0.5 for val in row] for row in chan])
        out.append(out_s)
    return out


def test_energy_hand_computed_2x2() -> None:
    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])  # (1, 1, T=2, V=2), mean 3
    # d = 4, 1, 0, 9; sum d / (T V - 1) = 14 / 3
    denom = 4 * (14 / 3 + 1e-4)
    expected = [[4 / denom + 0.5, 1 / denom + 0.5], [0.5, 9 / denom + 0.5]]
    e = simam_energy(x)
    assert e.shape == x.shape
    assert torch.allclose(e[0, 0], torch.tensor(expected), atol=1e-6)
    att = simam_attention(x)
    expected_att = [[1 / (1 + math.exp(-v)) for v in row] for row in expected]
    assert torch.allclose(att[0, 0], torch.tensor(expected_att), atol=1e-6)
    # the element at the mean has the lowest attention, sigmoid(0.5)
    assert att[0, 0, 1, 0].item() == pytest.approx(1 / (1 + math.exp(-0.5)), abs=1e-6)


def test_energy_matches_loop_reference_per_channel() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    x[1, 2] = 7.0  # a constant channel: d = 0 everywhere, e = 0.5 exactly
    e = simam_energy(x)
    assert torch.allclose(e, torch.tensor(_energy_loops(x), dtype=torch.float64), atol=1e-12)
    assert torch.all(e[1, 2] == 0.5)


def test_attention_range() -> None:
    x = torch.randn(3, 4, 6, 7) * 5
    att = simam_attention(x)
    assert torch.all(att >= 1 / (1 + math.exp(-0.5)) - 1e-7)
    assert torch.all(att < 1)


def _drop_reference(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Per-sample loop version of the ``per_frame`` joint-then-frame drop."""
    out = x.clone()
    n, _, t, v = x.shape
    for i in range(n):
        s = out[i : i + 1]
        joint_score = simam_attention(s)[0].mean(dim=(0, 1))
        keep_j = [j for j in range(v) if joint_score[j] < threshold]
        s_j = torch.zeros_like(s)
        for j in keep_j:
            s_j[..., j] = s[..., j] * (v / len(keep_j))
        frame_score = simam_attention(s_j)[0].mean(dim=(0, 2))
        keep_t = [f for f in range(t) if frame_score[f] < threshold]
        s_t = torch.zeros_like(s)
        for f in keep_t:
            s_t[:, :, f] = s_j[:, :, f] * (t / len(keep_t))
        out[i] = s_t[0]
    return out


@pytest.mark.parametrize("threshold", [0.66, 0.68, 0.7])
def test_per_frame_drop_matches_reference(threshold: float) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 6, 8, 5, generator=g, dtype=torch.float64)
    x[0, :, :, 2] += 6.0  # a salient joint
    x[1, :, 3, :] += 6.0  # a salient frame
    x_before = x.clone()
    out = simam_drop(x, threshold, mode="per_frame")
    assert torch.equal(x, x_before), "simam_drop must not modify its input"
    assert torch.allclose(out, _drop_reference(x, threshold), atol=1e-12)
    assert 0 < (out == 0).double().mean() < 1  # something, not everything, was dropped


def test_per_frame_drop_zeroes_salient_joint_and_frame_rescales_rest() -> None:
    g = torch.Generator().manual_seed(2)
    n, c, t, v = 2, 8, 10, 6
    x = torch.randn(n, c, t, v, generator=g) * 0.1
    x[0, :, :, 4] += 5.0  # joint 4 of sample 0 stands out in every frame
    x[1, :, 7, :] += 5.0  # frame 7 of sample 1 stands out at every joint
    out = simam_drop(x, 0.7, mode="per_frame")
    joint_score0 = simam_attention(x[:1]).mean(dim=(1, 2))[0]
    assert joint_score0[4] >= 0.7 and (joint_score0[torch.arange(v) != 4] < 0.7).all()
    assert torch.all(out[0, :, :, 4] == 0)
    assert torch.all(out[1, :, 7, :] == 0)
    # Sample 0: only joint 4 dropped (frames of the joint-dropped map are then unremarkable).
    kept0 = out[0][:, :, torch.arange(v) != 4]
    assert torch.allclose(kept0, x[0][:, :, torch.arange(v) != 4] * v / (v - 1), atol=1e-5)
    # Sample 1: the joints are alike, so no joint is dropped; only frame 7, rescaled by T/(T-1).
    kept1 = out[1][:, torch.arange(t) != 7]
    assert torch.allclose(kept1, x[1][:, torch.arange(t) != 7] * t / (t - 1), atol=1e-5)


@pytest.mark.parametrize("mode", ["aimclr", "per_frame"])
def test_drop_threshold_extremes(mode: str) -> None:
    x = torch.randn(3, 4, 5, 6)
    assert torch.equal(simam_drop(x, threshold=1.01, mode=mode), x)  # nothing dropped, scale 1
    out = simam_drop(x, threshold=0.5, mode=mode)  # every score >= sigmoid(0.5) > 0.5: all dropped
    assert torch.all(out == 0) and torch.isfinite(out).all()


@pytest.mark.parametrize("mode", ["aimclr", "per_frame"])
def test_drop_gradient_only_through_kept_entries(mode: str) -> None:
    x = (torch.randn(2, 4, 6, 5) * 0.1).requires_grad_()
    with torch.no_grad():
        x[0, :, :, 1] += 4.0
    out = simam_drop(x, 0.7, mode=mode)
    out.sum().backward()
    dropped = out.detach() == 0
    assert torch.all(x.grad[0, :, :, 1] == 0)
    assert torch.all(x.grad[~dropped] > 0)


def _aimclr_drop_loops(x: torch.Tensor, keep_prob: float) -> torch.Tensor:
    """AimCLR's ``Simam_Drop`` written out step by step with loops (net/att_drop.py).

    Attention once on the input; joint mask (N, V) from att averaged over C and T, scaled by
    numel/sum over the whole batch; then the (N, C*V, T) view of att masked element-wise and
    scaled by its own numel/sum over the whole batch.
    """
    n, c, t, v = x.shape
    att = simam_attention(x)
    joint_keep = torch.zeros(n, v, dtype=x.dtype)
    for i in range(n):
        for j in range(v):
            score = sum(att[i, ch, f, j].item() for ch in range(c) for f in range(t)) / (c * t)
            joint_keep[i, j] = 0.0 if score >= keep_prob else 1.0
    joint_scale = joint_keep.numel() / joint_keep.sum().item()
    y = x.clone()
    for i in range(n):
        for j in range(v):
            y[i, :, :, j] = x[i, :, :, j] * joint_keep[i, j] * joint_scale
    att_t = att.permute(0, 1, 3, 2).reshape(n, c * v, t)  # AimCLR's (N, C*V, T) view
    entry_keep = (att_t < keep_prob).to(x.dtype)
    entry_scale = entry_keep.numel() / entry_keep.sum().item()
    y_t = y.permute(0, 1, 3, 2).reshape(n, c * v, t)
    out = torch.empty_like(y_t)
    for i in range(n):
        for row in range(c * v):
            for f in range(t):
                out[i, row, f] = y_t[i, row, f] * entry_keep[i, row, f] * entry_scale
    return out.view(n, c, v, t).permute(0, 1, 3, 2)


def test_aimclr_drop_equals_the_reference_formula_on_a_fixed_map() -> None:
    """Acceptance: on a fixed random (8, 64, 19, 16) map (a post-ReLU ST-GCN-like map) our drop
    zeroes exactly the entries AimCLR's formula zeroes and rescales like it."""
    g = torch.Generator().manual_seed(10)
    x = torch.relu(torch.randn(8, 64, 19, 16, generator=g, dtype=torch.float64) + 0.3)
    x[2, :, :, 5] += 3.0  # one salient joint, so the joint step drops something too
    ref = _aimclr_drop_loops(x, 0.7)
    out = simam_drop(x, 0.7)
    assert torch.equal(out == 0, ref == 0)
    assert torch.allclose(out, ref, rtol=1e-12, atol=1e-12)
    zeroed = (out == 0).double().mean().item() - (x == 0).double().mean().item()
    assert 0.05 < zeroed < 0.4, zeroed  # AimCLR's drop removes a sizeable share, not ~0
    # The joint step dropped joint 5 of sample 2 in every channel and frame.
    assert torch.all(out[2, :, :, 5] == 0)


def test_aimclr_drop_rescales_over_the_whole_batch() -> None:
    """A joint dropped in one sample changes the scale of every sample (batch-wide numel/sum)."""
    g = torch.Generator().manual_seed(11)
    x = torch.full((2, 3, 4, 5), 1.0, dtype=torch.float64)
    x += 1e-3 * torch.randn(2, 3, 4, 5, generator=g, dtype=torch.float64)
    x[0, :, :, 1] = 50.0  # joint 1 of sample 0 is far from its channel mean
    ref = _aimclr_drop_loops(x, 0.7)
    out = simam_drop(x, 0.7)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.all(out[0, :, :, 1] == 0)
    kept = out != 0
    ratio = out[kept] / x[kept]
    # One scale for every kept entry of the batch: sample 1, which lost no joint, is rescaled
    # exactly like sample 0 (a per-sample rescale would leave sample 1's joint step at 1).
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), atol=1e-12)
    assert ratio[0] > 10 / 9 - 1e-12  # at least the joint step's N*V/kept = 10/9


def test_aimclr_drop_is_element_wise_in_time() -> None:
    """The temporal step zeroes single entries, not whole frames."""
    x = torch.zeros(1, 2, 6, 4, dtype=torch.float64)
    x[0, 0, 3, 2] = 10.0  # one salient entry in channel 0
    x[0, 1] = torch.arange(24, dtype=torch.float64).view(6, 4) * 1e-3  # channel 1: smooth ramp
    out = simam_drop(x, 0.7)
    assert out[0, 0, 3, 2] == 0  # the salient entry went
    assert out[0, 1, 3, 2] != 0  # the same frame and joint in the other channel stayed
    assert torch.allclose(out, _aimclr_drop_loops(x, 0.7), atol=1e-12)


def test_unknown_drop_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        simam_drop(torch.randn(1, 2, 3, 4), mode="frames")


def _aimclr_drop_plain(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """The ``aimclr`` drop as whole-tensor operations, in the order of the module docstring."""
    n, c, t, v = x.shape
    with torch.no_grad():
        att = simam_attention(x)
    keep_joint = (att.mean(dim=(1, 2)) < threshold).to(x.dtype)
    y = x * (keep_joint * (keep_joint.numel() / keep_joint.sum().clamp_min(1.0))).view(n, 1, 1, v)
    keep = (att < threshold).to(x.dtype)
    return y * (keep * (keep.numel() / keep.sum().clamp_min(1.0)))


@pytest.mark.parametrize("chunk_floats", [1, 150, 1 << 20])
@pytest.mark.parametrize("channels_last", [False, True])
def test_chunked_aimclr_drop_equals_the_whole_tensor_form_bitwise(chunk_floats, channels_last, monkeypatch) -> None:
    """The chunked drop (one sample, a few samples, the whole batch per chunk) gives the plain
    form's values and gradients exactly, and its backward pass keeps no full-size float mask."""
    import ssal.models.simam as simam_module

    monkeypatch.setattr(simam_module, "DROP_CHUNK_FLOATS", chunk_floats)
    g = torch.Generator().manual_seed(12)
    x = torch.relu(torch.randn(7, 6, 5, 4, generator=g) + 0.2)
    x[3, :, :, 2] += 4.0
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    out = simam_drop(xa, 0.7)
    ref = _aimclr_drop_plain(xb, 0.7)
    assert torch.equal(out, ref) and (out == 0).any()
    saved = [t for t in out.grad_fn.saved_tensors if t.numel() == x.numel()]
    assert [t.dtype for t in saved] == [torch.bool]
    grad = torch.randn(out.shape, generator=g)
    out.backward(grad)
    ref.backward(grad)
    assert torch.equal(xa.grad, xb.grad)
