"""The student's steps as the checks see them: `student.probe(...)` runs a probe on the
submission and returns its observations, or raises `Feedback` that says why the step could not
be tested (missing, broken by a syntax error, not implemented, raised, hung, crashed).

When the submission offers clean rooms (`open_room`, sandbox/rooms.py), the check's probes run
in a room of its own, opened on the first probe and closed when the check ends (`close`, called
by the `student` fixture). Cell names in tracebacks are turned into the labels a student can
find in Jupyter (notebook/cell_names.py)."""
from __future__ import annotations

from autograder.feedback.misconceptions import Feedback, misconception_for_error
from autograder.notebook.cell_names import label_of, relabel
from autograder.sandbox.grader.box_client import BoxDied


class Student:
    def __init__(self, submission):
        self.submission = submission
        self.labels: list[str] = list(getattr(submission, "labels", None) or [])
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
        # A stub is the student's own NotImplementedError; PyTorch raises one for an operator a
        # dtype lacks ("rshift_cpu" not implemented for 'Float'): that is an error in their code.
        if status == "not_implemented" and "not implemented for" not in str(error.get("message", "")):
            raise Feedback("not_implemented", detail=f"Step: {step}.")
        if status == "timeout":
            raise Feedback("timeout", detail=f"Step: {step}; {error.get('message', '')}.")
        if status == "crashed":
            raise Feedback("crashed", detail=f"Step: {step}; {reply.get('reason', '')}.")
        text = f"{error.get('type', 'Error')}: {relabel(error.get('message', ''), self.labels)}"
        misconception = misconception_for_error(text)
        trace = relabel(error.get("traceback") or "", self.labels) or text
        raise Feedback(misconception, detail=f"Calling {step} raised:\n{trace}")

    def _missing(self, reply: dict) -> None:
        missing = reply.get("missing", [])
        why = reply.get("why_missing") or {}
        for name in missing:
            reason = why.get(name)
            if reason and reason["kind"] == "syntax_error":
                where = f"`{reason['file']}`" if reason.get("file") else label_of(reason["cell"], self.labels)
                raise Feedback("syntax_error", detail=f"`{name}` is missing because {where} has a syntax error at "
                                                      f"line {reason['line']} ({reason['message']}), so none of it ran.")
        details = []
        for name in missing:
            reason = why.get(name)
            if reason and reason["kind"] == "refused":
                where = f"`{reason['file']}`" if reason.get("file") else label_of(reason["cell"], self.labels)
                details.append(f"`{name}` in {where} (line {reason['line']}) was not used by the checks: {reason['message']}.")
        found = ", ".join(f"`{name}`" for name in missing)
        raise Feedback("missing_function", detail=" ".join([f"Not found: {found}.", *details]))
