"""Which process owns a history row, and whether that process still lives (to tell a submit in flight from a lost one)."""

from __future__ import annotations

import getpass
import os
import socket
from functools import lru_cache


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), so a reused pid is not mistaken for it."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


@lru_cache(maxsize=1)
def _host() -> str:
    return socket.gethostname()


def this_process() -> str:
    """``host:pid:start``, written to the rows this process submits."""
    pid = os.getpid()
    return f"{_host()}:{pid}:{_start_time(pid) or ''}"


def who() -> str:
    """Who makes runs here: ``GROK_NB_USER``, else ``user@host``."""
    name = os.environ.get("GROK_NB_USER")
    if name:
        return name
    try:
        user = getpass.getuser()
    except Exception:  # no user name in containers without a passwd entry
        user = "unknown"
    return f"{user}@{_host()}"


def is_alive(owner: str | None) -> bool | None:
    """True or False for a process on this host; None when it cannot be told (another host, no owner)."""
    if not owner:
        return None
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != _host() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        pass
    now = _start_time(pid)
    return not (start and now and now != start)
