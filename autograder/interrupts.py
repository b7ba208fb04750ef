"""Ctrl-C and SIGTERM as one exception, `Interrupted`, so that a verb stops the same way for
both: it ends what it started (workers, zygotes, boxes, a writer), keeps what it finished, and
says so in one line instead of a traceback.

SIGTERM's default action ends a process at once, with no clean-up; a batch's workers and their
boxes then outlived it. Under `stop_on_signals()` both signals raise `Interrupted` in the main
thread instead; later ones are ignored while the verb stops (that is bounded: a few seconds).
"""
from __future__ import annotations

import contextlib
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The run was asked to stop by `signum` (a KeyboardInterrupt, as Ctrl-C is)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

    @property
    def by(self) -> str:
        return "Ctrl-C (SIGINT)" if self.signum == signal.SIGINT else signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        return 128 + self.signum  # what a shell reports for a process a signal ended


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGINT and SIGTERM raise Interrupted in this (the main) thread; outside a
    main thread the block runs unchanged (signal handlers can only be set there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        global _requested
        for each in STOP_SIGNALS:  # the run is stopping: a second Ctrl-C must not cut its clean-up short
            signal.signal(each, signal.SIG_IGN)
        _requested = Interrupted(signum)
        raise _requested

    global _requested
    _requested = None
    previous = {each: signal.signal(each, stop) for each in STOP_SIGNALS}
    try:
        yield
    finally:
        _requested = None
        for each, handler in previous.items():
            signal.signal(each, handler)


_requested: Interrupted | None = None  # the stop asked for in the current block, if any


def raise_if_stopped() -> None:
    """Raise the Interrupted asked for in this block, if code in between swallowed it (pytest
    catches KeyboardInterrupt to end its session cleanly)."""
    if _requested is not None:
        raise _requested
