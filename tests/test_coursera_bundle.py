"""The Coursera custom grader: `python -m autograder coursera-bundle`.

The zip's layout, its determinism, and the Dockerfile's content; then its entry point `run_grader`
unpacked into a temporary folder and run with this venv's interpreter, as Coursera runs it
(COURSERA_SHARED for /shared): the reference, the release, a broken upload, several notebooks,
none, a file that was not a notebook, the grader refusing a host with no confinement level, and
a grader that cannot run at all. `make coursera-check` builds and runs the Dockerfile itself.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from autograder import image
from autograder.assignment import PYTORCH_SLOPE
from autograder.coursera.bundle import build, dockerfile
from autograder.gradescope.bundle import build as build_gradescope
from autograder.model.results import CheckResult, SubmissionResult
from autograder.model.status import CheckStatus
from autograder.outputs.coursera import CAP_BYTES, CUT_NOTE, NOT_YOUR_FAULT, json_size, to_coursera
from autograder.release.synthetic import make_submission, write_submission


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("coursera") / "coursera_grader.zip")


def _zip(path: Path) -> dict[str, tuple[bytes, int]]:
    with zipfile.ZipFile(path) as archive:
        return {i.filename: (archive.read(i), (i.external_attr >> 16) & 0o777) for i in archive.infolist()}


def test_the_zip_holds_a_dockerfile_and_the_image_gradescope_gets(bundle, tmp_path):
    files = _zip(bundle)
    assert {"Dockerfile", "run_grader", "setup.sh", "autograder/grade.py", "autograder/grading.json",
            "solutions/pytorch_slope.py", "release/pytorch_slope/pytorch_slope.ipynb", "requirements.lock",
            "source/pytorch_slope/pytorch_slope.ipynb"} <= set(files)  # the master: a TA's autograde builds the gradebook from it
    assert not any("/" in name for name in ("Dockerfile", "run_grader"))  # at the zip's top level
    assert files["run_grader"][1] == files["setup.sh"][1] == 0o755 and files["Dockerfile"][1] == 0o644
    assert not any("__pycache__" in n or n.startswith(("tests/", "tools/", "sample_class/")) for n in files)
    assert build(tmp_path / "again.zip").read_bytes() == bundle.read_bytes(), "the same kit must give the same zip"
    # one description of the image: Gradescope's zip holds the same files, byte for byte
    gradescope = _zip(build_gradescope(tmp_path / "autograder.zip"))
    assert set(gradescope) - set(files) == {"run_autograder"} and set(files) - set(gradescope) == {"Dockerfile", "run_grader"}
    assert all(gradescope[name] == files[name] for name in image.contents())


def test_the_dockerfile_installs_cpu_torch_and_grades_as_a_non_root_user(bundle):
    text = _zip(bundle)["Dockerfile"][0].decode()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "FROM debian:bookworm-slim"
    assert f"COPY . {image.SOURCE}" in lines and f"RUN {image.install_command(user='grader')}" in lines
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users == ["grader"], "the image must run as its non-root user"
    assert lines[-1] == f'ENTRYPOINT ["{image.SOURCE}/run_grader"]'
    assert not any(line.startswith("ENV ") for line in lines), "Coursera drops a Dockerfile's variables"
    setup = _zip(bundle)["setup.sh"][0].decode()
    assert "whl/cpu" in setup and '+cpu"' in setup and "useradd" in setup
    assert text == dockerfile()
    for script in ("run_grader", "setup.sh"):
        proc = subprocess.run(["bash", "-n"], input=_zip(bundle)[script][0], capture_output=True)
        assert proc.returncode == 0, proc.stderr


@pytest.fixture
def coursera(bundle, tmp_path):
    """run_grader unpacked into a temporary folder; returns a function that grades the given
    files {name: notebook or bytes} and returns (exit status, feedback.json, page, stderr)."""
    image.unpack(bundle, tmp_path / "source")
    shared = tmp_path / "shared"

    def run(files: dict, python: str = sys.executable, **env) -> tuple[int, dict, str, str]:
        submission = shared / "submission"
        submission.mkdir(parents=True, exist_ok=True)
        for old in submission.iterdir():
            old.unlink()
        for name, content in files.items():
            if isinstance(content, bytes):
                (submission / name).write_bytes(content)
            else:
                write_submission(submission / name, content)
        variables = dict(os.environ, COURSERA_SHARED=str(shared), AUTOGRADER_SOURCE=str(tmp_path / "source"),
                         AUTOGRADER_PYTHON=python, **env)
        variables.pop("PYTHONPATH", None)
        proc = subprocess.run([str(tmp_path / "source" / "run_grader")], cwd=tmp_path, env=variables,
                              capture_output=True, text=True, timeout=300)
        feedback = json.loads((shared / "feedback.json").read_text())
        page = (shared / "htmlFeedback.html").read_text() if (shared / "htmlFeedback.html").exists() else ""
        assert set(feedback) <= {"fractionalScore", "feedback", "feedbackType"}, feedback
        if "feedbackType" in feedback:
            assert page.startswith("<!DOCTYPE html>") and len(page.encode()) <= CAP_BYTES
        return proc.returncode, feedback, page, proc.stderr

    return run


@pytest.mark.slow
def test_run_grader_scores_the_reference_one_and_the_release_zero(coursera):
    status, feedback, page, log = coursera({"pytorch_slope.ipynb": make_submission()})
    assert status == 0 and feedback["fractionalScore"] == 1.0 and feedback["feedbackType"] == "HTML", log
    assert "final_loss: 2/2 passed" in feedback["feedback"]
    assert "Autograded score: 10 / 10" in page and "graded by hand" not in page  # autograded points only
    assert "confinement: " in log and "fractionalScore: 1.0" in log  # for the course staff (stderr)

    release = (PYTORCH_SLOPE.release_notebook).read_bytes()
    status, feedback, page, log = coursera({"pytorch_slope.ipynb": release})
    assert status == 0 and feedback["fractionalScore"] == 0.0, log
    assert "forward: 0/1 failed" in feedback["feedback"] and "Autograded score: 0 / 10" in page


@pytest.mark.slow
def test_run_grader_scores_a_broken_upload_zero_with_a_message(coursera):
    status, feedback, page, _ = coursera({"pytorch_slope.ipynb": b'{"cells": ['})
    assert status == 0 and feedback["fractionalScore"] == 0.0
    assert "not a valid notebook" in feedback["feedback"] and "not a valid notebook" in page


def test_run_grader_without_exactly_one_notebook_scores_zero_with_a_message(coursera):
    status, feedback, page, _ = coursera({"a.ipynb": make_submission(), "b.ipynb": make_submission()})
    assert status == 0 and feedback["fractionalScore"] == 0.0
    assert "several notebooks were submitted (a.ipynb, b.ipynb)" in feedback["feedback"] and "a.ipynb" in page

    status, feedback, _, _ = coursera({"notes.txt": b"hello"})
    assert status == 0 and feedback["fractionalScore"] == 0.0
    assert "no notebook was submitted (received: notes.txt)" in feedback["feedback"]

    # Coursera renames the upload to the part's file name and passes the learner's own in `filename`
    status, feedback, _, _ = coursera({"pytorch_slope.ipynb": b"print(1)\n"}, filename="homework.py")
    assert status == 0 and feedback["fractionalScore"] == 0.0
    assert "you submitted 'homework.py', which is not a Jupyter notebook" in feedback["feedback"]


@pytest.mark.slow
def test_a_host_with_no_confinement_level_records_no_score(coursera, bundle, tmp_path):
    """The grader refuses to grade unconfined: the learner is told it is not their fault, no
    fractionalScore is written, the exit status says the grading failed, the staff read why."""
    status, feedback, page, log = coursera({"pytorch_slope.ipynb": make_submission()}, AUTOGRADER_MAX_CONFINEMENT="unconfined")
    assert status == 1 and "fractionalScore" not in feedback, feedback
    assert feedback["feedback"] == NOT_YOUR_FAULT and "not a problem with your work" in page
    assert "--unconfined" in log and "no score recorded" in log

    # coursera-bundle --unconfined: graded, and the staff log says how
    image.unpack(build(tmp_path / "unconfined.zip", unconfined=True), tmp_path / "source")
    status, feedback, _, log = coursera({"pytorch_slope.ipynb": make_submission()}, AUTOGRADER_MAX_CONFINEMENT="unconfined")
    assert status == 0 and feedback["fractionalScore"] == 1.0 and "confinement: unconfined" in log


def test_a_grader_that_cannot_run_records_no_score(coursera, tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/usr/bin/env bash\nexit 3\n")
    fake.chmod(0o755)
    status, feedback, _, log = coursera({"pytorch_slope.ipynb": make_submission()}, python=str(fake))
    assert status == 1 and feedback == {"feedback": NOT_YOUR_FAULT}, feedback
    assert "could not run" in log


@pytest.mark.slow
def test_a_grader_that_fails_after_starting_records_no_score(coursera, tmp_path):
    """`grade` dies without a result (here: SIGKILLed): no score, whatever it printed before."""
    fake = tmp_path / "python"
    fake.write_text(f"""#!/usr/bin/env bash
if [ "$1 $2 $3" = "-m autograder grade" ]; then echo '{{"partial'; kill -KILL $$; fi
exec {sys.executable} "$@"
""")
    fake.chmod(0o755)
    status, feedback, page, log = coursera({"pytorch_slope.ipynb": make_submission()}, python=str(fake))
    assert status == 1 and "fractionalScore" not in feedback and feedback["feedback"] == NOT_YOUR_FAULT, log
    assert "exited with status -9" in log


def _result(feedback: str, notes: list[str]) -> SubmissionResult:
    checks = [CheckResult(name, 0, points, CheckStatus.FAILED, feedback) for name, points in PYTORCH_SLOPE.checks.items()]
    return SubmissionResult(checks, notes=notes, isolation={"level": "landlock"})


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in ("meta", "br"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open and self.open[-1] == tag, (self.open[-3:], tag)
        self.open.pop()


def test_feedback_larger_than_coursera_shows_is_cut_with_a_note_and_stays_valid():
    huge = "<b>é</b> & " * 20_000  # 200 KB a check, escaped on rendering
    out = to_coursera(_result(huge, [f"note {i}: " + huge[:2000] for i in range(500)]), PYTORCH_SLOPE)
    page, text = out["html"], out["feedback"]["feedback"]
    assert len(page.encode()) <= CAP_BYTES and CUT_NOTE in page and "more notes." in page
    parser = _Tags()
    parser.feed(page)
    parser.close()
    assert parser.open == [], "every element the cut page opens is closed"
    assert "<b>é</b>" not in page and "&lt;b&gt;é&lt;/b&gt;" in page  # escaped, never markup
    assert all(f"<code>{name}</code>" in page for name in PYTORCH_SLOPE.checks)  # every check still listed
    assert json_size(text) <= CAP_BYTES and text.endswith(f"[{CUT_NOTE}]") and text.startswith("Autograded score: 0/10.")
    assert out["feedback"]["fractionalScore"] == 0.0

    small = to_coursera(_result("wrong sign", ["a note"]), PYTORCH_SLOPE)
    assert CUT_NOTE not in small["html"] and "wrong sign" in small["html"] and "a note" in small["feedback"]["feedback"]


def test_a_check_that_ended_in_a_grader_error_records_no_score():
    result = _result("", [])
    result.checks[0].status = CheckStatus.ERROR
    out = to_coursera(result, PYTORCH_SLOPE)
    assert out["graded"] is False and "fractionalScore" not in out["feedback"]
    assert out["staff"]["failure"] == "the grader failed on the check(s) forward"


def test_grades_own_bound_records_no_score_in_the_coursera_format(tmp_path):
    """The watchdog's fallback (grade.py renders it before the grading starts) is a grader failure."""
    from autograder.grade import rendered
    from autograder.model.results import zero_result

    late = zero_result(PYTORCH_SLOPE.checks, "Not graded: too slow.", not_graded="too slow")
    out = json.loads(rendered(late, "coursera", tmp_path / "x.ipynb", failure="the grader did not finish"))
    assert out["graded"] is False and "fractionalScore" not in out["feedback"]
    assert json.loads(rendered(late, "coursera", tmp_path / "x.ipynb"))["feedback"]["fractionalScore"] == 0.0
