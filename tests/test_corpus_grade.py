"""The corpus through the kit's own engine (`autograder.pipeline.grade_submission`): every
scenario gets exactly its expected per-check scores, the feedback names the expected
misconception and phrases, and no feedback ever shows solution code or hidden-test source.

One session-scoped zygote serves every scenario; each scenario is graded once (lazily, so `-k`
selects cheaply) and its result shared by the tests below.
"""
from __future__ import annotations

import os
import re
from collections import Counter

import nbformat
import pytest
from corpus.scenarios import SCENARIOS, Scenario

from autograder.assignment import CHECKS, PYTORCH_SLOPE, REFERENCE_FILE
from autograder.checks.runner import CHECKS_DIR
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import RELEASE_NOTEBOOK, SOLUTION_CELLS, SOURCE_NOTEBOOK, solution_sources

IDS = [s.name for s in SCENARIOS]

# Every misconception issue 2 asks the corpus to cover (wrong_device needs a GPU: tests/test_cuda.py).
REQUIRED_MISCONCEPTIONS = {
    "update_sign", "update_no_lr", "update_rebinds", "update_inplace_leaf", "update_not_leaf",
    "zero_grad_not_reset", "zero_grad_weight", "loss_sum", "loss_absolute", "loss_square_of_mean",
    "loss_broadcast", "forward_wrong_shape", "loss_not_tensor", "forward_detached", "forward_ignores_w",
    "not_implemented", "exception", "timeout", "missing_function",
}


# What the checks that run several steps say briefly, pointing at the step's own check.
SAID_BY_THEIR_OWN_CHECK = ("not_implemented", "missing_function", "syntax_error")


@pytest.fixture(scope="session")
def engine_result(zygote, corpus_notebooks, grading_limits):
    context = GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=grading_limits)
    cache = {}

    def result(scenario: Scenario):
        if scenario.name not in cache:
            cache[scenario.name] = grade_submission(corpus_notebooks[scenario.name], context)
        return cache[scenario.name]

    return result


# --------------------------------------------------------------------------- the corpus itself

def test_corpus_covers_every_misconception_of_the_issue():
    named = {m for s in SCENARIOS for m in s.misconceptions.values()}
    assert REQUIRED_MISCONCEPTIONS <= named, f"no scenario for {REQUIRED_MISCONCEPTIONS - named}"
    assert named <= set(MISCONCEPTIONS), f"unknown misconception ids {named - set(MISCONCEPTIONS)}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_scenario_is_well_formed(scenario):
    assert set(scenario.scores) == set(CHECKS)
    match = re.fullmatch(r"[a-z_]+__(\d+)_of_10", scenario.name)
    assert match and int(match.group(1)) == scenario.total, "the name must state the expected total"
    failed = {name for name, score in scenario.scores.items() if score == 0}
    for name in failed:
        assert name in scenario.misconceptions or name in scenario.phrases, (
            f"failed check {name!r} has no expected misconception or phrase")
    assert set(scenario.misconceptions) <= failed, "misconceptions are expected only of failed checks"


# --------------------------------------------------------------------------- grading

@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_engine_scores(scenario, engine_result):
    result = engine_result(scenario)
    got = {c.name: c.score for c in result.checks}
    assert got == scenario.scores, "\n".join(f"{c.name}: {c.status} {c.misconception}\n{c.feedback}"
                                             for c in result.checks if c.score != scenario.scores[c.name])
    assert all(c.status in ("passed", "failed") for c in result.checks), "a grader error is never a grade"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_engine_feedback(scenario, engine_result):
    result = engine_result(scenario)
    for check in result.checks:
        expected = scenario.misconceptions.get(check.name)
        assert check.misconception == expected, f"{check.name}: {check.feedback}"
        if expected and check.feedback.startswith("Not tested yet"):  # a step another check explains in full
            assert check.name in ("gradient", "final_loss") and expected in SAID_BY_THEIR_OWN_CHECK, check.feedback
        elif expected:
            assert MISCONCEPTIONS[expected] in check.feedback, check.name
        for phrase in scenario.phrases.get(check.name, ()):
            assert phrase in check.feedback, f"{check.name}: {phrase!r} not in:\n{check.feedback}"
        if check.score == 0 and expected not in ("not_implemented", "missing_function", "syntax_error", "timeout", "crashed"):
            # a judged step shows one concrete case or the student's own error
            assert "Case:" in check.feedback or "raised" in check.feedback, check.feedback
    notes = "\n".join(result.student_notes)
    for phrase in scenario.notes:
        assert phrase in notes, f"{phrase!r} not in the notes:\n{notes}"


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_engine_notes_say_each_cause_once(scenario, engine_result):
    """One note per cause: an exception type that fails several cells is one note (the untouched
    release got 12 "raised NotImplementedError" notes, an `.item()` loss 10), cells are named as
    Jupyter shows them, never by a helper the student did not write, and numbers are rounded."""
    notes = engine_result(scenario).cell_notes
    opening = Counter(found.group(1) for note in notes if (found := re.match(r"Cell [^\n]*? raised `(\w+)`", note)))
    assert all(count == 1 for count in opening.values()), notes
    assert sum("NotImplementedError" in note for note in notes) <= 1, notes
    text = "\n".join(notes)
    assert "_check_" not in text and "code cell under" not in text, text
    assert not re.search(r"\d\.\d{6,}", text), text


# --------------------------------------------------------------------------- nothing given away

def _release_cells() -> dict[str, str]:
    release = nbformat.read(RELEASE_NOTEBOOK, as_version=4)
    by_id = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in release.cells}
    return {name: by_id[grade_id] for name, grade_id in SOLUTION_CELLS.items()}


def _meaningful(lines) -> set[str]:
    """Stripped lines long enough to be telling (short ones such as `return` or `)` are not)."""
    return {line.strip() for line in lines if len(line.strip()) >= 12}


def _secrets() -> set[str]:
    released = _release_cells()
    solution = set()
    for name, source in solution_sources().items():
        solution |= {line.strip() for line in source.splitlines() if line.strip()} - {
            line.strip() for line in released[name].splitlines()}
    hidden = set()
    master = nbformat.read(SOURCE_NOTEBOOK, as_version=4)
    for cell in master.cells:
        region = re.search(r"### BEGIN HIDDEN TESTS\n(.*)### END HIDDEN TESTS", cell.source, re.S)
        if region:
            hidden |= _meaningful(region.group(1).splitlines())
    for path in sorted(CHECKS_DIR.glob("*.py")) + [REFERENCE_FILE]:
        code = [line for line in path.read_text().splitlines() if not line.strip().startswith("#")]
        hidden |= _meaningful(code) - {'"""', "import torch"}
    return solution | hidden


SECRETS = _secrets()


def test_the_secrets_are_found():
    assert "return w * x" in SECRETS and "w.grad.data.zero_()" in SECRETS
    assert 'run_check("forward", globals())' in SECRETS


@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_feedback_gives_nothing_away(scenario, engine_result):
    result = engine_result(scenario)
    # the student's own lines may come back to them in their traceback
    own = {line.strip() for source in scenario.notebook().cells for line in source.source.splitlines()}
    texts = [c.feedback for c in result.checks] + result.student_notes
    for text in texts:
        shown = {line.strip() for line in text.splitlines()}
        leaked = sorted(s for s in SECRETS - own if s in text or s in shown)
        assert not leaked, f"the feedback shows grader-only source {leaked}:\n{text}"
        for grader_path in ("site-packages", str(CHECKS_DIR.parent), "solutions/"):
            assert grader_path not in text, f"the feedback shows a grader path ({grader_path}):\n{text}"


# --------------------------------------------------------------------------- the grade is the notebook's alone

CPU_HOG = "while True:\n    pass\n"


@pytest.fixture(scope="module")
def class_gradings(tmp_path_factory, corpus_notebooks, grading_limits):
    """The whole corpus graded twice more as one class through `autograde`: with 2 workers beside
    a CPU hog (one process spinning per core, at this test's own priority), then again (--force)
    with 1 worker and no hog. Returns each run's records, student -> record."""
    import shutil
    import subprocess
    import sys

    from autograder.autograde.main import run_batch
    from autograder.autograde.state import State

    course = tmp_path_factory.mktemp("corpus_class")
    for name, notebook in corpus_notebooks.items():
        (course / "submitted" / name / "pytorch_slope").mkdir(parents=True)
        shutil.copy(notebook, course / "submitted" / name / "pytorch_slope" / "pytorch_slope.ipynb")

    def graded(workers: int, force: bool) -> dict:
        run_batch(assignment=PYTORCH_SLOPE, course_dir=course, workers=workers, device="cpu", students=None,
                  force=force, limits=grading_limits, out=open(os.devnull, "w"))
        state = State(course)
        try:
            return {student: record for student, (_, record) in state.load(PYTORCH_SLOPE.name).items()}
        finally:
            state.close()

    hogs = [subprocess.Popen([sys.executable, "-c", CPU_HOG]) for _ in range(os.cpu_count() or 2)]
    try:
        beside_hog = graded(workers=2, force=False)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return {"2 workers beside a CPU hog": beside_hog, "1 worker, again": graded(workers=1, force=True)}


def _what_a_student_reads(result) -> dict:
    return {"scores": {c.name: c.score for c in result.checks},
            "feedback": {c.name: c.feedback for c in result.checks},
            "notes": list(result.notes), "cell notes": list(result.cell_notes)}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", SCENARIOS, ids=IDS)
def test_the_same_notebook_gets_the_same_grade_alone_in_a_class_beside_a_hog_and_again(scenario, engine_result,
                                                                                      class_gradings):
    """Scores and every message a student reads are the same whether the notebook is graded alone
    or in a class, with 1 or 2 workers, on a quiet machine or beside processes spinning on every
    core (the limits count CPU time), and each time it is graded."""
    alone = _what_a_student_reads(engine_result(scenario))
    assert alone["scores"] == scenario.scores
    for run, records in class_gradings.items():
        record = records[scenario.name]
        assert record.status == "graded", (run, record.reason)
        assert _what_a_student_reads(record.result) == alone, run
