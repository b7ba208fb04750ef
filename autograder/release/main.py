"""The `release` verb.

`main(term="2027-spring", check_only=False)` writes the term into the kit and refuses to finish
unless every verification passes: on any failure the kit's files are put back as they were and
the report says why. The MANIFEST is written last, as the seal of a verified release.

`main(term=None, check_only=True)` changes nothing: it checks that the committed files are what
`release` makes for the committed term (the MANIFEST's, or `term` if given) and runs every
verification on them.

In a git checkout, `--check-only` checks what is committed: HEAD's files are exported to a
scratch folder and checked there (uncommitted changes are named, not checked); elsewhere it
checks the folder. A release for another term keeps the replaced term's secret in grading.json
and its release's cells in earlier_releases.json (terms.py), so that term's class can still be
graded.

A release for another term than the one in release/ refuses to start while the files a release
writes have uncommitted changes (a release not yet committed would be lost); `force=True` (the
command line's --force) overwrites them. What a run prints is also written, on success, to
release/pytorch_slope/RELEASE_REPORT.txt beside the MANIFEST, with the date, the commit it was
made from and the devices the reference was graded on (no timings).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from autograder.assignment import ASSIGNMENT, GRADING_FILE, KIT_ROOT, PYTORCH_SLOPE
from autograder.release import generate, git, manifest, notebook, sample_class, solutions, term, verify
from autograder.release.term import TERM_FORMAT, check_term_name
from autograder.terms import EARLIER_RELEASES_FILE, read_earlier_releases, read_secrets
from autograder.usage import UsageError

REPORT_NAME = manifest.REPORT_NAME


class _Paths:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.master = PYTORCH_SLOPE.at(self.root).master
        self.release = PYTORCH_SLOPE.at(self.root).release_folder
        self.solution = self.root / "solutions" / solutions.SOLUTION_NAME
        # grading.json lives in the package; the kit's package is the one under root
        self.grading = self.root / GRADING_FILE.relative_to(KIT_ROOT)
        self.archive = self.root / EARLIER_RELEASES_FILE.relative_to(KIT_ROOT)
        self.sample_class = self.root / sample_class.FOLDER_NAME / "submitted"

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


_report_lines: list[str] = []  # this run's report, as printed (timings left out)


def _log(message: str, *, in_report: bool = True) -> None:
    print(message, flush=True)
    if in_report:
        _report_lines.append(message)


def _execute_and_verify(paths, params) -> tuple[object | None, list[str]]:
    """The master executed top to bottom (None if it does not run: verify's `plots` says why),
    and every verification's failures. The master runs in a kernel of its own while the other
    verifications run theirs."""
    devices = verify.grading_devices()
    _log("  the reference is graded on " + " and ".join(devices)
         + ("" if "cuda" in devices else " (no CUDA check: no GPU is visible here)"))
    with ThreadPoolExecutor(1) as pool:
        master = pool.submit(solutions.execute_master, paths.master)
        failures = verify.verify(paths.root, params, master, devices=devices, log=_log)
    return (master.result() if master.exception() is None else None), failures


def _write_report(paths: _Paths) -> Path:
    path = paths.release / REPORT_NAME
    path.write_text("\n".join(_report_lines).strip() + "\n", encoding="utf-8")
    return path


def _written(paths: _Paths) -> list[Path]:
    """Every file or folder a release writes (what must be committed together)."""
    return [paths.master, paths.release, paths.solution, paths.grading, paths.archive, paths.sample_class]


def _uncommitted(paths: _Paths) -> list[str] | None:
    """The files a release writes that differ from git's HEAD (None: not a git checkout)."""
    return git.uncommitted(paths.root, _written(paths))


def _git_add(paths: _Paths) -> str:
    """The command that commits what a release writes: its top folders, and the package's files."""
    names = [paths.rel(p) for p in _written(paths)]
    return "git add " + " ".join(dict.fromkeys(n if n.startswith("autograder/") else n.split("/")[0] for n in names)) \
        + " && git commit"


def refuse_to_overwrite(term_name: str, root: Path = KIT_ROOT) -> str:
    """Why `release --term term_name` must not overwrite the working tree ("" if it may): the
    release there is of another term and not committed (or, outside git, cannot be shown to be)."""
    paths = _Paths(root)
    try:
        current = manifest.read(paths.release).get("term")
    except (OSError, ValueError, AttributeError):
        current = None
    if current is None or current == term_name:
        return ""
    changed = _uncommitted(paths)
    if changed == []:
        return ""
    what = ("this is not a git checkout, so it cannot be told whether it was committed" if changed is None
            else "it has uncommitted changes: " + ", ".join(changed[:6]) + (" ..." if len(changed) > 6 else ""))
    return (f"release/{ASSIGNMENT}/ holds the release for term {current!r}, and {what}. Commit it first "
            f"({_git_add(paths)}), or run again with --force to overwrite it with term {term_name!r}")


def _snapshot(paths: _Paths) -> dict[Path, bytes | None]:
    files = [paths.master, paths.grading, paths.archive, paths.solution]
    files += [p for p in paths.release.rglob("*") if p.is_file()] if paths.release.is_dir() else []
    return {p: (p.read_bytes() if p.is_file() else None) for p in files}


def _restore(paths: _Paths, snapshot: dict[Path, bytes | None]) -> None:
    shutil.rmtree(paths.release, ignore_errors=True)
    for path, data in snapshot.items():
        if data is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def _report(title: str, failures: list[str], notes: list[str], hint: str) -> int:
    for note in notes:
        _log(f"note: {note}")
    if failures:
        _log(f"\n{title}: FAILED, {len(failures)} problem(s):")
        for failure in failures:
            _log("  - " + failure.replace("\n", "\n    "))
        _log(hint)
        return 1
    _log(f"\n{title}: OK")
    return 0


def _replaced_release(paths: _Paths):
    """The cells of the release about to be replaced (terms.ReleaseCells), None if there is none."""
    import nbformat

    from autograder.notebook.releases import cells_of

    notebook_path = PYTORCH_SLOPE.at(paths.root).release_notebook
    try:
        return cells_of(nbformat.read(notebook_path, as_version=4), read_secrets(paths.grading).current)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # no release yet, or none to keep
        return None


def release(term_name: str, root: Path = KIT_ROOT) -> int:
    start = time.perf_counter()
    paths = _Paths(root)
    _report_lines.clear()
    params = term.derive(term_name, paths.grading)
    _log(f"release for term {term_name!r}: " + ", ".join(f"{k} = {v!r}" for k, v in params.visible().items()))
    state, changed = git.describe(paths.root)
    _log(f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; made from {state}")
    if changed:
        _log("  uncommitted: " + ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else ""), in_report=False)
    snapshot = _snapshot(paths)
    replaced = _replaced_release(paths)
    failures: list[str] = []
    try:
        notebook.write_parameters(paths.master, params)
        notebook.write_grading(paths.grading, params)
        _log("generating release/ with nbgrader ...")
        generate.regenerate_release(paths.root)
        kept = notebook.archive_replaced(paths.archive, replaced, _replaced_release(paths))
        if kept:
            _log(f"kept for grading: the replaced release of term {kept.term!r} ({paths.rel(paths.archive)}, "
                 f"its secret in {paths.rel(paths.grading)})", in_report=False)
        _log("executing the master and verifying ...")
        executed, failures = _execute_and_verify(paths, params)
        if executed is not None:
            solutions.write_solution(executed, paths.root)
        if failures:
            _restore(paths, snapshot)
        else:
            manifest.write(params, paths.release)
    except BaseException:
        _restore(paths, snapshot)
        raise
    _log(f"({time.perf_counter() - start:.0f} s)", in_report=False)
    if failures:
        return _report(f"release {term_name}", failures, [],
                       "Nothing was changed: the kit's files were put back as they were before this run.")
    _report(f"release {term_name}", [], [], "")
    return _done(paths, params)


def _done(paths: _Paths, params) -> int:
    sample_class.build(paths.root)  # its submissions must hold this release's locked cells
    # Printed, not in the report: the report sits in the release students get, and the kit's own
    # paths (grading.json, the autograder package) have no business there (release_leaks checks).
    _log("wrote " + ", ".join(paths.rel(p) for p in _written(paths) if p.exists()), in_report=False)
    _log(f"commit them all (the release is for term {params.term!r}): {_git_add(paths)}; then "
         "`python -m autograder release --check-only` re-verifies what is committed", in_report=False)
    report = _write_report(paths)
    print(f"this report: {paths.rel(report)}", flush=True)
    return 0


def integrity(paths: _Paths, params, committed_manifest: dict | None) -> tuple[list[str], list[str]]:
    """The committed files against a fresh generation for the term: (failures, notes)."""
    failures, notes = [], []
    try:
        found = notebook.read_parameters(paths.master)
    except Exception as error:
        found = {}
        failures.append(f"the master's parameters cell cannot be read: {error}")
    if found and found != params.visible():
        failures.append(f"the master's parameters {found} are not the term's {params.visible()}")
    failures += _terms_problems(paths, params)

    with tempfile.TemporaryDirectory(prefix="release-check-") as scratch:
        fresh = generate.released_files(generate.generate(paths.root, Path(scratch) / "course"))
    committed = generate.released_files(paths.release, exclude=(manifest.MANIFEST_NAME, REPORT_NAME)) \
        if paths.release.is_dir() else {}
    for rel in sorted(set(fresh) | set(committed)):
        where = f"release/{ASSIGNMENT}/{rel}"
        if rel not in committed:
            failures.append(f"{where} is missing (a fresh generate_assignment makes it)")
        elif rel not in fresh:
            failures.append(f"{where} is not part of a fresh generate_assignment")
        elif committed[rel] != fresh[rel]:
            failures.append(f"{where} differs from a fresh generate_assignment of the master")

    if committed_manifest is None:
        failures.append(f"release/{ASSIGNMENT}/{manifest.MANIFEST_NAME} is missing or not JSON")
    else:
        expected = manifest.build(params, paths.release)
        for key in ("assignment", "term", "parameters"):
            if committed_manifest.get(key) != expected[key]:
                failures.append(f"MANIFEST.json: {key} is {committed_manifest.get(key)!r}, expected {expected[key]!r}")
        recorded = committed_manifest.get("sha256", {})
        for rel in sorted(set(recorded) | set(expected["sha256"])):
            if rel not in expected["sha256"]:
                failures.append(f"MANIFEST.json lists {rel}, which is not in release/")
            elif rel not in recorded:
                failures.append(f"MANIFEST.json has no checksum for release/{rel}")
            elif recorded[rel] != expected["sha256"][rel]:
                failures.append(f"release/{rel} does not match its sha256 in MANIFEST.json (changed after release)")
        for name, version in expected["versions"].items():
            if committed_manifest.get("versions", {}).get(name) != version:
                notes.append(f"the release was verified with {name} {committed_manifest.get('versions', {}).get(name)}, "
                             f"this environment has {version}")
    if not paths.solution.is_file():
        failures.append(f"{paths.solution.relative_to(paths.root).as_posix()} is missing")
    stale = sample_class.stale_locked_cells(paths.root)
    if stale:
        failures.append(f"the sample class was made from another release: locked cells differ for {', '.join(sorted(stale))} "
                        "(rebuild it: python sample_class/make_sample_class.py)")
    return failures, notes


def _terms_problems(paths: _Paths, params) -> list[str]:
    """grading.json holds `params`' term as current with its secret, and a secret for the term of
    every earlier release kept for grading."""
    where = paths.rel(paths.grading)
    try:
        stored = read_secrets(paths.grading)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return [f"{where} cannot be read ({type(error).__name__}: {error})"]
    problems = []
    if stored.current != params.term or stored.secrets.get(params.term) != params.grading_seed:
        problems.append(f"{where} is not the term's grading settings (term {params.term!r}); it holds term "
                        f"{stored.current!r}")
    problems += [f"{where}: the grading secret of term {t!r} is not hex of at least 128 bits"
                 for t, secret in sorted(stored.secrets.items()) if not term.is_secret(secret)]
    try:
        archived = read_earlier_releases(paths.archive)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return problems + [f"{paths.rel(paths.archive)} cannot be read ({type(error).__name__}: {error})"]
    problems += [f"{paths.rel(paths.archive)} keeps a release of term {t!r}, whose grading secret {where} lacks: "
                 "its submissions cannot be graded" for t in sorted({r.term for r in archived} - set(stored.secrets))]
    return problems


def check(term_name: str | None, root: Path = KIT_ROOT) -> int:
    """`--check-only`: in a git checkout, what is committed (check_commit); elsewhere the folder."""
    head = None if os.environ.get(git.EXPORTED_FROM) else git.head(root)
    if head is not None:
        return check_commit(term_name, root, head)
    return check_folder(term_name, root)


def check_commit(term_name: str | None, root: Path, head: str) -> int:
    """Check HEAD's files, not the working tree's: they are exported to a scratch folder and
    checked there by the exported kit itself (its own package, in a process of its own)."""
    paths = _Paths(root)
    changed = git.uncommitted(paths.root, [paths.root]) or []
    _log(f"release --check-only: checking commit {head} (what is committed) of {paths.root}")
    if changed:
        _log("  not checked, as not committed: " + ", ".join(changed[:8]) + (" ..." if len(changed) > 8 else ""))
    with tempfile.TemporaryDirectory(prefix="release-check-commit-") as scratch:
        kit = Path(scratch) / "kit"
        try:
            git.export(paths.root, kit, [paths.rel(p).split("/")[0] for p in (*_written(paths), paths.root / "nbgrader_config.py")])
        except (RuntimeError, OSError, tarfile.TarError) as error:
            return _report("release --check-only", [f"the committed files could not be exported from git: {error}"], [],
                           "Commit the kit (git add . && git commit), then run --check-only again.")
        env = dict(os.environ, PYTHONPATH=str(kit), **{git.EXPORTED_FROM: head})
        command = [sys.executable, "-m", "autograder", "release", "--check-only", *(["--term", term_name] if term_name else [])]
        return subprocess.run(command, cwd=kit, env=env).returncode


def check_folder(term_name: str | None, root: Path = KIT_ROOT) -> int:
    start = time.perf_counter()
    paths = _Paths(root)
    try:
        committed_manifest = manifest.read(paths.release)
    except (OSError, ValueError):
        committed_manifest = None
    committed_term = (committed_manifest or {}).get("term")
    if term_name is None:
        if committed_term is None:
            return _report("release --check-only", [f"release/{ASSIGNMENT}/{manifest.MANIFEST_NAME} is missing or has no term, "
                                                     "and no --term was given"], [],
                           "Run `python -m autograder release --term NAME` and commit the result.")
        term_name = committed_term
    failures: list[str] = []
    if committed_term is not None and committed_term != term_name:
        failures.append(f"the committed release is for term {committed_term!r}, not {term_name!r}")
    params = term.derive(term_name, paths.grading)
    exported = os.environ.get(git.EXPORTED_FROM)
    _log(f"release --check-only: term {term_name!r}, " + (f"commit {exported}" if exported else f"the folder {paths.root}"))
    _log("  integrity (parameters, grading.json, fresh generate_assignment, MANIFEST checksums) ...")
    found, notes = integrity(paths, params, committed_manifest)
    failures += found
    _log(f"  integrity: {'ok' if not found else f'{len(found)} failure(s)'}")
    if failures:
        notes.append("the execution checks were skipped: the committed files are not this term's release")
    else:
        _log("  executing the master and verifying ...")
        executed, found = _execute_and_verify(paths, params)
        if executed is not None and solutions.solution_text(executed).encode("utf-8") != paths.solution.read_bytes():
            failures.append(f"[solutions] {paths.solution.relative_to(paths.root).as_posix()} is not what executing "
                            "the master gives now")
        failures += found
    _log(f"  ({time.perf_counter() - start:.0f} s)")
    return _report(f"release --check-only (term {term_name!r})", failures, notes,
                   f"To fix: run `python -m autograder release --term {term_name}` (or restore the committed files "
                   "with git) and commit the result.")


def main(*, term: str | None = None, check_only: bool = False, force: bool = False, root: Path = KIT_ROOT) -> int:
    if term is not None:
        try:
            check_term_name(term)
        except ValueError as error:
            raise UsageError(str(error)) from None
    if check_only:
        return check(term, root)
    if term is None:
        raise UsageError(f"--term is required (only --check-only may leave it out), in the form {TERM_FORMAT}, e.g. 2027-spring")
    refusal = "" if force else refuse_to_overwrite(term, root)
    if refusal:
        raise UsageError(refusal)
    return release(term, root)
