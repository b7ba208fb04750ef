"""The one shape of error the grader explains to people: its `reason` is a sentence for the
student and the TA, and it ends up in their feedback as it is."""
from __future__ import annotations


class ExplainedError(Exception):
    """An error that carries its reason in words (`str(error)` is the same text)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason
