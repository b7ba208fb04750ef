"""release/pytorch_slope/MANIFEST.json: what was released, for which term, built with what.

No timestamp and no absolute path: the same term in the same environment gives the same bytes.
"""
from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

from autograder.assignment import ASSIGNMENT
from autograder.release.generate import released_files
from autograder.release.term import TermParameters

MANIFEST_NAME = "MANIFEST.json"
REPORT_NAME = "RELEASE_REPORT.txt"  # what `release` printed; not sealed (written after the MANIFEST)


def versions() -> dict:
    import nbgrader
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "nbgrader": nbgrader.__version__}


def checksums(release_folder: Path) -> dict[str, str]:
    """sha256 of every released file except the manifest and the report, by path relative to release/."""
    return {
        f"{ASSIGNMENT}/{rel}": hashlib.sha256(data).hexdigest()
        for rel, data in released_files(release_folder, exclude=(MANIFEST_NAME, REPORT_NAME)).items()
    }


def build(params: TermParameters, release_folder: Path) -> dict:
    return {
        "assignment": ASSIGNMENT,
        "term": params.term,
        "parameters": params.visible(),
        "versions": versions(),
        "sha256": checksums(release_folder),
    }


def dumps(manifest: dict) -> str:
    return json.dumps(manifest, indent=2) + "\n"


def write(params: TermParameters, release_folder: Path) -> Path:
    path = Path(release_folder) / MANIFEST_NAME
    path.write_text(dumps(build(params, release_folder)), encoding="utf-8")
    return path


def read(release_folder: Path) -> dict:
    return json.loads((Path(release_folder) / MANIFEST_NAME).read_text(encoding="utf-8"))
