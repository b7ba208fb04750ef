"""How close is close enough, per check and device, and why.

Student and reference both compute in float32. Elementwise steps (forward, update) do the same
arithmetic and agree to the last bit or one rounding (float32 eps is 1.2e-7). Reductions (loss,
gradient) may sum in another order (sum()/N vs mean, CUDA's tree reductions), which moves the
result by a few eps times log N. Training compounds one such difference per epoch, but gradient
descent contracts errors here, so the history stays within 1e-3 relative.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float


_CPU = {
    "forward": Tolerance(1e-5, 1e-6),
    # d Σ forward / dw is a reduction over the rows (Σx), summed in autograd's order
    "forward_gradient": Tolerance(1e-4, 1e-4),
    "loss": Tolerance(1e-4, 1e-6),
    "gradient": Tolerance(1e-4, 1e-5),
    "update": Tolerance(1e-5, 1e-6),
    "zero_grad": Tolerance(0.0, 0.0),
    "final_loss": Tolerance(1e-3, 1e-5),
}
# GPUs reduce in a different order and may use fused multiply-add: one decade looser.
_CUDA = {name: Tolerance(t.rtol * 10, t.atol * 10) for name, t in _CPU.items()}


def tolerance_for(check: str, device: str) -> Tolerance:
    return (_CUDA if device.startswith("cuda") else _CPU)[check]
