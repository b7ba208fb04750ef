"""What Coursera's entry point (templates/run_grader) runs for every submission: grade the one
notebook in `$COURSERA_SHARED/submission/` with `python -m autograder grade --format coursera` and
write `$COURSERA_SHARED/feedback.json` and `htmlFeedback.html` (outputs/coursera.py).

Whatever a submission is, a complete feedback.json is written: no notebook, several, a file that
was not a notebook when the learner chose it (Coursera renames the upload to the part's file name
and passes the original in `filename`), a notebook that is not JSON: 0 and a message that says
what to submit. The grader itself failing (refusing an unconfined host, its own bound, a crash):
no score, a message that says it is not the learner's fault, the detail on stderr (which Coursera
shows to course staff only), and exit status 1, so that Coursera reports a failed grading.

    python -P -s -m autograder.coursera.run [--unconfined]

reads COURSERA_SHARED (default /shared), AUTOGRADER_PYTHON (the interpreter that grades; default
this one) and the names Coursera sets: partId, filename, userId (logged for staff).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

from autograder.assignment import KIT_ROOT, PYTORCH_SLOPE
from autograder.model.sanitize import clean_text
from autograder.outputs import coursera

# The grade process holds itself to its own bound (watchdog.py, about 13 minutes); this is only
# for a grader that could not even start it.
GRADE_TIMEOUT_S = 1800
MAX_ENTRIES = 1000  # a submission folder holds one file on Coursera
STDERR_TAIL = 4000


def _log(message: str) -> None:
    print(f"run_grader: {message}", file=sys.stderr, flush=True)


def _names(folder: Path) -> list[str]:
    with os.scandir(folder) as entries:
        names = []
        for entry in entries:
            names.append(entry.name)
            if len(names) >= MAX_ENTRIES:
                break
    return sorted(names)


def _shown(names: list[str]) -> str:
    shown = ", ".join(clean_text(name, 120) for name in names[:10])
    return shown + (f" and {len(names) - 10} more" if len(names) > 10 else "")


def _grade(notebook: Path, python: str, unconfined: bool) -> dict:
    command = [python, "-m", "autograder", "grade", str(notebook), "--format", "coursera"]
    if unconfined:
        command.append("--unconfined")
    proc = subprocess.run(command, capture_output=True, timeout=GRADE_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, cwd=str(KIT_ROOT))
    errors = proc.stderr.decode("utf-8", "replace")
    if errors.strip():
        _log(f"the grader's messages:\n{errors[-STDERR_TAIL:]}")
    try:  # a complete answer counts whatever the status: the watchdog prints one after it ends the grader
        outcome = json.loads(proc.stdout)
        if isinstance(outcome, dict) and isinstance(outcome.get("feedback"), dict) and isinstance(outcome.get("html"), str):
            return outcome
    except ValueError:
        pass
    reason = f"`grade` exited with status {proc.returncode} and no result"
    if proc.returncode == 2:  # misuse: here, a host where no confinement level protects the course
        reason += " (refused; see its message above)"
    return coursera.failed(PYTORCH_SLOPE, reason)


def outcome(shared: Path, python: str, unconfined: bool, filename: str | None) -> dict:
    """What to write for the submission in `shared`/submission."""
    assignment = PYTORCH_SLOPE
    expected = assignment.notebook
    folder = shared / "submission"
    if not folder.is_dir():
        return coursera.failed(assignment, f"no submission folder at {folder}")
    if filename and not filename.lower().endswith(".ipynb"):
        return coursera.not_graded(
            assignment, f"you submitted {clean_text(filename, 120)!r}, which is not a Jupyter notebook: submit your "
                        f"{expected} (in Jupyter: File > Download as > Notebook (.ipynb))")
    names = _names(folder)
    notebooks = [name for name in names if name.lower().endswith(".ipynb")]
    if not notebooks:
        received = f" (received: {_shown(names)})" if names else ""
        return coursera.not_graded(assignment, f"no notebook was submitted{received}: submit your {expected} (one .ipynb file)")
    if len(notebooks) > 1:
        return coursera.not_graded(assignment, f"several notebooks were submitted ({_shown(notebooks)}): submit only your "
                                               f"{expected}, so that it is clear which one to grade")
    return _grade(folder / notebooks[0], python, unconfined)


def write(shared: Path, result: dict) -> None:
    feedback = shared / coursera.FEEDBACK_FILE
    page = shared / coursera.PAGE_FILE
    page.write_text(result["html"], encoding="utf-8")
    partial = feedback.with_name(feedback.name + ".partial")
    partial.write_text(json.dumps(result["feedback"], ensure_ascii=False), encoding="utf-8")
    partial.replace(feedback)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    unconfined = "--unconfined" in argv
    shared = Path(os.environ.get("COURSERA_SHARED") or "/shared")
    python = os.environ.get("AUTOGRADER_PYTHON") or sys.executable
    filename = os.environ.get("filename")
    _log(f"partId={os.environ.get('partId', '')!r} filename={filename!r} userId={os.environ.get('userId', '')!r}")
    try:
        result = outcome(shared, python, unconfined, filename)
    except Exception:  # the grader's own fault, whatever it is: never the learner's score
        _log(traceback.format_exc())
        result = coursera.failed(PYTORCH_SLOPE, "run_grader raised (traceback above)")
    staff = result.get("staff", {})
    _log("confinement: " + (staff.get("confinement") or "(nothing was run)")
         + f"; status: {staff.get('status')}" + (f"; grader failure: {staff['failure']}" if staff.get("failure") else "")
         + (f"; fractionalScore: {result['feedback']['fractionalScore']}" if "fractionalScore" in result["feedback"] else
            "; no score recorded"))
    write(shared, result)
    return 0 if result["graded"] else 1


if __name__ == "__main__":
    sys.exit(main())
