"""One box: the processes of one submission, started so that all of them can be ended for certain.

Runs in the zygote. Where the platform allows it (root, namespaces), a box is a fresh PID
namespace. Its init (PID 1 there) is a tiny program, `cat` reading a pipe nobody writes to,
started with posix_spawn (no copy of the zygote's memory) and with SIGCHLD ignored, so the kernel
reaps every orphan of the box at once. The sandbox kernel is then forked from the zygote into the
same namespace (PID 2): it builds its private root there (confine.prepare, with a /proc of this
namespace only) and serves the grader. When the init dies, for any reason, the kernel SIGKILLs
every process left in its namespace (double-forked, setsid'd, stopped, a zombie leader with live
threads: all of them), and a pidfd on the init tells the grader when that has happened. When the
zygote ends, the pipe's only writer is gone: every init reads end-of-file and exits, and its
box with it.

This is the keeper/proxy/program split of ioi/isolate, with the grader as the keeper: it holds
the pidfd, enforces the deadlines and kills the init. Where PID namespaces are refused, the
zygote forks the kernel alone (the box is then its uid, and cgroup where there is one).
"""
from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable

from autograder.sandbox.box import confine

_OWN_PID_NAMESPACE = "/proc/self/ns/pid"


def pid_namespace_available() -> bool:
    """Whether this process may make PID and mount namespaces (tried in a throwaway child)."""
    if os.geteuid() != 0 or not os.path.exists(_OWN_PID_NAMESPACE):
        return False
    pid = os.fork()
    if pid == 0:
        try:
            confine.unshare(confine.CLONE_NEWPID | confine.CLONE_NEWNS)
            grandchild = os.fork()
            if grandchild == 0:
                os._exit(0)
            os._exit(0 if os.waitpid(grandchild, 0)[1] == 0 else 1)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def end_boxes(pidfds: list[int], wait_s: float = 5.0) -> None:
    """SIGKILL the inits behind `pidfds` and wait until they are gone (the zygote ignores
    SIGCHLD, so the kernel reaps them: none is left a zombie for the host's init)."""
    for fd in pidfds:
        try:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + wait_s
    for fd in pidfds:  # a pidfd turns readable once its process has exited
        select.select([fd], [], [], max(0.0, deadline - time.monotonic()))


def ended(pidfd: int) -> bool:
    """Whether the process behind `pidfd` has exited."""
    return bool(select.select([pidfd], [], [], 0)[0])


class Inits:
    """Starts boxes' inits: `cat` with its stdin on a pipe whose write end only the zygote holds."""

    def __init__(self):
        self.read_end, self.write_end = os.pipe()
        cat = shutil.which("cat", path="/usr/bin:/bin")
        # Without cat, Python reading its stdin does the same (a slower start, about 20 ms).
        self.argv = [cat] if cat else [sys.executable, "-I", "-S", "-c", "import sys; sys.stdin.buffer.read()"]

    def spawn(self) -> int:
        """A new init in the PID namespace the zygote's next child goes to; returns its pid.
        It inherits the zygote's ignored SIGCHLD across exec: its orphans are reaped at once."""
        return os.posix_spawn(self.argv[0], self.argv, {}, file_actions=[
            (os.POSIX_SPAWN_DUP2, self.read_end, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
        ], setsid=True)


def _join_cgroup(path: str | None) -> None:
    if path:
        with open(os.path.join(path, "cgroup.procs"), "w") as procs:
            procs.write("0")  # "0": the writing process itself, whatever its pid in this namespace


def _kernel_main(sock: socket.socket, request: dict, files_fd: int | None, serve: Callable,
                 in_pid_namespace: bool) -> None:
    """The sandbox process; never returns."""
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _join_cgroup(request.get("cgroup"))
        confine.prepare(request, files_fd, in_pid_namespace=in_pid_namespace)
    except BaseException:
        os._exit(1)
    serve(sock, request)
    os._exit(0)


def start(request: dict, sock: socket.socket, files_fd: int | None, *, inits: Inits | None,
          close_in_child: Callable[[], None], serve: Callable) -> tuple[int, int | None]:
    """Start one box for `request`; `sock` is the sandbox's end of its socket to the grader.
    Returns (the pid the grader ends the box by: the init's, or the kernel's without a PID
    namespace; a pidfd on it, or None where pidfds are missing)."""
    own_namespace = init = None
    if inits is not None:
        own_namespace = os.open(_OWN_PID_NAMESPACE, os.O_RDONLY)
        try:
            confine.unshare(confine.CLONE_NEWPID, "unshare PID namespace")
            init = inits.spawn()
        except OSError:  # no box namespace: the kernel goes to the zygote's own
            confine.setns(own_namespace, confine.CLONE_NEWPID)
            os.close(own_namespace)
            own_namespace = init = None
    try:
        kernel = os.fork()
    except OSError:  # the new namespace's init is already gone
        kernel = -1
    if kernel == 0:
        close_in_child()
        if own_namespace is not None:
            os.close(own_namespace)
        _kernel_main(sock, request, files_fd, serve, in_pid_namespace=init is not None)
    if own_namespace is not None:  # the zygote's next children go to its own namespace again
        confine.setns(own_namespace, confine.CLONE_NEWPID)
        os.close(own_namespace)
    if kernel < 0:
        raise OSError("the box's first process could not be started")
    target = init if init is not None else kernel
    try:
        pidfd = os.pidfd_open(target)
    except (AttributeError, OSError):
        pidfd = None
    return target, pidfd
