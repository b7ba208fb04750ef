"""One box: the processes of one submission, started so that all of them can be ended for certain.

Runs in the zygote. Where the platform allows it (root, namespaces), a box is a fresh PID
namespace: the zygote forks the box's init (PID 1 there), which joins the box's cgroup (if any),
builds the private root (confine.prepare) and forks the sandbox kernel, then only reaps orphans
until the kernel ends. When the init dies, for any reason, the kernel SIGKILLs every process
left in its namespace (double-forked, setsid'd, stopped, a zombie leader with live threads: all
of them), and a pidfd on the init tells the grader when that has happened.

This is the keeper/proxy/program split of ioi/isolate, with the grader as the keeper: it holds
the pidfd, enforces the deadlines and kills the init. Where PID namespaces are refused, the
zygote forks the kernel directly (the old layout) and the grader ends it by its uid instead.
"""
from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable

from autograder.sandbox import confine

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


def reap_finished_boxes() -> None:
    """Reap the zygote's exited children (their pidfds keep working for the grader meanwhile)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def _join_cgroup(path: str | None) -> None:
    if path:
        with open(os.path.join(path, "cgroup.procs"), "w") as procs:
            procs.write("0")  # "0": the writing process itself, whatever its pid in this namespace


def _init_main(sock: socket.socket, request: dict, files_fd: int | None, serve: Callable) -> None:
    """PID 1 of the box; never returns."""
    try:
        confine._libc.prctl(confine.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the zygote died: end the box
        _join_cgroup(request.get("cgroup"))
        confine.prepare(request, files_fd, in_pid_namespace=True)
        kernel = os.fork()
        if kernel == 0:
            serve(sock, request)
            os._exit(0)
        sock.close()
        while True:  # reap orphans; the box ends with its kernel
            try:
                pid, _ = os.wait()
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            if pid == kernel:
                break
    except BaseException:
        pass
    os._exit(0)


def start(request: dict, sock: socket.socket, files_fd: int | None, *, use_pid_namespace: bool,
          close_in_child: Callable[[], None], serve: Callable) -> tuple[int, int | None]:
    """Fork one box for `request`; `sock` is the sandbox's end of its socket to the grader.
    Returns (pid of the box's first process, a pidfd on it, or None where pidfds are missing)."""
    own_namespace = None
    if use_pid_namespace:
        own_namespace = os.open(_OWN_PID_NAMESPACE, os.O_RDONLY)
        try:
            confine.unshare(confine.CLONE_NEWPID, "unshare PID namespace")
        except OSError:
            os.close(own_namespace)
            own_namespace, use_pid_namespace = None, False
    pid = os.fork()
    if pid == 0:
        close_in_child()
        if own_namespace is not None:
            os.close(own_namespace)
        if use_pid_namespace:
            _init_main(sock, request, files_fd, serve)
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _join_cgroup(request.get("cgroup"))
            confine.prepare(request, files_fd, in_pid_namespace=False)
        except BaseException:
            os._exit(1)
        serve(sock, request)
        os._exit(0)
    if own_namespace is not None:  # the next fork of the zygote goes to the zygote's own namespace again
        confine.setns(own_namespace, confine.CLONE_NEWPID)
        os.close(own_namespace)
    try:
        pidfd = os.pidfd_open(pid)  # the child is not reaped before this: the zygote reaps later
    except (AttributeError, OSError):
        pidfd = None
    return pid, pidfd
