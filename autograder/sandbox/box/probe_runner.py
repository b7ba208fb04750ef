"""One probe call, made safe to report: inputs arrive and observations leave as encoded plain
data, and every way student code can fail becomes a status the checks understand.

Used in the sandbox (one forked process per probe) and, on nbgrader's path, in the student's
own kernel, so both paths see byte-for-byte the same kind of answer.
"""
from __future__ import annotations

import torch

from autograder.probes.pytorch_slope import PROBE_NEEDS, PROBES
from autograder.sandbox.box.guard import StepTimeout, captured_output, deadline, describe_error
from autograder.sandbox.shared import tensors
from autograder.sandbox.shared.clocks import WALL_FACTOR, cpu_seconds, wall_ceiling_s

# Statuses a probe reply can carry.
OK, MISSING, NOT_IMPLEMENTED, ERROR, TIMEOUT, CRASHED = (
    "ok", "missing", "not_implemented", "error", "timeout", "crashed",
)


def run_probe(namespace: dict, name: str, inputs: dict, device: str, timeout_s: float,
              wall_factor: float = WALL_FACTOR, *, wall_s: float | None = None) -> dict:
    """Run probe `name` on the student's `namespace` with `timeout_s` of CPU time (and a wall-clock
    ceiling: `wall_s`, or `wall_factor` times the limit); return an encoded reply dict, with the
    CPU time the student's steps used as `cpu_s` (the checks' shared budget counts it)."""
    missing = [f for f in PROBE_NEEDS[name] if not callable(namespace.get(f))]
    if missing:
        return {"status": MISSING, "missing": missing, "cpu_s": 0.0}
    steps = {f: namespace[f] for f in PROBE_NEEDS[name]}
    reply: dict
    started = cpu_seconds()
    with captured_output() as output:
        try:
            decoded = tensors.decode(inputs, device)
            # enable_grad: a notebook that switched autograd off globally must not break the probe.
            with deadline(timeout_s, wall_s or wall_ceiling_s(timeout_s, wall_factor)), torch.enable_grad():
                observations = PROBES[name](steps, **decoded)
            reply = {"status": OK, "observations": tensors.encode(observations)}
        except NotImplementedError as error:
            reply = {"status": NOT_IMPLEMENTED, "error": describe_error(error)}
        except StepTimeout as error:
            reply = {"status": TIMEOUT, "error": describe_error(error)}
        except BaseException as error:  # the student's code may raise anything, SystemExit included
            reply = {"status": ERROR, "error": describe_error(error)}
    reply["output"] = output.getvalue()
    reply["cpu_s"] = cpu_seconds() - started
    return reply
