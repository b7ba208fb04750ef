"""What a student feels: one `python -m autograder grade` (what Gradescope runs per submission)
against the import floor `python -c "import torch, matplotlib.pyplot"` in the same venv, measured
side by side (interleaved, so both see the same machine), median of N runs each.

    python benchmarks/grade_startup.py [--n 5]

Prints both medians and their ratio. The kit's target is a ratio of at most 1.5.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))

from autograder.release.synthetic import make_submission, write_submission  # noqa: E402


def _seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=KIT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5)
    n = parser.parse_args().n
    folder = Path(tempfile.mkdtemp(prefix="grade-startup-"))
    notebook = write_submission(folder / "submission" / "pytorch_slope.ipynb", make_submission())
    floor_cmd = [sys.executable, "-c", "import torch, matplotlib.pyplot"]
    grade_cmd = [sys.executable, "-m", "autograder", "grade", str(notebook), "--format", "gradescope"]
    _seconds(floor_cmd)  # warm the page cache for both
    _seconds(grade_cmd)
    floor, grade = [], []
    for _ in range(n):
        floor.append(_seconds(floor_cmd))
        grade.append(_seconds(grade_cmd))
    f, g = statistics.median(floor), statistics.median(grade)
    print(f"import floor (import torch, matplotlib.pyplot): median {f:.2f} s of {n} ({min(floor):.2f}-{max(floor):.2f})")
    print(f"python -m autograder grade (the reference):     median {g:.2f} s of {n} ({min(grade):.2f}-{max(grade):.2f})")
    print(f"grade / import floor: {g / f:.2f}x (target: at most 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
