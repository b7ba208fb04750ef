"""The student's steps as the checks see them: `student.probe(...)` runs a probe on the
submission and returns its observations, or raises `Feedback` that says why the step could not
be tested (missing, not implemented, raised, hung, crashed)."""
from __future__ import annotations

from autograder.feedback.misconceptions import Feedback, misconception_for_error
from autograder.sandbox.client import SandboxDied


class Student:
    def __init__(self, submission):
        self.submission = submission

    def probe(self, name: str, *, step: str, **inputs) -> dict:
        try:
            reply = self.submission.probe(name, inputs)
        except SandboxDied as died:
            raise Feedback("sandbox_died", detail=died.reason[:1].upper() + died.reason[1:] + ".") from None
        status = reply["status"]
        if status == "ok":
            return reply["observations"]
        error = reply.get("error") or {}
        if status == "missing":
            missing = ", ".join(f"`{name}`" for name in reply.get("missing", []))
            raise Feedback("missing_function", detail=f"Not found: {missing}.")
        if status == "not_implemented":
            raise Feedback("not_implemented", detail=f"Step: {step}.")
        if status == "timeout":
            raise Feedback("timeout", detail=f"Step: {step}; {error.get('message', '')}.")
        if status == "crashed":
            raise Feedback("crashed", detail=f"Step: {step}; {reply.get('reason', '')}.")
        text = f"{error.get('type', 'Error')}: {error.get('message', '')}"
        misconception = misconception_for_error(text)
        trace = error.get("traceback") or text
        raise Feedback(misconception, detail=f"Calling {step} raised:\n{trace}")
