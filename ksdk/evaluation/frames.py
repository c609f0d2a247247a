"""Messages between the judge and a candidate's process: length-prefixed JSON frames over a Unix socket.

The judge reads frames the candidate's process wrote, so reading is hostile-input parsing: every frame is
bounded in size, nesting and time, and anything malformed raises FrameError (a `crash` verdict, never an
exception out of the evaluation). File descriptors travel only judge -> candidate (shared memory regions).
"""

from __future__ import annotations

import array
import json
import os
import select
import socket
import struct
import time
from typing import Optional

MAX_FRAME = 4 << 20  # bytes of JSON in one frame
MAX_DEPTH = 32  # nesting of JSON containers
MAX_FDS = 16
_HEADER = struct.Struct(">I")


class FrameError(Exception):
    """The peer sent something that is not a well-formed frame (too large, too deep, not JSON, not an object)."""


class PeerClosed(Exception):
    """The peer closed its end (or died)."""


def send(sock: socket.socket, msg: dict, fds: tuple[int, ...] = ()) -> None:
    """Write one frame (and pass `fds` with its first byte)."""
    body = json.dumps(msg, separators=(",", ":")).encode()
    data = _HEADER.pack(len(body)) + body
    if fds:
        socket.send_fds(sock, [data[:1]], list(fds))
        data = data[1:]
    sock.sendall(data)


def _depth_ok(body: bytes) -> bool:
    """True when no JSON container nests deeper than MAX_DEPTH (brackets inside strings are skipped)."""
    depth, in_str, esc = 0, False, False
    for b in body:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:  # backslash
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return False
        elif b in (0x5D, 0x7D):
            depth -= 1
    return True


class Reader:
    """Reads frames from one socket with deadlines; `accept_fds` only on the candidate's side."""

    def __init__(self, sock: socket.socket, accept_fds: bool = False):
        self.sock, self.accept_fds = sock, accept_fds
        self._buf = bytearray()
        self._fds: list[int] = []

    def _fill(self, need: int, deadline: Optional[float], spin_until: Optional[float] = None) -> None:
        while len(self._buf) < need:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                ready = spin_until is not None and _spin(self.sock, min(spin_until, deadline))
                if not ready:
                    ready = bool(select.select([self.sock], [], [], left)[0])
                if not ready:
                    continue
            if self.accept_fds:
                fds = array.array("i")
                data, anc, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(MAX_FDS * fds.itemsize))
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                        self._fds.extend(fds)
            else:
                data = self.sock.recv(1 << 20)
            if not data:
                raise PeerClosed
            self._buf += data

    def recv(self, deadline: Optional[float] = None, spin_until: Optional[float] = None) -> tuple[dict, list[int]]:
        """The next frame as a dict, and the fds that came with it. TimeoutError past `deadline` (monotonic). Until
        `spin_until` the socket is polled back to back instead of waited on (see `_spin`)."""
        self._fill(_HEADER.size, deadline, spin_until)
        (size,) = _HEADER.unpack(self._buf[:_HEADER.size])
        if size > MAX_FRAME:
            raise FrameError(f"a frame of {size} bytes (the limit is {MAX_FRAME})")
        self._fill(_HEADER.size + size, deadline)
        body = bytes(self._buf[_HEADER.size:_HEADER.size + size])
        del self._buf[:_HEADER.size + size]
        fds, self._fds = self._fds, []
        if not _depth_ok(body):
            _close(fds)
            raise FrameError(f"JSON nested deeper than {MAX_DEPTH} levels")
        try:
            msg = json.loads(body)
        except (ValueError, RecursionError, UnicodeDecodeError) as e:
            _close(fds)
            raise FrameError(f"not JSON ({type(e).__name__}: {str(e)[:120]})") from None
        if not isinstance(msg, dict):
            _close(fds)
            raise FrameError(f"a JSON {type(msg).__name__} where an object was expected")
        return msg, fds


def _spin(sock: socket.socket, until: float) -> bool:
    """Poll `sock` for input back to back (yielding the CPU) until `until` (monotonic); True once it has some. A
    timed request's reply is waited for this way: a thread blocked in select() lets its CPU go idle, and waking an
    idle CPU (a virtual machine's above all) adds a latency that grows with how long it slept, which a short round
    trip (the clock's floor) does not have and a longer batch does."""
    while True:
        if select.select([sock], [], [], 0)[0]:
            return True
        if time.monotonic() >= until:
            return False
        os.sched_yield()


def _close(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
