"""Running one piece of student code under a deadline, with its output and warnings captured,
and turning its failure into plain data: exception type, message and the student's own
traceback lines (frames from the grader, torch and the standard library are left out).
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
def deadline(seconds: float | None):
    """Raise StepTimeout in the main thread after `seconds`, and again every second after that
    in case the student's code catches the first one."""
    usable = seconds and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def _expire(signum, frame):
        raise StepTimeout(f"did not finish within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def captured_output(cap: int = OUTPUT_CAP_CHARS):
    """Collect stdout, stderr and warnings of student code into one capped buffer."""
    sink = CappedWriter(cap)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("always")
        yield sink
    for item in caught:
        sink.write(f"{item.category.__name__}: {item.message}\n")
