"""The fallback journal of request ids: where a paid job's id goes when the history cannot take it (a full disk).

One line per id (``run_id request_id``), appended into space reserved beforehand, so that
writing it needs no new disk blocks; synced before the call returns. The history takes the
ids in as soon as it can be written again (the next write, open or resume), then the lines are
blanked (the reserved space stays).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

try:
    import fcntl  # POSIX: one process at a time writes the journal
except ImportError:  # Windows: processes on one machine rarely write it at the same instant
    fcntl = None  # type: ignore[assignment]

#: Space kept ready for ids, in bytes (about 800 lines): a full disk still has room for them.
RESERVE = 64 * 1024


class IdJournal:
    """Request ids waiting to reach the history, in a small pre-sized file (a few bytes a line)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IdJournal({str(self.path)!r})"

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)

    def reserve(self) -> bool:
        """Make sure the reserved space exists (done while the disk has room); False if it could not be."""
        try:
            fd = self._open()
        except OSError:
            return False
        try:
            size = os.fstat(fd).st_size
            if size < RESERVE:
                os.pwrite(fd, bytes(RESERVE - size), size)  # zeros, written for real: posix_fallocate is not everywhere
                os.fsync(fd)
            return True
        except OSError:
            return False
        finally:
            os.close(fd)

    def append(self, run_id: str, request_id: str) -> None:
        """Add one id, synced to disk before returning; raises OSError only if even the reserve cannot take it."""
        line = f"{run_id} {request_id}\n".encode()
        if b"\0" in line or line.count(b" ") != 1 or line.count(b"\n") != 1:
            raise ValueError(f"request id {request_id!r} cannot be journaled (spaces or line breaks in it)")
        with self._lock:
            fd = self._open()
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                data = os.pread(fd, os.fstat(fd).st_size, 0)
                end = data.find(b"\0")
                os.pwrite(fd, line, len(data) if end < 0 else end)  # inside the reserve: no new blocks needed
                os.fsync(fd)
            finally:
                os.close(fd)  # closing releases the lock

    def entries(self) -> list[tuple[str, str]]:
        """The ids waiting, oldest first, as ``(run_id, request_id)``."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        text = data.split(b"\0", 1)[0].decode(errors="replace")
        out = []
        for line in text.splitlines():
            parts = line.split(" ")
            if len(parts) == 2 and all(parts):
                out.append((parts[0], parts[1]))
        return out

    def pending(self) -> bool:
        """True when ids wait to reach the history (a cheap look at the first byte)."""
        try:
            with open(self.path, "rb") as f:
                first = f.read(1)
        except OSError:
            return False
        return first not in (b"", b"\0")

    def forget(self, done: set[tuple[str, str]]) -> None:
        """Blank the lines now in the history (in place: the reserve stays); lines added meanwhile are kept."""
        with self._lock:
            try:
                fd = self._open()
            except OSError:
                return
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                size = os.fstat(fd).st_size
                data = os.pread(fd, size, 0)
                used = data.split(b"\0", 1)[0]
                keep = b"".join(line + b"\n" for line in used.splitlines()
                                if tuple(line.decode(errors="replace").split(" ")) not in done)
                os.pwrite(fd, keep + bytes(len(used) - len(keep)), 0)
                os.fsync(fd)
            except OSError:
                pass  # the lines stay; replaying them again is harmless
            finally:
                os.close(fd)
