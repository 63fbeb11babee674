"""Host memory allocator policy of a CPU training run (glibc ``mallopt``).

PyTorch allocates CPU tensors with the C library's ``malloc``. glibc serves blocks above its
mmap threshold (dynamic, at most 32 MiB) with fresh ``mmap`` pages and unmaps them on free, so
every large temporary of a training step (activations, gradients, oneDNN's reorder buffers) is
page-faulted and zeroed by the kernel again at each step. Measured on a 2-core CPU with the
``aimclr`` training step (batch 128, T = 75; ``benchmarks/bench_pretrain.py --allocator``),
this costs about a third of the step. The policies:

* ``"reuse"``: large blocks come from the heap and freed memory is kept for the next step
  (``M_MMAP_THRESHOLD`` and ``M_TRIM_THRESHOLD`` 1 GiB). Fastest; the resident set stays at the
  heap's high-water mark, which fragmentation puts above the live peak.
* ``"release"``: every block above 1 MiB is its own mapping, returned on free (fixed
  ``M_MMAP_THRESHOLD`` 1 MiB). The resident set follows the live tensors: lowest peak memory,
  slowest step.
* ``"bounded"``: blocks up to 32 MiB come from the heap and stay resident (``reuse``'s
  thresholds), larger ones are their own mappings, returned on free. The many small and
  mid-sized temporaries avoid page faults while the largest activations, whose reuse is what
  fragments the heap, follow the live tensors.
* ``"system"``: glibc's defaults, untouched.

Where the C library is not glibc (macOS, Windows, musl) every policy is a no-op. The policy is
process-wide: it also applies to whatever else runs in the process after it is set.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: Policy names accepted by :func:`set_allocator_policy`.
from ..config.schema import ALLOCATOR_POLICIES  # noqa: E402 - the choices of run.allocator

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_GIB = 1 << 30
_MIB = 1 << 20
#: ``bounded``: blocks above this many MiB are mmapped and returned on free.
BOUNDED_MMAP_MIB = 32


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - glibc only
        return libc
    except (OSError, AttributeError):
        return None


def set_allocator_policy(policy: str) -> bool:
    """Apply ``policy`` (one of :data:`ALLOCATOR_POLICIES`); returns whether glibc took it.

    Raises ``ValueError`` for an unknown policy name.
    """
    if policy not in ALLOCATOR_POLICIES:
        raise ValueError(f"allocator policy must be one of {ALLOCATOR_POLICIES}, got {policy!r}")
    if policy == "system":
        return False
    libc = _libc()
    if libc is None:
        return False
    if policy == "reuse":
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _GIB) and libc.mallopt(_M_TRIM_THRESHOLD, _GIB)
    elif policy == "bounded":
        ok = libc.mallopt(_M_MMAP_THRESHOLD, BOUNDED_MMAP_MIB * _MIB) and libc.mallopt(_M_TRIM_THRESHOLD, _GIB)
    else:
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MIB) and libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
    return bool(ok)


__all__ = ["ALLOCATOR_POLICIES", "BOUNDED_MMAP_MIB", "set_allocator_policy"]
