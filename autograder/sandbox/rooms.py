"""The grader's side of clean rooms (clean_room.py): the submission as the checks see it.

`CleanRooms.open_room()` gives one check its own room, a sandbox forked from the zygote when
the check makes its first probe, holding only the notebook's definitions, and killed when the
check ends (checks/conftest.py closes it). What one check's steps do (hang, crash, patch
anything) therefore reaches no other check, and no code outside the steps' bodies runs at all.
"""
from __future__ import annotations

import time

from autograder.sandbox.client import Sandbox, SandboxDied
from autograder.sandbox.limits import Limits


def preload_for(cells: list[str]) -> list[str]:
    """Slow imports the zygote should make once, before forking, for these cells: torch.optim's
    first step and torch.compile import torch._dynamo (about 3.7 s, paid by every room otherwise)."""
    return ["torch._dynamo"] if any(word in cell for cell in cells for word in ("optim", "compile", "_dynamo")) else []


class CleanRooms:
    """One submission's definitions, replayed into a fresh room per check."""

    def __init__(self, zygote, cells: list[str], *, device: str, limits: Limits, files: dict[str, bytes] | None = None,
                 labels: list[str] = ()):
        self.zygote, self.cells, self.device, self.limits, self.files = zygote, cells, device, limits, files
        self.labels = list(labels)  # the cells as a student finds them, for tracebacks (checks/student.py)
        self.defined: list[str] | None = None  # the steps the rooms' definitions define (first answer)
        self.checks_deadline: float | None = None  # one budget for all the rooms (Limits.checks_timeout_s)
        self.rooms_opened = 0
        self.seconds_starting = 0.0  # forking and confining rooms, for the measurements

    def open_room(self) -> Room:
        return Room(self)


class Room:
    """One check's room; started lazily by its first probe."""

    def __init__(self, rooms: CleanRooms):
        self.rooms = rooms
        self.sandbox: Sandbox | None = None

    def _start(self) -> Sandbox:
        started = time.perf_counter()
        rooms = self.rooms
        self.sandbox = rooms.zygote.spawn(device=rooms.device, limits=rooms.limits, files=rooms.files,
                                          room={"cells": rooms.cells}, preload=preload_for(rooms.cells))
        if rooms.checks_deadline is None:
            rooms.checks_deadline = time.monotonic() + rooms.limits.checks_timeout_s
        self.sandbox.checks_deadline = rooms.checks_deadline  # the client stops probes past it
        rooms.rooms_opened += 1
        rooms.seconds_starting += time.perf_counter() - started
        return self.sandbox

    def probe(self, name: str, inputs: dict, timeout_s: float | None = None) -> dict:
        timeout_s = timeout_s or self.rooms.limits.probe_timeout_s
        started = time.monotonic()
        try:
            reply = (self.sandbox or self._start()).probe(name, inputs, timeout_s)
        except SandboxDied as died:
            # The room holds this check's steps only: its end is theirs, not the notebook's.
            if time.monotonic() - started >= timeout_s:
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
