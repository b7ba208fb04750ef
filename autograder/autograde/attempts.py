"""Whose fault an attempt at grading one submission was: the grader's, or the submission's.

A grade must depend on the notebook alone. So an attempt that ended in a fault of the grader
(its worker died, hung or was stopped, its zygote did not start, its pytest session died, a check
raised something other than feedback) is not kept: the pool (workers.py) makes it again with a
fresh worker, zygote and pytest session, up to MAX_ATTEMPTS in all. A fault that comes back every
time follows the submission; it is still never a score: the record says "grader error", and the
next run grades it again.

What the submission's own code does (it hangs, exits, exhausts a limit, kills its box) is judged
inside an attempt, check by check, and is no fault of the grader's.

A clean room found tampered with (grader/room_integrity.py) costs the submission its checks, yet
no student code runs while a room is made: what was found could be the grader's processes'
doing (a zygote that inherited an ignored signal did exactly that). Such an attempt is made once
more with fresh processes; found again, it follows the submission and stands.
"""
from __future__ import annotations

from autograder.model.status import CheckStatus

MAX_ATTEMPTS = 3  # attempts per submission and run: the first and two retries, each with fresh processes
TAMPERED_ROOM = "clean room: "  # how rooms.py's integrity flags begin


def grader_fault(ok: bool, result: dict | None, reason: str = "") -> str | None:
    """Why an attempt (a worker's answer: `ok`, SubmissionResult.to_dict() or the failure's
    `reason`) was the grader's fault, in words; None if it was not."""
    if not ok:
        return reason or "the grader failed"
    errors = [check.get("name", "?") for check in (result or {}).get("checks", ()) if check.get("status") == CheckStatus.ERROR]
    if errors:
        return "the grader failed in the check" + ("s " if len(errors) > 1 else " ") + ", ".join(errors)
    return None


def suspect(result: dict | None) -> str | None:
    """Why an attempt that the grader completed should be made once more with fresh processes
    (a clean room found tampered with), in words; None if it stands."""
    flags = [flag for flag in (result or {}).get("integrity", ()) if isinstance(flag, str) and flag.startswith(TAMPERED_ROOM)]
    return f"a clean room was found tampered with ({flags[0].removeprefix(TAMPERED_ROOM)})" if flags else None
