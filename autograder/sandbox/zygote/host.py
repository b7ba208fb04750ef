"""What this host lets the zygote do for its boxes, found by trying it at start-up.

Nothing is assumed from the uid alone: root in a container may lack CAP_SYS_ADMIN and be refused
new namespaces; an ordinary account may have unprivileged user namespaces, or not. Each property
is tried in a throwaway child (or, for the user namespace, in the zygote itself, which must then
stay in it), and the answer goes to the grader in the zygote's "ready" message, where
grader/confinement.py chooses the level.

`probe` must run before torch is imported: entering a user namespace needs a single thread.
"""
from __future__ import annotations

import os
import platform
import signal

from autograder.sandbox.box import confine, landlock, syscall_filter
from autograder.sandbox.zygote import user_namespace


class ProbeInterrupted(RuntimeError):
    """A probe's child was killed from outside (SIGKILL: an out-of-memory kill, an operator): its
    answer says nothing about the host. Read as a refusal it would lower the level of the whole
    run; the zygote ends instead, and the grader starts another (a grader fault, retried)."""


def _killed_from_outside(status: int) -> bool:
    """Whether a wait status is SIGKILL's. (A seccomp filter that kills ends a process with SIGSYS:
    that is the host refusing, and is read as such.)"""
    return os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL


def _status(pid: int) -> int:
    """The child's wait status; ProbeInterrupted if SIGKILL ended it."""
    status = os.waitpid(pid, 0)[1]
    if _killed_from_outside(status):
        raise ProbeInterrupted("a child of the host probe was killed (SIGKILL) from outside")
    return status


def _in_child(attempt) -> bool:
    """Whether `attempt()` succeeds in a forked child (which then exits); nothing here changes."""
    pid = os.fork()
    if pid == 0:
        try:
            attempt()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return _status(pid) == 0


NO_FRESH_PROC = 3  # a child's exit status: the namespaces were made, but no fresh /proc in them


def _namespaces() -> None:
    """A PID namespace with a process in it, the other namespaces a box gets, and in them what a
    box's private root needs: a fresh /proc (confine.try_fresh_proc)."""
    confine.unshare(confine.CLONE_NEWPID | confine.CLONE_NEWNS | confine.CLONE_NEWNET | confine.CLONE_NEWIPC
                    | confine.CLONE_NEWUTS)
    grandchild = os.fork()
    if grandchild == 0:
        try:
            confine.try_fresh_proc()
            os._exit(0)
        except BaseException:
            os._exit(NO_FRESH_PROC)
    status = os.waitpid(grandchild, 0)[1]
    if _killed_from_outside(status):  # passed on, so that the probe's parent says so
        os.kill(os.getpid(), signal.SIGKILL)
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == NO_FRESH_PROC:
        os._exit(NO_FRESH_PROC)
    if status != 0:
        raise OSError("no process could start in a new PID namespace")


def _try_namespaces() -> str:
    """"" where a box can have its namespaces and private root here, else what was refused."""
    pid = os.fork()
    if pid == 0:
        try:
            _namespaces()
            os._exit(0)
        except BaseException:
            os._exit(1)
    status = _status(pid)
    if status == 0:
        return ""
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == NO_FRESH_PROC:
        return "new namespaces are made, but a fresh /proc is refused in them (a container's partly hidden /proc)"
    return "new namespaces are refused"


def _become(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _filter() -> None:
    confine.no_new_privileges()
    reason = syscall_filter.install()
    if reason:
        raise OSError(reason)


def probe(sandbox_uids: range, *, enter_user_namespace: bool = True, close_in_waiter: tuple[int, ...] = ()) -> dict:
    """What boxes can get here. May move this process into a user namespace of its own (it goes
    on there, as PID 1 of its own PID namespace: see user_namespace.enter; `close_in_waiter`
    are the descriptors the process left behind must not hold)."""
    root = os.geteuid() == 0
    refused: list[str] = []
    entered = False
    why_not = _try_namespaces() if os.path.exists("/proc/self/ns/pid") else "no PID namespaces"
    namespaces = not why_not
    if not namespaces:
        refused.append(why_not + (" to this process" + (" (no CAP_SYS_ADMIN)" if root else " (not root)")
                                  if why_not == "new namespaces are refused" else ""))
        if enter_user_namespace:
            why = user_namespace.enter(sandbox_uids, close_in_waiter=close_in_waiter)
            if why is None:
                entered = True
                why_not = _try_namespaces()
                namespaces = not why_not
                if not namespaces:
                    refused.append(f"inside a user namespace too: {why_not}")
            else:
                refused.append(why)
    if namespaces:  # made through a user namespace: nothing was refused that a box misses
        refused = []
    uid_mapped = not entered or user_namespace.maps_sandbox_uids()
    sandbox_uids_ok = root and len(sandbox_uids) > 0 and uid_mapped and _in_child(lambda: _become(sandbox_uids.start))
    if root and not sandbox_uids_ok:
        refused.append("the sandbox uids cannot be taken (no CAP_SETUID, or not mapped)")
    return {
        "root": root, "uid": os.getuid(), "user_namespace": entered, "namespaces": namespaces,
        "sandbox_uids": sandbox_uids_ok, "landlock_abi": landlock.abi_version(),
        "seccomp": platform.machine() in syscall_filter.TABLES and _in_child(_filter), "refused": refused,
    }
