"""Which release a submission was made from, so it is graded with that term's cells and secret.

`KnownReleases` holds the current release (read from release/<assignment>/) and every earlier one
(autograder/earlier_releases.json, terms.py), with each term's grading secret. `match` picks the
release whose locked cells the submission holds unchanged the most of: a notebook of the 2026-fall
release holds that term's `parameters` cell, which no other term's release has. A notebook that
shares no locked cell with any release, or as many with releases of two terms (its parameters
cell edited, say), matches none: it is graded against the current release and named for the TA.
"""
from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from autograder.assignment import Assignment
from autograder.notebook.cell_names import cell_source, grade_id_of
from autograder.terms import EARLIER_RELEASES_FILE, GRADING_FILE, ReleaseCells, read_earlier_releases, read_secrets


def cells_of(notebook, term: str) -> ReleaseCells:
    """A release notebook's cells that grading needs (see ReleaseCells)."""
    locked, answers = {}, {}
    for cell in notebook.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = grade_id_of(cell)
        if not grade_id:
            continue
        if cell.get("cell_type") == "code" and meta.get("locked"):
            locked[grade_id] = cell_source(cell)
        elif meta.get("grade") and meta.get("solution") and not meta.get("locked"):  # nbgrader's manually graded answer
            answers[grade_id] = cell_source(cell)
    return ReleaseCells(term, locked, answers)


def release_cells(release_notebook: Path, term: str) -> ReleaseCells:
    """`cells_of` the release notebook file, parsed once per version of the file."""
    try:
        info = Path(release_notebook).stat()
    except OSError:
        return ReleaseCells(term, {})
    return _release_cells(str(release_notebook), term, info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=4)
def _release_cells(path: str, term: str, _mtime_ns: int, _size: int) -> ReleaseCells:
    return cells_of(nbformat.read(path, as_version=4), term)


@dataclass(frozen=True)
class KnownReleases:
    current: ReleaseCells
    earlier: tuple[ReleaseCells, ...] = ()
    secrets: Mapping[str, str] = field(default_factory=dict)  # term -> grading secret (hex)

    @classmethod
    def single(cls, release_notebook: Path) -> KnownReleases:
        """One release notebook alone, with no secret (to load a submission, not to grade it)."""
        return cls(release_cells(release_notebook, ""))

    @property
    def all(self) -> tuple[ReleaseCells, ...]:
        return (self.current, *self.earlier)

    def match(self, notebook) -> ReleaseCells | None:
        """The release `notebook` (a parsed, unrestored submission) was made from, or None."""
        held = {grade_id_of(c): cell_source(c) for c in notebook.cells if c.get("cell_type") == "code" and grade_id_of(c)}
        scores = [(sum(held.get(gid) == source for gid, source in release.locked.items()), release) for release in self.all]
        best = max(score for score, _ in scores)
        if best == 0:
            return None
        tied = [release for score, release in scores if score == best]
        if len({release.term for release in tied}) > 1:
            return None
        return tied[0] if self.current in tied else tied[-1]  # of one term: the current, else the newest

    def secret(self, term: str) -> str:
        try:
            return self.secrets[term]
        except KeyError:
            raise KeyError(f"no grading secret for term {term!r} in {GRADING_FILE.name}") from None

    def by_id(self, release_id: str) -> ReleaseCells | None:
        return next((r for r in self.all if r.id == release_id), None)

    def fingerprint(self, grader: str, release_id: str, matched: bool) -> str | None:
        """The fingerprint of a grade made by `grader` (assignment.grader_fingerprint) against the
        release `release_id`: it covers that release's cells and its term's secret. A submission
        that matched no release was graded against the current one, so its grade goes stale with
        the current release. None: that release is no longer known (its grade is stale)."""
        release = self.current if not matched else self.by_id(release_id)
        if release is None or release.term not in self.secrets:
            return None
        digest = hashlib.sha256(f"{grader}\0{release.id}\0{self.secrets[release.term]}\0{matched}".encode())
        return digest.hexdigest()


def known_releases(assignment: Assignment, grading_file: Path = GRADING_FILE,
                   archive: Path = EARLIER_RELEASES_FILE) -> KnownReleases:
    """Every release of `assignment` the kit can grade, with the terms' secrets."""
    secrets = read_secrets(grading_file)
    current = release_cells(assignment.release_notebook, secrets.current)
    earlier = tuple(r for r in read_earlier_releases(archive) if r.id != current.id)
    return KnownReleases(current, earlier, dict(secrets.secrets))
