"""The assignment's contract in one place: its name, the student's functions, and the checks
with their points. The names are also the grade ids of the notebook's test cells and the test
names in Gradescope's results, so they never change between paths.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

ASSIGNMENT = "pytorch_slope"
NOTEBOOK = f"{ASSIGNMENT}.ipynb"

# check name -> points. The pytest test for check `x` is `test_x` in autograder/checks/test_x.py.
CHECKS: dict[str, int] = {
    "forward": 1,
    "loss": 2,
    "gradient": 2,
    "update": 2,
    "zero_grad": 1,
    "final_loss": 2,
}
MANUAL_CHECKS: dict[str, int] = {"why_updates_shrink": 2}
MAX_SCORE = sum(CHECKS.values())

KIT_ROOT = Path(__file__).resolve().parent.parent
REFERENCE_FILE = KIT_ROOT / "solutions" / "pytorch_slope.py"
GRADING_FILE = Path(__file__).resolve().parent / "grading.json"


def grading_settings() -> dict:
    """The term's grading seed and hidden-data settings (never released to students)."""
    return json.loads(GRADING_FILE.read_text())


def grader_fingerprint() -> str:
    """sha256 over everything that decides a score: the checks, the probes, the provided loop,
    the reference, the term's grading settings and the release (whose locked cells are restored).
    A stored grade made with another fingerprint is stale: `autograde` grades it again."""
    package = Path(__file__).resolve().parent
    files = sorted(package.glob("checks/*.py")) + [
        package / "checks" / "pytest.ini", package / "sandbox" / "probes.py", package / "provided.py",
        REFERENCE_FILE, GRADING_FILE, KIT_ROOT / "release" / ASSIGNMENT / NOTEBOOK,
    ]
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    return digest.hexdigest()
