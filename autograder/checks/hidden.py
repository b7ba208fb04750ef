"""Hidden inputs: random, but reproducible from the term's grading secret and the check's name,
so a grade can be recomputed and cannot be fitted to the notebook's visible data.

Each check's generator is seeded with HMAC-SHA256(secret, check name): knowing one check's
inputs (a student's code sees them) tells nothing about the secret or the other checks' inputs,
and the secret (at least 128 bits, hex in autograder/grading.json) cannot be found by search.
"""
from __future__ import annotations

import hashlib
import hmac
import math

import torch

MIN_SECRET_BYTES = 16  # 128 bits


def secret_bytes(secret: str) -> bytes:
    """The grading secret from its hex form; refuses anything shorter than 128 bits."""
    try:
        key = bytes.fromhex(secret)
    except (TypeError, ValueError):
        key = b""
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError("the grading secret must be hex of at least 128 bits (autograder/grading.json's "
                         "grading_seed); run `python -m autograder release --term NAME` to make one")
    return key


def check_seed(secret: str, check: str) -> int:
    """The 64-bit seed of `check`'s generator: HMAC-SHA256 keyed with the grading secret."""
    digest = hmac.new(secret_bytes(secret), check.encode("utf-8"), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big")


class HiddenInputs:
    def __init__(self, grading_secret: str, check: str, device: str):
        self.generator = torch.Generator().manual_seed(check_seed(grading_secret, check))
        self.device = device

    def uniform(self, low: float, high: float, shape=()) -> torch.Tensor:
        values = low + (high - low) * torch.rand(shape, generator=self.generator)
        return values.to(self.device)

    def scalar(self, low: float, high: float) -> float:
        return round(float(self.uniform(low, high)), 4)

    def signed_log_uniform(self, low: float, high: float) -> torch.Tensor:
        """A 0-dim tensor of either sign whose magnitude lies between `low` and `high` (> 0),
        uniform over the orders of magnitude between them."""
        sign = 1.0 if float(torch.rand((), generator=self.generator)) < 0.5 else -1.0
        return (sign * torch.exp(self.uniform(math.log(low), math.log(high)))).to(self.device)

    def column(self, rows: int, low: float = -3.0, high: float = 3.0) -> torch.Tensor:
        return self.uniform(low, high, (rows, 1))

    def dataset(self, rows: int, noise: float = 0.3):
        """Noisy samples of a line through the origin with a hidden slope."""
        slope = self.scalar(-4.0, 4.0)
        x = self.column(rows)
        noise_values = noise * torch.randn((rows, 1), generator=self.generator).to(self.device)
        return x, slope * x + noise_values
