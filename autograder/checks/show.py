"""Short, readable renderings of values for feedback cases."""
from __future__ import annotations

import torch


def show(value, items: int = 4) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().to("cpu").reshape(-1)
        shown = ", ".join(f"{v:.4g}" for v in flat[:items].tolist())
        more = f", … ({flat.numel()} values)" if flat.numel() > items else ""
        return f"tensor([{shown}{more}], shape {tuple(value.shape)})" if value.dim() else f"{value.item():.6g}"
    if isinstance(value, float):
        return f"{value:.6g}"
    return repr(value)


def case(**values) -> str:
    return "Case: " + "; ".join(f"{name} = {show(v)}" for name, v in values.items())


def close(got: torch.Tensor, expected: torch.Tensor, tol) -> bool:
    got = got.to(expected.device, expected.dtype) if got.dtype.is_floating_point else got
    return got.shape == expected.shape and torch.allclose(got, expected, rtol=tol.rtol, atol=tol.atol)
