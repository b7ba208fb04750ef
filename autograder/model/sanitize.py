"""Text that came from a submission, made safe to store, print and write anywhere.

A student's process controls every string it reports (exception types and messages, output,
names) and can put anything in them: lone surrogates (which no UTF-8 file, terminal or
database accepts), terminal escape sequences, NUL bytes, megabytes of text. `clean_text` makes
one such value a bounded, encodable string; `clean_plain` does it to every string of nested
plain data (a stored record). The sandbox boundary (sandbox/untrusted.py) applies them as each
message arrives; the state database and the writers apply them again to what they read, so an
old poisoned record cannot stop a run either. Torch-free: the batch's parent uses it.
"""
from __future__ import annotations

import re
from typing import Any

REPLACEMENT = "\ufffd"
# Lone surrogates, and control characters other than tab, newline and carriage return (ESC
# would let a submission drive the TA's terminal; NUL truncates strings in C libraries).
_UNSAFE = re.compile("[\ud800-\udfff\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
DEFAULT_TEXT_CAP = 20_000
RECORD_TEXT_CAP = 100_000  # any one string of a stored record (a check's feedback is the longest)
_MAX_DEPTH = 32


def truncate(text: str, cap: int) -> str:
    """`text` cut to at most about `cap` characters, saying how much was dropped."""
    if len(text) <= cap:
        return text
    return text[:cap] + f"[... {len(text) - cap} more characters dropped]"


def clean_text(value: Any, cap: int = DEFAULT_TEXT_CAP, default: str = "") -> str:
    """`value` as a string of at most ~`cap` characters that every UTF-8 sink accepts; a value
    that is not a string becomes `default` (a submission's wrong types are not repr'd)."""
    if not isinstance(value, str):
        return default
    # Cut first (a 100 MB string is not scanned whole), then replace what cannot be written.
    return _UNSAFE.sub(REPLACEMENT, truncate(value, cap))


def clean_plain(value: Any, cap: int = RECORD_TEXT_CAP, depth: int = 0) -> Any:
    """Nested JSON-like data with every string (keys too) cleaned; anything JSON cannot hold,
    or nesting deeper than a record has, becomes None."""
    if isinstance(value, str):
        return clean_text(value, cap)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {clean_text(str(k), 200): clean_plain(v, cap, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_plain(v, cap, depth + 1) for v in value]
    return None
