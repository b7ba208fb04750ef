"""Writing an output file so that a reader never sees half of it: write a temporary file beside it,
then rename it over the old one (a rename within a folder is atomic on POSIX)."""
from __future__ import annotations

from pathlib import Path


def write_atomic(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically, creating its folder; returns `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(path)
    return path
