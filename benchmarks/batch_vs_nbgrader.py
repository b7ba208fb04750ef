"""Benchmark: `nbgrader autograde` against `python -m autograder autograde` on the same class.

    python benchmarks/batch_vs_nbgrader.py [--n 100] [--workers NPROC] [--keep DIR] [--modes root,ta,...]

Builds a course of N synthetic submissions in a temporary folder (about 60% correct, the rest
spread over common wrong variants made with autograder.release.synthetic.make_submission), then grades the
same submitted/ tree twice, in two copies of the course so neither run sees the other's files:

  1. nbgrader: `nbgrader generate_assignment pytorch_slope` (not timed), then
     `nbgrader autograde pytorch_slope` (timed); per-check scores read from its gradebook by
     grade id.
  2. ours: `python -m autograder autograde pytorch_slope --course-dir ... --workers N` (timed);
     per-check scores read from its grades-by-check.csv.

Ours runs twice, on two fresh copies of the course: once before nbgrader and once after it. The
machines this runs on are shared, and their speed drifts over nbgrader's quarter of an hour; the
two runs bracket it, both are printed, and the ratio is nbgrader's wall over their mean.

Every per-check score must be identical for every student (both of our runs): mismatches are
printed and the script exits 1. It prints wall time, throughput, peak memory and the speed ratio,
as plain figures.

`--modes` (root only) also times ours once in each other confinement mode this machine can make
(tests/confinement_modes.py: `ta`, a TA's own account with user namespaces; `container`, root
without CAP_SYS_ADMIN and no new namespaces; `ta-no-userns`, Landlock alone), each on its own copy
of the course, and prints each mode's level, wall time and ratio against the same nbgrader run.

Peak memory is sampled with psutil every 0.1 s over the timed command's whole process tree:
  * "tree RSS" is the largest sum of RSS over all processes of the tree at one instant. Pages
    that forked workers share copy-on-write with their parent are counted once per process, so
    for a forking grader this is an upper bound of the real footprint.
  * "largest process" is the largest RSS any single process of the tree reached.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

KIT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(KIT))

from autograder.assignment import ASSIGNMENT, CHECKS, NOTEBOOK  # noqa: E402
from autograder.release.synthetic import RELEASE_NOTEBOOK, SOLUTION_CELLS, make_submission, write_submission  # noqa: E402

CORRECT_SHARE = 0.6


def _fn(header: str, *body: str) -> str:
    return header + "\n" + "\n".join("    " + line for line in body) + "\n"


def _released_stub(function: str) -> str:
    import nbformat
    release = nbformat.read(RELEASE_NOTEBOOK, as_version=4)
    grade_id = SOLUTION_CELLS[function]
    return next(c.source for c in release.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


# The wrong variants the class mixes in: name -> overrides of make_submission (by function name).
def wrong_variants() -> dict[str, dict[str, str]]:
    return {
        "loss_sum": {"criterion": _fn("def criterion(yhat, y):", "return ((yhat - y) ** 2).sum()")},
        "loss_absolute": {"criterion": _fn("def criterion(yhat, y):", "return (yhat - y).abs().mean()")},
        "update_sign": {"update": _fn("def update(w, lr):", "w.data = w.data + lr * w.grad.data")},
        "update_rebinds": {"update": _fn("def update(w, lr):", "w = w - lr * w.grad")},
        "zero_grad_missing": {"zero_grad": _fn("def zero_grad(w):", "pass")},
        "update_stub_left": {"update": _released_stub("update")},
        "forward_detached": {"forward": _fn("def forward(x, w):", "return torch.tensor((w * x).tolist())")},
    }


def class_mix(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """(student id, variant) for n students: ~60% correct, the rest round-robin over the variants."""
    variants = list(wrong_variants())
    n_correct = round(n * CORRECT_SHARE)
    kinds = ["correct"] * n_correct + [variants[i % len(variants)] for i in range(n - n_correct)]
    random.Random(seed).shuffle(kinds)
    return [(f"student{i + 1:03d}", kind) for i, kind in enumerate(kinds)]


def build_course(course: Path, mix: list[tuple[str, str]]) -> None:
    (course / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(KIT / "source" / ASSIGNMENT / NOTEBOOK, course / "source" / ASSIGNMENT / NOTEBOOK)
    shutil.copy(KIT / "nbgrader_config.py", course / "nbgrader_config.py")  # root = its own folder
    variants = wrong_variants()
    notebooks = {"correct": make_submission()}
    notebooks.update({name: make_submission(overrides) for name, overrides in variants.items()})
    for student, kind in mix:
        folder = course / "submitted" / student / ASSIGNMENT
        write_submission(folder / NOTEBOOK, notebooks[kind])
        (folder / "timestamp.txt").write_text("2025-03-01 12:00:00.000000 UTC\n")


class PeakMemory:
    """Polls a process tree every `interval` s: peak summed RSS, peak single-process RSS."""

    def __init__(self, pid: int, interval: float = 0.1):
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = self.peak_single = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        try:
            processes = [self.root] + self.root.children(recursive=True)
        except psutil.Error:
            return
        total = 0
        for process in processes:
            try:
                rss = process.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            self.peak_single = max(self.peak_single, rss)
        self.peak_tree = max(self.peak_tree, total)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed(command: list[str], cwd: Path, env: dict, log: Path) -> dict:
    """Run `command`, returning wall time, exit status and peak memory of its process tree."""
    with open(log, "wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        with PeakMemory(process.pid) as memory:
            rc = process.wait()
        wall = time.perf_counter() - start
    return {"wall_s": wall, "rc": rc, "peak_tree_mib": memory.peak_tree / 2**20,
            "peak_single_mib": memory.peak_single / 2**20, "log": log}


def nbgrader_scores(course: Path, students: list[str]) -> dict[str, dict[str, float | None]]:
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.course import course_settings

    coursedir = course_settings(course)
    scores = {}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        for student in students:
            row = {}
            for name in CHECKS:
                try:
                    grade = gb.find_grade(name, Path(NOTEBOOK).stem, ASSIGNMENT, student)
                    row[name] = grade.auto_score
                except MissingEntry:
                    row[name] = None
            scores[student] = row
    return scores


def find_grades_csv(course: Path) -> Path | None:
    found = sorted(course.rglob("grades-by-check.csv"), key=lambda p: (len(p.parts), str(p)))
    return found[0] if found else None


def our_scores(csv_path: Path) -> dict[str, dict[str, float | None]]:
    with open(csv_path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        id_column = next((c for c in ("student", "student_id", "id") if c in header), header[0] if header else None)
        missing = [name for name in CHECKS if name not in header]
        if missing:
            raise SystemExit(f"{csv_path}: no column for checks {missing}; header is {header}")
        scores = {}
        for row in reader:
            scores[row[id_column]] = {name: float(row[name]) if row[name] not in ("", None) else None for name in CHECKS}
    return scores


def compare(theirs: dict, ours: dict, mix: list[tuple[str, str]]) -> list[str]:
    mismatches = []
    for student, kind in mix:
        a, b = theirs.get(student), ours.get(student)
        if a is None:
            mismatches.append(f"{student} ({kind}): missing from nbgrader's gradebook")
            continue
        if b is None:
            mismatches.append(f"{student} ({kind}): missing from our grades-by-check.csv")
            continue
        for name in CHECKS:
            if a[name] is None or b[name] is None or float(a[name]) != float(b[name]):
                mismatches.append(f"{student} ({kind}) {name}: nbgrader {a[name]}, ours {b[name]}")
    return mismatches


def main(argv: list[str] | None = None) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="number of submissions (default 100)")
    parser.add_argument("--workers", type=int, default=cores, help=f"workers for ours (default: cores = {cores})")
    parser.add_argument("--device", default="cpu", help="device for ours (cpu or cuda)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the class mix")
    parser.add_argument("--keep", type=Path, help="build the courses in this folder and keep them")
    parser.add_argument("--modes", default="root", help="confinement modes to time ours in, comma-separated "
                        "(root, ta, container, ta-no-userns; default: root)")
    args = parser.parse_args(argv)

    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""), PYTHONUNBUFFERED="1")
    env.pop("PYTHONPATH", None)
    workdir = args.keep or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        mix = class_mix(args.n, args.seed)
        students = [s for s, _ in mix]
        theirs_dir = workdir / "nbgrader_course"
        ours_dirs = [workdir / "autograder_course_before", workdir / "autograder_course_after"]
        for d in (theirs_dir, *ours_dirs):
            if d.exists():
                shutil.rmtree(d)
        t0 = time.perf_counter()
        build_course(theirs_dir, mix)
        for ours_dir in ours_dirs:
            shutil.copytree(theirs_dir, ours_dir)
        counts = {}
        for _, kind in mix:
            counts[kind] = counts.get(kind, 0) + 1
        print(f"course: {args.n} submissions in {workdir} (built in {time.perf_counter() - t0:.1f} s)")
        print("mix: " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items(), key=lambda kv: -kv[1])))
        print(f"machine: {cores} cores available, {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
              f"python {sys.version.split()[0]}")

        nbgrader = str(Path(bindir) / "nbgrader")
        generated = subprocess.run([nbgrader, "generate_assignment", ASSIGNMENT, "--force"], cwd=theirs_dir,
                                   env=env, capture_output=True, text=True)
        if generated.returncode != 0:
            print("nbgrader generate_assignment failed:\n" + generated.stdout + generated.stderr)
            return 2
        def ours(when: str, course: Path) -> dict:
            print(f"ours ({when}): python -m autograder autograde --workers {args.workers} ...", flush=True)
            return timed([sys.executable, "-m", "autograder", "autograde", ASSIGNMENT, "--course-dir", str(course),
                          "--workers", str(args.workers), "--device", args.device],
                         KIT, env, workdir / f"autograder_autograde_{when}.log")

        before = ours("before", ours_dirs[0])
        print("nbgrader autograde ...", flush=True)
        theirs = timed([nbgrader, "autograde", ASSIGNMENT], theirs_dir, env, workdir / "nbgrader_autograde.log")
        after = ours("after", ours_dirs[1])
        runs = (("nbgrader autograde", theirs), ("ours, before nbgrader", before), ("ours, after nbgrader", after))

        failed = False
        for label, run in runs:
            if run["rc"] != 0:
                failed = True
                print(f"{label} exited with {run['rc']}; last lines of {run['log']}:")
                print("\n".join(run["log"].read_text(errors="replace").splitlines()[-20:]))

        print()
        print(f"N = {args.n} submissions, {cores} cores, ours with {args.workers} workers on {args.device}")
        print(f"{'':24}{'wall (s)':>10}{'subs/min':>10}{'s/sub':>8}{'peak tree RSS (MiB)':>21}{'largest process (MiB)':>23}")
        for label, run in runs:
            print(f"{label:24}{run['wall_s']:10.1f}{60 * args.n / run['wall_s']:10.1f}{run['wall_s'] / args.n:8.2f}"
                  f"{run['peak_tree_mib']:21.0f}{run['peak_single_mib']:23.0f}")
        ours_wall = (before["wall_s"] + after["wall_s"]) / 2
        print(f"speed ratio (nbgrader wall / mean of ours): {theirs['wall_s'] / ours_wall:.1f}x "
              f"(against each: {theirs['wall_s'] / before['wall_s']:.1f}x before, {theirs['wall_s'] / after['wall_s']:.1f}x after)")

        theirs_scores = nbgrader_scores(theirs_dir, students)
        mismatches = []
        for ours_dir in ours_dirs:
            csv_path = find_grades_csv(ours_dir)
            if csv_path is None:
                print(f"ours wrote no grades-by-check.csv under {ours_dir}")
                return 1
            mismatches += [f"{ours_dir.name}: {m}" for m in compare(theirs_scores, our_scores(csv_path), mix)]
        print(f"scores compared: {args.n} students x {len(CHECKS)} checks, nbgrader's gradebook against "
              f"both runs' {csv_path.relative_to(ours_dir)}")
        if mismatches:
            print(f"MISMATCHES ({len(mismatches)}):")
            print("\n".join("  " + m for m in mismatches))
            return 1
        print("per-check scores identical for every student")
        other_modes = [m for m in args.modes.split(",") if m and m != "root"]
        if other_modes:
            failed |= time_other_modes(other_modes, theirs_dir, theirs, theirs_scores, mix, args, workdir)
        return 1 if failed else 0
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


def time_other_modes(names: list[str], course: Path, theirs: dict, theirs_scores: dict, mix, args, workdir: Path) -> bool:
    """Ours once in each named mode, on its own copy of the course; True if any failed or differed."""
    sys.path.insert(0, str(KIT / "tests"))
    from confinement_modes import Account, can_make_modes, mode

    why = can_make_modes()
    if why:
        print(f"other modes not timed: {why}")
        return False
    base = Path(tempfile.mkdtemp(prefix="bench-accounts-"))
    base.chmod(0o755)
    account = Account(base)
    failed = False
    try:
        print()
        print(f"{'mode':14}{'level':16}{'wall (s)':>10}{'ratio':>8}")
        for name in names:
            where = mode(name, account)
            copy = Path(tempfile.mkdtemp(prefix=f"bench-{name}-", dir=where.home if where.user else workdir)) / "course"
            shutil.copytree(course / "submitted", copy / "submitted")
            where.own(copy.parent)
            copy.parent.chmod(0o755)
            run = timed(where.command(where.python, "-m", "autograder", "autograde", ASSIGNMENT, "--course-dir", str(copy),
                                      "--workers", str(args.workers), "--device", args.device),
                        where.kit, {k: v for k, v in os.environ.items() if not k.startswith(("AUTOGRADER_", "PYTHON"))},
                        workdir / f"autograder_autograde_{name}.log")
            level = "?"
            for line in run["log"].read_text(errors="replace").splitlines():
                if line.strip().startswith("confinement:"):
                    level = line.split(":", 1)[1].split()[0]
            mismatches = compare(theirs_scores, our_scores(find_grades_csv(copy)), mix) if run["rc"] == 0 else ["failed"]
            failed |= bool(mismatches)
            print(f"{name:14}{level:16}{run['wall_s']:10.1f}{theirs['wall_s'] / run['wall_s']:7.1f}x"
                  + (f"  ({len(mismatches)} mismatches)" if mismatches else "  scores identical"))
    finally:
        account.remove()
        shutil.rmtree(base, ignore_errors=True)
    return failed


if __name__ == "__main__":
    sys.exit(main())
