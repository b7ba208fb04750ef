"""Finding a uid's live processes through /proc, for killing what a submission left running.

This is the fallback and the double check: where the platform allows it, each sandbox is a box
in its own PID namespace (box.py) and ending the box's init ends everything in it. The sweep is
still run before a uid is handed to a new sandbox, and wherever namespaces are refused.

Two details make it hold against hostile code:
- A process counts as alive while ANY of its tasks (threads) is not a zombie. A process whose
  main thread ended with the raw exit syscall shows state Z in /proc/<pid>/stat while its other
  threads keep running. psutil cannot tell (Process.status() reads the leader's state only and
  Process.threads() gives no states), hence this module reads /proc/<pid>/task/*/stat itself.
- The owner is read from the Uid line of /proc/<pid>/status (real, effective, saved, fs), not
  from the owner of /proc/<pid>: a process that makes itself non-dumpable (prctl) shows that
  folder as root's.

`kill(-1)` is no help here: in a container it reports success even when it reached nobody, so
a loop "until nothing is left" cannot tell when to stop.
"""
from __future__ import annotations

import os
import signal
import time

_DEAD_STATES = (b"Z", b"X", b"x")


def _state(stat_path: str) -> bytes | None:
    try:
        with open(stat_path, "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):  # it ended while we looked
        return None


def is_stopped(pid: int, proc: str = "/proc") -> bool:
    """True while process `pid` is stopped (SIGSTOP, SIGTSTP, a tracer): it will not go on by
    itself, so whoever waits for it can count it as hung at once."""
    return _state(f"{proc}/{pid}/stat") in (b"T", b"t")


def is_alive(pid: int, proc: str = "/proc") -> bool:
    """True while any task of process `pid` is running or runnable (not a zombie, not gone)."""
    try:
        tasks = os.listdir(f"{proc}/{pid}/task")
    except OSError:
        tasks = []
    states = [_state(f"{proc}/{pid}/task/{tid}/stat") for tid in tasks] or [_state(f"{proc}/{pid}/stat")]
    return any(state is not None and state not in _DEAD_STATES for state in states)


def _uids_and_state(pid: int, proc: str) -> tuple[set[int], bytes | None]:
    """The real, effective, saved and filesystem uids of `pid` and its leader's state, from one
    read of /proc/<pid>/status (no uids and None if it is gone)."""
    uids, state = set(), None
    try:
        with open(f"{proc}/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"State:"):
                    state = line.split()[1]
                elif line.startswith(b"Uid:"):
                    uids = {int(field) for field in line.split()[1:]}
                    break
    except (OSError, ValueError, IndexError):
        pass
    return uids, state


def uids_of(pid: int, proc: str = "/proc") -> set[int]:
    """The real, effective, saved and filesystem uids of `pid` (empty if it is gone)."""
    return _uids_and_state(pid, proc)[0]


def live_processes_of(uid: int, proc: str = "/proc") -> list[int]:
    """Pids of the processes that run as `uid` (any of their uids) and have a live task."""
    pids = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        uids, state = _uids_and_state(int(entry), proc)
        if uid not in uids or state is None:
            continue
        # A leader that is not a zombie is alive; a zombie leader may still have live threads.
        if state not in _DEAD_STATES or is_alive(int(entry), proc):
            pids.append(int(entry))
    return pids


def session_of(pid: int, proc: str = "/proc") -> int | None:
    try:
        with open(f"{proc}/{pid}/stat", "rb") as stat:
            return int(stat.read().rsplit(b")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def kill_session(sid: int, *, patience_s: float = 2.0) -> bool:
    """SIGKILL every process of session `sid` (a box without a PID namespace: its first process
    calls setsid), each through a pidfd whose session is read after it was opened. A session id
    stays reserved while any process of the session lives, so it never names another's. True
    when none is left."""
    deadline = time.monotonic() + patience_s
    while True:
        members = [int(e) for e in os.listdir("/proc") if e.isdigit() and session_of(int(e)) == sid and is_alive(int(e))]
        if not members:
            return True
        if time.monotonic() >= deadline:
            return False
        for pid in members:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                if session_of(pid) == sid:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            finally:
                os.close(pidfd)
        time.sleep(0.002)


def signal_if_still_of(pid: int, uid: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to process `pid` only if it still runs as `uid`, through a pidfd: the pidfd names
    one process for good, and its uid is read after it was opened, so a pid recycled by another
    process between the sweep and the signal is never hit."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfds (Linux before 5.3): the plain signal, as before
        if uid in uids_of(pid):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
        return
    try:
        if uid in uids_of(pid):  # read after the pidfd: if `pid` is alive it is the pidfd's process
            signal.pidfd_send_signal(pidfd, sig)
    except (ProcessLookupError, PermissionError):
        pass
    finally:
        os.close(pidfd)


def kill_processes_of(uid: int, *, spare: set[int] = frozenset(), patience_s: float = 5.0) -> bool:
    """SIGKILL every live process of `uid` except `spare`, again and again while a fork bomb
    keeps making new ones. A signal to a process reaches all its threads, so a zombie leader with
    a live thread dies too. True when none is left."""
    deadline = time.monotonic() + patience_s
    while True:
        pids = [pid for pid in live_processes_of(uid) if pid not in spare]
        if not pids:
            return True
        if time.monotonic() >= deadline:
            return False
        for pid in pids:
            signal_if_still_of(pid, uid)
        time.sleep(0.005)


def write_kernel_file(path: str, text: str) -> bool:
    """Write one setting to a kernel file (/proc, a cgroup): whether the kernel took it."""
    try:
        with open(path, "w") as handle:
            handle.write(text)
        return True
    except OSError:
        return False


def children_of(pid: int | str = "self") -> list[int]:
    """The pids of `pid`'s children ("self": this process's), from every thread's /proc entry (a
    child is listed under the thread that started it); [] where /proc cannot say."""
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as listing:
                children += [int(child) for child in listing.read().split()]
        except (OSError, ValueError):
            continue
    return children
