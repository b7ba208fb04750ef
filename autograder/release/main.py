"""The `release` verb.

`main(term="2027-spring", check_only=False)` writes the term into the kit and refuses to finish
unless every verification passes: on any failure the kit's files are put back as they were and
the report says why. The MANIFEST is written last, as the seal of a verified release.

`main(term=None, check_only=True)` changes nothing: it checks that the committed files are what
`release` makes for the committed term (the MANIFEST's, or `term` if given) and runs every
verification on them.

A release for another term than the one in release/ refuses to start while the files a release
writes have uncommitted changes (a release not yet committed would be lost); `force=True` (the
command line's --force) overwrites them. What a run prints is also written, on success, to
release/pytorch_slope/RELEASE_REPORT.txt beside the MANIFEST (without timings, so that the same
term gives the same bytes).
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from autograder.assignment import ASSIGNMENT, GRADING_FILE, KIT_ROOT, PYTORCH_SLOPE
from autograder.release import generate, manifest, notebook, sample_class, solutions, term, verify
from autograder.release.term import TERM_FORMAT, check_term_name
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


_report_lines: list[str] = []  # this run's report, as printed (timings left out)


def _log(message: str, *, in_report: bool = True) -> None:
    print(message, flush=True)
    if in_report:
        _report_lines.append(message)


def _execute_and_verify(paths, params) -> tuple[object | None, list[str]]:
    """The master executed top to bottom (None if it does not run: verify's `plots` says why),
    and every verification's failures. The master runs in a kernel of its own while the other
    verifications run theirs."""
    with ThreadPoolExecutor(1) as pool:
        master = pool.submit(solutions.execute_master, paths.master)
        failures = verify.verify(paths.root, params, master, log=_log)
    return (master.result() if master.exception() is None else None), failures


def _write_report(paths: _Paths) -> Path:
    path = paths.release / REPORT_NAME
    path.write_text("\n".join(_report_lines).strip() + "\n", encoding="utf-8")
    return path


def _uncommitted(paths: _Paths) -> list[str] | None:
    """The files a release writes that differ from git's HEAD (None: not a git checkout)."""
    written = [paths.release, paths.solution, paths.grading]
    try:
        proc = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", *map(str, written)],
                              cwd=paths.root, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return sorted(line[3:] for line in proc.stdout.splitlines() if line.strip())


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
            f"(git add release source solutions autograder/grading.json && git commit), or run again with --force "
            f"to overwrite it with term {term_name!r}")


def _snapshot(paths: _Paths) -> dict[Path, bytes | None]:
    files = [paths.master, paths.grading, paths.solution]
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


def release(term_name: str, root: Path = KIT_ROOT) -> int:
    start = time.perf_counter()
    paths = _Paths(root)
    _report_lines.clear()
    params = term.derive(term_name)
    _log(f"release for term {term_name!r}: " + ", ".join(f"{k} = {v!r}" for k, v in params.visible().items()))
    snapshot = _snapshot(paths)
    failures: list[str] = []
    try:
        notebook.write_parameters(paths.master, params)
        notebook.write_grading(paths.grading, params)
        _log("generating release/ with nbgrader ...")
        generate.regenerate_release(paths.root)
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
    rel = lambda p: p.relative_to(paths.root).as_posix()  # noqa: E731
    written: list[Path] = [paths.master, paths.grading, paths.release, paths.solution]
    rebuilt = sample_class.build(paths.root)  # its submissions must hold this release's locked cells
    written += [rebuilt] if rebuilt else []
    # Printed, not in the report: the report sits in the release students get, and the kit's own
    # paths (grading.json, the autograder package) have no business there (release_leaks checks).
    _log("wrote " + ", ".join(rel(p) for p in written), in_report=False)
    _log(f"commit them (the release is for term {params.term!r}); `python -m autograder release --check-only` re-verifies",
         in_report=False)
    report = _write_report(paths)
    print(f"this report: {rel(report)}", flush=True)
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
    grading = paths.grading.read_text(encoding="utf-8") if paths.grading.is_file() else None
    if grading != notebook.grading_json(params):
        failures.append(f"{paths.grading.relative_to(paths.root).as_posix()} is not the term's grading settings "
                        f"(term {params.term!r}); it holds: {(grading or 'nothing').strip()[:200]}")

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


def check(term_name: str | None, root: Path = KIT_ROOT) -> int:
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
    params = term.derive(term_name)
    _log(f"release --check-only: term {term_name!r}")
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
