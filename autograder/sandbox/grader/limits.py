"""Per-submission limits: plain settings, importable without torch (the batch's parent needs
them and never imports torch).

The limits that judge the student's work (a cell's, the notebook's, a probe's, the checks'
together) count the CPU time the student's code uses; each also has a wall-clock ceiling
`wall_factor` times longer, for code that waits instead of computing (shared/clocks.py). The
grader's deadlines from outside the box sit a grace above those ceilings, and
`worst_case_seconds` adds them up: it holds whatever a submission does.
"""
from __future__ import annotations

from dataclasses import dataclass

from autograder.sandbox.shared.clocks import WALL_FACTOR, wall_ceiling_s


@dataclass
class Limits:
    """Per-submission limits. Times in seconds, sizes in bytes."""

    cell_timeout_s: float = 20.0  # nbgrader's cell timeout, per cell (CPU time, as every limit here)
    execute_timeout_s: float = 120.0  # the whole notebook
    probe_timeout_s: float = 10.0  # one check's call into student code
    checks_timeout_s: float = 120.0  # every check's probes together
    wall_factor: float = WALL_FACTOR  # each limit above, by the wall clock: this many times longer
    cpu_seconds: int = 300
    memory_bytes: int = 6 * 1024**3  # address space; torch alone reserves about 1.5 GB of it
    file_bytes: int = 64 * 1024**2
    open_files: int = 256
    processes: int = 64
    # Every writable folder of the sandbox is a private tmpfs of this size (memory, not the host's
    # disk): /submission (the submitted files are in it too), /tmp and /dev/shm each.
    submission_bytes: int = 128 * 1024**2
    scratch_bytes: int = 128 * 1024**2
    # The files submitted beside the notebook that are copied into /submission.
    submitted_files_bytes: int = 32 * 1024**2
    submitted_files_count: int = 200

    def wall_s(self, cpu_s: float) -> float:
        """The wall-clock ceiling of a limit of `cpu_s` seconds of CPU time."""
        return wall_ceiling_s(cpu_s, self.wall_factor)

    def rlimits(self, device: str) -> dict:
        return {
            "cpu_seconds": self.cpu_seconds,
            # CUDA maps tens of GB of address space; an address-space cap would break it.
            "memory_bytes": None if device.startswith("cuda") else self.memory_bytes,
            "file_bytes": self.file_bytes,
            "open_files": self.open_files,
            "processes": self.processes,
            "submission_bytes": self.submission_bytes,
            "scratch_bytes": self.scratch_bytes,
        }


# The grader's own deadlines around the sandbox's limits (box_client.py enforces them from outside).
STARTUP_TIMEOUT_S = 30.0  # the sandbox's "ready" after the fork
CELL_GRACE_S = 10.0  # past a cell's (and the notebook's) wall ceiling (enforced inside), before the grader gives up on it
PROBE_GRACE_S = 5.0  # past a probe's wall ceiling (enforced inside), before the grader gives up on it
CLOSE_S = 10.0  # killing a sandbox's processes and removing its folder
ZYGOTE_START_S = 120.0  # importing torch on a loaded machine; a zygote slower than this failed
GRADER_OVERHEAD_S = 30.0  # loading the notebook, running pytest around the probes


def worst_case_seconds(limits: Limits, *, rooms: int = 0) -> float:
    """The most one submission can hold the grader once its first sandbox is forked, whatever
    the submission does (every deadline is absolute and enforced from outside): the sandbox that
    runs the notebook (start-up, the notebook's wall ceiling and grace, its own checks' budget
    by the wall clock, closing), plus `rooms` clean rooms (clean_room.py), each started and
    closed, sharing one checks' budget (its wall ceiling)."""
    checks_wall_s = limits.wall_s(limits.checks_timeout_s)
    one_sandbox = STARTUP_TIMEOUT_S + limits.wall_s(limits.execute_timeout_s) + CELL_GRACE_S + checks_wall_s + CLOSE_S
    clean_rooms = rooms * (STARTUP_TIMEOUT_S + CLOSE_S) + checks_wall_s if rooms else 0.0
    return one_sandbox + clean_rooms


def hard_timeout_for(limits: Limits | None, checks: int) -> float:
    """A submission's worst case in the grader: every deadline of its sandbox and of its clean
    rooms, one per check (enforced from outside, so they hold whatever the submission does),
    plus a zygote restart. Past this a batch worker is presumed stuck, and `grade`'s watchdog
    ends the grader. Here, torch-free: the batch's parent uses it."""
    return worst_case_seconds(limits or Limits(), rooms=checks) + ZYGOTE_START_S + GRADER_OVERHEAD_S
