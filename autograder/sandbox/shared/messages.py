"""Every message between the grader, a zygote and a box, named once: the sender builds it with
these names and the receiver dispatches on them.

The grader's requests carry an `op`; every answer carries an `event`. Each travels as one
length-prefixed JSON frame (protocol.py); descriptors that go with a message (a box's socket, a
pidfd, the submitted files' memfd) follow it through SCM_RIGHTS, as the message announces.

The TypedDicts say which fields each kind has, for readers and type checkers. They are a
description, never a guarantee: whatever a box sends is accepted field by field at the boundary
(grader/untrusted.py), which bounds and decodes every value it keeps.
"""
from __future__ import annotations

from enum import StrEnum
from typing import Any, NotRequired, TypedDict


class Op(StrEnum):
    """Requests, from the grader."""

    SPAWN = "spawn"  # to a zygote: start a box (SpawnRequest)
    FORK = "fork"  # to the zygote server: fork a zygote, whose control socket follows
    EXIT_RECORD = "exit_record"  # to a zygote: how a box's first process ended (ExitRecordRequest)
    EXECUTE = "execute"  # to a box: run the notebook's cells (ExecuteRequest)
    PROBE = "probe"  # to a box or a clean room: call one probe (ProbeRequest)


class Event(StrEnum):
    """Answers: from a zygote (READY, SPAWNED, EXIT_RECORD) or a box (the rest)."""

    READY = "ready"  # a zygote or a box has started (ZygoteReady, BoxReady)
    SPAWNED = "spawned"  # a zygote started a box; its socket and pidfd follow (Spawned)
    EXIT_RECORD = "exit_record"  # a zygote's record of a box's end (ExitRecord)
    CELL = "cell"  # one cell's result (CellResult)
    EXECUTED = "executed"  # every cell ran (Executed)
    PROBE = "probe"  # one probe's answer (ProbeReply)
    DEFINED = "defined"  # a clean room or template has made its definitions and ended its box's other processes


class SpawnRequest(TypedDict):
    op: str  # Op.SPAWN
    workdir: str | None  # the box's folder on the host, where it has no private root
    uid: int | None  # the sandbox uid, where the grader is root
    limits: dict[str, Any]  # Limits.rlimits()
    cgroup: str | None
    files: bool  # a memfd with the submitted files follows
    pid_namespace: bool
    confinement: dict[str, Any]  # what the box applies (grader/confinement.py: Level.box_settings)
    room: NotRequired[dict[str, Any] | None]  # a clean room's cells, or a template's
    preload: NotRequired[list[str]]


class ExitRecordRequest(TypedDict):
    op: str  # Op.EXIT_RECORD
    pid: int  # as Spawned gave it


class ExecuteRequest(TypedDict):
    op: str  # Op.EXECUTE
    cells: list[str]
    cell_timeout_s: float  # CPU time, as every limit a box keeps (shared/clocks.py)
    execute_timeout_s: float  # the notebook's budget
    wall_factor: NotRequired[float]  # each limit's wall-clock ceiling, as a multiple of it


class ProbeRequest(TypedDict):
    op: str  # Op.PROBE
    probe: str
    inputs: dict[str, Any]  # tensors.encode()
    device: str
    timeout_s: float  # CPU time
    wall_factor: NotRequired[float]


class ZygoteReady(TypedDict):
    event: str  # Event.READY
    pid: int
    pid_namespace: bool  # boxes get a PID namespace (as root, or inside the zygote's user namespace)
    host: dict[str, Any]  # what the zygote found it may do (zygote/capabilities.py)
    pidfd: bool  # a pidfd on the zygote follows


class Spawned(TypedDict):
    event: str  # Event.SPAWNED
    pid: int  # what the grader ends the box by: its init, or its first process without a PID namespace
    pidfd: bool


class ExitRecord(TypedDict):
    event: str  # Event.EXIT_RECORD
    pid: int
    exited: bool  # False: still running or not a box of this zygote
    exit_code: NotRequired[int | None]
    signal: NotRequired[int | None]
    cpu_s: NotRequired[float]
    max_rss_bytes: NotRequired[int]


class BoxReady(TypedDict):
    event: str  # Event.READY
    isolation: dict[str, Any]  # what was applied and what was missing, for the report
    pid: int


class CellResult(TypedDict):
    event: str  # Event.CELL
    index: int
    status: str  # "ok", "error" or "timeout"
    output: str
    error: NotRequired[dict[str, str]]  # type, message, traceback


class Executed(TypedDict):
    event: str  # Event.EXECUTED
    defined: list[str]  # the student functions the notebook defined


class Defined(TypedDict):
    event: str  # Event.DEFINED; the grader then looks at the box from outside (grader/room_integrity.py)


class ProbeReply(TypedDict):
    event: str  # Event.PROBE
    status: str  # "ok", "missing", "not_implemented", "error", "timeout" or "crashed"
    output: str
    observations: NotRequired[dict[str, Any]]
    missing: NotRequired[list[str]]
    why_missing: NotRequired[dict[str, dict]]
    reason: NotRequired[str]
    error: NotRequired[dict[str, str]]
    defined: NotRequired[list[str]]
    cpu_s: NotRequired[float]  # the CPU time the student's steps used (the checks' shared budget counts it)
