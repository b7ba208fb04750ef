"""Whether a clean room, or a room template, is as its definitions must leave it, seen from
outside its box: the grader (root) reads the box's processes in /proc, which no code in the box
can forge.

No student code runs while a room makes its definitions (box/definitions.py), and once they are
made the room ends every other process of its box (box/leftovers.py) and says so (Event.DEFINED).
Should code have run all the same, through a gap in the filter, it could not hide here: before
the grader sends the room anything, the box must hold exactly one process of the sandbox uid,
the room itself, which is neither stopped nor traced, runs one thread, and has no signal
pending, blocked, ignored or handled beyond what the room's own Python sets. A process started
at definition time and still alive, a room stopped (SIGSTOP) so that another process could take
over its socket, a thread left running, a signal handler installed: each is tampering, and the
room is not used (rooms.py: an integrity flag, and no points from it).

The box's processes are the members of its PID namespace (or, without one, those of its sandbox
uid). Only numbers and namespace links are read from /proc (a process names itself: its `Name:`
line is not read). Without a PID namespace or a sandbox uid the box's processes cannot be told
from the grader's: nothing is checked there.
"""
from __future__ import annotations

import os
import signal

from autograder.sandbox.shared.processes import is_alive, live_processes_of

# What a room's Python leaves set: SIGPIPE ignored (Python), SIGXFSZ ignored (confine.py), SIGINT
# handled (Python's KeyboardInterrupt).
EXPECTED_IGNORED = frozenset({signal.SIGPIPE, signal.SIGXFSZ})
EXPECTED_HANDLED = frozenset({signal.SIGINT})
_STOPPED = {"T": "stopped (SIGSTOP)", "t": "stopped by a tracer"}


# The C library's own signals (glibc's thread cancellation and set*id broadcast, below SIGRTMIN):
# handled in a process whose library once needed them, never by Python code.
_LIBC_SIGNALS = frozenset(range(32, signal.SIGRTMIN))


def _signals(mask: str) -> set[int]:
    bits = int(mask, 16)
    return {number + 1 for number in range(64) if bits >> number & 1} - _LIBC_SIGNALS


def _named(numbers: set[int]) -> str:
    names = []
    for number in sorted(numbers):
        try:
            names.append(signal.Signals(number).name)
        except ValueError:
            names.append(f"signal {number}")
    return ", ".join(names)


def read_status(pid: int) -> dict[str, str]:
    """The numeric fields of /proc/<pid>/status that tell how a process is held."""
    wanted = ("State", "TracerPid", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    fields = {}
    with open(f"/proc/{pid}/status", "rb") as status:
        for line in status:
            key, _, value = line.partition(b":")
            key = key.decode("ascii", "replace")
            if key in wanted:
                fields[key] = value.split()[0].decode("ascii", "replace") if value.split() else ""
    return fields


def _pid_of(pidfd: int) -> int | None:
    """The pid, in this process's PID namespace, of the process behind `pidfd` (a zygote in a
    user namespace numbers its boxes in its own namespace: the number it gives is not ours)."""
    try:
        with open(f"/proc/self/fdinfo/{pidfd}", "rb") as info:
            for line in info:
                if line.startswith(b"Pid:"):
                    pid = int(line.split()[1])
                    return pid if pid > 0 else None
    except (OSError, ValueError, IndexError):
        pass
    return None


def box_processes(box) -> list[int] | None:
    """The live processes of `box` (a BoxClient) but its init, as the host sees them: the members
    of its PID namespace, whatever their uid (a TA's account grades in a user namespace with its
    own); else the processes of its sandbox uid; None where neither tells them apart."""
    init = _pid_of(box.pidfd) if box.pid_namespace and box.pidfd is not None else None
    if init is not None:
        try:
            namespace = os.readlink(f"/proc/{init}/ns/pid")
        except OSError:
            return None
        members = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == init:
                continue
            try:
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace and is_alive(int(entry)):
                    members.append(int(entry))
            except OSError:  # ended meanwhile, or another account's
                continue
        return members
    return live_processes_of(box.uid) if box.uid is not None else None


def tampering(box) -> str | None:
    """What is wrong with `box` (a BoxClient) once its room has made its definitions, in words;
    None: nothing, or nothing can be told (no PID namespace and no sandbox uid)."""
    pids = box_processes(box)
    if not pids:  # nothing can be told (a room that ended answers nothing anyway)
        return None
    if len(pids) > 1:
        return f"{len(pids) - 1} other process{'es' if len(pids) > 2 else ''} of its box outlived the definitions"
    try:
        status = read_status(pids[0])
    except OSError:
        return None
    problems = []
    if status.get("State") in _STOPPED:
        problems.append(f"it was {_STOPPED[status['State']]}")
    if status.get("TracerPid", "0") != "0":
        problems.append("it was being traced")
    if status.get("Threads", "1") != "1":
        problems.append(f"it ran {status.get('Threads')} threads")
    pending = _signals(status.get("SigPnd", "0")) | _signals(status.get("ShdPnd", "0"))
    if pending:
        problems.append(f"a signal was pending ({_named(pending)})")
    blocked = _signals(status.get("SigBlk", "0"))
    if blocked:
        problems.append(f"it blocked signals ({_named(blocked)})")
    ignored = _signals(status.get("SigIgn", "0")) - EXPECTED_IGNORED
    if ignored:
        problems.append(f"it ignored signals ({_named(ignored)})")
    handled = _signals(status.get("SigCgt", "0")) - EXPECTED_HANDLED
    if handled:
        problems.append(f"it handled signals ({_named(handled)})")
    return "; ".join(problems) or None
