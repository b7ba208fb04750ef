"""The boundary between a sandbox and the grader (issue 7, parts 2 to 4): nothing a submission
sends can crash an output, grow the grader's memory or hold it past its deadlines.

Hostile submissions find the grader's socket among their own file descriptors and write raw
frames to it (a 4-byte length and JSON), as an attacker would. They are graded on the shared
zygote with short limits, so each deadline test takes seconds.
"""
from __future__ import annotations

import json
import threading
import time

import psutil
import pytest

from autograder.model.status import CheckStatus
from autograder.outputs.text import to_text
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.limits import Limits, worst_case_seconds

SHORT = Limits(cell_timeout_s=2, execute_timeout_s=6, probe_timeout_s=2, checks_timeout_s=8)

# Student code that finds the grader's socket and writes frames to it.
GRADER_SOCKET = (
    "import os, struct, json, time\n"
    "def grader_fd():\n"
    "    for name in os.listdir('/proc/self/fd'):\n"
    "        try:\n"
    "            if os.readlink(f'/proc/self/fd/{name}').startswith('socket:'):\n"
    "                return int(name)\n"
    "        except OSError:\n"
    "            pass\n"
    "def frame(message):\n"
    "    body = json.dumps(message).encode()\n"
    "    return struct.pack('!I', len(body)) + body\n"
    "def drip(fd):\n"
    "    os.write(fd, struct.pack('!I', 1000))  # a header, then one byte now and then, forever\n"
    "    while True:\n"
    "        try:\n"
    "            os.write(fd, b' ')\n"
    "            time.sleep(0.5)\n"
    "        except OSError:\n"
    "            return\n"
    "        except BaseException:  # the cell's and the probe's time limits\n"
    "            pass\n"
)


def _grade(zygote, tmp_path, notebook, limits: Limits = SHORT, *, within_s: float | None = None):
    """Grade `notebook`; fails the test if grading does not return within `within_s`."""
    path = write_submission(tmp_path / "pytorch_slope.ipynb", notebook)
    context = GradingContext(zygote=zygote, limits=limits)
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = grade_submission(path, context)
        except BaseException as error:  # reported below, in the test's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(within_s)
    seconds = time.monotonic() - start
    assert not thread.is_alive(), f"grading did not return within {within_s} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], seconds


def _all_text(result) -> str:
    return json.dumps(result.to_dict(), ensure_ascii=False)


# ------------------------------------------------------------------ 2. text from the student


def test_lone_surrogates_and_huge_names_are_bounded_and_writable(zygote, tmp_path):
    notebook = make_submission(
        {"criterion": "def criterion(yhat, y):\n    raise ValueError('\\ud800' * 100000 + '\\x1b[2J')\n"},
        extra_cells=["raise type('E' * 1_000_000, (Exception,), {})('\\udfff bad')",
                     "print('\\ud800' * 50000)"])
    result, _ = _grade(zygote, tmp_path, notebook, within_s=120)
    text = _all_text(result)
    text.encode("utf-8")  # a lone surrogate cannot be encoded: every writer used to crash on it
    assert "\x1b" not in text
    assert len(text) < 200_000, len(text)  # the type name alone was a megabyte
    report = to_text(result, title="t")
    report.encode("utf-8")
    assert {c.name: c.score for c in result.checks}["forward"] == 1  # the rest was graded as usual
    assert {c.name: c.status for c in result.checks}["loss"] == CheckStatus.FAILED


# ------------------------------------------------------------------ 3. deadlines that hold


def test_a_sandbox_that_drips_bytes_while_executing_cannot_hold_grading(zygote, tmp_path):
    notebook = make_submission(extra_cells=[GRADER_SOCKET + "drip(grader_fd())"])
    result, seconds = _grade(zygote, tmp_path, notebook, within_s=worst_case_seconds(SHORT) + 30)
    assert seconds < SHORT.execute_timeout_s + 15, seconds
    assert result.score == 0 and all(c.status == CheckStatus.FAILED for c in result.checks)
    assert any(f"took longer than {SHORT.execute_timeout_s:g} s" in note for note in result.notes), result.notes


def test_a_step_that_drips_bytes_during_a_probe_costs_its_checks_only_their_time(zygote, tmp_path):
    forward = ("import os\n_KERNEL = os.getpid()\n" + GRADER_SOCKET +
               "def forward(x, w):\n    if os.getpid() != _KERNEL:\n        drip(grader_fd())\n    return w * x\n")
    result, seconds = _grade(zygote, tmp_path, make_submission({"forward": forward}),
                             within_s=worst_case_seconds(SHORT) + 30)
    assert seconds < SHORT.probe_timeout_s + 5 + 20, seconds  # one probe's deadline, plus start-up
    forward_check = next(c for c in result.checks if c.name == "forward")
    assert forward_check.score == 0 and "stopped responding while running the forward check" in forward_check.feedback


def test_the_checks_share_one_time_budget(zygote, tmp_path):
    slow = ("import os, time\n_KERNEL = os.getpid()\n"
            "def forward(x, w):\n    if os.getpid() != _KERNEL:\n        time.sleep(1.5)\n    return w * x\n")
    limits = Limits(cell_timeout_s=5, execute_timeout_s=30, probe_timeout_s=3, checks_timeout_s=4)
    result, seconds = _grade(zygote, tmp_path, make_submission({"forward": slow}), limits,
                             within_s=worst_case_seconds(limits) + 30)
    assert seconds < 4 + 5 + 15, seconds
    feedback = " ".join(c.feedback for c in result.checks)
    assert "time budget of 4 s" in feedback, feedback
    assert result.score == 0


# ------------------------------------------------------------------ 4. bounded memory


def test_a_flood_of_large_frames_is_refused_before_it_is_read(zygote, tmp_path):
    flood = GRADER_SOCKET + (
        "fd = grader_fd()\n"
        "big = frame({'event': 'cell', 'index': 0, 'status': 'ok', 'output': 'x' * (15 * 2**20)})\n"
        "for _ in range(100):\n"
        "    os.write(fd, big)\n")
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = [baseline]
    done = threading.Event()

    def sample():
        while not done.wait(0.05):
            peak[0] = max(peak[0], me.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result, _ = _grade(zygote, tmp_path, make_submission(extra_cells=[flood]), within_s=120)
    finally:
        done.set()
        sampler.join()
    grown_mb = (peak[0] - baseline) / 2**20
    assert grown_mb < 100, f"the grader grew by {grown_mb:.0f} MB"
    assert result.score == 0
    assert any("where at most" in note and "accepted" in note for note in result.notes), result.notes


def test_more_cell_results_than_cells_end_the_sandbox(zygote, tmp_path):
    forge = GRADER_SOCKET + (
        "fd = grader_fd()\n"
        "for _ in range(50):\n"
        "    os.write(fd, frame({'event': 'cell', 'index': 0, 'status': 'ok', 'output': ''}))\n")
    result, _ = _grade(zygote, tmp_path, make_submission(extra_cells=[forge]), within_s=120)
    assert any("more cell messages than the grader asked for" in note for note in result.notes), result.notes
    assert result.score == 0


@pytest.mark.parametrize("garbage", [b"[" * 200_000, b"\xff\xfe not json", b'"a string"'])
def test_garbage_on_the_socket_ends_the_sandbox_with_a_note(zygote, tmp_path, garbage):
    cell = GRADER_SOCKET + f"body = {garbage!r}\nos.write(grader_fd(), struct.pack('!I', len(body)) + body)\n"
    result, _ = _grade(zygote, tmp_path, make_submission(extra_cells=[cell]), within_s=120)
    assert any("not a message" in note for note in result.notes), result.notes
