"""A seccomp filter for the sandbox: the system calls no notebook needs and whose effects reach
past the box are refused with EPERM, as Docker's default profile refuses them.

- add_key, request_key, keyctl: the kernel's keyrings belong to a uid, not to a namespace. A
  key a notebook added to its user keyring was read by a later sandbox of the same uid (the next
  student, or another check's clean room).
- unshare, setns, and clone with a namespace flag: a new user namespace would make the notebook
  root inside it. clone3 answers ENOSYS (its flags sit behind a pointer a filter cannot read), so
  glibc falls back to clone, whose flags it can.
- bpf, perf_event_open, userfaultfd, io_uring_*: large kernel surfaces, none needed to fit a line.
- Any other architecture's calls (i386 through int 0x80, x32): the numbers below would not apply.

Installed last in `confine`, after no_new_privs, and inherited by everything the notebook starts.
Only x86_64 and aarch64 have tables; elsewhere the sandbox reports the filter as missing.
"""
from __future__ import annotations

import ctypes
import errno
import platform

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x45, 0x06
NR_OFFSET, ARCH_OFFSET, ARG0_OFFSET = 0, 4, 16  # struct seccomp_data (little-endian: arg 0's low word)
NAMESPACE_FLAGS = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
X32_SYSCALL_BIT = 0x40000000

REFUSED = ("add_key", "request_key", "keyctl", "unshare", "setns", "bpf", "perf_event_open", "userfaultfd",
           "io_uring_setup", "io_uring_enter", "io_uring_register")
# machine -> (AUDIT_ARCH_*, system call numbers)
TABLES = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
                            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
                            "io_uring_enter": 426, "io_uring_register": 427, "clone": 56, "clone3": 435}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
                             "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
                             "io_uring_enter": 426, "io_uring_register": 427, "clone": 220, "clone3": 435}),
}


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


def program(machine: str) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps count the instructions they skip."""
    arch, numbers = TABLES[machine]
    refuse = (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    steps = [(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET), (BPF_JEQ_K, 1, 0, arch), refuse, (BPF_LD_W_ABS, 0, 0, NR_OFFSET)]
    if machine == "x86_64":
        steps += [(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), refuse]
    for name in REFUSED:
        steps += [(BPF_JEQ_K, 0, 1, numbers[name]), refuse]
    steps += [(BPF_JEQ_K, 0, 1, numbers["clone3"]), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    steps += [(BPF_JEQ_K, 0, 3, numbers["clone"]), (BPF_LD_W_ABS, 0, 0, ARG0_OFFSET),
              (BPF_JSET_K, 0, 1, NAMESPACE_FLAGS), refuse]
    return steps + [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]


def install() -> str | None:
    """Install the filter on this process (no_new_privs must be set). None when installed, else
    why not, for the isolation report."""
    machine = platform.machine()
    if machine not in TABLES:
        return f"no system call table for {machine}"
    steps = program(machine)
    instructions = (_Instruction * len(steps))(*[_Instruction(*step) for step in steps])
    prog = _Program(len(steps), instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"seccomp refused the filter: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    return None
