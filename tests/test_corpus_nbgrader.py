"""The corpus through nbgrader's own path: temporary courses made from source/ with the kit's
nbgrader settings, `nbgrader generate_assignment`, the scenarios placed under submitted/ of two
courses (one per core) graded by two concurrent `nbgrader autograde` runs, then the per-grade-id
scores read back from the gradebooks with nbgrader's API. Scenarios that only wait out a cell
timeout (`hangs`) are left out here: on this path they prove nothing but nbgrader's own timeout,
and the engine's tests cover them. They must equal the engine's scores (tests/corpus/scenarios.py), the manual
question must be left for a human, and a passing hidden check must write nothing to stderr (nbgrader
scores such a cell 0).

Differences from the kit's settings, all deliberate and stated here:
* the cell timeout is 8 s instead of 60 s: nbgrader interrupts a hanging cell either way, and a
  looping `update` is called by four top-level cells, so the kit's 60 s would cost four minutes
  (the slowest correct cell, the first hidden check importing pytest, takes about 1.5 s);
* `Execute.execute_retries` is 2 instead of 0: nbgrader's own knob "for CI environments when tests
  are flaky". A notebook whose kernel stops answering (nbgrader's RuntimeError, e.g. no output
  within its 4 s iopub timeout while the suite's other module loads both cores) is executed again
  instead of failing the whole course; it changes no score (a timed-out cell is interrupted and
  scored as before, with no retry). One student's notebook failed a whole `.ci/run` once
  (2026-12-07); its cause was not captured (the message kept only the log's tail; it now also
  lists every error line nbgrader logged);
* `Execute.iopub_timeout` is 30 s instead of 4: how long nbclient waits for a cell's output after
  its reply. On a busy machine (other graders, load average 12) the output came later than 4 s and
  nbgrader failed whole notebooks ("Timeout waiting for IOPub output"), retries included; waiting
  longer costs nothing when the output is there;
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
NBGRADER_EXECUTE_RETRIES = 2
NBGRADER_IOPUB_TIMEOUT_S = 30

# Scenarios where nbgrader's path cannot give the engine's scores, and why. Each is an xfail
# (strict: it fails loudly once fixed), never a skip. None at present: the master's zero_grad
# self-check used to reject `w.grad = None`, which issue 2 allows; it accepts it now.
KNOWN_MISMATCHES: dict[str, str] = {}


def _run(args, course, env, timeout):
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


NBGRADER_SCENARIOS = [s for s in SCENARIOS if not s.hangs]
NBGRADER_IDS = [s.name for s in NBGRADER_SCENARIOS]
COURSES = 2  # one `nbgrader autograde` per core


def _make_course(course: Path, env: dict) -> None:
    shutil.copytree(KIT_ROOT / "source", course / "source")
    # The kit's own config computes its paths from its own folder, so a copy points at `course`.
    config = (KIT_ROOT / "nbgrader_config.py").read_text()
    config += f"\n# tests/test_corpus_nbgrader.py: hanging scenarios cost less (see its docstring)\n" \
              f"c.ExecutePreprocessor.timeout = {NBGRADER_CELL_TIMEOUT_S}\n" \
              f"c.Execute.execute_retries = {NBGRADER_EXECUTE_RETRIES}\n" \
              f"c.Execute.iopub_timeout = {NBGRADER_IOPUB_TIMEOUT_S}\n"
    (course / "nbgrader_config.py").write_text(config)
    _run(["generate_assignment", ASSIGNMENT, "--force"], course, env, timeout=300)


@pytest.fixture(scope="module")
def autograded(tmp_path_factory, corpus_notebooks):
    """Grade the corpus with nbgrader in two courses at once; scenario name -> (course, db url)."""
    env = dict(os.environ)
    # nbgrader's gradebook migrations run the `alembic` script that sits beside the interpreter
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["MPLBACKEND"] = "Agg"
    first = tmp_path_factory.mktemp("nbgrader_course")
    _make_course(first, env)
    courses = [first] + [tmp_path_factory.mktemp("nbgrader_course") for _ in range(COURSES - 1)]
    for course in courses[1:]:  # generate_assignment once; the copies share its output
        shutil.copytree(first, course, dirs_exist_ok=True)
    where = {}
    for index, scenario in enumerate(NBGRADER_SCENARIOS):
        course = courses[index % COURSES]
        target = course / "submitted" / scenario.name / ASSIGNMENT / NOTEBOOK
        target.parent.mkdir(parents=True)
        shutil.copy(corpus_notebooks[scenario.name], target)
        where[scenario.name] = (course, f"sqlite:///{course / '.nbgrader' / 'gradebook.db'}")
    runs = [subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force"], cwd=course,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for course in courses]
    for run in runs:
        out, err = run.communicate(timeout=60 * len(NBGRADER_SCENARIOS) + 300)
        tracebacks = [line for line in err.splitlines() if "Error" in line or "Traceback" in line]
        assert run.returncode == 0, (f"nbgrader autograde failed:\n{out[-3000:]}\n{err[-5000:]}\n"
                                     "errors it logged:\n" + "\n".join(tracebacks[-40:]))
    return where


@pytest.fixture(scope="module")
def gradebook_grades(autograded):
    """scenario name -> {grade id: nbgrader Grade's (auto_score, needs_manual_grade)}."""
    from nbgrader.api import Gradebook

    grades = {}
    for scenario in NBGRADER_SCENARIOS:
        _, db_url = autograded[scenario.name]
        with Gradebook(db_url, course_id="pytorch-slope") as gradebook:
            notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, scenario.name)
            grades[scenario.name] = {g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades}
    return grades


def _autograded_notebook(course: Path, name: str):
    return nbformat.read(course / "autograded" / name / ASSIGNMENT / NOTEBOOK, as_version=4)


@pytest.mark.parametrize("scenario", [
    pytest.param(s, marks=pytest.mark.xfail(reason=KNOWN_MISMATCHES[s.name], strict=True))
    if s.name in KNOWN_MISMATCHES else s for s in NBGRADER_SCENARIOS], ids=NBGRADER_IDS)
def test_nbgrader_scores_equal_the_engines(scenario, gradebook_grades):
    grades = gradebook_grades[scenario.name]
    assert set(grades) == set(CHECKS) | set(MANUAL_CHECKS)
    got = {name: grades[name][0] for name in CHECKS}
    assert got == scenario.scores


@pytest.mark.parametrize("scenario", NBGRADER_SCENARIOS, ids=NBGRADER_IDS)
def test_manual_question_is_left_for_a_human(scenario, gradebook_grades):
    auto_score, needs_manual = gradebook_grades[scenario.name][MANUAL_CELL]
    if scenario.answer is None:  # untouched answer: nbgrader gives 0 itself, nothing to read
        assert (auto_score, needs_manual) == (0, False)
    else:
        assert auto_score is None and needs_manual, "an answered question must wait for a human"


def test_passing_checks_write_nothing_to_stderr(autograded):
    """nbgrader scores a test cell 0 when it writes to stderr: a passing hidden check never does,
    in any scenario (the reference passes all six)."""
    for scenario in NBGRADER_SCENARIOS:
        if scenario.name in KNOWN_MISMATCHES:  # its zero_grad cell fails on this path (see above)
            continue
        course, _ = autograded[scenario.name]
        notebook = _autograded_notebook(course, scenario.name)
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if grade_id not in CHECKS or scenario.scores[grade_id] == 0:
                continue
            streams = [o for o in cell.outputs if o.output_type == "stream"]
            assert not [o for o in streams if o.name == "stderr"], (scenario.name, grade_id, streams)
            assert any(f"[{grade_id}] passed" in o.text for o in streams), (scenario.name, grade_id)
