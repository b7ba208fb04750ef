"""Every status a result can carry, as enums (StrEnum: they serialise as their plain values, so
stored records and JSON outputs keep the same strings)."""
from __future__ import annotations

from enum import StrEnum


class CheckStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # the student's work was judged and lost points
    ERROR = "error"  # the grader itself failed on this check: staff must look


class SubmissionStatus(StrEnum):
    GRADED = "graded"  # the notebook ran and every check was scored
    NOT_GRADED = "not graded"  # nothing gradable (no folder, not a notebook, ...): 0 with a reason
    # The grader failed on it, again with fresh processes (a worker, zygote or check session that
    # died or hung, a check that errored): it has no score, and the next run grades it again.
    GRADER_ERROR = "grader error"

    @classmethod
    def _missing_(cls, value):
        return cls.GRADER_ERROR if value == "failed" else None  # what records stored before 2026-12 say
