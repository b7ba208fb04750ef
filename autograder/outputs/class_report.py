"""The class report: one HTML page, `COURSE/reports/<assignment>/index.html`, with PNG plots
next to it (score histogram, pass rate per check, how often each misconception was seen, the
slowest submissions), a table of the submissions that could not be graded and why, and how the
run went (workers, device, wall time, and which parts of the sandbox the platform allowed).

Plots are drawn with matplotlib's object API on Agg canvases (no pyplot, no global backend
switch); student ids reach the plots as plain text (mathtext off), the page through Jinja2 with
autoescape.
"""
from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from autograder.assignment import CHECKS, MAX_SCORE
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.model.records import GradedSubmission
from autograder.model.status import CheckStatus, SubmissionStatus
from autograder.outputs.feedback_html import environment, safe_dir_name

SLOWEST = 10


def _figure(width=7.0, height=3.6):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> str:
    import matplotlib

    with matplotlib.rc_context({"text.parse_math": False, "text.usetex": False}):
        figure.savefig(path, format="png")
    return path.name


def _empty(ax, text="nothing to show"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _histogram(scores: list[float], path: Path) -> str:
    figure = _figure()
    ax = figure.add_subplot()
    if scores:
        edges = [x - 0.5 for x in range(int(MAX_SCORE) + 2)]
        ax.hist(scores, bins=edges, color="#4a78b5", edgecolor="white")
        ax.set_xticks(range(int(MAX_SCORE) + 1))
    else:
        _empty(ax)
    ax.set_xlabel(f"autograded score (out of {MAX_SCORE:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    return _save(figure, path)


def _pass_rates(per_check: list[dict], path: Path) -> str:
    figure = _figure()
    ax = figure.add_subplot()
    names = [row["name"] for row in per_check]
    ax.bar(names, [100 * row["rate"] for row in per_check], color="#5a9e5a")
    ax.set_ylim(0, 100)
    ax.set_ylabel("% of graded submissions passing")
    ax.set_title("Pass rate per check")
    return _save(figure, path)


def _misconceptions(counts: list[tuple[str, int, str]], path: Path) -> str:
    figure = _figure(height=max(2.5, 0.35 * len(counts) + 1.2))
    ax = figure.add_subplot()
    if counts:
        ax.barh([c[0] for c in counts][::-1], [c[1] for c in counts][::-1], color="#c0504d")
        ax.set_xlabel("submissions")
    else:
        _empty(ax, "no misconception recognised")
    ax.set_title("Misconceptions seen")
    return _save(figure, path)


def _slowest(rows: list[tuple[str, float, float]], path: Path) -> str:
    figure = _figure(height=max(2.5, 0.35 * len(rows) + 1.2))
    ax = figure.add_subplot()
    if rows:
        ax.barh(range(len(rows)), [r[1] for r in rows][::-1], color="#8064a2")
        ax.set_yticks(range(len(rows)), [_label(r[0]) for r in rows][::-1])
        for text in ax.get_yticklabels():
            text.set_parse_math(False)
        ax.set_xlabel("seconds to grade")
    else:
        _empty(ax)
    ax.set_title(f"Slowest submissions (top {SLOWEST})")
    return _save(figure, path)


def _label(student: str) -> str:
    printable = "".join(ch if ch.isprintable() else "?" for ch in student)
    return printable if len(printable) <= 24 else printable[:23] + "…"


def _count_isolation(records: list[GradedSubmission], key: str) -> list[tuple[str, int]]:
    counts = Counter()
    for record in records:
        if record.result and record.result.isolation:
            counts.update(dict.fromkeys(record.result.isolation.get(key, []), 1))
    return counts.most_common()


def _describe(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def write_class_report(course_dir: Path, assignment: str, records: list[GradedSubmission],
                       run_info: dict) -> Path:
    """Write the report and its plots; returns the path of index.html."""
    out = Path(course_dir) / "reports" / safe_dir_name(assignment)
    out.mkdir(parents=True, exist_ok=True)
    graded = [r for r in records if r.status == SubmissionStatus.GRADED and r.result]
    not_graded = [r for r in records if r not in graded]
    scores = [r.score for r in records]

    per_check = []
    for name, points in CHECKS.items():
        statuses = Counter(c.status for r in graded for c in r.result.checks if c.name == name)
        total = sum(statuses.values())
        per_check.append(dict(name=name, points=points, passed=statuses[CheckStatus.PASSED], failed=statuses[CheckStatus.FAILED],
                              error=statuses[CheckStatus.ERROR], rate=statuses[CheckStatus.PASSED] / total if total else 0.0))
    seen = Counter()  # only from work that was judged: a not-graded record's zeros name no misconception
    for record in graded:
        if record.result:
            seen.update({c.misconception for c in record.result.checks if c.misconception})
    misconceptions = [(mid, n, MISCONCEPTIONS.get(mid, "")) for mid, n in seen.most_common()]
    slowest = sorted(((r.student, r.result.execution_time_s, r.score) for r in graded),
                     key=lambda row: -row[1])[:SLOWEST]

    plots = dict(
        histogram=_histogram(scores, out / "score_histogram.png"),
        pass_rate=_pass_rates(per_check, out / "pass_rate_per_check.png"),
        misconceptions=_misconceptions(misconceptions, out / "misconceptions.png"),
        slowest=_slowest(slowest, out / "slowest_submissions.png"),
    )
    html = environment().get_template("class_report.html").render(
        assignment=assignment, max_score=MAX_SCORE,
        n_total=len(records), n_graded=len(graded), n_not_graded=len(not_graded),
        n_late=sum(1 for r in records if r.late),
        mean=statistics.fmean(scores) if scores else 0.0,
        median=statistics.median(scores) if scores else 0.0,
        n_full=sum(1 for s in scores if s >= MAX_SCORE),
        run_info=[(str(k), _describe(v)) for k, v in run_info.items()],
        isolation_applied=_count_isolation(records, "applied"),
        isolation_missing=_count_isolation(records, "missing"),
        plots=plots, per_check=per_check, misconceptions=misconceptions, slowest=slowest,
        not_graded=[(r.student, r.reason or r.status) for r in not_graded],
    )
    index = out / "index.html"
    tmp = out / "index.html.tmp"
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(index)
    return index
