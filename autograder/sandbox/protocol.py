"""The wire format between the grader and a sandbox: length-prefixed JSON, nothing else.

Tensors cross as raw bytes with a declared dtype and shape and are rebuilt with
`torch.frombuffer`, so the grader never unpickles anything a student's process produced.
Every message is size-capped; a malformed one raises `ProtocolError`.
"""
from __future__ import annotations

import base64
import json
import socket
import struct
from typing import Any

import torch

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct("!I")

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


class ProtocolError(Exception):
    """A message from the other side was truncated, oversized or not valid."""


def encode_tensor(tensor: torch.Tensor) -> dict:
    tensor = tensor.detach()
    name = _DTYPE_NAMES.get(tensor.dtype)
    if name is None:
        raise TypeError(f"tensors of dtype {tensor.dtype} cannot be sent")
    # bfloat16/float16 have no NumPy twin; their bytes still carry over exactly.
    raw = tensor.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    return {"__tensor__": name, "shape": list(tensor.shape), "data": base64.b64encode(raw).decode()}


def decode_tensor(payload: dict, device: torch.device | str = "cpu") -> torch.Tensor:
    dtype = DTYPES.get(payload.get("__tensor__"))
    shape = payload.get("shape")
    if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ProtocolError("malformed tensor payload")
    raw = base64.b64decode(payload.get("data", ""), validate=True)
    numel = 1
    for dim in shape:
        numel *= dim
    if len(raw) != numel * torch.empty((), dtype=dtype).element_size():
        raise ProtocolError("tensor byte count does not match its shape")
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


def decode(value: Any, device: torch.device | str = "cpu") -> Any:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return decode_tensor(value, device)
        return {k: decode(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v, device) for v in value]
    return value


def send_message(sock: socket.socket, message: dict) -> None:
    body = json.dumps(message).encode()
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(body)} bytes is over the limit")
    sock.sendall(_HEADER.pack(len(body)) + body)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(min(size - len(chunks), 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks += chunk
    return bytes(chunks)


def recv_message(sock: socket.socket) -> dict:
    """Read one message; honours the socket's timeout (socket.timeout propagates)."""
    (size,) = _HEADER.unpack(_recv_exactly(sock, _HEADER.size))
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"announced message of {size} bytes is over the limit")
    try:
        message = json.loads(_recv_exactly(sock, size))
    except (ValueError, UnicodeDecodeError) as error:
        raise ProtocolError(f"message is not valid JSON: {error}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message
