"""Losses of ssal.methods.losses against slow, hand-written references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ssal.methods.losses import (
    distribution_divergence,
    info_nce,
    info_nce_from_logits,
    moco_logits,
    multi_positive_nce,
    neighbour_positive_mask,
    positive_accuracy,
    weighted_sum,
)


def unit_rows(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=1)


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b))


def reference_info_nce(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, t: float) -> float:
    """The MoCo loss written out with math.exp / math.log, one sample at a time."""
    total = 0.0
    for qi, ki in zip(q.tolist(), k.tolist()):
        pos = math.exp(dot(qi, ki) / t)
        neg = sum(math.exp(dot(qi, kj) / t) for kj in queue.tolist())
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def reference_cross_entropy(target_logits: list[float], other_logits: list[float]) -> float:
    """H(softmax(target), softmax(other)) with a max shift so large logits stay finite."""
    mt, mo = max(target_logits), max(other_logits)
    et = [math.exp(v - mt) for v in target_logits]
    p = [e / sum(et) for e in et]
    log_z = mo + math.log(sum(math.exp(v - mo) for v in other_logits))
    return -sum(pi * (v - log_z) for pi, v in zip(p, other_logits))


# ---------------------------------------------------------------------- InfoNCE


def test_info_nce_tiny_example_by_hand() -> None:
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[1.0, 0.0]])
    queue = torch.tensor([[0.0, 1.0]])
    # logits = [1, 0]; loss = -log(e / (e + 1)) = log(1 + e^-1)
    assert info_nce(q, k, queue, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # halving t doubles the logits: [2, 0]
    assert info_nce(q, k, queue, temperature=0.5).item() == pytest.approx(math.log(1 + math.exp(-2)))


@pytest.mark.parametrize("batch", [1, 4])
@pytest.mark.parametrize("dim", [2, 7])
@pytest.mark.parametrize("temperature", [0.07, 0.5, 1.0])
@pytest.mark.parametrize("queue_size", [1, 3, 16])
def test_info_nce_matches_reference(batch: int, dim: int, temperature: float, queue_size: int) -> None:
    q, k = unit_rows(batch, dim, 0), unit_rows(batch, dim, 1)
    queue = unit_rows(queue_size, dim, 2)
    got = info_nce(q, k, queue, temperature).item()
    assert got == pytest.approx(reference_info_nce(q, k, queue, temperature), rel=1e-9, abs=1e-9)


def test_moco_logits_layout() -> None:
    q, k, queue = unit_rows(3, 4, 0), unit_rows(3, 4, 1), unit_rows(5, 4, 2)
    logits = moco_logits(q, k, queue, 0.1)
    assert logits.shape == (3, 6)
    torch.testing.assert_close(logits[:, 0], (q * k).sum(1) / 0.1)
    torch.testing.assert_close(logits[:, 1:], q @ queue.T / 0.1)
    assert info_nce_from_logits(logits).item() == pytest.approx(info_nce(q, k, queue, 0.1).item())


def test_info_nce_gradient_is_correct() -> None:
    q = unit_rows(3, 4, 0).requires_grad_(True)
    k, queue = unit_rows(3, 4, 1), unit_rows(6, 4, 2)
    assert torch.autograd.gradcheck(lambda a: info_nce(a, k, queue, 0.2), (q,))


def test_info_nce_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        moco_logits(unit_rows(2, 3, 0), unit_rows(3, 3, 1), unit_rows(4, 3, 2), 0.1)
    with pytest.raises(ValueError):
        moco_logits(unit_rows(2, 3, 0), unit_rows(2, 3, 1), unit_rows(4, 5, 2), 0.1)
    with pytest.raises(ValueError):
        moco_logits(unit_rows(2, 3, 0), unit_rows(2, 3, 1), unit_rows(4, 3, 2), temperature=0.0)


def test_positive_accuracy_counts_rows_where_positive_wins() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [5.0, 4.9, -1.0], [0.0, 0.0, 1.0]])
    assert positive_accuracy(logits).item() == pytest.approx(0.5)


# ---------------------------------------------------------------------- L_d


@pytest.mark.parametrize("n_others", [1, 2, 3])
def test_distribution_divergence_matches_reference(n_others: int) -> None:
    g = torch.Generator().manual_seed(3)
    target = torch.randn(4, 6, generator=g, dtype=torch.float64)
    others = [torch.randn(4, 6, generator=g, dtype=torch.float64) for _ in range(n_others)]
    expected = sum(
        sum(reference_cross_entropy(t, o) for t, o in zip(target.tolist(), other.tolist())) / 4
        for other in others
    ) / n_others
    assert distribution_divergence(target, *others).item() == pytest.approx(expected, rel=1e-10)


def test_distribution_divergence_of_a_view_with_itself_is_its_entropy() -> None:
    logits = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.25)]])
    entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert distribution_divergence(logits, logits.clone()).item() == pytest.approx(entropy)


def test_distribution_divergence_target_gets_no_gradient() -> None:
    target = torch.randn(3, 5, requires_grad=True)
    other = torch.randn(3, 5, requires_grad=True)
    distribution_divergence(target, other).backward()
    assert target.grad is None
    assert other.grad is not None and other.grad.abs().sum() > 0
    # d/d other of H(p, softmax(other)) = (softmax(other) - p) / N
    expected = (F.softmax(other.detach(), 1) - F.softmax(target.detach(), 1)) / 3
    torch.testing.assert_close(other.grad, expected)


def test_distribution_divergence_is_stable_for_large_logits() -> None:
    target = torch.tensor([[1000.0, 990.0, -1000.0]])
    other = torch.tensor([[-800.0, 900.0, 1000.0]])
    got = distribution_divergence(target, other)
    assert torch.isfinite(got)
    expected = reference_cross_entropy(target[0].tolist(), other[0].tolist())
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_distribution_divergence_needs_another_view_of_same_shape() -> None:
    with pytest.raises(ValueError):
        distribution_divergence(torch.zeros(2, 3))
    with pytest.raises(ValueError):
        distribution_divergence(torch.zeros(2, 3), torch.zeros(2, 4))


# ---------------------------------------------------------------------- mining, combination


def test_neighbour_mask_marks_top_k_of_each_view() -> None:
    view_a = torch.tensor([[0.1, 0.9, 0.5, 0.0]])
    view_b = torch.tensor([[0.8, 0.0, 0.1, 0.2]])
    assert neighbour_positive_mask([view_a], 1).tolist() == [[1, 0, 1, 0, 0]]
    assert neighbour_positive_mask([view_a], 2).tolist() == [[1, 0, 1, 1, 0]]
    assert neighbour_positive_mask([view_a, view_b], 1).tolist() == [[1, 1, 1, 0, 0]]
    with pytest.raises(ValueError):
        neighbour_positive_mask([view_a], 5)


def test_multi_positive_nce_by_hand() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.0]])
    log_z = math.log(math.e + math.e**2 + 1)
    only_first = torch.tensor([[1.0, 0.0, 0.0]])
    assert multi_positive_nce(logits, only_first).item() == pytest.approx(info_nce_from_logits(logits).item())
    two = torch.tensor([[1.0, 1.0, 0.0]])
    assert multi_positive_nce(logits, two).item() == pytest.approx(-((1 - log_z) + (2 - log_z)) / 2)


def test_weighted_sum() -> None:
    terms = {"info": torch.tensor(2.0), "ld": torch.tensor(3.0)}
    assert weighted_sum(terms, {"info": 1.0, "ld": 1.0}).item() == pytest.approx(5.0)
    assert weighted_sum(terms, {"info": 0.5, "ld": 2.0}).item() == pytest.approx(7.0)
    with pytest.raises(ValueError):
        weighted_sum({}, {})


def test_temperature_has_no_default_here() -> None:
    """The one default of the temperature is the schema's (model.temperature)."""
    import inspect

    for fn in (moco_logits, info_nce):
        assert inspect.signature(fn).parameters["temperature"].default is inspect.Parameter.empty
