"""The transport for nbgrader's own path: probes run directly in the student's kernel.

It offers the same `probe(name, inputs)` as a sandbox and round-trips inputs and observations
through the same encoding, so the checks see identical data on both paths. It confines nothing:
student code shares the process with the checks, which is why grades that count should come
from `python -m autograder autograde`.
"""
from __future__ import annotations

from autograder.sandbox.box.probe_runner import run_probe
from autograder.sandbox.grader.box_client import decode_reply
from autograder.sandbox.shared import tensors


class InKernelSubmission:
    def __init__(self, namespace: dict, device: str = "cpu", probe_timeout_s: float = 10.0):
        self.namespace, self.device, self.probe_timeout_s = namespace, device, probe_timeout_s

    def probe(self, name: str, inputs: dict) -> dict:
        reply = run_probe(self.namespace, name, tensors.encode(inputs), self.device, self.probe_timeout_s)
        return decode_reply(reply, self.device)
