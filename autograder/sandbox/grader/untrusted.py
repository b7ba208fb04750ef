"""The boundary: every byte a sandbox sends the grader is read, bounded and decoded here, and
nowhere else.

A sandbox runs student code, and student code can write anything to the grader's socket: frames
of any size, at any pace, with any JSON in them. `Inbox.receive` reads one message against an
absolute deadline and a byte budget, and hands back only what the message's schema allows:

  - a cap per message kind (a cell result is small; a probe reply holds a few small tensors),
    a cap on the bytes of the whole submission, and a count per kind (no more cell results than
    cells, one reply per probe); exceeding any of them is a `Violation`, and the sandbox ends;
  - per field: the type it must have (a wrong one is replaced by a default), a cap on its
    length (text is cut and made encodable: see model/sanitize.py); unknown fields dropped;
  - tensors: a known dtype, a shape whose element count is capped before anything is
    allocated, and a cap on the elements of one reply.

`accept_probe_reply` is the same schema for a probe's reply, used also on nbgrader's path where
probes run in the student's kernel, so both paths hand the checks the same kind of data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from autograder.model.errors import ExplainedError
from autograder.model.sanitize import clean_text
from autograder.probes.pytorch_slope import STEP_FUNCTIONS
from autograder.sandbox.shared import protocol, tensors
from autograder.sandbox.shared.messages import Event

KIB, MIB = 1024, 1024 * 1024
# The largest frame each kind of message may be. Sized from what the sandbox sends: a cell's
# output is capped at 20,000 characters in the sandbox (up to 6 bytes each once JSON-escaped),
# its error at 10,000; a probe reply's largest observation is a tensor of at most 100,000
# elements (~530 KB as base64), and the probes' inputs have at most 60 rows.
MESSAGE_CAPS = {Event.READY: 64 * KIB, Event.CELL: 256 * KIB, Event.EXECUTED: 64 * KIB, Event.PROBE: 4 * MIB,
                Event.DEFINED: 1 * KIB}
SUBMISSION_BYTES = 32 * MIB  # every message of one submission together

# Per field, in characters.
TYPE_CHARS, MESSAGE_CHARS, TRACEBACK_CHARS = 200, 2_000, 8_000
OUTPUT_CHARS, REASON_CHARS, NAME_CHARS, OBSERVED_CHARS, STATEMENT_CHARS = 20_000, 1_000, 100, 200, 80
FIGURES, FIGURE_CHARS = 50, 100  # figures shown per cell (their text form: "<Figure size 600x400 with 1 Axes>")

# Observations: nesting, container sizes, tensor elements per reply.
OBSERVATION_DEPTH, OBSERVATION_ITEMS, OBSERVATION_KEYS = 6, 10_000, 64
REPLY_TENSOR_ELEMENTS = 1_000_000

CELL_STATUSES = ("ok", "error", "timeout")
WHY_MISSING_KINDS = ("syntax_error", "refused", "raised")
PROBE_STATUSES = ("ok", "missing", "not_implemented", "error", "timeout", "crashed")
_INT_LIMIT = 2**63
_MAX_SECONDS = 1e6  # larger (or NaN, or negative) is no time a probe could have used


class Violation(ExplainedError):
    """The sandbox sent what the grader does not accept; `reason` says what, for the student."""


class Malformed(Exception):
    """A probe reply's content breaks its schema (becomes a "crashed" probe, not a Violation)."""


# ------------------------------------------------------------------------------- field level


def _int(value, default: int = 0) -> int:
    return value if type(value) is int and -_INT_LIMIT < value < _INT_LIMIT else default


def _error(value) -> dict:
    """An exception as the sandbox describes it: type, message, student's traceback."""
    value = value if isinstance(value, dict) else {}
    return {"type": clean_text(value.get("type"), TYPE_CHARS, "Error"),
            "message": clean_text(value.get("message"), MESSAGE_CHARS),
            "traceback": clean_text(value.get("traceback"), TRACEBACK_CHARS)}


def _names(value, known: tuple[str, ...] | None = None, most: int = 16) -> list[str]:
    """A list of short names; only `known` ones when given (in their order)."""
    if not isinstance(value, list):
        return []
    given = [clean_text(n, NAME_CHARS) for n in value[:most] if isinstance(n, str)]
    return [n for n in known if n in given] if known is not None else given


def _isolation(value) -> dict:
    """What the sandbox says it could confine: shown in the class report."""
    if not isinstance(value, dict):
        return {}
    accepted = {}
    for key, item in list(value.items())[:32]:
        if isinstance(item, list):
            item = [clean_text(n, OBSERVED_CHARS) for n in item[:32] if isinstance(n, str)]
        elif isinstance(item, str):
            item = clean_text(item, OBSERVED_CHARS)
        elif isinstance(item, int) and not isinstance(item, bool):
            item = _int(item, None)
        elif not (item is None or isinstance(item, (bool, float))):
            item = None
        accepted[clean_text(key, NAME_CHARS)] = item
    return accepted


def _observation(value, device: str, depth: int, budget: list[int]):
    """One observed value: plain data and tensors, bounded; raises Malformed."""
    if value is None or isinstance(value, (bool, float)):
        return value
    if isinstance(value, int):
        return _int(value, None)
    if isinstance(value, str):
        return clean_text(value, OBSERVED_CHARS)
    if depth >= OBSERVATION_DEPTH:
        raise Malformed("nested too deeply")
    if isinstance(value, list):
        if len(value) > OBSERVATION_ITEMS:
            raise Malformed(f"a list of {len(value)} items")
        return [_observation(v, device, depth + 1, budget) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            try:
                tensor = tensors.decode_tensor(value, device, max_elements=max(budget[0], 0))
            except (protocol.ProtocolError, ValueError, TypeError, RuntimeError) as error:
                raise Malformed(str(error)[:200]) from None
            budget[0] -= tensor.numel()
            return tensor
        if len(value) > OBSERVATION_KEYS:
            raise Malformed(f"a record of {len(value)} fields")
        return {clean_text(k, NAME_CHARS): _observation(v, device, depth + 1, budget) for k, v in value.items()}
    raise Malformed(f"a value of type {type(value).__name__}")


# ----------------------------------------------------------------------------- message level


def accept_ready(message: dict) -> dict:
    return {"event": Event.READY, "isolation": _isolation(message.get("isolation")), "pid": _int(message.get("pid"))}


def accept_cell(message: dict, index: int) -> dict:
    """A cell's result; `index` is where the grader is (a sandbox cannot renumber cells)."""
    status = message.get("status")
    status = status if status in CELL_STATUSES else "error"
    accepted = {"event": Event.CELL, "index": index, "status": status, "output": clean_text(message.get("output"), OUTPUT_CHARS)}
    if status != "ok":
        accepted["error"] = _error(message.get("error"))
    accepted["figures"] = _figures(message.get("figures"), len(accepted["output"]))
    return accepted


def _figures(value, output_chars: int) -> list[list]:
    """Where a cell showed figures (box/cells.py ShownFigures): [offset in its output, text]
    pairs, at most FIGURES per cell, offsets within the output and in order."""
    if not isinstance(value, list):
        return []
    accepted, last = [], 0
    for item in value[:FIGURES]:
        if isinstance(item, list) and len(item) == 2 and isinstance(item[1], str):
            last = min(max(_int(item[0]), last), output_chars)
            accepted.append([last, clean_text(item[1], FIGURE_CHARS)])
    return accepted


def accept_executed(message: dict) -> dict:
    return {"event": Event.EXECUTED, "defined": _names(message.get("defined"), STEP_FUNCTIONS)}


def accept_probe_reply(reply: dict, device: str) -> dict:
    """A probe's reply with its observations decoded; anything malformed becomes a crash status."""
    status = reply.get("status")
    if status not in PROBE_STATUSES:
        return {"status": "crashed", "reason": "the check's answer was malformed"}
    accepted = {"status": status, "output": clean_text(reply.get("output"), OUTPUT_CHARS)}
    if status == "ok":
        try:
            accepted["observations"] = _observation(reply.get("observations") or {}, device, 0, [REPLY_TENSOR_ELEMENTS])
        except Malformed as error:
            return {"status": "crashed", "reason": clean_text(f"the check's answer was malformed ({error})", REASON_CHARS)}
        if not isinstance(accepted["observations"], dict):
            return {"status": "crashed", "reason": "the check's answer was malformed"}
    elif status == "missing":
        accepted["missing"] = _names(reply.get("missing"), STEP_FUNCTIONS)
        accepted["why_missing"] = _why_missing(reply.get("why_missing"))
    elif status == "crashed":
        accepted["reason"] = clean_text(reply.get("reason"), REASON_CHARS)
    else:
        accepted["error"] = _error(reply.get("error"))
    if "defined" in reply:  # a clean room says which steps its definitions define
        accepted["defined"] = _names(reply.get("defined"), STEP_FUNCTIONS)
    cpu_s = reply.get("cpu_s")  # what the step used of the checks' budget: a finite number of seconds, or nothing
    if isinstance(cpu_s, (int, float)) and not isinstance(cpu_s, bool) and 0 <= cpu_s <= _MAX_SECONDS:
        accepted["cpu_s"] = float(cpu_s)
    return accepted


def _why_missing(value) -> dict:
    """Why a clean room (clean_room.py) lacks a step: the syntax error of the cell that defines
    it, a definition the room left out, or an error that stopped its cell before it (the
    statement that raised); `cell` is a code cell's index, or -1 with `file`."""
    if not isinstance(value, dict):
        return {}
    accepted = {}
    for name in STEP_FUNCTIONS:
        item = value.get(name)
        if isinstance(item, dict) and item.get("kind") in WHY_MISSING_KINDS:
            accepted[name] = {"kind": item["kind"], "cell": _int(item.get("cell"), -1), "line": _int(item.get("line")),
                              "file": clean_text(item.get("file"), NAME_CHARS), "message": clean_text(item.get("message"), MESSAGE_CHARS),
                              "statement": clean_text(item.get("statement"), STATEMENT_CHARS)}
    return accepted


# ----------------------------------------------------------------------------- the channel


@dataclass
class Inbox:
    """The grader's reading end of one sandbox's socket, with the submission's budget."""

    channel: protocol.Channel
    device: str = "cpu"
    total_bytes: int = SUBMISSION_BYTES
    used_bytes: int = 0
    allowed: dict[str, int] = field(default_factory=lambda: {Event.READY: 1})
    received: dict[str, int] = field(default_factory=dict)

    def allow(self, kind: str, count: int = 1) -> None:
        """The grader asked for `count` more messages of `kind`."""
        self.allowed[kind] = self.allowed.get(kind, 0) + count

    def receive(self, expected: tuple[str, ...], deadline: float) -> dict:
        """The next message, which must be one of `expected` kinds, complete by `deadline`
        (a time.monotonic() value). Raises TimeoutError, EOFError/OSError (the sandbox ended)
        or Violation; returns the message as its schema accepts it."""
        cap = min(max(MESSAGE_CAPS[kind] for kind in expected), self.total_bytes - self.used_bytes)
        try:
            body = protocol.read_frame(self.channel, deadline=deadline, max_bytes=max(cap, 0))
        except protocol.FrameTooLarge as error:
            raise Violation(self._over_budget(error.size, cap)) from None
        self.used_bytes += len(body) + protocol.HEADER.size
        try:
            message = protocol.parse_message(body)
        except protocol.ProtocolError as error:
            raise Violation(f"the notebook's process wrote something to the grader that is not a message ({error}); "
                            "the sandbox was stopped") from None
        kind = message.get("event")
        if kind not in expected:
            raise Violation(f"the notebook's process sent the grader a message it did not ask for "
                            f"(event {clean_text(kind, 40, '?')!r}); the sandbox was stopped")
        if len(body) > MESSAGE_CAPS[kind]:
            raise Violation(self._over_budget(len(body), MESSAGE_CAPS[kind]))
        if self.received.get(kind, 0) >= self.allowed.get(kind, 0):
            raise Violation(f"the notebook's process sent more {kind} messages than the grader asked for; "
                            "the sandbox was stopped")
        self.received[kind] = self.received.get(kind, 0) + 1
        if kind == Event.READY:
            return accept_ready(message)
        if kind == Event.CELL:
            return accept_cell(message, self.received[kind] - 1)
        if kind == Event.EXECUTED:
            return accept_executed(message)
        if kind == Event.DEFINED:
            return {"event": Event.DEFINED}
        return {"event": Event.PROBE, **accept_probe_reply(message, self.device)}

    def _over_budget(self, size: int, cap: int) -> str:
        if cap >= self.total_bytes - self.used_bytes:  # what was left of the submission's budget
            return (f"the notebook's process sent the grader more data than one submission may "
                    f"({self.total_bytes // MIB} MB in all); the sandbox was stopped")
        return (f"the notebook's process sent the grader a message of {size} bytes, where at most {cap} "
                "are accepted; the sandbox was stopped")
