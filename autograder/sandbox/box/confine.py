"""Confining a sandbox before any student code runs in it, in two steps.

`prepare` (as root, in the sandbox process before anything else runs there; inside the box's PID
namespace where there is one, box.py): new mount,
network, IPC and UTS namespaces; a new root on a small tmpfs, made of read-only bind mounts of
the Python installation and system folders, a fresh /proc of the box's own PID namespace (it
shows the box's processes only), and size-capped tmpfs for every writable folder (/submission,
/tmp, /dev/shm), so a submission can neither fill the host's disk nor leave files on it; the
submitted files are unpacked into /submission. Nothing is created on the host: the new root is
mounted over /tmp inside the private mount namespace, where the host never sees it.

`confine` (in the sandbox process, called by kernel.py): its own session, an unprivileged uid,
no new privileges, resource limits. Where less is allowed (not root, no namespaces), it applies
what it can and reports what it could not, so the report and the README can say so.
"""
from __future__ import annotations

import ctypes
import os
import resource
import signal
import sys
import tarfile

from autograder.sandbox.box import syscall_filter

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SANDBOX_CWD = "/submission"
# Read-only in the new root: enough to run Python, torch and matplotlib, nothing of the course.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/sys", "/dev")
# Where the new root may be mounted, inside the private mount namespace only (the host keeps its
# own folder untouched): existing folders, so that building a box creates nothing on the host. The
# first that holds none of the folders bound into the box is taken (a kit or venv cloned under
# /tmp must stay visible while the root is built).
NEW_ROOT_MOUNT_POINTS = ("/tmp", "/mnt", "/media", "/srv", "/opt", "/var/tmp")
ROOT_TMPFS_BYTES = 8 * 1024 * 1024  # only mount points live there; it is read-only to the sandbox

_libc = ctypes.CDLL(None, use_errno=True)
# What `prepare` did, for `confine` later in the same process.
_prepared: dict | None = None


class ConfinementError(OSError):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise ConfinementError(errno, f"{what}: {os.strerror(errno)}")


def unshare(flags: int, what: str = "unshare") -> None:
    _check(_libc.unshare(flags), what)


def setns(fd: int, flags: int) -> None:
    _check(_libc.setns(fd, flags), "setns")


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


def _tmpfs(target: str, size_bytes: int, mode: int, uid: int | None = None) -> None:
    os.makedirs(target, exist_ok=True)
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={max(size_bytes, 4096)},mode={mode:o}{owner}")


def _python_dirs() -> list[str]:
    """The installation prefixes and any import roots outside them (an editable install)."""
    dirs = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return sorted(d for d in dirs if not any(d.startswith(s + "/") or d == s for s in (*SYSTEM_DIRS, "/proc")))


def unpack_files(files_fd: int | None, folder: str, uid: int | None) -> None:
    """Unpack the submitted files (a tar archive of regular files in a memfd, made by the grader)
    into `folder`, owned by the sandbox uid. tarfile's "data" filter refuses absolute names,
    `..`, links and device files, should anything but regular files ever reach it."""
    if files_fd is None:
        return
    with os.fdopen(files_fd, "rb") as raw, tarfile.open(fileobj=raw, mode="r:") as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
                archive.extract(member, folder, filter="data")
            else:  # older 3.11 (Debian 12's 3.11.2, Ubuntu 22.04's 3.11.0): the filter's refusal of names outside `folder`
                inside = os.path.realpath(os.path.join(folder, member.name))
                if os.path.isabs(member.name) or not inside.startswith(os.path.realpath(folder) + os.sep):
                    continue
                archive.extract(member, folder, set_attrs=False)
            if uid is not None:
                path = os.path.join(folder, member.name)
                os.chown(path, uid, uid)
                parent = os.path.dirname(path)
                while parent != folder.rstrip("/") and parent.startswith(folder):
                    os.chown(parent, uid, uid)
                    parent = os.path.dirname(parent)


def _new_root_mount_point(bound: list[str]) -> str:
    for candidate in NEW_ROOT_MOUNT_POINTS:
        inside = [d for d in bound if d == candidate or d.startswith(candidate.rstrip("/") + "/")]
        if os.path.isdir(candidate) and not os.path.islink(candidate) and not inside:
            return candidate
    raise ConfinementError(0, "no folder to build the private root in: every candidate holds the Python installation")


def _build_root(uid: int | None, limits: dict, fresh_proc: bool, files_fd: int | None) -> None:
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    new_root = _new_root_mount_point(_python_dirs())
    _tmpfs(new_root, ROOT_TMPFS_BYTES, 0o755)
    for path in SYSTEM_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            # /dev and /sys stay writable where their own permissions allow: CUDA's start-up fails
            # on a read-only /sys (cudaGetDeviceCount error 304); the sandbox uid can write only
            # its own entries there.
            _bind(path, new_root, writable=path in ("/dev", "/sys"))
        elif os.path.islink(path):
            os.symlink(os.readlink(path), os.path.join(new_root, path.lstrip("/")))
    proc = os.path.join(new_root, "proc")
    os.makedirs(proc, exist_ok=True)
    if fresh_proc:  # this process is in the box's PID namespace: its /proc shows the box only
        _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        _mount("/proc", proc, None, MS_BIND | MS_REC)
    scratch = int(limits.get("scratch_bytes") or 64 * 1024**2)
    os.makedirs(os.path.join(new_root, "tmp"), exist_ok=True)
    _tmpfs(os.path.join(new_root, "tmp"), scratch, 0o1777)
    if os.path.isdir(os.path.join(new_root, "dev/shm")):  # the host's /dev/shm is shared by everyone
        _tmpfs(os.path.join(new_root, "dev/shm"), scratch, 0o1777)
    # After the scratch tmpfs, so that a Python installation under /tmp is bound on top of it, not hidden.
    for path in _python_dirs():
        _bind(path, new_root)
    submission = os.path.join(new_root, SANDBOX_CWD.lstrip("/"))
    _tmpfs(submission, int(limits.get("submission_bytes") or scratch), 0o700, uid)
    unpack_files(files_fd, submission, uid)
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


def prepare(request: dict, files_fd: int | None, *, in_pid_namespace: bool) -> dict:
    """The root-only part: namespaces, private root, files. Returns {"applied", "missing"} and
    remembers it for `confine`. Without root, or where namespaces are refused, the files go to
    request["workdir"] (a host folder the grader made and removes)."""
    global _prepared
    applied, missing = [], []
    uid, limits = request.get("uid"), request.get("limits") or {}
    if in_pid_namespace:
        applied.append("own PID namespace (the box's processes end with it; no other process is visible)")
    else:
        missing.append("no PID namespace: processes are found and ended by their uid instead")
    done = False
    if os.geteuid() == 0:
        try:
            _build_root(uid, limits, in_pid_namespace, files_fd)
            files_fd, done = None, True
            applied.append("private filesystem view (course files invisible)")
            applied.append("size-capped private /submission, /tmp and /dev/shm (nothing written to the host's disk)")
            applied.append("no network")
            try:
                _loopback_up()
            except OSError:
                pass
        except (ConfinementError, OSError) as error:
            missing.append(f"namespaces unavailable ({error}); files readable by the sandbox uid stay visible")
    else:
        missing.append("not root: no private filesystem view, no network namespace, same uid as the grader")
    if not done:
        workdir = request.get("workdir")
        if not workdir:
            raise ConfinementError(0, "no private root and no working folder for the submission")
        os.chdir(workdir)
        unpack_files(files_fd, workdir, uid if os.geteuid() == 0 else None)
        missing.append("the submission's folder is on the host's disk (only the per-file size limit applies)")
    _prepared = {"applied": applied, "missing": missing, "pid_namespace": in_pid_namespace}
    return _prepared


def in_own_pid_namespace() -> bool:
    """Whether `prepare` ran in the box's own PID namespace (box.py)."""
    return bool(_prepared and _prepared.get("pid_namespace"))


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


def confine(workdir: str | None, uid: int | None, limits: dict) -> dict:
    """Confine this process (after `prepare`, here or in the box's init). Returns what was
    applied and what could not be, for the report."""
    if _prepared is None:  # called without a box (a test, or an older caller): prepare here
        prepare({"workdir": workdir, "uid": uid, "limits": limits}, None, in_pid_namespace=False)
    applied, missing = list(_prepared["applied"]), list(_prepared["missing"])
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file cap fails instead of killing
    if os.geteuid() == 0 and uid is not None:
        os.chown(".", uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        applied.append(f"unprivileged uid {uid}")
    set_limits(limits)
    applied.append("cpu, memory, file-size, open-file and process limits")
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    refused = syscall_filter.install()  # keyrings, namespaces, bpf...: see syscall_filter.py
    if refused:
        missing.append(f"system call filter ({refused})")
    else:
        applied.append("system call filter (keyrings, namespaces, bpf, perf, userfaultfd, io_uring)")
    os.environ.update(HOME=os.getcwd(), MPLCONFIGDIR=os.getcwd(), TMPDIR="/tmp" if os.path.isdir("/tmp") else os.getcwd())
    sys.path.insert(0, os.getcwd())  # as in a Jupyter kernel: `import helper` finds a submitted helper.py
    return {"applied": applied, "missing": missing}
