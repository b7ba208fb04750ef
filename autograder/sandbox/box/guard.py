"""Running one piece of student code under a time limit, with its output and warnings captured,
and turning its failure into plain data: exception type, message and the student's own
traceback lines (frames from the grader, torch and the standard library are left out).

A time limit counts the CPU time the code uses, with a wall-clock ceiling above it
(shared/clocks.py): the load of the machine never decides whether a step finished in time.
"""
from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
import traceback
import warnings

import autograder
from autograder.sandbox.shared.clocks import wall_ceiling_s

OUTPUT_CAP_CHARS = 20_000
_HIDDEN_PREFIXES = tuple(
    {os.path.dirname(os.path.abspath(autograder.__file__)), sys.prefix, sys.base_prefix, sys.exec_prefix}
)


class StepTimeout(BaseException):
    """Raised inside student code when its time is up (a BaseException, as KeyboardInterrupt is,
    so that a bare `except Exception` in student code does not swallow it)."""


class CappedWriter(io.TextIOBase):
    """A text sink that keeps the first `cap` characters and counts the rest."""

    def __init__(self, cap: int = OUTPUT_CAP_CHARS):
        self.cap, self.kept, self.dropped = cap, [], 0
        self._size = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = self.cap - self._size
        if room > 0:
            self.kept.append(text[:room])
            self._size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def tell(self) -> int:
        """Characters kept so far."""
        return self._size

    def getvalue(self) -> str:
        tail = f"\n[... {self.dropped} more characters of output dropped]" if self.dropped else ""
        return "".join(self.kept) + tail


def student_traceback(error: BaseException) -> str:
    """The traceback of `error` restricted to frames from the student's own code."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith(_HIDDEN_PREFIXES)]
    lines = traceback.format_list(frames) + traceback.format_exception_only(type(error), error)
    return "".join(lines).rstrip()


def describe_error(error: BaseException) -> dict:
    return {"type": type(error).__name__[:200], "message": str(error)[:2000], "traceback": student_traceback(error)[:8000]}


@contextlib.contextmanager
def deadline(seconds: float | None, wall_s: float | None = None):
    """Raise StepTimeout in the main thread once the code in the block has used `seconds` of this
    process's CPU time (ITIMER_PROF counts every thread's), or once `wall_s` seconds have passed
    by the wall clock (default: the ceiling shared/clocks.py sets), whichever comes first; and
    again every wall-clock second after that, in case the student's code catches the first one.
    A busy machine therefore never turns finished work into a timeout, and a step that sleeps
    is still ended. The message is the same for both clocks."""
    usable = seconds and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return
    wall_s = wall_s or wall_ceiling_s(seconds)

    def _expire(signum, frame):
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 1.0, 1.0)  # from now on, every second, whatever it computes
        raise StepTimeout(f"did not finish within {seconds:g} s")

    previous = {number: signal.signal(number, _expire) for number in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, seconds)
    signal.setitimer(signal.ITIMER_REAL, wall_s)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def captured_output(cap: int = OUTPUT_CAP_CHARS):
    """Collect stdout, stderr and warnings of student code into one capped buffer."""
    sink = CappedWriter(cap)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("always")
        yield sink
    for item in caught:
        sink.write(f"{item.category.__name__}: {item.message}\n")
