"""The assignment's contract in one place: its name, the student's functions, and the checks
with their points. The names are also the grade ids of the notebook's test cells and the test
names in Gradescope's results, so they never change between paths.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
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


# Package files that can change a score: all grading code, its settings and configuration
# (not templates or docs: changing how feedback looks does not make a grade stale).
_FINGERPRINT_SUFFIXES = (".py", ".json", ".ini")


def _fingerprinted_files() -> list[Path]:
    package = Path(__file__).resolve().parent
    files = [p for p in package.rglob("*") if p.suffix in _FINGERPRINT_SUFFIXES and "__pycache__" not in p.parts]
    return sorted(files) + [REFERENCE_FILE, KIT_ROOT / "release" / ASSIGNMENT / NOTEBOOK]


def grader_fingerprint(device: str = "cpu", limits: object = None) -> str:
    """sha256 over everything that decides a score: every .py/.json/.ini file of the grader
    package (checks, probes, sandbox, provided loop, grading secret: found by walking the package,
    not from a hand-kept list), the reference, the release (whose locked cells are restored), the
    torch version, the grading device and the limits (`repr` of sandbox.limits.Limits). A stored
    grade made with another fingerprint is stale: `autograde` grades it again."""
    digest = hashlib.sha256()
    for path in _fingerprinted_files():
        name = path.relative_to(KIT_ROOT).as_posix() if path.is_relative_to(KIT_ROOT) else path.name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"") + b"\0")
    try:
        torch_version = importlib.metadata.version("torch")  # no torch import: the batch's parent avoids it
    except importlib.metadata.PackageNotFoundError:
        torch_version = "none"
    digest.update(f"torch={torch_version}\0device={device}\0limits={limits!r}".encode())
    return digest.hexdigest()
