"""A course graded by the kit, as a TA uses it in formgrader (nbgrader's own pages, served by a
Jupyter server in the course folder and driven in headless Chromium over the DevTools protocol):

* "Manage Assignments" and "Manual Grading" list the assignment of a course made of submitted/
  only (nbgrader lists assignments from source/);
* a submission opens executed, with its outputs, as `nbgrader autograde` leaves it;
* an answer left as released needs no manual grade (0, as nbgrader scores it);
* a score and comments entered in formgrader reach the student's feedback page and results.json
  once `autograde` runs again, beside the kit's own feedback.

Skips where Chromium is absent (/usr/bin/chromium; Debian: `apt-get install -y chromium`).
"""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder.assignment import ASSIGNMENT, NOTEBOOK, PYTORCH_SLOPE
from autograder.autograde.main import run_batch
from autograder.release.sample_class import LOSS_SUM
from autograder.release.synthetic import make_submission, write_submission

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium"),
              pytest.mark.slow]
TOKEN = "formgrader-test"
STUDENTS = {"amy": dict(answered=True), "ben": dict(solved=False), "cara": dict(overrides={"criterion": LOSS_SUM}, answered=True)}


def _grade(course: Path) -> dict:
    return run_batch(assignment=PYTORCH_SLOPE, course_dir=course, workers=1, device="cpu", students=None,
                     force=False, out=io.StringIO())


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("formgrader-course")
    for student, how in STUDENTS.items():
        folder = course / "submitted" / student / ASSIGNMENT
        write_submission(folder / NOTEBOOK, make_submission(**how))
        (folder / "timestamp.txt").write_text("2026-11-20 09:00:00.000000 UTC\n")
    _grade(course)
    return course


@pytest.fixture(scope="module")
def formgrader(course, tmp_path_factory):
    """A Jupyter server with nbgrader's formgrader in the course folder; its base URL."""
    runtime = tmp_path_factory.mktemp("jupyter-runtime")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(runtime),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    args = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ServerApp.port=0", f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={course}"] + (["--allow-root"] if os.geteuid() == 0 else [])
    server = subprocess.Popen(args, cwd=course, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(runtime.glob(f"jpserver-{server.pid}.json")):
            assert server.poll() is None and time.monotonic() < deadline, "the Jupyter server did not start"
            time.sleep(0.2)
        info = json.loads(next(runtime.glob(f"jpserver-{server.pid}.json")).read_text())
        yield f"http://127.0.0.1:{info['port']}"
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, profile: Path):
        import websocket  # websocket-client, pinned with jupyter_server

        self.process = subprocess.Popen(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync",
             "--disable-background-networking", "--disable-component-update", f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file, deadline = profile / "DevToolsActivePort", time.monotonic() + 60
        while not (port_file.is_file() and port_file.read_text().strip()):
            assert self.process.poll() is None and time.monotonic() < deadline, "Chromium did not start"
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30).read())
        self.socket = websocket.create_connection(next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"],
                                                  timeout=60, suppress_origin=True)
        self.next_id = 0

    def call(self, method: str, **params) -> dict:
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"never true in the page: {expression}\n{self.text()[:3000]}"
            time.sleep(0.2)
        return value

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        time.sleep(0.2)
        self.wait_for("document.readyState === 'complete'")

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''")

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def browser(formgrader, tmp_path_factory):
    started = Browser(tmp_path_factory.mktemp("chromium-profile"))
    started.open(f"{formgrader}/formgrader?token={TOKEN}")  # logs in: the token sets the session cookie
    yield started
    started.close()


def _submission_ids(browser: Browser, formgrader: str) -> dict[str, str]:
    """student -> id of their notebook's submission, from formgrader's own API (as its pages get them)."""
    browser.open(f"{formgrader}/formgrader/api/submitted_notebooks/{ASSIGNMENT}/{Path(NOTEBOOK).stem}")
    return {row["student"]: row["id"] for row in json.loads(browser.evaluate("document.body.innerText"))}


def test_manage_assignments_and_manual_grading_list_the_assignment(browser, formgrader):
    browser.open(f"{formgrader}/formgrader/manage_assignments")
    row = browser.wait_for(f"Array.from(document.querySelectorAll('tr')).map(r => r.innerText)"
                           f".find(t => t.includes('{ASSIGNMENT}'))")
    assert f"\t{len(STUDENTS)}\t" in f"\t{row}\t".replace("\n", "\t"), row  # the number of submissions
    browser.open(f"{formgrader}/formgrader/gradebook")
    row = browser.wait_for(f"Array.from(document.querySelectorAll('tr')).map(r => r.innerText)"
                           f".find(t => t.includes('{ASSIGNMENT}'))")
    assert f"/ {PYTORCH_SLOPE.max_score + sum(PYTORCH_SLOPE.manual_checks.values())}" in row, row


def test_a_submission_opens_executed_with_its_outputs(browser, formgrader):
    browser.open(f"{formgrader}/formgrader/submissions/{_submission_ids(browser, formgrader)['cara']}")
    text = browser.wait_for("document.querySelector('#notebook') && document.body.innerText")
    assert "forward: the small example passed" in text  # what the cells printed
    assert "slope after training" in text
    assert "<Figure size" in text  # where a figure was shown (figures are not drawn while grading)
    assert "[forward] passed" in text and "[loss] failed: 0/2" in text  # each test cell's check, as nbgrader shows it
    counts = browser.evaluate("Array.from(document.querySelectorAll('.prompt')).map(p => p.innerText).join(' ')")
    assert "[1]:" in counts, counts  # executed: the cells have execution counts


def test_an_answer_left_as_released_needs_no_manual_grade(browser, formgrader):
    ids = _submission_ids(browser, formgrader)
    for student, unanswered in (("ben", True), ("amy", False)):
        browser.open(f"{formgrader}/formgrader/submissions/{ids[student]}")
        browser.wait_for("window.formgrader && formgrader.grades && formgrader.grades.loaded")
        score = browser.evaluate("(() => { const s = document.getElementById('why_updates_shrink');"
                                 " return [s.getAttribute('placeholder'), s.classList.contains('needs_manual_grade')]; })()")
        assert score == (["0", False] if unanswered else [None, True]), (student, score)


def test_scores_and_comments_entered_in_formgrader_reach_the_student(browser, formgrader, course):
    submission = _submission_ids(browser, formgrader)["cara"]
    browser.open(f"{formgrader}/formgrader/submissions/{submission}")
    browser.wait_for("window.formgrader && formgrader.grades.loaded && formgrader.comments.loaded")
    entered = {"why_updates_shrink": "1.5", "why_updates_shrink-comment": "Right idea: the gradient shrinks.",
               "criterion_impl-comment": "Use the mean, not the sum.", "gradient": "1"}  # and a check's score overridden
    for element, value in entered.items():  # as a TA types them: each input saves on change
        browser.evaluate(f"$('#{element}').val({json.dumps(value)}).trigger('change')")
    saved = ("Promise.all(['grades', 'comments'].map(kind => fetch(`/formgrader/api/${kind}?submission_id=" + submission
             + "`).then(r => r.json()))).then(([grades, comments]) => grades.some(g => g.name === 'why_updates_shrink'"
             " && g.manual_score === 1.5) && grades.some(g => g.name === 'gradient' && g.manual_score === 1)"
             " && comments.filter(c => c.manual_comment).length === 2)")
    browser.wait_for(saved)

    _grade(course)  # the documented step: `autograde` again (nothing is regraded)
    page = (course / "feedback" / "cara" / ASSIGNMENT / f"{Path(NOTEBOOK).stem}.html")
    browser.open(page.as_uri())
    text = browser.text()
    assert "1.5 / 2" in text and "Right idea: the gradient shrinks." in text
    assert "the cell that defines criterion" in text and "Use the mean, not the sum." in text  # rendered, no backticks
    assert "set this score by hand (the checks gave 0)" in text
    results = json.loads((page.parent / "results.json").read_text())
    tests = {t["name"]: t for t in results["tests"]}
    assert tests["why_updates_shrink"]["score"] == 1.5 and "Right idea" in tests["why_updates_shrink"]["output"]
    assert tests["gradient"]["score"] == 1 and "by hand" in tests["gradient"]["output"]
    assert results["score"] == sum(t["score"] for t in results["tests"])
    # the kit's own feedback is still there: each check's message, as before grading by hand
    loss = tests["loss"]
    assert loss["score"] == 0 and loss["output"] and "misconception" in loss.get("extra_data", {})
