"""The bundled sample class (sample_class/ at the kit's root): eight students in nbgrader's layout,
each submission built from the *current* release (the reference, the untouched release and
typical mistakes), with the timestamp.txt that `nbgrader collect` writes.

Built from another release, every row of `make grade` would say "Locked cells were changed and
have been restored": `release` rebuilds it after every successful run, `release --check-only`
fails while it is stale (`stale_locked_cells`), and `python sample_class/make_sample_class.py`
rebuilds it by hand.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from autograder.assignment import ASSIGNMENT, KIT_ROOT, NOTEBOOK, PYTORCH_SLOPE
from autograder.notebook.load import grade_id_of
from autograder.release.synthetic import make_submission, write_submission

FOLDER_NAME = "sample_class"

LOSS_SUM = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
UPDATE_PLUS = "def update(w, lr):\n    with torch.no_grad():\n        w += lr * w.grad\n"
ZERO_WEIGHT = "def zero_grad(w):\n    with torch.no_grad():\n        w.zero_()\n"
FORWARD_ITEM = "def forward(x, w):\n    return x * w.item()\n"
UPDATE_REBINDS = "def update(w, lr):\n    w = w - lr * w.grad\n"

# student id -> (what the submission holds, timestamp as nbgrader writes it)
STUDENTS: dict[str, tuple[dict, str]] = {
    "ada": ({}, "2026-11-20 09:12:44.120391 UTC"),
    "ben": ({"solved": False}, "2026-11-20 10:01:02.000000 UTC"),
    "chen": ({"overrides": {"criterion": LOSS_SUM}}, "2026-11-21 17:45:10.511111 UTC"),
    "dara": ({"overrides": {"update": UPDATE_PLUS}}, "2026-11-21 23:59:00.000000 UTC"),
    "emil": ({"overrides": {"zero_grad": ZERO_WEIGHT}}, "2026-11-22 08:30:00.000000 UTC"),
    "fatima": ({"overrides": {"forward": FORWARD_ITEM}}, "2026-11-22 12:00:00.000000 UTC"),
    "gus": ({"overrides": {"update": UPDATE_REBINDS, "criterion": LOSS_SUM}}, "2026-11-22 15:20:00.000000 UTC"),
    "hana": ({}, "2026-11-25 02:14:00.000000 UTC"),
}


def _release_notebook(root: Path) -> Path:
    return PYTORCH_SLOPE.at(root).release_notebook


def build(root: Path = KIT_ROOT) -> Path | None:
    """Rebuild root/sample_class/submitted/ from root's release and master; None if the kit has
    no sample class (a copy without it)."""
    root = Path(root)
    folder = root / FOLDER_NAME
    if not folder.is_dir():
        return None
    submitted = folder / "submitted"
    shutil.rmtree(submitted, ignore_errors=True)
    for student, (how, timestamp) in STUDENTS.items():
        solved = how.get("solved", True)  # the untouched release answers nothing; the others the written question too
        notebook = make_submission(how.get("overrides"), solved=solved, answered=solved,
                                   release=_release_notebook(root), source=PYTORCH_SLOPE.at(root).master)
        target = submitted / student / ASSIGNMENT
        write_submission(target / NOTEBOOK, notebook)
        (target / "timestamp.txt").write_text(timestamp + "\n")
    return submitted


def _locked_cells(notebook) -> dict[str, str]:
    return {grade_id_of(c): c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("locked") and grade_id_of(c)}


def stale_locked_cells(root: Path = KIT_ROOT) -> dict[str, list[str]]:
    """Student -> the release's locked cells (grade ids) that their sample notebook does not hold
    unchanged; empty when the sample class matches the release (or the kit has none)."""
    root = Path(root)
    submitted = root / FOLDER_NAME / "submitted"
    release_path = _release_notebook(root)
    if not submitted.is_dir() or not release_path.is_file():
        return {}
    locked = _locked_cells(nbformat.read(release_path, as_version=4))
    stale = {}
    for notebook_path in sorted(submitted.glob(f"*/{ASSIGNMENT}/*.ipynb")):
        student = notebook_path.parent.parent.name
        try:
            cells = _locked_cells(nbformat.read(notebook_path, as_version=4))
        except Exception:  # an unreadable sample notebook is stale too
            cells = {}
        differ = [grade_id for grade_id, source in locked.items() if cells.get(grade_id) != source]
        if differ:
            stale[student] = differ
    return stale
