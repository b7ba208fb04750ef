"""Defence in depth for clean rooms (issue 26, part 2): were code to run while a room makes its
definitions, despite the filter, it could not reach the room's channel unseen, and a room or
template that such code stopped, traced or signalled, or outlived, is detected from outside its
box: the submission gets an integrity flag and no points from that room.

* `room_integrity.tampering` reads a process of a sandbox uid as the grader does, for each thing
  code could do to a room: stop it, trace it, leave a thread, block, ignore, handle or leave
  pending a signal, leave another process.
* A room whose box holds another process once its definitions are made scores nothing, and the
  TA is told (`result.integrity`).
* A step cannot reach its template's channel (the template is not dumpable; a room closes the
  template's socket before any student code runs).
"""
from __future__ import annotations

import ctypes
import faulthandler
import os
import signal
import threading
import time
from types import SimpleNamespace

import pytest

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.pipeline import GradingContext, grade_submission
from autograder.release.synthetic import make_submission, write_submission
from autograder.sandbox.grader import room_integrity, rooms
from autograder.sandbox.grader.leases import lease_sandbox_uid, sandbox_uids
from autograder.sandbox.grader.room_integrity import box_processes, read_status, tampering

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="a sandbox uid of its own needs root")
PTRACE_SEIZE, CLONE_NEWPID = 0x4206, 0x20000000

# What a room's code could do to the room's own process, as a fresh interpreter (which sets what a
# room's Python sets) does it, then says it is ready.
DOINGS = {
    "nothing": ("", None),
    "stopped": ("", "stopped (SIGSTOP)"),
    "traced": ("", "being traced"),
    "thread": ("import threading\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()", "2 threads"),
    "blocked_signal": ("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})", "blocked signals (SIGUSR1)"),
    "pending_signal": ("signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})\nos.kill(os.getpid(), signal.SIGUSR2)",
                       "a signal was pending (SIGUSR2)"),
    "ignored_signal": ("signal.signal(signal.SIGTERM, signal.SIG_IGN)", "ignored signals (SIGTERM)"),
    "handled_signal": ("signal.signal(signal.SIGALRM, lambda *a: None)", "handled signals (SIGALRM)"),
    "other_process": ("if os.fork() == 0:\n    time.sleep(60)\n    os._exit(0)", "1 other process"),
}


@pytest.fixture
def sandbox_uid():
    uid, lease = lease_sandbox_uid(sandbox_uids())
    yield uid
    os.close(lease)


class _Process:
    """A process of the sandbox uid, forked from this one and set back to how a room's Python
    holds its signals (this test process may have handlers of its own: faulthandler's), which
    then does `doing` and waits. (The sandbox uid may not be able to run this Python anew: it
    can be installed in a folder only root reads, as on this project's machines.)"""

    def __init__(self, uid: int, doing: str):
        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover (the child)
            try:
                os.close(read)
                os.setsid()
                faulthandler.disable()
                for number in range(1, signal.NSIG):
                    try:
                        signal.signal(number, signal.SIG_DFL)
                    except (OSError, ValueError):
                        pass
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGPIPE, signal.SIG_IGN)
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, set())
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                exec(doing, {"os": os, "signal": signal, "time": time})
                os.write(write, b"ready")
                time.sleep(60)
            finally:
                os._exit(0)
        os.close(write)
        assert os.read(read, 5) == b"ready"
        os.close(read)

    def end(self) -> None:
        os.killpg(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


@root_only
@pytest.mark.parametrize("doing", sorted(DOINGS))
def test_what_code_did_to_a_room_is_seen_from_outside(doing, sandbox_uid):
    code, expected = DOINGS[doing]
    process = _Process(sandbox_uid, code)
    try:
        if doing == "stopped":
            os.kill(process.pid, signal.SIGSTOP)
            time.sleep(0.05)
        if doing == "traced":
            libc = ctypes.CDLL(None, use_errno=True)
            assert libc.ptrace(PTRACE_SEIZE, process.pid, None, None) == 0, os.strerror(ctypes.get_errno())
        found = tampering(SimpleNamespace(pidfd=None, pid_namespace=False, uid=sandbox_uid))
    finally:
        process.end()
    if expected is None:
        assert found is None
    else:
        assert found is not None and expected in found, found


def _stop(box) -> None:
    room = box_processes(box)[0]
    os.kill(room, signal.SIGSTOP)
    while read_status(room)["State"] != "T":  # the signal is delivered, not sent, when the room stops
        time.sleep(0.001)


def _leave_a_process(box) -> None:
    """A process in the box's PID namespace, of its uid, that outlived its definitions.

    Its parent, outside the box, stays to reap it: a box's init ends only once every process of
    its namespace is reaped, and an orphan's reaper would be this machine's init, whose pace is
    not the test's (it cost each room seconds)."""
    namespace = os.open(f"/proc/{box_processes(box)[0]}/ns/pid", os.O_RDONLY)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child, then the process left in the box)
        try:
            if ctypes.CDLL(None, use_errno=True).setns(namespace, CLONE_NEWPID) != 0:  # for its children
                raise OSError(ctypes.get_errno(), "setns")
            left = os.fork()
            if left == 0:
                os.setgid(box.uid)
                os.setuid(box.uid)
                os.write(write, b"x")
                time.sleep(60)
            else:
                os.waitpid(left, 0)
        finally:
            os._exit(0)
    os.close(namespace)
    os.close(write)
    os.read(read, 1)
    os.close(read)
    threading.Thread(target=os.waitpid, args=(pid, 0), daemon=True).start()
    assert len(box_processes(box)) == 2, "the attacker could not enter the box"


DONE_TO_A_ROOM = {"stopped": (_stop, "it was stopped (SIGSTOP)"),
                  "outlived": (_leave_a_process, "1 other process of its box outlived the definitions")}


@root_only
@pytest.mark.parametrize("done, template", [("stopped", True), ("outlived", True), ("outlived", False)],
                         ids=["stopped-template", "outlived-template", "outlived-room_per_check"])
def test_a_room_that_was_tampered_with_scores_nothing(done, template, zygote, grading_limits, tmp_path, monkeypatch):
    """Each room, just after it says it has made its definitions and before the grader looks at
    it, gets what code run at definition time could have done to it (the filter lets none run:
    this is that code)."""
    if not (zygote.pid_namespace and zygote.box_uid is not None):
        pytest.skip("this test's attacker enters the box's PID namespace as its sandbox uid")
    do, expected = DONE_TO_A_ROOM[done]
    real = room_integrity.tampering

    def tampering(box):
        do(box)
        return real(box)

    monkeypatch.setattr(room_integrity, "tampering", tampering)
    if not template:  # the shape a GPU gets: a box of its own per check
        monkeypatch.setattr(rooms.CleanRooms, "__init__", _without_template(rooms.CleanRooms.__init__))
    path = write_submission(tmp_path / "pytorch_slope.ipynb", make_submission())
    result = grade_submission(path, GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=grading_limits))
    assert {c.name: c.score for c in result.checks} == dict.fromkeys(CHECKS, 0), [c.feedback for c in result.checks]
    assert all(c.misconception == "sandbox_died" and "tampered with" in c.feedback for c in result.checks), \
        [c.feedback for c in result.checks]
    flags = [flag for flag in result.integrity if flag.startswith("clean room:")]
    assert flags and expected in flags[0], result.integrity


def _without_template(init):
    def __init__(self, *args, **kwargs):
        init(self, *args, **{**kwargs, "template": False})
    return __init__


# A forward that tries to take its template's socket (through /proc/<ppid>/fd, and with
# pidfd_getfd) and asks it for an extra room; it answers wrongly if it reached anything.
FORWARD_REACHES_FOR_THE_TEMPLATE = '''
def forward(x, w):
    import ctypes, os, socket
    reached = []
    parent = os.getppid()
    try:
        for name in os.listdir(f"/proc/{parent}/fd"):
            reached.append(os.open(f"/proc/{parent}/fd/{name}", os.O_RDWR))
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = libc.syscall(434, parent, 0)  # pidfd_open
    for number in range(64):
        stolen = libc.syscall(438, pidfd, number, 0) if pidfd >= 0 else -1  # pidfd_getfd
        if stolen >= 0:
            reached.append(stolen)
    for fd in reached:
        try:
            mine, theirs = socket.socketpair()
            socket.send_fds(socket.socket(fileno=os.dup(fd)), [b"F"], [theirs.fileno()])
        except OSError:
            pass
    return w * x * (3.0 if reached else 1.0)
'''


def test_a_step_cannot_reach_its_template(zygote, grading_limits, tmp_path):
    path = write_submission(tmp_path / "pytorch_slope.ipynb", make_submission({"forward": FORWARD_REACHES_FOR_THE_TEMPLATE}))
    result = grade_submission(path, GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=grading_limits))
    assert {c.name: c.score for c in result.checks} == dict(CHECKS), [c.feedback for c in result.checks if c.score < c.max_score]
