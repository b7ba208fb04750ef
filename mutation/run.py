"""`make mutation`: grade every mutant (and every seed) as one class with the kit's own batch
verb, and report which wrong code the checks catch.

    python -m mutation.run [--workers 2] [--sample N] [--course-dir DIR] [--report mutation/report.md]

Each mutant is the release with its four steps solved, one of them replaced by the mutant's
code (`make_submission(overrides=...)`), submitted as student `<mutant id>`; each seed likewise
as `seed_<function>_<name>`. The per-check scores and misconceptions come from the records the
batch stores (its state database), not from its printed output.

A mutant is *killed* when it loses at least one point on a check that judged it (status failed,
not a grader error); *equivalent* when mutation/equivalent.toml lists its code with a reason;
else it *survives*. Mutation score = killed / (total - equivalent).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from autograder.assignment import ASSIGNMENT, CHECKS, MAX_SCORE, NOTEBOOK, PYTORCH_SLOPE, grader_fingerprint
from autograder.feedback.misconceptions import MISCONCEPTIONS
from mutation.generate import Equivalent, Mutant, generate, load_equivalents, sample
from mutation.operators import DOMAIN_OPERATORS
from mutation.seeds import Seed

MUTATION_DIR = Path(__file__).resolve().parent
DEFAULT_REPORT = MUTATION_DIR / "report.md"
# Feedback that says only that a value is wrong, not which misconception produced it.
GENERIC_MISCONCEPTIONS = frozenset({m for m in MISCONCEPTIONS if m.endswith("_wrong_value")} | {"training_wrong_history"})
CELL_TIMEOUT_S = 10.0  # no mutant loops; a tighter limit than the default 20 s bounds a stuck one
# Outcomes that say the sandbox process died or hung, not what a check found. No operator makes
# code that kills its process, so a submission that lost points only this way is graded once more
# (on a loaded machine a correct seed was seen to lose its sandbox); if it happens again it
# counts as not graded, never as killed.
INFRASTRUCTURE_MISCONCEPTIONS = frozenset({"sandbox_died", "crashed", "timeout"})


@dataclass
class Outcome:
    """What the batch made of one submission (a mutant or a seed)."""

    student: str
    status: str
    score: float
    lost: dict[str, float] = field(default_factory=dict)  # check -> points lost, where judged wrong
    misconceptions: dict[str, str] = field(default_factory=dict)  # check -> misconception named
    errors: list[str] = field(default_factory=list)  # checks where the grader itself failed
    seconds: float = 0.0

    @property
    def killed(self) -> bool:
        return self.status == "graded" and bool(self.lost) and not self.infrastructure_only

    @property
    def infrastructure_only(self) -> bool:
        """Lost points only because its process died or hung (see INFRASTRUCTURE_MISCONCEPTIONS)."""
        return bool(self.lost) and set(self.misconceptions.values()) <= INFRASTRUCTURE_MISCONCEPTIONS

    @property
    def cleanly_graded(self) -> bool:
        return self.status == "graded" and not self.errors and not self.infrastructure_only


def seed_student(seed: Seed) -> str:
    return f"seed_{seed.function}_{seed.name}"


def write_class(course_dir: Path, mutants: list[Mutant], seeds: list[Seed]) -> None:
    """One nbgrader class: a student per seed and per mutant."""
    from autograder.release.synthetic import make_submission, write_submission

    submissions = {seed_student(s): {s.function: s.source} for s in seeds}
    submissions.update({m.id: {m.function: m.source} for m in mutants})
    for student, overrides in submissions.items():
        write_submission(course_dir / "submitted" / student / ASSIGNMENT / NOTEBOOK, make_submission(overrides))


def read_outcomes(course_dir: Path) -> dict[str, Outcome]:
    """Per student, the checks that took points and what they named, from the batch's records."""
    from autograder.autograde.state import State

    state = State(course_dir)
    try:
        stored = state.load(ASSIGNMENT)
    finally:
        state.close()
    outcomes = {}
    for student, (_, record) in stored.items():
        outcome = Outcome(student, str(record.status), record.score, seconds=float(record.extra.get("worker_seconds", 0.0)))
        for check in record.result.checks if record.result else []:
            if check.status == "error":
                outcome.errors.append(check.name)
            elif check.score < check.max_score:
                outcome.lost[check.name] = check.max_score - check.score
                outcome.misconceptions[check.name] = check.misconception or ""
        outcomes[student] = outcome
    return outcomes


def _autograde(course_dir: Path, workers: int, device: str, students: list[str] | None = None) -> None:
    from autograder.autograde.main import main as autograde

    printed = io.StringIO()
    with redirect_stdout(printed):  # the batch's summary; the numbers come from its records
        status = autograde(assignment=ASSIGNMENT, course_dir=course_dir, workers=workers, device=device,
                           students=students, force=True, cell_timeout=CELL_TIMEOUT_S)
    if status == 2:
        raise RuntimeError(f"autograde refused the mutants' class: {printed.getvalue()}")


def grade(mutants: list[Mutant], seeds: list[Seed], course_dir: Path, *, workers: int = 2,
          device: str = "cpu") -> tuple[dict[str, Outcome], float, list[str]]:
    """Write the class, grade it with `autograde`; return the outcomes, the wall time of the
    batch, and the students graded a second time because their process died or hung."""
    write_class(course_dir, mutants, seeds)
    start = time.monotonic()
    _autograde(course_dir, workers, device)
    seconds = time.monotonic() - start
    outcomes = read_outcomes(course_dir)
    expected = [seed_student(s) for s in seeds] + [m.id for m in mutants]
    again = sorted(s for s in expected if s not in outcomes or outcomes[s].status != "graded" or outcomes[s].infrastructure_only)
    if again:
        _autograde(course_dir, workers, device, students=again)
        outcomes = read_outcomes(course_dir)
    return outcomes, seconds, again


@dataclass
class Analysis:
    total: int
    killed: list[str]
    equivalent: list[str]
    survivors: list[str]
    equivalent_but_killed: list[str]  # listed as equivalent, yet a check took points: check or list is wrong
    not_graded: list[str]  # the grader failed on it, or a check errored: neither killed nor survived
    seeds_not_full: dict[str, float]  # correct code that lost points
    stale_equivalents: list[str]  # entries of equivalent.toml that match no generated mutant
    caught_by_check: dict[str, int]
    misconceptions: Counter
    generic_only: list[str]  # killed, but every check that caught it said only "wrong value"
    score: float
    score_by_family: dict[str, tuple[int, int]]  # family -> (killed, total - equivalent)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["misconceptions"] = dict(self.misconceptions.most_common())
        return data


def analyse(mutants: list[Mutant], seeds: list[Seed], outcomes: dict[str, Outcome],
            equivalents: list[Equivalent], *, all_keys: set[str] | None = None) -> Analysis:
    by_key = {e.key: e for e in equivalents}
    known_keys = all_keys if all_keys is not None else {m.key for m in mutants}
    killed, equivalent, survivors, equivalent_but_killed, not_graded, generic_only = [], [], [], [], [], []
    caught = dict.fromkeys(CHECKS, 0)
    seen = Counter()
    families: dict[str, list[int]] = {}
    for mutant in mutants:
        outcome = outcomes.get(mutant.id)
        listed = mutant.key in by_key
        family = families.setdefault(mutant.family, [0, 0])
        if outcome is None or not outcome.cleanly_graded and not outcome.killed:
            not_graded.append(mutant.id)
            family[1] += not listed
            continue
        if listed:
            equivalent.append(mutant.id)
            if outcome.killed:
                equivalent_but_killed.append(mutant.id)
            continue
        family[1] += 1
        if outcome.killed:
            killed.append(mutant.id)
            family[0] += 1
            for check in outcome.lost:
                caught[check] += 1
            seen.update(outcome.misconceptions.values())
            if set(outcome.misconceptions.values()) <= GENERIC_MISCONCEPTIONS:
                generic_only.append(mutant.id)
        else:
            survivors.append(mutant.id)
    seeds_not_full = {seed_student(s): outcomes[seed_student(s)].score for s in seeds
                      if seed_student(s) in outcomes and outcomes[seed_student(s)].score < MAX_SCORE}
    seeds_not_full.update({seed_student(s): 0.0 for s in seeds if seed_student(s) not in outcomes})
    judged = len(mutants) - len(equivalent)
    return Analysis(
        total=len(mutants), killed=killed, equivalent=equivalent, survivors=survivors,
        equivalent_but_killed=equivalent_but_killed, not_graded=not_graded, seeds_not_full=seeds_not_full,
        stale_equivalents=[f"{e.function}: {e.source.strip().splitlines()[-1].strip()}" for e in equivalents if e.key not in known_keys],
        caught_by_check=caught, misconceptions=seen, generic_only=generic_only,
        score=len(killed) / judged if judged else 1.0,
        score_by_family={k: (v[0], v[1]) for k, v in families.items()},
    )


def _code_block(source: str) -> str:
    return "```python\n" + source.rstrip() + "\n```"


def _score_of(analysis: Analysis, *, domain: bool) -> str:
    names = {op.name for op in DOMAIN_OPERATORS}
    pairs = [kn for family, kn in analysis.score_by_family.items() if (family in names) == domain]
    killed, judged = sum(k for k, _ in pairs), sum(n for _, n in pairs)
    return f"{killed}/{judged} = {killed / judged:.1%}" if judged else "none"


def _median_seconds(outcomes: dict[str, Outcome]) -> float:
    return statistics.median(o.seconds for o in outcomes.values()) if outcomes else 0.0


def report_markdown(analysis: Analysis, mutants: list[Mutant], outcomes: dict[str, Outcome], equivalents: list[Equivalent],
                    *, wall_s: float, workers: int, stillborn: int, regraded: list[str] = ()) -> str:
    by_id = {m.id: m for m in mutants}
    reasons = {e.key: e.reason for e in equivalents}
    judged = analysis.total - len(analysis.equivalent)
    lines = [
        "# Mutation analysis of the checks",
        "",
        f"Generated by `make mutation` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; grader fingerprint "
        f"`{grader_fingerprint(PYTORCH_SLOPE)[:12]}`. Mutants of the reference's four steps and of other correct ways to write "
        f"them (mutation/seeds.py), made with cosmic-ray's operators and this assignment's own (mutation/operators.py), "
        f"graded as one class by `autograde --workers {workers}`.",
        "",
        "| | |",
        "|---|---|",
        f"| mutants | {analysis.total} ({stillborn} stillborn ones that do not parse were dropped) |",
        f"| killed (lost >= 1 point) | {len(analysis.killed)} |",
        f"| equivalent (mutation/equivalent.toml) | {len(analysis.equivalent)} |",
        f"| survivors | {len(analysis.survivors)} |",
        f"| not graded / grader error | {len(analysis.not_graded)} |",
        f"| graded twice (their sandbox died or hung the first time) | {len(regraded)}{': ' if regraded else ''}"
        f"{', '.join(regraded)} |",
        f"| **mutation score** killed / (total - equivalent) | **{len(analysis.killed)}/{judged} = {analysis.score:.1%}** |",
        f"| score, this assignment's operators | {_score_of(analysis, domain=True)} |",
        f"| score, cosmic-ray's operators | {_score_of(analysis, domain=False)} |",
        f"| wall time of the batch | {wall_s:.1f} s, {wall_s / max(len(outcomes), 1):.2f} s per submission "
        f"({len(outcomes)} submissions: mutants and seeds; median {_median_seconds(outcomes):.2f} s in a worker) |",
        "",
        "## Caught, per check",
        "",
        "A mutant is caught by a check if it loses points there (one mutant can be caught by several).",
        "",
        "| check | mutants caught |",
        "|---|---|",
        *(f"| `{name}` | {count} |" for name, count in analysis.caught_by_check.items()),
        "",
        "## Score per operator family",
        "",
        "| operator | killed / non-equivalent |",
        "|---|---|",
        *(f"| `{family}` | {k}/{n} |" for family, (k, n) in sorted(analysis.score_by_family.items())),
        "",
        "## Misconceptions named on killed mutants",
        "",
        "| misconception | checks that named it |",
        "|---|---|",
        *(f"| `{m or '(none)'}` | {n} |" for m, n in analysis.misconceptions.most_common()),
        "",
    ]
    sections = [
        ("Survivors: wrong code no check catches", analysis.survivors, lambda m: ""),
        ("Listed as equivalent, but a check took points (a check rejects correct code, or the entry is wrong)",
         analysis.equivalent_but_killed, lambda m: f"lost: {outcomes[m.id].lost}; named: {outcomes[m.id].misconceptions}"),
        ("Not graded, or a grader error", analysis.not_graded,
         lambda m: f"status {outcomes[m.id].status}, errors {outcomes[m.id].errors}" if m.id in outcomes else "no record"),
    ]
    for title, ids, detail in sections:
        lines += [f"## {title}", ""]
        if not ids:
            lines += ["None.", ""]
        for mutant_id in ids:
            mutant = by_id[mutant_id]
            lines += [f"- `{mutant_id}` (seed `{mutant.seed}`) {detail(mutant)}", "", _code_block(mutant.source), ""]
    lines += ["## Seeds (correct code) that lost points", ""]
    lines += [f"- `{s}`: {score:g}/{MAX_SCORE}" for s, score in analysis.seeds_not_full.items()] or ["None: every seed scored full marks."]
    lines += ["", "## Stale entries of equivalent.toml (match no generated mutant)", ""]
    lines += [f"- {s}" for s in analysis.stale_equivalents] or ["None."]
    stub_named = [m.id for m in mutants if m.id in outcomes and "not_implemented" in outcomes[m.id].misconceptions.values()]
    lines += ["", "## Told they left a stub (`not_implemented`), though no mutant has one", "",
              "The error came from PyTorch (e.g. `\"rshift_cpu\" not implemented for 'Float'`), not from nbgrader's "
              "`raise NotImplementedError()`: the feedback misleads (for the checks engineer).", ""]
    lines += [", ".join(f"`{i}`" for i in stub_named) if stub_named else "None."]
    lines += ["", "## Killed with only a generic \"wrong value\" message (for the checks engineer)", ""]
    for mutant_id in analysis.generic_only:
        mutant = by_id[mutant_id]
        named = ", ".join(f"{c}: {m}" for c, m in outcomes[mutant_id].misconceptions.items())
        lines += [f"- `{mutant_id}` ({named})", "", _code_block(mutant.source), ""]
    if not analysis.generic_only:
        lines += ["None.", ""]
    lines += ["## Equivalent mutants", ""]
    for mutant_id in analysis.equivalent:
        lines += [f"- `{mutant_id}`: {reasons[by_id[mutant_id].key]}"]
    lines += ["", "## Every killed mutant and what it was told", "", "| mutant | checks that took points: misconception |", "|---|---|"]
    for mutant_id in analysis.killed:
        named = "; ".join(f"{c}: `{m}`" for c, m in outcomes[mutant_id].misconceptions.items())
        lines.append(f"| `{mutant_id}` | {named} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mutation.run", description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sample", type=int, default=0, help="grade only a fixed sample of this many mutants")
    parser.add_argument("--course-dir", type=Path, help="where to write the class (default: a temporary folder)")
    parser.add_argument("--report", type=Path, default=DEFAULT_REPORT, help="markdown report; a .json is written next to it")
    args = parser.parse_args(argv)

    generated = generate()
    equivalents = load_equivalents()
    mutants = generated.mutants
    if args.sample:
        mutants = sample(mutants, args.sample, exclude={e.key for e in equivalents})
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        course_dir = args.course_dir or Path(scratch)
        print(f"grading {len(mutants)} mutants and {len(generated.seeds)} seeds in {course_dir} "
              f"with {args.workers} worker(s)...", file=sys.stderr, flush=True)
        outcomes, wall_s, regraded = grade(mutants, generated.seeds, course_dir, workers=args.workers, device=args.device)
    analysis = analyse(mutants, generated.seeds, outcomes, equivalents, all_keys={m.key for m in generated.mutants})
    text = report_markdown(analysis, mutants, outcomes, equivalents, wall_s=wall_s, workers=args.workers,
                           stillborn=generated.stillborn, regraded=regraded)
    args.report.write_text(text)
    args.report.with_suffix(".json").write_text(json.dumps(
        {"analysis": analysis.to_dict(), "wall_s": round(wall_s, 2), "workers": args.workers, "regraded": regraded,
         "mutants": [asdict(m) | {"outcome": asdict(outcomes[m.id]) if m.id in outcomes else None} for m in mutants]},
        indent=1, default=str))
    print(text[text.index("| | |"):text.index("## Misconceptions")].rstrip())  # the tables: totals, per check, per operator
    print("\nsurvivors:", ", ".join(analysis.survivors) or "none")
    print(f"report: {args.report} (and {args.report.with_suffix('.json').name})")
    problems = analysis.survivors or analysis.equivalent_but_killed or analysis.seeds_not_full or analysis.not_graded
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
