"""Which clock a time limit counts, for the grader and the box alike.

A limit that judges the student's work (a cell's, a probe's, the notebook's budget, the checks'
shared budget) counts the CPU time the student's code used, as the kernel accounts it to the
process that runs it: a class graded beside a busy machine (another grader, a CPU hog) then gets
exactly the scores it gets on a quiet one. Code that waits without computing (a sleep, a blocked
read) uses no CPU, so each such limit also has a wall-clock ceiling `WALL_FACTOR` times longer,
which ends it whatever it does; the grader's own deadlines from outside the box (grader/limits.py)
sit above those ceilings. A step that loops and one that sleeps both end as "did not finish
within N s", whichever clock ran out first.
"""
from __future__ import annotations

import time

# How much longer than its CPU limit a step may take by the wall clock: a machine this many
# times oversubscribed still grades as a quiet one; a step that sleeps is ended at the ceiling.
WALL_FACTOR = 3.0


def wall_ceiling_s(cpu_s: float, factor: float = WALL_FACTOR) -> float:
    """The wall-clock ceiling of a limit of `cpu_s` seconds of CPU time."""
    return cpu_s * factor


def cpu_seconds() -> float:
    """The CPU time (user and system, every thread) this process has used so far."""
    return time.process_time()


def wall_factor(request: dict) -> float:
    """The wall-clock factor a request to a box carries (`wall_factor`), or the default."""
    factor = request.get("wall_factor")
    return float(factor) if isinstance(factor, (int, float)) and factor >= 1 else WALL_FACTOR
