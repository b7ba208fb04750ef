"""The mutants: every operator (operators.py) applied to every seed (seeds.py), deduplicated,
numbered in a fixed order, plus the committed list of equivalent mutants (equivalent.toml).

A mutant changes exactly one of the four student functions; its id names its number, the
function and the operator that made it first, e.g. `m042_update_step_sign`. Two operators that
give the same code give one mutant (`also_by` lists the others). A mutant that does not parse
is dropped (counted as stillborn); one identical to a seed is correct code by construction and
is dropped too.
"""
from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from mutation.operators import (
    DOMAIN_OPERATORS,
    cosmic_ray_family,
    cosmic_ray_label,
    cosmic_ray_mutants,
    cosmic_ray_operator_names,
    domain_mutants,
    function_params,
)
from mutation.seeds import STUDENT_FUNCTIONS, Seed, all_seeds

EQUIVALENT_FILE = Path(__file__).resolve().parent / "equivalent.toml"


@dataclass
class Mutant:
    id: str
    function: str
    operator: str  # label of the operator that made it first, e.g. step_sign, binary_sub_add
    family: str  # the domain operator's name, or cosmic-ray's family (binary, comparison, ...)
    seed: str
    source: str
    also_by: list[str] = field(default_factory=list)

    @cached_property
    def key(self) -> str:
        return code_key(self.source)


@dataclass
class Generated:
    mutants: list[Mutant]
    seeds: list[Seed]
    stillborn: int  # mutated code that does not parse
    same_as_seed: int  # mutated code identical to a correct seed
    produced: dict[str, int]  # operator label -> mutants it produced (before deduplication)


def code_key(source: str) -> str:
    """The identity of a function's code: its syntax tree, whatever the formatting."""
    return ast.dump(ast.parse(source))


def _candidates(seed: Seed):
    """(label, family, source) of every mutant of one seed: domain operators first, so that a
    mutant both make carries the domain operator's clearer name."""
    for operator in DOMAIN_OPERATORS:
        for source in domain_mutants(operator, seed.source):
            yield operator.name, operator.name, source
    params = function_params(seed.source)
    for name in cosmic_ray_operator_names():
        for source in cosmic_ray_mutants(name, seed.source, params):
            yield cosmic_ray_label(name), cosmic_ray_family(name), source


def generate() -> Generated:
    """Every mutant, in a fixed order: by student function, then seed, then operator, then site."""
    seeds = all_seeds()
    seed_keys = {code_key(s.source) for s in seeds}
    mutants: list[Mutant] = []
    by_key: dict[str, Mutant] = {}
    stillborn = same_as_seed = 0
    produced: dict[str, int] = {}
    for function in STUDENT_FUNCTIONS:
        for seed in (s for s in seeds if s.function == function):
            for label, family, source in _candidates(seed):
                produced[label] = produced.get(label, 0) + 1
                try:
                    key = code_key(source)
                    compile(source, "<mutant>", "exec")
                except SyntaxError:
                    stillborn += 1
                    continue
                if key in seed_keys:
                    same_as_seed += 1
                elif key in by_key:
                    if label not in by_key[key].also_by and label != by_key[key].operator:
                        by_key[key].also_by.append(label)
                else:
                    mutant = Mutant(f"m{len(mutants):03d}_{function}_{label}", function, label, family, seed.name, source)
                    by_key[key] = mutant
                    mutants.append(mutant)
    return Generated(mutants, seeds, stillborn, same_as_seed, produced)


@dataclass(frozen=True)
class Equivalent:
    function: str
    source: str
    reason: str

    @property
    def key(self) -> str:
        return code_key(self.source)


def load_equivalents(path: Path = EQUIVALENT_FILE) -> list[Equivalent]:
    """The committed equivalent mutants: each a function's code and why it is still correct."""
    if not path.exists():
        return []
    data = tomllib.loads(path.read_text())
    return [Equivalent(e["function"], e["source"], e["reason"]) for e in data.get("equivalent", [])]


def coverage_key(mutant: Mutant) -> str:
    """What a test sample must cover: every domain operator, every cosmic-ray family."""
    return mutant.family


def sample(mutants: list[Mutant], size: int, exclude: set[str] = frozenset()) -> list[Mutant]:
    """A fixed, deterministic sample: the first mutant of every operator (domain) or family
    (cosmic-ray), then evenly spaced others up to `size`; mutants whose key is in `exclude`
    (the equivalent ones) are never picked."""
    pool = [m for m in mutants if m.key not in exclude]
    chosen: dict[str, Mutant] = {}
    for mutant in pool:
        chosen.setdefault(coverage_key(mutant), mutant)
    picked = {m.id for m in chosen.values()}
    rest = [m for m in pool if m.id not in picked]
    room = max(size - len(picked), 0)
    if rest and room:
        step = len(rest) / room
        picked |= {rest[int(i * step)].id for i in range(min(room, len(rest)))}
    return [m for m in pool if m.id in picked]
