"""A term's parameters, derived from its name.

`derive("2026-fall")` seeds `random.Random` with the SHA-256 of the name and draws every
parameter within ranges that keep the lesson's story; a draw whose simulated reference training
does not tell that story (`story_problems`) is thrown away and the generator draws again. The
same name always gives the same numbers (the generator and the simulation are deterministic);
another name gives others.
"""
from __future__ import annotations

import hashlib
import random
import re
import secrets
from dataclasses import asdict, dataclass, field

from autograder.assignment import GRADING_FILE
from autograder.terms import read_secrets

# The order of the master's parameters cell, one assignment per line.
PARAMETER_NAMES = ("TRUE_SLOPE", "NOISE_STD", "DATA_SEED", "W_INIT", "LR", "EPOCHS", "W_INIT_SECOND")

# Ranges of the draw. |TRUE_SLOPE| in [1, 4] keeps the line visibly sloped (either sign); the
# noise stays visible but small next to the line; both starts are far from the slope so that the
# first steps are big; X = arange(-3, 3, 0.1) has mean(x^2) ~ 2.96, so each step multiplies the
# distance to the best slope by 1 - 2 LR mean(x^2), between 0.70 (LR 0.05) and 0.11 (LR 0.15):
# no overshoot, and 4-6 epochs are enough (the story check below rejects slow combinations).
SLOPE_ABS = (1.0, 4.0)
NOISE_STD = (0.05, 0.30)
DATA_SEED = (0, 9999)
W_INIT_DISTANCE = (5.0, 10.0)          # |W_INIT - TRUE_SLOPE|
W_INIT_SECOND_EXTRA = (3.0, 6.0)       # |W_INIT_SECOND - TRUE_SLOPE| - |W_INIT - TRUE_SLOPE|
LR = (0.05, 0.15)
EPOCHS = (4, 6)
GRADING_SEED = (1, 2**31 - 1)  # only drawn and dropped now: keeps the stream of the draws after it
GRADING_SECRET_BYTES = 32  # the grading secret (HMAC key of the hidden inputs, checks/hidden.py)

# The story, on the reference training of the notebook's own data (see story_problems).
FIRST_EPOCH_DROP = 0.5      # loss after one step <= this fraction of the starting loss
PLOTTED_EXCESS = 0.1        # last plotted loss: excess over the noise floor <= this fraction of the start's
FINAL_EXCESS = 0.01         # loss at the trained w: excess <= this fraction of the start's
FINAL_SLOPE_ERROR = 0.5     # |trained w - TRUE_SLOPE| <= this
SECOND_START_HIGHER = 1.5   # the worse start's first loss >= this times the first start's

MAX_DRAWS = 1000
# The one spelling of a term: the year, a hyphen, the season in lower case. The name seeds every
# parameter, so two spellings of one term ("2027-Spring", "spring2027") would be two releases.
SEASONS = ("spring", "summer", "fall", "winter")
TERM_FORMAT = "YYYY-" + "|".join(SEASONS)
_TERM_NAME = re.compile(r"^(20[0-9]{2})-(" + "|".join(SEASONS) + r")$")


@dataclass(frozen=True)
class TermParameters:
    term: str
    TRUE_SLOPE: float
    NOISE_STD: float
    DATA_SEED: int
    W_INIT: float
    LR: float
    EPOCHS: int
    W_INIT_SECOND: float
    # The grading secret, hex: random, not derived from the (public) term name; kept when the
    # same term is released again. Not part of equality: the same term is the same parameters.
    grading_seed: str = field(compare=False)

    def visible(self) -> dict:
        """The parameters students see (the master's parameters cell), in the cell's order."""
        values = asdict(self)
        return {name: values[name] for name in PARAMETER_NAMES}


def check_term_name(term: str) -> str:
    """`term` if it is in the canonical format (TERM_FORMAT), else ValueError with the format and a
    suggestion when the name is recognisably a term spelled another way."""
    if isinstance(term, str) and _TERM_NAME.fullmatch(term):
        return term
    hint = ""
    year = re.search(r"20[0-9]{2}", term or "")
    season = next((s for s in SEASONS if s in (term or "").lower()), None)
    if year and season:
        hint = f" (did you mean {year.group(0)}-{season}?)"
    raise ValueError(f"bad term name {term!r}: use {TERM_FORMAT}, the year and the season in lower case, "
                     f"e.g. 2027-spring{hint}")


def derive(term: str, stored=GRADING_FILE) -> TermParameters:
    """The term's parameters, with its grading secret as `stored` (grading.json) holds it."""
    check_term_name(term)
    rng = random.Random(int.from_bytes(hashlib.sha256(term.encode("utf-8")).digest(), "big"))
    secret = grading_secret(term, stored)
    for _ in range(MAX_DRAWS):
        candidate = _draw(rng, term, secret)
        if not story_problems(candidate):
            return candidate
    raise RuntimeError(f"no parameters for term {term!r} told the lesson's story in {MAX_DRAWS} draws")


def grading_secret(term: str, stored=GRADING_FILE) -> str:
    """The term's grading secret: the one `stored` holds for this term, current or earlier
    (re-releasing a term keeps it, so its grades stay current), else 256 fresh random bits."""
    try:
        known = read_secrets(stored).secrets.get(term)
        if is_secret(known):
            return known
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return secrets.token_hex(GRADING_SECRET_BYTES)


def is_secret(value) -> bool:
    try:
        return isinstance(value, str) and len(bytes.fromhex(value)) >= 16
    except ValueError:
        return False


def _draw(rng: random.Random, term: str, secret: str) -> TermParameters:
    slope = rng.choice((-1, 1)) * round(rng.uniform(*SLOPE_ABS), 1)
    distance = rng.uniform(*W_INIT_DISTANCE)
    w_init = round(slope + rng.choice((-1, 1)) * distance, 1)
    second_distance = abs(w_init - slope) + rng.uniform(*W_INIT_SECOND_EXTRA)
    w_second = round(slope + rng.choice((-1, 1)) * second_distance, 1)
    params = TermParameters(
        term=term,
        TRUE_SLOPE=float(slope),
        NOISE_STD=round(rng.uniform(*NOISE_STD), 2),
        DATA_SEED=rng.randint(*DATA_SEED),
        W_INIT=float(w_init),
        LR=round(rng.uniform(*LR), 2),
        EPOCHS=rng.randint(*EPOCHS),
        W_INIT_SECOND=float(w_second),
        grading_seed=secret,
    )
    rng.randint(*GRADING_SEED)  # the old integer seed's draw, dropped: every later draw stays as it was
    return params


def range_problems(p: TermParameters) -> list[str]:
    """Every parameter within its range (after rounding)."""
    problems = []

    def within(name, value, low, high):
        if not (low - 1e-9 <= value <= high + 1e-9):
            problems.append(f"{name} = {value} is outside [{low}, {high}]")

    within("|TRUE_SLOPE|", abs(p.TRUE_SLOPE), *SLOPE_ABS)
    within("NOISE_STD", p.NOISE_STD, *NOISE_STD)
    within("DATA_SEED", p.DATA_SEED, *DATA_SEED)
    within("|W_INIT - TRUE_SLOPE|", round(abs(p.W_INIT - p.TRUE_SLOPE), 6), W_INIT_DISTANCE[0] - 0.05, W_INIT_DISTANCE[1] + 0.05)
    within("LR", p.LR, *LR)
    within("EPOCHS", p.EPOCHS, *EPOCHS)
    extra = abs(p.W_INIT_SECOND - p.TRUE_SLOPE) - abs(p.W_INIT - p.TRUE_SLOPE)
    within("|W_INIT_SECOND - TRUE_SLOPE| - |W_INIT - TRUE_SLOPE|", round(extra, 6),
           W_INIT_SECOND_EXTRA[0] - 0.1, W_INIT_SECOND_EXTRA[1] + 0.1)
    if not is_secret(p.grading_seed):
        problems.append("grading_seed must be a hex grading secret of at least 128 bits")
    for name in ("TRUE_SLOPE", "NOISE_STD", "W_INIT", "LR", "W_INIT_SECOND"):
        if not isinstance(getattr(p, name), float):
            problems.append(f"{name} must be a float")
    for name in ("DATA_SEED", "EPOCHS"):
        if not isinstance(getattr(p, name), int) or isinstance(getattr(p, name), bool):
            problems.append(f"{name} must be an int")
    return problems


def simulate(p: TermParameters) -> dict:
    """The notebook's reference training on its own data, as plain numbers."""
    import torch

    from autograder.provided import train_model
    from autograder.release.reference import load_reference

    ref = load_reference()
    X = torch.arange(-3, 3, 0.1).view(-1, 1)
    generator = torch.Generator().manual_seed(p.DATA_SEED)  # same stream as torch.manual_seed
    Y = p.TRUE_SLOPE * X + p.NOISE_STD * torch.randn(X.size(), generator=generator)
    w_best = float((X * Y).sum() / (X * X).sum())

    def cost(w: float) -> float:
        return float(torch.mean((w * X - Y) ** 2))

    runs = {}
    for key, start in (("first", p.W_INIT), ("second", p.W_INIT_SECOND)):
        w = torch.tensor(start, requires_grad=True)
        slopes = []
        losses = train_model(X, Y, w, p.LR, p.EPOCHS, ref.forward, ref.criterion, ref.update, ref.zero_grad,
                             on_epoch=lambda epoch, w_value, loss, slopes=slopes: slopes.append(w_value))
        runs[key] = {"losses": losses, "slopes": slopes + [w.item()], "w_final": w.item(), "final_loss": cost(w.item())}
    return {"w_best": w_best, "floor": cost(w_best), **runs}


def story_problems(p: TermParameters, sim: dict | None = None) -> list[str]:
    """Why these parameters would not tell the lesson's story (empty: they do)."""
    problems = range_problems(p)
    if problems:
        return problems
    sim = sim or simulate(p)
    floor, first, second = sim["floor"], sim["first"], sim["second"]
    losses = first["losses"]
    start_excess = losses[0] - floor
    if not all(b < a for a, b in zip(losses, losses[1:], strict=False)):
        problems.append(f"the loss does not fall at every epoch: {losses}")
    if not losses[1] <= FIRST_EPOCH_DROP * losses[0]:
        problems.append(f"the first epoch is not a big step: loss {losses[0]:.4g} -> {losses[1]:.4g}")
    steps = [abs(b - a) for a, b in zip(first["slopes"], first["slopes"][1:], strict=False)]
    if not all(b < a for a, b in zip(steps, steps[1:], strict=False)):
        problems.append(f"the steps do not shrink: {steps}")
    if not losses[-1] - floor <= PLOTTED_EXCESS * start_excess:
        problems.append(f"the plotted epochs do not reach convergence: last plotted loss {losses[-1]:.4g}, "
                        f"noise floor {floor:.4g}, start {losses[0]:.4g}")
    if not first["final_loss"] - floor <= FINAL_EXCESS * start_excess:
        problems.append(f"training does not end near the noise floor: final loss {first['final_loss']:.4g}, floor {floor:.4g}")
    if not abs(first["w_final"] - p.TRUE_SLOPE) <= FINAL_SLOPE_ERROR:
        problems.append(f"the trained slope {first['w_final']:.4g} is far from TRUE_SLOPE {p.TRUE_SLOPE}")
    if not second["losses"][0] >= SECOND_START_HIGHER * losses[0]:
        problems.append("the second start is not clearly worse than the first")
    if not all(b < a for a, b in zip(second["losses"], second["losses"][1:], strict=False)):
        problems.append(f"the loss from W_INIT_SECOND does not fall at every epoch: {second['losses']}")
    return problems
