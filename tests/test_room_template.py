"""Clean rooms forked from a template box (autograder/sandbox/box/room_template.py): what one check's
steps leave behind (a daemon, files, System V IPC objects, a dead template) never changes the
next check's outcome, and the template's snapshot puts the submission's folder back."""
from __future__ import annotations

import os
import stat

import pytest

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.box.room_template import Snapshot

FULL = dict(CHECKS)


def fn(header: str, *body: str) -> str:
    return header + "\n" + "".join(f"    {line}\n" for line in body)


# forward leaves, once per process, a file in /tmp and in the submission's folder, a System V
# message queue, and a daemon that keeps rewriting a file in /tmp (and, in one variant, SIGKILLs
# every process started after it: the next check's room). criterion answers wrong when it sees a
# trace made by another process than its own: only what another check's code left can do that.
def forward_leaving_traces(daemon_kills: bool) -> str:
    return fn(
        "def forward(x, w):",
        "import ctypes, os, time",
        "me = str(os.getpid())",
        "if not os.path.exists('/tmp/left_by_' + me):",
        "    for path in ('/tmp/left_by_' + me, 'left_by_' + me):",
        "        open(path, 'w').write(me)",
        "    ctypes.CDLL(None).msgget(os.getpid(), 0o1600)",  # IPC_CREAT | 0600, keyed by this process
        "    if os.fork() == 0:",
        "        os.setsid()",
        "        mine = os.getpid()",
        "        while True:",
        f"            for entry in os.listdir('/proc') if {daemon_kills} else []:",
        "                if entry.isdigit() and int(entry) > mine:",
        "                    try:",
        "                        os.kill(int(entry), 9)",
        "                    except OSError:",
        "                        pass",
        "            open('/tmp/left_by_daemon_of_' + me, 'w').write(me)",
        "            time.sleep(0.002)",
        "return w * x",
    )


CRITERION_SEES_TRACES = fn(
    "def criterion(yhat, y):",
    "import glob, os",
    "me = str(os.getpid())",
    "names = [os.path.basename(p) for p in glob.glob('/tmp/left_by_*') + glob.glob('left_by_*')]",
    "keys = [line.split()[0] for line in open('/proc/sysvipc/msg').read().splitlines()[1:]]",
    "others = [n for n in names if n not in ('left_by_' + me, 'left_by_daemon_of_' + me)] + [k for k in keys if k != me]",
    "return ((yhat - y) ** 2).mean() * (3.0 if others else 1.0)",
)


@pytest.fixture(scope="module")
def grade(zygote, grading_limits, tmp_path_factory):
    folder = tmp_path_factory.mktemp("room_template")

    def run(name: str, notebook):
        path = write_submission(folder / name / "pytorch_slope.ipynb", notebook)
        return grade_submission(path, GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=grading_limits))

    return run


def scores(result) -> dict:
    return {c.name: c.score for c in result.checks}


@pytest.mark.parametrize("daemon_kills", [False, True])
def test_what_a_check_leaves_behind_never_reaches_the_next(grade, daemon_kills):
    steps = {"forward": forward_leaving_traces(daemon_kills), "criterion": CRITERION_SEES_TRACES}
    result = grade(f"leaves_traces_{daemon_kills}", make_submission(steps))
    assert scores(result) == FULL, "\n".join(f"{c.name}: {c.feedback}" for c in result.checks if c.score < c.max_score)


def test_a_step_that_kills_the_template_costs_no_check(grade):
    forward = fn("def forward(x, w):", "import os", "try:", "    os.kill(os.getppid(), 9)", "except OSError:",
                 "    pass", "return w * x")
    result = grade("kills_template", make_submission({"forward": forward}))
    assert scores(result) == FULL, "\n".join(f"{c.name}: {c.feedback}" for c in result.checks if c.score < c.max_score)


def test_one_template_box_serves_every_check(zygote, grading_limits, tmp_path):
    from autograder.checks.runner import run_checks
    from autograder.notebook.load import load_submission
    from autograder.sandbox.grader.rooms import CleanRooms

    if not zygote.pid_namespace:
        pytest.skip("templates need boxes with a PID namespace of their own")
    loaded = load_submission(write_submission(tmp_path / "pytorch_slope.ipynb", make_submission()), PYTORCH_SLOPE.release_notebook)
    with CleanRooms(zygote, loaded.cells, device="cpu", limits=grading_limits) as rooms:
        results = run_checks(rooms, grading_seed="00" * 16)
    assert rooms.rooms_opened == len(CHECKS) and rooms.boxes_started == 1
    assert all(r.status.name != "ERROR" for r in results), [r.staff_detail for r in results]


@pytest.mark.parametrize("daemon_kills", [False, True])
def test_rooms_of_their_own_keep_checks_apart_too(zygote, grading_limits, tmp_path, daemon_kills):
    """The shape a GPU gets (a box from the zygote per check, no template), run on the CPU: what
    one check's steps leave behind dies with its box."""
    from autograder.checks.runner import run_checks
    from autograder.notebook.load import load_submission
    from autograder.sandbox.grader.rooms import CleanRooms

    steps = {"forward": forward_leaving_traces(daemon_kills), "criterion": CRITERION_SEES_TRACES}
    loaded = load_submission(write_submission(tmp_path / "pytorch_slope.ipynb", make_submission(steps)), PYTORCH_SLOPE.release_notebook)
    with CleanRooms(zygote, loaded.cells, device="cpu", limits=grading_limits, template=False) as rooms:
        results = run_checks(rooms, grading_seed="00" * 16)
    assert rooms.boxes_started == rooms.rooms_opened == len(CHECKS)
    assert {r.name: r.score for r in results} == FULL, [r.staff_detail for r in results if r.score < r.max_score]


def test_cuda_rooms_get_a_box_each():
    from autograder.sandbox.grader.rooms import CleanRooms

    class Zygote:
        pid_namespace, uid = True, 61000

    assert not CleanRooms(Zygote(), [], device="cuda", limits=None).use_template
    assert CleanRooms(Zygote(), [], device="cpu", limits=None).use_template


def test_the_snapshot_puts_the_folder_back(tmp_path):
    (tmp_path / "steps.py").write_text("A = 1\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.csv").write_bytes(b"1,2\n")
    snapshot = Snapshot(str(tmp_path))
    (tmp_path / "steps.py").write_text("A = 2\n")
    (tmp_path / "new.py").write_text("import os\n")
    (tmp_path / "data" / "x.csv").unlink()
    os.chmod(tmp_path / "data", 0)
    snapshot.restore()
    assert (tmp_path / "steps.py").read_text() == "A = 1\n"
    assert (tmp_path / "data" / "x.csv").read_bytes() == b"1,2\n"
    assert not (tmp_path / "new.py").exists()
    assert stat.S_IMODE(os.stat(tmp_path / "data").st_mode) & 0o700 == 0o700
    untouched = snapshot.stamps
    snapshot.restore()  # nothing changed: nothing rewritten
    assert snapshot.stamps == untouched
