"""Ending what a box's code left running, from inside the box: every process of the box but the
caller. Used by a clean room once its definitions are made (nothing may outlive them: defence in
depth, since no code of the submission runs while they are made) and by a room template before
each check's room (room_template.py).

Only in a box with its own PID namespace, as its unprivileged uid: there kill(-1, SIGKILL) reaches
the box's processes and nothing else (the init is root's and out of reach). Elsewhere it would
reach the grader's own processes, and nothing is done.
"""
from __future__ import annotations

import os
import signal
import time

from autograder.sandbox.shared.processes import live_processes_of

END_OTHERS_PATIENCE_S = 2.0


def safe_here() -> bool:
    """kill(-1) may be used: an unprivileged uid in the box's own PID namespace."""
    from autograder.sandbox.box import confine

    return os.getuid() != 0 and confine.in_own_pid_namespace()


def end_other_processes(patience_s: float = END_OTHERS_PATIENCE_S) -> bool:
    """SIGKILL every process of the box but this one, and reap this one's children. True when
    none is left. kill(-1) spares the caller and the namespace's init; a fork racing with it is
    cancelled by the kernel (the forking process has the signal pending)."""
    me, uid = os.getpid(), os.getuid()
    give_up = time.monotonic() + patience_s
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        # PID 1 is the box's init, which kill(-1) spares: it runs as the box's uid where the box
        # has no sandbox uid (in a user namespace), and is not the box's to end.
        if not [pid for pid in live_processes_of(uid) if pid not in (me, 1)]:
            return True
        if time.monotonic() >= give_up:
            return False
        time.sleep(0.001)
