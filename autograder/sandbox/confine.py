"""Confining a freshly forked sandbox process before any student code runs in it.

On Linux as root (the grading machines, Gradescope's containers): new mount, network, IPC and
UTS namespaces; a new root made of read-only bind mounts of the Python installation and system
libraries plus the submission's own empty working directory, so `solutions/`, the hidden checks,
the gradebook and other students' files do not exist inside; no network interface but loopback;
then an unprivileged uid of its own, no new privileges, and resource limits. Where less is
allowed (not root, no namespaces), it applies what it can and reports what it could not, so the
report and the README can say so.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import tempfile

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SANDBOX_CWD = "/submission"
# Read-only in the new root: enough to run Python, torch and matplotlib, nothing of the course.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/sys", "/proc", "/dev")

_libc = ctypes.CDLL(None, use_errno=True)


class ConfinementError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise ConfinementError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None),
        f"mount {source} on {target}",
    )


def _bind(source: str, new_root: str, writable: bool = False) -> None:
    target = os.path.join(new_root, source.lstrip("/"))
    os.makedirs(target, exist_ok=True)
    _mount(source, target, None, MS_BIND | MS_REC)
    if not writable:
        _mount(source, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_REC)


def _python_dirs() -> list[str]:
    """The installation prefixes and any import roots outside them (an editable install)."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return sorted(d for d in dirs if not any(d.startswith(s + "/") or d == s for s in SYSTEM_DIRS))


def _new_root(workdir: str) -> None:
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    new_root = tempfile.mkdtemp(prefix="sandbox-root-")
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755")
    for path in SYSTEM_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            # /dev, /proc and /sys stay writable where their own permissions allow: CUDA's start-up
            # fails on read-only /proc or /sys (cudaGetDeviceCount error 304), and the sandbox uid
            # can write only its own entries there.
            _bind(path, new_root, writable=path in ("/dev", "/proc", "/sys"))
        elif os.path.islink(path):
            os.symlink(os.readlink(path), os.path.join(new_root, path.lstrip("/")))
    shm = os.path.join(new_root, "dev/shm")
    if os.path.isdir(shm):  # the host's /dev/shm is shared by everyone: give the sandbox its own
        _mount("tmpfs", shm, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for path in _python_dirs():
        _bind(path, new_root)
    os.makedirs(os.path.join(new_root, "tmp"), mode=0o1777, exist_ok=True)
    os.chmod(os.path.join(new_root, "tmp"), 0o1777)
    target = os.path.join(new_root, SANDBOX_CWD.lstrip("/"))
    os.makedirs(target, exist_ok=True)
    _mount(workdir, target, None, MS_BIND)
    os.chroot(new_root)
    os.chdir(SANDBOX_CWD)


def _loopback_up() -> None:
    """Bring up `lo` in the new network namespace (some libraries expect localhost to exist)."""
    import fcntl
    import socket
    import struct

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, 0x8913, request))[1]  # SIOCGIFFLAGS
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH14x", b"lo", flags | 1))  # SIOCSIFFLAGS, IFF_UP


def set_limits(limits: dict) -> None:
    def cap(which: int, value: int | None) -> None:
        if value:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))

    cap(resource.RLIMIT_CPU, limits.get("cpu_seconds"))
    cap(resource.RLIMIT_AS, limits.get("memory_bytes"))
    cap(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    cap(resource.RLIMIT_NOFILE, limits.get("open_files"))
    cap(resource.RLIMIT_NPROC, limits.get("processes"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def confine(workdir: str, uid: int | None, limits: dict) -> dict:
    """Confine this process. Returns what was applied and what could not be, for the report."""
    applied, missing = [], []
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file cap fails instead of killing
    if os.geteuid() == 0:
        try:
            _new_root(workdir)
            applied.append("private filesystem view (course files invisible)")
            applied.append("no network")
            try:
                _loopback_up()
            except OSError:
                pass
        except (ConfinementError, OSError) as error:
            missing.append(f"namespaces unavailable ({error}); files readable by the sandbox uid stay visible")
            os.chdir(workdir)
        if uid is not None:
            os.chown(".", uid, uid)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            applied.append(f"unprivileged uid {uid}")
    else:
        os.chdir(workdir)
        missing.append("not root: no private filesystem view, no network namespace, same uid as the grader")
    set_limits(limits)
    applied.append("cpu, memory, file-size, open-file and process limits")
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    os.environ.update(HOME=os.getcwd(), MPLCONFIGDIR=os.getcwd(), TMPDIR="/tmp" if os.path.isdir("/tmp") else os.getcwd())
    return {"applied": applied, "missing": missing}
