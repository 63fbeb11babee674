"""Contrastive losses of the MoCo family, as small pure functions.

Notation (rows are samples, ``N`` the batch, ``D`` the feature size, ``K`` the queue size):

* ``q`` (N, D): L2-normalised queries; ``k`` (N, D): their L2-normalised positive keys;
* ``queue`` (K, D): L2-normalised negatives;
* ``logits`` (N, 1 + K): column 0 is the positive, columns 1.. the queue (:func:`moco_logits`).

Every function works on any device and dtype; nothing here keeps state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "barlow_twins_loss",
    "moco_logits",
    "info_nce",
    "info_nce_from_logits",
    "distribution_divergence",
    "neighbour_positive_mask",
    "multi_positive_nce",
    "positive_accuracy",
    "weighted_sum",
]


def moco_logits(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """Similarities of each query to its positive key and to every queued negative.

    ``logits[i] = [q_i . k_i, q_i . queue_1, ..., q_i . queue_K] / t``, shape (N, 1 + K).

    Args:
        q: (N, D) queries, L2-normalised.
        k: (N, D) positive keys, L2-normalised (row ``i`` is the positive of ``q[i]``).
        queue: (K, D) negatives, L2-normalised. Pass a detached copy when the queue is
            updated in place afterwards (the backward pass reads it).
        temperature: ``t > 0`` (a run's is ``model.temperature``).
    """
    if q.shape != k.shape or q.dim() != 2:
        raise ValueError(f"q and k must both be (N, D); got {tuple(q.shape)} and {tuple(k.shape)}")
    if queue.dim() != 2 or queue.shape[1] != q.shape[1]:
        raise ValueError(f"queue must be (K, {q.shape[1]}); got {tuple(queue.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    positive = (q * k).sum(dim=1, keepdim=True)
    negatives = q @ queue.t()
    return torch.cat([positive, negatives], dim=1) / temperature


def info_nce_from_logits(logits: Tensor) -> Tensor:
    """InfoNCE on precomputed :func:`moco_logits`: cross-entropy with target column 0.

    ``L = mean_i [ -logits[i, 0] + log sum_j exp(logits[i, j]) ]``.
    """
    target = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)
    return F.cross_entropy(logits, target)


def info_nce(q: Tensor, k: Tensor, queue: Tensor, temperature: float) -> Tensor:
    """InfoNCE of MoCo (L_Info): the positive key against the queued negatives.

    ``L = -mean_i log( exp(q_i.k_i / t) / (exp(q_i.k_i / t) + sum_j exp(q_i.queue_j / t)) )``.
    """
    return info_nce_from_logits(moco_logits(q, k, queue, temperature))


def distribution_divergence(logits_target: Tensor, *logits_others: Tensor) -> Tensor:
    """L_d: pull the similarity distributions of other views towards a (detached) target.

    AimCLR's D3M as used by SSAL: with ``p = softmax(logits_target)`` (no gradient flows into
    the target) and ``p_o = softmax(logits_o)`` for each other view ``o``,

    ``L_d = mean_o mean_i H(p_i, p_o,i) = mean_o mean_i ( -sum_j p_ij log p_o,ij )``,

    where ``log p_o`` is computed with ``log_softmax`` (stable for large logits).

    Args:
        logits_target: (N, M) logits of the target view (SSAL: the general query z2).
        logits_others: one or more (N, M) logits over the same keys (SSAL: z3 and z3').
    """
    if not logits_others:
        raise ValueError("distribution_divergence needs at least one other view")
    target = F.softmax(logits_target.detach(), dim=1)
    terms = []
    for other in logits_others:
        if other.shape != logits_target.shape:
            raise ValueError(
                f"logits shapes differ: target {tuple(logits_target.shape)}, other {tuple(other.shape)}"
            )
        terms.append(-(target * F.log_softmax(other, dim=1)).sum(dim=1).mean())
    return torch.stack(terms).mean()


@torch.no_grad()
def neighbour_positive_mask(negative_logits: Sequence[Tensor], topk: int) -> Tensor:
    """AimCLR's nearest-neighbour mining: the top-k queue entries of each view become positives.

    Args:
        negative_logits: one or more (N, K) query-to-queue similarities (the queue columns of
            :func:`moco_logits`); the top-k of each are marked, the union is returned.
        topk: neighbours taken from each view (``1 <= topk <= K``).

    Returns:
        A float mask (N, 1 + K): column 0 (the true positive) is always 1, column ``1 + j`` is 1
        when queue entry ``j`` is among the neighbours of any view.
    """
    first = negative_logits[0]
    n, k = first.shape
    if not 1 <= topk <= k:
        raise ValueError(f"topk must be in [1, {k}], got {topk}")
    mask = torch.zeros(n, 1 + k, dtype=first.dtype, device=first.device)
    mask[:, 0] = 1
    for neg in negative_logits:
        idx = neg.topk(topk, dim=1).indices + 1
        mask.scatter_(1, idx, 1.0)
    return mask


def multi_positive_nce(logits: Tensor, positive_mask: Tensor) -> Tensor:
    """InfoNCE with several positives per row (AimCLR's mining loss).

    ``L = mean_i [ -sum_j m_ij log_softmax(logits_i)_j / sum_j m_ij ]``; with only column 0
    marked this equals :func:`info_nce_from_logits`.
    """
    log_p = F.log_softmax(logits, dim=1)
    return (-(positive_mask * log_p).sum(dim=1) / positive_mask.sum(dim=1)).mean()


@torch.no_grad()
def positive_accuracy(logits: Tensor) -> Tensor:
    """Fraction of rows whose largest logit is the positive (column 0): a training monitor."""
    return (logits.argmax(dim=1) == 0).float().mean()


def weighted_sum(terms: Mapping[str, Tensor], weights: Mapping[str, float]) -> Tensor:
    """``L = sum_name weights[name] * terms[name]`` (SSAL: ``L = a L_Info + b L_d``, a = b = 1)."""
    if not terms:
        raise ValueError("no loss terms to combine")
    return torch.stack([weights[name] * value for name, value in terms.items()]).sum()


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambd: float) -> Tensor:
    """Barlow Twins' redundancy reduction (PSTL's ``BTwins.forward`` after its projector).

    Each view's projections are standardised per dimension over the batch (``BatchNorm1d``
    without affine: mean 0, biased variance 1, eps 1e-5), ``C = z1n.T @ z2n / N`` is their
    cross-correlation, and ``L = sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2``.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"two (N, D) projections of one shape expected, got {tuple(z1.shape)}, {tuple(z2.shape)}")
    n = z1.shape[0]
    z1n = F.batch_norm(z1, None, None, training=True, eps=1e-5)
    z2n = F.batch_norm(z2, None, None, training=True, eps=1e-5)
    c = z1n.T @ z2n / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diag + lambd * off_diag

