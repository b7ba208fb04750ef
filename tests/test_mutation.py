"""Mutation analysis of the checks (mutation/): the generator is deterministic and every operator
makes mutants; the operators make the code they claim; the equivalents file stays sound; the
report's arithmetic; and, graded by the kit's own batch verb, a fixed sample of mutants covering
every operator each lose a point while every correct seed keeps full marks.

The full run over every mutant is `make mutation` (about 7 minutes on 2 cores)."""
from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from autograder.assignment import KIT_ROOT, MAX_SCORE

if str(KIT_ROOT) not in sys.path:  # `mutation` is a top-level folder of the kit, not an installed package
    sys.path.insert(0, str(KIT_ROOT))

from mutation.generate import code_key, generate, load_equivalents, sample  # noqa: E402
from mutation.operators import (  # noqa: E402
    DOMAIN_OPERATORS,
    cosmic_ray_family,
    cosmic_ray_label,
    cosmic_ray_operator_names,
    domain_mutants,
)
from mutation.run import Outcome, analyse, grade, seed_student  # noqa: E402
from mutation.seeds import STUDENT_FUNCTIONS, all_seeds  # noqa: E402

SAMPLE_SIZE = 40
COSMIC_RAY_FAMILIES = ("binary", "comparison", "unary", "boolean", "number", "decorator", "variable")

# Wrong code that survived the first full run, now caught (update_changes_grad, returns_value):
# graded on top of the sample so that it stays caught.
_ZEROES_GRAD = "update also zeroes w.grad; the contract says update leaves w.grad as it is (update_changes_grad)"
_RETURNS_W = "the step returns w; the contract says it returns None (returns_value)"
FORMER_SURVIVORS: dict[str, str] = {code_key(source): reason for source, reason in (
    ("def update(w, lr):\n    w.data = w.data - lr * w.grad.data\n    w.grad.zero_()\n", _ZEROES_GRAD),
    ("def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n    w.grad.zero_()\n", _ZEROES_GRAD),
    ("@torch.no_grad()\ndef update(w, lr):\n    w.sub_(lr * w.grad)\n    w.grad.zero_()\n", _ZEROES_GRAD),
    ("def update(w, lr):\n    with torch.set_grad_enabled(False):\n        w.add_(-lr * w.grad)\n    w.grad.zero_()\n", _ZEROES_GRAD),
    ("def update(w, lr):\n    w.data = w.data - lr * w.grad.data\n    return w\n", _RETURNS_W),
    ("def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n    return w\n", _RETURNS_W),
    ("@torch.no_grad()\ndef update(w, lr):\n    w.sub_(lr * w.grad)\n    return w\n", _RETURNS_W),
    ("def update(w, lr):\n    with torch.set_grad_enabled(False):\n        w.add_(-lr * w.grad)\n    return w\n", _RETURNS_W),
    ("def zero_grad(w):\n    w.grad.data.zero_()\n    return w\n", _RETURNS_W),
    ("def zero_grad(w):\n    if w.grad is not None:\n        w.grad.zero_()\n    return w\n", _RETURNS_W),
    ("def zero_grad(w):\n    w.grad = None\n    return w\n", _RETURNS_W),
)}


_generated = functools.cache(generate)  # collection (the sample's ids) and the tests share one generation


@pytest.fixture(scope="module")
def generated():
    return _generated()


@pytest.fixture(scope="module")
def equivalent_keys():
    return {e.key for e in load_equivalents()}


def _fingerprint(mutants) -> list[tuple[str, str]]:
    return [(m.id, m.source) for m in mutants]


def test_generator_is_deterministic(generated):
    # another process with another hash seed (set iteration order, random draws) gives the same list
    script = ("import json, sys; sys.path.insert(0, sys.argv[1]); from mutation.generate import generate; "
              "print(json.dumps([[m.id, m.source] for m in generate().mutants]))")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    out = subprocess.run([sys.executable, "-c", script, str(KIT_ROOT)], env=env, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert [tuple(pair) for pair in json.loads(out)] == _fingerprint(generated.mutants)


def test_every_operator_makes_mutants(generated):
    families = Counter(m.family for m in generated.mutants)
    for operator in DOMAIN_OPERATORS:
        assert families[operator.name] > 0, f"domain operator {operator.name} made no mutant of its own"
    family_of = {cosmic_ray_label(name): cosmic_ray_family(name) for name in cosmic_ray_operator_names()}
    produced = Counter()
    for label, count in generated.produced.items():
        produced[family_of.get(label, label)] += count
    for family in COSMIC_RAY_FAMILIES:
        assert produced[family] > 0, f"cosmic-ray's {family} operators made no mutant"
    assert {m.function for m in generated.mutants} == set(STUDENT_FUNCTIONS)
    # a mutant changes exactly one student function, and is valid Python defining it
    for mutant in generated.mutants:
        defined = [n.name for n in ast.parse(mutant.source).body if isinstance(n, ast.FunctionDef)]
        assert defined == [mutant.function], mutant.id


@pytest.mark.parametrize(("operator_name", "source", "expected"), [
    ("mean_sum", "def criterion(yhat, y):\n    return torch.mean((yhat - y) ** 2)\n", "torch.sum((yhat - y) ** 2)"),
    ("step_sign", "def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n", "w += lr * w.grad"),
    ("rebinding", "def update(w, lr):\n    w.data = w.data - lr * w.grad.data\n", "w = w.data - lr * w.grad.data"),
    ("in_place", "def update(w, lr):\n    w.data = w.data - lr * w.grad.data\n", "w -= lr * w.grad.data"),
    ("no_grad_removed", "def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n", "    w -= lr * w.grad"),
    ("lr_dropped", "def update(w, lr):\n    w.add_(-lr * w.grad)\n", "w.add_(-w.grad)"),
    ("lr_doubled", "def update(w, lr):\n    w.sub_(lr * w.grad)\n", "w.sub_(2.0 * lr * w.grad)"),
    ("view_flat", "def forward(x, w):\n    return w * x\n", "(w * x).view(-1)"),
    ("item_added", "def criterion(yhat, y):\n    return torch.mean((yhat - y) ** 2)\n", "torch.mean((yhat - y) ** 2).item()"),
    ("zeroing_removed", "def zero_grad(w):\n    w.grad.zero_()\n", "    pass"),
    ("call_dropped", "def zero_grad(w):\n    w.grad.data.zero_()\n", "    w.grad.data.zero_\n"),
    ("square_of_mean", "def criterion(yhat, y):\n    return ((yhat - y) ** 2).mean()\n", "(yhat - y).mean() ** 2"),
    ("root_loss", "def criterion(yhat, y):\n    return torch.mean((yhat - y) ** 2)\n", "torch.sqrt(torch.mean((yhat - y) ** 2))"),
    ("global_used", "def forward(x, w):\n    return w * x\n", "def forward(x, weight):"),
    ("parens_dropped", "def criterion(yhat, y):\n    return torch.mean((yhat - y) ** 2)\n", "torch.mean(yhat - y ** 2)"),
    ("result_discarded", "def update(w, lr):\n    with torch.no_grad():\n        w -= lr * w.grad\n", "        w - lr * w.grad"),
    ("result_discarded", "def zero_grad(w):\n    w.grad.zero_()\n", "w.grad.mul(0)"),
])
def test_domain_operator_makes_the_mistake_it_names(operator_name, source, expected):
    operator = next(op for op in DOMAIN_OPERATORS if op.name == operator_name)
    mutants = list(domain_mutants(operator, source))
    assert any(expected in m for m in mutants), mutants
    assert all(code_key(m) != code_key(source) for m in mutants)


def test_equivalents_file_is_sound(generated):
    entries = load_equivalents()
    keys = {m.key for m in generated.mutants}
    seeds = {code_key(s.source) for s in generated.seeds}
    for entry in entries:
        assert entry.function in STUDENT_FUNCTIONS
        assert len(entry.reason.strip()) > 20, f"equivalent entry without a real reason: {entry.source}"
        assert entry.key in keys, f"equivalent entry matches no generated mutant (stale): {entry.source}"
        assert entry.key not in seeds
    assert len({e.key for e in entries}) == len(entries), "an equivalent mutant is listed twice"


def test_sample_is_fixed_and_covers_every_operator(generated, equivalent_keys):
    picked = sample(generated.mutants, SAMPLE_SIZE, exclude=equivalent_keys)
    assert _fingerprint(picked) == _fingerprint(sample(generated.mutants, SAMPLE_SIZE, exclude=equivalent_keys))
    assert len(picked) >= SAMPLE_SIZE
    assert not {m.key for m in picked} & equivalent_keys
    assert {m.family for m in picked} == {m.family for m in generated.mutants if m.key not in equivalent_keys}


def test_analysis_counts_killed_equivalent_and_survivors(generated):
    """The report's arithmetic on made-up outcomes: no grading involved."""
    from mutation.generate import Equivalent

    mutants = generated.mutants[:4]
    seeds = generated.seeds[:1]
    outcomes = {
        mutants[0].id: Outcome(mutants[0].id, "graded", 8, lost={"update": 2}, misconceptions={"update": "update_sign"}),
        mutants[1].id: Outcome(mutants[1].id, "graded", 8, lost={"loss": 2}, misconceptions={"loss": "loss_wrong_value"}),
        mutants[2].id: Outcome(mutants[2].id, "graded", MAX_SCORE),
        mutants[3].id: Outcome(mutants[3].id, "graded", 9, lost={"forward": 1}, misconceptions={"forward": "forward_detached"}),
        seed_student(seeds[0]): Outcome(seed_student(seeds[0]), "graded", MAX_SCORE - 2, lost={"loss": 2}),
    }
    equivalents = [Equivalent(mutants[3].function, mutants[3].source, "listed to test the arithmetic, not really equivalent")]
    analysis = analyse(mutants, seeds, outcomes, equivalents)
    assert analysis.killed == [mutants[0].id, mutants[1].id]
    assert analysis.survivors == [mutants[2].id]
    assert analysis.equivalent == [mutants[3].id] and analysis.equivalent_but_killed == [mutants[3].id]
    assert analysis.score == pytest.approx(2 / 3)
    assert analysis.caught_by_check["update"] == 1 and analysis.caught_by_check["loss"] == 1
    assert analysis.generic_only == [mutants[1].id]
    assert analysis.seeds_not_full == {seed_student(seeds[0]): MAX_SCORE - 2}


def test_former_survivors_are_generated_and_not_listed_equivalent(generated, equivalent_keys):
    generated_keys = {m.key for m in generated.mutants}
    assert set(FORMER_SURVIVORS) <= generated_keys, "a former survivor is no longer generated: drop it from the list"
    assert not set(FORMER_SURVIVORS) & equivalent_keys


def _graded_set(generated, equivalent_keys):
    """The fixed sample of mutants that must lose a point, then the former survivors made from
    the reference (the others are the same mistakes written from another seed; `make mutation`
    grades them all)."""
    picked = sample(generated.mutants, SAMPLE_SIZE, exclude=equivalent_keys | set(FORMER_SURVIVORS))
    return picked + [m for m in generated.mutants if m.key in FORMER_SURVIVORS and m.seed == "reference"]


@pytest.fixture(scope="module")
def graded(generated, equivalent_keys, tmp_path_factory):
    """The sample (plus the former survivors) and every seed, graded once as one class."""
    mutants = _graded_set(generated, equivalent_keys)
    outcomes, _, _ = grade(mutants, generated.seeds, tmp_path_factory.mktemp("mutation-class"), workers=2)
    return {m.id: m for m in mutants}, outcomes


def _sample_params():
    generated = _generated()
    keys = {e.key for e in load_equivalents()}
    params = []
    for mutant in _graded_set(generated, keys):
        params.append(pytest.param(mutant.id, id=mutant.id))
    return params


@pytest.mark.slow
@pytest.mark.parametrize("mutant_id", _sample_params())
def test_sampled_mutant_loses_a_point(graded, mutant_id):
    mutants, outcomes = graded
    outcome = outcomes[mutant_id]
    assert outcome.status == "graded" and not outcome.errors, f"{mutant_id}: {outcome}"
    assert outcome.killed and outcome.score < MAX_SCORE, f"no check caught {mutant_id}:\n{mutants[mutant_id].source}"


@pytest.mark.slow
def test_correct_seeds_keep_full_marks(graded):
    """The other correct ways to write a step (mutation/seeds.py) score full marks: a check
    that rejected one would punish correct code."""
    _, outcomes = graded
    for seed in all_seeds():
        outcome = outcomes[seed_student(seed)]
        assert outcome.score == MAX_SCORE, f"correct {seed.function} ({seed.name}) lost {outcome.lost}: {outcome.misconceptions}"


def test_a_died_sandbox_is_not_a_kill_and_is_graded_again(generated, monkeypatch, tmp_path):
    """No operator makes code that kills its process: losing points only to a died or hung
    sandbox (or a failed grading) is graded once more, and if it happens again it is counted as
    not graded, never as killed."""
    import mutation.run as run

    mutants, seeds = generated.mutants[:3], generated.seeds[:1]
    died = {c: "sandbox_died" for c in ("forward", "loss")}
    first = {
        mutants[0].id: Outcome(mutants[0].id, "graded", 7, lost={"forward": 1, "loss": 2}, misconceptions=died),
        mutants[1].id: Outcome(mutants[1].id, "failed", 0, lost={"forward": 1}, misconceptions={"forward": ""}),
        mutants[2].id: Outcome(mutants[2].id, "graded", 9, lost={"forward": 1}, misconceptions={"forward": "forward_detached"}),
        seed_student(seeds[0]): Outcome(seed_student(seeds[0]), "graded", MAX_SCORE),
    }
    second = dict(first, **{mutants[1].id: Outcome(mutants[1].id, "graded", 9, lost={"forward": 1},
                                                    misconceptions={"forward": "forward_ignores_w"})})
    calls, reads = [], iter([first, second])
    monkeypatch.setattr(run, "write_class", lambda *args: None)
    monkeypatch.setattr(run, "_autograde", lambda course, workers, device, students=None: calls.append(students))
    monkeypatch.setattr(run, "read_outcomes", lambda course: next(reads))
    outcomes, _, again = grade(mutants, seeds, tmp_path)
    assert calls == [None, sorted([mutants[0].id, mutants[1].id])] and again == calls[1]
    analysis = analyse(mutants, seeds, outcomes, [])
    assert analysis.killed == [mutants[1].id, mutants[2].id]
    assert analysis.not_graded == [mutants[0].id]
    assert analysis.survivors == []
