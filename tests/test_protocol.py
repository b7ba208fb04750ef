"""What crosses from a sandbox to the grader is plain data; malformed data is refused."""
import ast
import json
import os
import socket
import struct
import threading
import time
from pathlib import Path

import pytest
import torch

from autograder.sandbox.grader.box_client import decode_reply
from autograder.sandbox.shared import protocol, tensors

PACKAGE = Path(protocol.__file__).resolve().parents[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.int64, torch.bool])
def test_tensors_round_trip_exactly(dtype):
    tensor = (torch.randn(4, 3) * 10).to(dtype)
    back = tensors.decode(json.loads(json.dumps(tensors.encode({"t": [tensor]}))))["t"][0]
    assert back.dtype == dtype and back.shape == tensor.shape and torch.equal(back, tensor)


def test_zero_dim_and_empty_tensors_round_trip():
    for tensor in (torch.tensor(2.5), torch.empty(0, 1)):
        back = tensors.decode(tensors.encode(tensor))
        assert back.shape == tensor.shape and torch.equal(back, tensor)


@pytest.mark.parametrize("payload", [
    {"__tensor__": "object", "shape": [1], "data": ""},
    {"__tensor__": "float32", "shape": [2], "data": "AAAAAA=="},  # 4 bytes for 2 floats
    {"__tensor__": "float32", "shape": [-1], "data": ""},
    {"__tensor__": "float32", "shape": "1", "data": ""},
])
def test_malformed_tensor_payloads_are_refused(payload):
    with pytest.raises(protocol.ProtocolError):
        tensors.decode(payload)


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


def test_no_module_of_the_grader_imports_a_pickler_or_calls_torch_load():
    """Nothing a student's process sends may be loaded with pickle, marshal or torch.load: no
    module of the package imports a pickler or calls torch.load, and the grader's side of the
    sandbox, which reads every box, reads frames only (no multiprocessing connection, which
    unpickles what it receives)."""
    for path in (PACKAGE / "sandbox" / "grader").rglob("*.py"):
        assert "multiprocessing" not in path.read_text(), f"{path} uses multiprocessing"
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "marshal", "dill", "cloudpickle"} & set(names), f"{path} imports a pickler"
            if isinstance(node, ast.Attribute) and node.attr == "load" and getattr(node.value, "id", "") == "torch":
                pytest.fail(f"{path} calls torch.load")


# ------------------------------------------------------------------ framing with deadlines


def _dripping_writer(channel_write, header: bytes, stop: threading.Event) -> threading.Thread:
    """Writes a frame header, then one byte every 0.1 s until stopped: each read gets data in
    time, so only an absolute deadline ends the wait."""
    def run():
        write = channel_write.sendall if isinstance(channel_write, socket.socket) else (lambda b: os.write(channel_write, b))
        write(header)
        while not stop.wait(0.1):
            try:
                write(b" ")
            except OSError:
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("kind", ["socket", "pipe"])
def test_a_frame_dripped_byte_by_byte_stops_at_the_deadline(kind):
    if kind == "socket":
        reader, writer = socket.socketpair()
        reader.settimeout(0.5)  # a per-read timeout that each dripped byte would renew
        close = (reader.close, writer.close)
    else:
        reader, writer = os.pipe()
        close = (lambda: os.close(reader), lambda: os.close(writer))
    stop = threading.Event()
    thread = _dripping_writer(writer, struct.pack("!I", 1000), stop)
    start = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            protocol.recv_message(reader, deadline=time.monotonic() + 1.0)
        assert time.monotonic() - start < 2.0
    finally:
        stop.set()
        thread.join()
        for done in close:
            done()


def test_frames_round_trip_over_a_pipe_and_a_socket():
    message = {"event": "probe", "data": "x" * 300_000}  # larger than a pipe's buffer
    read_end, write_end = os.pipe()
    sender = threading.Thread(target=protocol.send_message, args=(write_end, message),
                              kwargs={"deadline": time.monotonic() + 10})
    sender.start()
    assert protocol.recv_message(read_end, deadline=time.monotonic() + 10) == message
    sender.join()
    os.close(read_end)
    os.close(write_end)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        protocol.send_message(theirs, {"a": 1}, deadline=time.monotonic() + 5)
        assert protocol.recv_message(ours, deadline=time.monotonic() + 5) == {"a": 1}
        with pytest.raises(EOFError):
            theirs.close()
            protocol.recv_message(ours, deadline=time.monotonic() + 5)


def test_a_frame_over_the_readers_cap_is_refused_before_its_body_is_read():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        theirs.sendall(struct.pack("!I", 15 * 2**20))  # the header only: no body ever comes
        with pytest.raises(protocol.FrameTooLarge) as refused:
            protocol.read_frame(ours, deadline=time.monotonic() + 5, max_bytes=256 * 1024)
        assert refused.value.size == 15 * 2**20


def test_deeply_nested_json_is_a_protocol_error_not_a_crash():
    with pytest.raises(protocol.ProtocolError):
        protocol.parse_message(b"[" * 200_000)


# ------------------------------------------------------------------ tensors from a sandbox


@pytest.mark.parametrize("payload", [
    {"__tensor__": "float32", "shape": [1] * 100, "data": "AAAAAA=="},  # 100 dims: torch cannot reshape
    {"__tensor__": "float32", "shape": [0, 2**62], "data": ""},  # zero elements, one absurd dim
    {"__tensor__": "float32", "shape": [True, 1], "data": "AAAAAA=="},  # bools are not sizes
    {"__tensor__": "complex64", "shape": [1], "data": "AAAAAAAAAAA="},
    {"__tensor__": "float32", "shape": [1], "data": 5},
    {"__tensor__": "float32", "shape": [1], "data": "!!!!"},
])
def test_tensor_payloads_a_sandbox_can_forge_are_refused(payload):
    with pytest.raises(protocol.ProtocolError):
        tensors.decode(payload)


def test_a_tensor_shape_over_the_element_cap_is_refused_before_decoding():
    import base64

    data = base64.b64encode(bytes(4 * 2000)).decode()
    assert tensors.decode_tensor({"__tensor__": "float32", "shape": [2000], "data": data}).shape == (2000,)
    with pytest.raises(protocol.ProtocolError, match="over the limit"):
        tensors.decode_tensor({"__tensor__": "float32", "shape": [2000], "data": data}, max_elements=1000)
