"""N worker processes, each with its own sandbox zygote (and so its own sandbox uid), grading
submissions handed out by the parent one at a time.

Workers are started with multiprocessing's "forkserver" method: a fresh interpreter (never a
fork of the parent, so the parent's state, CUDA included, cannot leak into them) imports the
grader once and forks each worker from there, so replacing a dead worker is cheap. Given a
`ZygoteServer`, each worker (a replacement too) gets a zygote forked by it, warm at once,
instead of starting its own interpreter: the batch imports torch twice (forkserver and server),
not once per worker plus once. A work item
goes out and a result comes back as plain dicts.

A fault of the grader is never the submission's: a worker that dies, is stopped, or holds one
submission past `hard_timeout_s` (by default the sandbox's worst case from the limits, plus a
zygote's start-up), or whose answer says the grader failed (`attempts.grader_fault`: its zygote
did not start, a check errored, its pytest session died), is replaced by a fresh worker, with a
fresh zygote and pytest session, and the submission is graded again by it, up to
`attempts.MAX_ATTEMPTS` times in all. Only then does it come back as a failure, with every
reason; the batch goes on.

Stopping (`terminate`, what Ctrl-C and SIGTERM do): each worker is sent SIGTERM, on which it
ends the boxes it holds and its zygote and exits; one that has not gone a few seconds later is
killed. That takes nothing of root, PID namespaces or cgroups: each process ends what it started.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait

from autograder.assignment import Assignment
from autograder.autograde.attempts import MAX_ATTEMPTS, grader_fault, suspect
from autograder.sandbox.grader.limits import Limits, hard_timeout_for
from autograder.sandbox.grader.zygotes import Zygote, ZygoteServer
from autograder.sandbox.shared.processes import is_stopped

STOPPED_GRACE_S = 2.0  # a grader process seen stopped (SIGSTOP) this long is taken for hung
STOP_WAIT_S = 3.0  # how long `terminate` lets workers end their boxes before it kills them


def describe_exit_code(code: int | None) -> str:
    """multiprocessing's exitcode in words: negative is the signal that killed the process."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} ({signal.strsignal(-code) or 'unknown signal'})"
    if code is None:  # gone, but its status never reached this process (a stopped forkserver holds it)
        return "ended"
    return f"exited with status {code}"


def worker_zygote(state: dict):
    """This worker's live zygote: the one the pool's zygote server forked for it at first, then,
    should that one die, a zygote of the worker's own. `state` holds it across items."""
    zygote = state.get("zygote")
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.close()
        zygote = state["zygote"] = Zygote(control=state.pop("zygote_control", None), server_pid=state.pop("server_pid", None),
                                          **state.get("zygote_options", {}))
    return zygote


def grade_item(item: dict, state: dict) -> dict:
    """The default task: grade item["notebook"] in this worker's warm zygote.

    `state` persists across the items of one worker (it holds the zygote)."""
    from pathlib import Path

    from autograder.notebook.releases import known_releases
    from autograder.pipeline import GradingContext, grade_submission, open_check_session

    if "releases" not in state:  # the terms' releases and secrets, read once per worker
        state["releases"] = known_releases(state["assignment"])
    context = GradingContext(zygote=worker_zygote(state), device=state["device"], assignment=state["assignment"],
                             limits=state.get("limits") or Limits(), releases=state["releases"])
    session = state.get("check_session")
    if session is None or not session.alive():  # one pytest session for the worker's submissions
        session = state["check_session"] = open_check_session(context)
    context.check_session = session
    return grade_submission(Path(item["notebook"]), context).to_dict()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _end_on_sigterm(state: dict) -> None:
    """On SIGTERM (the parent's `terminate`), end every box this worker holds and its zygote, then
    exit at once: whatever the worker was doing is abandoned, its submission was not stored."""
    def end(signum, frame):
        from autograder.sandbox.grader.box_client import end_all_boxes

        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            end_all_boxes()
            zygote = state.get("zygote")
            if zygote is not None:
                zygote.close()
        finally:
            os._exit(128 + signum)

    signal.signal(signal.SIGTERM, end)


def _worker_main(conn, task: Callable[[dict, dict], dict], assignment: Assignment, device: str,
                 limits: Limits | None, zygote_control=None, zygote_options: dict | None = None,
                 server_pid: int | None = None) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    state: dict = {"assignment": assignment, "device": device, "limits": limits, "zygote_control": zygote_control,
                   "zygote_options": zygote_options or {}, "server_pid": server_pid}
    _end_on_sigterm(state)
    try:
        while True:
            try:
                item = conn.recv()
            except (EOFError, OSError):
                break
            if item is None:
                break
            try:
                reply = {"ok": True, "result": task(item, state)}
            except Exception as error:
                reply = {"ok": False, "reason": f"the grader failed on this submission: {type(error).__name__}: {error}",
                         "traceback": traceback.format_exc()[-4000:]}
            conn.send(reply)
    finally:
        zygote = state.get("zygote")  # first: a worker let go is killed if it lingers, and its zygote must not outlive it
        if zygote is not None:
            zygote.close()
        session = state.get("check_session")
        if session is not None:
            session.close()
        unused = state.pop("zygote_control", None)  # handed over, never used
        if unused is not None:
            unused.close()


def _context():
    context = multiprocessing.get_context("forkserver")
    # The forkserver imports the grading pipeline (torch, pytest, nbformat) once; every worker
    # forks with it loaded. The parent itself never imports torch.
    context.set_forkserver_preload(["autograder.pipeline", "autograder.autograde.workers"])
    return context


def start_forkserver() -> None:
    """Start the workers' forkserver now, without waiting for it: its import of torch (about
    3 s) then overlaps what the parent does before it needs workers (discovering the class reads
    nbgrader's gradebook, itself about 1.5 s of imports). Unused if nothing needs grading; it
    ends with this process."""
    import multiprocessing.forkserver

    _context()  # sets what the forkserver imports when it starts
    multiprocessing.forkserver.ensure_running()


def _forkserver_pid() -> int | None:
    import multiprocessing.forkserver

    pid = getattr(getattr(multiprocessing.forkserver, "_forkserver", None), "_forkserver_pid", None)
    return pid if isinstance(pid, int) else None


def end_stopped_forkserver() -> None:
    """Kill the workers' forkserver if it is stopped (SIGSTOP): it would never answer a start (the
    next one begins a new forkserver, multiprocessing's `ensure_running`), nor end with this process."""
    pid = _forkserver_pid()
    if pid is not None and is_stopped(pid):
        _end_forkserver(pid)


def end_refusing_forkserver() -> None:
    """Kill the workers' forkserver after it refused a start, so that the next start begins a new
    one. One killed from outside refuses connections before it can be reaped, and until then
    multiprocessing takes it for running (a replaced worker's start then failed every try, and
    the batch with it)."""
    pid = _forkserver_pid()
    if pid is not None:
        _end_forkserver(pid)


def _end_forkserver(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    # Until it is a zombie: multiprocessing starts a new one only once waitpid sees it dead (and
    # reaps it itself: WNOWAIT leaves it to), else it connects to the dead one's socket, refused.
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


@dataclass
class _Worker:
    slot: int
    process: multiprocessing.process.BaseProcess
    conn: object
    item: dict | None = None
    started: float = 0.0
    stopped_since: float | None = None  # when it was first seen stopped (SIGSTOP), while busy


@dataclass
class Outcome:
    item: dict
    ok: bool
    result: dict | None = None  # SubmissionResult.to_dict() when ok
    reason: str = ""  # when not ok
    worker_seconds: float = 0.0
    # Why earlier attempts on this item were not kept (grader faults; each retried with a fresh
    # worker). The outcome itself is the last attempt's.
    faults: list[str] = field(default_factory=list)

    @property
    def attempts(self) -> int:
        return len(self.faults) + 1


class WorkerPool:
    def __init__(self, workers: int, assignment: Assignment, device: str = "cpu", *,
                 task: Callable[[dict, dict], dict] = grade_item, hard_timeout_s: float | None = None,
                 limits: Limits | None = None, zygote_server: ZygoteServer | None = None,
                 zygote_options: dict | None = None):
        """`zygote_options`: keyword arguments of each worker's `Zygote` (confinement: who may be
        graded unconfined, which folders no box may see)."""
        self.size, self.assignment, self.device, self.task = max(1, workers), assignment, device, task
        self.zygote_options = zygote_options or {}
        self.hard_timeout_s = hard_timeout_s if hard_timeout_s is not None else \
            hard_timeout_for(limits, len(assignment.checks))
        self.limits, self.zygote_server = limits, zygote_server
        self._context = _context()
        self._workers: list[_Worker] = []
        self.replaced = 0

    def _start(self, slot: int) -> _Worker:
        ours, theirs = self._context.Pipe()
        end_stopped_forkserver()  # a stopped one would never answer this start
        zygote_control = None
        if self.zygote_server is not None and not self.zygote_server.serving():
            self.zygote_server.close()  # dead or stopped: every later worker starts a zygote of its own
            self.zygote_server = None
        server_pid = None
        if self.zygote_server is not None:
            try:
                zygote_control, server_pid = self.zygote_server.new_zygote(), self.zygote_server.process.pid
            except OSError:  # the server is gone: the worker starts a zygote of its own
                pass
        args = (theirs, self.task, self.assignment, self.device, self.limits, zygote_control, self.zygote_options, server_pid)
        try:
            for attempt in range(3):  # a forkserver that refused or died mid-request is started again for the next try
                process = self._context.Process(target=_worker_main, name=f"autograde-worker-{slot}", daemon=True, args=args)
                try:
                    process.start()  # passes the worker a duplicate of the zygote's socket
                    break
                except (EOFError, OSError):
                    if attempt == 2:
                        raise
                    end_refusing_forkserver()
        finally:
            theirs.close()
            if zygote_control is not None:  # only the worker may hold it: the zygote ends with the worker
                zygote_control.close()
        return _Worker(slot, process, ours)

    def _replace(self, worker: _Worker) -> None:
        """A fresh worker (with a fresh zygote and pytest session) in `worker`'s slot; the old one is
        let go if it is idle and answering, killed otherwise."""
        if worker.process.is_alive() and worker.item is None and not is_stopped(worker.process.pid):
            try:
                worker.conn.send(None)  # it closes its zygote and session, and exits
                worker.process.join(2)
            except OSError:
                pass
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._start(worker.slot)
        self.replaced += 1

    def run(self, items: list[dict]) -> Iterator[Outcome]:
        """Grade `items`; yields one Outcome per item as each finishes (in finishing order). An
        attempt that ends in a grader fault is made again by a fresh worker (first in the queue),
        up to MAX_ATTEMPTS in all; the Outcome then carries the earlier attempts' faults."""
        queue = deque(items)
        faults: dict[int, list[str]] = {}  # id(item) -> faults of its attempts so far
        if not self._workers:
            self._workers = [self._start(slot) for slot in range(min(self.size, max(1, len(queue))))]
        while queue or any(w.item is not None for w in self._workers):
            self._hand_out(queue)
            busy = [w for w in self._workers if w.item is not None]
            if not busy:
                continue
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            finished = []
            for worker in busy:
                outcome = self._collect(worker, ready)
                if outcome is None:
                    continue
                fault = grader_fault(outcome.ok, outcome.result, outcome.reason)
                earlier = faults.setdefault(id(outcome.item), [])
                if fault is None and outcome.ok and not earlier:  # made again once; found again, it stands
                    fault = suspect(outcome.result)
                if fault is not None and len(earlier) + 1 < MAX_ATTEMPTS:
                    earlier.append(fault)
                    if worker.item is None and worker in self._workers:  # answered: a fresh one all the same
                        self._replace(worker)
                    queue.appendleft(outcome.item)
                    continue
                outcome.faults = faults.pop(id(outcome.item))
                finished.append(outcome)
            # The next items go out before the caller stores these (a durable write each): a worker
            # that waited for it sat idle for every submission it graded.
            self._hand_out(queue)
            yield from finished

    def _hand_out(self, queue: deque) -> None:
        """The next item of `queue` to every idle worker."""
        for worker in self._workers:
            if worker.item is None and queue:
                item = queue.popleft()
                try:
                    worker.conn.send(item)
                except OSError:  # died while idle: replace it and retry the item
                    queue.appendleft(item)
                    self._replace(worker)
                    continue
                worker.item, worker.started, worker.stopped_since = item, time.monotonic(), None

    def _collect(self, worker: _Worker, ready) -> Outcome | None:
        item, seconds = worker.item, time.monotonic() - worker.started
        ended = False  # its end of the pipe closed: the worker is gone, whatever its sentinel says
        if worker.conn in ready or worker.conn.poll():
            try:
                reply = worker.conn.recv()
            except (EOFError, OSError):
                reply, ended = None, True
            if reply is not None:
                worker.item = None
                if reply.get("ok"):
                    return Outcome(item, True, reply["result"], "", seconds)
                return Outcome(item, False, None, reply.get("reason", "the grader failed"), seconds)
        # A worker's exit reaches its sentinel through the forkserver: a stopped forkserver (SIGSTOP)
        # never reports it, and the closed pipe alone, always readable, made this loop spin until
        # the hard timeout.
        if ended or not worker.process.is_alive() or worker.process.sentinel in ready:
            worker.process.join(1)
            how = describe_exit_code(worker.process.exitcode)
            worker.item = None
            self._replace(worker)
            return Outcome(item, False, None, f"the grading worker process {how} while grading this submission", seconds)
        if seconds > self.hard_timeout_s:
            worker.item = None
            self._replace(worker)
            return Outcome(item, False, None, f"grading took longer than {self.hard_timeout_s:g} s; the worker was stopped", seconds)
        now = time.monotonic()
        worker.stopped_since = (worker.stopped_since or now) if is_stopped(worker.process.pid) else None
        if worker.stopped_since is not None and now - worker.stopped_since >= STOPPED_GRACE_S:
            worker.item = None
            self._replace(worker)
            return Outcome(item, False, None, "the grading worker process was stopped (SIGSTOP) while grading this "
                                              "submission", seconds)
        return None

    def close(self) -> None:
        """Let every worker finish its item and exit (it closes its zygote); kill what lingers."""
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        self._end_workers(within_s=10, at_least_s=0.1)

    def terminate(self) -> None:
        """Stop now (Ctrl-C, SIGTERM): every worker ends its boxes and zygote on SIGTERM and exits;
        one still there after STOP_WAIT_S (or stopped) is killed. Nothing the workers were grading
        is answered."""
        for worker in self._workers:
            try:
                worker.process.terminate()  # SIGTERM
                os.kill(worker.process.pid, signal.SIGCONT)  # a stopped worker must run to end its boxes
            except (OSError, AttributeError, TypeError):
                pass
        self._end_workers(within_s=STOP_WAIT_S)

    def _end_workers(self, *, within_s: float, at_least_s: float = 0.0) -> None:
        """Wait for every worker to exit, `within_s` in all; kill what lingers."""
        deadline = time.monotonic() + within_s
        for worker in self._workers:
            worker.process.join(max(at_least_s, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()
        self._workers = []
        end_stopped_forkserver()  # after the workers, its children: it must not outlive the run

    def __enter__(self):
        return self

    def __exit__(self, error_type, *_):
        if error_type is None:
            self.close()
        else:  # stopped by an error or a signal: nothing more is graded, so nothing is waited for
            self.terminate()
