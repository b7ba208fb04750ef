"""Per student, Gradescope's results.json in nbgrader's feedback place:
`COURSE/feedback/<student>/<assignment>/results.json`, with what the staff graded by hand in
formgrader once there is some (outputs/hand_graded.py)."""
from __future__ import annotations

import json
from pathlib import Path

from autograder.assignment import Assignment
from autograder.model.records import GradedSubmission
from autograder.model.status import SubmissionStatus
from autograder.outputs.atomic import AtomicFiles, write_atomic
from autograder.outputs.feedback_html import safe_dir_name
from autograder.outputs.gradescope import to_gradescope
from autograder.outputs.hand_graded import hand_graded


def results_json_path(course_dir: Path, assignment: Assignment, student: str) -> Path:
    return Path(course_dir) / "feedback" / safe_dir_name(student) / safe_dir_name(assignment.name) / "results.json"


def gradescope_results(record: GradedSubmission, assignment: Assignment) -> dict:
    data = to_gradescope(record.result)
    if record.status == SubmissionStatus.GRADER_ERROR:  # the TA's reason names grader processes: not for the student
        data["output"] = ("Not graded yet: the grader itself failed on this submission, not because of your work. "
                          "It will be graded again; the course staff can see why.")
        return data
    if record.status != SubmissionStatus.GRADED and record.reason:
        data["output"] = f"Not graded: {record.reason}."
    _with_hand_grading(data, hand_graded(record, assignment))
    return data


def _with_hand_grading(data: dict, by_hand) -> None:
    """What the staff graded in formgrader: overridden checks' scores, each written answer graded
    so far as a test of its own, the comments; the score is the total of the tests."""
    for test in data["tests"]:
        if test["name"] in by_hand.overridden:
            test["score"] = by_hand.scores[test["name"]]
            test["output"] += f"\n(The course staff set this score by hand; the checks gave {by_hand.overridden[test['name']]:g}.)"
    for answer in by_hand.written:
        if answer.score is None:
            continue
        output = "Your answer cell was left as it was handed out, so it scores 0." if answer.unanswered else "Graded by hand."
        data["tests"].append({"name": answer.name, "score": answer.score, "max_score": answer.points,
                              "status": "passed" if answer.score >= answer.points else "failed",
                              "output": output + (f"\nFrom the course staff: {answer.comment}" if answer.comment else ""),
                              "visibility": "visible"})
    if by_hand.comments:
        data["output"] += "\n\nComments from the course staff:\n" + "\n".join(f"On {c.where}: {c.text}" for c in by_hand.comments)
    data["score"] = sum(test["score"] for test in data["tests"])


def write_results_json(course_dir: Path, assignment: Assignment, records: list[GradedSubmission],
                       files: AtomicFiles | None = None) -> None:
    """`files`: a batch the files join (they appear when it commits); by default each is written at once."""
    write = files.write if files is not None else write_atomic
    for record in records:
        if record.result is None:
            continue
        write(results_json_path(course_dir, assignment, record.student),
              json.dumps(gradescope_results(record, assignment), indent=2))
