"""Where one submission's grading time goes since the checks run in clean rooms: the notebook in
its sandbox, the checks on the notebook's own state (integrity only), the checks in one room
each (forked from a template box where the platform allows it, and for comparison one box per
room), and what starting a room costs (the first room of a template includes the template's box
and definitions). Prints the median of N gradings of the reference.

    .venv/bin/python benchmarks/clean_room_timing.py [--n 7]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from autograder.assignment import PYTORCH_SLOPE, grading_settings
from autograder.checks.runner import run_checks
from autograder.notebook.load import load_submission
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.grader.rooms import CleanRooms
from autograder.sandbox.grader.zygotes import Zygote


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=7)
    n = parser.parse_args().n
    path = write_submission(Path(tempfile.mkdtemp()) / "pytorch_slope.ipynb", make_submission())
    seed = grading_settings()["grading_seed"]
    loaded = load_submission(path, PYTORCH_SLOPE.release_notebook)
    samples: dict[str, list[float]] = {k: [] for k in ("submission", "notebook", "own state", "rooms", "rooms: start", "rooms, box each", "rooms, box each: start")}
    with Zygote() as zygote:
        context = GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE)
        grade_submission(path, context)  # warm-up
        for _ in range(n):
            start = time.perf_counter()
            result = grade_submission(path, context)
            samples["submission"].append(time.perf_counter() - start)
            assert result.score == result.max_score, result
            with zygote.spawn(device="cpu", limits=Limits()) as sandbox:
                start = time.perf_counter()
                sandbox.execute(loaded.cells)
                samples["notebook"].append(time.perf_counter() - start)
                start = time.perf_counter()
                run_checks(sandbox, grading_seed=seed)
                samples["own state"].append(time.perf_counter() - start)
            for key, template in (("rooms", None), ("rooms, box each", False)):
                start = time.perf_counter()
                with CleanRooms(zygote, loaded.cells, device="cpu", limits=Limits(), labels=loaded.labels,
                                template=template) as rooms:
                    run_checks(rooms, grading_seed=seed)
                samples[key].append(time.perf_counter() - start)
                samples[f"{key}: start"].append(rooms.seconds_starting / max(rooms.rooms_opened, 1))
    for name, values in samples.items():
        print(f"{name:>24}: median {statistics.median(values):.3f} s (min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
