"""Shared test settings.

Tests use tiny models, for which extra intra-op threads only add synchronisation cost (and,
on a loaded 2-core machine, spinning threads slow everything down): one thread per process.
Real data files shipped beside the checkout (``../shared/data``) are found through
:func:`shared_data`; tests that need them skip where they are absent, as on a user's machine.
The benchmark's corpus cache (``$SSAL_CACHE_DIR``) points into the test's temporary folders, a
fresh one per test, so that no test writes to the user's cache or reads another test's entries.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


def shared_data(*parts: str) -> Path:
    """Path of a file under the shared data folder (``$SSAL_SHARED_DATA`` or ``<repo>/../shared/data``)."""
    root = Path(os.environ.get("SSAL_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    return root.joinpath(*parts)


@pytest.fixture
def require_shared():
    """Return a function that gives a shared data path or skips the test when it is missing."""

    def get(*parts: str) -> Path:
        path = shared_data(*parts)
        if not path.exists():
            pytest.skip(f"shared data {path} not present")
        return path

    return get


@pytest.fixture(scope="session", autouse=True)
def _corpus_cache_root(tmp_path_factory):
    """The session's cache folders; ``$SSAL_CACHE_DIR`` of module- and session-wide fixtures."""
    root = tmp_path_factory.mktemp("corpus-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SSAL_CACHE_DIR", str(root / "shared"))
        yield root


@pytest.fixture(autouse=True)
def _private_corpus_cache(_corpus_cache_root, monkeypatch):
    """``$SSAL_CACHE_DIR`` of every test: a folder of its own (created only when written)."""
    monkeypatch.setenv("SSAL_CACHE_DIR", str(_corpus_cache_root / uuid.uuid4().hex[:12]))
