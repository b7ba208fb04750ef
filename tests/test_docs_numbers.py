"""The numbers the README and docs/ quote from the code are the code's (issue 28, item 3).

Each entry names a document, a pattern whose group is a number the document quotes, and the value
the code has. Every occurrence must match, and each must occur at least once: a limit changed in
`autograder/sandbox/grader/limits.py`, or a check's points in `autograder/assignment.py`, fails
here until the documents say the same. To quote a new number, add it here.
"""
from __future__ import annotations

import re

import pytest

from autograder.assignment import CHECKS, KIT_ROOT, PYTORCH_SLOPE
from autograder.sandbox.grader.limits import Limits, hard_timeout_for, worst_case_seconds
from autograder.sandbox.grader.untrusted import MESSAGE_CAPS, SUBMISSION_BYTES
from autograder.sandbox.shared.messages import Event

LIMITS = Limits()
MIB, GIB = 1024**2, 1024**3
WORST_CASE_S = worst_case_seconds(LIMITS, rooms=len(CHECKS))
HARD_TIMEOUT_S = hard_timeout_for(LIMITS, len(CHECKS))

QUOTED: list[tuple[str, str, float]] = [
    # the sandbox's limits
    ("docs/isolation.md", r"CPU time (\d+) s", LIMITS.cpu_seconds),
    ("docs/isolation.md", r"address space (\d+) GiB", LIMITS.memory_bytes / GIB),
    ("docs/isolation.md", r"files (\d+) MiB each", LIMITS.file_bytes / MIB),
    ("docs/isolation.md", r"(\d+) open files", LIMITS.open_files),
    ("docs/isolation.md", r"(\d+) processes", LIMITS.processes),
    ("docs/isolation.md", r"(\d+) MiB for each of `/submission`", LIMITS.submission_bytes / MIB),
    ("docs/isolation.md", r"\((\d+) s of processor time in all\)", LIMITS.cpu_seconds),
    # the time limits and the bounds they add up to
    ("docs/grader-faults.md", r"`Limits.wall_factor` \((\d+)\)", LIMITS.wall_factor),
    ("docs/grader-faults.md", r"hold a worker at most (\d+) s", WORST_CASE_S),
    ("docs/grader-faults.md", r"`grade` is held to (\d+) s", HARD_TIMEOUT_S),
    ("docs/platforms.md", r"the grader holds itself to (\d+) s", HARD_TIMEOUT_S),
    ("docs/architecture.md", r"a cell (\d+) s of CPU time", LIMITS.cell_timeout_s),
    ("docs/architecture.md", r"the notebook (\d+) s", LIMITS.execute_timeout_s),
    ("docs/architecture.md", r"a probe (\d+) s", LIMITS.probe_timeout_s),
    ("docs/architecture.md", r"all probes of a submission (\d+) s", LIMITS.checks_timeout_s),
    # what crosses the boundary
    ("docs/architecture.md", r"a cell's result (\d+) KiB", MESSAGE_CAPS[Event.CELL] / 1024),
    ("docs/architecture.md", r"a probe's answer (\d+) MiB", MESSAGE_CAPS[Event.PROBE] / MIB),
    ("docs/architecture.md", r"each box may send (\d+) MiB in all", SUBMISSION_BYTES / MIB),
    # the checks' points
    ("README.md", r"six checks worth (\d+) points", sum(CHECKS.values())),
    ("README.md", r"a written answer \((\d+) points\)", sum(PYTORCH_SLOPE.manual_checks.values())),
    ("docs/checks.md", r"\| \*\*total\*\* \| \*\*(\d+)\*\*", sum(CHECKS.values())),
    *[("docs/checks.md", rf"\| `{name}` \| (\d+) \|", points) for name, points in CHECKS.items()],
]


@pytest.mark.parametrize(("document", "pattern", "value"), QUOTED, ids=[f"{d}: {p}" for d, p, _ in QUOTED])
def test_a_quoted_number_is_the_codes(document, pattern, value):
    text = " ".join((KIT_ROOT / document).read_text(encoding="utf-8").split())  # lines rewrap freely
    quoted = [float(number) for number in re.findall(pattern, text)]
    assert quoted, f"{document} no longer quotes {pattern!r} (the code's value is {value:g}): quote it, or update this test"
    assert all(number == pytest.approx(value) for number in quoted), \
        f"{document} quotes {quoted} for {pattern!r}; the code says {value:g}"


def test_every_check_is_in_the_documented_table():
    text = (KIT_ROOT / "docs/checks.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(\w+)` \| \d+ \|", text, flags=re.M))
    assert documented == set(CHECKS) | set(PYTORCH_SLOPE.manual_checks) or documented == set(CHECKS), documented
