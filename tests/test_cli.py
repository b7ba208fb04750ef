"""`python -m autograder grade`, the contract other tools call.

A few real subprocesses (each costs an interpreter with torch): the reference in both formats, a
submission that kills its own process, and misuse. The other broken submissions go through the
same command in-process (`autograder.cli.main`), sharing the session's zygote.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest
import torch

import autograder.grade
from autograder.assignment import CHECKS, MAX_SCORE
from autograder.cli import main as cli_main
from autograder.release.synthetic import make_submission, write_submission

ROOT = Path(__file__).resolve().parents[1]
GRADESCOPE_SCHEMA = json.loads((ROOT / "autograder" / "gradescope" / "results_schema.json").read_text())
TEST_NAMES = ["forward", "loss", "gradient", "update", "zero_grad", "final_loss"]


def grade_cmd(*args, timeout=180):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_misuse(proc, *phrases):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert proc.stdout == ""
    message = proc.stderr.strip().splitlines()[-1]  # argparse prints its usage above the message
    for phrase in phrases:
        assert phrase in message, proc.stderr


@pytest.fixture(scope="module")
def reference_notebook(tmp_path_factory):
    return write_submission(tmp_path_factory.mktemp("cli") / "reference.ipynb", make_submission())


# --------------------------------------------------------------------------- real subprocesses



def _assert_gradescope_schema(report: dict):
    jsonschema.validate(report, GRADESCOPE_SCHEMA)  # Gradescope's documented format
    assert {"score", "execution_time", "output", "tests"} <= set(report)
    assert isinstance(report["score"], (int, float)) and isinstance(report["execution_time"], (int, float))
    assert isinstance(report["output"], str)
    assert [t["name"] for t in report["tests"]] == TEST_NAMES
    for test in report["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}, test
        assert test["max_score"] == CHECKS[test["name"]]
        assert test["status"] in ("passed", "failed")
        assert (test["status"] == "passed") == (test["score"] == test["max_score"])
        assert isinstance(test["output"], str) and test["output"]
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    assert report["score"] == sum(t["score"] for t in report["tests"])


def test_reference_gradescope_json(reference_notebook):
    proc = grade_cmd(reference_notebook, "--format", "gradescope")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)  # stdout is the JSON and nothing else
    _assert_gradescope_schema(report)
    assert report["score"] == MAX_SCORE
    assert all(t["status"] == "passed" for t in report["tests"])


def test_submission_that_exits_its_process_is_reported_and_its_definitions_checked(tmp_path):
    notebook = write_submission(tmp_path / "exits.ipynb",
                                make_submission(extra_cells=["import os\nos._exit(0)"]))
    proc = grade_cmd(notebook, "--format", "gradescope")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    _assert_gradescope_schema(report)
    assert "Execution stopped" in report["output"] and "process ended" in report["output"], report["output"]
    # the cells after the exit did not run, but the checks ran on the notebook's definitions
    assert "The checks still ran, on your notebook's definitions" in report["output"], report["output"]
    assert report["score"] == MAX_SCORE


def test_missing_file_is_misuse(tmp_path):
    assert_clean_misuse(grade_cmd(tmp_path / "nowhere.ipynb"), "no such file", "nowhere.ipynb")


def test_bad_flag_value_is_misuse(reference_notebook):
    assert_clean_misuse(grade_cmd(reference_notebook, "--format", "xml"), "--format", "invalid choice")
    assert_clean_misuse(grade_cmd(reference_notebook, "--device", "tpu"), "--device", "invalid choice")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here: tests/test_cuda.py grades on it")
def test_cuda_asked_for_without_cuda(reference_notebook):
    proc = grade_cmd(reference_notebook, "--device", "cuda")
    assert proc.returncode == 2, proc.stderr  # misuse, as the README says; not 1 (a grader failure)
    assert_clean_misuse(proc, "CUDA", "--device cpu")


# --------------------------------------------------------------------------- misuse, in-process

def misuse(argv: list[str], capsys) -> str:
    """Run the command line in this process; it must end with status 2 and print nothing on
    stdout. Returns its last line on stderr (the message)."""
    capsys.readouterr()
    try:
        status = cli_main(argv)
    except SystemExit as stop:  # argparse's own errors
        status = stop.code
    captured = capsys.readouterr()
    assert status == 2, (argv, status, captured.err)
    assert captured.out == "" and "Traceback" not in captured.err, captured.err
    return captured.err.strip().splitlines()[-1]


def test_every_misuse_exits_2_and_says_what_to_do(tmp_path, capsys, reference_notebook):
    folder = tmp_path / "class"
    (folder / "submitted" / "amy" / "pytorch_slope").mkdir(parents=True)
    message = misuse(["grade", str(reference_notebook.parent)], capsys)
    assert "is a folder, not a notebook" in message and "reference.ipynb" in message and "autograde" in message
    assert "no such file" in misuse(["grade", str(tmp_path / "nowhere.ipynb")], capsys)
    assert "give the zip file to write" in misuse(["gradescope-bundle", "--output", str(tmp_path)], capsys)
    for term in ("2027", "fall2027", "2027-Spring", "27-fall", "2027-autumn"):
        message = misuse(["release", "--term", term], capsys)
        assert "YYYY-spring|summer|fall|winter" in message and "2027-spring" in message, message
    assert "did you mean 2027-fall?" in misuse(["release", "--term", "fall2027"], capsys)
    assert "--term is required" in misuse(["release"], capsys)
    assert "unknown assignment" in misuse(["autograde", "homework1", "--course-dir", str(folder)], capsys)
    assert "course directory not found" in misuse(["autograde", "pytorch_slope", "--course-dir", str(tmp_path / "no")], capsys)
    assert "nbgrader collect" in misuse(["autograde", "pytorch_slope", "--course-dir", str(tmp_path)], capsys)
    assert "expected a positive" in misuse(["autograde", "pytorch_slope", "--course-dir", str(folder), "--workers", "0"], capsys)


def test_cuda_where_there_is_none_is_misuse_in_every_verb(tmp_path, capsys, monkeypatch, reference_notebook):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    folder = tmp_path / "class"
    (folder / "submitted" / "amy" / "pytorch_slope").mkdir(parents=True)
    for argv in (["grade", str(reference_notebook), "--device", "cuda"],
                 ["autograde", "pytorch_slope", "--course-dir", str(folder), "--device", "cuda"]):
        message = misuse(argv, capsys)
        assert "no CUDA GPU" in message and "--device cpu" in message
    assert sorted(p.name for p in folder.iterdir()) == ["submitted"]  # nothing written


def test_unknown_student_is_misuse_and_writes_nothing(tmp_path, capsys):
    course = tmp_path / "class"
    for student in ("amy", "bob"):
        write_submission(course / "submitted" / student / "pytorch_slope" / "pytorch_slope.ipynb", make_submission())
    before = sorted(p.relative_to(course) for p in course.rglob("*"))
    message = misuse(["autograde", "pytorch_slope", "--course-dir", str(course), "--student", "amy",
                      "--student", "nobody"], capsys)
    assert "nobody" in message and "known students: amy, bob" in message and "amy," not in message.split("known")[0]
    assert sorted(p.relative_to(course) for p in course.rglob("*")) == before  # no CSV, gradebook, feedback, state


# --------------------------------------------------------------------------- in-process, same command

@pytest.fixture
def grade_in_process(monkeypatch, capsys, zygote, grading_limits):
    """`python -m autograder grade ... --format gradescope` in this process, on the shared zygote."""

    class SharedZygote:
        """The session's zygote where grade.py makes one of its own; closing it leaves it to the session."""

        def __init__(self, **options):
            pass

        def __getattr__(self, name):
            return getattr(zygote, name)

        def close(self):
            pass

    monkeypatch.setattr(autograder.grade, "Zygote", SharedZygote)
    # grade.py passes its own Limits to the context: the test limits replace the defaults there
    # (patching GradingContext alone left a hanging cell its full 20 s).
    monkeypatch.setattr(autograder.grade, "Limits", functools.partial(dataclasses.replace, grading_limits))

    def grade(path: Path, format: str = "gradescope") -> dict | None:
        capsys.readouterr()
        status = cli_main(["grade", str(path), "--format", format])
        assert status == 0
        if format == "text":
            return None  # the caller reads capsys
        report = json.loads(capsys.readouterr().out)
        _assert_gradescope_schema(report)
        return report

    return grade


def test_reference_text_report(reference_notebook, grade_in_process, capsys):
    """The text format, in this process (the Gradescope format above runs the real command)."""
    grade_in_process(reference_notebook, format="text")
    out = capsys.readouterr().out
    assert f"Total: {MAX_SCORE}/{MAX_SCORE}" in out, out
    assert "Graded by hand later: why_updates_shrink (2 points)" in out, out  # not hidden in the total
    for name, points in CHECKS.items():
        assert f"PASS  {name:<11} {points}/{points}" in out, out


def _only_reason(report, *phrases):
    assert report["score"] == 0
    for text in [report["output"]] + [t["output"] for t in report["tests"]]:
        for phrase in phrases:
            assert phrase in text, text


def test_invalid_json(grade_in_process, tmp_path):
    path = tmp_path / "broken.ipynb"
    path.write_text('{"cells": [')
    _only_reason(grade_in_process(path), "not a valid notebook", "not JSON")


def test_json_that_is_not_a_notebook(grade_in_process, tmp_path):
    path = tmp_path / "list.ipynb"
    path.write_text('{"name": "my homework", "answers": [1, 2, 3]}')
    _only_reason(grade_in_process(path), "not a Jupyter notebook")


def test_notebook_without_the_functions(grade_in_process, tmp_path):
    notebook = make_submission()
    notebook.cells = [c for c in notebook.cells
                      if not c.source.lstrip().startswith(("def forward", "def criterion", "def update", "def zero_grad"))]
    report = grade_in_process(write_submission(tmp_path / "empty.ipynb", notebook))
    assert report["score"] == 0
    for test in report["tests"]:
        if test["name"] in ("gradient", "final_loss"):  # they run steps that other checks explain in full
            assert "Not tested yet" in test["output"] and "your notebook does not define them" in test["output"], test
        else:
            assert "does not define this function" in test["output"] and "Not found: `" in test["output"], test


def test_exit_before_the_functions(grade_in_process, tmp_path):
    notebook = make_submission(extra_cells=["import os\nos._exit(0)"])
    report = grade_in_process(write_submission(tmp_path / "exits.ipynb", notebook))
    output = report["output"]
    assert "process ended while running cell 3 (`import os`)" in output and "These cells did not run" in output, output
    assert "cell 12 (`def forward(x, w):`)" in output, output  # cells named as a student finds them
    assert report["score"] == MAX_SCORE  # the definitions themselves are correct


def test_cell_that_sleeps_forever_is_interrupted(grade_in_process, tmp_path):
    notebook = make_submission(extra_cells=["import time\nwhile True:\n    time.sleep(1000)"])
    report = grade_in_process(write_submission(tmp_path / "sleeps.ipynb", notebook))
    # the interrupted cell costs nothing: the functions defined after it are graded
    assert report["score"] == MAX_SCORE
    assert "Cell 3 (`import time`)" in report["output"], report["output"]
    assert "ran past its time limit and was interrupted" in report["output"], report["output"]


def test_not_a_file_at_all(grade_in_process, tmp_path):
    path = tmp_path / "binary.ipynb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    _only_reason(grade_in_process(path), "not a valid notebook")


def test_gradescope_schema_refuses_what_gradescope_would():
    good = {"score": 1, "tests": [{"name": "forward", "score": 1, "max_score": 1, "status": "passed", "visibility": "visible"}]}
    jsonschema.validate(good, GRADESCOPE_SCHEMA)
    for bad in ({"tests": [{"name": "forward"}]},                      # no score anywhere
                {"score": "10"},                                         # a string score
                {"score": 1, "visibility": "students"},                  # unknown visibility
                {"score": 1, "tests": [{"score": 1, "status": "ok"}]},   # unknown status
                {"score": 1, "test": []}):                               # a misspelt key
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, GRADESCOPE_SCHEMA)


def test_the_command_line_hands_autograde_the_assignment_value(monkeypatch, tmp_path):
    """The verb receives the one `Assignment` value (paths, checks, points), not a name to look up."""
    import autograder.autograde.main
    from autograder.assignment import PYTORCH_SLOPE

    received = {}
    monkeypatch.setattr(autograder.autograde.main, "main", lambda **options: received.update(options) or 0)
    assert cli_main(["autograde", "pytorch_slope", "--course-dir", str(tmp_path)]) == 0
    assert received["assignment"] is PYTORCH_SLOPE


@pytest.mark.slow
def test_grade_past_its_own_bound_prints_a_not_graded_result(reference_notebook):
    """A slip in the grader's own work on a notebook (here a regex that backtracks for hours, a C
    call that holds the GIL, as the heading regex once did) must not hold `grade`: its watchdog
    ends it at the bound and the student gets a result that says so."""
    code = """
import re, sys
import autograder.pipeline as pipeline, autograder.sandbox.grader.limits as limits
from autograder.cli import main
limits.hard_timeout_for = lambda limits, checks: 3.0
pipeline.grade_submission = lambda *_: re.match(r"(a+)+$", "a" * 64 + "b")
sys.exit(main(["grade", sys.argv[1], "--format", "gradescope"]))
"""
    proc = subprocess.run([sys.executable, "-c", code, str(reference_notebook)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, (proc.returncode, proc.stderr[-2000:])
    report = json.loads(proc.stdout)
    _assert_gradescope_schema(report)
    assert report["score"] == 0 and "did not finish within 3 s" in report["output"], report


def test_the_watchdog_ends_by_itself_when_the_grader_ends_first():
    """A grader that dies without disarming (a crash) must not be followed by a fallback result."""
    code = """
import os, sys, time
from autograder.watchdog import Watchdog
with Watchdog(2.0, "FALLBACK") as dog:
    print(dog.pid, flush=True)
    os._exit(1)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    watchdog = int(proc.stdout.split()[0])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{watchdog}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{watchdog}").exists() and "FALLBACK" not in proc.stdout
