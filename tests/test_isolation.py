"""Containment of each submission (issue 7): one submission can never reach another's processes,
files or uid; every process a submission starts ends with its sandbox; every writable folder is
a size-capped private tmpfs and nothing is left on the host; submitted files are files.

The attackers leave a process behind that SIGKILLs or SIGSTOPs every process of its uid it can
see, in several shapes: the exact recipe of the report (fork, setsid, fork, a thread, then the
raw exit syscall for the main thread only, so /proc shows a zombie while the thread runs), a
double fork with setsid, a SIGSTOP loop, a thread-only survivor in the sandbox's own process
group, a process that moves to its own process group, and one that makes itself non-dumpable
(its /proc folder then looks like root's). A victim graded next, by the same zygote and so the
same uid, must keep running.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sandbox_uids import processes_left_on

from autograder.sandbox.grader import cgroups
from autograder.sandbox.grader.limits import Limits
from autograder.sandbox.shared.processes import is_alive, kill_processes_of, live_processes_of

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="sandbox uids and namespaces need root")

_SURVIVOR = '''
import ctypes, os, signal, threading, time
_SANDBOX = os.getpid()

def _attack(sig=signal.{signal}):
    """Wait quietly until this sandbox is gone, then signal every process of this uid that
    appears later (the next sandboxes), forever."""
    while True:
        try:
            os.kill(_SANDBOX, 0)
            time.sleep(0.02)
        except ProcessLookupError:
            break
    uid, spared = os.getuid(), set(os.listdir("/proc"))
    while True:
        for entry in os.listdir("/proc"):
            try:
                if entry.isdigit() and entry not in spared and os.stat("/proc/" + entry).st_uid == uid:
                    os.kill(int(entry), sig)
            except Exception:
                pass
        time.sleep(0.02)
'''

ATTACKS = {
    # the report's recipe: the main thread ends with the raw exit syscall, a thread lives on
    "zombie_leader_thread": ("SIGKILL", "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                             "        threading.Thread(target=_attack).start()\n        time.sleep(0.05)\n"
                             "        ctypes.CDLL(None).syscall(60, 0)\n    os._exit(0)\ntime.sleep(0.2)"),
    "double_fork_setsid": ("SIGKILL", "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        _attack()\n"
                           "    os._exit(0)\ntime.sleep(0.2)"),
    "sigstop_loop": ("SIGSTOP", "if os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        _attack()\n"
                     "    os._exit(0)\ntime.sleep(0.2)"),
    "thread_only_same_group": ("SIGKILL", "if os.fork() == 0:\n    threading.Thread(target=_attack).start()\n"
                               "    time.sleep(0.05)\n    ctypes.CDLL(None).syscall(60, 0)\ntime.sleep(0.2)"),
    "own_process_group": ("SIGKILL", "if os.fork() == 0:\n    os.setpgid(0, 0)\n    _attack()\ntime.sleep(0.2)"),
    "not_dumpable": ("SIGKILL", "if os.fork() == 0:\n    os.setsid()\n    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\n"
                     "    _attack()\ntime.sleep(0.2)"),
}


def attack_cells(name: str) -> list[str]:
    sig, body = ATTACKS[name]
    return [_SURVIVOR.format(signal=sig) + body, "print('attacker done')"]


VICTIM_CELLS = ["import time\ntime.sleep(1.0)", "print('victim alive')"]


def _zygote(monkeypatch_env: dict):
    from autograder.sandbox.grader.zygotes import Zygote

    saved = {k: os.environ.get(k) for k in monkeypatch_env}
    os.environ.update(monkeypatch_env)
    try:
        return Zygote()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module", params=["pid_namespace", "fallback"])
def box_zygote(request):
    """A zygote of its own (its own leased uid); "fallback" is what platforms without PID
    namespaces get: the uid sweep alone must then hold."""
    if not ROOT:
        pytest.skip("sandbox uids need root")
    zygote = _zygote({"AUTOGRADER_MAX_CONFINEMENT": "landlock+uid"} if request.param == "fallback" else {})
    if request.param == "pid_namespace" and not zygote.pid_namespace:
        zygote.close()
        pytest.skip("PID namespaces are not available here")
    yield zygote
    zygote.close()


LIMITS = Limits(cell_timeout_s=5.0, probe_timeout_s=3.0)


@needs_root
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_survivor_of_one_sandbox_cannot_touch_the_next(box_zygote, attack):
    uid = box_zygote.uid
    with box_zygote.spawn(device="cpu", limits=LIMITS) as attacker:
        report = attacker.execute(attack_cells(attack))
        assert report.died is None and "attacker done" in report.cells[-1].get("output", ""), report
    assert live_processes_of(uid) == [], f"processes of sandbox uid {uid} outlived their sandbox"
    with box_zygote.spawn(device="cpu", limits=LIMITS) as victim:
        assert box_zygote.uid == uid  # the same uid, handed on only once it was clean
        report = victim.execute(VICTIM_CELLS)
    assert report.died is None, report.died
    assert [c["status"] for c in report.cells] == ["ok", "ok"] and "victim alive" in report.cells[1]["output"]
    assert live_processes_of(uid) == []


@needs_root
def test_the_box_sees_only_its_own_processes(box_zygote):
    with box_zygote.spawn(device="cpu", limits=LIMITS) as sandbox:
        report = sandbox.execute(["import os\nprint(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))"])
    pids = eval(report.cells[0]["output"])  # a list of ints printed by the cell
    if box_zygote.pid_namespace:
        assert max(pids) < 20 and 1 in pids, pids  # the box's init, its kernel, the kernel's children
    else:
        assert len(pids) > 3


# ------------------------------------------------------------------------- the uid sweep itself


def _run_as(uid: int, code: str) -> int:
    """Fork a child that becomes `uid` and runs `code`; returns its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgid(uid)
            os.setuid(uid)
            exec(code, {})
        finally:
            os._exit(0)
    return pid


@needs_root
@pytest.mark.parametrize("shape", ["zombie_leader_with_thread", "not_dumpable"])
def test_sweep_finds_and_kills_what_a_zombie_state_or_root_owned_proc_entry_hides(shape):
    uid = 61990  # outside the range leased to graders
    code = {
        "zombie_leader_with_thread": "import ctypes, threading, time\n"
                                     "threading.Thread(target=time.sleep, args=(60,)).start()\n"
                                     "ctypes.CDLL(None).syscall(60, 0)",
        "not_dumpable": "import ctypes, time\nctypes.CDLL(None).prctl(4, 0, 0, 0, 0)\ntime.sleep(60)",
    }[shape]
    pid = _run_as(uid, code)
    try:
        time.sleep(0.3)
        assert is_alive(pid)
        assert pid in live_processes_of(uid)
        assert kill_processes_of(uid, patience_s=5)
        assert not is_alive(pid)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)


@needs_root
def test_a_uid_whose_processes_survive_is_retired_not_reused(monkeypatch):
    from autograder.sandbox.grader import zygotes as spawn

    # Without PID namespaces the uid is swept before every spawn (with them, whenever an earlier
    # box was not seen to end); the sweep is made to fail for the first uid.
    zygote = _zygote({"AUTOGRADER_MAX_CONFINEMENT": "landlock+uid"})
    try:
        first = zygote.uid
        real_kill = spawn.kill_processes_of
        monkeypatch.setattr(spawn, "kill_processes_of", lambda uid, **kw: uid != first and real_kill(uid, **kw))
        with pytest.warns(RuntimeWarning, match="was retired"), zygote.spawn(device="cpu", limits=LIMITS) as sandbox:
            assert sandbox.uid != first and zygote.uid != first
            assert any(str(first) in note for note in sandbox.isolation.get("notes", []))
        assert first in zygote.leased_uids and zygote.uid in zygote.leased_uids
    finally:
        monkeypatch.undo()
        zygote.close()


# ------------------------------------------------------------------------------ disk and residue


@needs_root
def test_writable_folders_are_capped_and_nothing_is_left_on_the_host(box_zygote):
    if not box_zygote.pid_namespace:
        pytest.skip("the fallback has no private tmpfs")
    fill = ("import os\nwritten = {}\nfor folder in ('/submission', '/tmp', '/dev/shm'):\n"
            "    written[folder] = 0\n    for i in range(16):\n        try:\n"
            "            with open(f'{folder}/big{i}', 'wb') as f:\n"
            "                for _ in range(60):\n                    written[folder] += f.write(b'x' * 2**20)\n"
            "        except OSError:\n            pass\nprint(written)")
    with box_zygote.spawn(device="cpu", limits=LIMITS) as sandbox:
        report = sandbox.execute([fill])
    written = eval(report.cells[0]["output"])
    assert written["/submission"] <= LIMITS.submission_bytes and written["/tmp"] <= LIMITS.scratch_bytes
    assert written["/dev/shm"] <= LIMITS.scratch_bytes
    assert box_zygote._box_folders is None  # a box with a private root has no folder on the host at all


# ------------------------------------------------------------------------------------ cgroup v2


@needs_root
def test_a_cgroup_v2_box_is_killed_whole_and_removed(box_zygote):
    """Where boxes get a cgroup (by default: where it caps memory and tasks, or where there is no
    PID namespace), cgroup.kill ends every process of the box and the cgroup is removed."""
    if cgroups.v2_root() is None:
        pytest.skip("no writable cgroup v2 hierarchy here")
    saved, box_zygote.use_cgroup = box_zygote.use_cgroup, True
    try:
        with box_zygote.spawn(device="cpu", limits=LIMITS) as sandbox:
            assert sandbox.cgroup is not None
            path = sandbox.cgroup.path
            sandbox.execute(["import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\nprint('ok')"])
            assert sandbox.cgroup.populated()
    finally:
        box_zygote.use_cgroup = saved
    assert not os.path.exists(path)
    assert live_processes_of(box_zygote.uid) == []


def test_a_box_cgroup_asks_for_every_cap_its_controllers_offer(tmp_path, monkeypatch):
    """On a fake v2 tree (none of this project's machines offers the controllers): memory, pids
    and cpu are enabled for the boxes and each cap is written."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    written = {}
    real_write = cgroups.write_kernel_file

    def write(path, text):
        written[os.path.relpath(path, tmp_path)] = text
        if path.endswith("subtree_control"):
            return real_write(path, " ".join(c.lstrip("+") for c in text.split()))  # as the kernel shows it
        return real_write(path, text)

    monkeypatch.setattr(cgroups, "v2_root", lambda: str(tmp_path))
    monkeypatch.setattr(cgroups, "write_kernel_file", write)
    box = cgroups.BoxCgroup.create("box-1", memory_bytes=2**30, processes=64)
    assert written[os.path.join(cgroups.PARENT_NAME, "cgroup.subtree_control")] == "+memory +pids +cpu"
    assert written[os.path.join(cgroups.PARENT_NAME, "box-1", "cpu.max")] == "200000 100000"
    assert written[os.path.join(cgroups.PARENT_NAME, "box-1", "pids.max")] == "64"
    assert len(box.limits) == 3


@needs_root
def test_cgroup_v2_limits_where_the_controllers_are_available():
    root = cgroups.v2_root()
    controllers = Path(root, "cgroup.controllers").read_text().split() if root else []
    if not {"memory", "pids"} <= set(controllers):
        pytest.skip(f"cgroup v2 memory and pids controllers not available here ({controllers})")
    box = cgroups.BoxCgroup.create(f"test-{os.getpid()}", memory_bytes=256 * 2**20, processes=10)
    try:
        assert box is not None and len(box.limits) == 2 + ("cpu" in controllers)
        assert Path(box.path, "pids.max").read_text().strip() == "10"
        if "cpu" in controllers:
            assert Path(box.path, "cpu.max").read_text().split() == [str(cgroups.BOX_CPUS * cgroups.CPU_PERIOD_US),
                                                                  str(cgroups.CPU_PERIOD_US)]
        assert Path(box.path, "memory.max").read_text().strip() == str(256 * 2**20)
    finally:
        box.kill()
        box.remove()


# ----------------------------------------------------------------------- files beside the notebook


@needs_root
def test_submitted_files_are_in_the_working_folder_and_links_are_not_followed(box_zygote, tmp_path):
    from autograder.sandbox.grader.submitted_files import collect

    folder = tmp_path / "sub"
    (folder / "data").mkdir(parents=True)
    (folder / "steps.py").write_text("def forward(x, w):\n    return w * x\n")
    (folder / "data" / "points.csv").write_text("1,2\n")
    (folder / "ref.py").symlink_to(Path(__file__).resolve())
    os.mkfifo(folder / "pipe")
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    found = collect(folder, max_bytes=LIMITS.submitted_files_bytes, max_count=LIMITS.submitted_files_count)
    assert set(found.files) == {"steps.py", os.path.join("data", "points.csv"), os.fsdecode(b"caf\xe9.txt")}
    assert "ref.py" in found.notes[0] and "pipe" in found.notes[0]
    with box_zygote.spawn(device="cpu", limits=LIMITS, files=found.files) as sandbox:
        report = sandbox.execute(["from steps import forward\nprint(forward(3, 2), open('data/points.csv').read().strip())",
                                  "import os\nprint(sorted(os.listdir('.')))"])
    assert report.cells[0]["status"] == "ok" and report.cells[0]["output"].startswith("6 1,2"), report.cells[0]
    assert "ref.py" not in report.cells[1]["output"] and "pipe" not in report.cells[1]["output"]


def test_submitted_files_are_capped(tmp_path):
    from autograder.sandbox.grader.submitted_files import collect

    for i in range(5):
        (tmp_path / f"f{i}.bin").write_bytes(b"x" * 1000)
    found = collect(tmp_path, max_bytes=2500, max_count=200)
    assert len(found.files) == 2 and "over" in found.notes[0]
    found = collect(tmp_path, max_bytes=10**6, max_count=3)
    assert len(found.files) == 3


def test_the_kits_own_folders_are_never_copied():
    from autograder.assignment import KIT_ROOT
    from autograder.sandbox.grader.submitted_files import collect

    found = collect(KIT_ROOT / "solutions", max_bytes=10**8, max_count=1000)
    assert found.files == {} and "part of the grading kit" in found.notes[0]


def test_spawn_forwards_extra_request_fields(monkeypatch):
    """Fields another mode of the kernel needs travel in the spawn request unchanged."""
    from autograder.sandbox.grader import zygotes as spawn
    from autograder.sandbox.grader.confinement import Confinement, Level

    sent = []
    zygote = spawn.Zygote.__new__(spawn.Zygote)
    zygote.uid, zygote.pid_namespace, zygote._spawned, zygote.uid_notes = None, True, 0, []
    zygote._boxes, zygote.use_cgroup, zygote._ready = [], False, {"event": "ready"}
    zygote.confinement, zygote.allow_unconfined, zygote.protected = Confinement(Level.NAMESPACES, 7), False, []
    zygote.control = socket.socketpair()[0]
    monkeypatch.setattr(spawn.protocol, "send_message", lambda sock, message: sent.append(message))
    monkeypatch.setattr(spawn.socket, "recv_fds", lambda *a: (b"{}", [], 0, None))
    with pytest.raises(RuntimeError):
        zygote.spawn(device="cpu", limits=LIMITS, room={"name": "r1"}, mode="room")
    assert sent[0]["room"] == {"name": "r1"} and sent[0]["mode"] == "room" and sent[0]["op"] == "spawn"
    zygote.control.close()


# ------------------------------------------------------- slow: one batch, one worker, attackers first

A, NB = "pytorch_slope", "pytorch_slope.ipynb"
FULL = {"forward": 1, "loss": 2, "gradient": 2, "update": 2, "zero_grad": 1, "final_loss": 2}


@pytest.fixture(scope="module")
def attacked_course(tmp_path_factory):
    """Attackers first, then the rest, all graded by ONE worker (so one zygote, one uid)."""
    from autograder.assignment import KIT_ROOT
    from autograder.release.synthetic import make_submission, write_submission

    course = tmp_path_factory.mktemp("attacked")
    sub = course / "submitted"
    for name in sorted(ATTACKS):
        write_submission(sub / f"a_{name}" / A / NB, make_submission(extra_cells=attack_cells(name)[:1]))
    for i in range(3):
        write_submission(sub / f"z_victim{i}" / A / NB, make_submission())
    (sub / "b_symlinked" / A).mkdir(parents=True)
    (sub / "b_symlinked" / A / NB).symlink_to(KIT_ROOT / "solutions" / "pytorch_slope_solution.ipynb")
    write_submission(sub / "b_fifo_beside" / A / NB, make_submission())
    os.mkfifo(sub / "b_fifo_beside" / A / "pipe")
    write_submission(sub / "c_latin1_name" / A / NB, make_submission())
    (sub / "c_latin1_name" / A / os.fsdecode(b"notes-caf\xe9.txt")).write_bytes(b"x")
    write_submission(sub / "c_helper_module" / A / NB, make_submission({"forward": "from steps import forward\n"}))
    (sub / "c_helper_module" / A / "steps.py").write_text("def forward(x, w):\n    return w * x\n")
    # The run's own temporary folder: whatever the batch leaves is there, whatever else runs on the machine.
    private_tmp = tmp_path_factory.mktemp("batch-tmp")
    run = subprocess.run([sys.executable, "-m", "autograder", "autograde", A, "--course-dir", str(course),
                          "--workers", "1", "--cell-timeout", "5"], env={**os.environ, "TMPDIR": str(private_tmp)},
                         capture_output=True, text=True, timeout=900, cwd=KIT_ROOT)
    residue = {p.name for p in private_tmp.iterdir()}
    return {"dir": course, "run": run, "residue": residue}


def _records(course: Path) -> dict[str, dict]:
    import json
    import sqlite3

    with sqlite3.connect(course / ".autograde-state.sqlite") as db:
        return {student: json.loads(record) for student, record in db.execute("SELECT student, record FROM submissions")}


def _scores(record: dict) -> dict:
    return {c["name"]: c["score"] for c in (record.get("result") or {}).get("checks", [])}


@needs_root
@pytest.mark.slow
def test_victims_graded_after_attackers_in_one_worker_keep_full_marks(attacked_course):
    run = attacked_course["run"]
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    records = _records(attacked_course["dir"])
    for student in ("z_victim0", "z_victim1", "z_victim2", "c_latin1_name", "c_helper_module"):
        assert _scores(records[student]) == FULL, (student, records[student].get("reason"))


@needs_root
@pytest.mark.slow
def test_no_process_of_the_uids_the_batch_leased_outlives_it(attacked_course):
    uids = {(r.get("result") or {}).get("isolation", {}).get("uid") for r in _records(attacked_course["dir"]).values()}
    uids.discard(None)
    assert uids, "the batch reported no sandbox uid"
    assert processes_left_on(uids) == {}


@needs_root
@pytest.mark.slow
def test_links_and_special_files_are_refused_and_the_batch_goes_on(attacked_course):
    records = _records(attacked_course["dir"])
    for student in ("b_symlinked", "b_fifo_beside"):
        assert records[student]["status"] == "not graded", records[student]
        assert "links or special files" in records[student]["reason"]
        assert _scores(records[student]) in ({}, dict.fromkeys(FULL, 0))


@needs_root
@pytest.mark.slow
def test_a_batch_leaves_nothing_on_the_host(attacked_course):
    assert attacked_course["residue"] == set()


@needs_root
def test_without_a_uid_of_its_own_the_kernels_session_still_ends_with_it(box_zygote):
    """What a grader without root gets (no sandbox uid to sweep, no namespace): the children the
    notebook left in the kernel's session end with the sandbox."""
    if box_zygote.pid_namespace:
        pytest.skip("in a PID namespace the init's death ends everything")
    uid, box_zygote.uid = box_zygote.uid, None  # the sweep by uid is off, as without root
    use_cgroup, box_zygote.use_cgroup = box_zygote.use_cgroup, False  # and no cgroup either
    try:
        with box_zygote.spawn(device="cpu", limits=LIMITS) as sandbox:
            report = sandbox.execute(["import os, time\nchild = os.fork()\nif child == 0:\n    time.sleep(60)\n"
                                      "    os._exit(0)\nprint(child)"])
        child = int(report.cells[0]["output"])
        deadline = time.monotonic() + 5
        while is_alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(child)
    finally:
        box_zygote.uid, box_zygote.use_cgroup = uid, use_cgroup
