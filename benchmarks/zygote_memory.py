"""How much of a warm zygote's private memory lies in huge pages, and what a fork of it costs.

    .venv/bin/python benchmarks/zygote_memory.py

sandbox/zygote/hugepages.py collapses the zygote's private memory into 2 MiB pages so that each
fork copies a few hundred page-table entries instead of tens of thousands. Whether the kernel
can do it is machine state (Linux 6.1+, transparent huge pages not "never", memory free), so it
is measured here, not asserted in a test. Prints the fraction and the median time of a fork and
exit of a process holding the same memory, with and without the collapse.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def huge_fraction(pid: int) -> tuple[int, int]:
    rollup = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:])
    return int(rollup["Anonymous"].split()[0]), int(rollup["AnonHugePages"].split()[0])


def fork_ms(rounds: int = 50) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    from autograder.sandbox.grader.zygotes import Zygote

    with Zygote() as zygote:
        zygote.confinement  # noqa: B018  waits for its "ready", sent once its memory is collapsed
        anonymous, huge = huge_fraction(zygote.process.pid)
        print(f"zygote: {huge / 1024:.0f} MiB of {anonymous / 1024:.0f} MiB private memory in huge pages "
              f"({100 * huge / max(anonymous, 1):.0f}%)")
    os.environ["MPLBACKEND"] = "Agg"
    import matplotlib.pyplot  # noqa: F401  what a zygote holds
    import torch  # noqa: F401

    from autograder.sandbox.zygote import hugepages

    before = fork_ms()
    hugepages.collapse_into_huge_pages()
    after = fork_ms()
    print(f"fork and exit of a process holding torch and matplotlib: {before:.1f} ms in 4 KiB pages, "
          f"{after:.1f} ms once collapsed ({before / max(after, 1e-9):.1f}x)")


if __name__ == "__main__":
    main()
