"""Landlock (Linux 5.13+): a box restricts itself to the files it may read and write, with no TCP,
and (ABI 6+) no signal to, and no abstract-socket connection with, any process outside it.

Landlock needs no privilege and no namespace, so it is the floor of every confinement level
(grader/confinement.py) and the whole of it where a host refuses namespaces (a TA's account
without user namespaces, a container). A restriction is inherited across fork and exec and can
never be lifted.

Always best effort, as the kernel's own sample (samples/landlock/sandboxer.c) does: the kernel
says which ABI it has, and only the rights that ABI knows are asked for. `restrict` returns what
was enforced, for the isolation report; the grader decides from the zygote's probe
(`abi_version`) whether that is enough to grade at all.

Why our own small layer rather than a binding from PyPI: the interface is three system calls and
two structures; the Python bindings found (py-landlock, landlockpy) were at version 0.1 with no
track record, and the box must not import anything its zygote did not (tests cover this layer
in every confinement mode).
"""
from __future__ import annotations

import ctypes
import os
import platform
from dataclasses import dataclass, field

# System call numbers: the same on every architecture (they were added after the tables merged).
SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

# Filesystem rights (include/uapi/linux/landlock.h), and the ABI that introduced each.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE, IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15  # ABI 2, 3, 5
FS_RIGHTS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 4: (1 << 15) - 1, 5: (1 << 16) - 1}
NET_BIND_TCP, NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6

READ = EXECUTE | READ_FILE | READ_DIR
WRITE = (WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SYM | MAKE_FIFO | REFER | TRUNCATE)
FILE_ONLY = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV  # the rights a rule on a non-folder may hold


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1  # __attribute__((packed)) in the kernel's header
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class LandlockError(OSError):
    pass


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 where Landlock is absent or disabled."""
    if platform.system() != "Linux":
        return 0
    version = _libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    return max(int(version), 0)


@dataclass
class Policy:
    """What one box may touch. Paths that do not exist are skipped (a host without /lib64)."""

    read: list[str] = field(default_factory=list)  # folders or files: read and execute
    write: list[str] = field(default_factory=list)  # folders: everything but devices
    devices: list[str] = field(default_factory=list)  # device files: read, write, ioctl
    tcp: bool = False  # False: no TCP bind or connect at all (ABI 4+)
    scoped: bool = True  # no signals to, no abstract sockets with, processes outside (ABI 6+)


class Ruleset:
    """A policy made into a kernel ruleset. Made while the process may still open every path it
    allows (before it drops to the sandbox uid); `enforce` then restricts the process."""

    def __init__(self, policy: Policy):
        abi = abi_version()
        if abi < 1:
            raise LandlockError(0, "Landlock is not available in this kernel")
        fs_rights = FS_RIGHTS_BY_ABI.get(abi, FS_RIGHTS_BY_ABI[5])
        attr = _RulesetAttr(handled_access_fs=fs_rights)
        size = 8
        self.enforced = [f"Landlock ABI {abi}: files only as listed (read: system and Python folders; write: the box's own)"]
        if abi >= 4 and not policy.tcp:
            attr.handled_access_net, size = NET_BIND_TCP | NET_CONNECT_TCP, 16
            self.enforced.append("Landlock: no TCP bind or connect")
        if abi >= 6 and policy.scoped:
            attr.scoped, size = SCOPE_SIGNAL | SCOPE_ABSTRACT_UNIX_SOCKET, 24
            self.enforced.append("Landlock: no signal to and no abstract socket with any process outside the box")
        self.fd = _libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        if self.fd < 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_create_ruleset: {os.strerror(ctypes.get_errno())}")
        try:
            for paths, rights in ((policy.read, READ), (policy.write, READ | WRITE),
                                  (policy.devices, READ_FILE | WRITE_FILE | IOCTL_DEV)):
                for path in paths:
                    _allow(self.fd, path, rights & fs_rights)
        except BaseException:
            os.close(self.fd)
            raise

    def enforce(self) -> list[str]:
        """Restrict this process and all it starts (no_new_privs must be set, or CAP_SYS_ADMIN
        held); returns what is enforced, in words."""
        try:
            if _libc.syscall(SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)) != 0:
                raise LandlockError(ctypes.get_errno(), f"landlock_restrict_self: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(self.fd)
        return self.enforced


def restrict(policy: Policy) -> list[str]:
    """Restrict this process (no_new_privs must already be set, or CAP_SYS_ADMIN held) and every
    process it starts. Returns what is enforced, in words; raises LandlockError if Landlock is
    absent or refuses, so the caller can report it missing."""
    return Ruleset(policy).enforce()


def _allow(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:  # absent here (no /lib64, no GPU device): nothing to allow
        return
    try:
        if not os.path.isdir(path):
            rights &= FILE_ONLY
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        if _libc.syscall(SYS_ADD_RULE, ctypes.c_int(ruleset), ctypes.c_int(RULE_PATH_BENEATH), ctypes.byref(rule),
                         ctypes.c_uint32(0)) != 0:
            raise LandlockError(ctypes.get_errno(), f"landlock_add_rule {path}: {os.strerror(ctypes.get_errno())}")
    finally:
        os.close(fd)
