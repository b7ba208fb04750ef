"""The wire format between the grader and a sandbox: length-prefixed JSON, nothing else.

One framing layer for every channel of the kit (the grader's socket to each box and clean room,
the zygote's control socket): a frame is a 4-byte big-endian length and that many bytes.
`read_frame`/`write_frame` work on a socket or a plain file descriptor (a pipe) and
take an absolute deadline (a `time.monotonic()` value): the deadline holds for the whole frame,
however the other side dribbles its bytes, and a frame announced larger than the reader's cap is
refused before anything is allocated for it.

Tensors inside messages are encoded by tensors.py. A malformed message raises `ProtocolError`.
This module imports no torch, so a grader can start its zygote before it pays for torch itself.
"""
from __future__ import annotations

import json
import os
import select
import socket
import struct
import time

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # the ceiling for any frame; readers may ask for less
HEADER = struct.Struct("!I")
_CHUNK = 1 << 20

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
