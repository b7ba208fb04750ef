"""What crosses from a sandbox to the grader is plain data; malformed data is refused."""
import ast
import json
import socket
import struct
from pathlib import Path

import pytest
import torch

from autograder.sandbox import protocol
from autograder.sandbox.client import decode_reply

PACKAGE = Path(protocol.__file__).resolve().parents[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool])
def test_tensors_round_trip_exactly(dtype):
    tensor = (torch.randn(4, 3) * 10).to(dtype)
    back = protocol.decode(json.loads(json.dumps(protocol.encode({"t": [tensor]}))))["t"][0]
    assert back.dtype == dtype and back.shape == tensor.shape and torch.equal(back, tensor)


def test_zero_dim_and_empty_tensors_round_trip():
    for tensor in (torch.tensor(2.5), torch.empty(0, 1)):
        back = protocol.decode(protocol.encode(tensor))
        assert back.shape == tensor.shape and torch.equal(back, tensor)


@pytest.mark.parametrize("payload", [
    {"__tensor__": "object", "shape": [1], "data": ""},
    {"__tensor__": "float32", "shape": [2], "data": "AAAAAA=="},  # 4 bytes for 2 floats
    {"__tensor__": "float32", "shape": [-1], "data": ""},
    {"__tensor__": "float32", "shape": "1", "data": ""},
])
def test_malformed_tensor_payloads_are_refused(payload):
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(payload)


def test_malformed_probe_reply_becomes_a_crash_not_an_exception():
    reply = decode_reply({"status": "ok", "observations": {"x": {"__tensor__": "float32", "shape": [9], "data": ""}}}, "cpu")
    assert reply["status"] == "crashed" and "malformed" in reply["reason"]
    assert decode_reply({"observations": {}}, "cpu")["status"] == "crashed"


def test_oversized_or_non_object_messages_are_refused():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack("!I", protocol.MAX_MESSAGE_BYTES + 1))
        with pytest.raises(protocol.ProtocolError):
            protocol.recv_message(ours)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        body = b"[1, 2]"
        theirs.sendall(struct.pack("!I", len(body)) + body)
        with pytest.raises(protocol.ProtocolError):
            protocol.recv_message(ours)


def test_no_module_of_the_grader_can_unpickle():
    """Nothing a student's process sends may be loaded with pickle, marshal or torch.load."""
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "marshal", "dill", "cloudpickle"} & set(names), f"{path} imports a pickler"
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == "torch":
                pytest.fail(f"{path} calls torch.load")
