"""The boundary between a sandbox and the grader (issue 7, parts 2 to 4): nothing a submission
sends can crash an output, grow the grader's memory or hold it past its deadlines.

Hostile submissions find the grader's socket among their own file descriptors and write raw
frames to it (a 4-byte length and JSON), as an attacker would. They are graded on the shared
zygote with short limits, so each deadline test takes seconds.
"""
from __future__ import annotations

import json
import socket
import struct
import threading
import time

import psutil
import pytest

from autograder.assignment import CHECKS, MAX_SCORE, PYTORCH_SLOPE
from autograder.model.status import CheckStatus
from autograder.outputs.text import to_text
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.grader.limits import CELL_GRACE_S, PROBE_GRACE_S, Limits, worst_case_seconds

SHORT = Limits(cell_timeout_s=1, execute_timeout_s=3, probe_timeout_s=1, checks_timeout_s=4)

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
    context = GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=limits)
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
    report = to_text(result, PYTORCH_SLOPE, title="t")
    report.encode("utf-8")
    assert {c.name: c.score for c in result.checks}["forward"] == 1  # the rest was graded as usual
    assert {c.name: c.status for c in result.checks}["loss"] == CheckStatus.FAILED


# ------------------------------------------------------------------ 3. deadlines that hold


def test_a_sandbox_that_drips_bytes_while_executing_cannot_hold_grading(zygote, tmp_path):
    notebook = make_submission(extra_cells=[GRADER_SOCKET + "drip(grader_fd())"])
    result, seconds = _grade(zygote, tmp_path, notebook, within_s=worst_case_seconds(SHORT, rooms=6) + 30)
    # The drip catches the cell's limits (CPU time and its wall ceiling) and goes on: the grader's
    # own deadline for the cell's answer, a grace above that ceiling, ends it.
    cell_deadline_s = SHORT.wall_s(SHORT.cell_timeout_s) + CELL_GRACE_S
    assert seconds < cell_deadline_s + 15, seconds
    assert result.score == MAX_SCORE  # the steps are still graded, in clean rooms
    assert any(f"no complete answer within {cell_deadline_s:g} s" in note for note in result.student_notes), result.student_notes


def test_a_step_that_drips_bytes_during_a_probe_costs_its_checks_only_their_time(zygote, tmp_path):
    forward = (GRADER_SOCKET + "import sys\n" +
               "def forward(x, w):\n    if sys._getframe(1).f_globals.get('__name__', '').startswith('autograder'):\n"
               "        drip(grader_fd())  # called by a probe\n    return w * x\n")
    result, seconds = _grade(zygote, tmp_path, make_submission({"forward": forward}),
                             within_s=worst_case_seconds(SHORT, rooms=6) + 30)
    # one probe's deadline in the notebook's own state, the rooms' shared budget by the clock, start-up
    assert seconds < SHORT.wall_s(SHORT.probe_timeout_s) + PROBE_GRACE_S + SHORT.wall_s(SHORT.checks_timeout_s) + 20, seconds
    forward_check = next(c for c in result.checks if c.name == "forward")
    assert forward_check.score == 0 and "stopped responding while running the forward check" in forward_check.feedback


def test_the_checks_share_one_time_budget(zygote, tmp_path):
    """The budget counts the CPU time the steps use, and the checks share it. Each call of this
    forward computes for 1.2 s: the forward check (three probes, 3.6 s of the 4) passes, loss (which
    computes nothing slow) passes in what is left, gradient runs out of the budget calling forward,
    and the checks after it cannot run, though update and zero_grad never call forward."""
    slow = ("import sys, time\n"
            "def forward(x, w):\n    if sys._getframe(1).f_globals.get('__name__', '').startswith('autograder'):\n"
            "        start = time.process_time()\n"
            "        while time.process_time() - start < 1.2:  # called by a probe: computes for 1.2 s\n"
            "            pass\n"
            "    return w * x\n")
    limits = Limits(cell_timeout_s=5, execute_timeout_s=30, probe_timeout_s=3, checks_timeout_s=4)
    result, seconds = _grade(zygote, tmp_path, make_submission({"forward": slow}), limits,
                             within_s=worst_case_seconds(limits, rooms=6) + 30)
    assert seconds < limits.wall_s(4) + 5 + 15, seconds
    feedback = " ".join(c.feedback for c in result.checks)
    assert "time budget of 4 s" in feedback, feedback
    got = {c.name: c.score for c in result.checks}
    assert (got["forward"], got["loss"]) == (1, 2), got
    assert got["gradient"] == got["update"] == got["zero_grad"] == got["final_loss"] == 0, got


def test_a_step_that_computes_within_its_limit_passes_beside_a_cpu_hog(zygote, tmp_path):
    """Limits count CPU time: a forward that computes for 1.2 s (of a 2 s limit) the first time each
    check calls it passes while twice as many processes as cores spin, though it then takes longer
    than 2 s by the clock (its share of a core is at most 2/5). With wall-clock limits it timed out
    here. (The wall ceiling is set wide, 10 times the limit, as this machine is shared.)"""
    import os
    import subprocess
    import sys

    slow_once = ("import time\n_warm = []\n"
                 "def forward(x, w):\n    if not _warm:\n        _warm.append(1)\n        start = time.process_time()\n"
                 "        while time.process_time() - start < 1.2:\n            pass\n    return w * x\n")
    limits = Limits(cell_timeout_s=5, execute_timeout_s=30, probe_timeout_s=2, checks_timeout_s=60, wall_factor=10)
    hogs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(2 * (os.cpu_count() or 2))]
    try:
        result, _ = _grade(zygote, tmp_path, make_submission({"forward": slow_once}), limits,
                           within_s=worst_case_seconds(limits, rooms=6) + 30)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert {c.name: c.score for c in result.checks} == dict(CHECKS), [c.feedback for c in result.checks if not c.score]


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
    assert result.score == MAX_SCORE  # the steps are still graded, in clean rooms
    assert any("where at most" in note and "accepted" in note for note in result.student_notes), result.student_notes


def test_more_cell_results_than_cells_end_the_sandbox(zygote, tmp_path):
    forge = GRADER_SOCKET + (
        "fd = grader_fd()\n"
        "for _ in range(50):\n"
        "    os.write(fd, frame({'event': 'cell', 'index': 0, 'status': 'ok', 'output': ''}))\n")
    result, _ = _grade(zygote, tmp_path, make_submission(extra_cells=[forge]), within_s=120)
    assert any("more cell messages than the grader asked for" in note for note in result.student_notes), result.student_notes
    assert result.score == MAX_SCORE  # the steps are still graded, in clean rooms


@pytest.mark.parametrize("garbage", [b"[" * 200_000, b"\xff\xfe not json", b'"a string"'])
def test_garbage_on_the_socket_ends_the_sandbox_with_a_note(zygote, tmp_path, garbage):
    cell = GRADER_SOCKET + f"body = {garbage!r}\nos.write(grader_fd(), struct.pack('!I', len(body)) + body)\n"
    result, _ = _grade(zygote, tmp_path, make_submission(extra_cells=[cell]), within_s=120)
    assert any("not a message" in note for note in result.student_notes), result.student_notes


# ------------------------------------------------------------------ the schema, message by message


def _inbox_with(*frames: bytes, allowed: dict | None = None):
    from autograder.sandbox.grader.untrusted import Inbox

    ours, theirs = socket.socketpair()
    data = b"".join(struct.pack("!I", len(body)) + body for body in frames)

    def send():  # in a thread: the frames may be more than a socket's buffer
        try:
            theirs.sendall(data)
        except OSError:  # the test closed the socket without reading everything
            pass

    threading.Thread(target=send, daemon=True).start()
    inbox = Inbox(ours)
    for kind, count in (allowed or {}).items():
        inbox.allow(kind, count)
    return inbox, (ours, theirs)


def test_fields_are_typed_capped_and_unknown_ones_dropped():
    cell = {"event": "cell", "index": 99, "status": "weird", "output": "\ud800" * 20_000 + "o" * 10_000,
            "error": {"type": ["not", "a", "string"], "message": "m" * 10**5, "traceback": "\x1b[31mred"},
            "extra": "x" * 1000}
    inbox, sockets = _inbox_with(json.dumps(cell).encode(), allowed={"cell": 1})
    with sockets[0], sockets[1]:
        got = inbox.receive(("cell",), time.monotonic() + 5)
    assert set(got) == {"event", "index", "status", "output", "error", "figures"}
    assert got["index"] == 0 and got["status"] == "error"  # the grader counts cells; unknown status is an error
    assert got["figures"] == []
    assert got["error"]["type"] == "Error" and len(got["error"]["message"]) < 2100
    assert "\x1b" not in got["error"]["traceback"]
    got["output"].encode("utf-8")
    assert len(got["output"]) < 20_100


def test_the_figures_a_cell_showed_are_bounded():
    """Where a cell showed figures (for formgrader's executed copy): at most FIGURES pairs of an
    offset within the output, in order, and a short text; anything else is dropped."""
    from autograder.sandbox.grader.untrusted import FIGURE_CHARS, FIGURES, accept_cell

    shown = [[5, "<Figure size 600x400 with 1 Axes>"], [2, "earlier"], [10**12, "x" * 10**5], "junk", [1], [3, 4]]
    got = accept_cell({"status": "ok", "output": "0123456789", "figures": shown * 100}, 0)["figures"]
    assert len(got) <= FIGURES and all(len(text) <= FIGURE_CHARS + 40 for _, text in got)
    offsets = [offset for offset, _ in got]
    assert offsets == sorted(offsets) and all(0 <= o <= 10 for o in offsets)
    assert got[:3] == [[5, "<Figure size 600x400 with 1 Axes>"], [5, "earlier"], [10, got[2][1]]]
    assert accept_cell({"status": "ok", "output": "", "figures": {"a": 1}}, 0)["figures"] == []


def test_probe_replies_keep_only_what_their_status_allows():
    from autograder.sandbox.grader.untrusted import accept_probe_reply

    missing = accept_probe_reply({"status": "missing", "missing": ["forward", "os.system", 3], "junk": 1}, "cpu")
    assert missing["missing"] == ["forward"] and "junk" not in missing
    odd = accept_probe_reply({"status": "ok", "observations": {"output": {"type": "T" * 10**5, "number": 10**30}}}, "cpu")
    assert len(odd["observations"]["output"]["type"]) < 300 and odd["observations"]["output"]["number"] is None
    deep: list = []
    for _ in range(50):
        deep = [deep]
    assert accept_probe_reply({"status": "ok", "observations": {"x": deep}}, "cpu")["status"] == "crashed"
    assert accept_probe_reply({"status": "ok", "observations": {"x": list(range(20_000))}}, "cpu")["status"] == "crashed"
    assert accept_probe_reply({"status": "pwned"}, "cpu")["status"] == "crashed"


def test_tensors_of_one_reply_share_an_element_budget():
    import torch

    from autograder.sandbox.grader.untrusted import REPLY_TENSOR_ELEMENTS, accept_probe_reply
    from autograder.sandbox.shared import tensors

    half = tensors.encode(torch.zeros(REPLY_TENSOR_ELEMENTS // 2 + 1))
    reply = accept_probe_reply({"status": "ok", "observations": {"a": half, "b": half}}, "cpu")
    assert reply["status"] == "crashed" and "over the limit" in reply["reason"]


def test_unexpected_or_extra_messages_are_violations():
    from autograder.sandbox.grader.untrusted import Violation

    probe = json.dumps({"event": "probe", "status": "ok", "observations": {}}).encode()
    inbox, sockets = _inbox_with(probe, probe, allowed={"probe": 1})
    with sockets[0], sockets[1]:
        assert inbox.receive(("probe",), time.monotonic() + 5)["status"] == "ok"
        with pytest.raises(Violation, match="more probe messages"):
            inbox.receive(("probe",), time.monotonic() + 5)
    inbox, sockets = _inbox_with(json.dumps({"event": "executed", "defined": []}).encode(), allowed={"executed": 1})
    with sockets[0], sockets[1], pytest.raises(Violation, match="did not ask for"):
        inbox.receive(("probe",), time.monotonic() + 5)


def test_the_submission_byte_budget_ends_a_stream_of_allowed_messages():
    from autograder.sandbox.grader.untrusted import Violation

    body = json.dumps({"event": "cell", "status": "ok", "output": "x" * 200_000}).encode()
    inbox, sockets = _inbox_with(*[body] * 6, allowed={"cell": 1000})
    inbox.total_bytes = 1_000_000
    ours, theirs = sockets
    with ours, theirs:
        for _ in range(4):
            inbox.receive(("cell",), time.monotonic() + 5)
        with pytest.raises(Violation, match="more data than one submission may"):
            for _ in range(2):
                inbox.receive(("cell",), time.monotonic() + 5)


# ------------------------------------------------------------------ stored records and outputs


def _poisoned_record(student: str):
    from autograder.model.records import GradedSubmission
    from autograder.model.results import zero_result

    result = zero_result(CHECKS, "ValueError: \ud800" + "T" * 300_000, ["Code cell 2 raised \udfff\x1b]0;owned\x07"])
    return GradedSubmission(student, "pytorch_slope", None, "hash", None, False, "graded", "reason \ud800", result)


def test_an_old_poisoned_record_is_clean_when_read_back(tmp_path):
    import sqlite3

    from autograder.autograde.state import State
    from autograder.model.sanitize import RECORD_TEXT_CAP

    state = State(tmp_path)
    state.close()
    record = _poisoned_record("amy")  # stored the way a grader without the boundary stored it
    with sqlite3.connect(tmp_path / ".autograde-state.sqlite") as db:
        db.execute("INSERT INTO submissions VALUES (?, ?, ?, ?, ?, ?)",
                   ("pytorch_slope", "amy", "hash", "graded", json.dumps(record.to_dict()), "now"))
    state = State(tmp_path)
    stored = state.load("pytorch_slope")["amy"][1]
    state.close()
    text = json.dumps(stored.to_dict(), ensure_ascii=False)
    text.encode("utf-8")
    assert "\x1b" not in text
    assert all(len(check.feedback) < RECORD_TEXT_CAP + 100 for check in stored.result.checks)  # each was 300,000


def test_one_unwritable_page_does_not_stop_the_others(tmp_path):
    from autograder.model.records import GradedSubmission
    from autograder.model.results import zero_result
    from autograder.outputs.feedback_html import feedback_path
    from autograder.outputs.publish import NOT_WRITTEN, publish

    records = [GradedSubmission(s, "pytorch_slope", None, "h", None, False, "graded", "", zero_result(CHECKS, "x"))
               for s in ("amy", "bob", "cid")]
    records.append(_poisoned_record("dan"))
    blocked = feedback_path(tmp_path, PYTORCH_SLOPE, "bob").parent
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where bob's folder should be")
    run_info: dict = {}
    outputs = publish(tmp_path, PYTORCH_SLOPE, records, run_info)
    for student in ("amy", "cid", "dan"):
        assert feedback_path(tmp_path, PYTORCH_SLOPE, student).is_file(), student
    assert any(p.startswith("bob: feedback page") for p in run_info[NOT_WRITTEN]), run_info
    assert not any(p.startswith(("amy", "cid", "dan")) for p in run_info[NOT_WRITTEN])
    assert outputs["class report"].is_file() and "grades by check" in outputs


def test_text_report_of_a_poisoned_result_prints_anywhere():
    text = to_text(_poisoned_record("amy").result, PYTORCH_SLOPE, title="nb\udcff.ipynb")
    text.encode("utf-8")
    assert "\x1b" not in text and "\x07" not in text


# ------------------------------------------------------------------ the worker's bound


def test_the_worker_time_limit_follows_the_limits():
    from autograder.autograde.workers import WorkerPool, describe_exit_code

    longer = Limits(execute_timeout_s=300)
    short, long = WorkerPool(1, PYTORCH_SLOPE, limits=SHORT), WorkerPool(1, PYTORCH_SLOPE, limits=longer)
    assert worst_case_seconds(SHORT, rooms=len(CHECKS)) < short.hard_timeout_s < long.hard_timeout_s
    assert long.hard_timeout_s - short.hard_timeout_s == pytest.approx(
        worst_case_seconds(longer, rooms=len(CHECKS)) - worst_case_seconds(SHORT, rooms=len(CHECKS)))
    assert describe_exit_code(-9).startswith("was killed by SIGKILL") and describe_exit_code(3) == "exited with status 3"
