"""Every term the kit can grade, as stored in two files of the package (never in release/):

  autograder/grading.json            which term is current, and every term's grading secret:
      {"term": "2027-fall", "grading_seed": "<hex>",              the current term (release/ holds it)
       "earlier_terms": {"2026-fall": {"grading_seed": "<hex>"}}}  terms whose classes may still be graded
  autograder/earlier_releases.json   what grading needs of each release `release` replaced: its
      term, its locked code cells and its written-answer cells as released (by grade id).

The current release's cells are read from release/<assignment>/ itself. A submission is graded
against the release it was made from (notebook/releases.py matches it by its locked cells), with
that release's term's secret, so preparing next term's release never regrades this term's class.
The files are JSON with a fixed layout written only here, so `release` rewrites them byte for byte.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from autograder.assignment import GRADING_FILE

EARLIER_RELEASES_FILE = GRADING_FILE.with_name("earlier_releases.json")


@dataclass(frozen=True)
class TermSecrets:
    """grading.json: the current term and every term's grading secret (the current one included)."""

    current: str
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def earlier(self) -> dict[str, str]:
        return {term: secret for term, secret in self.secrets.items() if term != self.current}


def read_secrets(path: Path = GRADING_FILE) -> TermSecrets:
    """grading.json as TermSecrets; a file of the one-term layout (no `earlier_terms`) is read too."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    secrets = {term: entry["grading_seed"] for term, entry in (data.get("earlier_terms") or {}).items()}
    secrets[data["term"]] = data["grading_seed"]
    return TermSecrets(data["term"], secrets)


def secrets_json(secrets: TermSecrets) -> str:
    """The text of grading.json for `secrets` (earlier terms sorted by name)."""
    data = {"term": secrets.current, "grading_seed": secrets.secrets[secrets.current],
            "earlier_terms": {term: {"grading_seed": secret} for term, secret in sorted(secrets.earlier.items())}}
    return json.dumps(data, indent=2) + "\n"


@dataclass(frozen=True)
class ReleaseCells:
    """What grading needs of one release: the cells a submission made from it holds as they were
    released. `locked`: grade id -> source of its locked code cells (restored before grading, as
    nbgrader's OverwriteCells does); `answers`: grade id -> source of its written-answer cells
    (graded by hand; one left as released is unanswered)."""

    term: str
    locked: dict[str, str]
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """Names this release's cells (records store it: a grade stays current while its release does)."""
        text = json.dumps([self.term, self.locked, self.answers], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def read_earlier_releases(path: Path = EARLIER_RELEASES_FILE) -> list[ReleaseCells]:
    """The archive of replaced releases, oldest first; none if the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return []
    return [ReleaseCells(entry["term"], dict(entry["locked_cells"]), dict(entry.get("answer_cells") or {}))
            for entry in json.loads(path.read_text(encoding="utf-8"))["releases"]]


def earlier_releases_json(releases: list[ReleaseCells]) -> str:
    data = {"releases": [{"term": r.term, "id": r.id, "locked_cells": r.locked, "answer_cells": r.answers}
                         for r in releases]}
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
