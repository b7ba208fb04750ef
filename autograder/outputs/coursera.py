"""Coursera's custom-grader outputs for one submission: `/shared/feedback.json` and the HTML page
`/shared/htmlFeedback.html` (Coursera's demo repository, programming-assignments-demo,
custom-graders/v2: `{"fractionalScore": 0.0-1.0, "feedback": "...", "feedbackType": "HTML"}`;
with a feedbackType, learners see the page instead of the text).

* graded, or not gradable (not a notebook, no notebook, several): `fractionalScore` is the score as a
  fraction of the autograded points (the written answer is not graded here), `feedback` the
  per-check text, the page the kit's per-student feedback page (outputs/feedback_html.py);
* the grader itself failed (a check's status "error", the grader's own bound, a refusal, a crash):
  no `fractionalScore` at all, and a page that says it is not the learner's fault. Coursera's own
  tool (coursera_autograder `grade local`) rejects a feedback.json without one, and the entry
  point exits non-zero: Coursera reports a failed grading and records no score, where a 0 would be
  kept as the learner's result for that submission.

Coursera cuts feedback at 64 KB: both the text and the page are kept within `CAP_BYTES` of UTF-8.
A page that would be larger is rendered again with shorter messages and fewer notes, saying so
(the text is escaped on rendering, so a cut never breaks the page); the text is cut with a note.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.results import SubmissionResult, zero_result
from autograder.model.sanitize import clean_text
from autograder.model.status import CheckStatus, SubmissionStatus
from autograder.outputs.feedback_html import environment, render_feedback

CAP_BYTES = 64_000  # Coursera: "We'll trim/truncate grader feedback string to 64 KB"
FEEDBACK_FILE, PAGE_FILE = "feedback.json", "htmlFeedback.html"
CUT_NOTE = "Part of this feedback was shortened to fit the 64 KB of feedback that Coursera shows."
NOT_YOUR_FAULT = ("The grader itself failed on this submission. This is not a problem with your work, and no grade "
                  "was recorded for it: please submit again later, and tell the course staff if it happens again.")
# (characters kept of each message, notes kept): tried in turn until the page fits
_SHORTER = ((None, None), (4_000, 40), (1_000, 20), (300, 10), (100, 5), (0, 0))
_FAILURE_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Not graded: {{ assignment }}</title>
<style>body { font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.4; color: #222; }</style>
</head>
<body>
<h1>Not graded: {{ assignment }}</h1>
<p><b>{{ message }}</b></p>
</body>
</html>
"""


def _fmt(value: float) -> str:
    return f"{float(value):g}"


def grader_failure(result: SubmissionResult) -> str:
    """Why a result is the grader's fault rather than the learner's ("" when it is not): a check
    that ended in "error" (the grader failed on it; its detail is for staff only)."""
    errors = [check.name for check in result.checks if check.status == CheckStatus.ERROR]
    return f"the grader failed on the check(s) {', '.join(errors)}" if errors else ""


def json_size(text: str) -> int:
    """Bytes of `text` as a JSON string in feedback.json (UTF-8, as the entry point writes it)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _cut_text(text: str, cap: int = CAP_BYTES) -> str:
    """`text`, or its beginning and a note, within `cap` bytes as written in feedback.json."""
    if json_size(text) <= cap:
        return text
    note = f"\n\n[{CUT_NOTE}]"
    keep = len(text)
    while keep and json_size(text[:keep] + note) > cap:
        keep = keep * (cap - json_size(note)) // json_size(text[:keep]) if keep > 1 else 0
    return text[:keep] + note


def feedback_text(result: SubmissionResult, assignment: Assignment) -> str:
    """The per-check text (learners see it where the page is not shown), within the cap."""
    lines = [f"Not graded: {result.not_graded}."] if result.not_graded else []
    lines.append(f"Autograded score: {_fmt(result.score)}/{_fmt(result.max_score)}.")
    if not result.not_graded:  # a result that was not graded has only that reason as its note
        lines.extend(result.student_notes)
    for check in result.checks:
        lines.append(f"{check.name}: {_fmt(check.score)}/{_fmt(check.max_score)} {check.status}")
        if check.status != CheckStatus.PASSED and check.feedback and not result.not_graded:
            lines.extend("    " + line for line in check.feedback.splitlines())
    return _cut_text(clean_text("\n".join(lines), 4 * CAP_BYTES))


def _page(result: SubmissionResult, assignment: Assignment, student: str) -> str:
    """The kit's feedback page for `result`, within the cap (messages shortened if need be)."""
    graded_at = datetime.now(UTC)
    status = SubmissionStatus.NOT_GRADED if result.not_graded else SubmissionStatus.GRADED
    for chars, notes in _SHORTER:
        shown = result
        if chars is not None:
            def short(text: str, chars: int = chars) -> str:
                return text if len(text) <= chars else text[:chars] + " [...]"
            kept = [short(note) for note in result.student_notes[:notes]]
            dropped = len(result.student_notes) - len(kept)
            shown = dataclasses.replace(
                result, checks=[dataclasses.replace(c, feedback=short(c.feedback)) for c in result.checks],
                notes=[CUT_NOTE, *kept, *([f"... and {dropped} more notes."] if dropped else [])], cell_notes=[])
        record = GradedSubmission(student=student, assignment=assignment.name, notebook=None, content_hash="",
                                  timestamp=None, late=False, status=status, reason=result.not_graded or "",
                                  result=shown, graded_at=graded_at)
        page = render_feedback(record, assignment)
        if len(page.encode("utf-8")) <= CAP_BYTES:
            return page
    return _failure_page(assignment, CUT_NOTE)  # never reached: six checks and no notes fit


def _failure_page(assignment: Assignment, message: str) -> str:
    return environment().from_string(_FAILURE_PAGE).render(assignment=assignment.name, message=message)


def to_coursera(result: SubmissionResult, assignment: Assignment, *, failure: str = "", student: str = "") -> dict:
    """What the entry point writes and logs for `result`:

    {"feedback": feedback.json's object, "html": the page, "graded": False for a grader failure
     (no fractionalScore), "staff": what only the course staff should read (stderr)}

    `failure` says why the grader itself failed (else derived from the result); the learner is
    told only that it is not their fault."""
    failure = failure or grader_failure(result)
    autograded = dataclasses.replace(assignment, manual_checks={})  # the written answer is not graded here
    staff = {"confinement": result.isolation.get("level", ""), "status": "failed" if failure else
             ("not graded" if result.not_graded else "graded"), "score": result.score, "max_score": result.max_score}
    if failure:
        staff["failure"] = failure
        return {"feedback": {"feedback": NOT_YOUR_FAULT, "feedbackType": "HTML"},
                "html": _failure_page(assignment, NOT_YOUR_FAULT), "graded": False, "staff": staff}
    fraction = round(result.score / result.max_score, 6) if result.max_score else 0.0
    return {"feedback": {"fractionalScore": min(1.0, max(0.0, fraction)), "feedback": feedback_text(result, autograded),
                         "feedbackType": "HTML"},
            "html": _page(result, autograded, student), "graded": True, "staff": staff}


def not_graded(assignment: Assignment, reason: str) -> dict:
    """`to_coursera` of a submission that cannot be graded (no notebook, several, not a notebook):
    0, with the reason."""
    return to_coursera(zero_result(assignment.checks, f"Not graded: {reason}.", [f"Not graded: {reason}."],
                                   not_graded=reason), assignment)


def failed(assignment: Assignment, why: str) -> dict:
    """`to_coursera` when the grader itself failed (`why` is for staff only): no score."""
    return to_coursera(zero_result(assignment.checks, NOT_YOUR_FAULT), assignment, failure=why)
