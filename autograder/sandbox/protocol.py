"""The wire format between the grader and a sandbox: length-prefixed JSON, nothing else.

One framing layer for every channel of the kit (the grader's socket to a sandbox, the zygote's
control socket, the sandbox's pipes to its probe worker): a frame is a 4-byte big-endian length
and that many bytes. `read_frame`/`write_frame` work on a socket or a plain file descriptor and
take an absolute deadline (a `time.monotonic()` value): the deadline holds for the whole frame,
however the other side dribbles its bytes, and a frame announced larger than the reader's cap is
refused before anything is allocated for it.

Tensors cross as raw bytes with a declared dtype and shape and are rebuilt with
`torch.frombuffer`, so the grader never unpickles anything a student's process produced; their
shape is checked against an element cap before any memory is allocated. A malformed message
raises `ProtocolError`.
"""
from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
import time
from typing import Any

import torch

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the ceiling for any frame; readers may ask for less
MAX_TENSOR_ELEMENTS = 4 * 1024 * 1024  # per decoded tensor, unless the caller asks for less
MAX_TENSOR_DIMS = 16
HEADER = struct.Struct("!I")
_CHUNK = 1 << 20

# Only these dtypes may cross; anything else is reported by type name only.
DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_DTYPE_NAMES = {v: k for k, v in DTYPES.items()}
_ITEM_SIZES = {name: torch.empty((), dtype=dtype).element_size() for name, dtype in DTYPES.items()}

Channel = socket.socket | int  # a connected socket, or a file descriptor (a pipe's end)


class ProtocolError(Exception):
    """A message from the other side was truncated, oversized or not valid."""


class FrameTooLarge(ProtocolError):
    """The other side announced a frame larger than the reader accepts."""

    def __init__(self, size: int, limit: int):
        super().__init__(f"announced a message of {size} bytes; at most {limit} are accepted here")
        self.size, self.limit = size, limit


# ------------------------------------------------------------------------------------ framing


def _wait(channel: Channel, deadline: float | None, for_write: bool) -> None:
    """Block until `channel` is ready or raise TimeoutError once `deadline` has passed."""
    if deadline is None:
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    fd = channel.fileno() if isinstance(channel, socket.socket) else channel
    poller = select.poll()  # poll, not select: a descriptor may be numbered above FD_SETSIZE
    poller.register(fd, select.POLLOUT if for_write else select.POLLIN)
    if not poller.poll(max(1, int(left * 1000 + 1))):
        raise TimeoutError("deadline passed")


def _read_some(channel: Channel, size: int) -> bytes:
    if isinstance(channel, socket.socket):
        return channel.recv(size)
    return os.read(channel, size)


def _read_exactly(channel: Channel, size: int, deadline: float | None) -> bytes:
    """`size` bytes; EOFError if the other side closes first, TimeoutError past `deadline`."""
    data = bytearray()
    while len(data) < size:
        _wait(channel, deadline, for_write=False)
        chunk = _read_some(channel, min(size - len(data), _CHUNK))
        if not chunk:
            raise EOFError("the other side closed the connection")
        data += chunk
    return bytes(data)


def read_frame(channel: Channel, *, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> bytes:
    """One frame's body. Raises EOFError (closed), TimeoutError (past `deadline`, however slowly
    the bytes came), FrameTooLarge (announced over `max_bytes`, refused before reading it).
    Without a deadline, a socket's own timeout applies to each read."""
    (size,) = HEADER.unpack(_read_exactly(channel, HEADER.size, deadline))
    if size > min(max_bytes, MAX_MESSAGE_BYTES):
        raise FrameTooLarge(size, min(max_bytes, MAX_MESSAGE_BYTES))
    return _read_exactly(channel, size, deadline)


def write_frame(channel: Channel, body: bytes, *, deadline: float | None = None) -> None:
    """Write one frame; TimeoutError if the other side does not take it by `deadline`."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(body)} bytes is over the limit")
    view = memoryview(HEADER.pack(len(body)) + body)
    if isinstance(channel, socket.socket) and deadline is None:
        channel.sendall(view)
        return
    while view:
        _wait(channel, deadline, for_write=True)
        try:
            if isinstance(channel, socket.socket):
                sent = channel.send(view[:_CHUNK], socket.MSG_DONTWAIT)
            else:  # a pipe that polled writable takes PIPE_BUF bytes without blocking
                sent = os.write(channel, view[:select.PIPE_BUF])
        except BlockingIOError:
            continue
        view = view[sent:]


def parse_message(body: bytes) -> dict:
    """A frame's body as a JSON object, or ProtocolError."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as error:  # RecursionError: "[[[[..."
        raise ProtocolError(f"message is not valid JSON: {str(error)[:200]}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


def send_message(sock: Channel, message: dict, *, deadline: float | None = None) -> None:
    write_frame(sock, json.dumps(message).encode(), deadline=deadline)


def recv_message(sock: Channel, *, deadline: float | None = None, max_bytes: int = MAX_MESSAGE_BYTES) -> dict:
    """Read one message (see read_frame for what it raises besides ProtocolError)."""
    return parse_message(read_frame(sock, deadline=deadline, max_bytes=max_bytes))


# ------------------------------------------------------------------------------------ tensors


def encode_tensor(tensor: torch.Tensor) -> dict:
    tensor = tensor.detach()
    name = _DTYPE_NAMES.get(tensor.dtype)
    if name is None:
        raise TypeError(f"tensors of dtype {tensor.dtype} cannot be sent")
    # bfloat16/float16 have no NumPy twin; their bytes still carry over exactly.
    # An empty tensor has no bytes (and may have a 0 stride, which view() refuses).
    raw = b"" if tensor.numel() == 0 else tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"__tensor__": name, "shape": list(tensor.shape), "data": base64.b64encode(raw).decode()}


def decode_tensor(payload: dict, device: torch.device | str = "cpu", *,
                  max_elements: int = MAX_TENSOR_ELEMENTS) -> torch.Tensor:
    """Rebuild a tensor; its dtype, shape and byte count are checked before anything is
    allocated (a shape may not claim more than `max_elements`)."""
    name = payload.get("__tensor__")
    shape = payload.get("shape")
    data = payload.get("data", "")
    if name not in DTYPES or not isinstance(shape, list) or len(shape) > MAX_TENSOR_DIMS \
            or not all(type(d) is int and d >= 0 for d in shape) or not isinstance(data, str):
        raise ProtocolError("malformed tensor payload")
    numel = 1
    for dim in shape:
        numel *= dim
        if numel > max_elements or dim > max_elements:  # dim: a zero elsewhere hides no huge one
            raise ProtocolError(f"tensor of shape {shape[:MAX_TENSOR_DIMS]} is over the limit of {max_elements} elements")
    size = numel * _ITEM_SIZES[name]
    if len(data) != 4 * ((size + 2) // 3):  # base64's length, checked before decoding it
        raise ProtocolError("tensor byte count does not match its shape")
    try:
        raw = base64.b64decode(data, validate=True)
    except ValueError:
        raise ProtocolError("tensor data is not base64") from None
    if len(raw) != size:
        raise ProtocolError("tensor byte count does not match its shape")
    dtype = DTYPES[name]
    if numel == 0:
        return torch.empty(shape, dtype=dtype, device=device)
    flat = torch.frombuffer(bytearray(raw), dtype=dtype)
    return flat.reshape(shape).to(device)


def encode(value: Any) -> Any:
    """Turn nested dicts/lists of plain values and tensors into JSON-ready data."""
    if isinstance(value, torch.Tensor):
        return encode_tensor(value)
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__}")


def decode(value: Any, device: torch.device | str = "cpu", *, max_elements: int = MAX_TENSOR_ELEMENTS) -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return decode_tensor(value, device, max_elements=max_elements)
        return {k: decode(v, device, max_elements=max_elements) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, device, max_elements=max_elements) for v in value]
    return value
