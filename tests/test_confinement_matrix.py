"""The attack matrix (issue 25), in every mode this machine can make (tests/confinement_modes.py):
root, a TA's own account, a default container (root without CAP_SYS_ADMIN, no new namespaces)
and the account with user namespaces refused (Landlock alone).

In each mode a class is graded with `autograde` (a thief, a spy, a vandal and a killer beside a
correct student, and two correct students who fork inside a check or leave a thread spinning:
tests/attacks.py), and the killer alone with `grade`. Whatever the mode:
nothing is gained (every attacker scores 0, nothing secret reaches any output), nothing is
harmed (no file of the kit, its venv, the course or another student changes; no file lands in
a temporary folder a later grader would read), a process of the grading account outside the
batch survives, the grader returns a result for everyone, and the run says the level it used,
the strongest the mode allows. Where the mode is not root, the class also holds every scenario
of the corpus (tests/corpus/scenarios.py) but the ones that hang, and a student who imports
standard modules the zygote never loaded: each must score as it does as root.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import attacks
import nbformat
import psutil
import pytest
from confinement_modes import EXPECTED_LEVEL, MODES, Account, can_make_modes, mode
from corpus.scenarios import SCENARIOS

from autograder.release.synthetic import make_submission

pytestmark = pytest.mark.slow
VICTIM_MARKER = "VICTIM-MARKER-7731"
ATTACKERS = ("thief", "spy", "vandal", "killer")
ODD_BUT_CORRECT = ("forker", "spinner")  # tests/attacks.py: full marks, no integrity flag
# Standard modules no zygote imports: a box must load them wherever Python is installed (under
# root's 0700 home, for a sandbox uid on the host's filesystem).
LAZY_IMPORTS = "import statistics, fractions, colorsys, difflib\nassert statistics.mean([1, 2]) == 1.5"
CORPUS = [s for s in SCENARIOS if not s.hangs]


@pytest.fixture(scope="module")
def account():
    why = can_make_modes()
    if why:
        pytest.skip(why)
    base = Path(tempfile.mkdtemp(prefix="kit-accounts-"))
    base.chmod(0o755)  # the account must reach its own folder inside
    try:
        made = Account(base)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"no ordinary account could be made here: {error}")
    yield made
    made.remove()
    shutil.rmtree(base, ignore_errors=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "absent"


@pytest.fixture(scope="module", params=MODES)
def attacked(request, account):
    """One mode's run over the attacked class, and what the tests compare."""
    where = mode(request.param, account)
    folder = Path(tempfile.mkdtemp(prefix=f"kit-{where.name}-", dir=where.home if where.user else None))
    folder.chmod(0o755)
    course = folder / "course"
    sentinel_cmd = ["sleep", "600"] if where.user is None else \
        ["setpriv", f"--reuid={where.user}", f"--regid={where.user}", "--init-groups", "sleep", "600"]
    sentinel = subprocess.Popen(sentinel_cmd)
    token = "tok" + secrets.token_hex(6)
    victim = course / "submitted" / "victim" / "pytorch_slope" / "pytorch_slope.ipynb"
    kit, venv = str(where.kit), str(where.kit / ".venv")
    notebooks = {"thief": attacks.thief(kit), "spy": attacks.spy(kit, str(course), str(victim)),
                 "vandal": attacks.vandal(kit, str(course), str(victim), venv, token),
                 "killer": attacks.killer(sentinel.pid), "victim": make_submission(extra_cells=[f"# {VICTIM_MARKER}"]),
                 "lazy_importer": make_submission(extra_cells=[LAZY_IMPORTS]),
                 **{name: getattr(attacks, name)() for name in ODD_BUT_CORRECT}}
    if where.user is not None or where.name == "container":  # root's own mode grades the corpus in test_corpus_grade
        notebooks.update({f"corpus_{s.name}": s.notebook() for s in CORPUS})
    for student, notebook in notebooks.items():
        path = course / "submitted" / student / "pytorch_slope" / "pytorch_slope.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    where.own(folder)
    guarded = [where.kit / "solutions" / "pytorch_slope.py", where.kit / "autograder" / "checks" / "test_forward.py",
               where.kit / "autograder" / "grading.json", victim]
    before = {path: _sha(path) for path in guarded}
    started = time.time()
    try:
        batch = where.run(where.python, "-m", "autograder", "autograde", "pytorch_slope", "--course-dir", str(course),
                          "--workers", "2")
        single = where.run(where.python, "-m", "autograder", "grade",
                           str(course / "submitted" / "killer" / "pytorch_slope" / "pytorch_slope.ipynb"))
        alive = sentinel.poll() is None
    finally:
        sentinel.kill()
        sentinel.wait()
    yield {"mode": where, "course": course, "batch": batch, "single": single, "sentinel_alive": alive,
           "token": token, "before": before, "after": {path: _sha(path) for path in guarded}, "started": started}
    shutil.rmtree(folder, ignore_errors=True)


def _rows(course: Path) -> dict[str, dict]:
    with open(course / "reports" / "pytorch_slope" / "grades-by-check.csv", newline="") as table:
        return {row["student"]: row for row in csv.DictReader(table)}


def _scores(course: Path) -> dict[str, float]:
    return {student: float(row["total"]) for student, row in _rows(course).items()}


def test_the_grader_returns_a_result_for_everyone(attacked):
    assert attacked["batch"].returncode == 0, attacked["batch"].stderr[-3000:]
    scores = _scores(attacked["course"])
    assert {*ATTACKERS, "victim", "lazy_importer"} <= set(scores)
    assert scores["victim"] == 10, attacked["batch"].stdout[-3000:]
    assert scores["lazy_importer"] == 10, attacked["batch"].stdout[-3000:]
    rows = _rows(attacked["course"])
    assert {name: (rows[name]["total"], rows[name]["integrity"]) for name in ODD_BUT_CORRECT} == \
        dict.fromkeys(ODD_BUT_CORRECT, ("10", "")), attacked["batch"].stdout[-3000:]
    assert attacked["single"].returncode == 0, attacked["single"].stderr[-3000:]
    assert "Total: 0/10" in attacked["single"].stdout
    # the test account has no home folder: matplotlib warned from every zygote that it used /tmp
    for run in (attacked["batch"], attacked["single"]):
        assert "Matplotlib created a temporary" not in run.stderr, run.stderr[-3000:]


def test_the_corpus_scores_as_it_does_as_root(attacked):
    rows = _rows(attacked["course"])
    graded = {name[len("corpus_"):]: row for name, row in rows.items() if name.startswith("corpus_")}
    if not graded:
        pytest.skip("root's own mode: tests/test_corpus_grade.py grades the corpus")
    wrong = {s.name: {check: (graded[s.name][check], points) for check, points in s.scores.items()
                      if float(graded[s.name][check]) != points}
             for s in CORPUS if any(float(graded[s.name][check]) != points for check, points in s.scores.items())}
    assert not wrong, wrong


def test_attackers_gain_nothing(attacked):
    scores = _scores(attacked["course"])
    assert {student: scores[student] for student in ATTACKERS} == dict.fromkeys(ATTACKERS, 0)


def test_nothing_secret_reaches_any_output(attacked):
    course = attacked["course"]
    shown = [attacked["single"].stdout]
    for folder in (course / "feedback", course / "reports"):
        shown += [p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file() and p.suffix in (".html", ".json", ".csv")]
    text = "\n".join(shown)
    leaked = {what: marker for what, marker in attacks.secret_markers("").items() if marker in text}
    assert not leaked, leaked
    assert VICTIM_MARKER not in "\n".join(shown[:1] + [p.read_text(errors="replace") for p in (course / "feedback").rglob("*")
                                                         if p.is_file() and "victim" not in p.parts])


def test_nothing_is_harmed(attacked):
    assert attacked["before"] == attacked["after"]
    where, token = attacked["mode"], attacked["token"].encode()
    written = []
    for root in (where.kit, attacked["course"], Path("/tmp"), Path("/var/tmp"), Path("/dev/shm"), Path("/run/lock")):
        found = subprocess.run(["find", str(root), "-xdev", "-newermt", f"@{attacked['started']}", "-type", "f",
                                "-not", "-path", "*/.git/*", "-size", "-1M"], capture_output=True, text=True).stdout.split()
        for path in found:
            try:
                if token in Path(path).read_bytes():
                    written.append(path)
            except OSError:
                pass
    assert not written, f"the vandal wrote {written}"
    assert not list(Path("/tmp").glob(f"{attacked['token']}*"))


def test_processes_outside_the_batch_survive(attacked):
    assert attacked["sentinel_alive"]


def test_the_run_says_its_level_the_strongest_the_mode_allows(attacked):
    run = json.loads((attacked["course"] / "reports" / "pytorch_slope" / "run.json").read_text())
    assert run["confinement"]["level"] == EXPECTED_LEVEL[attacked["mode"].name], run["confinement"]
    assert f"confinement: {EXPECTED_LEVEL[attacked['mode'].name]}" in attacked["batch"].stdout
    assert f"Confinement: {EXPECTED_LEVEL[attacked['mode'].name]}" in attacked["single"].stdout


# ---------------------------------------------- stopping a run, in every mode (issue 29, item 5)

LOOPING = "while True:\n    pass"


def _with_descendants(pid: int) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    return []


def _running(process: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    return False


def _stored(course: Path) -> int:
    with contextlib.suppress(sqlite3.Error), sqlite3.connect(f"file:{course / '.autograde-state.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT count(*) FROM submissions").fetchone()[0]
    return 0


@pytest.mark.parametrize("name", [m for m in MODES if m != "root"])  # root: tests/test_grader_faults.py, both signals
def test_sigterm_ends_a_run_within_seconds_and_leaves_nothing_running(name, account):
    """SIGTERM to a non-root `autograde` once left its workers and two looping sandboxes at about 90%
    CPU for minutes. In each mode: the run ends within seconds, says so in one line, keeps what it
    finished, and no process it started is left."""
    where = mode(name, account)
    folder = Path(tempfile.mkdtemp(prefix=f"kit-stop-{name}-", dir=where.home if where.user else None))
    folder.chmod(0o755)
    course = folder / "course"
    for student, notebook in {"a_quick": make_submission(), "looping0": make_submission(extra_cells=[LOOPING]),
                              "looping1": make_submission(extra_cells=[LOOPING])}.items():
        path = course / "submitted" / student / "pytorch_slope" / "pytorch_slope.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(notebook, path)
    where.own(folder)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))}
    run = subprocess.Popen(where.command(where.python, "-m", "autograder", "autograde", "pytorch_slope", "--course-dir",
                                         str(course), "--workers", "2", "--cell-timeout", "60"),
                           cwd=where.kit, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and run.poll() is None and _stored(course) < 1:  # a_quick first
            seen.update({p.pid: p for p in _with_descendants(run.pid)})
            time.sleep(0.2)
        time.sleep(3)  # the looping notebooks are running in their boxes
        seen.update({p.pid: p for p in _with_descendants(run.pid)})
        # the grader's own process, below runuser and the launcher: `python -P -s -m autograder autograde ...`
        graders = [p for p in seen.values() if _running(p) and p.cmdline()[1:3] == ["-P", "-s"] and "autograde" in p.cmdline()]
        assert run.poll() is None and _stored(course) == 1 and graders, "the run ended before it could be stopped"
        started = time.monotonic()
        graders[0].send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
        seconds = time.monotonic() - started
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert seconds < 15, seconds
    said = [line for line in err.splitlines() if line.startswith("autograde:")]
    assert len(said) == 1 and said[0].startswith("autograde: stopped by SIGTERM"), err
    assert "Traceback" not in err + out
    time.sleep(0.5)
    assert not [f"{p.pid} {p.name()}" for p in seen.values() if _running(p)]
    assert _stored(course) == 1  # nothing half-done was stored
    shutil.rmtree(folder, ignore_errors=True)
