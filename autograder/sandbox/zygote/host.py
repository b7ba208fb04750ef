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

from autograder.sandbox.box import confine, landlock, syscall_filter
from autograder.sandbox.zygote import user_namespace


def _in_child(attempt) -> bool:
    """Whether `attempt()` succeeds in a forked child (which then exits); nothing here changes."""
    pid = os.fork()
    if pid == 0:
        try:
            attempt()
            os._exit(0)
        except BaseException:
            os._exit(1)
    return os.waitpid(pid, 0)[1] == 0


def _namespaces() -> None:
    """A PID namespace with a process in it, and the other namespaces a box gets."""
    confine.unshare(confine.CLONE_NEWPID | confine.CLONE_NEWNS | confine.CLONE_NEWNET | confine.CLONE_NEWIPC
                    | confine.CLONE_NEWUTS)
    grandchild = os.fork()
    if grandchild == 0:
        os._exit(0)
    if os.waitpid(grandchild, 0)[1] != 0:
        raise OSError("no process could start in a new PID namespace")


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
    namespaces = os.path.exists("/proc/self/ns/pid") and _in_child(_namespaces)
    if not namespaces:
        refused.append("new namespaces are refused to this process" + (" (no CAP_SYS_ADMIN)" if root else " (not root)"))
        if enter_user_namespace:
            why = user_namespace.enter(sandbox_uids, close_in_waiter=close_in_waiter)
            if why is None:
                entered = True
                namespaces = _in_child(_namespaces)
                if not namespaces:
                    refused.append("namespaces are refused inside a user namespace too")
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
