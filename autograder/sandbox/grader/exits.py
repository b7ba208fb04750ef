"""Which limit a box hit, from its exit record, in words a student can act on.

The zygote keeps, for each box, how its first process ended (zygote/boxes.py: exit code or
signal, CPU time, peak memory), as ioi/isolate's meta file does; a cgroup adds whether the kernel
killed it for memory. The record comes from the kernel through the zygote, where no student code
runs, but its numbers are still bounded here before they are used.
"""
from __future__ import annotations

import signal

from autograder.sandbox.grader.limits import Limits

CPU_TIME, MEMORY, EXITED, KILLED, CRASHED = "cpu_time", "memory", "exited", "killed", "crashed"
_CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}


def _int(value, low: int, high: int) -> int | None:
    return value if type(value) is int and low <= value <= high else None


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1e9 else 0.0


def accepted(record: dict) -> dict:
    """The record's fields, each bounded (anything else dropped)."""
    return {"exit_code": _int(record.get("exit_code"), -255, 255), "signal": _int(record.get("signal"), 1, 64),
            "cpu_s": round(_number(record.get("cpu_s")), 3), "max_rss_bytes": int(_number(record.get("max_rss_bytes")))}


def limit_hit(record: dict, limits: Limits, *, out_of_memory: bool = False) -> str | None:
    """CPU_TIME, MEMORY, EXITED, KILLED or CRASHED; None when there is no record."""
    if not record:
        return None
    sig, cpu = record.get("signal"), record.get("cpu_s", 0.0)
    if sig == signal.SIGXCPU or (sig == signal.SIGKILL and limits.cpu_seconds and cpu >= limits.cpu_seconds - 1):
        return CPU_TIME
    if out_of_memory:
        return MEMORY
    if sig is None:
        return EXITED
    return CRASHED if sig in _CRASH_SIGNALS else KILLED


def explained(record: dict, limits: Limits, *, out_of_memory: bool = False) -> str:
    """Why the box's process ended, for the student (after "its Python process ended while ...: ")."""
    record = accepted(record) if record else {}
    hit = limit_hit(record, limits, out_of_memory=out_of_memory)
    if hit == CPU_TIME:
        return f"it used up its CPU time limit ({limits.cpu_seconds} s of processor time in all)"
    if hit == MEMORY:
        return f"it ran out of memory (the limit is {limits.memory_bytes // 2**20} MiB)"
    if hit == EXITED:
        return (f"the code ended its own process (exit status {record['exit_code']}): a call such as exit(), "
                "sys.exit() or os._exit() in the notebook")
    if hit == CRASHED:
        return f"the process crashed ({signal.Signals(record['signal']).name})"
    if hit == KILLED:
        name = signal.Signals(record["signal"]).name if record["signal"] in signal.valid_signals() else record["signal"]
        return f"the process was killed ({name}): by the notebook's own code, or by the system when memory ran out"
    return "the code called exit, killed its process, or ran out of memory or CPU time"
