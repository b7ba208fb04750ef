"""The class report and a feedback page opened in a real browser (headless Chromium): every image
loads (naturalWidth > 0), nothing fails to load or raises, and the page renders to a screenshot
that is not blank. Skips when /usr/bin/chromium is absent (Debian: `apt-get install -y chromium`).

The browser runs on a copy of each page with a small probe script added at the top of <head>: it
records load and script errors as they happen and, once the page has loaded, writes what it saw
as JSON into the DOM, which `--dump-dom` prints.
"""
import html
import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from autograder.assignment import CHECKS, PYTORCH_SLOPE
from autograder.model.records import GradedSubmission
from autograder.model.results import CheckResult, SubmissionResult
from autograder.outputs.class_report import write_class_report
from autograder.outputs.feedback_html import feedback_path, write_feedback_pages

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium"),
              pytest.mark.slow]  # each page costs a browser start (about 3 s on 2 cores)

ASSIGNMENT = "pytorch_slope"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]
PROBE = """<script>
window.__errors = [];
window.addEventListener("error", function (event) {
  var target = event.target;
  if (target && target !== window && (target.src || target.href)) {
    window.__errors.push("failed to load " + (target.src || target.href));
  } else {
    window.__errors.push("script error: " + event.message);
  }
}, true);
window.addEventListener("load", function () {
  var images = Array.from(document.images).map(function (img) {
    return {src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight};
  });
  var out = document.createElement("pre");
  out.id = "browser-probe";
  out.textContent = JSON.stringify({images: images, errors: window.__errors, title: document.title,
                                    text: document.body.innerText.length});
  document.body.appendChild(out);
});
</script>"""


def chromium(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)


def probe(page: Path, profile: Path) -> dict:
    """What the browser saw on `page`: its images (loaded size), errors, title."""
    copy = page.with_name(page.stem + ".browser-probe.html")  # beside it: relative image paths resolve
    source = page.read_text(encoding="utf-8")
    assert "<head>" in source
    copy.write_text(source.replace("<head>", "<head>\n" + PROBE, 1), encoding="utf-8")
    try:
        run = chromium(copy, profile, "--virtual-time-budget=10000", "--dump-dom")
    finally:
        copy.unlink()
    found = re.search(r'<pre id="browser-probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the page never finished loading in Chromium:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, profile: Path, out: Path, height: int) -> Path:
    chromium(page, profile, f"--window-size=1200,{height}", f"--screenshot={out}")
    assert out.exists(), f"Chromium wrote no screenshot of {page}"
    return out


def assert_not_blank(png: Path) -> None:
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 20, f"{png.name} is (nearly) blank: {len(colours)} colours"


def result(failed=None, seconds=0.4):
    failed = failed or {}
    return SubmissionResult([
        CheckResult(name, 0, points, "failed", f"{name} is wrong\nInput x = [[1.0], [2.0]]", failed[name])
        if name in failed else CheckResult(name, points, points, "passed", "Passed.")
        for name, points in CHECKS.items()], ["Code cell 3 raised NameError: name 'q' is not defined"],
        seconds, {"applied": ["no network"], "missing": []})


def record(student, res, status="graded", reason="", worker_seconds=None):
    return GradedSubmission(student, ASSIGNMENT, "nb.ipynb", "h-" + student, datetime(2026, 11, 21, 17, 45, 10),
                            False, status, reason, res, datetime(2026, 11, 29, 9, 16, tzinfo=UTC),
                            {"worker_seconds": worker_seconds} if worker_seconds else {})


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = tmp_path_factory.mktemp("browser_course")
    chain = {"loss": "loss_sum", "gradient": "gradient_wrong_value", "final_loss": "training_diverges"}
    records = [
        record("ada", result(seconds=0.82), worker_seconds=6.3),
        record("chen", result(chain, 0.27), worker_seconds=0.3),
        record("dara", result({"update": "update_sign", "final_loss": "training_diverges"}, 0.5), worker_seconds=0.55),
        record("$x^{2}_a", result({"forward": "forward_detached", "gradient": "gradient_none"}, 0.3)),
        record('<img src=x onerror="alert(1)">', result({"zero_grad": "zero_grad_weight"}, 0.35)),
        record("zoe", result({n: "sandbox_died" for n in CHECKS}), "not graded", "the file is not a notebook"),
    ]
    index = write_class_report(course, PYTORCH_SLOPE, records, {"workers": 2, "device": "cpu"})
    write_feedback_pages(course, PYTORCH_SLOPE, records)
    return {"report": index, "feedback": feedback_path(course, PYTORCH_SLOPE, "chen")}


def test_class_report_loads_every_image_without_errors(course, tmp_path):
    seen = probe(course["report"], tmp_path / "profile")
    assert seen["errors"] == [], seen["errors"]
    assert "Class report" in seen["title"]
    sources = {image["src"] for image in seen["images"]}
    assert sources == {"score_histogram.png", "pass_rate_per_check.png", "misconceptions.png", "slowest_submissions.png"}
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 100 and image["height"] > 100, image
    assert_not_blank(screenshot(course["report"], tmp_path / "profile", tmp_path / "report.png", 4000))


def test_feedback_page_renders_without_errors(course, tmp_path):
    seen = probe(course["feedback"], tmp_path / "profile")
    assert seen["errors"] == [], seen["errors"]
    assert "Feedback" in seen["title"] and seen["text"] > 200
    for image in seen["images"]:
        assert image["complete"] and image["width"] > 0, image
    assert_not_blank(screenshot(course["feedback"], tmp_path / "profile", tmp_path / "feedback.png", 1600))


def test_the_probe_sees_a_broken_image(tmp_path):
    """The check above can fail: a page whose image is missing is reported."""
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><head><title>t</title></head><body><img src="missing.png"></body></html>')
    seen = probe(page, tmp_path / "profile")
    assert seen["images"][0]["width"] == 0
    assert any("missing.png" in error for error in seen["errors"]), seen["errors"]
