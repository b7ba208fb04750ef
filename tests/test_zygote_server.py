"""The zygote server: a batch's workers get zygotes forked by one warm interpreter instead of
starting one each. Each such zygote must be what a freshly started one is (nothing of the
grader's environment, its own uid, its own boxes), end with the worker that holds it, and be
replaced by a zygote of the worker's own if it dies."""
from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path

import pytest

from autograder.assignment import PYTORCH_SLOPE
from autograder.autograde.workers import WorkerPool, worker_zygote
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.grader.zygotes import Zygote, ZygoteServer

pytestmark = pytest.mark.slow


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _ended(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_forked_zygotes_grade_like_fresh_ones_and_hold_nothing_of_the_graders_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_SECRET_TOKEN", "do-not-leak")
    notebook = write_submission(tmp_path / "pytorch_slope.ipynb", make_submission())
    with ZygoteServer() as server:
        first, second = Zygote(control=server.new_zygote()), Zygote(control=server.new_zygote())
        try:
            results = [grade_submission(notebook, GradingContext(zygote=z, assignment=PYTORCH_SLOPE)) for z in (first, second)]
            pids = [z._ready["pid"] for z in (first, second)]
            assert all(_parent_of(pid) == server.process.pid for pid in pids)  # forked, not started
            for pid in pids:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                assert b"GRADER_SECRET_TOKEN" not in environ and b"do-not-leak" not in environ
            if os.geteuid() == 0:
                assert first.uid != second.uid
        finally:
            first.close()
            second.close()
    assert [r.score for r in results] == [PYTORCH_SLOPE.max_score] * 2
    assert all(_ended(pid) for pid in pids)


def _socket_inodes(pid: int) -> set[str]:
    links = (os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir())
    return {link for link in links if link.startswith("socket:")}


def test_a_forked_zygote_holds_no_socket_of_the_server():
    with ZygoteServer() as server:
        zygote = Zygote(control=server.new_zygote())
        try:
            pid = zygote._ready["pid"]
            assert not _socket_inodes(pid) & _socket_inodes(server.process.pid)
        finally:
            zygote.close()


def test_a_zygote_the_server_never_forked_is_replaced_by_the_workers_own():
    server = ZygoteServer()
    control = server.new_zygote()
    server.close()  # killed while importing torch: the fork request is never served
    state = {"zygote_control": control}
    first = worker_zygote(state)
    try:
        with pytest.raises(RuntimeError, match="did not start"):
            first.pid_namespace  # noqa: B018  waits for its "ready", which never comes
        assert not first.alive()
        second = worker_zygote(state)
        assert second is not first and second.process is not None and second.alive()
    finally:
        state["zygote"].close()


def test_a_forked_zygote_outlives_the_server_and_ends_when_its_socket_closes():
    server = ZygoteServer()
    zygote = Zygote(control=server.new_zygote())
    try:
        assert zygote.pid_namespace in (True, False)  # waits for its "ready"
        server.close()  # killed at once; what it forked goes on
        assert zygote.alive()
        pid = zygote._ready["pid"]
    finally:
        zygote.close()
    assert _ended(pid)


def test_a_request_sent_before_the_server_is_warm_waits_for_it():
    with ZygoteServer() as server:
        controls = [server.new_zygote() for _ in range(3)]  # at once, while it imports torch
        zygotes = [Zygote(control=c) for c in controls]
        try:
            assert len({z._ready["pid"] for z in zygotes}) == 3
        finally:
            for zygote in zygotes:
                zygote.close()


def _zygote_task(item: dict, state: dict) -> dict:
    """Reports the worker's zygote; kills it on request, to show it is replaced."""
    zygote = worker_zygote(state)
    pid = zygote._ready["pid"]
    reply = {"zygote": pid, "zygote_parent": _parent_of(pid), "worker": os.getpid()}
    if item["student"] == "kill-zygote":
        os.kill(pid, signal.SIGKILL)
        select.select([zygote._pidfd], [], [], 10)
    return reply


def test_workers_get_the_servers_zygotes_which_end_with_their_worker():
    with ZygoteServer() as server, WorkerPool(2, PYTORCH_SLOPE, task=_zygote_task, zygote_server=server) as pool:
        outcomes = list(pool.run([{"student": s} for s in ("a", "b", "c", "d")]))
        assert all(o.ok for o in outcomes)
        zygotes = {o.result["zygote"] for o in outcomes}
        assert all(o.result["zygote_parent"] == server.process.pid for o in outcomes)
        assert len(zygotes) == len({o.result["worker"] for o in outcomes})  # one zygote per worker
        # a zygote that dies is replaced by one the worker starts itself
        killed = next(pool.run([{"student": "kill-zygote"}]))
        after = next(pool.run([{"student": "after"}]))
        assert killed.ok and after.ok and after.result["worker"] == killed.result["worker"]
        assert after.result["zygote"] != killed.result["zygote"]
        assert after.result["zygote_parent"] == after.result["worker"]
        # a worker that dies takes its zygote with it (it sees its control socket close)
        other = next(w for w in pool._workers if w.process.pid != after.result["worker"])
        its_zygote = next(o.result["zygote"] for o in outcomes if o.result["worker"] == other.process.pid)
        other.process.kill()
        assert _ended(its_zygote)


def test_an_account_without_a_writable_home_gets_a_matplotlib_folder_in_the_venv(tmp_path):
    """matplotlib keeps its font cache in the home folder; a grading account without one (made
    with `useradd --no-create-home`) made every zygote warn and rebuild the cache in /tmp."""
    from autograder.sandbox.grader.zygotes import matplotlib_folder_env

    home, venv = tmp_path / "home", tmp_path / "venv"
    home.mkdir()
    venv.mkdir()
    assert matplotlib_folder_env(str(home), str(venv)) == {}  # a home that serves is left to matplotlib
    assert matplotlib_folder_env(str(home / "not-yet"), str(venv)) == {}  # made by matplotlib when needed
    in_the_venv = {"MPLCONFIGDIR": str(venv / "var" / "matplotlib")}
    assert matplotlib_folder_env("", str(venv)) == in_the_venv  # no entry in the passwd database
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert matplotlib_folder_env(str(a_file / "home"), str(venv)) == in_the_venv  # a home that cannot be made
    assert matplotlib_folder_env("", str(a_file)) == {}  # nor the venv's folder: matplotlib's own fallback


def test_a_zygote_let_go_while_it_warms_up_ends_without_a_traceback():
    """Closing a zygote before its "ready" (a grader stopped at start-up, a replaced zygote) made
    it print a BrokenPipeError traceback on the grader's terminal once warm."""
    import subprocess
    import sys

    script = "from autograder.sandbox.grader.zygotes import Zygote\nZygote().close()\n"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "Error" not in run.stderr, run.stderr
