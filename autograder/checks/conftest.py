"""Fixtures every check uses.

`student`   the submission's steps, reached through probes (see student.py);
`reference` the reference implementation from solutions/, loaded in the grader's process;
`hidden`    reproducible hidden inputs for the running check;
`tol`       the check's tolerance on the grading device;
`device`    "cpu" or "cuda".
`submission`, `device` and `grading_seed` come from the grading run (autograder/checks/runner.py).
"""
from __future__ import annotations

import importlib.util

import pytest

from autograder.assignment import REFERENCE_FILE
from autograder.checks.hidden import HiddenInputs
from autograder.checks.runner import GRADING_RUN
from autograder.checks.student import Student
from autograder.checks.tolerances import tolerance_for


def _check_name(request) -> str:
    return request.node.originalname.removeprefix("test_")


@pytest.fixture(scope="session")
def submission(request, pytestconfig):
    """The grading run's submission, or, in a run of several passes (runner.run_check_passes),
    this pass's, closed once the pass's checks are done (before the next pass starts)."""
    run = pytestconfig.stash[GRADING_RUN]
    name = getattr(request, "param", None)
    if name is None:
        yield run.submission
        return
    yield run.passes[name].submission
    run.passes[name].close()


@pytest.fixture(scope="session")
def device(pytestconfig):
    return pytestconfig.stash[GRADING_RUN].device


@pytest.fixture(scope="session")
def grading_seed(pytestconfig):
    return pytestconfig.stash[GRADING_RUN].grading_seed


@pytest.fixture(scope="session")
def reference():
    spec = importlib.util.spec_from_file_location("pytorch_slope_reference", REFERENCE_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def student(request, submission):
    """The submission's steps for one check; a clean room, if the submission offers them, is
    opened by the check's first probe and killed when the check ends."""
    observed = Student(submission, _check_name(request))
    yield observed
    observed.close()


@pytest.fixture
def hidden(request, grading_seed, device):
    return HiddenInputs(grading_seed, _check_name(request), device)


@pytest.fixture
def tol(request, device):
    return tolerance_for(_check_name(request), device)
