"""The per-term release: `python -m autograder release --term NAME [--check-only]`.

* a term's parameters are a pure function of its name, within the ranges, and tell the story;
* the same term writes the same bytes (parameters cell, grading.json, release, manifest);
* the committed state is a sealed release: MANIFEST checksums, term and parameters agree;
* `--check-only` passes on the committed state and fails, with a report, on a tampered copy.
Nothing here writes into the real tree: every write goes to a temporary copy.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autograder.release import manifest, notebook, sample_class
from autograder.release.main import REPORT_NAME, refuse_to_overwrite
from autograder.release.main import main as release_main
from autograder.release.term import PARAMETER_NAMES, check_term_name, derive, range_problems, simulate, story_problems
from autograder.terms import read_earlier_releases, read_secrets, secrets_json
from autograder.usage import UsageError

ROOT = Path(__file__).resolve().parents[1]
MASTER = ROOT / "source" / "pytorch_slope" / "pytorch_slope.ipynb"
RELEASE = ROOT / "release" / "pytorch_slope"
TERMS = [f"{year}-{season}" for year in range(2024, 2049) for season in ("spring", "summer", "fall", "winter")]


def _committed_term() -> str:
    return json.loads((ROOT / "autograder" / "grading.json").read_text())["term"]


# --------------------------------------------------------------------------- parameters

def test_same_term_same_numbers():
    assert derive("2027-spring") == derive("2027-spring")
    assert notebook.parameters_source(derive("2027-spring")) == notebook.parameters_source(derive("2027-spring"))


def test_different_terms_give_different_numbers():
    a, b = derive("2026-fall"), derive("2027-spring")
    assert a.visible() != b.visible()
    assert a.grading_seed != b.grading_seed
    assert len({derive(t).grading_seed for t in TERMS}) == len(TERMS)
    assert len({tuple(derive(t).visible().values()) for t in TERMS}) == len(TERMS)


def test_bad_term_names_are_refused():
    for bad in ("", "a b", "../x", "-x", "x" * 65):
        with pytest.raises(ValueError):
            derive(bad)


def test_one_canonical_spelling_of_a_term():
    """Every spelling of a term seeds other numbers, so only YYYY-season in lower case is taken."""
    for bad in ("2027", "fall2027", "2027-Spring", "2027-SPRING", "2027_spring", "2027-spring ", "2027-spring\n",
                "27-spring", "2027-autumn", "spring-2027"):
        with pytest.raises(ValueError, match=r"YYYY-spring\|summer\|fall\|winter"):
            check_term_name(bad)
    with pytest.raises(ValueError, match="did you mean 2027-spring"):
        check_term_name("2027-Spring")
    for good in ("2027-spring", "2027-summer", "2027-fall", "2027-winter"):
        assert check_term_name(good) == good


def test_parameters_within_ranges_and_story_holds_for_many_terms():
    for name in TERMS:
        p = derive(name)
        assert list(p.visible()) == list(PARAMETER_NAMES)
        assert range_problems(p) == [], name
        assert 1.0 <= abs(p.TRUE_SLOPE) <= 4.0 and 0.05 <= p.NOISE_STD <= 0.3, name
        assert 4.95 <= abs(p.W_INIT - p.TRUE_SLOPE) <= 10.05, name
        assert abs(p.W_INIT_SECOND - p.TRUE_SLOPE) > abs(p.W_INIT - p.TRUE_SLOPE) + 2.5, name
        assert 0.05 <= p.LR <= 0.15 and 4 <= p.EPOCHS <= 6, name
        sim = simulate(p)
        losses = sim["first"]["losses"]
        assert len(losses) == p.EPOCHS
        assert losses[1] <= 0.5 * losses[0], f"{name}: the first epoch is not a big step"
        assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), name
        assert sim["first"]["final_loss"] - sim["floor"] <= 0.01 * (losses[0] - sim["floor"]), name
        assert abs(sim["first"]["w_final"] - p.TRUE_SLOPE) <= 0.5, name
        assert story_problems(p, sim) == []


def test_story_check_rejects_a_slow_learning_rate():
    from dataclasses import replace

    slow = replace(derive("2026-fall"), LR=0.05, EPOCHS=4)
    problems = story_problems(slow)
    assert any("noise floor" in p or "convergence" in p for p in problems), problems


def test_rewriting_the_parameters_cell_is_byte_identical(tmp_path):
    a, b = tmp_path / "a.ipynb", tmp_path / "b.ipynb"
    for path in (a, b):
        shutil.copy(MASTER, path)
        notebook.write_parameters(path, derive("2031-fall"))
    assert a.read_bytes() == b.read_bytes()
    assert notebook.read_parameters(a) == derive("2031-fall").visible()
    # the committed master is exactly what the committed term writes
    c = tmp_path / "c.ipynb"
    shutil.copy(MASTER, c)
    notebook.write_parameters(c, derive(_committed_term()))
    assert c.read_bytes() == MASTER.read_bytes()
    notebook.write_parameters(c, derive("2031-spring"))
    assert c.read_bytes() != MASTER.read_bytes()


# --------------------------------------------------------------------------- committed state

def test_committed_state_is_a_sealed_release():
    sealed = manifest.read(RELEASE)
    params = derive(sealed["term"])
    assert sealed["term"] == _committed_term()
    assert sealed["parameters"] == params.visible() == notebook.read_parameters(MASTER)
    grading = ROOT / "autograder" / "grading.json"
    stored = read_secrets(grading)
    assert (stored.current, stored.secrets[stored.current]) == (sealed["term"], params.grading_seed)
    assert grading.read_text() == secrets_json(stored)  # written by `release`, in its one layout
    for kept in read_earlier_releases(ROOT / "autograder" / "earlier_releases.json"):
        assert kept.term in stored.secrets, f"a kept release of {kept.term} has no secret: its class cannot be graded"
    released = sorted(p.relative_to(RELEASE.parent).as_posix() for p in RELEASE.rglob("*")
                      if p.is_file() and p.name not in (manifest.MANIFEST_NAME, manifest.REPORT_NAME))
    assert sorted(sealed["sha256"]) == released
    for rel, digest in sealed["sha256"].items():
        assert hashlib.sha256((RELEASE.parent / rel).read_bytes()).hexdigest() == digest, rel
    assert set(sealed["versions"]) == {"python", "torch", "nbgrader"}
    assert (ROOT / "solutions" / "pytorch_slope_solution.ipynb").is_file()


# --------------------------------------------------------------------------- generation

def _course(tmp_path: Path, name: str, term_name: str) -> Path:
    root = tmp_path / name
    (root / "source").mkdir(parents=True)
    shutil.copytree(ROOT / "source" / "pytorch_slope", root / "source" / "pytorch_slope")
    shutil.copy(ROOT / "nbgrader_config.py", root)
    notebook.write_parameters(root / "source" / "pytorch_slope" / "pytorch_slope.ipynb", derive(term_name))
    return root


@pytest.mark.slow
def test_same_term_gives_byte_identical_release_and_manifest(tmp_path):
    from autograder.release.generate import generate, released_files

    folders = {}
    for name, term_name in (("a", "2030-fall"), ("b", "2030-fall")):
        root = _course(tmp_path, name, term_name)
        folders[name] = generate(root, tmp_path / f"{name}-course")
    files = {name: released_files(folder) for name, folder in folders.items()}
    assert files["a"] == files["b"]
    assert manifest.dumps(manifest.build(derive("2030-fall"), folders["a"])) == \
        manifest.dumps(manifest.build(derive("2030-fall"), folders["b"]))
    # The committed release is another term's (its manifest says which): its notebook differs.
    committed = ROOT / "release" / "pytorch_slope"
    assert json.loads((committed / "MANIFEST.json").read_text())["term"] != "2030-fall"
    assert files["a"]["pytorch_slope.ipynb"] != (committed / "pytorch_slope.ipynb").read_bytes(), \
        "another term must change the release (its parameters cell)"


# --------------------------------------------------------------------------- --check-only

def _kit_copy(tmp_path: Path) -> Path:
    kit = tmp_path / "kit"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for tree in ("autograder", "source", "release", "solutions"):
        shutil.copytree(ROOT / tree, kit / tree, ignore=ignore)
    shutil.copy(ROOT / "nbgrader_config.py", kit)
    return kit


def _check_only(kit: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(kit))  # the copy's package, so KIT_ROOT is the copy
    return subprocess.run([sys.executable, "-m", "autograder", "release", "--check-only"], cwd=kit, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_check_only_fails_with_a_clear_report_on_a_tampered_release(tmp_path):
    kit = _kit_copy(tmp_path)
    released = kit / "release" / "pytorch_slope" / "pytorch_slope.ipynb"
    released.write_text(released.read_text().replace("Fitting a slope by hand", "Fitting a slope by foot"))
    grading = kit / "autograder" / "grading.json"
    grading.write_text(grading.read_text().replace('"grading_seed": ', '"grading_seed": 1'))
    proc = _check_only(kit)
    report = proc.stdout
    assert proc.returncode == 1, report + proc.stderr
    assert "FAILED" in report
    assert "release/pytorch_slope/pytorch_slope.ipynb differs from a fresh generate_assignment" in report
    assert "release/pytorch_slope/pytorch_slope.ipynb does not match its sha256 in MANIFEST.json" in report
    assert "autograder/grading.json cannot be read" in report  # the tamper left it invalid JSON
    assert "To fix: run `python -m autograder release --term" in report


@pytest.mark.slow
def test_check_only_passes_on_the_committed_state(tmp_path):
    proc = _check_only(_kit_copy(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "OK" in proc.stdout.splitlines()[-1]


# --------------------------------------------------------------------------- another term's uncommitted release

def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd, check=True, capture_output=True)


def _released_kit(tmp_path: Path, term_name: str) -> Path:
    """A kit folder holding what a release writes (release/, grading.json, the executed master)."""
    kit = tmp_path / "kit"
    shutil.copytree(RELEASE, kit / "release" / "pytorch_slope")
    (kit / "solutions").mkdir()
    (kit / "solutions" / "pytorch_slope_solution.ipynb").write_text("{}")
    (kit / "autograder").mkdir()
    (kit / "autograder" / "grading.json").write_text(json.dumps({"term": term_name}))
    sealed = manifest.read(kit / "release" / "pytorch_slope")
    sealed["term"] = term_name
    (kit / "release" / "pytorch_slope" / "MANIFEST.json").write_text(manifest.dumps(sealed))
    return kit


def test_an_uncommitted_release_of_another_term_is_not_overwritten(tmp_path):
    kit = _released_kit(tmp_path, "2027-spring")
    _git(kit, "init", "-q")
    _git(kit, "add", ".")
    _git(kit, "commit", "-q", "-m", "2027-spring")
    assert refuse_to_overwrite("2027-fall", kit) == ""  # committed: safe to replace
    # a release of 2027-summer, run but not committed
    sealed = manifest.read(kit / "release" / "pytorch_slope")
    sealed["term"] = "2027-summer"
    (kit / "release" / "pytorch_slope" / "MANIFEST.json").write_text(manifest.dumps(sealed))
    (kit / "autograder" / "grading.json").write_text(json.dumps({"term": "2027-summer"}))
    assert refuse_to_overwrite("2027-summer", kit) == ""  # the same term again
    refusal = refuse_to_overwrite("2027-fall", kit)
    assert "'2027-summer'" in refusal and "uncommitted" in refusal and "--force" in refusal
    assert "release/pytorch_slope/MANIFEST.json" in refusal and "autograder/grading.json" in refusal
    before = {p: p.read_bytes() for p in kit.rglob("*") if p.is_file() and ".git" not in p.parts}
    with pytest.raises(UsageError, match="--force"):
        release_main(term="2027-fall", root=kit)
    assert {p: p.read_bytes() for p in kit.rglob("*") if p.is_file() and ".git" not in p.parts} == before


def test_following_the_refusal_commits_everything_a_release_wrote(tmp_path):
    """Issue 29: the refusal's `git add` left out sample_class/, so a fresh clone of what it
    committed failed `release --check-only` ("the sample class was made from another release")."""
    kit = _released_kit(tmp_path, "2027-spring")
    for folder in ("source/pytorch_slope", "sample_class/submitted/amy/pytorch_slope"):
        (kit / folder).mkdir(parents=True)
    _git(kit, "init", "-q")
    _git(kit, "add", ".")
    _git(kit, "commit", "-q", "-m", "2027-spring")
    # what a release of 2027-summer writes, not committed
    written = ["release/pytorch_slope/MANIFEST.json", "autograder/grading.json", "autograder/earlier_releases.json",
               "solutions/pytorch_slope_solution.ipynb", "source/pytorch_slope/pytorch_slope.ipynb",
               "sample_class/submitted/amy/pytorch_slope/pytorch_slope.ipynb"]
    for rel in written:
        (kit / rel).write_text("2027-summer")
    (kit / "release" / "pytorch_slope" / "MANIFEST.json").write_text(json.dumps({"term": "2027-summer"}))
    refusal = refuse_to_overwrite("2027-fall", kit)
    command = re.search(r"\((git add [^)]*)\)", refusal).group(1)
    assert command.endswith("&& git commit") and "sample_class" in command, refusal
    subprocess.run(["sh", "-c", command.replace("git commit", "git -c user.name=t -c user.email=t@t commit -q -m t")],
                   cwd=kit, check=True, capture_output=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=kit, capture_output=True, text=True)
    assert status.stdout == "", f"left uncommitted after following the refusal:\n{status.stdout}"
    assert refuse_to_overwrite("2027-fall", kit) == ""


@pytest.mark.slow
def test_check_only_checks_what_is_committed(tmp_path):
    """Issue 29: `--check-only` checked the working tree while the README says "what is
    committed". A tampered release is committed and the working tree put right: it fails, and
    names what it did not check."""
    kit = _kit_copy(tmp_path)
    _git(kit, "init", "-q")
    _git(kit, "add", ".")
    released = kit / "release" / "pytorch_slope" / "pytorch_slope.ipynb"
    good = released.read_bytes()
    released.write_text(released.read_text().replace("Fitting a slope by hand", "Fitting a slope by foot"))
    _git(kit, "commit", "-q", "-a", "-m", "tampered")
    released.write_bytes(good)  # the working tree is right again, but not committed
    proc = _check_only(kit)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert re.search(r"checking commit [0-9a-f]{7,} \(what is committed\)", proc.stdout), proc.stdout
    assert "not checked, as not committed: release/pytorch_slope/pytorch_slope.ipynb" in proc.stdout
    assert "release/pytorch_slope/pytorch_slope.ipynb differs from a fresh generate_assignment" in proc.stdout


def test_outside_git_another_terms_release_needs_force(tmp_path):
    kit = _released_kit(tmp_path, "2027-spring")
    assert "not a git checkout" in refuse_to_overwrite("2027-fall", kit)
    assert refuse_to_overwrite("2027-spring", kit) == ""


# --------------------------------------------------------------------------- the sample class

def test_the_sample_class_is_made_from_the_committed_release():
    """Otherwise every row of `make grade` says its locked cells were changed and restored."""
    assert sample_class.stale_locked_cells(ROOT) == {}, (
        "sample_class/ was made from another release: run `python sample_class/make_sample_class.py`")
    submitted = sorted(p.name for p in (ROOT / "sample_class" / "submitted").iterdir())
    assert submitted == sorted(sample_class.STUDENTS)


def test_a_stale_sample_class_is_detected_and_rebuilt(tmp_path):
    kit = tmp_path / "kit"
    shutil.copytree(RELEASE, kit / "release" / "pytorch_slope")
    shutil.copytree(ROOT / "source" / "pytorch_slope", kit / "source" / "pytorch_slope")
    shutil.copytree(ROOT / "sample_class" / "submitted", kit / "sample_class" / "submitted")
    assert sample_class.stale_locked_cells(kit) == {}
    import nbformat

    released = kit / "release" / "pytorch_slope" / "pytorch_slope.ipynb"
    notebook = nbformat.read(released, as_version=4)
    locked = next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("locked") and c.cell_type == "code")
    locked.source += "\n# a new term's line"
    nbformat.write(notebook, released)
    stale = sample_class.stale_locked_cells(kit)
    assert sorted(stale) == sorted(sample_class.STUDENTS)
    assert all(locked.metadata.nbgrader.grade_id in cells for cells in stale.values())
    sample_class.build(kit)
    assert sample_class.stale_locked_cells(kit) == {}


# --------------------------------------------------------------------------- kernels and the report

def test_kernels_the_release_starts_are_encrypted_and_quiet(tmp_path):
    """ipykernel warns "running over TCP without encryption" once per kernel (four per release)."""
    script = (
        "import nbformat\n"
        "from autograder.release.solutions import execute\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('print(6 * 7)')])\n"
        "execute(nb, allow_errors=False)\n"
        "print(nb.cells[0].outputs[0].text.strip())\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("42")
    assert "without encryption" not in proc.stderr + proc.stdout, proc.stderr


def _autograde(kit: Path, course: Path, *args: str) -> dict:
    """`autograde` of the kit copy (its own package), as a TA runs it; its run.json."""
    env = dict(os.environ, PYTHONPATH=str(kit))
    proc = subprocess.run([sys.executable, "-m", "autograder", "autograde", "pytorch_slope", "--course-dir", str(course),
                           "--workers", "1", *args], cwd=kit, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {**json.loads((course / "reports" / "pytorch_slope" / "run.json").read_text()), "printed": proc.stdout}


def _hand_in(course: Path, student: str, steps: dict | None) -> None:
    """A submission made from the committed release; `steps` None: its parameters cell edited."""
    from autograder.release.synthetic import make_submission, write_submission

    notebook = make_submission(steps or {})
    if steps is None:
        next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "parameters").source += "\nLR = 0.5"
    write_submission(course / "submitted" / student / "pytorch_slope" / "pytorch_slope.ipynb", notebook)


@pytest.fixture(scope="module")
def next_term(tmp_path_factory):
    """A kit copy whose class, made from the committed release, is graded; then the next term
    released in it (refused without --force: the copy is not a git checkout). The verifications
    are left out here (each costs a kernel): `--check-only` on the committed state runs every one
    of them (test_check_only_passes_on_the_committed_state)."""
    import nbformat

    from autograder.release import verify

    tmp_path = tmp_path_factory.mktemp("next-term")
    kit, course = _kit_copy(tmp_path), tmp_path / "course"
    _hand_in(course, "amy", {})
    _hand_in(course, "bob", {"criterion": sample_class.LOSS_SUM})
    before = _autograde(kit, course)
    with pytest.raises(UsageError, match="--force"):
        release_main(term="2031-fall", root=kit)
    executed = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verify, "verify", lambda root, params, master, devices, log: executed.append(master.result()) or [])
        assert release_main(term="2031-fall", force=True, root=kit) == 0
    assert executed and nbformat.read(kit / "release" / "pytorch_slope" / "pytorch_slope.ipynb", as_version=4)
    return {"kit": kit, "course": course, "before": before, "term": _committed_term()}


@pytest.mark.slow
def test_release_writes_its_report_beside_the_manifest(next_term):
    kit = next_term["kit"]
    folder = kit / "release" / "pytorch_slope"
    report = (folder / REPORT_NAME).read_text()
    assert "release for term '2031-fall'" in report and "release 2031-fall: OK" in report
    assert re.search(r"date: 20\d\d-\d\d-\d\d \d\d:\d\d UTC; made from a folder that is not a git checkout", report), report
    assert "the reference is graded on cpu" in report and ("no CUDA check" in report) != ("cuda" in report.split("graded on")[1])
    assert " s)" not in report  # no timings
    sealed = manifest.read(folder)
    assert sealed["term"] == "2031-fall" and f"pytorch_slope/{REPORT_NAME}" not in sealed["sha256"]
    assert sealed["sha256"] == manifest.checksums(folder)  # the report is not sealed, so it cannot break the seal
    assert notebook.read_parameters(kit / "source" / "pytorch_slope" / "pytorch_slope.ipynb") == derive("2031-fall").visible()
    assert (kit / "solutions" / "pytorch_slope_solution.ipynb").exists()


@pytest.mark.slow
def test_the_next_terms_release_keeps_this_terms_class_gradable(next_term):
    """Issue 29: released while this term is graded, the next term regraded the whole class
    against its own parameters and secret, and every page said its locked cells were restored."""
    kit, course, this = next_term["kit"], next_term["course"], next_term["term"]
    stored = read_secrets(kit / "autograder" / "grading.json")
    assert stored.current == "2031-fall" and stored.earlier == {this: read_secrets(ROOT / "autograder" / "grading.json").secrets[this]}
    assert {r.term for r in read_earlier_releases(kit / "autograder" / "earlier_releases.json")} == {this}
    before = next_term["before"]
    assert (before["graded_now"], before["terms"], before["matching_no_release"]) == (2, {this: 2}, [])

    # Handed in late from this term's release: zoe, and eve, whose edited parameters cell fits
    # both terms' releases (only that cell tells them apart), so she is named.
    _hand_in(course, "zoe", {})
    _hand_in(course, "eve", None)
    after = _autograde(kit, course)  # the next term's release leaves this term's grades standing
    assert (after["graded_now"], after["skipped_unchanged"]) == (2, 2)
    assert after["terms"] == {this: 3, "2031-fall": 1} and after["matching_no_release"] == ["eve"]
    assert "matching no release of pytorch_slope" in after["printed"] and "eve" in after["printed"]
    rows = {row["student"]: row for row in csv.DictReader((course / "reports" / "pytorch_slope" / "grades-by-check.csv").open())}
    assert float(rows["zoe"]["total"]) == float(rows["amy"]["total"]) == 10 and float(rows["bob"]["total"]) < 10
    for student in ("amy", "bob", "zoe"):
        page = (course / "feedback" / student / "pytorch_slope" / "pytorch_slope.html").read_text()
        assert "Locked cells were changed" not in page, student
    assert "match no release" in (course / "feedback" / "eve" / "pytorch_slope" / "pytorch_slope.html").read_text()


def test_check_only_names_what_is_wrong_with_the_terms_files(tmp_path):
    from autograder.release.main import _Paths, _terms_problems
    from autograder.terms import ReleaseCells, TermSecrets, earlier_releases_json

    paths = _Paths(tmp_path)
    paths.grading.parent.mkdir(parents=True)
    this, other = derive("2031-fall", paths.grading), "2030-fall"
    paths.grading.write_text(secrets_json(TermSecrets("2031-fall", {"2031-fall": this.grading_seed})))
    assert _terms_problems(paths, this) == []
    assert any("is not the term's grading settings" in p for p in _terms_problems(paths, derive("2032-fall", paths.grading)))
    paths.archive.write_text(earlier_releases_json([ReleaseCells(other, {"parameters": "A = 1"})]))
    assert any(f"keeps a release of term '{other}', whose grading secret" in p for p in _terms_problems(paths, this))
    paths.grading.write_text(secrets_json(TermSecrets("2031-fall", {"2031-fall": this.grading_seed, other: "12"})))
    assert any(f"the grading secret of term '{other}' is not hex of at least 128 bits" in p for p in _terms_problems(paths, this))
    paths.grading.write_text("{not json")
    assert any("cannot be read" in p for p in _terms_problems(paths, this))
