"""Regenerate the bundled sample class from the current release: nbgrader's layout with eight
students' submissions of pytorch_slope (the reference, the untouched release and typical
mistakes), each with the timestamp.txt that `nbgrader collect` writes. `release` does this
itself after every successful run; the students are listed in autograder/release/sample_class.py.

    .venv/bin/python sample_class/make_sample_class.py
    make grade          # grades it: python -m autograder autograde pytorch_slope --course-dir sample_class
"""
from __future__ import annotations

from pathlib import Path

from autograder.release.sample_class import STUDENTS, build

KIT_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    submitted = build(KIT_ROOT)
    print(f"wrote {len(STUDENTS)} submissions under {submitted} (from {KIT_ROOT / 'release'})")


if __name__ == "__main__":
    main()
