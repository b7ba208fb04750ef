"""Entering a user namespace of the zygote's own, as bubblewrap does for an ordinary user.

A process that creates a user namespace holds every capability inside it, over the namespaces
it creates there and nothing else. So a zygote that is not root (a TA's own account, a non-root
container), or root without CAP_SYS_ADMIN, can still give each box its own PID, mount, network,
IPC and UTS namespaces and a private read-only root, exactly as root does, when the host allows
unprivileged user namespaces. The namespace maps the grader's own uid to itself (the box runs as
that uid, with every capability dropped: box/confine.py); where the zygote holds CAP_SETUID and
CAP_SETGID (root without CAP_SYS_ADMIN), it also maps the sandbox uids, so boxes keep a uid of
their own.

Must be called while the process has one thread (before torch is imported): the kernel refuses
unshare(CLONE_NEWUSER) to a multi-threaded process.
"""
from __future__ import annotations

import ctypes
import os

from autograder.sandbox.shared.processes import write_kernel_file

CLONE_NEWUSER, CLONE_NEWPID = 0x10000000, 0x20000000
_libc = ctypes.CDLL(None, use_errno=True)


def _write(fd: int, text: str) -> bool:
    try:
        os.write(fd, text.encode())
        return True
    except OSError:
        return False


def _map_from_parent(pid: int, uid: int, gid: int, sandbox_uids: range) -> bool:
    """As newuidmap does: a process still in the parent namespace, holding CAP_SETUID and
    CAP_SETGID there, writes the child namespace's maps (ours and the sandbox uids)."""
    extra = f"{sandbox_uids.start} {sandbox_uids.start} {len(sandbox_uids)}\n"
    return (write_kernel_file(f"/proc/{pid}/uid_map", f"{uid} {uid} 1\n{extra}")
            and write_kernel_file(f"/proc/{pid}/gid_map", f"{gid} {gid} 1\n{extra}"))


def enter(sandbox_uids: range | None = None, *, close_in_waiter: tuple[int, ...] = ()) -> str | None:
    """Move this process into a new user namespace mapping its uid and gid to themselves, and
    `sandbox_uids` too where it may (root without CAP_SYS_ADMIN), and into a PID namespace of
    that user namespace's own. Returns None once inside, else why not (for the report).

    The PID namespace is why this forks: a box is started by moving the zygote's next child to a
    new PID namespace and back (zygote/boxes.py), and moving back needs the capability over the
    zygote's own PID namespace, which only its own user namespace gives. So the process that
    called this waits for its child (closing `close_in_waiter` first) and exits with its status;
    the child, PID 1 of the new namespace, returns and goes on as the zygote (when it ends, every
    box it started ends with it)."""
    uid, gid = os.getuid(), os.getgid()
    privileged = os.geteuid() == 0 and sandbox_uids is not None and len(sandbox_uids) > 0 \
        and uid not in sandbox_uids and gid not in sandbox_uids
    helper = go = done = None
    if privileged:  # a helper that stays in this namespace, to write the new one's maps
        # This process as /proc numbers it: in a PID namespace of its own already (a zygote server's
        # zygote), getppid() in the helper would name another process of /proc's namespace.
        me = int(os.readlink("/proc/self"))
        go, done = os.pipe(), os.pipe()
        helper = os.fork()
        if helper == 0:
            os.close(go[1])
            os.close(done[0])
            if os.read(go[0], 1) == b"1":
                os.write(done[1], b"1" if _map_from_parent(me, uid, gid, sandbox_uids) else b"0")
            os._exit(0)
        os.close(go[0])
        os.close(done[1])
    try:
        if _libc.unshare(CLONE_NEWUSER) != 0:
            return f"user namespaces are refused here ({os.strerror(ctypes.get_errno())})"
        mapped = False
        if helper is not None:
            os.write(go[1], b"1")
            mapped = os.read(done[0], 1) == b"1"
            _reap(helper, go, done)  # here: the process that goes on below is not its parent
            helper = None
        # Else the caller's own ids only, and setgroups denied first (the kernel's rule for a map
        # written from inside, by a process that holds no capability in the parent namespace).
        if not mapped and not (write_kernel_file("/proc/self/setgroups", "deny") and write_kernel_file("/proc/self/uid_map", f"{uid} {uid} 1\n")
                               and write_kernel_file("/proc/self/gid_map", f"{gid} {gid} 1\n")):
            return f"the new user namespace could not map uid {uid}"
        if _libc.unshare(CLONE_NEWPID) != 0:
            return f"no PID namespace inside the user namespace ({os.strerror(ctypes.get_errno())})"
        child = os.fork()
        if child != 0:
            _wait_and_exit(child, close_in_waiter)
        return None
    finally:
        if helper is not None:
            _reap(helper, go, done)


def _reap(helper: int, go: tuple[int, int], done: tuple[int, int]) -> None:
    os.close(go[1])
    os.close(done[0])
    os.waitpid(helper, 0)


def _wait_and_exit(child: int, close: tuple[int, ...]) -> None:
    """The waiter: holds nothing of the zygote's (its control socket is closed here), ends with it."""
    for fd in close:
        try:
            os.close(fd)
        except OSError:
            pass
    try:
        _, status = os.waitpid(child, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    finally:
        os._exit(1)


def maps_sandbox_uids() -> bool:
    """Whether this process's user namespace maps more than one uid (the sandbox uids)."""
    try:
        with open("/proc/self/uid_map") as mapping:
            return sum(int(line.split()[2]) for line in mapping if line.strip()) > 1
    except (OSError, ValueError, IndexError):
        return False
