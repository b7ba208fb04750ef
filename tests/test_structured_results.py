"""Results are structured from the check to every output: a student message, the small case as
data, and staff detail that only the staff report carries. And the grader's fingerprint covers
everything that can change a score."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import torch

import autograder
from autograder.assignment import CHECKS, PYTORCH_SLOPE, REFERENCE_FILE, grader_fingerprint, grading_settings
from autograder.checks.runner import run_checks
from autograder.model.records import GradedSubmission
from autograder.model.results import SubmissionResult
from autograder.model.status import CheckStatus
from autograder.outputs.feedback_html import feedback_path, write_feedback_pages
from autograder.outputs.gradescope import to_gradescope
from autograder.outputs.results_json import results_json_path, write_results_json
from autograder.outputs.staff_report import staff_report_path, write_staff_report
from autograder.probes.in_kernel import InKernelSubmission
from autograder.sandbox.grader.limits import Limits

GRADESCOPE_SCHEMA = Path(autograder.__file__).resolve().parent / "gradescope" / "results_schema.json"
GRADER_BUG = "grader bug 6.02214076e23 in the probe"


class BrokenTransport:
    """A transport that fails in the grader's own code (not the student's)."""

    def probe(self, name, inputs):
        raise RuntimeError(GRADER_BUG)


def _record(result: SubmissionResult) -> GradedSubmission:
    return GradedSubmission("amy", "pytorch_slope", "nb.ipynb", "hash", datetime(2026, 1, 1, tzinfo=UTC), False,
                            "graded", "", result, datetime(2026, 1, 2, tzinfo=UTC))


def test_a_grader_fault_reaches_staff_only(tmp_path):
    checks = run_checks(BrokenTransport(), grading_seed=grading_settings()["grading_seed"])
    assert {c.status for c in checks} == {CheckStatus.ERROR}
    for check in checks:
        assert GRADER_BUG in check.staff_detail and f"test_{check.name}" in check.staff_detail
        assert GRADER_BUG not in check.feedback and "Traceback" not in check.feedback
        assert "The grader itself failed" in check.feedback
    record = _record(SubmissionResult(checks))
    write_results_json(tmp_path, PYTORCH_SLOPE, [record])
    write_feedback_pages(tmp_path, PYTORCH_SLOPE, [record])
    student_sees = [results_json_path(tmp_path, PYTORCH_SLOPE, "amy").read_text(),
                    feedback_path(tmp_path, PYTORCH_SLOPE, "amy").read_text(),
                    json.dumps(to_gradescope(record.result))]
    for text in student_sees:
        assert "grader bug" not in text and "test_forward" not in text and "autograder/" not in text
    staff = json.loads(write_staff_report(tmp_path, PYTORCH_SLOPE, [record]).read_text())
    assert staff_report_path(tmp_path, PYTORCH_SLOPE) == tmp_path / "reports" / "pytorch_slope" / "staff.json"
    assert staff["grader_errors"] == len(CHECKS)
    (amy,) = staff["students"]
    assert amy["grader_errors"] == list(CHECKS)
    assert all(GRADER_BUG in c["staff_detail"] for c in amy["checks"])


def _reference_with(source: str) -> dict:
    namespace = {"torch": torch}
    exec(REFERENCE_FILE.read_text(), namespace)
    exec(source, namespace)
    return namespace


def test_a_failed_check_carries_its_case_as_rounded_data():
    namespace = _reference_with("def update(w, lr):\n    w.data = w.data + lr * w.grad.data\n")
    (update,) = run_checks(InKernelSubmission(namespace), grading_seed=grading_settings()["grading_seed"], only=["update"])
    assert update.misconception == "update_sign"
    case = update.case
    assert set(case["input"]) == {"w", "lr", "grad"} and set(case["expected"]) == {"w"}
    assert case["got"].startswith("w = ") and case["rounded_to_significant_digits"] == 4
    for value in [*case["input"].values(), *case["expected"].values()]:
        digits = value.lstrip("-").replace(".", "").split("e")[0].lstrip("0")
        assert len(digits) <= 4, value
    assert update.staff_detail == ""
    # the same case, as one line, in the student's text
    assert f"expected_w = {case['expected']['w']}" in update.feedback
    # and as data in Gradescope's results, which stay valid against its schema
    report = to_gradescope(SubmissionResult([update]))
    jsonschema.validate(report, json.loads(GRADESCOPE_SCHEMA.read_text()))
    assert report["tests"][0]["extra_data"] == {"misconception": "update_sign", "case": case}
    # the messages are Markdown (backticks showed literally): Gradescope is told to render them
    assert report["output_format"] == report["test_output_format"] == "md"


def test_fingerprint_covers_every_grading_file_the_device_and_the_limits(monkeypatch, tmp_path):
    from autograder import assignment

    package = Path(autograder.__file__).resolve().parent
    files = set(assignment._fingerprinted_files(PYTORCH_SLOPE))
    every_py = {p for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    assert every_py <= files, sorted(str(p) for p in every_py - files)
    assert REFERENCE_FILE in files
    # a term's secret and releases make each grade's own part (tests/test_terms.py), not the grader's
    assert package / "grading.json" not in files and package / "earlier_releases.json" not in files
    base = grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits())
    assert grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits()) == base
    assert grader_fingerprint(PYTORCH_SLOPE, "cuda", Limits()) != base
    assert grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits(cell_timeout_s=5.0)) != base
    # a change to the content of a fingerprinted file changes it
    copy = tmp_path / "expect.py"
    copy.write_bytes((package / "checks" / "expect.py").read_bytes())
    monkeypatch.setattr(assignment, "_fingerprinted_files", lambda _assignment: [copy])
    before = grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits())
    copy.write_text(copy.read_text() + "\n# changed\n")
    assert grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits()) != before


def test_fingerprint_follows_the_assignment_it_is_given(tmp_path):
    """Stored grades go stale when the graded assignment's own reference changes, wherever its kit
    lies (`autograde` hands the fingerprint the Assignment it grades; its releases: test_terms.py)."""
    copy = PYTORCH_SLOPE.at(tmp_path)
    for source, target in ((PYTORCH_SLOPE.reference, copy.reference),
                           (PYTORCH_SLOPE.release_notebook, copy.release_notebook)):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(source.read_bytes())
    assert grader_fingerprint(copy, "cpu", Limits()) == grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits())
    copy.reference.write_text(copy.reference.read_text() + "\n# another term's reference\n")
    assert grader_fingerprint(copy, "cpu", Limits()) != grader_fingerprint(PYTORCH_SLOPE, "cpu", Limits())
