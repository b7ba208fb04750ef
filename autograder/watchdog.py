"""A deadline for the grader's own process, kept by another process.

Every deadline on a sandbox is enforced from outside it (client.py), but the grader also does
work of its own on what a student sent (parsing, labelling, rendering); a slip there, such as a
regex that turned quadratic on a crafted line, held `grade`, and so Gradescope's run_autograder,
until killed from outside with no result at all. A thread cannot keep this deadline (a C call
such as a regex match holds the GIL), so a forked process does: if the grader has not finished
by the deadline, the watchdog ends it (SIGKILL) and prints the fallback result in its place.

Exactly one of the two prints: the grader disarms the watchdog (kills it and reaps it) before it
prints; the watchdog kills the grader before it prints. The fallback is rendered before the
fork, so the watchdog only writes bytes; it ends by itself if the grader ends first (the pipe
between them closes).
"""
from __future__ import annotations

import os
import select
import signal
import sys


class Watchdog:
    def __init__(self, seconds: float, fallback: str):
        self.seconds, self.fallback = seconds, fallback.encode("utf-8", "replace") + b"\n"
        self.pid: int | None = None

    def __enter__(self) -> Watchdog:
        sys.stdout.flush()
        read_end, write_end = os.pipe()
        grader = os.getpid()
        pid = os.fork()
        if pid == 0:  # the watchdog: waits for the deadline, or for the grader to end (EOF)
            os.close(write_end)
            try:
                ready, _, _ = select.select([read_end], [], [], self.seconds)
                if not ready:
                    os.kill(grader, signal.SIGKILL)
                    os.write(sys.stdout.fileno(), self.fallback)
            finally:
                os._exit(0)
        os.close(read_end)
        self._write_end, self.pid = write_end, pid
        return self

    def disarm(self) -> None:
        """Before the grader prints: from here on, only the grader's output is written."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self._write_end)
        self.pid = None

    def __exit__(self, *_) -> None:
        self.disarm()
