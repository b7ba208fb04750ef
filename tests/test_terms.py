"""Every term that has submissions can be graded (issue 29): a submission is graded against the
release it was made from, matched by its locked cells, with that term's grading secret; one that
matches no release is graded against the current one and named; a grade stays current while its
own release and secret do, whatever the next term's release changes.

Two releases that differ only in their `parameters` cell stand for two terms: the committed
release (its own term) and the same notebook with another term's parameters.
"""
from __future__ import annotations

import json

import nbformat
import pytest

from autograder.assignment import PYTORCH_SLOPE
from autograder.autograde.main import graded_by, release_summary
from autograder.model.records import GRADED, GradedSubmission
from autograder.model.results import SubmissionResult
from autograder.notebook.load import load_submission
from autograder.notebook.releases import KnownReleases, cells_of, known_releases
from autograder.pipeline import GradingContext, grade_submission
from autograder.release import notebook as release_notebook
from autograder.release.sample_class import LOSS_SUM
from autograder.release.synthetic import make_submission, write_submission
from autograder.release.term import derive
from autograder.terms import ReleaseCells, TermSecrets, read_earlier_releases, read_secrets, secrets_json

THIS, NEXT = "2026-fall", "2031-spring"  # the committed release's term (any name does) and the next one
SECRETS = {THIS: "aa" * 32, NEXT: "bb" * 32}
LOCKED_NOTE = "Locked cells were changed"


def _with_parameters(notebook, term: str):
    cell = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "parameters")
    cell.source = release_notebook.parameters_source(derive(term))
    return notebook


@pytest.fixture(scope="module")
def two_terms():
    """KnownReleases with NEXT current and THIS kept from before."""
    released = nbformat.read(PYTORCH_SLOPE.release_notebook, as_version=4)
    this = cells_of(released, THIS)
    following = cells_of(_with_parameters(nbformat.read(PYTORCH_SLOPE.release_notebook, as_version=4), NEXT), NEXT)
    return KnownReleases(following, (this,), SECRETS)


# --------------------------------------------------------------------------- matching

def test_a_notebook_matches_the_release_it_was_made_from(two_terms):
    made_from_this = make_submission()
    assert two_terms.match(made_from_this).term == THIS
    assert two_terms.match(_with_parameters(make_submission(), NEXT)).term == NEXT
    # a student's edit to another locked cell does not hide where the notebook came from
    edited = make_submission()
    next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "provided_train_model").source += "\n# mine"
    assert two_terms.match(edited).term == THIS


def test_a_notebook_that_could_be_either_term_or_none_matches_no_release(two_terms):
    edited_parameters = make_submission()
    next(c for c in edited_parameters.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "parameters").source = "TRUE_SLOPE = 9.9"
    assert two_terms.match(edited_parameters) is None  # every other locked cell is in both terms' releases
    no_metadata = make_submission()
    for cell in no_metadata.cells:
        cell.metadata.pop("nbgrader", None)
    assert two_terms.match(no_metadata) is None


def test_of_one_terms_releases_the_current_or_the_newest_is_taken():
    old = ReleaseCells(THIS, {"parameters": "A = 1", "helper": "old"})
    fixed = ReleaseCells(THIS, {"parameters": "A = 1", "helper": "new"})
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("A = 1", metadata={"nbgrader": {"grade_id": "parameters"}}),
                                               nbformat.v4.new_code_cell("mine", metadata={"nbgrader": {"grade_id": "helper"}})])
    assert KnownReleases(fixed, (old,), SECRETS).match(notebook) is fixed
    other = ReleaseCells(NEXT, {"parameters": "A = 2", "helper": "new"})
    assert KnownReleases(other, (old, fixed), SECRETS).match(notebook) is fixed


def test_loading_restores_the_matched_releases_cells_and_finds_unanswered_questions(two_terms, tmp_path):
    path = write_submission(tmp_path / "this.ipynb", make_submission())
    loaded = load_submission(path, two_terms)
    assert (loaded.release.term, loaded.release_matched) == (THIS, True)
    assert not any(LOCKED_NOTE in note for note in loaded.notes), loaded.notes
    assert f"TRUE_SLOPE = {derive(THIS).TRUE_SLOPE}" in "\n".join(loaded.cells)
    assert loaded.unanswered == ["why_updates_shrink"]  # make_submission keeps the release's answer cell
    answered = make_submission()
    next(c for c in answered.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "why_updates_shrink").source = "Because."
    assert load_submission(write_submission(tmp_path / "answered.ipynb", answered), two_terms).unanswered == []


# --------------------------------------------------------------------------- grading

@pytest.fixture(scope="module")
def graded(zygote, grading_limits, two_terms, tmp_path_factory):
    """Wrong-loss submissions of both terms, and one whose parameters cell was edited, graded
    with both terms known; and the first graded as though its term were the only one."""
    folder = tmp_path_factory.mktemp("terms")
    this = write_submission(folder / "this" / "pytorch_slope.ipynb", make_submission({"criterion": LOSS_SUM}))
    following = write_submission(folder / "next" / "pytorch_slope.ipynb",
                                 _with_parameters(make_submission({"criterion": LOSS_SUM}), NEXT))
    edited = make_submission({"criterion": LOSS_SUM})
    next(c for c in edited.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "parameters").source = "TRUE_SLOPE = 9.9"
    edited = write_submission(folder / "edited" / "pytorch_slope.ipynb", edited)

    def grade(path, releases):
        return grade_submission(path, GradingContext(zygote=zygote, assignment=PYTORCH_SLOPE, limits=grading_limits,
                                                     releases=releases))

    alone = {name: KnownReleases(two_terms.earlier[0], (), {THIS: SECRETS[name]}) for name in (THIS, NEXT)}
    return {"this": grade(this, two_terms), "next": grade(following, two_terms), "edited": grade(edited, two_terms),
            "this alone": grade(this, alone[THIS]), "this with the next secret": grade(this, alone[NEXT])}


def _checks(result: SubmissionResult) -> list[tuple]:
    return [(c.name, c.score, c.feedback) for c in result.checks]


def test_each_submission_is_graded_with_its_own_terms_release_and_secret(graded):
    this, following = graded["this"], graded["next"]
    assert (this.term, this.release_matched, following.term, following.release_matched) == (THIS, True, NEXT, True)
    for result in (this, following):
        assert not any(LOCKED_NOTE in note for note in result.notes), result.notes
    assert this.score == following.score < PYTORCH_SLOPE.max_score  # the wrong loss costs the same in either term
    assert _checks(this) == _checks(graded["this alone"])  # as it was graded before the next term existed
    # the hidden inputs are the term's own: another secret shows other cases
    loss = {key: next(c for c in graded[key].checks if c.name == "loss") for key in ("this", "this with the next secret")}
    assert loss["this"].case != loss["this with the next secret"].case


def test_a_submission_that_matches_no_release_is_graded_against_the_current_one_and_says_so(graded):
    edited = graded["edited"]
    assert (edited.term, edited.release_matched) == (NEXT, False)
    assert any("match no release" in note for note in edited.notes), edited.notes
    assert any(LOCKED_NOTE in note and "parameters" in note for note in edited.notes)


def test_the_summary_names_who_matched_no_release(graded):
    def record(student, result):
        return GradedSubmission(student, "pytorch_slope", "nb.ipynb", "h", None, False, GRADED, "", result)

    summary = release_summary([record("amy", graded["this"]), record("bob", graded["next"]),
                               record("eve", graded["edited"]), record("zed", graded["this"])])
    assert summary == {"terms": {THIS: 2, NEXT: 2}, "matching no release": ["eve"]}


# --------------------------------------------------------------------------- stored grades

def test_a_grade_stands_while_its_own_release_and_secret_do(two_terms):
    this, following = two_terms.earlier[0], two_terms.current
    grader = "g" * 64

    def record(release: ReleaseCells, matched=True):
        result = SubmissionResult([], term=release.term, release_id=release.id, release_matched=matched)
        return GradedSubmission("amy", "pytorch_slope", "nb.ipynb", "h", None, False, GRADED, "", result)

    before = KnownReleases(this, (), SECRETS)  # THIS was current when it was graded
    stored_this = graded_by(record(this), grader, before)
    assert graded_by(record(this), grader, two_terms) == stored_this  # NEXT released: this term's grades stand
    assert graded_by(record(this), "h" * 64, two_terms) != stored_this  # other grading code: stale
    assert graded_by(record(this), grader, KnownReleases(following, (), SECRETS)) == ""  # its release gone: stale
    assert graded_by(record(this), grader, KnownReleases(following, (this,), {**SECRETS, THIS: "cc" * 32})) != stored_this
    unmatched = graded_by(record(this, matched=False), grader, before)
    assert graded_by(record(this, matched=False), grader, two_terms) != unmatched  # graded against the new current


# --------------------------------------------------------------------------- the files

def test_the_kits_files_name_every_kept_releases_secret():
    """What the kit holds is what grading uses: the current release and term, every kept release."""
    releases = known_releases(PYTORCH_SLOPE)
    stored = read_secrets()
    assert releases.current.term == stored.current == json.loads(
        (PYTORCH_SLOPE.release_folder / "MANIFEST.json").read_text())["term"]
    assert releases.current.locked and "parameters" in releases.current.locked
    for kept in read_earlier_releases():
        assert kept.term in stored.secrets


def test_grading_json_keeps_earlier_terms_and_reads_the_one_term_layout(tmp_path):
    path = tmp_path / "grading.json"
    path.write_text(json.dumps({"term": THIS, "grading_seed": SECRETS[THIS]}))  # as before terms were kept
    assert read_secrets(path) == TermSecrets(THIS, {THIS: SECRETS[THIS]})
    release_notebook.write_grading(path, derive(NEXT, path))
    stored = read_secrets(path)
    assert stored.current == NEXT and stored.secrets[THIS] == SECRETS[THIS] and stored.earlier == {THIS: SECRETS[THIS]}
    assert path.read_text() == secrets_json(stored)
    release_notebook.write_grading(path, derive(THIS, path))  # an earlier term released again keeps its secret
    assert read_secrets(path).secrets == stored.secrets and read_secrets(path).current == THIS


def test_the_replaced_release_is_kept_once(tmp_path, two_terms):
    archive = tmp_path / "earlier_releases.json"
    this, following = two_terms.earlier[0], two_terms.current
    assert release_notebook.archive_replaced(archive, this, following) == this
    assert release_notebook.archive_replaced(archive, this, following) is None  # released again: kept once
    assert read_earlier_releases(archive) == [this]
    assert release_notebook.archive_replaced(archive, following, this) == following  # back to THIS: it is current again
    assert read_earlier_releases(archive) == [following]
