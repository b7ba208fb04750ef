"""The batch's memory between runs: an sqlite file in the course directory
(`COURSE/.autograde-state.sqlite`) with one row per (assignment, student): the content hash that
was graded and the whole record as JSON.

Only the parent process writes it, one transaction per finished submission (WAL journal,
synchronous=FULL), so a run killed at any point loses at most the submissions still in flight;
the next run grades what is missing or changed and skips the rest. Every grading is also
appended to `gradings`, which is how "graded again or not" can be checked afterwards, and every
score a regrade changed to `score_changes` (outputs/regrades.py), in the same transaction as the
record that changed it. A record whose grader failed ("grader error") is never current: the next
run grades it again.

A stored record is text a submission once controlled: it is cleaned (model/sanitize.py) when
stored and again when read, so a record written by an older grader cannot stop a run.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from autograder.model.records import GRADER_ERROR, GradedSubmission
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
CREATE TABLE IF NOT EXISTS last_judged (
    assignment TEXT NOT NULL,
    student TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (assignment, student)
);
CREATE TABLE IF NOT EXISTS score_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    assignment TEXT NOT NULL,
    run_id TEXT NOT NULL,
    change TEXT NOT NULL
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
        for student, digest, text in rows:
            record = _record(text)
            if record is not None:  # a row this version cannot read is graded again
                stored[student] = (digest, record)
        return stored

    def last_judged(self, assignment: str) -> dict[str, GradedSubmission]:
        """student -> the last record of `assignment` that holds scores (graded, or not gradable):
        what a regrade compares with, across records the grader failed on (they hold none)."""
        rows = self.db.execute("SELECT student, record FROM last_judged WHERE assignment = ?", (assignment,))
        return {student: record for student, record in ((s, _record(text)) for s, text in rows) if record is not None}

    def is_current(self, stored: tuple[str, GradedSubmission] | None, content_hash: str, grader: str) -> bool:
        """Whether a stored result can stand for a submission with this hash, graded by this grader."""
        return (stored is not None and stored[0] == content_hash and stored[1].status != GRADER_ERROR
                and stored[1].grader == grader)

    def save(self, record: GradedSubmission, run_id: str, changes: list[dict] = ()) -> None:
        """Store one finished submission and the score `changes` it made (plain dicts), durably, in
        one transaction."""
        now = datetime.now(UTC).isoformat()
        with self.db:  # sqlite3's context manager: BEGIN ... COMMIT (or ROLLBACK)
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute(
                "INSERT OR REPLACE INTO submissions VALUES (?, ?, ?, ?, ?, ?)",
                (record.assignment, record.student, record.content_hash, record.status,
                 json.dumps(clean_plain(record.to_dict())), now))
            if record.status != GRADER_ERROR:
                self.db.execute("INSERT OR REPLACE INTO last_judged VALUES (?, ?, ?)",
                                (record.assignment, record.student, json.dumps(clean_plain(record.to_dict()))))
            self.db.execute(
                "INSERT INTO gradings (assignment, student, content_hash, status, score, run_id, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (record.assignment, record.student, record.content_hash, record.status, record.score, run_id, now))
            self.db.executemany(
                "INSERT INTO score_changes (assignment, run_id, change) VALUES (?, ?, ?)",
                [(record.assignment, run_id, json.dumps(clean_plain(change))) for change in changes])

    def score_changes(self, assignment: str) -> list[dict]:
        """Every score change stored for `assignment`: the newest run's first, each run's in the order made."""
        changes = []
        for (text,) in self.db.execute(
                "SELECT change FROM score_changes WHERE assignment = ? ORDER BY run_id DESC, id", (assignment,)):
            try:
                change = clean_plain(json.loads(text))
            except (ValueError, RecursionError):
                continue
            if isinstance(change, dict):
                changes.append(change)
        return changes

    def gradings(self, assignment: str) -> list[tuple[str, str, str]]:
        """(student, run id, status) of every grading ever stored for `assignment`, in order."""
        return list(self.db.execute(
            "SELECT student, run_id, status FROM gradings WHERE assignment = ? ORDER BY id", (assignment,)))

    def close(self) -> None:
        self.db.close()


def _record(text: str) -> GradedSubmission | None:
    try:
        return GradedSubmission.from_dict(clean_plain(json.loads(text)))
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None
