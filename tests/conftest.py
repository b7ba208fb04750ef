"""Shared fixtures of the kit's tests: one sandbox zygote for the whole session, and the corpus
of scenario notebooks (tests/corpus/scenarios.py) written once to a temporary folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

import autograder  # noqa: F401  first: its __init__ keeps jsonschema from building a 1.5 s grammar (nbformat below)

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:  # `corpus.scenarios` is importable from every test module
    sys.path.insert(0, str(TESTS_DIR))

from corpus.scenarios import SCENARIOS  # noqa: E402


@pytest.fixture(scope="session")
def zygote():
    """One warm sandbox parent for every engine-path test of the session."""
    from autograder.sandbox.grader.zygotes import Zygote

    with Zygote() as started:
        yield started


@pytest.fixture(scope="session")
def corpus_notebooks(tmp_path_factory) -> dict[str, Path]:
    """Every scenario's notebook, written once: scenario name -> path."""
    folder = tmp_path_factory.mktemp("corpus")
    return {s.name: s.write(folder / s.name / "pytorch_slope.ipynb") for s in SCENARIOS}


# The tests' time limits (CPU time, as every limit). The engine's defaults (20 s a cell, 10 s a
# probe) are meant for students' real work; every cell and check of the corpus needs under 0.1 s
# (the whole corpus grades the same with 0.5 s limits), so 1 s keeps a tenfold margin and the
# scenarios that hang short (a looping step is called by four top-level cells, then probed four
# times): each hang costs the suite its limit in CPU, and three times that beside a busy machine.
TEST_CELL_TIMEOUT_S = 1.0
TEST_PROBE_TIMEOUT_S = 1.0


@pytest.fixture(scope="session")
def grading_limits():
    from autograder.sandbox.grader.limits import Limits

    return Limits(cell_timeout_s=TEST_CELL_TIMEOUT_S, probe_timeout_s=TEST_PROBE_TIMEOUT_S)


# The slowest modules first: `make test` spreads whole modules over pytest-xdist workers
# (--dist loadfile), and a long module that starts last leaves the other workers idle at the end.
_SLOWEST_FIRST = ("test_release.py", "test_autograde.py", "test_corpus_nbgrader.py", "test_corpus_grade.py",
                  "test_grader_faults.py", "test_cli.py", "test_formgrader.py", "test_isolation.py", "test_clean_room.py",
                  "test_room_integrity.py", "test_kit_anywhere.py", "test_boundary.py", "test_mutation.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: order within a module kept
