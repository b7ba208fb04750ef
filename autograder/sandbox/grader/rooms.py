"""The grader's side of clean rooms (clean_room.py): the submission as the checks see it.

`CleanRooms.open_room()` gives one check its own room, started when the check makes its first
probe, holding only the notebook's definitions, and ended when the check ends (checks/conftest.py
closes it). What one check's steps do (hang, crash, patch anything, leave a process or a file
behind) therefore reaches no other check, and no code outside the steps' bodies runs at all.

On the CPU, in a box with its own PID namespace and uid, one template box per submission makes
the definitions once and forks each check's room from them (room_template.py): about 5 ms a
check instead of 60 for a box of its own. On a GPU (a fork cannot use CUDA once its parent has),
or without PID namespaces, each room is a box forked from the zygote that replays the
definitions. A template that ends (a step killed it) is replaced for the next check.

Once a room or template has made its definitions, and before it is sent anything, the grader
looks at its box from outside (room_integrity.py). One that code stopped, traced or signalled, or
that some other process outlived, is not used: its checks score 0 ("sandbox_died", with why) and
`integrity` says what was found, for the TA (pipeline.py adds it to the submission's flags).
"""
from __future__ import annotations

import socket
import time

from autograder.sandbox.box.room_template import FORK_REQUEST
from autograder.sandbox.grader import room_integrity
from autograder.sandbox.grader.box_client import BoxClient, BoxDied, ChecksBudget
from autograder.sandbox.grader.limits import PROBE_GRACE_S, STARTUP_TIMEOUT_S, Limits
from autograder.sandbox.shared.messages import Event


class Tampered(BoxDied):
    """A room's box was not as its definitions must leave it (room_integrity.py): its checks
    cannot be scored, whatever they would have answered."""


def preload_for(cells: list[str]) -> list[str]:
    """Slow imports the zygote should make once, before forking, for these cells: torch.optim's
    first step and torch.compile import torch._dynamo (about 3.7 s, paid by every room otherwise)."""
    return ["torch._dynamo"] if any(word in cell for cell in cells for word in ("optim", "compile", "_dynamo")) else []


class CleanRooms:
    """One submission's definitions, replayed into a fresh room per check. `template`: fork the
    rooms from one template box (default: on the CPU where the platform gives boxes their own PID
    namespace and uid). Call `close` when the checks are done."""

    def __init__(self, zygote, cells: list[str], *, device: str, limits: Limits, files: dict[str, bytes] | None = None,
                 labels: list[str] = (), template: bool | None = None):
        self.zygote, self.cells, self.device, self.limits, self.files = zygote, cells, device, limits, files
        self.labels = list(labels)  # the cells as a student finds them, for tracebacks (checks/student.py)
        self.defined: list[str] | None = None  # the steps the rooms' definitions define (first answer)
        self.checks_budget: ChecksBudget | None = None  # one budget for all the rooms (Limits.checks_timeout_s)
        self.rooms_opened = 0
        self.boxes_started = 0  # rooms of their own, or templates
        self.seconds_starting = 0.0  # forking and confining rooms, for the measurements
        if template is None:
            template = not device.startswith("cuda") and zygote.pid_namespace
        self.use_template = template
        self._template: BoxClient | None = None
        self.integrity: list[str] = []  # what was found wrong with a room's box, for the TA
        self._tampered: str | None = None  # why the template's rooms may not be used, once found

    def open_room(self) -> RoomClient:
        return RoomClient(self)

    def close(self) -> None:
        """End the template box, and every room of it still running."""
        if self._template is not None:
            self._template.close()
            self._template = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _spawn(self, **room_fields) -> BoxClient:
        """A box from the zygote; the checks' budget starts with the first one."""
        if self.checks_budget is None:  # it starts with the first room, as the wait for that room does
            self.checks_budget = ChecksBudget.starting_now(self.limits)
        room = {"cells": self.cells, "define_timeout_s": self.limits.probe_timeout_s,
                "wall_factor": self.limits.wall_factor, **room_fields}
        try:
            sandbox = self.zygote.spawn(device=self.device, limits=self.limits, files=self.files,
                                        room=room, preload=preload_for(self.cells))
        except BoxDied as died:  # no code of the submission runs before a box is ready: the grader's fault
            raise RuntimeError(f"a clean room could not be started ({died.reason})") from None
        self.boxes_started += 1
        return sandbox

    def _defined(self, box: BoxClient) -> BoxClient:
        """`box` once it has made its definitions, looked at from outside (room_integrity.py);
        BoxDied if it did not make them in time, or is not as they must leave it."""
        box.inbox.allow(Event.DEFINED)
        waited_s = self.limits.wall_s(self.limits.probe_timeout_s) + PROBE_GRACE_S  # their limit's wall ceiling
        box._receive(waited_s, "making the notebook's definitions", expect=(Event.DEFINED,),
                     deadline=min(time.monotonic() + waited_s, self.checks_budget.wall_deadline))
        found = room_integrity.tampering(box)
        if found is None:
            return box
        box.close()
        flag = f"clean room: {found} once the definitions were made; no check was scored in that room"
        if flag not in self.integrity:
            self.integrity.append(flag)
        raise Tampered(f"its clean room was tampered with while the notebook's definitions were made ({found})")

    def new_room(self) -> BoxClient:
        """A room for one check: a child of the template, or a box of its own."""
        if self._tampered is not None:
            raise Tampered(self._tampered)
        if not self.use_template:
            return self._defined(self._spawn())
        started_template = False
        while True:
            if self._template is None:
                if started_template:  # at most one new template per check: the budget stays bounded
                    raise BoxDied("its clean room could not be started (the definitions' process ended)")
                template = self._spawn(template=True)
                started_template = True
                if not (template.pid_namespace and template.isolation.get("room_template")):  # one box per check
                    template.close()
                    self.use_template = False
                    return self._defined(self._spawn())
                try:
                    self._template = self._defined(template)
                except Tampered as tampered:  # none of its rooms is used
                    self._tampered = tampered.reason
                    raise
            try:
                return self._fork_child()
            except BoxDied:
                # The template ended (a step killed it) or stopped answering: a new one.
                self._template.close()
                self._template = None
                if started_template:
                    raise

    def _fork_child(self) -> BoxClient:
        ours, theirs = socket.socketpair()
        try:
            socket.send_fds(self._template.sock, [FORK_REQUEST], [theirs.fileno()])
        except OSError:
            ours.close()
            raise BoxDied("its clean room's template had ended") from None
        finally:
            theirs.close()
        return TemplateChild(ours, self.zygote.box_uid, self.device, self.limits,
                             ready_deadline=min(time.monotonic() + STARTUP_TIMEOUT_S, self.checks_budget.wall_deadline))


class TemplateChild(BoxClient):
    """One check's room forked by the template. It has no box of its own: ending it is closing
    its socket; the template kills it before forking the next check's room, and the template's
    box ends with `CleanRooms.close`."""

    def __init__(self, sock: socket.socket, uid: int | None, device: str, limits: Limits, *, ready_deadline: float):
        super().__init__(sock, 0, uid, None, device, limits, ready_deadline=ready_deadline)

    def kill(self) -> None:
        if self.killed:
            return
        self.killed = True
        try:
            self.sock.close()
        except OSError:
            pass


class RoomClient:
    """One check's room; started lazily by its first probe."""

    def __init__(self, rooms: CleanRooms):
        self.rooms = rooms
        self.sandbox: BoxClient | None = None
        self.failed: BoxDied | None = None  # why the room could not be started: its check's later probes are not retried

    def _start(self) -> BoxClient:
        if self.failed is not None:
            raise type(self.failed)(self.failed.reason)
        started = time.perf_counter()
        rooms = self.rooms
        try:
            self.sandbox = rooms.new_room()
        except BoxDied as died:
            self.failed = died
            raise
        self.sandbox.checks_budget = rooms.checks_budget  # the client stops probes past it
        rooms.rooms_opened += 1
        rooms.seconds_starting += time.perf_counter() - started
        return self.sandbox

    def probe(self, name: str, inputs: dict, timeout_s: float | None = None) -> dict:
        timeout_s = timeout_s or self.rooms.limits.probe_timeout_s
        try:
            reply = (self.sandbox or self._start()).probe(name, inputs, timeout_s)
        except Tampered:
            raise  # not the steps' doing: the check is not scored (checks/student.py)
        except BoxDied as died:
            # The room holds this check's steps only: its end is theirs, not the notebook's. Ended
            # for a deadline it is a timeout; ended by itself, a crash (never judged by the clock).
            if died.late:
                message = f"did not finish within {timeout_s:g} s ({died.reason})"
                return {"status": "timeout", "error": {"type": "Timeout", "message": message, "traceback": ""}}
            return {"status": "crashed", "reason": died.reason}
        if self.rooms.defined is None and "defined" in reply:
            self.rooms.defined = list(reply["defined"])
        return reply

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None
