"""The student's steps as the checks see them: `student.probe(...)` runs a probe on the
submission and returns its observations, or raises `Feedback` that says why the step could not
be tested (missing, broken by a syntax error, still the stub, raised, hung, crashed) and names
the step at fault, found in the student's traceback.

A check that runs several steps (gradient, final_loss) says briefly what another step's own
check explains in full ("Not tested yet: this check runs your `forward`, which is still the
stub"), and names the step an exception came from (blame.py).

When the submission offers clean rooms (`open_room`, sandbox/grader/rooms.py), the check's probes
run in a room of its own, opened on the first probe and closed when the check ends (`close`,
called by the `student` fixture). Cell names in tracebacks are turned into the labels a student
can find in Jupyter (notebook/cell_names.py). What came from the sandbox reaches the message in
code spans and blocks (model/markdown_text.py)."""
from __future__ import annotations

import re

from autograder.assignment import PYTORCH_SLOPE
from autograder.checks.blame import OWN_CHECK, RUNS, blame_line
from autograder.feedback.misconceptions import MISCONCEPTIONS, Feedback, misconception_for_error
from autograder.model.markdown_text import code_block, code_span
from autograder.notebook.cell_names import label_of, relabel
from autograder.sandbox.grader.box_client import BoxDied

STEPS = PYTORCH_SLOPE.student_functions
_FRAME = re.compile(r'File "[^"\n]{0,300}", line \d{1,9}, in (\w{1,200})')
SOURCE_LINE_CHARS = 200


def step_in_traceback(traceback: str, steps=STEPS) -> str | None:
    """The step a student's traceback went through first (its outermost frame in one of
    `steps`): the step at fault, even when the error was raised in a helper it called."""
    return next((name for name in _FRAME.findall(traceback) if name in steps), None)


class Student:
    def __init__(self, submission, check: str = ""):
        self.submission, self.check = submission, check
        self.labels = list(getattr(submission, "labels", None) or [])
        self.cells: list[str] = list(getattr(submission, "cells", None) or [])  # to show a syntax error's line
        self.files: dict = dict(getattr(submission, "files", None) or {})
        self._room = None

    def _target(self):
        open_room = getattr(self.submission, "open_room", None)
        if open_room is None:
            return self.submission
        if self._room is None:
            self._room = open_room()
        return self._room

    def close(self) -> None:
        if self._room is not None:
            self._room.close()
            self._room = None

    def _elsewhere(self, step: str | None) -> bool:
        """Whether `step` is explained by another check than this one (this check runs it too)."""
        return bool(step and self.check and OWN_CHECK.get(step, self.check) != self.check)

    def _runs(self) -> str:
        return RUNS.get(self.check, "several of your steps")

    def probe(self, name: str, *, step: str, **inputs) -> dict:
        try:
            reply = self._target().probe(name, inputs)
        except BoxDied as died:
            raise Feedback("sandbox_died", detail=died.reason[:1].upper() + died.reason[1:] + ".") from None
        status = reply["status"]
        if status == "ok":
            return reply["observations"]
        error = reply.get("error") or {}
        if status == "missing":
            self._missing(reply)
        raw = str(error.get("traceback") or "")
        trace, culprit = relabel(raw, self.labels), step_in_traceback(raw)
        message = str(error.get("message", ""))
        # A stub is the student's own NotImplementedError; PyTorch raises one for an operator a
        # dtype lacks ("rshift_cpu" not implemented for 'Float'): that is an error in their code.
        if status == "not_implemented" and "not implemented for" not in message:
            if self._elsewhere(culprit):
                raise Feedback("not_implemented", step=culprit, explanation=(
                    f"Not tested yet: this check runs your `{culprit}`, which is still the stub "
                    f"(the `{OWN_CHECK[culprit]}` check says what to do)."))
            raise Feedback("not_implemented", detail=f"Step: {code_span(step)}.", step=culprit)
        if status == "timeout":
            self._fail("timeout", culprit, "did not return", f"Step: {code_span(step)}; {message}.")
        if status == "crashed":
            self._fail("crashed", culprit, "ended its process", f"Step: {code_span(step)}; {reply.get('reason', '')}.")
        text = f"{error.get('type', 'Error')}: {relabel(message, self.labels)}"
        if 'File "' in raw:
            said = f"Calling {code_span(step)} raised:{code_block(trace)}"
        else:  # no line of the student's: the provided code failed on what a step gave back (blame.py says which)
            said = (f"Calling {code_span(step)} raised this error in the provided code, not in a line of yours, "
                    f"because of what one of your steps gave back:{code_block(trace or text)}")
        self._fail(misconception_for_error(text), culprit, "raised an error", said)

    def _fail(self, misconception: str, culprit: str | None, happened: str, detail: str):
        """Raise the failure of a probe, blamed on `culprit` first if another check explains it."""
        explanation = None
        if self._elsewhere(culprit):
            explanation = blame_line(culprit, self._runs(), happened=happened) + "\n\n" + MISCONCEPTIONS[misconception]
        raise Feedback(misconception, detail=detail, step=culprit, explanation=explanation)

    def _missing(self, reply: dict) -> None:
        missing = reply.get("missing", [])
        why = reply.get("why_missing") or {}
        elsewhere = [name for name in missing if self._elsewhere(name)]
        if elsewhere and len(elsewhere) == len(missing):  # another check explains each of them
            names = _listed([f"`{name}`" for name in elsewhere])
            checks = _listed([f"`{OWN_CHECK[name]}`" for name in elsewhere])
            broken = [name for name in elsewhere if (why.get(name) or {}).get("kind") == "syntax_error"]
            misconception = "syntax_error" if broken else "missing_function"
            one = len(elsewhere) == 1
            reason = (("its cell has" if one else "their cells have") + " a syntax error" if broken
                      else "your notebook does not define " + ("it" if one else "them"))
            raise Feedback(misconception, step=elsewhere[0], explanation=(
                f"Not tested yet: this check runs your {names}, which {'is' if len(elsewhere) == 1 else 'are'} "
                f"missing: {reason} (the {checks} check{'s say' if len(elsewhere) > 1 else ' says'} more)."))
        for name in missing:
            reason = why.get(name)
            if reason and reason["kind"] == "syntax_error":
                where = code_span(reason["file"]) if reason.get("file") else label_of(reason["cell"], self.labels)
                line = self._source_line(reason)
                raise Feedback("syntax_error", step=name, detail=(
                    f"`{name}` is missing because {where} has a syntax error at line {reason['line']} "
                    f"({code_span(reason['message'])}), so none of it ran" + (f":{code_block(line)}" if line else ".")))
        details = []
        for name in missing:
            reason = why.get(name)
            if not reason or reason["kind"] not in ("refused", "raised"):
                continue
            where = code_span(reason["file"]) if reason.get("file") else label_of(reason["cell"], self.labels)
            said = code_span(relabel(reason["message"], self.labels))
            if reason["kind"] == "refused":
                details.append(f"`{name}` in {where} (line {reason['line']}) was not used by the checks: {said}.")
            else:  # the statement that stopped its cell while the room made the definitions
                shown = code_span(reason["statement"]) if reason.get("statement") else ""
                statement = f" ({shown})" if shown and shown not in where else ""  # a cell's label may show it
                details.append(f"`{name}` was not defined for the checks: in {where}, line {reason['line']}{statement} "
                               f"raised {said}, so the rest of that code did not run.")
        found = ", ".join(f"`{name}`" for name in missing)
        raise Feedback("missing_function", detail=" ".join([f"Not found: {found}.", *details]),
                       step=missing[0] if missing else None)

    def _source_line(self, reason: dict) -> str:
        """The line a syntax error names, from the grader's copy of the cell or submitted file."""
        if reason.get("file"):
            data = self.files.get(reason["file"])
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else ""
        else:
            cell = reason.get("cell", -1)
            text = self.cells[cell] if 0 <= cell < len(self.cells) else ""
        lines = text.splitlines()
        number = reason.get("line", 0)
        return lines[number - 1][:SOURCE_LINE_CHARS] if 0 < number <= len(lines) else ""


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
