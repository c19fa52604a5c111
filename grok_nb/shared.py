"""What several processes share: who is running (user, process identity), and safe names for server URLs."""

from __future__ import annotations

import getpass
import hashlib
import os
import socket
import time
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

from .errors import GrokError

ENV_USER = "GROK_NB_USER"
ENV_HISTORY_URL = "GROK_NB_HISTORY_URL"
ENV_SHARED_URL = "GROK_NB_SHARED_URL"


class SharedServiceError(GrokError):
    """A shared history or rate-limit server (PostgreSQL, Redis) or file could not be used; says what to check."""


def redact_url(url: str) -> str:
    """The URL with any password removed (``postgresql://ana:***@db/grok``), safe to show."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def key_fingerprint(api_key: str) -> str:
    """A short, one-way name for a key, so shared state never holds the key itself."""
    return hashlib.sha256(b"grok_nb/key/" + api_key.encode()).hexdigest()[:24]


def current_user() -> str:
    """Who makes runs here: ``GROK_NB_USER``, else ``user@host``."""
    explicit = os.environ.get(ENV_USER, "").strip()
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


@lru_cache(maxsize=None)
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
