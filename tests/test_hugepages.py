"""The zygote's memory in huge pages (sandbox/zygote/hugepages.py): what is collapsed. How much of a
running zygote ends up in huge pages is machine state, measured by benchmarks/zygote_memory.py."""
from __future__ import annotations

from autograder.sandbox.zygote.hugepages import _private_anonymous_ranges

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
