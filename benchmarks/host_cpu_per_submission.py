"""What one submission costs the whole machine, kernel included: the batch's class mix graded one
after another in this process with one warm zygote and one open pytest session (as one worker of
`autograde` does), with the host's CPU time split into user and kernel (/proc/stat) and its page
faults and page allocations (/proc/vmstat), per submission. Everything on the machine counts, so
run it on an otherwise idle machine. With --without-own-state the checks on the notebook's own
state (integrity flags only) are left out, to measure their share.

    .venv/bin/python benchmarks/host_cpu_per_submission.py [--n 40] [--without-own-state]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT / "benchmarks"))

from batch_vs_nbgrader import build_course, class_mix  # noqa: E402

from autograder import pipeline  # noqa: E402
from autograder.assignment import PYTORCH_SLOPE  # noqa: E402
from autograder.sandbox.grader.zygotes import Zygote  # noqa: E402

VMSTAT = ("pgfault", "pgalloc_normal", "thp_split_pmd")


def host_cpu_s() -> tuple[float, float]:
    """(user + nice, system + irq + softirq) of the whole machine, in seconds."""
    fields = [int(v) for v in open("/proc/stat").readline().split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1]) / tick, (fields[2] + fields[5] + fields[6]) / tick


def vmstat() -> dict[str, int]:
    with open("/proc/vmstat") as counters:
        return {name: int(value) for name, value in (line.split() for line in counters) if name in VMSTAT}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--without-own-state", action="store_true")
    args = parser.parse_args()
    course = Path(tempfile.mkdtemp(prefix="host-cpu-"))
    build_course(course, class_mix(args.n))
    notebooks = sorted(course.glob("submitted/*/*/*.ipynb"))
    with Zygote() as zygote:
        context = pipeline.GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE)
        session = context.check_session = pipeline.open_check_session(context)
        if args.without_own_state:
            run = session.run

            def clean_rooms_only(passes, **options):
                own_state = passes.pop(pipeline.OWN_STATE, None)
                if own_state is not None:
                    own_state.close()
                return run(passes, **options)

            session.run = clean_rooms_only
        pipeline.grade_submission(notebooks[0], context)  # warm: the session's first checks import the reference
        (user0, system0), faults0, start = host_cpu_s(), vmstat(), time.perf_counter()
        for notebook in notebooks:
            pipeline.grade_submission(notebook, context)
        wall = time.perf_counter() - start
        (user1, system1), faults1 = host_cpu_s(), vmstat()
    n = len(notebooks)
    print(f"{n} submissions{' without the own-state checks' if args.without_own_state else ''}: "
          f"{wall / n * 1000:.0f} ms each by the clock; host CPU {(user1 - user0) / n * 1000:.0f} ms user + "
          f"{(system1 - system0) / n * 1000:.0f} ms kernel each")
    print("per submission: " + ", ".join(f"{name} {(faults1[name] - faults0[name]) / n:.0f}" for name in VMSTAT))


if __name__ == "__main__":
    main()
