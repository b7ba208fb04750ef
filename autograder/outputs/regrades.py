"""Staff-only: what regrading changed. After `--force`, a new grader (a fixed check, another torch,
device or limits), a new term or a resubmission, a TA needs to see whose score moved, on which
check, from what to what, and why, before students do.

Each time a run replaces a student's stored record, `score_changes` compares the two: one entry
per check whose score differs, with why the student was graded again ("submission changed",
"term changed", "grader changed", or "graded again, nothing changed" for `--force` on the same
submission and grader). The batch stores the entries with the new record (autograde/state.py) and
writes every stored entry, newest first, to `COURSE/reports/<assignment>/score-changes.csv` (beside
the staff report, never in the students' feedback folders); the summary counts this run's.

The term comes from each record's `extra["term"]` (the term of `autograder/grading.json` when it
was graded) and the grader from its `grader` fingerprint, which covers the term's files too, so a
new term is named as such and not also as a new grader.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus, SubmissionStatus
from autograder.outputs.atomic import write_atomic
from autograder.outputs.csv_report import as_text_cell
from autograder.outputs.feedback_html import safe_dir_name
from autograder.outputs.formats import utc_text

SUBMISSION, TERM, GRADER, NOTHING = "submission changed", "term changed", "grader changed", "graded again, nothing changed"
REASONS = (SUBMISSION, TERM, GRADER, NOTHING)
SCORE_CHANGES = "score-changes.csv"
COLUMNS = ["run", "student", "check", "old", "new", "why", "previously graded", "graded"]
_JUDGED = (SubmissionStatus.GRADED, SubmissionStatus.NOT_GRADED)  # records whose scores stand in the gradebook


def why_regraded(old: GradedSubmission, new: GradedSubmission) -> list[str]:
    """Why `new` replaced `old`, in REASONS' words."""
    reasons = []
    if old.content_hash != new.content_hash:
        reasons.append(SUBMISSION)
    old_term, new_term = old.extra.get("term"), new.extra.get("term")
    if old_term and new_term and old_term != new_term:
        reasons.append(TERM)
    elif old.grader != new.grader:
        reasons.append(GRADER)
    return reasons or [NOTHING]


def _scores(record: GradedSubmission) -> dict[str, float]:
    """The check scores a record holds (none for a check the grader could not judge)."""
    return {c.name: float(c.score) for c in record.result.checks if c.status != CheckStatus.ERROR} if record.result else {}


def score_changes(old: GradedSubmission | None, new: GradedSubmission, run_id: str) -> list[dict]:
    """One entry per check whose score differs from `old` (the student's stored record, if any)
    to `new`; none where either holds no score (a grader error)."""
    if old is None or old.status not in _JUDGED or new.status not in _JUDGED:
        return []
    before, after = _scores(old), _scores(new)
    why = "; ".join(why_regraded(old, new))
    return [{"run": run_id, "student": new.student, "check": name, "old": before[name], "new": after[name], "why": why,
             "previously graded": utc_text(old.graded_at), "graded": utc_text(new.graded_at)}
            for name in after if name in before and before[name] != after[name]]


def count_reasons(changes: list[dict]) -> dict[str, int]:
    """Students per reason among `changes` (a student counted once per reason)."""
    students = Counter()
    for reason in REASONS:
        students[reason] = len({c["student"] for c in changes if reason in str(c.get("why", "")).split("; ")})
    return {reason: students[reason] for reason in REASONS}


def score_changes_path(course_dir: Path, assignment: Assignment) -> Path:
    return Path(course_dir) / "reports" / safe_dir_name(assignment.name) / SCORE_CHANGES


def write_score_changes(course_dir: Path, assignment: Assignment, changes: list[dict]) -> Path:
    """Every stored change (newest first) as a CSV for staff; returns its path."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for change in changes:
        writer.writerow({**change, "student": as_text_cell(str(change.get("student", ""))),
                         "old": f"{float(change.get('old', 0)):g}", "new": f"{float(change.get('new', 0)):g}"})
    return write_atomic(score_changes_path(course_dir, assignment), buffer.getvalue())
