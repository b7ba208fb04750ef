"""The batch verb `python -m autograder autograde`: discovery of nbgrader's layout, exact scores
for a test course of ordinary, broken and hostile submissions, the outputs agreeing with each
other, resuming after SIGKILL, skipping unchanged work, --force and --student, and a worker
that dies.

The heavy tests share one graded course per module (graded once, with --workers 2)."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import nbformat
import pytest

from autograder.assignment import CHECKS, KIT_ROOT, PYTORCH_SLOPE
from autograder.autograde.discover import discover
from autograder.autograde.main import main as autograde_main
from autograder.autograde.workers import WorkerPool
from autograder.outputs.csv_report import grades_csv_path
from autograder.release.synthetic import make_submission, write_submission

A = "pytorch_slope"
NB = f"{A}.ipynb"
FULL = {"forward": 1, "loss": 2, "gradient": 2, "update": 2, "zero_grad": 1, "final_loss": 2}
ZERO = dict.fromkeys(CHECKS, 0)

LOSS_SUM = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
UPDATE_PLUS = "def update(w, lr):\n    with torch.no_grad():\n        w += lr * w.grad\n"
ZERO_WEIGHT = "def zero_grad(w):\n    with torch.no_grad():\n        w.zero_()\n"
FORWARD_ITEM = "def forward(x, w):\n    return x * w.item()\n"


def run_summary(course_dir: Path) -> dict:
    """The last run's summary as data (reports/<assignment>/run.json)."""
    return json.loads((Path(course_dir) / "reports" / A / "run.json").read_text())


def scores(forward=1, loss=2, gradient=2, update=2, zero_grad=1, final_loss=2):
    return dict(forward=forward, loss=loss, gradient=gradient, update=update, zero_grad=zero_grad, final_loss=final_loss)


def _leak_probe(course: Path) -> str:
    """A cell that tries to read and write where a submission must not; if anything works,
    it defines a broken forward, which the scores would show."""
    targets_read = [KIT_ROOT / "solutions" / "pytorch_slope.py", KIT_ROOT / "autograder" / "checks" / "test_loss.py",
                    course / "gradebook.db", course / "submitted" / "ref" / A / NB, Path("/etc/shadow")]
    targets_write = [grades_csv_path(course, PYTORCH_SLOPE), course / "submitted" / "ref" / A / NB, KIT_ROOT / "solutions" / "leak.txt",
                     Path("/tmp/autograde-escape-marker"), course / "escape-marker"]
    return (
        "import os\nleaks = []\n"
        f"for path in {[str(p) for p in targets_read]!r}:\n"
        "    try:\n        open(path, 'rb').read(10); leaks.append(path)\n    except Exception:\n        pass\n"
        f"for path in {[str(p) for p in targets_write]!r}:\n"
        "    try:\n        open(path, 'a').write('x'); leaks.append(path)\n    except Exception:\n        pass\n"
        "import socket\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); leaks.append('network')\nexcept Exception:\n    pass\n"
        "print('leaks:', leaks)\n"
    )


LEAK_CHECK = "if leaks:\n    def forward(x, w):\n        return x * 0\n"


def hostile(course: Path) -> dict:
    """name -> (notebook, expected per-check scores)."""
    sub = make_submission
    return {
        "h_sys_exit": (sub(extra_cells=["import sys\nsys.exit(1)"]), scores()),
        # the notebook's process ends; the checks still run, in clean rooms, on its definitions
        "h_os_exit": (sub(extra_cells=["import os\nos._exit(0)"]), scores()),
        # misbehaves only where the grader calls it (in a probe's process), not in the notebook
        "h_os_exit_in_step": (sub({"zero_grad": "import os\n_KERNEL = os.getpid()\ndef zero_grad(w):\n"
                                                "    if os.getpid() != _KERNEL:\n        os._exit(3)\n    w.grad.zero_()\n"}),
                              scores(zero_grad=0, final_loss=0)),
        "h_kill_parent": (sub(extra_cells=["import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"]), scores()),
        "h_kill_parent_in_step": (sub({"update": "import os, signal\ndef update(w, lr):\n    os.kill(os.getppid(), signal.SIGKILL)\n"}),
                                  scores(update=0, final_loss=0)),  # each check has its own room
        # kill(-1) reaches every process of the sandbox's own uid, never the grader's
        "h_kill_all": (sub(extra_cells=["import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept Exception:\n    pass"]), scores()),
        "h_fork_bomb": (sub(extra_cells=["import os\nwhile True:\n    os.fork()"]), scores()),
        "h_memory_bomb": (sub(extra_cells=["x = bytearray(50 * 10**9)", "import torch\nt = torch.empty(50 * 10**9 // 4)"]), scores()),
        "h_print_flood": (sub(extra_cells=["while True:\n    print('spam ' * 200)"]), scores()),
        "h_write_flood": (sub(extra_cells=["import os\nwhile True:\n    os.write(1, b'x' * 65536); os.write(2, b'y' * 65536)"]), scores()),
        "h_sleep": (sub(extra_cells=["import time\ntime.sleep(10**6)"]), scores()),
        "h_patch_torch": (sub({"criterion": LOSS_SUM}, extra_cells=[
            "import torch, math\ntorch.allclose = lambda *a, **k: True\ntorch.isclose = lambda *a, **k: torch.tensor(True)\n"
            "torch.equal = lambda *a, **k: True\nmath.isclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda *a: True"]),
            scores(loss=0, gradient=0, final_loss=0)),
        "h_patch_builtins": (sub({"criterion": LOSS_SUM}, extra_cells=[
            "import builtins\nbuiltins.isinstance = lambda *a: True\nbuiltins.abs = lambda x: 0"]),
            scores(loss=0, gradient=0, final_loss=0)),  # the patch never reaches the clean rooms
        "h_read_write_outside": (sub(extra_cells=[_leak_probe(course), LEAK_CHECK]), scores()),
    }


def _without_cell(grade_id: str):
    notebook = make_submission()
    notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]
    return notebook


def _duplicated():
    notebook = make_submission()
    notebook.cells = notebook.cells + [nbformat.v4.new_code_cell(c.source) for c in notebook.cells if c.cell_type == "code"]
    return notebook


def ordinary() -> dict:
    return {
        "ref": (make_submission(), scores()),
        "release": (make_submission(solved=False), ZERO),
        "loss_sum": (make_submission({"criterion": LOSS_SUM}), scores(loss=0, gradient=0, final_loss=0)),
        "update_plus": (make_submission({"update": UPDATE_PLUS}), scores(update=0, final_loss=0)),
        "zero_weight": (make_submission({"zero_grad": ZERO_WEIGHT}), scores(zero_grad=0, final_loss=0)),
        "forward_item": (make_submission({"forward": FORWARD_ITEM}), scores(forward=0, gradient=0, final_loss=0)),
        "b_duplicated_cells": (_duplicated(), scores()),
        "b_deleted_forward_cell": (_without_cell("forward_impl"), scores(forward=0, gradient=0, final_loss=0)),
        "b_no_stubs": (make_submission({name: "pass\n" for name in ("forward", "criterion", "update", "zero_grad")}), ZERO),
    }


def build_course(course: Path) -> dict:
    """Write the test course; returns student -> expected {check: score} (None: not graded)."""
    expected = {}
    for student, (notebook, want) in {**ordinary(), **hostile(course)}.items():
        write_submission(course / "submitted" / student / A / NB, notebook)
        expected[student] = want
    folder = lambda s: course / "submitted" / s / A  # noqa: E731
    # bad input
    write_submission(folder("b_renamed") / "my_slope_final.ipynb", make_submission())
    expected["b_renamed"] = scores()
    v3 = nbformat.convert(make_submission(), 3)
    folder("b_nbformat_v3").mkdir(parents=True)
    (folder("b_nbformat_v3") / NB).write_text(nbformat.writes(v3, version=3))
    expected["b_nbformat_v3"] = scores()
    folder("b_not_json").mkdir(parents=True)
    (folder("b_not_json") / NB).write_text("this is not a notebook {")
    expected["b_not_json"] = None
    (course / "submitted" / "b_missing_folder").mkdir(parents=True)
    expected["b_missing_folder"] = None
    folder("b_empty_folder").mkdir(parents=True)
    expected["b_empty_folder"] = None
    write_submission(folder("b_two_notebooks") / "a.ipynb", make_submission())
    write_submission(folder("b_two_notebooks") / "b.ipynb", make_submission())
    expected["b_two_notebooks"] = None
    folder("b_no_ipynb").mkdir(parents=True)
    (folder("b_no_ipynb") / "pytorch_slope.py").write_text("def forward(x, w):\n    return w * x\n")
    expected["b_no_ipynb"] = None
    # timestamps: the due date (set in the gradebook below) is 2026-11-23 00:00 UTC
    (folder("ref") / "timestamp.txt").write_text("2026-11-20 09:00:00.000000 UTC\n")
    (folder("loss_sum") / "timestamp.txt").write_text("2026-11-24 09:00:00.000000 UTC\n")
    (folder("update_plus") / "timestamp.txt").write_text("2026-11-22T23:00:00-03:00\n")  # 02:00 UTC: late
    return expected


LATE = {"loss_sum", "update_plus"}


def set_due_date(course: Path) -> None:
    from nbgrader.api import Gradebook

    from autograder.outputs.gradebook import record_in_gradebook

    record_in_gradebook(course, PYTORCH_SLOPE, [])  # creates the gradebook with the assignment's structure
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        gb.update_or_create_assignment(A, duedate=datetime(2026, 11, 23))


def run_cli(course: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """`python -m autograder autograde` as a TA types it, in a process of its own."""
    return subprocess.run([sys.executable, "-m", "autograder", "autograde", A, "--course-dir", str(course), *args],
                          capture_output=True, text=True, timeout=timeout, cwd=KIT_ROOT)


def run_in_process(course: Path, *args: str) -> subprocess.CompletedProcess:
    """The same command line in this process: later runs reuse this process's multiprocessing
    forkserver instead of starting (and importing torch in) a new one, about 4 s of CPU a run."""
    from autograder.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli_main(["autograde", A, "--course-dir", str(course), *args])
    return subprocess.CompletedProcess(["autograde", *args], status, out.getvalue(), err.getvalue())


def read_csv(course: Path) -> dict[str, dict]:
    with grades_csv_path(course, PYTORCH_SLOPE).open(newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def gradings(course: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(course / ".autograde-state.sqlite") as db:
        return list(db.execute("SELECT student, run_id FROM gradings ORDER BY id"))


# ---------------------------------------------------------------- fast: discovery and misuse


def test_discover_classifies_folders(tmp_path):
    sub = tmp_path / "submitted"
    (sub / "no_assignment").mkdir(parents=True)
    (sub / "empty" / A).mkdir(parents=True)
    (sub / "only_timestamp" / A).mkdir(parents=True)
    (sub / "only_timestamp" / A / "timestamp.txt").write_text("2026-11-20 09:00:00 UTC\n")
    (sub / "renamed" / A).mkdir(parents=True)
    (sub / "renamed" / A / "Copy of slope.ipynb").write_text("{}")
    (sub / "extra" / A).mkdir(parents=True)
    (sub / "extra" / A / NB).write_text("{}")
    (sub / "extra" / A / "scratch.ipynb").write_text("{}")
    (sub / "bad_time" / A).mkdir(parents=True)
    (sub / "bad_time" / A / NB).write_text("{}")
    (sub / "bad_time" / A / "timestamp.txt").write_text("yesterday-ish\n")
    (sub / ".hidden").mkdir()
    items = {i.student: i for i in discover(tmp_path, PYTORCH_SLOPE)}
    assert sorted(items) == ["bad_time", "empty", "extra", "no_assignment", "only_timestamp", "renamed"]
    assert items["no_assignment"].notebook is None and "does not exist" in items["no_assignment"].problem
    assert items["empty"].notebook is None and "empty submission" in items["empty"].problem
    assert items["only_timestamp"].notebook is None and "empty submission" in items["only_timestamp"].problem
    assert items["only_timestamp"].timestamp == datetime(2026, 11, 20, 9)
    assert items["renamed"].notebook.name == "Copy of slope.ipynb" and "renamed notebook" in items["renamed"].notes[0]
    assert items["extra"].notebook.name == NB and "ignored scratch.ipynb" in items["extra"].notes[0]
    assert items["bad_time"].timestamp is None and "timestamp.txt could not be read" in items["bad_time"].notes[0]
    assert not any(i.late for i in items.values())  # no gradebook, so no due date
    # --student names a student without a folder: still a row
    missing = discover(tmp_path, PYTORCH_SLOPE, ["ghost"])[0]
    assert missing.notebook is None and "no folder submitted/ghost/" in missing.problem


def test_content_hash_follows_every_file(tmp_path):
    folder = tmp_path / "submitted" / "s" / A
    folder.mkdir(parents=True)
    (folder / NB).write_text("{}")
    first = discover(tmp_path, PYTORCH_SLOPE)[0].content_hash
    assert discover(tmp_path, PYTORCH_SLOPE)[0].content_hash == first
    (folder / "timestamp.txt").write_text("2026-11-20 09:00:00 UTC\n")
    second = discover(tmp_path, PYTORCH_SLOPE)[0].content_hash
    (folder / NB).write_text("{ }")
    assert len({first, second, discover(tmp_path, PYTORCH_SLOPE)[0].content_hash}) == 3


def test_misuse_exits_2_with_one_line(tmp_path, capsys):
    assert autograde_main(assignment="other_hw", course_dir=tmp_path, workers=1, device="cpu", students=None, force=False) == 2
    assert "unknown assignment 'other_hw'" in capsys.readouterr().err
    assert autograde_main(assignment=A, course_dir=tmp_path / "nope", workers=1, device="cpu", students=None, force=False) == 2
    assert "course directory not found" in capsys.readouterr().err
    cli = run_cli(tmp_path / "nope", timeout=120)
    assert cli.returncode == 2 and cli.stderr.strip().count("\n") == 0 and "course directory not found" in cli.stderr


# ------------------------------------------------------------- slow: one graded test course


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    expected = build_course(course)
    set_due_date(course)
    ref_bytes = (course / "submitted" / "ref" / A / NB).read_bytes()
    start = time.monotonic()
    # Hostile cells that sleep or flood run into the cell time limit: 1 s instead of 20 keeps the
    # suite fast and is still ten times the CPU time any correct cell of the notebook needs.
    run = run_cli(course, "--workers", "2", "--cell-timeout", "1")
    print(f"graded the test course of {len(expected)} in {time.monotonic() - start:.1f} s")
    assert run.returncode == 0, run.stdout + run.stderr[-5000:]
    return {"dir": course, "expected": expected, "run": run, "ref_bytes": ref_bytes}


def test_run_json_keys_are_snake_case_with_the_summarys_values(tmp_path):
    """`run.json` had keys with spaces ("graded now"): a script reads it by snake_case keys."""
    from autograder.autograde.main import write_run_summary

    info = {"run id": "r1", "graded now": 3, "skipped (unchanged)": 2, "grading wall time (s)": 1.25,
            "wall time (s)": 2.5, "outputs not written": ["bob: gradebook"], "mean score": 5.5}
    written = json.loads(write_run_summary(tmp_path, PYTORCH_SLOPE, info).read_text())
    assert written == {"run_id": "r1", "graded_now": 3, "skipped_unchanged": 2, "grading_wall_time_s": 1.25,
                       "wall_time_s": 2.5, "outputs_not_written": ["bob: gradebook"], "mean_score": 5.5}


BATCH = pytest.mark.slow


@BATCH
def test_every_submission_scores_exactly(course):
    rows = read_csv(course["dir"])
    assert sorted(rows) == sorted(course["expected"])
    wrong = {}
    for student, want in course["expected"].items():
        row = rows[student]
        got = {name: float(row[name]) for name in CHECKS}
        want_status = "not graded" if want is None else "graded"
        want = ZERO if want is None else want
        if got != {k: float(v) for k, v in want.items()} or row["status"] != want_status \
                or float(row["total"]) != sum(want.values()) or row["max"] != "10":
            wrong[student] = (row, want)
    assert not wrong, wrong


@BATCH
def test_reasons_a_ta_understands(course):
    rows = read_csv(course["dir"])
    reason = {s: r["reason"] for s, r in rows.items()}
    assert "no submission" in reason["b_missing_folder"]
    assert "empty submission" in reason["b_empty_folder"]
    assert "not JSON" in reason["b_not_json"]
    assert "none named pytorch_slope.ipynb" in reason["b_two_notebooks"]
    assert "no .ipynb" in reason["b_no_ipynb"]
    assert "renamed notebook: graded my_slope_final.ipynb" in reason["b_renamed"]
    assert "old format v3" in reason["b_nbformat_v3"]
    assert reason["b_deleted_forward_cell"] == "functions not defined: forward"
    assert reason["b_no_stubs"] == "functions not defined: forward, criterion, update, zero_grad"
    for student in ("h_os_exit", "h_patch_builtins"):
        assert "Execution stopped: its Python process ended while running cell 3 (`" in reason[student]  # as Jupyter shows it
    for student in ("h_print_flood", "h_write_flood", "h_sleep", "ref", "h_fork_bomb", "h_memory_bomb"):
        assert reason[student] == "", (student, reason[student])


@BATCH
def test_late_flag_from_the_gradebook_due_date(course):
    rows = read_csv(course["dir"])
    assert {s for s, r in rows.items() if r["late"] == "yes"} == LATE


@BATCH
def test_hostile_code_changed_nothing_outside(course):
    d = course["dir"]
    assert (d / "submitted" / "ref" / A / NB).read_bytes() == course["ref_bytes"]
    for path in (Path("/tmp/autograde-escape-marker"), d / "escape-marker", KIT_ROOT / "solutions" / "leak.txt"):
        assert not path.exists(), path


@BATCH
@pytest.mark.skipif(os.geteuid() != 0, reason="sandbox uids are leased by a root grader only")
def test_no_process_of_the_batchs_sandbox_uids_outlives_it(course):
    """Other graders may run on the machine: only this batch's leased uids are looked at, each
    while this test holds its lease (tests/sandbox_uids.py)."""
    from sandbox_uids import processes_left_on

    with sqlite3.connect(course["dir"] / ".autograde-state.sqlite") as db:
        records = [json.loads(r) for (r,) in db.execute("SELECT record FROM submissions")]
    uids = {((r.get("result") or {}).get("isolation") or {}).get("uid") for r in records} - {None}
    assert uids and processes_left_on(uids) == {}


@BATCH
def test_csv_results_json_and_gradebook_agree(course):
    from nbgrader.api import Gradebook

    d = course["dir"]
    rows = read_csv(d)
    with Gradebook(f"sqlite:///{d / 'gradebook.db'}") as gb:
        for student, row in rows.items():
            data = json.loads((d / "feedback" / student / A / "results.json").read_text())
            assert {t["name"]: t["score"] for t in data["tests"] if t["name"] in CHECKS} == {n: float(row[n]) for n in CHECKS}, student
            assert data["score"] == float(row["total"])
            book = {g.name: g.auto_score for g in gb.find_submission_notebook(A, A, student).grades if g.name in CHECKS}
            assert book == {n: float(row[n]) for n in CHECKS}, student
            assert (d / "feedback" / student / A / f"{A}.html").is_file()
    assert (d / "reports" / A / "index.html").is_file()


@BATCH
def test_summary_says_what_happened_and_where(course):
    out = course["run"].stdout
    assert f"{len(course['expected'])} submissions" in out
    info = run_summary(course["dir"])
    assert {k: info[k] for k in ("submissions", "graded_now", "skipped_unchanged", "not_gradable", "failed", "late")} \
        == {"submissions": 30, "graded_now": 25, "skipped_unchanged": 0, "not_gradable": 5, "failed": 0, "late": 2}
    assert info["not_graded"] == 5  # listed apart, not averaged into the mean
    # keys a script can use (issue 29: "graded now" had a space)
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", key) for key in info), sorted(info)
    assert isinstance(info["wall_time_s"], float) and isinstance(info["mean_score"], float)
    for name in ("grades by check", "feedback", "gradebook", "class report"):
        assert f"{name}:" in out
    lines = [line for line in course["run"].stderr.splitlines() if line.startswith("[")]  # not a terminal: plain lines
    assert len(lines) == 26 and lines[-1].startswith("[26/26] ")


@BATCH
def test_rerun_skips_unchanged_then_regrades_changed_and_named(course):
    d = course["dir"]
    before = gradings(d)
    same_limits = ("--workers", "2", "--cell-timeout", "1")  # other limits make another grader: all regraded
    again = run_in_process(d, *same_limits)
    assert again.returncode == 0, again.stderr
    assert (run_summary(d)["graded_now"], run_summary(d)["skipped_unchanged"]) == (0, 30)
    assert gradings(d) == before
    # one student resubmits: only that one is graded
    write_submission(d / "submitted" / "release" / A / NB, make_submission())
    run_in_process(d, *same_limits)
    assert (run_summary(d)["graded_now"], run_summary(d)["skipped_unchanged"]) == (1, 29)
    assert [s for s, _ in gradings(d)[len(before):]] == ["release"]
    assert read_csv(d)["release"]["total"] == "10"
    # --student regrades that student even though nothing changed
    run_in_process(d, *same_limits, "--student", "zero_weight")
    assert [s for s, _ in gradings(d)[len(before) + 1:]] == ["zero_weight"]
    assert (run_summary(d)["graded_now"], run_summary(d)["skipped_unchanged"]) == (1, 29)
    assert len(read_csv(d)) == 30  # the outputs still cover the whole class


# ------------------------------------------------------------------- slow: resume after SIGKILL


@pytest.mark.slow
def test_resume_after_sigkill_loses_nothing_and_grades_only_the_rest(tmp_path):
    # Each submission sleeps half a second, so the batch is surely still running when it is killed.
    slow = ["import time\ntime.sleep(0.5)"]
    small = {f"s{i:02d}": (make_submission(extra_cells=slow), scores()) for i in range(5)}
    small.update({f"w{i:02d}": (make_submission({"criterion": LOSS_SUM}, extra_cells=slow),
                                scores(loss=0, gradient=0, final_loss=0)) for i in range(5)})
    for student, (notebook, _) in small.items():
        write_submission(tmp_path / "submitted" / student / A / NB, notebook)
    state = tmp_path / ".autograde-state.sqlite"
    proc = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", A, "--course-dir", str(tmp_path), "--workers", "2"],
                            cwd=KIT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    stored = 0
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists():
            try:
                with sqlite3.connect(state) as db:
                    stored = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
            except sqlite3.Error:
                stored = 0
        if stored >= 3:
            break
        time.sleep(0.1)
    assert proc.poll() is None, "the batch ended before it could be killed halfway"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = [s for s, _ in gradings(tmp_path)]
    assert 3 <= len(first) < len(small) and not grades_csv_path(tmp_path, PYTORCH_SLOPE).exists()
    rerun = run_in_process(tmp_path, "--workers", "2")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr[-3000:]
    second = [s for s, _ in gradings(tmp_path)[len(first):]]
    assert sorted(first + second) == sorted(small)  # nothing lost, nothing graded twice
    assert run_summary(tmp_path)["skipped_unchanged"] == len(first)
    rows = read_csv(tmp_path)
    for student, (_, want) in small.items():
        assert {n: float(rows[student][n]) for n in CHECKS} == {k: float(v) for k, v in want.items()}
    run_in_process(tmp_path, "--workers", "2", "--force")
    assert (run_summary(tmp_path)["graded_now"], run_summary(tmp_path)["skipped_unchanged"]) == (len(small), 0)
    assert sorted(s for s, _ in gradings(tmp_path)[len(first) + len(second):]) == sorted(small)


# --------------------------------------------------------------------------- worker death


def _crashy_task(item: dict, state: dict) -> dict:
    """A stand-in task for the pool: dies or hangs on request, otherwise echoes."""
    if item["student"] == "dies":
        os._exit(7)
    if item["student"] == "hangs":
        time.sleep(120)
    state["seen"] = state.get("seen", 0) + 1
    return {"student": item["student"], "pid": os.getpid(), "seen": state["seen"]}


@pytest.mark.slow
def test_a_dying_or_stuck_worker_is_replaced_and_the_batch_goes_on():
    from autograder.autograde.attempts import MAX_ATTEMPTS

    items = [{"student": s} for s in ("a", "dies", "b", "hangs", "c", "d")]
    with WorkerPool(2, PYTORCH_SLOPE, task=_crashy_task, hard_timeout_s=3) as pool:
        outcomes = {o.item["student"]: o for o in pool.run(items)}
        replaced = pool.replaced
    assert sorted(outcomes) == sorted(i["student"] for i in items)
    assert not outcomes["dies"].ok and "exited with status 7" in outcomes["dies"].reason
    assert not outcomes["hangs"].ok and "longer than 3 s" in outcomes["hangs"].reason
    assert outcomes["dies"].attempts == outcomes["hangs"].attempts == MAX_ATTEMPTS  # each by a fresh worker
    assert all(outcomes[s].ok and outcomes[s].result["student"] == s for s in "abcd")
    assert replaced == 2 * MAX_ATTEMPTS


def test_the_workers_forkserver_and_zygote_server_start_before_the_class_is_discovered(tmp_path, monkeypatch):
    """Their imports of torch overlap discovery (which imports nbgrader to read the due date);
    the server is closed when the run stops there."""
    import autograder.autograde.main as batch
    import autograder.autograde.workers as workers
    import autograder.sandbox.grader.zygotes as spawn
    from autograder.assignment import PYTORCH_SLOPE

    calls = []

    class Server:
        def __init__(self):
            calls.append("zygote server")

        def close(self):
            calls.append("zygote server closed")

    monkeypatch.setattr(spawn, "ZygoteServer", Server)

    class Stop(Exception):
        pass

    def discovering(*args, **kwargs):
        calls.append("discover")
        raise Stop

    monkeypatch.setattr(workers, "start_forkserver", lambda: calls.append("forkserver"))
    monkeypatch.setattr(batch, "discover", discovering)
    with pytest.raises(Stop):
        batch.run_batch(assignment=PYTORCH_SLOPE, course_dir=tmp_path, workers=1, device="cpu", students=None, force=False)
    assert calls == ["forkserver", "zygote server", "discover", "zygote server closed"]


def test_a_submission_the_grader_failed_on_has_no_score_and_is_graded_again_next_time(tmp_path):
    from autograder.autograde.discover import WorkItem
    from autograder.autograde.records import outcome_record
    from autograder.autograde.state import State

    item = WorkItem("s", tmp_path, tmp_path / NB, "abc")
    record = outcome_record(item, PYTORCH_SLOPE, False, None, "the grading worker process was killed by signal SIGKILL",
                            faults=["the grading worker process was killed by signal SIGKILL"] * 2)
    assert record.status == "grader error" and "SIGKILL" in record.reason and "3 times" in record.reason
    assert all(c.status == "error" for c in record.result.checks)  # no check was judged: none holds a score
    state = State(tmp_path)
    state.save(record, "run1")
    stored = state.load(A)
    assert stored["s"][1].reason == record.reason
    assert not state.is_current(stored["s"], "abc", record.grader)  # graded again even if unchanged
    state.close()


def test_progress_is_a_bar_on_a_terminal_and_lines_otherwise():
    import io

    from autograder.autograde.main import Progress
    from autograder.model.records import GradedSubmission
    from autograder.model.results import zero_result

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    record = GradedSubmission("amy", A, None, "h", None, False, "graded", "", zero_result(CHECKS, "x"))
    for stream, plain in ((Terminal(), False), (io.StringIO(), True)):
        progress = Progress(2, PYTORCH_SLOPE.max_score, stream)
        progress.update(record, 1.0)
        progress.update(record, 1.0)
        progress.close()
        text = stream.getvalue()
        if plain:
            assert text.splitlines() == ["[1/2] amy: 0/10 graded (1.0 s)", "[2/2] amy: 0/10 graded (1.0 s)"]
        else:
            assert "autograde: 100%" in text and "2/2 [" in text and "\r" in text


# ------------------------------------------------------------------ a new grader regrades


@pytest.mark.slow
def test_grades_made_by_another_grader_are_graded_again(tmp_path, monkeypatch, capsys):
    """Changing the checks, the reference or the term makes every stored grade stale."""
    import autograder.autograde.main as batch

    for student in ("amy", "bob"):
        write_submission(tmp_path / "submitted" / student / A / NB, make_submission())
    run = dict(assignment=A, course_dir=tmp_path, workers=1, device="cpu", students=None, force=False)
    assert autograde_main(**run) == 0
    assert autograde_main(**run) == 0
    assert (run_summary(tmp_path)["graded_now"], run_summary(tmp_path)["skipped_unchanged"]) == (0, 2)
    monkeypatch.setattr(batch, "grader_fingerprint", lambda *args, **kwargs: "checks changed")
    assert autograde_main(**run) == 0
    assert (run_summary(tmp_path)["graded_now"], run_summary(tmp_path)["skipped_unchanged"]) == (2, 0)
    assert sorted(s for s, _ in gradings(tmp_path)) == ["amy", "amy", "bob", "bob"]
