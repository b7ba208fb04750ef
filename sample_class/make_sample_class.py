"""Regenerate the bundled sample class: nbgrader's layout with eight students' submissions of
pytorch_slope (the reference, the untouched release and typical mistakes), each with the
timestamp.txt that `nbgrader collect` writes.

    .venv/bin/python sample_class/make_sample_class.py
    make grade          # grades it: python -m autograder autograde pytorch_slope --course-dir sample_class
"""
from __future__ import annotations

import shutil
from pathlib import Path

from autograder.assignment import ASSIGNMENT, NOTEBOOK
from autograder.release.synthetic import RELEASE_NOTEBOOK, make_submission, write_submission

HERE = Path(__file__).resolve().parent

LOSS_SUM = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
UPDATE_PLUS = "def update(w, lr):\n    with torch.no_grad():\n        w += lr * w.grad\n"
ZERO_WEIGHT = "def zero_grad(w):\n    with torch.no_grad():\n        w.zero_()\n"
FORWARD_ITEM = "def forward(x, w):\n    return x * w.item()\n"
UPDATE_REBINDS = "def update(w, lr):\n    w = w - lr * w.grad\n"

# student id -> (notebook, timestamp as nbgrader writes it)
STUDENTS = {
    "ada": (lambda: make_submission(), "2026-11-20 09:12:44.120391 UTC"),
    "ben": (lambda: make_submission(solved=False), "2026-11-20 10:01:02.000000 UTC"),
    "chen": (lambda: make_submission({"criterion": LOSS_SUM}), "2026-11-21 17:45:10.511111 UTC"),
    "dara": (lambda: make_submission({"update": UPDATE_PLUS}), "2026-11-21 23:59:00.000000 UTC"),
    "emil": (lambda: make_submission({"zero_grad": ZERO_WEIGHT}), "2026-11-22 08:30:00.000000 UTC"),
    "fatima": (lambda: make_submission({"forward": FORWARD_ITEM}), "2026-11-22 12:00:00.000000 UTC"),
    "gus": (lambda: make_submission({"update": UPDATE_REBINDS, "criterion": LOSS_SUM}), "2026-11-22 15:20:00.000000 UTC"),
    "hana": (lambda: make_submission(), "2026-11-25 02:14:00.000000 UTC"),
}


def main() -> None:
    submitted = HERE / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)
    for student, (build, timestamp) in STUDENTS.items():
        folder = submitted / student / ASSIGNMENT
        write_submission(folder / NOTEBOOK, build())
        (folder / "timestamp.txt").write_text(timestamp + "\n")
    print(f"wrote {len(STUDENTS)} submissions under {submitted} (from {RELEASE_NOTEBOOK})")


if __name__ == "__main__":
    main()
