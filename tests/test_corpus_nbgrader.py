"""The corpus through nbgrader's own path: a temporary course made from source/ with the kit's
nbgrader settings, `nbgrader generate_assignment`, every scenario placed under submitted/, ONE
`nbgrader autograde` for all of them, then the per-grade-id scores read back from the gradebook
with nbgrader's API. They must equal the engine's scores (tests/corpus/scenarios.py), the manual
question must be left for a human, and a passing hidden check must write nothing to stderr (nbgrader
scores such a cell 0).

Differences from the kit's settings, both deliberate and stated here:
* the cell timeout is 8 s instead of 60 s: nbgrader interrupts a hanging cell either way, and a
  looping `update` is called by four top-level cells, so the kit's 60 s would cost four minutes
  (the slowest correct cell, the first hidden check importing pytest, takes about 1.5 s);
* nothing else (same course id, same stubs, same gradebook layout).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from corpus.scenarios import MANUAL_CELL, SCENARIOS

from autograder.assignment import ASSIGNMENT, CHECKS, KIT_ROOT, MANUAL_CHECKS, NOTEBOOK

pytestmark = pytest.mark.slow

NBGRADER_CELL_TIMEOUT_S = 8
IDS = [s.name for s in SCENARIOS]

# Scenarios where nbgrader's path cannot give the engine's scores, and why. Each is an xfail
# (strict: it fails loudly once fixed), never a skip. None at present: the master's zero_grad
# self-check used to reject `w.grad = None`, which issue 2 allows; it accepts it now.
KNOWN_MISMATCHES: dict[str, str] = {}


def _run(args, course, env, timeout):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


@pytest.fixture(scope="module")
def autograded(tmp_path_factory, corpus_notebooks):
    """Run nbgrader once over the whole corpus; return (course folder, db url)."""
    course = tmp_path_factory.mktemp("nbgrader_course")
    shutil.copytree(KIT_ROOT / "source", course / "source")
    # The kit's own config computes its paths from its own folder, so a copy points at `course`.
    config = (KIT_ROOT / "nbgrader_config.py").read_text()
    config += f"\n# tests/test_corpus_nbgrader.py: hanging scenarios cost less (see its docstring)\n" \
              f"c.ExecutePreprocessor.timeout = {NBGRADER_CELL_TIMEOUT_S}\n"
    (course / "nbgrader_config.py").write_text(config)
    env = dict(os.environ)
    # nbgrader's gradebook migrations run the `alembic` script that sits beside the interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    _run(["generate_assignment", ASSIGNMENT, "--force"], course, env, timeout=300)
    for name, path in corpus_notebooks.items():
        target = course / "submitted" / name / ASSIGNMENT / NOTEBOOK
        target.parent.mkdir(parents=True)
        shutil.copy(path, target)
    # generous: about 10 s a submission, plus a few interrupted cells for the scenarios that hang
    _run(["autograde", ASSIGNMENT, "--force"], course, env, timeout=60 * len(SCENARIOS) + 300)
    return course, f"sqlite:///{course / '.nbgrader' / 'gradebook.db'}"


@pytest.fixture(scope="module")
def gradebook_grades(autograded):
    """scenario name -> {grade id: nbgrader Grade's (auto_score, needs_manual_grade)}."""
    from nbgrader.api import Gradebook

    _, db_url = autograded
    grades = {}
    with Gradebook(db_url, course_id="pytorch-slope") as gradebook:
        for scenario in SCENARIOS:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, scenario.name)
            grades[scenario.name] = {g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades}
    return grades


def _autograded_notebook(course: Path, name: str):
    return nbformat.read(course / "autograded" / name / ASSIGNMENT / NOTEBOOK, as_version=4)


@pytest.mark.parametrize("scenario", [
    pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_MISMATCHES[s.name], strict=True))
    if s.name in KNOWN_MISMATCHES else s for s in SCENARIOS], ids=IDS)
def test_nbgrader_scores_equal_the_engines(scenario, gradebook_grades):
    grades = gradebook_grades[scenario.name]
    assert set(grades) == set(CHECKS) | set(MANUAL_CHECKS)
    got = {name: grades[name][0] for name in CHECKS}
    assert got == scenario.scores


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_manual_question_is_left_for_a_human(scenario, gradebook_grades):
    auto_score, needs_manual = gradebook_grades[scenario.name][MANUAL_CELL]
    if scenario.answer is None:  # untouched answer: nbgrader gives 0 itself, nothing to read
        assert (auto_score, needs_manual) == (0, False)
    else:
        assert auto_score is None and needs_manual, "an answered question must wait for a human"


def test_passing_checks_write_nothing_to_stderr(autograded):
    """nbgrader scores a test cell 0 when it writes to stderr: a passing hidden check never does,
    in any scenario (the reference passes all six)."""
    course, _ = autograded
    for scenario in SCENARIOS:
        if scenario.name in KNOWN_MISMATCHES:  # its zero_grad cell fails on this path (see above)
            continue
        notebook = _autograded_notebook(course, scenario.name)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id not in CHECKS or scenario.scores[grade_id] == 0:
                continue
            streams = [o for o in cell.outputs if o.output_type == "stream"]
            assert not [o for o in streams if o.name == "stderr"], (scenario.name, grade_id, streams)
            assert any(f"[{grade_id}] passed" in o.text for o in streams), (scenario.name, grade_id)
