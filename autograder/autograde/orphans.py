"""Nothing an `autograde` run started outlives it, however its processes were hit.

A zygote whose parent died (a zygote server or a worker killed mid-run) is re-parented; if it was
also stopped (SIGSTOP) it never sees its control socket close, so it never ends by itself. The
command-line run therefore makes itself the child subreaper of everything it starts
(PR_SET_CHILD_SUBREAPER): every orphan of the run, at any depth, becomes its child. When the run
ends, every child it still has, except multiprocessing's own helpers, is killed and reaped, until
none is left. Only the command-line process does this: a library caller's other children are
its own (`adopting_orphans` is used by cli.py, never inside `autograde()`).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time

from autograder.sandbox.shared.processes import children_of

PR_SET_CHILD_SUBREAPER = 36
REAP_PATIENCE_S = 5.0  # a SIGKILLed process is gone in milliseconds; one in the kernel may take longer
MAX_ROUNDS = 16  # each round adopts the children of the processes the last one killed


def _multiprocessing_helpers() -> set[int]:
    """The forkserver and resource tracker: they end when this process exits, and the tracker
    still has clean-up to do then."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    helpers = set()
    for holder, name in ((getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid"),
                         (getattr(multiprocessing.resource_tracker, "_resource_tracker", None), "_pid")):
        pid = getattr(holder, name, None)
        if isinstance(pid, int):
            helpers.add(pid)
    return helpers


def end_leftover_children() -> list[int]:
    """SIGKILL and reap every child but multiprocessing's helpers, round after round (a killed
    child's own children are adopted next); returns the pids ended."""
    ended: list[int] = []
    keep = _multiprocessing_helpers()
    for _ in range(MAX_ROUNDS):
        leftovers = [pid for pid in children_of() if pid not in keep]
        if not leftovers:
            break
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + REAP_PATIENCE_S
        for pid in leftovers:
            while True:
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] or time.monotonic() >= deadline:
                        break
                except ChildProcessError:  # already reaped (by its own Popen)
                    break
                time.sleep(0.01)
        ended += leftovers
    return ended


@contextlib.contextmanager
def adopting_orphans():
    """Within the block this process adopts every orphan of what it starts; at its end, however
    it ends, every child left is ended."""
    libc = ctypes.CDLL(None, use_errno=True)
    adopted = libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    try:
        yield
    finally:
        if adopted:
            end_leftover_children()
            libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
