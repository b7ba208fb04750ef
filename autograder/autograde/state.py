"""The batch's memory between runs: an sqlite file in the course directory
(`COURSE/.autograde-state.sqlite`) with one row per (assignment, student): the content hash that
was graded and the whole record as JSON.

Only the parent process writes it, one transaction per finished submission (WAL journal,
synchronous=FULL), so a run killed at any point loses at most the submissions still in flight;
the next run grades what is missing or changed and skips the rest. Every grading is also
appended to `gradings`, which is how "graded again or not" can be checked afterwards, and how
many times in a row one submission has made its grader fail (`failed_attempts`).

A stored record is text a submission once controlled: it is cleaned (model/sanitize.py) when
stored and again when read, so a record written by an older grader cannot stop a run.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from autograder.model.records import FAILED, GradedSubmission
from autograder.model.sanitize import clean_plain

STATE_FILE = ".autograde-state.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS submissions (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (assignment, student)
);
CREATE TABLE IF NOT EXISTS gradings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    status TEXT NOT NULL,
    score REAL NOT NULL,
    run_id TEXT NOT NULL,
    finished_at TEXT NOT NULL
);
"""


class State:
    def __init__(self, course_dir: Path):
        self.path = Path(course_dir) / STATE_FILE
        self.db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)

    def load(self, assignment: str) -> dict[str, tuple[str, GradedSubmission]]:
        """student -> (content hash, record) of everything stored for `assignment`."""
        rows = self.db.execute(
            "SELECT student, content_hash, record FROM submissions WHERE assignment = ?", (assignment,))
        stored = {}
        for student, digest, record in rows:
            try:
                stored[student] = (digest, GradedSubmission.from_dict(clean_plain(json.loads(record))))
            except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
                continue  # a row this version cannot read is graded again
        return stored

    def is_current(self, stored: tuple[str, GradedSubmission] | None, content_hash: str, grader: str) -> bool:
        """Whether a stored result can stand for a submission with this hash, graded by this grader."""
        return (stored is not None and stored[0] == content_hash and stored[1].status != FAILED
                and stored[1].grader == grader)

    def save(self, record: GradedSubmission, run_id: str) -> None:
        """Store one finished submission, durably, in one transaction."""
        now = datetime.now(UTC).isoformat()
        with self.db:  # sqlite3's context manager: BEGIN ... COMMIT (or ROLLBACK)
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?, ?, ?)",
                (record.assignment, record.student, record.content_hash, record.status,
                 json.dumps(clean_plain(record.to_dict())), now))
            self.db.execute(
                "INSERT INTO gradings (assignment, student, content_hash, status, score, run_id, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.assignment, record.student, record.content_hash, record.status, record.score, run_id, now))

    def failed_attempts(self, assignment: str, student: str, content_hash: str) -> int:
        """How many of this student's latest gradings, in a row, failed on this same content."""
        rows = self.db.execute(
            "SELECT content_hash, status FROM gradings WHERE assignment = ? AND student = ? ORDER BY id DESC",
            (assignment, student))
        count = 0
        for digest, status in rows:
            if digest != content_hash or status != FAILED:
                break
            count += 1
        return count

    def gradings(self, assignment: str) -> list[tuple[str, str, str]]:
        """(student, run id, status) of every grading ever stored for `assignment`, in order."""
        return list(self.db.execute(
            "SELECT student, run_id, status FROM gradings WHERE assignment = ? ORDER BY id", (assignment,)))

    def close(self) -> None:
        self.db.close()
