"""The one storage layer: where a store lives (a SQLite file, PostgreSQL, Redis), how to open it, what its errors mean.

The history (``store.py`` and its engines) and the key's shared request budget
(``runtime/ratelimit.py``) both open their stores here, so a URL is parsed, a connection is
opened and a failure is explained the same way everywhere: one error type, ``StorageError``,
that names the file or the URL without its password and says what to check.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ..errors import GrokError
from ..settings import redact_url

#: How long a process waits for another that holds a SQLite file (a migration, a long write).
BUSY_TIMEOUT_S = 30.0
#: How long opening a connection to a server may take before it counts as unreachable.
CONNECT_TIMEOUT_S = 5

SQLITE, POSTGRESQL, REDIS = "sqlite", "postgresql", "redis"
_SCHEMES = {"postgresql": POSTGRESQL, "postgres": POSTGRESQL, "redis": REDIS, "rediss": REDIS, "unix": REDIS}
#: What a URL of each kind must name correctly, for the hint of an unreachable server.
_PARTS = {POSTGRESQL: "host, port, user, password and database name", REDIS: "host, port, password and database number"}
_NAMES = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL", REDIS: "Redis"}
_EXAMPLES = {POSTGRESQL: "postgresql://user@host/db", REDIS: "redis://host:6379/0"}


class StorageError(GrokError):
    """A store (file or server) cannot be used: names where it is (no password) and what to check.

    ``location`` is that place, safe to show; ``request_id`` is set when a paid job's id could not
    be written (it is kept in memory, in this error and in the fallback journal).
    """

    def __init__(self, message: str, *, location: str | None = None, request_id: str | None = None):
        super().__init__(message)
        self.location = location
        self.request_id = request_id


class HistoryError(StorageError):
    """The history cannot be opened or used: names the file or URL (no password) and what to do."""


class SharedServiceError(StorageError):
    """The key's shared request budget (a file, Redis or PostgreSQL) cannot be used; says what to check."""


E = TypeVar("E", bound=StorageError)


@dataclass(frozen=True)
class Location:
    """Where a store lives: ``kind`` (sqlite, postgresql, redis) and ``target`` (a path, or the URL as given)."""

    kind: str
    target: str

    @property
    def shown(self) -> str:
        """The path, or the URL without its password: safe for messages and views."""
        return self.target if self.kind == SQLITE else redact_url(self.target)

    @property
    def path(self) -> Path:
        """The SQLite file."""
        return Path(self.target)


def parse_location(where: str | os.PathLike[str], *, setting: str, kinds: tuple[str, ...],
                   error: type[E], local: str) -> Location:
    """A path (a SQLite file) or a URL of one of ``kinds``; anything else raises ``error`` naming ``setting``.

    ``local`` says what leaving the setting unset does, for the message.
    """
    text = os.fspath(where).strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    kind = _SCHEMES.get(scheme)
    if kind is not None and kind in kinds:
        return Location(kind, text)
    if kind is not None or "://" in text:
        examples = " or ".join(_EXAMPLES[k] for k in kinds if k in _EXAMPLES)
        raise error(f"{setting}={redact_url(text)} is not understood: use {examples}, or leave it unset {local}.",
                    location=redact_url(text))
    return Location(SQLITE, text)


# -- SQLite ------------------------------------------------------------------------------------------
def is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's SQLITE_FULL and the OS's ENOSPC / EDQUOT."""
    if isinstance(exc, OSError):
        return exc.errno in (28, 122)
    return isinstance(exc, sqlite3.Error) and "disk is full" in str(exc).lower()


def sqlite_error(path: Path, exc: BaseException, *, what: str, error: type[E], damaged_hint: str) -> E | None:
    """``exc`` from a SQLite file as ``error`` saying what to check; None for errors that are the caller's own."""
    text = str(exc).lower()
    if is_disk_full(exc):
        return error(f"{what} {path} cannot be written: the disk is full ({exc}). Free some space on that disk "
                     "(df -h " f"{path.parent}), or point GROK_NB_HOME at another folder.", location=str(path))
    if isinstance(exc, OSError) or (isinstance(exc, sqlite3.OperationalError) and (
            "unable to open" in text or "readonly" in text or "disk i/o" in text)):
        return error(f"{what} {path} cannot be opened ({exc}). Check that you may read and write it and its "
                     f"folder (ls -l {path.parent}), that the disk is not full, or point GROK_NB_HOME at another "
                     "folder.", location=str(path))
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT / SQLITE_NOTADB; IntegrityError etc. pass through
        return error(f"{what} {path} is damaged or is not a grok_nb file ({exc}). {damaged_hint}",
                     location=str(path))
    return None


def retry_busy(action: Callable[[], Any], deadline: float) -> Any:
    """Run ``action``, trying again while another process holds the file (until ``deadline``, monotonic)."""
    # Switching to WAL needs the file to itself for an instant, and SQLite does not always wait for it.
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


def open_sqlite(path: Path, *, what: str, error: type[E], damaged_hint: str) -> sqlite3.Connection:
    """A connection to a SQLite file shared by many processes: busy timeout set before anything else, then WAL.

    Autocommit (transactions are explicit), rows as ``sqlite3.Row``, usable from any thread
    (the caller keeps one per thread). Failures are raised as ``error``.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        translated = sqlite_error(path, exc, what=what, error=error, damaged_hint=damaged_hint)
        raise (translated or error(f"{what} {path} cannot be opened ({exc}).", location=str(path))) from exc
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # first: every later step may wait

        def wal() -> None:
            # Another process may be switching at this instant; once WAL, the mode sticks to the file.
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL").fetchone()

        retry_busy(wal, time.monotonic() + BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        conn.close()
        raise (sqlite_error(path, exc, what=what, error=error, damaged_hint=damaged_hint) or exc) from exc
    return conn


# -- servers ------------------------------------------------------------------------------------------
def needs_team(location: Location, package: str, *, setting: str, error: type[E]) -> E:
    """The error for a server URL whose driver is not installed."""
    return error(f"{setting}={location.shown} needs {package}: pip install 'grok_nb[team]'", location=location.shown)


def unreachable(location: Location, exc: BaseException, *, purpose: str, setting: str, error: type[E],
                otherwise: str = "") -> E:
    """The error for a server that cannot be reached or stopped answering: where (no password) and what to check."""
    reason = redact_url(str(exc)).replace(location.target, location.shown).strip()
    return error(f"Cannot use {_NAMES[location.kind]} at {location.shown} for {purpose} ({type(exc).__name__}: "
                 f"{reason}). Check that the server runs and accepts connections from here, and the "
                 f"{_PARTS[location.kind]} in {setting}{otherwise}.", location=location.shown)


def connect_postgres(location: Location, *, purpose: str, setting: str, error: type[E], otherwise: str = "",
                     **options: Any) -> Any:
    """One psycopg connection (autocommit unless ``options`` say otherwise), or ``error`` saying what to check."""
    try:
        import psycopg  # optional heavy dependency: psycopg (grok_nb[team])
    except ImportError as exc:
        raise needs_team(location, "psycopg", setting=setting, error=error) from exc
    try:
        return psycopg.connect(location.target, **{"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S,
                                                   **options})
    except (psycopg.Error, OSError) as exc:
        raise unreachable(location, exc, purpose=purpose, setting=setting, error=error, otherwise=otherwise) from exc


def postgres_pool(location: Location, *, purpose: str, setting: str, error: type[E], max_size: int = 3) -> Any:
    """A small psycopg connection pool, proven to connect, or ``error`` saying what to check."""
    try:
        from psycopg_pool import ConnectionPool  # optional heavy dependency: psycopg-pool (grok_nb[team])
    except ImportError as exc:
        raise needs_team(location, "psycopg", setting=setting, error=error) from exc
    # Fails fast, with the server's own reason (a pool would only time out).
    connect_postgres(location, purpose=purpose, setting=setting, error=error).close()
    pool = None
    try:
        pool = ConnectionPool(location.target, min_size=1, max_size=max_size, open=True, timeout=10,
                              kwargs={"connect_timeout": CONNECT_TIMEOUT_S})  # each use is one transaction
        pool.wait(timeout=10)
    except Exception as exc:  # psycopg.Error, OSError, and psycopg_pool's PoolTimeout (not a psycopg.Error)
        if pool is not None:
            pool.close()
        raise unreachable(location, exc, purpose=purpose, setting=setting, error=error) from exc
    return pool


def connect_redis(location: Location, *, purpose: str, setting: str, error: type[E]) -> Any:
    """A Redis client that answered a PING, or ``error`` saying what to check."""
    try:
        import redis  # optional heavy dependency: redis (grok_nb[team])
    except ImportError as exc:
        raise needs_team(location, "the redis package", setting=setting, error=error) from exc
    try:
        conn = redis.Redis.from_url(location.target, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=10)
        conn.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        raise unreachable(location, exc, purpose=purpose, setting=setting, error=error) from exc
    return conn

