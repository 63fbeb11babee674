"""The ring-buffer queue of negatives."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ssal.methods.queue import FeatureQueue


def tagged(values: list[float]) -> torch.Tensor:
    """Keys (B, 2) whose first coordinate names them."""
    return torch.tensor([[v, 0.0] for v in values]).reshape(len(values), 2)


def first_column(queue: FeatureQueue) -> list[float]:
    return queue.features[:, 0].tolist()


def test_init_is_random_unit_vectors_and_empty() -> None:
    q = FeatureQueue(7, 4, generator=torch.Generator().manual_seed(0))
    assert q.features.shape == (7, 4)
    torch.testing.assert_close(q.features.norm(dim=1), torch.ones(7))
    assert q.features.std() > 0.1
    assert int(q.ptr) == 0 and int(q.filled) == 0


def test_wraps_around_with_batches_not_dividing_size() -> None:
    q = FeatureQueue(5, 2)
    init = q.features.clone()
    q.enqueue(tagged([0, 1, 2]))
    assert int(q.ptr) == 3 and int(q.filled) == 3
    assert first_column(q)[:3] == [0, 1, 2]
    torch.testing.assert_close(q.features[3:], init[3:])  # untouched rows keep the init

    q.enqueue(tagged([3, 4, 5]))  # rows 3, 4 then wrap to row 0
    assert first_column(q) == [5, 1, 2, 3, 4]
    assert int(q.ptr) == 1 and int(q.filled) == 5

    q.enqueue(tagged([6, 7, 8]))
    assert first_column(q) == [5, 6, 7, 8, 4]
    assert int(q.ptr) == 4 and int(q.filled) == 5


def test_batch_larger_than_queue_keeps_the_last_keys() -> None:
    q = FeatureQueue(5, 2)
    q.enqueue(tagged([0, 1, 2, 3]))
    q.enqueue(tagged([10, 11, 12, 13, 14, 15, 16]))  # keys i -> row (4 + i) % 5
    assert first_column(q) == [16, 12, 13, 14, 15]
    assert int(q.ptr) == (4 + 7) % 5 and int(q.filled) == 5


def test_empty_batch_is_a_no_op_and_bad_shapes_raise() -> None:
    q = FeatureQueue(4, 3)
    before = q.features.clone()
    q.enqueue(torch.zeros(0, 3))
    torch.testing.assert_close(q.features, before)
    assert int(q.ptr) == 0
    with pytest.raises(ValueError):
        q.enqueue(torch.zeros(2, 5))
    with pytest.raises(ValueError):
        FeatureQueue(0, 3)


@settings(max_examples=40, deadline=None)
@given(size=st.integers(1, 9), batches=st.lists(st.integers(0, 20), max_size=8))
def test_matches_writing_keys_one_by_one(size: int, batches: list[int]) -> None:
    q = FeatureQueue(size, 2)
    expected = first_column(q)
    ptr, count, counter = 0, 0, 0
    for b in batches:
        values = [float(counter + i) for i in range(b)]
        counter += b
        q.enqueue(tagged(values))
        for v in values:
            expected[ptr] = v
            ptr = (ptr + 1) % size
        count = min(count + b, size)
    assert first_column(q) == expected
    assert int(q.ptr) == ptr and int(q.filled) == count


def test_state_dict_round_trip_restores_contents_and_pointer() -> None:
    q = FeatureQueue(6, 3)
    q.enqueue(torch.randn(4, 3))
    state = q.state_dict()
    assert set(state) == {"features", "ptr", "filled"}
    other = FeatureQueue(6, 3)
    other.load_state_dict(state)
    torch.testing.assert_close(other.features, q.features)
    assert int(other.ptr) == 4 and int(other.filled) == 4


def test_keys_are_stored_detached_in_buffer_dtype() -> None:
    q = FeatureQueue(3, 2)
    keys = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    q.enqueue(keys)
    assert q.features.dtype == torch.float32 and not q.features.requires_grad
    torch.testing.assert_close(q.features[:2], keys.detach().float())
