"""The class report: one HTML page, `COURSE/reports/<assignment>/index.html`, with PNG plots
next to it (score histogram, pass rate per check, the misconceptions that were root causes, the
slowest submissions), a table of every student (score, status, late, integrity flags, a link to
their feedback page), the downstream symptoms apart from their causes, a table of the
submissions that could not be graded and why, and how the run went (workers, device, wall time,
and which parts of the sandbox the platform allowed). What it says is computed in
class_summary.py; this module draws and renders it.

Plots are drawn with matplotlib's object API on Agg canvases (no pyplot, no global backend
switch), with whole-number axes wherever they count students; student ids and titles reach the
plots as plain text (mathtext off), the page through Jinja2 with autoescape. Numbers and dates
have one format each (outputs/formats.py).
"""
from __future__ import annotations

import functools
import io
import math
import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from autograder.assignment import Assignment
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.model.records import GRADED, GradedSubmission
from autograder.outputs.atomic import write_atomic
from autograder.outputs.class_summary import SLOWEST, MisconceptionCount, Timing, summarise
from autograder.outputs.feedback_html import TEMPLATES, feedback_path, safe_dir_name
from autograder.outputs.formats import number_text, utc_text
from autograder.outputs.hand_graded import hand_graded
from autograder.outputs.markdown_html import markdown_html

# run_info keys the page states itself (in its header, with the graded-only mean and the not-graded list).
# The outputs publish() could not write (its NOT_WRITTEN key) are a warning at the top, not a row.
_NOT_WRITTEN = "outputs not written"
_RESTATED_IN_HEADER = {"mean score", "not graded", _NOT_WRITTEN}
TITLE_WIDTH = 52  # a misconception title's longest chart label; the titles' test keeps them shorter


@functools.cache
def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(number=number_text, utc=utc_text, markdown=markdown_html)
    return env


def _figure(width=7.0, height=3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> str:
    import matplotlib

    image = io.BytesIO()
    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        figure.savefig(image, format="png")
    write_atomic(path, image.getvalue())
    return path.name


def _whole_numbers(axis) -> None:
    """Ticks only at whole numbers: an axis that counts students has no 0.25 of a student."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _plain_tick_labels(labels) -> None:
    for text in labels:
        text.set_parse_math(False)


def _empty(ax, text="nothing to show"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _histogram(scores: list[float], max_score: float, n_not_graded: int, path: Path) -> str:
    figure = _figure()
    ax = figure.add_subplot()
    if scores:
        top = max(int(max_score), math.ceil(max(scores)))
        # one bar per possible score: whole points, or half points if partial credit gave any
        step = 1.0 if all(float(s).is_integer() for s in scores) else 0.5
        edges = [i * step - step / 2 for i in range(int(top / step) + 2)]
        ax.hist(scores, bins=edges, color="#4a78b5", edgecolor="white")
        ax.set_xticks(range(top + 1))
        _whole_numbers(ax.yaxis)
    else:
        _empty(ax, "no graded submission")
    ax.set_xlabel(f"autograded score (out of {max_score:g})")
    ax.set_ylabel("students")
    title = f"Scores of the {len(scores)} graded submissions"
    ax.set_title(title + (f" ({n_not_graded} not graded, not shown)" if n_not_graded else ""))
    return _save(figure, path)


def _pass_rates(per_check: list[dict], path: Path) -> str:
    figure = _figure()
    ax = figure.add_subplot()
    names = [row["name"] for row in per_check]
    ax.bar(names, [100 * row["rate"] for row in per_check], color="#5a9e5a")
    _plain_tick_labels(ax.get_xticklabels())
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of graded submissions passing")
    ax.set_title("Pass rate per check")
    return _save(figure, path)


def _root_causes(counts: list[MisconceptionCount], path: Path) -> str:
    figure = _figure(width=8.0, height=max(2.5, 0.35 * len(counts) + 1.2))
    ax = figure.add_subplot()
    if counts:
        shown = counts[::-1]  # most frequent at the top
        ax.barh(range(len(shown)), [c.students for c in shown], color="#c0504d")
        ax.set_yticks(range(len(shown)), [_label(c.title, TITLE_WIDTH) for c in shown])
        _plain_tick_labels(ax.get_yticklabels())
        _whole_numbers(ax.xaxis)
        ax.set_xlabel("students")
    else:
        _empty(ax, "no misconception recognised")
    ax.set_title("Root causes (each counted once per student)")
    return _save(figure, path)


def _slowest(rows: list[Timing], path: Path, without_startup: bool = True) -> str:
    figure = _figure(height=max(2.5, 0.35 * len(rows) + 1.2))
    ax = figure.add_subplot()
    if rows:
        ax.barh(range(len(rows)), [r.seconds for r in rows][::-1], color="#8064a2")
        ax.set_yticks(range(len(rows)), [_label(r.student) for r in rows][::-1])
        _plain_tick_labels(ax.get_yticklabels())
        ax.set_xlabel("seconds to grade" + (", without worker start-up" if without_startup else ""))
    else:
        _empty(ax)
    ax.set_title(f"Slowest submissions (top {SLOWEST})")
    return _save(figure, path)


def _label(text: str, width: int = 24) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in text)
    return printable if len(printable) <= width else printable[:width - 1] + "…"


def _count_isolation(records: list[GradedSubmission], key: str) -> list[tuple[str, int]]:
    counts = Counter()
    for record in records:
        if record.result and record.result.isolation:
            counts.update(dict.fromkeys(record.result.isolation.get(key, []), 1))
    return counts.most_common()


def _describe(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _report_folder(course_dir: Path, assignment: Assignment) -> Path:
    out = Path(course_dir) / "reports" / safe_dir_name(assignment.name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _draw(out: Path, summary, max_score: float) -> dict[str, str]:
    return dict(
        histogram=_histogram(summary.graded_scores, max_score, len(summary.not_graded), out / "score_histogram.png"),
        pass_rate=_pass_rates(summary.per_check, out / "pass_rate_per_check.png"),
        misconceptions=_root_causes(summary.root_causes, out / "misconceptions.png"),
        slowest=_slowest(summary.slowest, out / "slowest_submissions.png", summary.timing_without_startup),
    )


def draw_class_plots(course_dir: Path, assignment: Assignment, records: list[GradedSubmission]) -> dict[str, str]:
    """Draw the report's plots (they depend on the records only); returns their file names, for
    `write_class_report(..., plots=)`. Most of the report's time is here."""
    return _draw(_report_folder(course_dir, assignment), summarise(records, assignment, MISCONCEPTIONS),
                 assignment.max_score)


def _feedback_link(course_dir: Path, assignment: Assignment, out: Path, student: str) -> str | None:
    """The student's feedback page relative to the report, URL-quoted; None if it was not written."""
    try:
        page = feedback_path(course_dir, assignment, student)
    except ValueError:  # an id that cannot be a folder has no page
        return None
    if not page.is_file():
        return None
    return "/".join(quote(part) for part in Path(os.path.relpath(page, out)).parts)


def _student_rows(course_dir: Path, assignment: Assignment, out: Path, records: list[GradedSubmission]) -> list[dict]:
    """One row per submission, by student id: score, status, late, integrity, when graded, the
    term whose release graded it, what the staff graded by hand, page."""
    return [dict(student=r.student, score=r.score, status=str(r.status), late=r.late,
                 integrity="; ".join(r.result.integrity) if r.result else "", graded_at=utc_text(r.graded_at),
                 term=r.result.term if r.result else "", by_hand=_by_hand(r, assignment),
                 feedback=_feedback_link(course_dir, assignment, out, r.student))
            for r in sorted(records, key=lambda r: r.student)]


def _by_hand(record: GradedSubmission, assignment: Assignment) -> str:
    """The written answers' score and the total with them, once every answer is graded in
    formgrader (and any check score a TA overrode); else what is left to grade."""
    if not assignment.manual_checks or record.status != GRADED:
        return ""
    graded = hand_graded(record, assignment)
    points = sum(answer.points for answer in graded.written)
    if not graded.complete:
        return f"to grade in formgrader ({number_text(points)} points)"
    written = sum(answer.score for answer in graded.written)
    overridden = f", {len(graded.overridden)} check score(s) overridden" if graded.overridden else ""
    return (f"{number_text(written)} / {number_text(points)}; total {number_text(graded.total)} / "
            f"{number_text(assignment.max_score + points)}{overridden}")


def write_class_report(course_dir: Path, assignment: Assignment, records: list[GradedSubmission],
                       run_info: dict, *, plots: dict[str, str] | None = None) -> Path:
    """Write the report, and its plots unless `plots` (draw_class_plots' answer for these records)
    are given; returns the path of index.html."""
    out = _report_folder(course_dir, assignment)
    summary = summarise(records, assignment, MISCONCEPTIONS)
    max_score = assignment.max_score
    scores = summary.graded_scores
    if plots is None:
        plots = _draw(out, summary, max_score)
    students = _student_rows(course_dir, assignment, out, records)
    html = _environment().get_template("class_report.html").render(
        assignment=assignment.name, max_score=max_score, written_at=utc_text(datetime.now(UTC)),
        n_total=summary.n_total, n_graded=len(scores), n_not_graded=len(summary.not_graded),
        students=students, late=[(i, row["student"]) for i, row in enumerate(students) if row["late"]],
        mean=summary.mean, median=summary.median,
        n_full=sum(1 for s in scores if s >= max_score),
        run_info=[(str(k), _describe(v)) for k, v in run_info.items() if k not in _RESTATED_IN_HEADER],
        isolation_applied=_count_isolation(records, "applied"),
        isolation_missing=_count_isolation(records, "missing"),
        plots=plots, per_check=summary.per_check,
        root_causes=summary.root_causes, symptoms=summary.symptoms,
        slowest=summary.slowest, timing_measure=summary.timing_measure,
        left_out_of_timing=summary.left_out_of_timing, needs_a_look=summary.needs_a_look,
        not_written=[str(item) for item in (run_info.get(_NOT_WRITTEN) or [])],
        not_graded=[dict(student=r.student, status=str(r.status), reason=r.reason or str(r.status),
                         submitted=utc_text(r.timestamp), late=r.late) for r in summary.not_graded],
        integrity=[(r.student, "; ".join(r.result.integrity)) for r in records if r.result and r.result.integrity],
    )
    return write_atomic(out / "index.html", html)
