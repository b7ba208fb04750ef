"""A TA's first day: grade a class with `autograde`, then use nbgrader's own tools on the result.

One small course graded once for the module (three submissions: correct, wrong loss, an empty
folder), then:
* the summary's counts partition the submissions, on the first run and on a rerun of one student;
* `nbgrader export`, run in the course folder, writes its own grades.csv without touching the
  kit's per-check CSV, and has every student's total;
* formgrader's view (nbgrader's NbGraderAPI) lists every submission as autograded, and the
  gradebook holds every student's per-check scores under the checks' grade ids;
* nbgrader run in the kit's root reads the sample class's gradebook, the one `make grade` fills;
* the autograded/ copy is executed, with outputs, as `nbgrader autograde` leaves it;
* a written answer left as released scores 0 with "No response.", as nbgrader scores it; an
  answered one waits for its manual grade.
"""
from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT, CHECKS, KIT_ROOT, MAX_SCORE, NOTEBOOK, PYTORCH_SLOPE
from autograder.autograde.main import run_batch
from autograder.course import course_settings
from autograder.outputs.csv_report import grades_csv_path
from autograder.release.synthetic import make_submission, write_submission

WRONG_LOSS = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
PARTITION = ("graded now", "skipped (unchanged)", "not gradable", "failed")


def _batch(course: Path, students=None) -> dict:
    return run_batch(assignment=PYTORCH_SLOPE, course_dir=course, workers=1, device="cpu", students=students,
                     force=False, out=io.StringIO())


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = tmp_path_factory.mktemp("ta-course")
    # amy leaves the written question as released; bob answers it
    for student, notebook in (("amy", make_submission()), ("bob", make_submission({"criterion": WRONG_LOSS}, answered=True))):
        folder = course / "submitted" / student / ASSIGNMENT
        write_submission(folder / NOTEBOOK, notebook)
        (folder / "timestamp.txt").write_text("2026-11-20 09:00:00.000000 UTC\n")
    (course / "submitted" / "cara" / ASSIGNMENT).mkdir(parents=True)  # nothing handed in
    first = _batch(course)
    return course, first


def _assert_partition(info: dict) -> None:
    assert sum(info[key] for key in PARTITION) == info["submissions"], info


@pytest.mark.slow
def test_counts_add_up_to_the_submissions(graded):
    course, first = graded
    _assert_partition(first)
    assert (first["submissions"], first["graded now"], first["not gradable"]) == (3, 2, 1)
    again = _batch(course, students=["amy"])  # one student regraded: the other two are skipped
    _assert_partition(again)
    assert (again["graded now"], again["skipped (unchanged)"], again["not gradable"]) == (1, 2, 0)
    _assert_partition(_batch(course))  # what is skipped depends on the grader's fingerprint; the sum does not


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nbgrader_export_and_formgrader_see_every_students_per_check_scores(graded):
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI

    course, _ = graded
    ours = grades_csv_path(course, PYTORCH_SLOPE)
    kit_rows = {row["student"]: row for row in csv.DictReader(ours.open(newline=""))}
    kit_csv = ours.read_bytes()
    proc = _nbgrader(course, "export")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ours.read_bytes() == kit_csv, "nbgrader export must not overwrite the kit's CSV"
    exported = {row["student_id"]: row for row in csv.DictReader((course / "grades.csv").open(newline=""))}
    assert set(exported) == {"amy", "bob", "cara"}
    for student, row in exported.items():
        assert float(row["raw_score"]) == float(kit_rows[student]["total"]), (student, row)
    assert float(exported["amy"]["raw_score"]) == MAX_SCORE

    coursedir = course_settings(course)
    api = NbGraderAPI(coursedir=coursedir)
    view = {s["student"]: s for s in api.get_submissions(ASSIGNMENT)}
    assert {"amy", "bob"} <= set(view)
    for student in ("amy", "bob"):  # formgrader shows them autograded, with the kit's score
        assert view[student]["autograded"] is True, view[student]
        assert view[student]["score"] == float(kit_rows[student]["total"]), view[student]
    with Gradebook(coursedir.db_url) as gb:
        for student in ("amy", "bob", "cara"):
            notebook = gb.find_submission_notebook(Path(NOTEBOOK).stem, ASSIGNMENT, student)
            scores = {grade.name: grade.score for grade in notebook.grades}
            for check in CHECKS:
                assert scores[check] == float(kit_rows[student][check]), (student, check, scores)


def test_nbgrader_in_the_kits_root_reads_the_sample_class_gradebook():
    root_db = course_settings(KIT_ROOT).db_url
    assert root_db == course_settings(KIT_ROOT / "sample_class").db_url
    assert root_db.endswith("/sample_class/gradebook.db")
    assert grades_csv_path(KIT_ROOT / "sample_class", PYTORCH_SLOPE).name != "grades.csv"  # nbgrader export's name


@pytest.mark.slow
def test_a_due_date_set_after_grading_marks_late_without_regrading(graded):
    """The nbgrader way: `nbgrader db assignment add pytorch_slope --duedate ...`, then autograde again."""
    course, _ = graded
    proc = _nbgrader(course, "db", "assignment", "add", ASSIGNMENT, "--duedate", "2026-11-19 12:00:00 UTC")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    info = _batch(course)
    _assert_partition(info)
    assert info["late"] == 2  # amy and bob handed in on the 20th; cara handed in nothing
    rows = {row["student"]: row for row in csv.DictReader(grades_csv_path(course, PYTORCH_SLOPE).open(newline=""))}
    assert (rows["amy"]["late"], rows["bob"]["late"], rows["cara"]["late"]) == ("yes", "yes", "no")


@pytest.mark.slow
def test_the_autograded_copy_is_executed_with_its_outputs(graded):
    """Issue 29: autograded/ held the notebooks unexecuted (0 of 26 code cells had outputs)."""
    import nbformat

    course, _ = graded
    for student in ("amy", "bob"):
        notebook = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), student  # every cell ran, in order
        printed = [cell for cell in code if any(o.output_type == "stream" for o in cell.outputs)]
        assert len(printed) >= len(code) // 2, (student, len(printed), len(code))
        figures = [o for cell in code for o in cell.outputs if o.output_type == "display_data"]
        assert figures and all(o.data["text/plain"].startswith("<Figure size") for o in figures)
        tests = {cell.metadata.nbgrader["grade_id"]: cell.outputs[0].text for cell in code
                 if cell.metadata.get("nbgrader", {}).get("grade_id") in CHECKS}
        assert set(tests) == set(CHECKS)  # each test cell opens with its check's result, as the hidden tests print it
        assert tests["forward"].startswith("[forward] passed")
    bob = nbformat.read(course / "autograded" / "bob" / ASSIGNMENT / NOTEBOOK, as_version=4)
    loss = next(c for c in bob.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "loss")
    assert loss.outputs[0].text.startswith("[loss] failed: 0/2")


@pytest.mark.slow
def test_a_written_answer_left_as_released_scores_0_as_nbgrader_scores_it(graded):
    """Issue 29: an unanswered written question was left needing a manual grade; nbgrader scores
    an answer cell left unchanged 0, with the comment "No response."."""
    from nbgrader.api import Gradebook

    course, _ = graded
    with Gradebook(course_settings(course).db_url) as gb:
        for student, unanswered in (("amy", True), ("bob", False), ("cara", True)):
            notebook = gb.find_submission_notebook(Path(NOTEBOOK).stem, ASSIGNMENT, student)
            (written,) = [g for g in notebook.grades if g.name in PYTORCH_SLOPE.manual_checks]
            (comment,) = [c for c in notebook.comments if c.name in PYTORCH_SLOPE.manual_checks]
            if unanswered:  # cara handed in nothing: no answer either
                assert (written.auto_score, written.needs_manual_grade, comment.auto_comment) == (0.0, False, "No response."), student
            else:
                assert (written.auto_score, written.needs_manual_grade, comment.auto_comment) == (None, True, None), student
