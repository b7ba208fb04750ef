"""What the class report says, computed from the batch's records (no drawing, no HTML here):
scores over the graded submissions only, pass rate per check, misconceptions split into root
causes and downstream symptoms, and the slowest submissions timed without worker start-up.

Root causes and symptoms. A check that runs other steps of the student fails whenever one of
those steps is wrong: `gradient` runs the student's forward and loss, `final_loss` runs all four
steps. Its failure then says little new (a loss that sums gives a gradient N times too large,
and a training that does not converge), so counting it beside its cause would tell a teacher
that the class has two problems where it has one. A failure is a *downstream symptom* when a
check it depends on failed for the same student; otherwise it is a *root cause*. Each id is
counted once per student, as a root cause if it was one anywhere in that student's submission.
"""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from autograder.assignment import Assignment
from autograder.feedback.misconception_titles import misconception_title
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus, SubmissionStatus

# Misconceptions whose cause is whatever failed before them, in whichever check they appear: a
# sandbox that "had ended" was ended by an earlier step; a training that fails after an earlier
# failure shows that failure again.
AFTER_ANY_EARLIER_FAILURE = ("sandbox_died", "training_diverges", "training_wrong_history")

SLOWEST = 10
# A job whose worker spent this much longer on it than the pipeline measured inside
# grade_submission started its worker's zygote (the first job of each worker, or the first after
# a replaced one): its measured time includes start-up work that later jobs do not repeat.
STARTUP_GAP_S = 1.0


@dataclass
class MisconceptionCount:
    id: str
    title: str
    students: int
    explanation: str = ""
    caused_by: list[tuple[str, int]] = field(default_factory=list)  # (root title, students), for symptoms


@dataclass
class Timing:
    student: str
    seconds: float
    score: float


@dataclass
class ClassSummary:
    n_total: int
    graded_scores: list[float]
    not_graded: list[GradedSubmission]
    per_check: list[dict]
    root_causes: list[MisconceptionCount]
    symptoms: list[MisconceptionCount]
    slowest: list[Timing]
    timing_measure: str  # how `slowest` was timed, in words
    left_out_of_timing: list[str]  # students whose only time includes start-up
    timing_without_startup: bool  # whether every time shown leaves worker start-up out
    needs_a_look: list[tuple[str, list[str]]]  # (student, why a TA should look) for graded work

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.graded_scores) if self.graded_scores else None

    @property
    def median(self) -> float | None:
        return statistics.median(self.graded_scores) if self.graded_scores else None


def is_graded(record: GradedSubmission) -> bool:
    return record.status == SubmissionStatus.GRADED and record.result is not None


def _failed(check) -> bool:
    return check.status != CheckStatus.PASSED


def split_misconceptions(record: GradedSubmission, assignment: Assignment) -> tuple[set[str], dict[str, set[str]]]:
    """One student's (root causes, {symptom: the root causes it follows from}); which check runs
    which others' steps is the assignment's `check_uses`.

    A root is named by its misconception id, or by "check:<name>" when the failed check named
    none (a grader error)."""
    checks = {c.name: c for c in record.result.checks}
    known = assignment.checks
    order = [name for name in known if name in checks] + [n for n in checks if n not in known]
    failed = [name for name in order if _failed(checks[name])]
    roots: set[str] = set()
    symptoms: dict[str, set[str]] = defaultdict(set)
    blamed: dict[str, set[str]] = {}  # failed check -> the root causes behind its failure
    for position, name in enumerate(order):
        check = checks[name]
        if not _failed(check):
            continue
        depends = [n for n in assignment.check_uses.get(name, ()) if n in failed]
        if check.misconception in AFTER_ANY_EARLIER_FAILURE:
            depends = [n for n in failed if order.index(n) < position]
        if depends:  # a symptom: its causes are whatever its failed dependencies are blamed on
            blamed[name] = set().union(*(blamed.get(n, {f"check:{n}"}) for n in depends))
            if check.misconception:
                symptoms[check.misconception] |= blamed[name]
        else:
            root = check.misconception or f"check:{name}"
            blamed[name] = {root}
            if check.misconception:
                roots.add(root)
    return roots, {s: causes for s, causes in symptoms.items() if s not in roots}


def _cause_title(cause: str) -> str:
    if cause.startswith("check:"):
        return f"a failed {cause.removeprefix('check:')} check"
    return misconception_title(cause)


def count_misconceptions(graded: list[GradedSubmission], assignment: Assignment, explanations: dict[str, str]):
    """(root causes, downstream symptoms), most frequent first, each counted once per student."""
    root_counts, symptom_counts = Counter(), Counter()
    causes_of: dict[str, Counter] = defaultdict(Counter)
    for record in graded:
        roots, symptoms = split_misconceptions(record, assignment)
        root_counts.update(roots)
        symptom_counts.update(symptoms.keys())
        for symptom, causes in symptoms.items():
            causes_of[symptom].update({_cause_title(c) for c in causes})

    def ordered(counts: Counter):  # most students first, then by title: a stable page
        return sorted(counts.items(), key=lambda item: (-item[1], misconception_title(item[0])))

    roots = [MisconceptionCount(mid, misconception_title(mid), n, explanations.get(mid, ""))
             for mid, n in ordered(root_counts)]
    symptoms = [MisconceptionCount(mid, misconception_title(mid), n, explanations.get(mid, ""),
                                   sorted(causes_of[mid].items(), key=lambda item: (-item[1], item[0])))
                for mid, n in ordered(symptom_counts)]
    return roots, symptoms


def own_grading_seconds(record: GradedSubmission) -> float | None:
    """Seconds spent on this submission itself, without worker start-up; None when the record's
    only measure includes start-up.

    Preferred: a `grading_time_s` the pipeline measures around the notebook and the checks
    alone. Without it, `execution_time_s` serves for every job that did not start its worker's
    zygote (see STARTUP_GAP_S)."""
    result = record.result
    own = getattr(result, "grading_time_s", None)
    if own is None:
        own = record.extra.get("grading_time_s")
    if own is not None:
        return float(own)
    measured = float(result.execution_time_s)
    worker = record.extra.get("worker_seconds")
    if worker is not None and float(worker) - measured > STARTUP_GAP_S:
        return None
    return measured


def slowest_submissions(graded: list[GradedSubmission]) -> tuple[list[Timing], str, list[str], bool]:
    """The slowest graded submissions, how they were timed (words that match what is shown), who
    was left out, and whether every time shown is without worker start-up."""
    timed, left_out, preferred = [], [], 0
    for record in graded:
        if getattr(record.result, "grading_time_s", None) is not None or "grading_time_s" in record.extra:
            preferred += 1
        seconds = own_grading_seconds(record)
        if seconds is None:
            left_out.append(record.student)
        else:
            timed.append(Timing(record.student, seconds, record.score))
    timed.sort(key=lambda t: (-t.seconds, t.student))
    own = bool(graded) and preferred == len(graded)
    if own:
        measure = "the submission's own grading time: its notebook in the sandbox and its checks, without worker start-up"
    else:  # what execution_time_s measures; a first job whose worker clock showed start-up is left out
        measure = ("the time from loading the notebook to closing its sandbox, which for a worker's first "
                   "submission also holds some of the worker's warm-up")
    return timed[:SLOWEST], measure, sorted(left_out), own


def needs_a_look(graded: list[GradedSubmission]) -> list[tuple[str, list[str]]]:
    """Graded submissions whose score a TA should confirm: a check the grader itself failed on,
    or a check that scored differently in the notebook's own state than in a clean room."""
    found = []
    for record in graded:
        why = list(getattr(record.result, "integrity", None) or [])
        errors = [c.name for c in record.result.checks if c.status == CheckStatus.ERROR]
        if errors:
            why.append("the grader failed on " + ", ".join(errors))
        if why:
            found.append((record.student, why))
    return found


def per_check_rates(graded: list[GradedSubmission], checks: dict[str, int]) -> list[dict]:
    rows = []
    for name, points in checks.items():
        statuses = Counter(c.status for r in graded for c in r.result.checks if c.name == name)
        total = sum(statuses.values())
        rows.append(dict(name=name, points=points, passed=statuses[CheckStatus.PASSED],
                         failed=statuses[CheckStatus.FAILED], error=statuses[CheckStatus.ERROR],
                         rate=statuses[CheckStatus.PASSED] / total if total else 0.0))
    return rows


def summarise(records: list[GradedSubmission], assignment: Assignment,
              explanations: dict[str, str] | None = None) -> ClassSummary:
    graded = [r for r in records if is_graded(r)]
    roots, symptoms = count_misconceptions(graded, assignment, explanations or {})
    slowest, measure, left_out, own = slowest_submissions(graded)
    return ClassSummary(
        n_total=len(records),
        graded_scores=[r.score for r in graded],
        not_graded=[r for r in records if not is_graded(r)],
        per_check=per_check_rates(graded, assignment.checks),
        root_causes=roots, symptoms=symptoms,
        slowest=slowest, timing_measure=measure, left_out_of_timing=left_out, timing_without_startup=own,
        needs_a_look=needs_a_look(graded),
    )
