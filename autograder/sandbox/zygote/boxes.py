"""The boxes of one zygote: the processes of one submission, started so that all of them can be
ended for certain, and a record of how each ended.

Runs in the zygote. Where the level gives namespaces, a box is a fresh PID namespace. Its init
(PID 1 there) is a tiny program, `cat` reading a pipe nobody writes to, started with posix_spawn
(no copy of the zygote's memory) and with SIGCHLD ignored, so the kernel reaps every orphan of the
box at once. The box's first process is then forked from the zygote into the same namespace
(PID 2): it builds its private root there (box/confine.prepare, with a /proc of this namespace
only) and serves the grader (box/main.py). When the init dies, for any reason, the kernel SIGKILLs
every process left in its namespace (double-forked, setsid'd, stopped, a zombie leader with live
threads: all of them), and a pidfd on the init tells the grader when that has happened. When the
zygote ends, the pipe's only writer is gone: every init reads end-of-file and exits, and its box
with it.

This is the keeper/proxy/program split of ioi/isolate, with the grader as the keeper: it holds
the pidfd, enforces the deadlines and kills the init. Where the level has no PID namespace, the
zygote forks the first process alone and is the subreaper of everything it starts: a process
that leaves its session (double fork, setsid) is re-parented to the zygote, which ends every such
orphan before it starts the next box and when it ends.

Like isolate's meta file, the zygote keeps an exit record of each box's first process (exit
code or signal, CPU time, peak memory), for the grader to tell a student which limit they hit.
"""
from __future__ import annotations

import collections
import ctypes
import os
import select
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from autograder.sandbox.box import confine
from autograder.sandbox.shared.messages import Event, ExitRecord

_OWN_PID_NAMESPACE = "/proc/self/ns/pid"
PR_SET_CHILD_SUBREAPER = 36
EXIT_RECORDS_KEPT = 64  # the grader asks right after a box ended; older records are dropped
_libc = ctypes.CDLL(None, use_errno=True)


def _closed(pidfd: int) -> bool:
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
        """A new init in the PID namespace the zygote's next child goes to; returns its pid. It
        is started with SIGCHLD ignored, which it keeps across exec: its orphans are reaped at once."""
        handler = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
        try:
            return os.posix_spawn(self.argv[0], self.argv, {}, file_actions=[
                (os.POSIX_SPAWN_DUP2, self.read_end, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ], setsid=True)
        finally:
            signal.signal(signal.SIGCHLD, handler)

    def close(self) -> None:
        os.close(self.write_end)
        os.close(self.read_end)


@dataclass
class Box:
    handle: int  # the pid the grader ends the box by: its init, or its first process without a PID namespace
    first: int  # the box's first process (the zygote's child)
    pidfd: int | None  # the zygote's own pidfd on `handle`


class Boxes:
    """Starts boxes, reaps and records their first processes, and ends what they leave."""

    def __init__(self, pid_namespaces: bool):
        self.inits = Inits() if pid_namespaces else None
        self.live: list[Box] = []
        self.exits: collections.OrderedDict[int, dict] = collections.OrderedDict()  # by first-process pid
        self._by_handle: dict[int, int] = {}  # handle -> first process, for the grader's questions
        signal.signal(signal.SIGCHLD, self._on_child)
        if not pid_namespaces:  # orphans of a box come back to the zygote, which ends them
            _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    def _on_child(self, signum=None, frame=None) -> None:
        """Reap every exited child; keep the first processes' ends (status and resource use)."""
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self._by_handle.values():
                self.exits[pid] = {
                    "exit_code": os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else None,
                    "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                    "cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "max_rss_bytes": usage.ru_maxrss * 1024}
                while len(self.exits) > EXIT_RECORDS_KEPT:
                    self.exits.popitem(last=False)

    def start(self, request: dict, sock: socket.socket, files_fd: int | None, *, close_in_child: Callable[[], None],
              serve: Callable) -> Box:
        """Start one box for `request`; `sock` is the box's end of its socket to the grader."""
        self._forget_ended()
        if self.inits is None:
            self.sweep_orphans()
        own_namespace = init = None
        if self.inits is not None and request.get("pid_namespace", True):
            own_namespace = os.open(_OWN_PID_NAMESPACE, os.O_RDONLY | os.O_CLOEXEC)
            try:
                confine.unshare(confine.CLONE_NEWPID, "unshare PID namespace")
                init = self.inits.spawn()
            except OSError:  # no box namespace: the first process goes to the zygote's own
                confine.setns(own_namespace, confine.CLONE_NEWPID)
                os.close(own_namespace)
                own_namespace = init = None
        try:
            first = os.fork()
        except OSError:  # the new namespace's init is already gone
            first = -1
        if first == 0:
            close_in_child()
            if self.inits is not None:
                self.inits.close()
            for box in self.live:  # no box may signal another's init
                if box.pidfd is not None:
                    os.close(box.pidfd)
            if own_namespace is not None:
                os.close(own_namespace)
            _first_process(sock, request, files_fd, serve, in_pid_namespace=init is not None)
        if own_namespace is not None:  # the zygote's next children go to its own namespace again
            confine.setns(own_namespace, confine.CLONE_NEWPID)
            os.close(own_namespace)
        if first < 0:
            raise OSError("the box's first process could not be started")
        handle = init if init is not None else first
        try:
            pidfd = os.pidfd_open(handle)
        except (AttributeError, OSError):
            pidfd = None
        box = Box(handle, first, pidfd)
        self.live.append(box)
        self._by_handle[handle] = first
        while len(self._by_handle) > EXIT_RECORDS_KEPT:
            del self._by_handle[next(iter(self._by_handle))]
        return box

    def exit_record(self, handle: int, wait_s: float = 2.0) -> ExitRecord:
        """How the first process of the box the grader knows as `handle` ended; waits a little
        for it (the grader asks as soon as the box's socket closed)."""
        first = self._by_handle.get(handle)
        deadline = time.monotonic() + wait_s
        while first is not None and first not in self.exits and time.monotonic() < deadline:
            self._on_child()
            time.sleep(0.005)
        record = self.exits.get(first) if first is not None else None
        return {"event": Event.EXIT_RECORD, "pid": handle, "exited": record is not None, **(record or {})}

    def _forget_ended(self) -> None:
        for box in [b for b in self.live if b.pidfd is None or _closed(b.pidfd)]:
            self.live.remove(box)
            if box.pidfd is not None:
                os.close(box.pidfd)

    def sweep_orphans(self, patience_s: float = 2.0) -> None:
        """SIGKILL every child of the zygote that is no live box's first process: without a PID
        namespace, whatever a box left running comes back here as an orphan. Each is signalled
        through a pidfd opened while it is still the zygote's unreaped child (its pid cannot be
        reused before the zygote reaps it)."""
        deadline = time.monotonic() + patience_s
        while True:
            keep = {box.first for box in self.live if box.pidfd is not None and not _closed(box.pidfd)}
            orphans = [pid for pid in _children() if pid not in keep]
            if not orphans or time.monotonic() >= deadline:
                return
            for pid in orphans:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    continue
                try:
                    if _parent_of(pid) == _own_pid_in_proc():
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                except OSError:
                    pass
                finally:
                    os.close(pidfd)
            time.sleep(0.005)
            self._on_child()

    def end_all(self, wait_s: float = 5.0) -> None:
        """SIGKILL every box (their inits, or first processes) and wait until they are gone."""
        for box in self.live:
            if box.pidfd is not None:
                try:
                    signal.pidfd_send_signal(box.pidfd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait_s
        for box in self.live:  # a pidfd turns readable once its process has exited
            if box.pidfd is not None:
                select.select([box.pidfd], [], [], max(0.0, deadline - time.monotonic()))
        if self.inits is None:
            self.sweep_orphans()


def _own_pid_in_proc() -> int:
    """This process's pid as /proc shows it (os.getpid() is 1 in a zygote that is its own PID
    namespace's init, while /proc is the host's)."""
    return int(os.readlink("/proc/self"))


def _children() -> list[int]:
    """This process's children, from /proc (the zygote has one thread)."""
    try:
        with open("/proc/thread-self/children") as listed:
            return [int(pid) for pid in listed.read().split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: scan every process's parent
        me = _own_pid_in_proc()
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent_of(int(entry)) == me]


def _parent_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _join_cgroup(path: str | None) -> None:
    if path:
        with open(os.path.join(path, "cgroup.procs"), "w") as procs:
            procs.write("0")  # "0": the writing process itself, whatever its pid in this namespace


def _first_process(sock: socket.socket, request: dict, files_fd: int | None, serve: Callable,
                   in_pid_namespace: bool) -> None:
    """The box's first process; never returns. A box that cannot be confined as its level
    promises says why and ends: it never runs student code with less."""
    from autograder.sandbox.box.main import refuse_to_start

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    try:
        _join_cgroup(request.get("cgroup"))
        confine.prepare(request, files_fd, in_pid_namespace=in_pid_namespace)
    except BaseException as error:
        refuse_to_start(sock, f"its private filesystem could not be built ({error})")
    serve(sock, request)
    os._exit(0)
