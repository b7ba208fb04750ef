"""Tensors on the wire: raw bytes with a declared dtype and shape, rebuilt with
`torch.frombuffer`, so the grader never unpickles anything a student's process produced. A
shape is checked against an element cap before any memory is allocated; a malformed payload
raises `protocol.ProtocolError`.
"""
from __future__ import annotations

import base64
from typing import Any

import torch

from autograder.sandbox.shared.protocol import ProtocolError

MAX_TENSOR_ELEMENTS = 4 * 1024 * 1024  # per decoded tensor, unless the caller asks for less
MAX_TENSOR_DIMS = 16

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
