"""`python -m autograder autograde ASSIGNMENT`: grade a whole class in nbgrader's layout.

    discover (discover.py) -> skip what the state db already holds unchanged (state.py)
    -> grade the rest in N workers (workers.py), storing each result as it arrives
    -> publish every output from the records of the whole class (outputs/publish.py)
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from autograder.assignment import Assignment, assignment_named, grader_fingerprint
from autograder.autograde.attempts import MAX_ATTEMPTS
from autograder.autograde.course_lock import CourseLock
from autograder.autograde.discover import WorkItem, discover
from autograder.autograde.records import not_gradable_record, outcome_record
from autograder.autograde.state import State
from autograder.interrupts import Interrupted, stop_on_signals
from autograder.model.records import GRADED, GRADER_ERROR, NOT_GRADED, GradedSubmission
from autograder.model.status import CheckStatus
from autograder.notebook.releases import KnownReleases, known_releases
from autograder.sandbox.grader.confinement import ConfinementRefused, check_allowed, describe_stamp
from autograder.usage import USAGE_EXIT_STATUS, UsageError


def graded_by(record: GradedSubmission | None, grader: str, releases: KnownReleases) -> str:
    """The fingerprint a record must hold to stand: `grader`'s, and for a notebook that was run,
    that of the release it was graded against ("": that release is gone, the record is stale)."""
    result = record.result if record is not None else None
    if result is None or not result.release_id:  # no notebook was run: the grader's alone
        return grader
    return releases.fingerprint(grader, result.release_id, result.release_matched) or ""


def release_summary(graded: list[GradedSubmission]) -> dict:
    """How many graded submissions each term's release graded, and who matched no release (graded
    against the current one): for the summary, so that a class graded against an unexpected term
    is seen, never silent."""
    terms: dict[str, int] = {}
    for record in graded:
        if record.result is not None and record.result.term:
            terms[record.result.term] = terms.get(record.result.term, 0) + 1
    unmatched = sorted(r.student for r in graded if r.result is not None and not r.result.release_matched)
    return {"terms": dict(sorted(terms.items())), "matching no release": unmatched}


class Progress:
    """A tqdm bar with ETA on a terminal; one plain line per submission otherwise."""

    def __init__(self, total: int, max_score: float, stream=None):
        from tqdm import tqdm

        tqdm.monitor_interval = 0  # no monitor thread (tqdm starts one even when disabled): publish forks this process
        self.stream = stream or sys.stderr
        self.plain = not self.stream.isatty()
        self.total, self.done, self.max_score = total, 0, max_score
        import shutil

        self.bar = tqdm(total=total, unit="nb", desc="autograde", file=self.stream, disable=self.plain or total == 0,
                        ncols=min(shutil.get_terminal_size((100, 20)).columns, 120))

    def update(self, record: GradedSubmission, seconds: float) -> None:
        self.done += 1
        line = f"[{self.done}/{self.total}] {record.student}: {record.score:g}/{self.max_score:g} {record.status} ({seconds:.1f} s)"
        if record.status != GRADED:
            line += f": {record.reason}"
        if self.plain:
            print(line, file=self.stream, flush=True)
        else:
            self.bar.set_postfix_str(f"{record.student} {record.score:g}/{self.max_score:g}", refresh=False)
            self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _check_arguments(assignment: str, course_dir: Path, students: list[str] | None = None) -> None:
    if not course_dir.is_dir():
        raise UsageError(f"course directory not found: {course_dir}")
    if not (course_dir / "submitted").is_dir():
        raise UsageError(f"no submitted/ folder in {course_dir}: run `nbgrader collect {assignment}` first, "
                         f"or pass the course directory with --course-dir")
    _check_students(course_dir, students or [])


def _check_students(course_dir: Path, students: list[str]) -> None:
    """A --student without a folder under submitted/ is a typo, not a class member with a 0: it
    would add a phantom row to every output and lower the class mean."""
    submitted = course_dir / "submitted"
    known = sorted(p.name for p in submitted.iterdir() if p.is_dir() and not p.name.startswith("."))
    unknown = [s for s in dict.fromkeys(students) if s not in known]
    if unknown:
        shown = ", ".join(known[:40]) + (f", ... ({len(known)} in all)" if len(known) > 40 else "")
        raise UsageError(f"no submission folder for --student {', '.join(unknown)} under {submitted}: "
                         f"check the id; known students: {shown or 'none'}")


def run_batch(*, assignment: Assignment, course_dir: Path, workers: int, device: str, students: list[str] | None,
              force: bool, cell_timeout_s: float | None = None, limits=None, out=None, unconfined: bool = False) -> dict:
    """Grade the class; returns the run's summary (also stored as run_info in the class report).
    `limits`: the sandbox's Limits (by default the defaults, with `cell_timeout_s` if given).
    Holds the course's lock (course_lock.py) throughout: CourseBusy if another run holds it."""
    with CourseLock(course_dir):
        return _run_batch(assignment=assignment, course_dir=Path(course_dir), workers=workers, device=device,
                          students=students, force=force, cell_timeout_s=cell_timeout_s, limits=limits, out=out,
                          unconfined=unconfined)


def _run_batch(*, assignment: Assignment, course_dir: Path, workers: int, device: str, students: list[str] | None,
               force: bool, cell_timeout_s: float | None, limits, out, unconfined: bool) -> dict:
    name = assignment.name  # what nbgrader's folders, the records and the outputs are keyed by
    from autograder.autograde.workers import WorkerPool, end_stopped_forkserver, start_forkserver
    from autograder.outputs.publish import publish, warm_up
    from autograder.outputs.regrades import count_reasons, score_changes, write_score_changes
    from autograder.sandbox.grader.limits import Limits
    from autograder.sandbox.grader.zygotes import ZygoteServer

    if limits is None:
        limits = Limits(cell_timeout_s=cell_timeout_s) if cell_timeout_s else Limits()
    start_forkserver()  # first: it and the zygote server import torch while the class is discovered
    zygote_server = ZygoteServer()
    out = out or sys.stdout
    start = time.monotonic()
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + uuid.uuid4().hex[:6]
    try:
        # The whole class is discovered so that every output covers it; --student only picks what is graded.
        found = {item.student: item for item in discover(course_dir, assignment)}
        named = set(students or ())
        if named:
            found.update({item.student: item for item in discover(course_dir, assignment, sorted(named))})
        # a grade made by other grading code, reference, device or limits, or against a release or
        # term secret that changed since, is stale (graded_by); another term's release is not
        grader = grader_fingerprint(assignment, device, limits)
        releases = known_releases(assignment)
        state = State(course_dir)
    except BaseException:  # the server goes with the run, whatever stopped it
        zygote_server.close()
        raise
    changes: list[dict] = []  # scores this run changed (outputs/regrades.py)
    progress = None
    pending: list[WorkItem] = []
    handled = 0
    try:
        stored = state.load(name)
        judged = state.last_judged(name)  # what a regrade compares with, across grader errors
        items = [found[s] for s in sorted(found) if not named or s in named or s in stored]
        records: dict[str, GradedSubmission] = {}
        kept: set[str] = set()  # students whose stored grade stands (skipped)

        def keep(record: GradedSubmission) -> None:
            """Store a record made in this run, with what it changed, durably before it is counted."""
            record.grader = graded_by(record, grader, releases)
            previous = judged.get(record.student) or (stored[record.student][1] if record.student in stored else None)
            changed = score_changes(previous, record, run_id)
            state.save(record, run_id, changed)
            changes.extend(changed)
            records[record.student] = record

        for item in items:
            current = stored.get(item.student)
            if named and item.student not in named:  # not asked for: its last grade stands
                records[item.student] = current[1]
                kept.add(item.student)
            elif not force and not named and state.is_current(current, item.content_hash,
                                                              graded_by(current and current[1], grader, releases)):
                records[item.student] = current[1]
                kept.add(item.student)
            elif not item.gradable:
                keep(not_gradable_record(item, assignment))
            else:
                pending.append(item)
        for student in kept:  # late: the timestamp against the due date now set (a TA may set it after grading)
            records[student].late = found[student].late
        if not pending:
            zygote_server.close()  # nothing to grade: no need for it to finish importing torch
            confinement = None
        else:  # refused before anyone is graded where no level protects the course (ConfinementRefused)
            zygote_server, confinement = ready_server(zygote_server)
            check_allowed(confinement, unconfined)
        progress = Progress(len(pending), assignment.max_score)
        warming = warm_up()
        if pending:
            by_student = {item.student: item for item in pending}
            zygote_options = {"allow_unconfined": unconfined, "protected": [Path(course_dir).resolve()]}
            with WorkerPool(min(workers, len(pending)), assignment, device, limits=limits,
                            zygote_server=zygote_server, zygote_options=zygote_options) as pool:
                for outcome in pool.run([{"student": i.student, "notebook": str(i.notebook)} for i in pending]):
                    item = by_student[outcome.item["student"]]
                    record = outcome_record(item, assignment, outcome.ok, outcome.result, outcome.reason,
                                            faults=outcome.faults)
                    record.extra["worker_seconds"] = round(outcome.worker_seconds, 3)
                    keep(record)
                    handled += 1
                    progress.update(record, outcome.worker_seconds)
        stored_changes = state.score_changes(name)
    except Interrupted as stop:  # say what was kept: every submission handled so far is stored
        stop.graded, stop.pending = handled, len(pending) - handled
        raise
    finally:
        if progress is not None:
            progress.close()
        zygote_server.close(end_zygotes=True)  # no worker is left: a zygote still there is a leftover
        end_stopped_forkserver()  # a stopped forkserver never ends with this process
        state.close()
    everything = [records[item.student] for item in items]
    # Every submission is counted once: skipped (its stored grade stands) or handled in this run.
    fresh = [r for r in everything if r.student not in kept]
    graded = [r for r in everything if r.status == GRADED]
    run_info = {
        "run id": run_id, "course directory": str(course_dir), "device": device, "workers": workers,
        "submissions": len(everything),
        "graded now": sum(r.status == GRADED for r in fresh),
        "skipped (unchanged)": len(kept),
        "not gradable": sum(r.status == NOT_GRADED for r in fresh),
        "failed": sum(r.status == GRADER_ERROR for r in fresh),
        "late": sum(r.late for r in everything),
        # over graded work only: a submission that could not be graded is listed apart, not averaged as 0
        "mean score": (sum(r.score for r in graded) / len(graded)) if graded else 0.0,
        "not graded": len(everything) - len(graded),
        "grading wall time (s)": round(time.monotonic() - start, 2),
        "confinement": confinement.stamp() if confinement else None,
        **release_summary(graded),
    }
    # Grader faults: the attempts retried away, and what was still not graded (with why), for the summary.
    run_info["grader faults retried"] = sum(len(r.extra.get("grader faults retried", ())) for r in fresh)
    run_info["not graded yet"] = {r.student: r.reason for r in fresh if r.status == GRADER_ERROR}
    # What a regrade changed (outputs/regrades.py): students and checks whose score changed, by cause.
    run_info["score changes"] = {"students": len({c["student"] for c in changes}), "checks": len(changes),
                                 **count_reasons(changes)}
    warming.join()
    try:
        outputs = publish(course_dir, assignment, everything, run_info)
        outputs["score changes"] = write_score_changes(course_dir, assignment, stored_changes)
    except Interrupted as stop:
        stop.graded, stop.pending, stop.publishing = handled, 0, True
        raise
    run_info["wall time (s)"] = round(time.monotonic() - start, 2)
    outputs["run summary"] = write_run_summary(course_dir, assignment, run_info)
    _print_summary(out, assignment, run_info, outputs, everything, kept)
    return run_info


class GraderUnavailable(RuntimeError):
    """No sandbox zygote could be started: nothing can be graded (nothing was changed)."""


def ready_server(server):
    """The zygote server and the run's confinement level from its "ready". A server that dies or is
    stopped before it (a grader fault) is replaced by a fresh one, up to MAX_ATTEMPTS in all;
    then GraderUnavailable."""
    from autograder.sandbox.grader.zygotes import ZygoteServer, ready_or_replaced

    try:
        server = ready_or_replaced(server, ZygoteServer, MAX_ATTEMPTS)
    except RuntimeError as error:
        raise GraderUnavailable(f"the sandbox zygote server did not start, {MAX_ATTEMPTS} times (last: {error})") from None
    return server, server.confinement


def machine_key(label: str) -> str:
    """A summary's label as a key scripts can use: snake_case, a unit kept as a suffix
    ("graded now" -> "graded_now", "skipped (unchanged)" -> "skipped_unchanged",
    "wall time (s)" -> "wall_time_s")."""
    return re.sub(r"[^0-9a-z]+", "_", label.lower()).strip("_")


def write_run_summary(course_dir: Path, assignment: Assignment, run_info: dict) -> Path:
    """The run's summary as data, `COURSE/reports/<assignment>/run.json`, for scripts and tests
    (the printed summary is for people): the same values under snake_case keys."""
    from autograder.outputs.atomic import write_atomic
    from autograder.outputs.feedback_html import safe_dir_name

    path = Path(course_dir) / "reports" / safe_dir_name(assignment.name) / "run.json"
    return write_atomic(path, json.dumps({machine_key(k): v for k, v in run_info.items()}, indent=2, default=str))


SCORE_TABLE_MAX_ROWS = 50  # a larger class reads its per-check scores in grades-by-check.csv


def _print_score_table(out, names: list[str], records: list[GradedSubmission], kept: set[str] = frozenset()) -> None:
    """Per-check scores; a submission skipped because it is unchanged says so beside its status."""
    width = max([len("student")] + [len(r.student) for r in records])
    print("  " + "student".ljust(width) + "".join(f"{n:>12}" for n in names) + f"{'total':>8}  status", file=out)
    for record in sorted(records, key=lambda r: r.student):
        # a check the grader could not judge has no score, nor has the total then (as in the CSV)
        scores = {c.name: ("-" if c.status == CheckStatus.ERROR else f"{c.score:g}") for c in record.result.checks} \
            if record.result else {}
        cells = "".join(f"{scores.get(n, '0'):>12}" for n in names)
        total = "-" if record.status == GRADER_ERROR else f"{record.score:g}"
        status = f"{record.status}, skipped (unchanged)" if record.student in kept else str(record.status)
        print(f"  {record.student.ljust(width)}{cells}{total:>8}  {status}", file=out)


def _print_summary(out, assignment: Assignment, info: dict, outputs: dict, records: list[GradedSubmission],
                   kept: set[str] = frozenset()) -> None:
    from autograder.outputs.publish import NOT_WRITTEN

    print(f"Autograded {assignment.name} in {info['course directory']}: {info['submissions']} submissions", file=out)
    print(f"  graded now: {info['graded now']}   skipped (unchanged): {info['skipped (unchanged)']}   "
          f"not gradable: {info['not gradable']}   not graded yet (grader error): {info['failed']}   "
          f"late: {info['late']}", file=out)
    _print_grader_faults(out, info)
    _print_score_changes(out, info, outputs)
    apart = f" ({info['not graded']} not graded, listed apart)" if info["not graded"] else ""
    print(f"  mean score of graded work: {info['mean score']:.2f}/{assignment.max_score:g}{apart}   wall time: "
          f"{info['wall time (s)']:.1f} s with {info['workers']} worker(s) on {info['device']}", file=out)
    if info.get("confinement"):
        print(f"  confinement: {describe_stamp(info['confinement'])}", file=out)
    terms = info.get("terms") or {}
    if len(terms) > 1 or info.get("matching no release"):
        print("  graded against the release of term " + ", ".join(f"{t} ({n})" for t, n in terms.items()), file=out)
    if info.get("matching no release"):
        shown = info["matching no release"]
        print(f"  matching no release of {assignment.name} (graded against the current one, locked cells restored; "
              f"check them): {', '.join(shown[:SCORE_TABLE_MAX_ROWS])}" + (" ..." if len(shown) > SCORE_TABLE_MAX_ROWS else ""),
              file=out)
    if len(records) <= SCORE_TABLE_MAX_ROWS:
        _print_score_table(out, list(assignment.checks), records, kept)
    print("  outputs:", file=out)
    for problem in info.get(NOT_WRITTEN, ()):
        print(f"  not written: {problem}", file=out)
    for name, path in outputs.items():
        print(f"    {name + ':':<14} {path}", file=out)
    out.flush()


NOT_GRADED_YET_LINES = 20  # a class the grader failed on entirely reads the rest in the CSV


def _print_grader_faults(out, info: dict) -> None:
    if info.get("grader faults retried"):
        print(f"  grader faults retried with fresh processes: {info['grader faults retried']} (no grade depends on them; "
              "staff.json names them)", file=out)
    not_yet = list(info.get("not graded yet", {}).items())
    for student, why in not_yet[:NOT_GRADED_YET_LINES]:
        print(f"  NOT GRADED YET: {student}: {why}. Run autograde again; if it persists, see staff.json", file=out)
    if len(not_yet) > NOT_GRADED_YET_LINES:
        print(f"  NOT GRADED YET: {len(not_yet) - NOT_GRADED_YET_LINES} more (status \"grader error\" in "
              "grades-by-check.csv)", file=out)


def _print_score_changes(out, info: dict, outputs: dict) -> None:
    changes = info.get("score changes") or {}
    if changes.get("checks"):
        why = ", ".join(f"{reason} {count}" for reason, count in changes.items() if reason not in ("students", "checks"))
        print(f"  regraded: {changes['students']} student(s) with a changed score, {changes['checks']} check(s) "
              f"({why}); see {outputs.get('score changes', 'score-changes.csv')}", file=out)


def main(*, assignment: Assignment | str, course_dir: Path | str = ".", workers: int | None = None, device: str = "cpu",
         students: list[str] | None = None, force: bool = False, cell_timeout: float | None = None,
         unconfined: bool = False) -> int:
    """`assignment`: the value the command line made of the name (a name is looked up here too)."""
    course_dir = Path(course_dir)
    try:
        if isinstance(assignment, str):
            try:
                assignment = assignment_named(assignment)
            except ValueError as error:
                raise UsageError(str(error)) from None
        _check_arguments(assignment.name, course_dir, students)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    try:
        with stop_on_signals():  # Ctrl-C and SIGTERM: stop every process of the run, keep what is stored
            info = run_batch(assignment=assignment, course_dir=course_dir, workers=workers or os.cpu_count() or 1,
                             device=device, students=students or None, force=force, cell_timeout_s=cell_timeout,
                             unconfined=unconfined)
    except ConfinementRefused as refused:
        print(f"error: {refused.reason}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    except GraderUnavailable as error:
        print(f"error: {error}; nothing was graded or changed: run autograde again (if it persists, the machine "
              "cannot start the grader's sandboxes: see the zygote's message above)", file=sys.stderr)
        return 1
    except UsageError as error:  # another run holds the course
        print(f"error: {error}", file=sys.stderr)
        return USAGE_EXIT_STATUS
    except Interrupted as stop:
        print(stopped_line(stop), file=sys.stderr, flush=True)
        return stop.exit_status
    from autograder.outputs.publish import NOT_WRITTEN

    return 0 if info["failed"] == 0 and not info.get(NOT_WRITTEN) else 1


def stopped_line(stop: Interrupted) -> str:
    """The one line a stopped run prints."""
    if getattr(stop, "publishing", False):
        return (f"autograde: stopped by {stop.by} while writing the outputs; every grade is stored: run the same "
                "command again to write them (nothing is graded again)")
    if not hasattr(stop, "graded"):
        return f"autograde: stopped by {stop.by} before grading began; nothing was changed"
    return (f"autograde: stopped by {stop.by}; {stop.graded} submission(s) graded in this run are stored, "
            f"{stop.pending} not yet: run the same command again to grade those and write the outputs")
