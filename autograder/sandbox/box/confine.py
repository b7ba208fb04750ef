"""Confining a box before any student code runs in it, in two steps, as the run's confinement
level says (grader/confinement.py; the spawn request's `confinement` field).

`prepare` (in the box's first process, before anything else runs there; inside the box's PID
namespace where there is one, zygote/boxes.py). With namespaces (as root, or inside the zygote's
user namespace): new mount, network, IPC and UTS namespaces; a new root on a small tmpfs, made
of read-only binds of the system folders and of the folders Python imports from (never the kit
or the course: `import_dirs`), a minimal /dev (null, zero, full, random, urandom), a fresh /proc
of the box's own PID namespace, and size-capped tmpfs for every writable folder (/submission,
/tmp, /dev/shm), so a submission can neither fill the host's disk nor leave files on it. Nothing
is created on the host: the new root is mounted inside the private mount namespace only. It
fails closed: a box whose level promises a private root and cannot build one does not start.
Without namespaces, the submitted files go to the box's folder on the host (made by the grader).

`confine` (then, in the same process): its own session; the sandbox uid where the level has one;
every capability dropped (a box inside a user namespace holds them all until then);
no_new_privs; rlimits (CPU time, address space, file size, open files, processes, and no POSIX
message queue); Landlock (box/landlock.py) limiting files to what Python needs and the box's own
folders, with no TCP and, from ABI 6, no signal or abstract socket reaching outside; and the
seccomp filter (box/syscall_filter.py). What was applied and what was missing goes back to the
grader for the report.
"""
from __future__ import annotations

import ctypes
import glob
import os
import resource
import signal
import sys
import tarfile

from autograder.sandbox.box import landlock, syscall_filter
from autograder.sandbox.shared.processes import live_processes_of

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x04000000, 0x08000000, 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_CAP_AMBIENT = 1, 38, 24, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
SYS_MOUNT_SETATTR, AT_RECURSIVE = 442, 0x8000  # the same number on every architecture
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
SANDBOX_CWD = "/submission"
# Read-only in the new root: enough to run Python, torch and matplotlib, nothing of the course.
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/sys")
# A box's /dev: these devices and nothing else of the host's (no terminals, no disks).
DEVICES = ("null", "zero", "full", "random", "urandom")
CUDA_DEVICES = ("/dev/nvidia*", "/dev/nvidia-caps/*", "/dev/nvidia-uvm*")
# Where the new root may be mounted, inside the private mount namespace only (the host keeps its
# own folder untouched): existing folders, so that building a box creates nothing on the host. The
# first that holds none of the folders bound into the box is taken (a kit or venv cloned under
# /tmp must stay visible while the root is built).
NEW_ROOT_MOUNT_POINTS = ("/tmp", "/mnt", "/media", "/srv", "/opt", "/var/tmp")
ROOT_TMPFS_BYTES = 8 * 1024 * 1024  # only mount points live there; it is read-only to the sandbox

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
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


def no_new_privileges() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(
        _libc.mount(source.encode(), target.encode(), fstype.encode() if fstype else None, flags,
                    data.encode() if data else None),
        f"mount {source} on {target}",
    )


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


def _make_read_only(target: str) -> None:
    """Read-only, nosuid and nodev, for `target` and every mount below it. mount_setattr (Linux
    5.12+) only adds flags, which a user namespace may always do; a remount must repeat the flags
    the host locked (nodev, noexec...), which it cannot read back reliably."""
    attr = _MountAttr(attr_set=MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
    if _libc.syscall(SYS_MOUNT_SETATTR, -100, target.encode(), AT_RECURSIVE, ctypes.byref(attr),
                     ctypes.c_size_t(ctypes.sizeof(attr))) == 0:
        return
    _mount(target, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_REC)


def _bind(source: str, new_root: str, writable: bool = False) -> None:
    target = os.path.join(new_root, source.lstrip("/"))
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:  # a device or file: bound onto an empty file
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()
    _mount(source, target, None, MS_BIND | MS_REC)
    if not writable:
        _make_read_only(target)


def _tmpfs(target: str, size_bytes: int, mode: int, uid: int | None = None) -> None:
    os.makedirs(target, exist_ok=True)
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={max(size_bytes, 4096)},mode={mode:o}{owner}")


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def import_dirs(protected: list[str] = ()) -> list[str]:
    """The folders a box's Python imports from, as real paths: the installation's prefixes and
    every folder on this process's search path, except any that is, holds or lies inside a
    `protected` folder (the kit, the course), where the reference and the grading secret are.
    A venv kept inside the kit is its own prefix: it is kept."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    candidates = set(prefixes) | {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    protected = [os.path.realpath(p) for p in protected if p]
    kept = set()
    for folder in candidates:
        if any(_inside(guarded, folder) for guarded in protected):
            continue  # the kit or course is this folder or lies below it
        if any(_inside(folder, guarded) for guarded in protected) and not any(_inside(folder, p) for p in prefixes):
            continue  # inside the kit or course, and not a Python installation kept there
        kept.add(folder)
    return sorted(d for d in kept if not any(d != other and _inside(d, other) for other in kept))


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


def _devices(cuda: bool) -> list[str]:
    found = [f"/dev/{name}" for name in DEVICES if os.path.exists(f"/dev/{name}")]
    if cuda:
        found += sorted(p for pattern in CUDA_DEVICES for p in glob.glob(pattern) if not os.path.isdir(p))
    return found


def _minimal_dev(new_root: str, scratch: int, cuda: bool) -> None:
    """/dev as bubblewrap's --dev makes it: a small tmpfs with the harmless devices bound in, the
    usual links, and a private /dev/shm. The host's terminals (a TA's keystrokes), disks and
    message queues are not there."""
    dev = os.path.join(new_root, "dev")
    _tmpfs(dev, 64 * 1024, 0o755)
    for device in _devices(cuda):
        _bind(device, new_root, writable=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, os.path.join(dev, name))
    _tmpfs(os.path.join(dev, "shm"), scratch, 0o1777)


def _links_to(python_dirs: list[str]) -> dict[str, str]:
    """The links by which this Python names its folders (sys.prefix, sys.path: a venv that is a
    symlink, a kit reached through one), each the first link on its path, with its target, where
    that target is or holds a folder bound into the box: the box gets the same links (issue 26:
    a symlinked venv's site-packages was missing from every box). Read before the new root hides
    the host's folders."""
    links = {}
    for path in {sys.prefix, sys.exec_prefix, sys.base_prefix, *sys.path}:
        if not (isinstance(path, str) and os.path.isabs(path)):
            continue
        parts, spelled = os.path.normpath(path).split("/")[1:], ""
        for part in parts:
            spelled += "/" + part
            if os.path.islink(spelled):
                target = os.path.realpath(spelled)
                if any(_inside(d, target) or _inside(target, d) for d in python_dirs):
                    links[spelled] = target
                break
    return links


def _build_root(uid: int | None, limits: dict, fresh_proc: bool, files_fd: int | None, settings: dict) -> None:
    cuda = bool(settings.get("cuda"))
    unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    python_dirs = import_dirs(settings.get("protected", []))
    links = _links_to(python_dirs)
    new_root = _new_root_mount_point(python_dirs)
    _tmpfs(new_root, ROOT_TMPFS_BYTES, 0o755)
    for path in SYSTEM_DIRS:
        if os.path.isdir(path) and not os.path.islink(path):
            # /sys stays writable where its own permissions allow on a GPU only: CUDA's start-up
            # fails on a read-only /sys (cudaGetDeviceCount error 304).
            _bind(path, new_root, writable=cuda and path == "/sys")
        elif os.path.islink(path):
            os.symlink(os.readlink(path), os.path.join(new_root, path.lstrip("/")))
    proc = os.path.join(new_root, "proc")
    os.makedirs(proc, exist_ok=True)
    if fresh_proc:  # this process is in the box's PID namespace: its /proc shows the box only
        _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    else:
        _mount("/proc", proc, None, MS_BIND | MS_REC)
    scratch = int(limits.get("scratch_bytes") or 64 * 1024**2)
    _tmpfs(os.path.join(new_root, "tmp"), scratch, 0o1777)
    _minimal_dev(new_root, scratch, cuda)
    # After the scratch tmpfs, so that a Python installation under /tmp is bound on top of it, not hidden.
    for path in python_dirs:
        if not any(_inside(path, system) for system in SYSTEM_DIRS):
            _bind(path, new_root)
    for link, target in links.items():  # in root's folders, which the box cannot change
        inside = os.path.join(new_root, link.lstrip("/"))
        if not os.path.lexists(inside):
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            os.symlink(target, inside)
    submission = os.path.join(new_root, SANDBOX_CWD.lstrip("/"))
    _tmpfs(submission, int(limits.get("submission_bytes") or scratch), 0o700, uid)
    unpack_files(files_fd, submission, uid)
    os.chroot(new_root)
    os.chdir(SANDBOX_CWD)


def try_fresh_proc() -> None:
    """What a private root needs of the kernel beyond the namespaces themselves, tried by the
    zygote's probe (zygote/host.py) in a throwaway process already in new PID and mount
    namespaces: a tmpfs, and a fresh /proc on it. Inside a user namespace the kernel refuses that
    /proc where the /proc this process sees is partly covered, as a container's is (podman's and
    Docker's masked paths): a box could not build its root there. Raises OSError."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)  # nothing below reaches the host's mounts
    scratch = _new_root_mount_point([])
    _tmpfs(scratch, 1024 * 1024, 0o700)
    os.makedirs(os.path.join(scratch, "proc"))
    _mount("proc", os.path.join(scratch, "proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


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
    """Namespaces, private root, files, as the request's `confinement` says. Returns {"applied",
    "missing"} and remembers it for `confine`. Raises ConfinementError where the level promises
    a private root that cannot be built: the box must not start with less."""
    global _prepared
    applied, missing = [], []
    uid, limits = request.get("uid"), request.get("limits") or {}
    settings = request.get("confinement") or {}
    if in_pid_namespace:
        applied.append("own PID namespace (the box's processes end with it; no other process is visible)")
    else:
        missing.append("no PID namespace: the box's processes are found and ended by their session, uid or the zygote")
    if settings.get("private_root"):
        _build_root(uid, limits, in_pid_namespace, files_fd, settings)
        applied += ["private read-only filesystem view (course files invisible)", "minimal /dev",
                    "size-capped private /submission, /tmp and /dev/shm (nothing written to the host's disk)",
                    "no network", "own IPC namespace"]
        try:
            _loopback_up()
        except OSError:
            pass
    else:
        workdir = request.get("workdir")
        if not workdir:
            raise ConfinementError(0, "no private root and no working folder for the submission")
        os.chdir(workdir)
        unpack_files(files_fd, workdir, uid)
        os.makedirs("tmp", exist_ok=True)
        if uid is not None:
            os.chown("tmp", uid, uid)
        missing += ["no private filesystem view: Landlock limits what the box may open",
                    "the box's folder is on the host's disk (only the per-file size limit applies)"]
    _prepared = {"applied": applied, "missing": missing, "pid_namespace": in_pid_namespace, "settings": settings}
    return _prepared


def in_own_pid_namespace() -> bool:
    """Whether `prepare` ran in the box's own PID namespace (zygote/boxes.py)."""
    return bool(_prepared and _prepared.get("pid_namespace"))


def set_limits(limits: dict, *, processes_already: int = 0) -> None:
    """`processes_already`: processes of this uid that RLIMIT_NPROC counts but that are not the
    box's (the grader's own account, where the box has no uid of its own)."""
    def cap(which: int, value: int | None) -> None:
        if value:
            soft, hard = resource.getrlimit(which)
            value = value if hard == resource.RLIM_INFINITY else min(value, hard)
            resource.setrlimit(which, (value, value))

    if limits.get("cpu_seconds"):  # SIGXCPU at the limit (the exit record names it), SIGKILL 5 s later
        seconds = int(limits["cpu_seconds"])
        hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5 if hard == resource.RLIM_INFINITY else min(seconds + 5, hard)))
    cap(resource.RLIMIT_AS, limits.get("memory_bytes"))
    cap(resource.RLIMIT_FSIZE, limits.get("file_bytes"))
    cap(resource.RLIMIT_NOFILE, limits.get("open_files"))
    if limits.get("processes"):
        cap(resource.RLIMIT_NPROC, limits["processes"] + processes_already)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _last_capability() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as last:
            return int(last.read())
    except (OSError, ValueError):
        return 40


def drop_bounding_capabilities() -> None:
    """Empty the bounding and ambient sets (needs CAP_SETPCAP: before giving up privileges)."""
    for capability in range(_last_capability() + 1):
        _libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)


def drop_capabilities() -> None:
    """Effective, permitted and inheritable sets emptied: inside a user namespace the box holds
    every capability there until now (mounts, chroot), whatever its uid."""
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), data), "capset")  # _LINUX_CAPABILITY_VERSION_3


def landlock_policy(settings: dict) -> landlock.Policy:
    """What the box may open: inside a private root, all of it to read (it holds nothing of the
    course) and its own tmpfs folders to write; on the host's filesystem, the system and Python
    folders to read and its own folder to write."""
    cuda = bool(settings.get("cuda"))
    devices = _devices(cuda)
    if settings.get("private_root"):
        return landlock.Policy(read=["/"], write=[SANDBOX_CWD, "/tmp", "/dev/shm"] + (["/sys"] if cuda else []),
                               devices=devices)
    read = [d for d in SYSTEM_DIRS if os.path.isdir(d)] + ["/proc"] + import_dirs(settings.get("protected", []))
    if cuda:
        read.append("/proc/driver")
    return landlock.Policy(read=read, write=[os.getcwd()], devices=devices)


def _reachable_by(uid: int, folder: str) -> bool:
    """Whether `uid` (no supplementary groups) may pass through every folder above `folder`."""
    parent = os.path.dirname(folder)
    while True:
        try:
            info = os.stat(parent)
        except OSError:
            return False
        if not (info.st_mode & 0o001 or (info.st_uid == uid and info.st_mode & 0o100) or (info.st_gid == uid and info.st_mode & 0o010)):
            return False
        if parent == "/":
            return True
        parent = os.path.dirname(parent)


def reach_imports_through_descriptors(uid: int) -> list[str]:
    """Where a sandbox uid runs on the host's filesystem (no private root), a Python installed
    under a folder it may not pass through (pyenv in root's 0700 home) would let it import only
    what the zygote already had. Each such import folder is opened here, while still root, and
    reached through /proc/self/fd/N: a descriptor's link skips the folders above, and the
    folder's own permissions (and Landlock) still apply. Returns the folders so reached."""
    remapped = {}
    for folder in import_dirs():
        if not _reachable_by(uid, folder):
            fd = os.open(folder, os.O_PATH | os.O_DIRECTORY)  # inherited by the box's forks, closed with them
            remapped[folder] = f"/proc/self/fd/{fd}"

    def moved(path: str) -> str:
        real = os.path.realpath(path) if isinstance(path, str) and path else path
        for folder, through in remapped.items():
            if isinstance(real, str) and _inside(real, folder):
                return through + real[len(folder):]
        return path

    if remapped:
        sys.path[:] = [moved(p) for p in sys.path]
        for module in list(sys.modules.values()):  # packages already imported find their submodules there too
            path = getattr(module, "__path__", None)
            if isinstance(path, list):
                path[:] = [moved(p) for p in path]
        sys.path_importer_cache.clear()
    return sorted(remapped)


def confine(request: dict) -> dict:
    """Confine this process (after `prepare`, here or in the box's init). Returns what was
    applied and what could not be, for the report."""
    if _prepared is None:  # called without a box (a test, or an older caller): prepare here
        prepare(request, None, in_pid_namespace=False)
    uid, limits = request.get("uid"), request.get("limits") or {}
    settings = _prepared["settings"]
    applied, missing = list(_prepared["applied"]), list(_prepared["missing"])
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the file cap fails instead of killing
    drop_bounding_capabilities()
    ruleset, landlock_missing = None, None
    if settings.get("landlock", True):  # made while every allowed path can still be opened
        try:
            ruleset = landlock.Ruleset(landlock_policy(settings))
        except OSError as error:
            landlock_missing = f"Landlock ({error})"
    if uid is not None and not settings.get("private_root"):
        reached = reach_imports_through_descriptors(uid)
        if reached:
            applied.append(f"Python folders the sandbox uid cannot pass through reached by descriptor: {', '.join(reached)}")
    if uid is not None:
        os.chown(".", uid, uid)
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        applied.append(f"sandbox uid {uid}")
    own_uid_shared = uid is None and not settings.get("private_root")  # RLIMIT_NPROC counts the account's processes
    set_limits(limits, processes_already=len(live_processes_of(os.getuid())) if own_uid_shared else 0)
    applied.append("cpu, memory, file-size, open-file, process and message-queue limits")
    drop_capabilities()
    no_new_privileges()
    applied.append("no capabilities, no new privileges")
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # after setuid, which clears it
    if ruleset is not None:
        try:
            applied += ruleset.enforce()
        except OSError as error:
            landlock_missing = f"Landlock ({error})"
    if landlock_missing:
        missing.append(landlock_missing)
    sysv_ipc = bool(settings.get("ipc_namespace"))
    refused = syscall_filter.install(sysv_ipc=sysv_ipc)  # keyrings, namespaces, sockets...: see syscall_filter.py
    if refused:
        missing.append(f"system call filter ({refused})")
    else:
        applied.append("system call filter (keyrings, namespaces, sockets, message queues, ptrace, bpf, io_uring"
                       + ("" if sysv_ipc else ", System V IPC") + ")")
    home = os.getcwd()
    os.environ.update(HOME=home, MPLCONFIGDIR=home,
                      TMPDIR="/tmp" if settings.get("private_root") else os.path.join(home, "tmp"))
    sys.path.insert(0, home)  # as in a Jupyter kernel: `import helper` finds a submitted helper.py
    return {"applied": applied, "missing": missing, "level": settings.get("level", "")}
