"""The grader's side of one sandbox: execute the notebook's cells, send probes, and kill
everything the submission started when done. (spawn.py starts the zygote that forks sandboxes.)

Every wait has an absolute deadline enforced here, outside the student's processes: one per
message and one per phase (start-up, the notebook, each probe, all probes together), so a
sandbox that writes one byte now and then cannot hold the grader. These deadlines are by the wall
clock and sit a grace above the box's own ceilings; the limits that judge the work count CPU time
inside the box (shared/clocks.py), and the checks' shared budget counts the CPU time each probe
reports (`ChecksBudget`), so a busy machine never changes a score. Every message is read through
the boundary (untrusted.py), which bounds and decodes it. A sandbox that breaks a deadline or its
budget is killed and the reason kept for the student; one submission therefore holds the grader
for at most `limits.worst_case_seconds(limits)`.
"""
from __future__ import annotations

import os
import select
import signal
import socket
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from autograder.model.errors import ExplainedError
from autograder.sandbox.grader import exits
from autograder.sandbox.grader.limits import CELL_GRACE_S, PROBE_GRACE_S, STARTUP_TIMEOUT_S, Limits
from autograder.sandbox.grader.submitted_files import remove_tree
from autograder.sandbox.grader.untrusted import Inbox, Violation, accept_probe_reply
from autograder.sandbox.shared import protocol, tensors
from autograder.sandbox.shared.messages import Event, Op
from autograder.sandbox.shared.processes import kill_processes_of, kill_session

BOX_EXIT_WAIT_S = 10  # the kernel reaps a PID namespace's processes before its init counts as exited


# Every box this process holds and has not yet ended: what a worker ends when it is told to stop.
_open_boxes: weakref.WeakSet = weakref.WeakSet()


def end_all_boxes() -> None:
    """Kill every box this process still holds (a worker stopping on SIGTERM, mid-submission)."""
    for box in list(_open_boxes):
        box.kill()


class BoxDied(ExplainedError):
    """The sandbox process ended or stopped answering; `reason` says how, for the student. `late`:
    it was ended because a deadline passed (it did not answer in time), not because it ended."""

    def __init__(self, reason: str, *, late: bool = False):
        super().__init__(reason)
        self.late = late


@dataclass
class ChecksBudget:
    """The checks' shared time, for every sandbox that grades one submission: `cpu_s` seconds of
    the CPU time the student's steps use (each probe's answer says how much it used), within a
    wall-clock ceiling (`wall_deadline`, time.monotonic())."""

    cpu_s: float
    wall_deadline: float
    used_cpu_s: float = 0.0

    @classmethod
    def starting_now(cls, limits: Limits) -> ChecksBudget:
        return cls(limits.checks_timeout_s, time.monotonic() + limits.wall_s(limits.checks_timeout_s))

    @property
    def cpu_left_s(self) -> float:
        return self.cpu_s - self.used_cpu_s

    def spent(self) -> bool:
        return self.cpu_left_s <= 0 or time.monotonic() >= self.wall_deadline


@dataclass
class ExecutionReport:
    cells: list[dict] = field(default_factory=list)
    defined: list[str] = field(default_factory=list)
    died: str | None = None  # why execution stopped early, if it did

    def failed_cells(self) -> list[dict]:
        return [c for c in self.cells if c.get("status") != "ok"]


class BoxClient:
    """One submission's confined process."""

    def __init__(self, sock: socket.socket, pid: int, uid: int | None, workdir: str | None, device: str, limits: Limits,
                 *, pidfd: int | None = None, cgroup=None, ready_deadline: float | None = None,
                 exit_record: Callable[[], dict] | None = None):
        """`exit_record`: asks the zygote how the box's first process ended (zygote/boxes.py)."""
        self.sock, self.pid, self.uid, self.workdir = sock, pid, uid, workdir
        self._exit_record = exit_record
        self.exit: dict = {}  # how the box's first process ended, once it did (grader/exits.py)
        self.pidfd, self.cgroup = pidfd, cgroup  # the box's first process (its PID namespace's init), its cgroup
        self.device, self.limits = device, limits
        self.dead: str | None = None
        self.killed = False
        self.pid_namespace = False  # set by spawn: the box is a PID namespace whose init is `pidfd`
        self.box_ended = False  # set by kill: the PID namespace's init has exited, so nothing of the box is left
        self.checks_budget: ChecksBudget | None = None  # shared by a submission's sandboxes; else one of its own
        _open_boxes.add(self)
        ready = self._receive(STARTUP_TIMEOUT_S, "starting up", deadline=ready_deadline)
        self.isolation = ready.get("isolation", {})
        if self.isolation.get("failed"):  # the box could not be confined at the run's level: it runs nothing
            self._die(f"the grader could not start its sandbox: {self.isolation['failed']}")

    @cached_property
    def inbox(self) -> Inbox:
        """Everything this sandbox sends arrives through here (made on first use: the start-up)."""
        return Inbox(self.sock, self.device)

    def _receive(self, timeout_s: float, doing: str, *, expect: tuple[str, ...] = (Event.READY,),
                 deadline: float | None = None, late: str | None = None) -> dict:
        """The next message of an `expect`ed kind, complete by `deadline` (default: `timeout_s`
        from now); on any failure the sandbox is killed and BoxDied says why (`late` is the
        reason when the deadline passes, if given)."""
        if self.dead:
            raise BoxDied(self.dead)
        if deadline is None:
            deadline = time.monotonic() + timeout_s
        try:
            return self.inbox.receive(expect, deadline)
        except TimeoutError:
            self._die(late or f"it stopped responding while {doing} (no complete answer within {timeout_s:g} s)", late=True)
        except Violation as violation:
            self._die(violation.reason)
        except (EOFError, OSError) as error:
            detail = "" if isinstance(error, EOFError) else f" ({error})"
            self._die(f"its Python process ended while {doing}{detail}: {self._why_it_ended()}")
        raise AssertionError("unreachable")

    def _why_it_ended(self) -> str:
        """Which limit the box hit, from the zygote's exit record and the cgroup's memory events."""
        self.exit = exits.accepted(self._exit_record()) if self._exit_record else {}
        out_of_memory = self.cgroup is not None and self.cgroup.oom_killed()
        return exits.explained(self.exit, self.limits, out_of_memory=out_of_memory)

    def _send(self, message: dict, deadline: float, doing: str) -> None:
        if self.dead:
            raise BoxDied(self.dead)
        try:
            protocol.send_message(self.sock, message, deadline=deadline)
        except TimeoutError:
            self._die(f"it stopped reading the grader's requests while {doing}", late=True)
        except OSError:
            self._die(f"its process had ended before {doing}")
        except protocol.ProtocolError as error:  # the request itself is too large to send
            self._die(f"the grader could not send its request while {doing} ({error})")

    def _die(self, reason: str, *, late: bool = False) -> None:
        self.dead = reason
        self.kill()
        raise BoxDied(reason, late=late)

    def execute(self, cells: list[str]) -> ExecutionReport:
        """Run the cells. The box keeps each cell's limit and the notebook's budget (CPU time, with
        wall ceilings); from here, each result must arrive within its cell's wall ceiling plus a
        grace, and all of them within the notebook's plus a grace."""
        report = ExecutionReport()
        limits = self.limits
        phase_s = limits.wall_s(limits.execute_timeout_s) + CELL_GRACE_S
        phase_deadline = time.monotonic() + phase_s
        try:
            self._send({"op": Op.EXECUTE, "cells": cells, "cell_timeout_s": limits.cell_timeout_s,
                        "execute_timeout_s": limits.execute_timeout_s, "wall_factor": limits.wall_factor},
                       phase_deadline, "running the notebook")
            self.inbox.allow(Event.CELL, len(cells))
            self.inbox.allow(Event.EXECUTED)
            while True:
                index = len(report.cells)
                message_s = limits.wall_s(limits.cell_timeout_s) + CELL_GRACE_S
                deadline = min(phase_deadline, time.monotonic() + message_s)
                if deadline == phase_deadline:
                    late = f"running the notebook took longer than {phase_s:g} s by the clock (at cell {index + 1})"
                else:
                    late = f"it stopped responding while running cell {index + 1} (no complete answer within {message_s:g} s)"
                message = self._receive(message_s, f"running cell {index + 1}", expect=(Event.CELL, Event.EXECUTED),
                                        deadline=deadline, late=late)
                if message["event"] == Event.CELL:
                    report.cells.append(message)
                else:
                    report.defined = message["defined"]
                    return report
        except BoxDied as error:
            report.died = error.reason
            return report

    def probe(self, name: str, inputs: dict, timeout_s: float | None = None) -> dict:
        """Run probe `name` with `timeout_s` of CPU time (the box enforces it, with its wall
        ceiling); returns the reply with observations decoded (plain data + tensors). The CPU time
        the reply reports is charged to `checks_budget` (Limits.checks_timeout_s from the first
        probe, unless the caller set one beforehand: several sandboxes grading one submission
        share one that way); a probe never gets more than the budget has left. From here, the
        answer must arrive within the probe's wall ceiling plus a grace, and by the budget's."""
        timeout_s = timeout_s or self.limits.probe_timeout_s
        doing = f"running the {name} check"
        if self.dead:
            raise BoxDied(self.dead)
        if self.checks_budget is None:
            self.checks_budget = ChecksBudget.starting_now(self.limits)
        budget = self.checks_budget
        budget_s = budget.cpu_s
        if budget.spent():
            self._die(f"the checks used up their time budget of {budget_s:g} s before {doing} "
                      "(the submission's steps were too slow); this and later checks could not run")
        cpu_limit_s = min(timeout_s, budget.cpu_left_s)
        probe_wall_s = self.limits.wall_s(cpu_limit_s) + PROBE_GRACE_S
        deadline = min(time.monotonic() + probe_wall_s, budget.wall_deadline)
        if deadline < budget.wall_deadline:
            late = f"it stopped responding while {doing} (no complete answer within {probe_wall_s:g} s)"
        else:
            late = f"the checks used up their time budget of {budget_s:g} s while {doing}; later checks could not run"
        self._send({"op": Op.PROBE, "probe": name, "inputs": tensors.encode(inputs), "device": self.device,
                    "timeout_s": cpu_limit_s, "wall_factor": self.limits.wall_factor}, deadline, doing)
        self.inbox.allow(Event.PROBE)
        reply = self._receive(timeout_s, doing, expect=(Event.PROBE,), deadline=deadline, late=late)
        reply.pop("event", None)
        used = reply.pop("cpu_s", None)
        # A probe that ran out of time used all it was given, whatever its clock read as the timer
        # fired (a hair under the limit left a budget that had run out with a millisecond to give).
        timed_out = reply.get("status") == "timeout"
        budget.used_cpu_s += cpu_limit_s if timed_out or used is None else min(used, cpu_limit_s)
        if cpu_limit_s < timeout_s and reply.get("status") == "timeout":  # the budget, not the probe's own limit, ran out
            reply["error"] = {**reply.get("error", {}), "message":
                              f"the checks used up their time budget of {budget_s:g} s while {doing}; later checks could not run"}
        return reply

    def kill(self) -> None:
        """End the box and everything it started, then remove what it had on the host.

        In a PID namespace, SIGKILL to its init ends every process in it, and the pidfd turns
        readable only once the kernel has reaped them all. The cgroup and the uid sweep cover
        the platforms without namespaces (and are a cheap double check where they exist)."""
        if self.killed:
            return
        self.killed = True
        if not self.pid_namespace:  # the box's session (its first process calls setsid), each through a pidfd
            kill_session(self.pid)
        if self.pidfd is not None:
            try:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            except ProcessLookupError:
                pass
            poller = select.poll()
            poller.register(self.pidfd, select.POLLIN)
            self.box_ended = bool(poller.poll(BOX_EXIT_WAIT_S * 1000)) and self.pid_namespace
            os.close(self.pidfd)
            self.pidfd = None
        if self.cgroup is not None:
            self.cgroup.kill()
            self.cgroup.remove()
        # A PID namespace whose init has ended holds no process: the sweep (a scan of /proc,
        # ~5 ms) is needed only without one. The next spawn checks the uid again anyway.
        if self.uid is not None and not self.box_ended:
            kill_processes_of(self.uid)
        try:
            self.sock.close()
        except OSError:
            pass
        if self.workdir:
            remove_tree(self.workdir)

    def close(self) -> None:
        self.kill()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decode_reply(reply: dict, device: str) -> dict:
    """A probe reply as the boundary accepts it (untrusted.accept_probe_reply)."""
    return accept_probe_reply(reply if isinstance(reply, dict) else {}, device)
