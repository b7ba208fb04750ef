"""A seccomp filter for the sandbox: the system calls no notebook needs and whose effects reach
past the box are refused with EPERM, as Docker's default profile refuses them.

Refused in every box:
- add_key, request_key, keyctl: the kernel's keyrings belong to a uid, not to a namespace. A
  key a notebook added to its user keyring was read by a later sandbox of the same uid (the next
  student, or another check's clean room).
- unshare, setns, and clone with a namespace flag: a new user namespace would make the notebook
  root inside it. clone3 answers ENOSYS (its flags sit behind a pointer a filter cannot read), so
  glibc falls back to clone, whose flags it can.
- bpf, perf_event_open, userfaultfd, io_uring_*: large kernel surfaces, none needed to fit a line.
- mq_*: POSIX message queues live in the IPC namespace, the host's where a box has none of its
  own; no notebook needs one (and RLIMIT_MSGQUEUE is 0 besides).
- ptrace, process_vm_readv/writev, kcmp, pidfd_getfd: reading or steering another process.
- socket: no box has a network, and a Unix socket path (a D-Bus session bus, multiprocessing's
  forkserver) would reach processes outside a box that shares the host's filesystem and uid.
  socketpair stays: Python's own machinery uses it.
- Any other architecture's calls (i386 through int 0x80, x32): the numbers below would not apply.
Refused where a box has no IPC namespace of its own (`sysv_ipc=False`): System V message queues,
semaphores and shared memory, which would otherwise be the host's.

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
           "io_uring_setup", "io_uring_enter", "io_uring_register",
           "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
           "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "socket")
SYSV_IPC = ("msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
            "shmget", "shmat", "shmdt", "shmctl")
# machine -> (AUDIT_ARCH_*, system call numbers): asm/unistd_64.h and asm-generic/unistd.h
TABLES = {
    "x86_64": (0xC000003E, {"add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
                            "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
                            "io_uring_enter": 426, "io_uring_register": 427, "clone": 56, "clone3": 435,
                            "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242, "mq_timedreceive": 243,
                            "mq_notify": 244, "mq_getsetattr": 245, "ptrace": 101, "process_vm_readv": 310,
                            "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438, "socket": 41,
                            "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "semget": 64, "semop": 65,
                            "semtimedop": 220, "semctl": 66, "shmget": 29, "shmat": 30, "shmdt": 67, "shmctl": 31}),
    "aarch64": (0xC00000B7, {"add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
                             "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
                             "io_uring_enter": 426, "io_uring_register": 427, "clone": 220, "clone3": 435,
                             "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
                             "mq_notify": 184, "mq_getsetattr": 185, "ptrace": 117, "process_vm_readv": 270,
                             "process_vm_writev": 271, "kcmp": 272, "pidfd_getfd": 438, "socket": 198,
                             "msgget": 186, "msgsnd": 189, "msgrcv": 188, "msgctl": 187, "semget": 190, "semop": 193,
                             "semtimedop": 192, "semctl": 191, "shmget": 194, "shmat": 196, "shmdt": 197, "shmctl": 195}),
}


class _Instruction(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _Program(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_Instruction))]


def refused(*, sysv_ipc: bool) -> tuple[str, ...]:
    """The calls refused with EPERM; `sysv_ipc`: whether System V IPC stays allowed (the box has an
    IPC namespace of its own)."""
    return REFUSED if sysv_ipc else REFUSED + SYSV_IPC


def program(machine: str, *, sysv_ipc: bool = True, only: tuple[str, ...] | None = None) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k) instructions; jumps count the instructions they skip.
    `only`: refuse just these calls (and namespace flags to clone), as a container's profile
    does; the tests' default-container launcher uses it."""
    arch, numbers = TABLES[machine]
    refuse = (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.EPERM)
    steps = [(BPF_LD_W_ABS, 0, 0, ARCH_OFFSET), (BPF_JEQ_K, 1, 0, arch), refuse, (BPF_LD_W_ABS, 0, 0, NR_OFFSET)]
    if machine == "x86_64":
        steps += [(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), refuse]
    for name in refused(sysv_ipc=sysv_ipc) if only is None else only:
        steps += [(BPF_JEQ_K, 0, 1, numbers[name]), refuse]
    steps += [(BPF_JEQ_K, 0, 1, numbers["clone3"]), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | errno.ENOSYS)]
    steps += [(BPF_JEQ_K, 0, 3, numbers["clone"]), (BPF_LD_W_ABS, 0, 0, ARG0_OFFSET),
              (BPF_JSET_K, 0, 1, NAMESPACE_FLAGS), refuse]
    return steps + [(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]


def install(*, sysv_ipc: bool = True) -> str | None:
    """Install the filter on this process (no_new_privs must be set). None when installed, else
    why not, for the isolation report."""
    return _install(sysv_ipc=sysv_ipc, only=None)


def install_only(names: tuple[str, ...]) -> str | None:
    """A filter that refuses only `names` and namespace flags to clone (see `program`)."""
    return _install(sysv_ipc=True, only=names)


def _install(*, sysv_ipc: bool, only: tuple[str, ...] | None) -> str | None:
    machine = platform.machine()
    if machine not in TABLES:
        return f"no system call table for {machine}"
    steps = program(machine, sysv_ipc=sysv_ipc, only=only)
    instructions = (_Instruction * len(steps))(*[_Instruction(*step) for step in steps])
    prog = _Program(len(steps), instructions)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        return f"seccomp refused the filter: {errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())}"
    return None
