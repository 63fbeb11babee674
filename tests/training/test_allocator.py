"""Host allocator policies: reuse keeps freed memory resident, release returns it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ssal.training.allocator import ALLOCATOR_POLICIES, _libc, set_allocator_policy

PROBE = """
import sys
from ssal.training.allocator import set_allocator_policy
import ctypes
took = set_allocator_policy(sys.argv[1])
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]

def rss_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

before = rss_mib()
blocks = [libc.malloc(48 << 20) for _ in range(4)]   # 4 x 48 MiB, touched
for b in blocks:
    libc.memset(b, 1, 48 << 20)
for b in blocks:
    libc.free(b)
print(took, round(rss_mib() - before))
"""


def _probe(policy: str) -> tuple[bool, float]:
    out = subprocess.run([sys.executable, "-c", PROBE, policy], capture_output=True, text=True, check=True)
    took, grown = out.stdout.split()
    return took == "True", float(grown)


def test_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="allocator policy must be one of"):
        set_allocator_policy("fast")


def test_system_policy_changes_nothing() -> None:
    assert set_allocator_policy("system") is False
    assert "system" in ALLOCATOR_POLICIES


@pytest.mark.skipif(_libc() is None, reason="needs glibc (Linux)")
def test_reuse_keeps_freed_blocks_and_release_returns_them() -> None:
    took, kept = _probe("reuse")
    assert took and kept > 150  # 192 MiB freed, still resident for the next step
    took, kept = _probe("release")
    assert took and kept < 40  # unmapped on free


@pytest.mark.skipif(_libc() is None, reason="needs glibc (Linux)")
def test_bounded_returns_large_blocks_only() -> None:
    took, kept = _probe("bounded")
    assert took and kept < 40  # 48 MiB blocks are above the bound: unmapped on free
    small = PROBE.replace("48 << 20", "8 << 20")
    out = subprocess.run([sys.executable, "-c", small, "bounded"], capture_output=True, text=True, check=True)
    assert float(out.stdout.split()[1]) > 25  # 4 x 8 MiB below the bound: kept for the next step
