"""The zygote's memory in huge pages (sandbox/hugepages.py): what is collapsed, and that the
running zygote's private memory is mostly huge pages where the kernel can do it."""
from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path

import pytest

from autograder.sandbox.zygote.hugepages import HUGE_PAGE_BYTES, MADV_COLLAPSE, _private_anonymous_ranges

MAPS = """\
55d0c0000000-55d0c6000000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0002c00000 rw-p 00000000 00:00 0
7f0002c00000-7f0002e00000 r--p 00000000 00:00 0
7f0003000000-7f0003200000 rw-p 00443000 fe:00 26933                      /usr/lib/libpython3.11.so
7f0004000000-7f0004100000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_private_anonymous_writable_memory_is_collapsed():
    assert _private_anonymous_ranges(MAPS) == [(0x55D0C0000000, 0x55D0C6000000), (0x7F0000000000, 0x7F0002C00000)]


def _collapse_works_here() -> bool:
    """MADV_COLLAPSE on a fresh 4 MiB region, in a child (it may fail for many reasons)."""
    enabled = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not enabled.exists() or "[never]" in enabled.read_text():
        return False
    pid = os.fork()
    if pid == 0:
        region = mmap.mmap(-1, 2 * HUGE_PAGE_BYTES, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        region.write(b"x" * len(region))
        address = ctypes.addressof(ctypes.c_char.from_buffer(region))
        first = -(-address // HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES
        madvise = ctypes.CDLL(None, use_errno=True).madvise
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        os._exit(0 if madvise(first, HUGE_PAGE_BYTES, MADV_COLLAPSE) == 0 else 1)
    return os.waitpid(pid, 0)[1] == 0


def test_the_zygotes_private_memory_is_mostly_huge_pages(zygote):
    if not _collapse_works_here():
        pytest.skip("this kernel cannot collapse memory into transparent huge pages (Linux 6.1+, THP not 'never')")
    assert isinstance(zygote.pid_namespace, bool)  # waits for the zygote's "ready", sent once its memory is collapsed
    rollup = dict(line.split(":", 1) for line in Path(f"/proc/{zygote.process.pid}/smaps_rollup").read_text().splitlines()[1:])
    anonymous, huge = (int(rollup[key].split()[0]) for key in ("Anonymous", "AnonHugePages"))
    assert huge >= 0.5 * anonymous, f"{huge} kB of {anonymous} kB private memory in huge pages"
