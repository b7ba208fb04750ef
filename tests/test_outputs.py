"""The batch's per-class outputs, written from hand-made records (no grading runs here):
nbgrader's gradebook (checked against `nbgrader export`), the feedback pages and the class report.
Records carry hostile strings (markup in student ids, feedback and notes) to prove escaping."""
import csv
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder.assignment import CHECKS, MANUAL_CHECKS, MAX_SCORE, PYTORCH_SLOPE
from autograder.course import course_settings
from autograder.model.records import GradedSubmission
from autograder.model.results import CheckResult, SubmissionResult
from autograder.outputs.class_report import write_class_report
from autograder.outputs.feedback_html import feedback_path, write_feedback_pages
from autograder.outputs.gradebook import record_in_gradebook

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "pytorch_slope"
HOSTILE = '<script>alert("x")</script>'
HOSTILE_ID = '<img src=x onerror="alert(1)">'  # a folder name can hold this (no slash)
HIDDEN_CODE = "def test_forward(student, reference, hidden, tol):"
ISOLATION = {"applied": ["cpu, memory, file-size, open-file and process limits"],
             "missing": ["not root: no private filesystem view, no network namespace, same uid as the grader"]}


def result(failed=(), error=(), feedback="", notes=(), seconds=1.0):
    checks = []
    for name, points in CHECKS.items():
        if name in error:
            checks.append(CheckResult(name, 0, points, "error", "The grader itself failed on this check; your work was not judged.",
                                      staff_detail=f'  File "/kit/autograder/checks/test_{name}.py", line 8\n    {HIDDEN_CODE}'))
        elif name in failed:
            checks.append(CheckResult(name, 0, points, "failed", feedback or f"{name} is wrong", failed[name]))
        else:
            checks.append(CheckResult(name, points, points, "passed", "Passed."))
    return SubmissionResult(checks, list(notes), seconds, ISOLATION)


def record(student, res=None, status="graded", reason="", notebook="nb.ipynb", late=False):
    return GradedSubmission(student, ASSIGNMENT, notebook, "hash-" + student,
                            datetime(2025, 3, 1, 12, 0, tzinfo=UTC), late, status, reason, res,
                            datetime(2025, 3, 2, 9, 0, tzinfo=UTC))


def class_records():
    return [
        record("alice", result(seconds=0.8)),
        record("bob", result(failed={"loss": "loss_sum", "gradient": "gradient_wrong_value"}, seconds=1.7)),
        record(HOSTILE_ID, result(failed={"update": "update_sign"}, feedback=f"bad {HOSTILE} & more",
                               notes=[f"Code cell 3 raised NameError: {HOSTILE}"], seconds=3.1)),
        record("carol", result(error=("forward",), seconds=0.5)),
        record("dave", result(failed={c: "sandbox_died" for c in CHECKS}), status="not graded",
               reason=f"the file is not a notebook {HOSTILE}"),
        record("erin", None, status="not graded", reason="no submission folder", notebook=None),
    ]


@pytest.fixture
def course(tmp_path):
    return tmp_path / "course"


def nbgrader_env():
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def export(course_dir: Path) -> dict[str, dict]:
    subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export"], cwd=course_dir,
                   env=nbgrader_env(), check=True, capture_output=True, timeout=300)
    with open(course_dir / "grades.csv", newline="") as fh:
        return {row["student_id"]: row for row in csv.DictReader(fh)}


def grades(course_dir: Path) -> dict[str, dict[str, tuple]]:
    from nbgrader.api import Gradebook

    coursedir = course_settings(course_dir)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        out = {}
        for student in gb.students:
            submission = gb.find_submission(ASSIGNMENT, student.id)
            (notebook,) = submission.notebooks
            out[student.id] = {g.name: (g.auto_score, g.needs_manual_grade) for g in notebook.grades}
        assert len(gb.assignment_submissions(ASSIGNMENT)) == len(out)
        return out


@pytest.mark.slow
def test_gradebook_agrees_with_nbgrader_export_and_updates_in_place(course):
    course.mkdir()
    records = class_records()
    record_in_gradebook(course, PYTORCH_SLOPE, records)

    cells = grades(course)
    assert set(cells) == {r.student for r in records}
    for r in records:
        expected = {c.name: (float(c.score), False) if c.status != "error" else (None, True) for c in r.result.checks} \
            if r.result else dict.fromkeys(CHECKS, (0.0, False))
        for name in CHECKS:
            assert cells[r.student][name] == expected[name], (r.student, name)
    # a check the grader could not judge holds no score, never a 0, and waits for a grade in formgrader
    assert cells["carol"]["forward"] == (None, True)
    assert cells["alice"]["why_updates_shrink"] == (None, True)  # left for the TA
    assert cells["erin"]["why_updates_shrink"] == (0.0, False)  # nothing was submitted

    exported = export(course)
    for r in records:
        row = exported[r.student]
        assert float(row["raw_score"]) == r.score
        assert float(row["max_score"]) == MAX_SCORE + sum(MANUAL_CHECKS.values())
        assert row["timestamp"].startswith("2025-03-01 12:00:00")

    # bob resubmits and is regraded; a TA has meanwhile marked alice's written answer
    from nbgrader.api import Gradebook
    coursedir = course_settings(course)
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        grade = gb.find_grade("why_updates_shrink", ASSIGNMENT, ASSIGNMENT, "alice")
        grade.manual_score, grade.needs_manual_grade = 2.0, False
        gb.db.commit()
    record_in_gradebook(course, PYTORCH_SLOPE, [record("bob", result(failed={"final_loss": "training_diverges"})),
                                             record("alice", result())])
    cells = grades(course)
    assert len(cells) == len(records)  # updated, not duplicated
    assert cells["bob"]["loss"] == (2.0, False) and cells["bob"]["final_loss"] == (0.0, False)
    exported = export(course)
    assert float(exported["bob"]["raw_score"]) == MAX_SCORE - 2
    assert float(exported["alice"]["raw_score"]) == MAX_SCORE + 2  # the TA's mark survived


@pytest.mark.slow
def test_gradebook_honours_the_courses_nbgrader_config(course):
    course.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", course / "nbgrader_config.py")  # db in .nbgrader/
    record_in_gradebook(course, PYTORCH_SLOPE, [record("alice", result())])
    assert (course / ".nbgrader" / "gradebook.db").is_file()
    assert not (course / "gradebook.db").exists()
    assert float(export(course)["alice"]["raw_score"]) == MAX_SCORE


def test_feedback_pages_escape_and_hide_tests(course):
    records = class_records()
    write_feedback_pages(course, PYTORCH_SLOPE, records)
    for r in records:
        page = feedback_path(course, PYTORCH_SLOPE, r.student)
        assert page.parent == course / "feedback" / r.student / ASSIGNMENT
        html = page.read_text()
        assert "<script>" not in html and "<img" not in html
        assert HIDDEN_CODE not in html and "autograder/checks" not in html
        assert f"{r.score:g} / {MAX_SCORE:g}" in html
    hostile = feedback_path(course, PYTORCH_SLOPE, HOSTILE_ID).read_text()
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in hostile
    assert "bad &lt;script&gt;" in hostile and "&amp; more" in hostile
    assert "Code cell 3 raised NameError" in hostile  # notebook-level notes
    bob = feedback_path(course, PYTORCH_SLOPE, "bob").read_text()
    assert "loss is wrong" in bob and "why_updates_shrink" in bob
    carol = feedback_path(course, PYTORCH_SLOPE, "carol").read_text()
    assert "The grader itself failed on this check" in carol
    assert "no submission folder" in feedback_path(course, PYTORCH_SLOPE, "erin").read_text()


def test_feedback_pages_render_markdown_and_keep_sandbox_text_literal(course):
    """Backticks showed literally on the pages. The feedback is Markdown: the kit's code spans and
    blocks render; what a submission sent stays text (no tag, link or image of its own)."""
    from autograder.model.markdown_text import code_block, code_span

    trace = f'  File "x", line 2, in update\n    w -= lr * w.grad  # {HOSTILE} [a](javascript:alert(1))'
    feedback = (f"Use `w.data` here.\n\nCalling {code_span('update(w, lr)')} raised:{code_block(trace)}\n\n"
                f"Case: w = 1; got {code_span('`' + HOSTILE + '`')} ![x](http://example.org/x.png) <http://example.org>")
    notes = [f"Cell 3 (`def f(x):`) raised {code_span('Error')}: {code_span('**bold** ' + HOSTILE)}"]
    page_of = record("fay", result(failed={"update": "update_sign"}, feedback=feedback, notes=notes))
    write_feedback_pages(course, PYTORCH_SLOPE, [page_of])
    page = feedback_path(course, PYTORCH_SLOPE, "fay").read_text()
    assert "<code>w.data</code>" in page and "`w.data`" not in page
    assert "<pre><code>  File &quot;x&quot;, line 2, in update\n    w -= lr * w.grad" in page  # the traceback, as a block
    assert "<code>def f(x):</code>" in page and "<strong>" not in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "<a " not in page and "<img" not in page and "javascript:" not in page.split("<pre>")[0]


def test_feedback_refuses_path_like_student_ids(course):
    with pytest.raises(ValueError):
        write_feedback_pages(course, PYTORCH_SLOPE, [record("..", result())])
    assert not (course / "feedback").exists() or not any((course / "feedback").rglob("*.html"))


def test_class_report(course):
    records = class_records() + [record("$\\frac{a}{", result(failed={"loss": "loss_sum"}, seconds=9.0))]
    run_info = {"workers": 2, "device": "cpu", "wall time (s)": 12.345, HOSTILE: HOSTILE}
    index = write_class_report(course, PYTORCH_SLOPE, records, run_info)
    assert index == course / "reports" / ASSIGNMENT / "index.html"
    html = index.read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html
    pngs = ["score_histogram.png", "pass_rate_per_check.png", "misconceptions.png", "slowest_submissions.png"]
    for name in pngs:
        data = (index.parent / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
        assert f'src="{name}"' in html
    assert "loss_sum" in html and "update_sign" in html and "gradient_wrong_value" in html
    assert "no submission folder" in html and "the file is not a notebook &lt;script&gt;" in html
    assert "not root: no private filesystem view" in html  # what the platform did not allow
    assert "12.35" in html and "workers" in html
    assert "$\\frac{a}{" in html  # a mathtext-looking id neither breaks the plot nor is lost


def test_class_report_of_an_empty_class(course):
    index = write_class_report(course, PYTORCH_SLOPE, [], {})
    assert "0 submissions" in index.read_text()


def test_outputs_follow_the_assignment_they_are_given(tmp_path):
    """Every writer takes its checks, points, names and paths from the Assignment it is handed,
    never from the kit's own: another assignment's class gets its own columns, totals and folders."""
    import dataclasses
    import json

    from autograder.outputs.publish import publish

    other = dataclasses.replace(PYTORCH_SLOPE, name="other_lab", checks={"alpha": 3, "beta": 4}, manual_checks={},
                                student_functions=("f",), solution_cells={}, check_uses={"beta": ("alpha",)},
                                root=tmp_path / "kit")
    checks = [CheckResult("alpha", 3, 3, "passed", "Passed."), CheckResult("beta", 0, 4, "failed", "beta is wrong")]
    alice = GradedSubmission("alice", other.name, other.notebook, "hash", datetime(2025, 3, 1, tzinfo=UTC), False,
                             "graded", "", SubmissionResult(checks, [], 1.0, ISOLATION), datetime(2025, 3, 2, tzinfo=UTC))
    course_dir, run_info = tmp_path / "course", {}
    outputs = publish(course_dir, other, [alice], run_info)

    reports = course_dir / "reports" / "other_lab"
    assert outputs["grades by check"] == reports / "grades-by-check.csv"
    with open(reports / "grades-by-check.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert (row["alpha"], row["beta"], row["total"], row["max"]) == ("3", "0", "3", "7") and "forward" not in row
    results = json.loads((course_dir / "feedback" / "alice" / "other_lab" / "results.json").read_text())
    assert [t["name"] for t in results["tests"]] == ["alpha", "beta"] and results["score"] == 3
    page = (course_dir / "feedback" / "alice" / "other_lab" / "other_lab.html").read_text()
    assert "alpha" in page and "/ 7" in page and "forward" not in page
    assert outputs["class report"] == reports / "index.html" and "forward" not in outputs["class report"].read_text()
    # the gradebook reads the grade ids from the given assignment's master, which this kit lacks
    assert any(str(other.master) in problem for problem in run_info["outputs not written"])


def test_the_csv_never_holds_a_formula(tmp_path):
    """A student id (a folder name: the student chose it) or a reason that begins like a formula
    runs as one when a TA opens the CSV in a spreadsheet (CSV injection)."""
    from autograder.outputs.csv_report import write_grades_csv

    hostile = ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    records = [record(name, reason=name) for name in hostile] + [record("plain", reason="fine")]
    with open(write_grades_csv(tmp_path, PYTORCH_SLOPE, records), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for column in ("student", "reason", "integrity"):
            assert not row[column].startswith(("=", "+", "-", "@", "\t", "\r")), row
    assert {row["student"] for row in rows} == {"'" + name for name in hostile} | {"plain"}
    assert all(float(row["total"]) >= 0 for row in rows)


@pytest.mark.slow
@pytest.mark.parametrize("misbehaviour", ["dies", "hangs"])
def test_a_gradebook_writer_process_that_dies_or_hangs_loses_nothing(course, monkeypatch, misbehaviour):
    """publish() writes the gradebook in a forked process; if that process dies (killed, out of
    memory) or hangs (it is killed after writer_timeout_s), the gradebook is written in this one:
    every student is in it and nothing is reported missing."""
    import time

    import autograder.outputs.publish as publish_module

    here, write = os.getpid(), publish_module._record_in_gradebook

    def misbehaves_in_a_fork(*args):
        while os.getpid() != here:
            if misbehaviour == "dies":
                os._exit(3)
            time.sleep(1)
        return write(*args)

    monkeypatch.setattr(publish_module, "_record_in_gradebook", misbehaves_in_a_fork)
    monkeypatch.setattr(publish_module, "writer_timeout_s", lambda n: 1.0)
    records, run_info = class_records(), {}
    started = time.monotonic()
    outputs = publish_module.publish(course, PYTORCH_SLOPE, records, run_info)
    assert time.monotonic() - started < 60
    assert "outputs not written" not in run_info, run_info
    assert set(grades(course)) == {r.student for r in records}
    assert Path(outputs["gradebook"]).is_file()


@pytest.mark.slow
def test_the_gradebook_writer_reports_each_student_it_could_not_write(course, monkeypatch):
    """One student nbgrader refuses costs that student's row only (the rest is still one
    transaction), and the refusal, found in the writer process, is named in run_info like any
    other output that was not written."""
    import autograder.outputs.gradebook as gradebook_module
    import autograder.outputs.publish as publish_module

    write = gradebook_module._write_student

    def refuses_bob(gb, the_assignment, assignment, record):
        if record.student == "bob":
            raise ValueError("nbgrader refused bob")
        return write(gb, the_assignment, assignment, record)

    monkeypatch.setattr(gradebook_module, "_write_student", refuses_bob)
    records, run_info = class_records(), {}
    publish_module.publish(course, PYTORCH_SLOPE, records, run_info)
    assert run_info["outputs not written"] == ["bob: gradebook (ValueError: nbgrader refused bob)"]
    assert set(grades(course)) == {r.student for r in records} - {"bob"}


@pytest.mark.slow
def test_the_gradebook_is_written_once_by_a_process_beside_the_batch(course, monkeypatch, tmp_path):
    import autograder.outputs.publish as publish_module

    writers, write = tmp_path / "writers", publish_module._record_in_gradebook

    def noting_its_pid(*args):
        with open(writers, "a") as out:
            out.write(f"{os.getpid()}\n")
        return write(*args)

    monkeypatch.setattr(publish_module, "_record_in_gradebook", noting_its_pid)
    records, run_info = class_records(), {}
    publish_module.publish(course, PYTORCH_SLOPE, records, run_info)
    (pid,) = writers.read_text().split()
    assert int(pid) != os.getpid() and "outputs not written" not in run_info
    assert set(grades(course)) == {r.student for r in records}
