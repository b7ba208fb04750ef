"""Hidden inputs: random, but reproducible from the term's grading seed and the check's name,
so a grade can be recomputed and cannot be fitted to the notebook's visible data."""
from __future__ import annotations

import zlib

import torch


class HiddenInputs:
    def __init__(self, grading_seed: int, check: str, device: str):
        self.generator = torch.Generator().manual_seed(grading_seed ^ zlib.crc32(check.encode()))
        self.device = device

    def uniform(self, low: float, high: float, shape=()) -> torch.Tensor:
        values = low + (high - low) * torch.rand(shape, generator=self.generator)
        return values.to(self.device)

    def scalar(self, low: float, high: float) -> float:
        return round(float(self.uniform(low, high)), 4)

    def column(self, rows: int, low: float = -3.0, high: float = 3.0) -> torch.Tensor:
        return self.uniform(low, high, (rows, 1))

    def dataset(self, rows: int, noise: float = 0.3):
        """Noisy samples of a line through the origin with a hidden slope."""
        slope = self.scalar(-4.0, 4.0)
        x = self.column(rows)
        noise_values = noise * torch.randn((rows, 1), generator=self.generator).to(self.device)
        return x, slope * x + noise_values
