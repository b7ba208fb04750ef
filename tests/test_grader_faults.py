"""A grade is never wrong because of the grader (issue 27), and a run stops cleanly (issue 29.5).

Faults are injected from outside the grader, as an out-of-memory killer, an operator or another
program would: SIGKILL and SIGSTOP of each kind of grader process (worker, zygote, zygote server,
the workers' forkserver, the gradebook writer) at random moments, every zygote killed as it
starts, a gradebook another process holds, a full disk under the outputs, Ctrl-C and SIGTERM. The
pool's retry rule is also driven directly, with a task that fails once in each way.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from autograder.assignment import CHECKS, KIT_ROOT, PYTORCH_SLOPE
from autograder.autograde.attempts import MAX_ATTEMPTS
from autograder.autograde.workers import WorkerPool
from autograder.outputs.csv_report import grades_csv_path
from autograder.release.synthetic import make_submission, write_submission

A = PYTORCH_SLOPE.name
NB = PYTORCH_SLOPE.notebook
LOSS_SUM = "def criterion(yhat, y):\n    return ((yhat - y) ** 2).sum()\n"
FULL = dict(CHECKS)
LOSS_SUM_SCORES = {**FULL, "loss": 0, "gradient": 0, "final_loss": 0}
ROOT = os.geteuid() == 0


def write_class(course: Path, students: dict[str, dict], extra_cells=()) -> dict[str, dict]:
    """student -> overrides; returns student -> expected scores."""
    expected = {}
    for student, overrides in students.items():
        write_submission(course / "submitted" / student / A / NB, make_submission(overrides, extra_cells=list(extra_cells)))
        expected[student] = LOSS_SUM_SCORES if overrides else FULL
    return expected


def cli(course: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autograder", "autograde", A, "--course-dir", str(course), *args],
                            cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def cli_to_files(course: Path, folder: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """`cli`, its output in files: a leftover process holding a pipe must not hide how the run went."""
    out, err = folder / "stdout.txt", folder / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "autograder", "autograde", A, "--course-dir", str(course), *args],
                                   cwd=KIT_ROOT, stdout=stdout, stderr=stderr, text=True)
    return process, out, err


def in_process(course: Path, *args: str) -> tuple[int, str, str]:
    """The command line in this process (reuses this process's forkserver: no torch import a run)."""
    from autograder.cli import main as cli_main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli_main(["autograde", A, "--course-dir", str(course), *args])
    return status, out.getvalue(), err.getvalue()


def csv_rows(course: Path) -> dict[str, dict]:
    with grades_csv_path(course, PYTORCH_SLOPE).open(newline="") as handle:
        return {row["student"]: row for row in csv.DictReader(handle)}


def scores_of(row: dict) -> dict:
    return {name: float(row[name]) for name in CHECKS}


# ---------------------------------------------------------------------------------- processes


def grader_processes(root: psutil.Process) -> dict[str, list[psutil.Process]]:
    """The run's processes under `root` (the autograde parent), by kind."""
    kinds: dict[str, list[psutil.Process]] = {k: [] for k in ("forkserver", "worker", "zygote server", "zygote", "writer", "box")}
    try:
        children = root.children(recursive=True)
        root_cmdline = root.cmdline()
    except psutil.Error:
        return kinds
    found, now = {}, time.time()
    for process in children:
        with contextlib.suppress(psutil.Error):
            if now - process.create_time() < 0.5:  # between fork and exec a child still shows its parent's command
                continue
            found[process.pid] = (process, " ".join(process.cmdline()), process.ppid())
    kind_of: dict[int, str] = {}
    for _ in range(4):  # parents before children: a kind follows from the parent's
        for pid, (_, text, ppid) in found.items():
            parent = kind_of.get(ppid)
            if ppid == root.pid and "multiprocessing.forkserver" in text:  # its workers show its command too
                kind_of[pid] = "forkserver"
            elif ppid == root.pid and "zygote.main" in text:
                kind_of[pid] = "zygote server"
            elif ppid == root.pid and text == " ".join(root_cmdline):
                kind_of[pid] = "writer"
            elif parent == "forkserver":
                kind_of[pid] = "worker"
            elif parent in ("zygote server", "worker") and "zygote.main" in text and _holds_torch(ppid):
                kind_of[pid] = "zygote"  # not a child a server forks to probe the host (see kill_every_zygote)
            elif parent in ("zygote", "box"):
                kind_of[pid] = "box"
    for pid, kind in kind_of.items():
        kinds[kind].append(found[pid][0])
    return kinds


def everything_under(root_pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(root_pid).children(recursive=True)
    except psutil.Error:
        return []


def still_running(processes: list[psutil.Process], patience_s: float = 30.0) -> list[str]:
    """Those of `processes` still running after `patience_s` (a forkserver that saw its run end
    takes a few seconds to tear its interpreter down on a loaded machine)."""
    deadline = time.monotonic() + patience_s
    while True:
        alive = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    alive.append(f"{process.pid} {process.status()} {' '.join(process.cmdline())[:120]}")
            except psutil.Error:
                pass
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.2)


# ----------------------------------------------------------------- the one atomic writer


def _write_many(path: str, fill: str, count: int) -> None:
    from autograder.outputs.atomic import write_atomic

    for _ in range(count):
        write_atomic(Path(path), fill * 200_000)


def test_writers_of_one_file_never_mix_and_leave_no_temporary_file(tmp_path):
    """Two processes rewriting one output at once (two runs, a run and its forked writer): a reader
    only ever sees one whole version, and no temporary file is left (each writer's is its own)."""
    import multiprocessing

    from autograder.outputs.atomic import AtomicFiles

    target = tmp_path / "out" / "page.html"
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_write_many, args=(str(target), fill, 150)) for fill in "abcd"]
    for writer in writers:
        writer.start()
    seen = set()
    while any(w.is_alive() for w in writers):
        if target.exists():
            text = target.read_text()
            seen.add(text[:1])
            assert text in {fill * 200_000 for fill in "abcd"}, "a reader saw a mixed or partial file"
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert os.listdir(target.parent) == ["page.html"] and seen <= set("abcd")
    # a batch appears together at commit, and an error in the block leaves every target as it was
    with AtomicFiles() as files:
        files.write(tmp_path / "out" / "one.json", "1")
        files.write(tmp_path / "out" / "two.json", "2")
        assert not (tmp_path / "out" / "one.json").exists()
    assert (tmp_path / "out" / "two.json").read_text() == "2"
    with contextlib.suppress(RuntimeError), AtomicFiles() as files:
        files.write(tmp_path / "out" / "one.json", "changed")
        raise RuntimeError("stopped halfway")
    assert (tmp_path / "out" / "one.json").read_text() == "1"
    assert sorted(os.listdir(target.parent)) == ["one.json", "page.html", "two.json"]


# ------------------------------------------------------------------- the pool's retry rule


def _faulty_task(item: dict, state: dict) -> dict:
    """Fails once in one way (per item, counted in a folder the attempts share), then answers."""
    marker = Path(item["marks"]) / item["student"]
    first = not marker.exists()
    marker.write_text("tried")
    how = item["student"]
    if how == "raises_always" or (first and how == "raises_once"):
        raise RuntimeError("the sandbox zygote did not start (injected)")
    if first and how == "dies_once":
        os._exit(9)
    if first and how == "stops_once":
        os.kill(os.getpid(), signal.SIGSTOP)
    if first and how == "dies_under_a_stopped_forkserver":
        os.kill(os.getppid(), signal.SIGSTOP)  # the forkserver: it can no longer report this worker's exit
        os._exit(9)
    status = "error" if first and how == "errs_once" else "passed"
    tampered = how == "tampered_always" or (first and how == "tampered_once")
    return {"checks": [{"name": "forward", "status": status}], "pid": os.getpid(),
            "integrity": ["clean room: it ignored signals (SIGINT) once the definitions were made"] if tampered else []}


def test_a_grader_fault_is_retried_with_a_fresh_worker_and_a_persistent_one_is_reported(tmp_path):
    names = ["ok", "dies_once", "stops_once", "errs_once", "raises_once", "raises_always", "tampered_once", "tampered_always"]
    items = [{"student": name, "marks": str(tmp_path)} for name in names]
    with WorkerPool(2, PYTORCH_SLOPE, task=_faulty_task, hard_timeout_s=60) as pool:
        outcomes = {o.item["student"]: o for o in pool.run(items)}
    assert sorted(outcomes) == sorted(names)
    assert outcomes["ok"].ok and outcomes["ok"].faults == []
    for name in ("dies_once", "stops_once", "errs_once", "raises_once"):
        outcome = outcomes[name]
        assert outcome.ok and outcome.attempts == 2 and outcome.result["checks"][0]["status"] == "passed", (name, outcome)
    assert "exited with status 9" in outcomes["dies_once"].faults[0]
    assert "stopped (SIGSTOP)" in outcomes["stops_once"].faults[0]
    assert "failed in the check forward" in outcomes["errs_once"].faults[0]
    always = outcomes["raises_always"]
    assert not always.ok and always.attempts == MAX_ATTEMPTS and all("did not start" in f for f in always.faults)
    # a clean room found tampered with is made once more with fresh processes; found again, it stands
    once, twice = outcomes["tampered_once"], outcomes["tampered_always"]
    assert once.ok and once.attempts == 2 and once.result["integrity"] == [] and "tampered with" in once.faults[0]
    assert twice.ok and twice.attempts == 2 and twice.result["integrity"] and len(twice.faults) == 1


# ------------------------------------------- a fault that follows the submission: never a score


def _holds_torch(pid: int) -> bool:
    """Whether `pid` has torch loaded: a zygote server or zygote that is warm, or a worker."""
    try:
        with open(f"/proc/{pid}/maps") as maps:
            return any("libtorch" in line for line in maps)
    except OSError:
        return False


def kill_every_zygote(root_pid: int, stop: threading.Event, *, server_too: bool) -> threading.Thread:
    """An outside fault that never goes away: every zygote that appears under `root_pid` (the
    zygote server too, if `server_too`) is SIGKILLed as it appears (not those already there: the
    test session's own). A zygote is forked by a warm server or started by a worker, which hold
    torch; the children a server or zygote forks to probe the host, before it imports torch, are
    not zygotes (killing them, seen alive on a busy machine, made a server that was to be spared
    look for a user namespace, whose process then looked like a zygote)."""
    before = {p.pid for p in everything_under(root_pid)}

    def run():
        while not stop.is_set():
            for process in everything_under(root_pid):
                with contextlib.suppress(psutil.Error):
                    if process.pid in before or "zygote.main" not in " ".join(process.cmdline()):
                        continue
                    parent = process.ppid()
                    if (server_too and parent == root_pid) or (parent != root_pid and _holds_torch(parent)):
                        process.kill()
            time.sleep(0.02)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_a_submission_the_grader_cannot_grade_has_no_score_anywhere_and_is_graded_next_run(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    write_class(course, {"amy": {}})

    def graded_while_zygotes_are_killed(server_too: bool):
        stop = threading.Event()
        killer = kill_every_zygote(os.getpid(), stop, server_too=server_too)
        try:
            return in_process(course, "--workers", "1")
        finally:
            stop.set()
            killer.join()

    # no zygote server can start: nothing can be graded, and nothing is changed
    status, out, err = graded_while_zygotes_are_killed(server_too=True)
    assert status == 1 and "the sandbox zygote server did not start, 3 times" in err and "Traceback" not in err, out + err
    assert not grades_csv_path(course, PYTORCH_SLOPE).exists()  # nothing was published either
    # the server starts, but every zygote it forks (and every one a worker starts) is killed
    status, out, err = graded_while_zygotes_are_killed(server_too=False)
    assert status == 1, out + err
    assert "not graded yet (grader error): 1" in out and "NOT GRADED YET: amy" in out, out + err
    [amy_row] = [line.split() for line in out.splitlines() if line.split()[:1] == ["amy"]]
    assert amy_row[1:1 + len(CHECKS) + 1] == ["-"] * (len(CHECKS) + 1), out  # the printed table shows no score either
    row = csv_rows(course)["amy"]
    assert row["status"] == "grader error" and f"{MAX_ATTEMPTS} times" in row["reason"], row
    assert all(row[name] == "" for name in CHECKS) and row["total"] == "", row  # no score, not a 0
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        grades = {g.name: (g.auto_score, g.needs_manual_grade)
                  for g in gb.find_submission_notebook(A, A, "amy").grades if g.name in CHECKS}
    assert grades == dict.fromkeys(CHECKS, (None, True))  # formgrader lists every check as needing a grade
    page = (course / "feedback" / "amy" / A / f"{A}.html").read_text()
    assert "Not graded yet" in page and "Autograded score: not graded yet" in page and "/ 10" not in page
    results = json.loads((course / "feedback" / "amy" / A / "results.json").read_text())
    assert results["output"].startswith("Not graded yet")
    assert json.loads((course / "reports" / A / "run.json").read_text())["failed"] == 1

    status, out, err = in_process(course, "--workers", "1")  # the fault is gone: a plain run grades it
    assert status == 0, out + err
    row = csv_rows(course)["amy"]
    assert row["status"] == "graded" and scores_of(row) == FULL


# ---------------------------------------- grader processes killed or stopped at random moments


def inject_faults(root_pid: int, seed: int, done: threading.Event, log: list[str], *, graded=lambda: True) -> threading.Thread:
    """SIGKILL or SIGSTOP one process of each kind of the run at a random moment (seeded; a kind
    not there yet is hit as soon as it is), and the gradebook writer as soon as it appears once
    `graded()` says every submission is stored (a child being started shows the run's command
    for a moment too)."""
    rng = random.Random(seed)
    plan = [("worker", signal.SIGKILL), ("worker", signal.SIGSTOP), ("zygote", signal.SIGKILL), ("zygote", signal.SIGSTOP),
            (rng.choice([("zygote server", signal.SIGKILL), ("zygote server", signal.SIGSTOP)])),
            (rng.choice([("forkserver", signal.SIGKILL), ("forkserver", signal.SIGSTOP)]))]
    rng.shuffle(plan)
    moments = sorted(rng.uniform(2.0, 12.0) for _ in plan)
    writer_signal = rng.choice([signal.SIGKILL, signal.SIGSTOP])

    def run():
        root = psutil.Process(root_pid)
        start = time.monotonic()
        pending = list(zip(moments, plan, strict=True))
        writer_hit, hit = False, set()
        while not done.is_set():
            kinds = grader_processes(root)
            now = time.monotonic() - start
            for due in [each for each in pending if each[0] <= now]:  # a kind not there yet: as soon as it is
                _, (kind, number) = due
                targets = [p for p in kinds[kind] if p.pid not in hit]
                if targets:
                    pending.remove(due)
                    target = rng.choice(targets)
                    hit.add(target.pid)
                    with contextlib.suppress(psutil.Error):
                        target.send_signal(number)
                        log.append(f"{now:.1f} s: {signal.Signals(number).name} {kind} {target.pid}")
            if not writer_hit and kinds["writer"] and graded():
                with contextlib.suppress(psutil.Error):
                    kinds["writer"][0].send_signal(writer_signal)
                    log.append(f"{now:.1f} s: {writer_signal.name} writer {kinds['writer'][0].pid}")
                    writer_hit = True
            time.sleep(0.01)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow
def test_grader_processes_killed_or_stopped_at_random_moments_change_no_grade(tmp_path):
    course = tmp_path / "course"
    # each notebook also waits a moment, so that the class takes long enough to be hit
    expected = write_class(course, {f"s{i}": ({"criterion": LOSS_SUM} if i % 3 == 0 else {}) for i in range(8)},
                           extra_cells=["import time\ntime.sleep(0.7)"])
    seed = random.SystemRandom().randrange(10**6)
    run, stdout, stderr = cli_to_files(course, tmp_path, "--workers", "2")
    done, log = threading.Event(), []

    def all_stored() -> bool:
        state = course / ".autograde-state.sqlite"
        with contextlib.suppress(sqlite3.Error), sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
            return db.execute("SELECT count(*) FROM submissions").fetchone()[0] == len(expected)
        return False

    injector = inject_faults(run.pid, seed, done, log, graded=all_stored)
    seen: list[psutil.Process] = []
    deadline = time.monotonic() + 600
    while run.poll() is None and time.monotonic() < deadline:  # every process the run ever had, to check none outlives it
        seen += [p for p in everything_under(run.pid) if p.pid not in {s.pid for s in seen}]
        time.sleep(0.05)
    hung = run.poll() is None
    if hung:
        for process in [*everything_under(run.pid), psutil.Process(run.pid)]:
            with contextlib.suppress(psutil.Error):
                process.kill()
        run.wait()
    done.set()
    injector.join()
    context = f"seed {seed}; injected: {log}\n{stdout.read_text()}\n{stderr.read_text()[-3000:]}"
    assert not hung, f"the run did not end within 600 s; {context}"
    assert run.returncode in (0, 1), context
    assert not still_running(seen), (still_running(seen), context)
    # No grade is wrong: each is the notebook's; one the grader failed on (three faults can land on
    # one submission) has no score at all, exit status 1, and the next plain run grades it.
    assert grades_csv_path(course, PYTORCH_SLOPE).is_file(), context
    rows = csv_rows(course)
    for student, want in expected.items():
        row = rows[student]
        if row["status"] == "grader error":
            assert run.returncode == 1 and all(row[name] == "" for name in CHECKS), (student, context)
        else:
            assert row["status"] == "graded" and scores_of(row) == want, (student, context)
    staff = json.loads((course / "reports" / A / "staff.json").read_text())
    retried = [fault for entry in staff["students"] for fault in entry["grader_faults_retried"]]
    summary = json.loads((course / "reports" / A / "run.json").read_text())
    assert len(retried) == summary["grader_faults_retried"], context  # every retried fault is named for staff
    if run.returncode == 1:
        status, out, err = in_process(course, "--workers", "2")
        assert status == 0, out + err
        rows = csv_rows(course)
        assert {s: (rows[s]["status"], scores_of(rows[s])) for s in expected} == {s: ("graded", w) for s, w in expected.items()}


# ------------------------------------------------------------------------ the gradebook, held


@pytest.mark.slow
def test_a_gradebook_another_program_holds_is_waited_for_then_reported_and_written_next_run(tmp_path, monkeypatch):
    import autograder.outputs.gradebook as gradebook
    from autograder.outputs.gradebook import record_in_gradebook

    course = tmp_path / "course"
    write_class(course, {"amy": {}, "bob": {"criterion": LOSS_SUM}})
    record_in_gradebook(course, PYTORCH_SLOPE, [])  # the gradebook exists, as a TA's course has one
    db = course / "gradebook.db"
    holder = ("import sqlite3, sys, time\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('BEGIN EXCLUSIVE')\nprint('held', flush=True)\ntime.sleep(float(sys.argv[2]))\n")

    def hold(seconds: float) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", holder, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "held"
        return process

    monkeypatch.setattr(gradebook, "GRADEBOOK_BUSY_TIMEOUT_S", 2.0)
    held = hold(600)
    try:
        status, out, err = in_process(course, "--workers", "1")
    finally:
        held.kill()
        held.wait()
    assert status == 1 and "not written: gradebook (another program held it for 2 s" in out, out + err
    assert csv_rows(course)["amy"]["status"] == "graded"  # everything else was written
    with sqlite3.connect(db) as check:  # one transaction per run: none of the class is in it
        assert check.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0] == 0

    monkeypatch.setattr(gradebook, "GRADEBOOK_BUSY_TIMEOUT_S", 60.0)
    held = hold(1.5)  # held for a moment: the next run waits for it
    try:
        status, out, err = in_process(course, "--workers", "1")
    finally:
        held.wait()
    assert status == 0, out + err
    info = json.loads((course / "reports" / A / "run.json").read_text())
    assert (info["graded_now"], info["skipped_unchanged"]) == (0, 2)  # nothing graded again
    with sqlite3.connect(db) as check:
        assert check.execute("SELECT count(*) FROM submitted_assignment").fetchone()[0] == 2


# -------------------------------------------------------------------------- a full disk


@pytest.mark.slow
@pytest.mark.skipif(not ROOT, reason="mounts a small tmpfs in a private mount namespace (root)")
def test_a_full_disk_under_the_outputs_loses_nothing_and_leaves_nothing_half_written(tmp_path):
    course = tmp_path / "course"
    write_class(course, {"amy": {}, "bob": {"criterion": LOSS_SUM}})
    status, out, err = in_process(course, "--workers", "1")
    assert status == 0, out + err
    page = course / "feedback" / "amy" / A / f"{A}.html"
    before = page.read_bytes()
    # The feedback folder becomes a 256 KiB tmpfs holding the old pages and a file filling it up,
    # in a mount namespace of this run's own; then every submission is graded again (--force).
    script = f"""
set -e
cp -a {course}/feedback /tmp/feedback-copy-$$
mount -t tmpfs -o size=256k tmpfs {course}/feedback
cp -a /tmp/feedback-copy-$$/. {course}/feedback/ && rm -rf /tmp/feedback-copy-$$
dd if=/dev/zero of={course}/feedback/filler bs=4k 2>/dev/null || true
set +e
{sys.executable} -m autograder autograde {A} --course-dir {course} --workers 1 --force
echo "exit=$?"
find {course}/feedback -name '*.tmp' | sed 's/^/leftover: /'
md5sum {page} | sed 's/^/page: /'
"""
    run = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], cwd=KIT_ROOT,
                         capture_output=True, text=True, timeout=600)
    if "mount: " in run.stderr and "exit=" not in run.stdout:
        pytest.skip(f"no tmpfs mount here: {run.stderr.strip()[:200]}")
    assert "exit=1" in run.stdout, run.stdout + run.stderr
    for student in ("amy", "bob"):  # each page that could not be written is named, with why
        assert f"not written: {student}: feedback page (OSError: [Errno 28] No space left" in run.stdout, run.stdout
    assert "leftover:" not in run.stdout, run.stdout  # no temporary file was left behind
    import hashlib

    assert f"page: {hashlib.md5(before).hexdigest()}" in run.stdout  # the old page, whole
    assert csv_rows(course)["amy"]["status"] == "graded"  # outputs elsewhere were written
    # once there is room (outside the namespace, the folder never filled), a plain run writes everything
    status, out, err = in_process(course, "--workers", "1")
    assert status == 0 and "not written" not in out, out + err


# ------------------------------------------------------- Ctrl-C, SIGTERM, and a second run


LOOPING = ["while True:\n    pass"]  # each notebook keeps its box busy until the cell's limit


@pytest.mark.slow
@pytest.mark.parametrize("how", ["Ctrl-C", "SIGTERM"])
def test_ctrl_c_and_sigterm_stop_everything_keep_what_is_stored_and_print_one_line(tmp_path, how):
    course = tmp_path / "course"
    write_class(course, {"a_quick": {}})  # graded first (in order of ids)
    for i in range(4):
        write_submission(course / "submitted" / f"looping{i}" / A / NB, make_submission(extra_cells=LOOPING))
    run = cli(course, "--workers", "2", "--cell-timeout", "60", start_new_session=True)  # its own group, as a terminal's job
    state = course / ".autograde-state.sqlite"
    seen: list[psutil.Process] = []
    deadline = time.monotonic() + 300
    boxes = 0
    while time.monotonic() < deadline and run.poll() is None:
        seen += [p for p in everything_under(run.pid) if p.pid not in {s.pid for s in seen}]
        boxes = len(grader_processes(psutil.Process(run.pid))["box"])
        stored = 0
        if state.exists():
            with contextlib.suppress(sqlite3.Error), sqlite3.connect(state) as db:
                stored = db.execute("SELECT count(*) FROM submissions").fetchone()[0]
        if stored >= 1 and boxes >= 2:  # "a_quick" is stored and two looping notebooks are running
            break
        time.sleep(0.1)
    assert run.poll() is None and boxes >= 2, "the run ended before it could be stopped"
    second = cli(course, "--workers", "1")  # one run at a time per course: refused, naming the first
    second_out, second_err = second.communicate(timeout=120)
    assert second.returncode == 2 and f"pid {run.pid} on host" in second_err and "started" in second_err, second_err
    started = time.monotonic()
    if how == "Ctrl-C":
        os.killpg(run.pid, signal.SIGINT)  # what a terminal sends its foreground job
    else:
        run.send_signal(signal.SIGTERM)  # to the grader's process only
    out, err = run.communicate(timeout=60)
    seconds = time.monotonic() - started
    assert seconds < 15, seconds
    assert run.returncode == (130 if how == "Ctrl-C" else 143), err
    lines = [line for line in err.splitlines() if not line.startswith("[")]  # progress lines aside
    assert len(lines) == 1 and lines[0].startswith("autograde: stopped by") and "stored" in lines[0], err
    assert "Traceback" not in err + out
    assert not still_running(seen)
    with sqlite3.connect(state) as db:
        kept = {student: status for student, status in db.execute("SELECT student, status FROM submissions")}
    assert kept.get("a_quick") == "graded" and set(kept.values()) == {"graded"}, kept  # nothing half-done was stored


# ------------------------------------- what the grader's own processes inherit reaches no box

def _deaf_start() -> None:
    """What a batch's worker, a service manager or a shell's `nohup` may hand on through exec:
    SIGINT and SIGTERM ignored, a signal blocked."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])


def test_a_grader_started_with_signals_ignored_or_blocked_still_grades_the_reference_in_full(tmp_path):
    # A worker ignores SIGINT and SIGTERM; a zygote it started inherited both, and so did every
    # room, which the rooms' integrity check then found "ignoring signals": correct students of a
    # run whose zygote server had been stopped scored 0/10 (found by the random-fault test).
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb"),
                           "--format", "gradescope"], cwd=KIT_ROOT, stdout=out.open("w"), stderr=subprocess.PIPE,
                          text=True, preexec_fn=_deaf_start, timeout=600)
    results = json.loads(out.read_text())
    assert done.returncode == 0, done.stderr[-2000:]
    assert {t["name"]: t["score"] for t in results["tests"] if t["name"] in CHECKS} == FULL, results["output"]


def test_workers_that_start_zygotes_of_their_own_grade_as_those_of_the_server(tmp_path):
    # Without a zygote server (it died or was stopped), each worker starts its zygote itself, from a
    # process that ignores SIGINT and SIGTERM.
    from autograder.autograde.workers import grade_item

    notebook = tmp_path / NB
    write_submission(notebook, make_submission({}))
    with WorkerPool(1, PYTORCH_SLOPE, task=grade_item, zygote_server=None) as pool:
        [outcome] = list(pool.run([{"student": "s", "notebook": str(notebook)}]))
    assert outcome.ok, outcome.reason
    scores = {c["name"]: c["score"] for c in outcome.result["checks"] if c["name"] in CHECKS}
    assert scores == FULL, outcome.result


ORPHAN_MAKER = """
import os, signal, subprocess, sys, time
from autograder.autograde.orphans import adopting_orphans
with adopting_orphans():
    # a child whose own child stops itself, then the child dies: a stopped orphan, as a zygote is
    # whose server or worker was killed while it was stopped
    child = subprocess.Popen([sys.executable, "-c", "import os, signal, sys, time\\n"
        "pid = os.fork()\\n"
        "if pid == 0:\\n    os.kill(os.getpid(), signal.SIGSTOP); time.sleep(600)\\n"
        "print(pid, flush=True); os._exit(0)"], stdout=subprocess.PIPE, text=True)
    orphan = int(child.stdout.readline())
    child.wait()
    time.sleep(0.2)
    print(orphan, flush=True)
"""


def test_the_command_line_run_ends_every_orphan_it_adopted_even_stopped_ones():
    done = subprocess.run([sys.executable, "-c", ORPHAN_MAKER], cwd=KIT_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    orphan = int(done.stdout.split()[-1])
    assert not psutil.pid_exists(orphan) or psutil.Process(orphan).status() == psutil.STATUS_ZOMBIE


def test_a_worker_that_dies_while_the_forkserver_is_stopped_is_replaced_at_once(tmp_path):
    # Its exit reaches the pool through the forkserver; only its closed pipe says it is gone. The
    # pool spun on that pipe, a core at 100%, until the hard timeout (found by the random-fault test).
    items = [{"student": "dies_under_a_stopped_forkserver", "marks": str(tmp_path)}]
    started = time.monotonic()
    with WorkerPool(1, PYTORCH_SLOPE, task=_faulty_task, hard_timeout_s=600) as pool:
        [outcome] = list(pool.run(items))
    assert outcome.ok and outcome.attempts == 2 and "worker process" in outcome.faults[0], outcome
    assert time.monotonic() - started < 120, "the pool waited for the hard timeout"


def test_a_forkserver_that_refuses_a_start_is_replaced_and_the_batch_goes_on(tmp_path):
    # A forkserver killed from outside refuses connections for a moment before it can be reaped,
    # and multiprocessing still takes it for running: replacing a worker then failed all three
    # tries and ended the whole batch with a ConnectionRefusedError traceback and no outputs (found
    # by the random-fault test). Here the forkserver is alive but listens nowhere.
    import multiprocessing.forkserver

    items = [{"student": "ok", "marks": str(tmp_path)}]
    with WorkerPool(1, PYTORCH_SLOPE, task=_faulty_task, hard_timeout_s=600) as pool:
        multiprocessing.forkserver.ensure_running()
        forkserver = multiprocessing.forkserver._forkserver
        refusing = forkserver._forkserver_pid
        forkserver._forkserver_address = str(tmp_path / "nothing-listens-here")
        [outcome] = list(pool.run(items))
    assert outcome.ok and outcome.attempts == 1, outcome
    assert forkserver._forkserver_pid != refusing and not psutil.pid_exists(refusing)


def _grade_killing_a_zygote(notebook: Path, tmp_path: Path, when, *, poll_s: float, within_s: float):
    """`grade --format gradescope` on `notebook`, killing (SIGKILL, from outside) the first sandbox
    zygote for which `when(process)` holds, as soon as one does: (the run, the killed pid or None,
    its stderr, the path of its results.json)."""
    out = tmp_path / "results.json"
    with out.open("w") as stdout:
        run = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(notebook), "--format", "gradescope"],
                               cwd=KIT_ROOT, stdout=stdout, stderr=subprocess.PIPE, text=True)
    killed, deadline = None, time.monotonic() + within_s
    while killed is None and time.monotonic() < deadline and run.poll() is None:
        for process in everything_under(run.pid):
            with contextlib.suppress(psutil.Error):
                if "zygote.main" in " ".join(process.cmdline()) and when(process):
                    process.kill()
                    killed = process.pid
                    break
        time.sleep(poll_s)
    _, err = run.communicate(timeout=600)
    return run, killed, err, out


def test_grade_grades_again_with_a_fresh_zygote_when_its_zygote_is_killed(tmp_path):
    # What Gradescope and Coursera run: a zygote killed from outside (an out-of-memory killer) while
    # the notebook runs must not cost the student a point.
    notebook = tmp_path / NB
    write_submission(notebook, make_submission(extra_cells=["import time\ntime.sleep(3)"]))

    # a box that has run for a second is the notebook's (the zygote's start-up probe forks briefly too)
    def has_a_box(zygote) -> bool:
        return any(time.time() - child.create_time() > 1.0 for child in zygote.children())

    run, killed, err, out = _grade_killing_a_zygote(notebook, tmp_path, has_a_box, poll_s=0.05, within_s=240)
    assert killed is not None, "the zygote was never seen with a box"
    assert run.returncode == 0 and "grading again with a fresh sandbox zygote" in err, err[-3000:]
    results = json.loads(out.read_text())
    assert {t["name"]: t["score"] for t in results["tests"] if t["name"] in CHECKS} == FULL, results["output"]


def test_grade_starts_another_zygote_when_its_first_dies_before_it_is_ready(tmp_path):
    # Found by the test above, whose kill once landed while the zygote was still starting: `grade`
    # crashed with a traceback. A zygote that dies before its "ready" is replaced, as autograde's server is.
    run, killed, err, out = _grade_killing_a_zygote(KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb",
                                                    tmp_path, lambda zygote: True,  # at once: still importing torch
                                                    poll_s=0.01, within_s=120)
    assert killed is not None, "no zygote was seen"
    assert run.returncode == 0 and "starting another sandbox zygote" in err and "Traceback" not in err, err[-3000:]
    results = json.loads(out.read_text())
    assert {t["name"]: t["score"] for t in results["tests"] if t["name"] in CHECKS} == FULL, results["output"]
