"""N worker processes, each with its own sandbox zygote (and so its own sandbox uid), grading
submissions handed out by the parent one at a time.

Workers are started with multiprocessing's "forkserver" method: a fresh interpreter (never a
fork of the parent, so the parent's state, CUDA included, cannot leak into them) imports the
grader once and forks each worker from there, so replacing a dead worker is cheap. Given a
`ZygoteServer`, each worker (a replacement too) gets a zygote forked by it, warm at once,
instead of starting its own interpreter: the batch imports torch twice (forkserver and server),
not once per worker plus once. A work item
goes out and a result comes back as plain dicts. A worker that dies, or holds one submission
past `hard_timeout_s` (by default the sandbox's worst case from the limits, plus a zygote's
start-up), is killed and replaced, and that submission comes back as a failure with a reason;
the batch goes on.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait

from autograder.assignment import Assignment
from autograder.sandbox.grader.limits import Limits, hard_timeout_for
from autograder.sandbox.grader.zygotes import Zygote, ZygoteServer


def describe_exit_code(code: int | None) -> str:
    """multiprocessing's exitcode in words: negative is the signal that killed the process."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name} ({signal.strsignal(-code) or 'unknown signal'})"
    return f"exited with status {code}"


def worker_zygote(state: dict):
    """This worker's live zygote: the one the pool's zygote server forked for it at first, then,
    should that one die, a zygote of the worker's own. `state` holds it across items."""
    zygote = state.get("zygote")
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.close()
        zygote = state["zygote"] = Zygote(control=state.pop("zygote_control", None), **state.get("zygote_options", {}))
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


def _worker_main(conn, task: Callable[[dict, dict], dict], assignment: Assignment, device: str,
                 limits: Limits | None, zygote_control=None, zygote_options: dict | None = None) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    state: dict = {"assignment": assignment, "device": device, "limits": limits, "zygote_control": zygote_control,
                   "zygote_options": zygote_options or {}}
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
        session = state.get("check_session")
        if session is not None:
            session.close()
        zygote = state.get("zygote")
        if zygote is not None:
            zygote.close()
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


@dataclass
class _Worker:
    slot: int
    process: multiprocessing.process.BaseProcess
    conn: object
    item: dict | None = None
    started: float = 0.0


@dataclass
class Outcome:
    item: dict
    ok: bool
    result: dict | None = None  # SubmissionResult.to_dict() when ok
    reason: str = ""  # when not ok
    worker_seconds: float = 0.0


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
        zygote_control = None
        if self.zygote_server is not None:
            try:
                zygote_control = self.zygote_server.new_zygote()
            except OSError:  # the server is gone: the worker starts a zygote of its own
                pass
        process = self._context.Process(target=_worker_main, name=f"autograde-worker-{slot}", daemon=True,
                                        args=(theirs, self.task, self.assignment, self.device, self.limits, zygote_control,
                                              self.zygote_options))
        try:
            process.start()  # passes the worker a duplicate of the zygote's socket
        finally:
            theirs.close()
            if zygote_control is not None:  # only the worker may hold it: the zygote ends with the worker
                zygote_control.close()
        return _Worker(slot, process, ours)

    def _replace(self, worker: _Worker) -> None:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join(5)
        worker.conn.close()
        self._workers[self._workers.index(worker)] = self._start(worker.slot)
        self.replaced += 1

    def run(self, items: list[dict]) -> Iterator[Outcome]:
        """Grade `items`; yields one Outcome per item as each finishes (in finishing order)."""
        queue = deque(items)
        if not self._workers:
            self._workers = [self._start(slot) for slot in range(min(self.size, max(1, len(queue))))]
        while queue or any(w.item is not None for w in self._workers):
            for worker in self._workers:
                if worker.item is None and queue:
                    item = queue.popleft()
                    try:
                        worker.conn.send(item)
                    except OSError:  # died while idle: replace it and retry the item
                        queue.appendleft(item)
                        self._replace(worker)
                        continue
                    worker.item, worker.started = item, time.monotonic()
            busy = [w for w in self._workers if w.item is not None]
            if not busy:
                continue
            ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout=1.0)
            for worker in busy:
                outcome = self._collect(worker, ready)
                if outcome is not None:
                    yield outcome

    def _collect(self, worker: _Worker, ready) -> Outcome | None:
        item, seconds = worker.item, time.monotonic() - worker.started
        if worker.conn in ready or worker.conn.poll():
            try:
                reply = worker.conn.recv()
            except (EOFError, OSError):
                reply = None
            if reply is not None:
                worker.item = None
                if reply.get("ok"):
                    return Outcome(item, True, reply["result"], "", seconds)
                return Outcome(item, False, None, reply.get("reason", "the grader failed"), seconds)
        if not worker.process.is_alive() or worker.process.sentinel in ready:
            worker.process.join(1)
            how = describe_exit_code(worker.process.exitcode)
            worker.item = None
            self._replace(worker)
            return Outcome(item, False, None, f"the grading worker process {how} while grading this submission "
                                              "(it was replaced; the batch went on)", seconds)
        if seconds > self.hard_timeout_s:
            worker.item = None
            self._replace(worker)
            return Outcome(item, False, None, f"grading took longer than {self.hard_timeout_s:g} s; the worker "
                                              "was stopped (it was replaced; the batch went on)", seconds)
        return None

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + 10
        for worker in self._workers:
            worker.process.join(max(0.1, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(5)
            worker.conn.close()
        self._workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
