"""Who made a run and which process owns it: ``made_by`` and ``owner`` in the history, and whether that owner lives."""

from __future__ import annotations

import getpass
import os
import socket
import time
from functools import cache

from ..settings import user_name


def current_user() -> str:
    """Who makes runs here: ``GROK_NB_USER``, else ``user@host``."""
    explicit = user_name()
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "someone"
    return f"{user}@{socket.gethostname()}"


def _start_ticks(pid: int) -> str | None:
    # Field 22 of /proc/PID/stat: start time in clock ticks since boot; with the pid it names one process for good.
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


_IMPORT_TIME = f"t{int(time.time() * 1000)}"


@cache
def _owner_for(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or _IMPORT_TIME}"


def process_owner() -> str:
    """This process, as ``host:pid:start``: never reused by another process, even with the same pid."""
    return _owner_for(os.getpid())


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process named by :func:`process_owner` still runs; None when it cannot be told (another host)."""
    if not owner:
        return None
    try:
        host, pid_text, start = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    if pid == os.getpid():
        return owner == process_owner()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by someone else
    ticks = _start_ticks(pid)
    if ticks is None or start.startswith("t"):
        return True  # no /proc to compare start times: the pid exists, trust it
    return ticks == start
