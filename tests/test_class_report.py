"""The class report as a teacher reads it, from hand-made records (no grading runs here):
misconceptions in plain words, root causes apart from their downstream symptoms and counted once
per student, whole-number axes where students are counted, scores over the graded submissions
only, timings without worker start-up, one number format and one date format."""
import html
import re
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.feedback.misconception_titles import MISCONCEPTION_TITLES, misconception_title
from autograder.feedback.misconceptions import MISCONCEPTIONS
from autograder.model.records import GradedSubmission
from autograder.model.results import CheckResult, SubmissionResult
from autograder.outputs import class_report
from autograder.outputs.class_report import write_class_report
from autograder.outputs.class_summary import split_misconceptions, summarise
from autograder.outputs.feedback_html import feedback_path, write_feedback_pages

ASSIGNMENT = "pytorch_slope"
SUBMITTED = datetime(2026, 11, 21, 17, 45, 10, 511111)  # naive: nbgrader's timestamp.txt convention
GRADED_AT = datetime(2026, 11, 29, 9, 16, 16, tzinfo=UTC)


def result(failed=None, seconds=0.4, error=()):
    failed = failed or {}
    checks = []
    for name, points in CHECKS.items():
        if name in error:
            checks.append(CheckResult(name, 0, points, "error", "The grader itself failed on this check."))
        elif name in failed:
            checks.append(CheckResult(name, 0, points, "failed", f"{name} is wrong", failed[name]))
        else:
            checks.append(CheckResult(name, points, points, "passed", "Passed."))
    return SubmissionResult(checks, [], seconds, {"applied": ["no network"], "missing": []})


def record(student, res=None, status="graded", reason="", worker_seconds=None, extra=None):
    data = dict(extra or {})
    if worker_seconds is not None:
        data["worker_seconds"] = worker_seconds
    return GradedSubmission(student, ASSIGNMENT, "nb.ipynb", "hash-" + student, SUBMITTED, False, status,
                            reason, res if res is not None else result(), GRADED_AT, data)


# a loss that sums, then symptoms of it in the checks that run it (hand-made: blame now gives these checks the
# loss's own misconception, but records from before blame, and failures no step explains, still look like this)
LOSS_SUM_CHAIN = {"loss": "loss_sum", "gradient": "gradient_wrong_value", "final_loss": "training_diverges"}


def test_every_misconception_has_a_short_plain_title():
    missing = sorted(set(MISCONCEPTIONS) - set(MISCONCEPTION_TITLES))
    assert not missing, f"add a title to autograder/feedback/misconception_titles.py for: {missing}"
    for mid, title in MISCONCEPTION_TITLES.items():
        assert "_" not in title.replace("zero_grad", ""), f"{mid}: the title reads like an id: {title!r}"
        assert len(title) <= class_report.TITLE_WIDTH, f"{mid}: the title does not fit a chart label: {title!r}"
    assert misconception_title("some_new_id") == "Some new id"  # an id without a title still reads as words


def test_a_sum_loss_is_one_root_cause_and_its_consequences_are_symptoms():
    roots, symptoms = split_misconceptions(record("chen", result(LOSS_SUM_CHAIN)), PYTORCH_SLOPE)
    assert roots == {"loss_sum"}
    assert symptoms == {"gradient_wrong_value": {"loss_sum"}, "training_diverges": {"loss_sum"}}


def test_a_failure_with_no_failed_dependency_is_a_root_cause():
    # update runs only the student's update: its failure is a root even after a failed loss
    roots, symptoms = split_misconceptions(record("gus", result(
        {"loss": "loss_sum", "update": "update_rebinds", "final_loss": "training_diverges"})), PYTORCH_SLOPE)
    assert roots == {"loss_sum", "update_rebinds"}
    assert symptoms == {"training_diverges": {"loss_sum", "update_rebinds"}}
    # the training check alone failing is the only evidence, so it is the root cause
    roots, symptoms = split_misconceptions(record("ivy", result({"final_loss": "training_diverges"})), PYTORCH_SLOPE)
    assert roots == {"training_diverges"} and symptoms == {}


def test_a_dead_sandbox_is_a_symptom_of_what_ended_it():
    roots, symptoms = split_misconceptions(record("kim", result(
        {"forward": "crashed", "update": "sandbox_died", "zero_grad": "sandbox_died"})), PYTORCH_SLOPE)
    assert roots == {"crashed"} and symptoms == {"sandbox_died": {"crashed"}}


def test_misconceptions_are_counted_once_per_student():
    stub = result({name: "not_implemented" for name in CHECKS})
    records = [record("ben", stub), record("chen", result(LOSS_SUM_CHAIN)), record("gus", result(LOSS_SUM_CHAIN)),
               record("dara", result({"update": "update_sign", "final_loss": "training_diverges"})),
               record("ivy", result({"final_loss": "training_diverges"}))]
    summary = summarise(records, PYTORCH_SLOPE)
    roots = {c.id: c.students for c in summary.root_causes}
    symptoms = {c.id: c for c in summary.symptoms}
    assert roots == {"loss_sum": 2, "not_implemented": 1, "update_sign": 1, "training_diverges": 1}
    assert set(symptoms) == {"gradient_wrong_value", "training_diverges"}
    assert symptoms["gradient_wrong_value"].students == 2
    assert symptoms["training_diverges"].students == 3  # chen, gus, dara; ivy's is a root cause
    assert dict(symptoms["training_diverges"].caused_by) == {
        misconception_title("loss_sum"): 2, misconception_title("update_sign"): 1}
    assert summary.root_causes[0].id == "loss_sum"  # most students first


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r"<h2[^>]*>", html)
    return {part.split("</h2>", 1)[0]: part for part in parts[1:]}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """One report of a small class: two students share a sum-loss chain, one left the stubs, one
    cannot be graded; the first job of each worker paid its worker's start-up."""
    course = tmp_path_factory.mktemp("course")
    records = [
        record("ada", result(seconds=0.82), worker_seconds=6.3),  # first job of worker 1
        record("ben", result({n: "not_implemented" for n in CHECKS}, seconds=0.94), worker_seconds=6.6),
        record("chen", result(LOSS_SUM_CHAIN, seconds=0.27), worker_seconds=0.30),
        record("gus", result({**LOSS_SUM_CHAIN, "update": "update_rebinds"}, seconds=0.36), worker_seconds=0.41),
        record("hana", result(seconds=0.46), worker_seconds=0.50),
        record("ivo", result({"forward": "forward_detached", "gradient": "gradient_none",
                              "final_loss": "exception"}, seconds=0.33), worker_seconds=0.35),
        record("zoe", result({n: "sandbox_died" for n in CHECKS}), status="not graded",
               reason="the file is not a notebook"),
    ]
    figures = {}
    original = class_report._save

    def keep(figure, path):  # the figures themselves, to read their axes
        figures[path.name] = figure
        return original(figure, path)

    patch = pytest.MonkeyPatch()
    patch.setattr(class_report, "_save", keep)
    try:
        run_info = {"workers": 2, "mean score": 17 / 3 * 0.5, "grading wall time (s)": 12.345}
        write_feedback_pages(course, PYTORCH_SLOPE, records)  # as publish() does: the pages, then the report
        index = write_class_report(course, PYTORCH_SLOPE, records, run_info)
    finally:
        patch.undo()
    return dict(course=course, html=index.read_text(), figures=figures, records=records)


def test_axes_that_count_students_have_whole_number_ticks(report):
    for name, axis in (("score_histogram.png", "y"), ("misconceptions.png", "x")):
        ax = report["figures"][name].axes[0]
        low, high = ax.get_ylim() if axis == "y" else ax.get_xlim()
        ticks = [t for t in (ax.get_yticks() if axis == "y" else ax.get_xticks()) if low <= t <= high]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), f"{name}: {axis} ticks {ticks}"


def test_root_cause_chart_is_labelled_in_plain_words_without_symptoms(report):
    ax = report["figures"]["misconceptions.png"].axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels[-1] == misconception_title("loss_sum")  # barh draws bottom-up: the top bar is last
    assert misconception_title("training_diverges") not in labels
    assert misconception_title("gradient_wrong_value") not in labels
    assert not any("_" in label for label in labels), labels


def test_page_separates_root_causes_from_symptoms(report):
    sections = _sections(report["html"])
    roots = next(v for k, v in sections.items() if "root causes" in k)
    symptoms = sections["Downstream symptoms"]
    assert misconception_title("loss_sum") in roots and misconception_title("update_rebinds") in roots
    for symptom in ("gradient_wrong_value", "training_diverges", "gradient_none"):
        assert misconception_title(symptom) not in roots
        assert misconception_title(symptom) in symptoms
    row = re.search(misconception_title("gradient_wrong_value") + r".*?</tr>", symptoms, re.S).group(0)
    assert ">2<" in row and "Sum instead of mean in the loss (2)" in row


def test_scores_are_over_graded_submissions_with_the_not_graded_apart(report):
    html = report["html"]
    # graded: 10, 0, 4, 2, 10, 5 -> mean 31/6 = 5.17, median 4.50; zoe is not in them
    assert "6 graded" in html and "1 not graded" in html
    assert "mean 5.17" in html and "median 4.50" in html
    not_graded = _sections(html)["Not graded"]
    assert "zoe" in not_graded and "the file is not a notebook" in not_graded
    assert "2.83" not in html  # the run summary's mean, which counts zoe as 0, is not restated


def test_slowest_ranking_leaves_out_worker_start_up(report):
    slowest = _sections(report["html"])["Slowest submissions"]
    ranked = re.findall(r"<tr><td>(\w+)</td><td class=\"num\">([\d.]+)</td>", slowest)
    assert [s for s, _ in ranked][:2] == ["hana", "gus"], ranked
    assert "ada" not in [s for s, _ in ranked] and "ben" not in [s for s, _ in ranked]
    assert "Left out, because their time includes their worker's start-up: ada, ben" in html.unescape(slowest)


def test_the_slowest_caption_claims_nothing_that_is_not_shown(tmp_path):
    """The caption said each worker's first submission was left out, and listed them first: no
    time here includes more start-up than the rule detects, so nobody is left out or said to be."""
    records = [record("ada", result(seconds=1.13), worker_seconds=1.4), record("ben", result(seconds=0.7), worker_seconds=0.8)]
    page = html.unescape(write_class_report(tmp_path, PYTORCH_SLOPE, records, {}).read_text())
    slowest = _sections(page)["Slowest submissions"]
    assert "left out" not in slowest.lower() and "without worker start-up" not in slowest, slowest
    assert "also holds some of the worker's warm-up" in slowest
    assert re.findall(r"<tr><td>(\w+)</td>", slowest) == ["ada", "ben"]


def _links(section: str) -> dict[str, str | None]:
    rows = re.findall(r'<tr id="student-\d+"><td>(.*?)</td>.*?</td><td>(?:<a href="([^"]+)">feedback page</a>|not written)</td></tr>',
                      section, re.S)
    return {html.unescape(student): link or None for student, link in rows}


def test_every_student_has_a_row_with_a_link_to_their_feedback_page(report):
    """The report had no per-student table and no links to the feedback pages."""
    index = report["course"] / "reports" / "pytorch_slope" / "index.html"
    students = _sections(report["html"])["Students"]
    links = _links(students)
    assert sorted(links) == sorted(r.student for r in report["records"])
    for record in report["records"]:
        target = (index.parent / unquote(links[record.student])).resolve()
        assert target == feedback_path(report["course"], PYTORCH_SLOPE, record.student).resolve() and target.is_file()
    zoe = re.search(r"<td>zoe</td>(.*?)</tr>", students, re.S).group(1)
    assert "not graded" in zoe and "0.00" in zoe
    assert re.search(r"<td>gus</td><td class=\"num\">2.00</td><td>graded</td>", students)


def test_a_student_id_is_quoted_in_its_link_and_a_missing_page_says_so(tmp_path):
    records = [record("ana maría#1?", result()), record("50%", result()), record("nopage", result())]
    write_feedback_pages(tmp_path, PYTORCH_SLOPE, records[:2])
    index = write_class_report(tmp_path, PYTORCH_SLOPE, records, {})
    links = _links(_sections(index.read_text())["Students"])
    assert links["nopage"] is None
    for student in ("ana maría#1?", "50%"):
        assert "#" not in links[student] and "?" not in links[student] and " " not in links[student]
        assert (index.parent / unquote(links[student])).resolve() == feedback_path(tmp_path, PYTORCH_SLOPE, student).resolve()


def test_late_students_are_named_and_flagged(tmp_path):
    """The late student was counted but not named."""
    records = [record("amy", result()), record("bob", result()), record("cy", result())]
    records[0].late = records[2].late = True
    page = write_class_report(tmp_path, PYTORCH_SLOPE, records, {}).read_text()
    top = page.split("<h2", 1)[0]
    assert re.search(r'2 late \(<a href="#student-0">amy</a>, <a href="#student-2">cy</a>\)', top), top
    students = _sections(page)["Students"]
    assert [bool(re.search(r"<td>late</td>", row)) for row in students.split("<tr id=")[1:]] == [True, False, True]


def test_a_record_without_worker_timing_is_ranked_by_its_execution_time():
    records = [record("solo", result(seconds=2.5)), record("duo", result(seconds=0.5), worker_seconds=0.6)]
    assert [(t.student, t.seconds) for t in summarise(records, PYTORCH_SLOPE).slowest] == [("solo", 2.5), ("duo", 0.5)]


def test_a_measured_own_grading_time_is_preferred():
    records = [record("ada", result(seconds=0.82), worker_seconds=6.3, extra={"grading_time_s": 0.9}),
               record("ben", result(seconds=0.5), worker_seconds=0.6, extra={"grading_time_s": 0.4})]
    summary = summarise(records, PYTORCH_SLOPE)
    assert [(t.student, t.seconds) for t in summary.slowest] == [("ada", 0.9), ("ben", 0.4)]
    assert summary.left_out_of_timing == [] and "without worker start-up" in summary.timing_measure


def _visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", html, flags=re.S))


def test_one_number_format(report):
    text = _visible_text(report["html"])
    decimals = re.findall(r"\d+\.(\d+)", text)
    assert decimals and all(len(d) == 2 for d in decimals), sorted(set(decimals))


DATE = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC"


@pytest.mark.parametrize("page", ["report", "feedback"])
def test_one_date_format(report, page):
    if page == "report":
        html = report["html"]
    else:
        html = feedback_path(report["course"], PYTORCH_SLOPE, "chen").read_text()
        assert "submitted 2026-11-21 17:45 UTC" in html and "graded 2026-11-29 09:16 UTC" in html
    text = _visible_text(html)
    dates = re.findall(r"\d{4}-\d{2}-\d{2}[^<]{0,20}", text)
    assert dates, "no date on the page"
    for found in dates:
        assert re.match(DATE, found), f"a date in another format: {found!r}"


def test_what_a_ta_must_confirm_and_outputs_not_written_are_at_the_top(tmp_path):
    flagged = result({"forward": "forward_wrong_value"})
    flagged.integrity = ["forward: 1/1 in the notebook's own state but 0/1 in a clean room"]
    records = [record("ada", result()), record("fay", flagged), record("gil", result(error=("update",)))]
    problem = "ada: feedback page (OSError: [Errno 28] No space left on device)"
    html = write_class_report(tmp_path, PYTORCH_SLOPE, records, {"workers": 2, "outputs not written": [problem]}).read_text()
    top = html.split("<h2", 1)[0]
    assert problem in top and "2 graded submissions to confirm by hand" in top
    look = _sections(html)["Needs a look"]
    assert "fay" in look and "in a clean room" in look
    assert "gil" in look and "the grader failed on update" in look and "ada" not in look
    assert problem not in _sections(html)["This run"]


def test_a_half_point_score_gets_its_own_bar(tmp_path, monkeypatch):
    figures = []
    original = class_report._save
    monkeypatch.setattr(class_report, "_save", lambda figure, path: figures.append(figure) or original(figure, path))
    class_report._histogram([7.5, 7.5, 10, 3], PYTORCH_SLOPE.max_score, 0, tmp_path / "h.png")
    bars = {round(p.get_x() + p.get_width() / 2, 2): p.get_height() for p in figures[0].axes[0].patches if p.get_height()}
    assert bars == {3.0: 1, 7.5: 2, 10.0: 1}


def test_each_row_names_its_term_and_what_the_staff_graded_by_hand(tmp_path):
    """The report showed neither the term a submission was graded against nor the written answers
    a TA graded in formgrader: a TA read both student by student on the feedback pages."""
    from autograder.model.manual import ManualGrading

    (written, points), = PYTORCH_SLOPE.manual_checks.items()
    records = [record("amy", result()), record("bob", result()), record("cy", result({"loss": "loss_sum"})),
               record("dee", result(), status="grader error", reason="the grader failed")]
    records[0].result.term, records[1].result.term, records[2].result.term = "2026-fall", "2026-fall", "2027-spring"
    records[0].manual = ManualGrading(scores={written: points})  # graded in formgrader
    records[2].manual = ManualGrading(scores={written: 1.0, "loss": 2.0})  # and a check's 0 overridden by a TA
    page = write_class_report(tmp_path, PYTORCH_SLOPE, records, {}).read_text()
    rows = {re.search(r"<td>(\w+)</td>", row).group(1): row for row in _sections(page)["Students"].split("<tr id=")[1:]}
    full, total = PYTORCH_SLOPE.max_score, PYTORCH_SLOPE.max_score + points
    assert f"<td>2026-fall</td><td>{points:.2f} / {points:.2f}; total {full + points:.2f} / {total:.2f}</td>" in rows["amy"]
    assert f"<td>2026-fall</td><td>to grade in formgrader ({points:.2f} points)</td>" in rows["bob"]
    assert (f"<td>2027-spring</td><td>1.00 / {points:.2f}; total {full + 1:.2f} / {total:.2f}, 1 check score(s) "
            "overridden</td>") in rows["cy"]
    assert "<td></td><td></td><td>" in rows["dee"]  # no score, no term, nothing to grade by hand yet
