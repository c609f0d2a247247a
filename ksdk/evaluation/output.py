"""What a candidate's processes print: a pipe that a thread of the judge's drains, keeping only the last KEEP_BYTES
and a count of the rest. No file grows with it, and the judge's memory holds a bounded amount."""

from __future__ import annotations

import os
import threading

KEEP_BYTES = 64 << 10


class OutputTail:
    """The read end of the candidate's stdout and stderr. Pass `write_fd` to the child, then call `started()`."""

    def __init__(self, keep: int = KEEP_BYTES):
        self.keep = keep
        self._read_fd, self.write_fd = os.pipe()
        self._buf = bytearray()
        self._lock = threading.Lock()
        self.dropped = 0  # bytes printed before the last `keep`
        self._thread = threading.Thread(target=self._drain, name="ksdk-candidate-output", daemon=True)
        self._thread.start()

    def started(self) -> None:
        """Close the judge's copy of the write end (the child has its own): end of file once the child's are gone."""
        if self.write_fd >= 0:
            os.close(self.write_fd)
            self.write_fd = -1

    def _drain(self) -> None:
        try:
            while True:
                try:
                    chunk = os.read(self._read_fd, 1 << 16)
                except InterruptedError:
                    continue
                if not chunk:
                    return
                with self._lock:
                    self._buf += chunk
                    extra = len(self._buf) - self.keep
                    if extra > 0:
                        del self._buf[:extra]
                        self.dropped += extra
        except OSError:
            return
        finally:
            os.close(self._read_fd)

    def tail(self, limit: int, wait_s: float = 0.0) -> str:
        """The last `limit` bytes printed, as text; first waits up to `wait_s` for the writers to be gone (so that
        the last words of a process that ended are in)."""
        if wait_s > 0:
            self._thread.join(wait_s)
        with self._lock:
            data = bytes(self._buf[-limit:]) if limit > 0 else b""
        return data.decode(errors="replace").strip()

    def close(self) -> None:
        """Drop the judge's write end if still held; the thread ends with the writers."""
        self.started()
