"""The request rate of a key: every submit and poll waits here for its slot.

Two kinds, one interface (``await acquire()``, ``pause(seconds)``, ``peers()``, ``waiting_for_others``):

* ``RateLimiter``: one process on its own (pure spacing, no I/O).
* ``SharedLimiter``: every process that uses the same key draws from one budget kept by
  pyrate-limiter in a SQLite file under ``GROK_NB_HOME`` (no set-up), or in Redis or
  PostgreSQL (``GROK_NB_SHARED_URL``) for a class or a team on several machines.

pyrate-limiter counts the requests. It has no shared "hold everything until T" (a 429's
Retry-After) and no list of who else is waiting, so those two small pieces live here, in
the same place as the budget (a table in the same SQLite file, two Redis keys, two tables).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import os
import re
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from .. import settings
from ..history.storage import (
    POSTGRESQL,
    REDIS,
    Location,
    SharedServiceError,
    connect_redis,
    open_sqlite,
    parse_location,
    postgres_pool,
    unreachable,
)
from ..settings import ENV_SHARED_URL, key_fingerprint

_PURPOSE = "the shared rate limit"
#: What to do about a damaged or unusable budget file: it holds only the last few seconds of requests.
_FILE_HINT = "Delete that file (it only holds the last few seconds of requests) or point GROK_NB_HOME elsewhere."

#: A process that has not asked for a slot for this long is no longer counted as sharing the key.
PEER_TTL_S = 30.0
#: How often a waiting process refreshes its entry in the list of peers.
HEARTBEAT_S = 2.0
#: How often entries older than the rate's window are cleared from the shared budget.
LEAK_EVERY_S = 10.0


class Limiter(Protocol):
    """A key's request budget, as the scheduler and the request path use it (this process's, or shared)."""

    rate: float
    jobs: int  # how many jobs this process has going (shown to other processes on the key)

    async def acquire(self) -> None:
        """Wait for one request slot."""

    def pause(self, seconds: float, everyone: bool = True) -> None:
        """Hold every request on the key back ``seconds`` from now (a 429 with Retry-After); with ``everyone``
        False, this process's requests only."""

    def lift(self) -> None:
        """End a pause early (a later answer was good)."""

    def status(self) -> dict[str, Any]:
        """Where the budget lives, who shares it, and a message when others keep this process waiting."""

    def close(self) -> None:
        """Release what the budget holds."""


class RateLimiter:
    """Spaces requests at least ``1/rate`` seconds apart, first come first served (one process)."""

    waiting_for_others = False
    jobs = 0  # nobody else sees it

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be positive requests per second, not {rate!r}")
        self.rate = rate
        self.interval = 1.0 / rate
        self._clock = clock
        self._next = 0.0
        self._paused_until = 0.0

    def reserve(self, now: float | None = None) -> float:
        """Claim the next free slot; returns how long to wait for it (pure, no sleeping)."""
        now = self._clock() if now is None else now
        slot = max(now, self._next, self._paused_until)
        self._next = slot + self.interval
        return slot - now

    def pause(self, seconds: float, everyone: bool = True, now: float | None = None) -> None:
        """Hold every request back ``seconds`` from now (after a 429; this process is everyone here)."""
        now = self._clock() if now is None else now
        self._paused_until = max(self._paused_until, now + seconds)

    def lift(self) -> None:
        """End a pause early (a later answer was good)."""
        self._paused_until = 0.0

    async def acquire(self) -> None:
        """Wait for this request's slot."""
        while (hold := self._paused_until - self._clock()) > 0:
            await asyncio.sleep(min(hold, 0.25))  # in steps: a later good answer may lift the pause
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)

    def peers(self) -> list[dict[str, Any]]:
        """Other processes on this key: none known to a process-local limiter."""
        return []

    def status(self) -> dict[str, Any]:
        """Where the budget lives and who shares it."""
        me = {"pid": os.getpid(), "host": socket.gethostname(), "jobs": 0, "waiting": 0}
        return {"backend": "process", "where": "this process", "rate": self.rate, "peers": [], "me": me, "waiting": 0,
                "paused_s": 0.0, "waiting_for_others": False, "message": ""}

    def close(self) -> None:
        """Nothing to release."""


# -- where the shared state lives --------------------------------------------------------------------
class _State(Protocol):
    def paused_until(self) -> float: ...
    def pause_until(self, until: float) -> None: ...
    def beat(self, peer_id: str, info: dict[str, Any], now: float) -> None: ...
    def peers(self, now: float) -> list[dict[str, Any]]: ...
    def leave(self, peer_id: str) -> None: ...
    def close(self) -> None: ...


class _SQLiteState:
    """Pause and peers in the limiter's own SQLite file (one connection per thread)."""

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()
        conn = self._conn()
        conn.execute("CREATE TABLE IF NOT EXISTS grok_pause (id INTEGER PRIMARY KEY CHECK (id = 1), until REAL)")
        conn.execute("CREATE TABLE IF NOT EXISTS grok_peers (peer_id TEXT PRIMARY KEY, info TEXT, last_seen REAL)")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = open_budget_file(self.path)
        return conn

    def paused_until(self) -> float:
        row = self._conn().execute("SELECT until FROM grok_pause WHERE id = 1").fetchone()
        return float(row[0]) if row else 0.0

    def pause_until(self, until: float) -> None:
        self._conn().execute("INSERT INTO grok_pause (id, until) VALUES (1, ?) "
                             "ON CONFLICT(id) DO UPDATE SET until = max(until, excluded.until)", (until,))

    def beat(self, peer_id: str, info: dict[str, Any], now: float) -> None:
        self._conn().execute("INSERT OR REPLACE INTO grok_peers (peer_id, info, last_seen) VALUES (?, ?, ?)",
                             (peer_id, json.dumps(info), now))

    def peers(self, now: float) -> list[dict[str, Any]]:
        conn = self._conn()
        conn.execute("DELETE FROM grok_peers WHERE last_seen < ?", (now - PEER_TTL_S,))
        return [{**json.loads(info), "peer_id": pid, "last_seen": seen}
                for pid, info, seen in conn.execute("SELECT peer_id, info, last_seen FROM grok_peers")]

    def leave(self, peer_id: str) -> None:
        self._conn().execute("DELETE FROM grok_peers WHERE peer_id = ?", (peer_id,))

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


class _RedisState:
    """Pause and peers as two Redis keys next to pyrate-limiter's bucket."""

    _PAUSE = "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') " \
             "if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2]) end return 1"

    def __init__(self, redis: Any, prefix: str):
        self.redis = redis
        self.pause_key, self.peers_key = f"{prefix}:pause", f"{prefix}:peers"
        self._pause = redis.register_script(self._PAUSE)

    def paused_until(self) -> float:
        value = self.redis.get(self.pause_key)
        return float(value) if value else 0.0

    def pause_until(self, until: float) -> None:
        self._pause(keys=[self.pause_key], args=[repr(until), int(until * 1000) + 1])

    def beat(self, peer_id: str, info: dict[str, Any], now: float) -> None:
        self.redis.hset(self.peers_key, peer_id, json.dumps({**info, "last_seen": now}))
        self.redis.expire(self.peers_key, int(PEER_TTL_S * 4))

    def peers(self, now: float) -> list[dict[str, Any]]:
        out = []
        for peer_id, raw in self.redis.hgetall(self.peers_key).items():
            info = json.loads(raw)
            if info.get("last_seen", 0) < now - PEER_TTL_S:
                self.redis.hdel(self.peers_key, peer_id)
                continue
            out.append({**info, "peer_id": peer_id.decode() if isinstance(peer_id, bytes) else peer_id})
        return out

    def leave(self, peer_id: str) -> None:
        self.redis.hdel(self.peers_key, peer_id)

    def close(self) -> None:
        self.redis.close()


class _PostgresState:
    """Pause and peers in two small PostgreSQL tables (created once, under an advisory lock)."""

    def __init__(self, pool: Any, key: str):
        self.pool, self.key = pool, key
        with pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(7260143)")
            conn.execute("CREATE TABLE IF NOT EXISTS grok_nb_limiter_pause "
                         "(key TEXT PRIMARY KEY, until DOUBLE PRECISION NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS grok_nb_limiter_peers (key TEXT NOT NULL, peer_id TEXT NOT NULL, "
                         "info TEXT NOT NULL, last_seen DOUBLE PRECISION NOT NULL, PRIMARY KEY (key, peer_id))")

    def paused_until(self) -> float:
        with self.pool.connection() as conn:
            row = conn.execute("SELECT until FROM grok_nb_limiter_pause WHERE key = %s", (self.key,)).fetchone()
        return float(row[0]) if row else 0.0

    def pause_until(self, until: float) -> None:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO grok_nb_limiter_pause (key, until) VALUES (%s, %s) ON CONFLICT (key) "
                         "DO UPDATE SET until = GREATEST(grok_nb_limiter_pause.until, EXCLUDED.until)",
                         (self.key, until))

    def beat(self, peer_id: str, info: dict[str, Any], now: float) -> None:
        with self.pool.connection() as conn:
            conn.execute("INSERT INTO grok_nb_limiter_peers (key, peer_id, info, last_seen) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (key, peer_id) DO UPDATE SET info = EXCLUDED.info, "
                         "last_seen = EXCLUDED.last_seen",
                         (self.key, peer_id, json.dumps(info), now))

    def peers(self, now: float) -> list[dict[str, Any]]:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM grok_nb_limiter_peers WHERE key = %s AND last_seen < %s",
                         (self.key, now - PEER_TTL_S))
            rows = conn.execute("SELECT peer_id, info, last_seen FROM grok_nb_limiter_peers WHERE key = %s",
                                (self.key,)).fetchall()
        return [{**json.loads(info), "peer_id": pid, "last_seen": seen} for pid, info, seen in rows]

    def leave(self, peer_id: str) -> None:
        with self.pool.connection() as conn:
            conn.execute("DELETE FROM grok_nb_limiter_peers WHERE key = %s AND peer_id = %s", (self.key, peer_id))

    def close(self) -> None:
        pass  # the pool is closed with the bucket


# -- the shared limiter --------------------------------------------------------------------------------
def pyrate_rate(rate: float) -> Any:
    """pyrate-limiter's Rate for ``rate`` requests per second: one per interval, rounded so it is never faster."""
    # optional heavy dependency: pyrate_limiter (0.2 s to import), loaded only when a key's budget is shared
    from pyrate_limiter import Rate

    return Rate(1, max(1, math.ceil(1000.0 / rate)))


class SharedLimiter:
    """One request budget for every process using a key: ``await acquire()`` never blocks the event loop.

    Waiting happens in one worker thread per limiter (pyrate-limiter and the state stores are
    synchronous), so this process's requests are served first come first served and the loop
    stays free. ``pause()`` holds back every process on the key until the pause ends.
    """

    def __init__(self, bucket: Any, state: _State, *, name: str, rate: float, backend: str, where: str,
                 on_close: Callable[[], None] | None = None):
        self.rate = rate
        self._interval = 1.0 / rate
        self.backend = backend
        self.where = where
        #: How many jobs this process has going (the engine sets it; shown to other processes).
        self.jobs = 0
        self._bucket = bucket
        self._last_leak = 0.0
        self._state = state
        self._name = name
        self._on_close = on_close
        self._peer_id = uuid.uuid4().hex[:12]
        self._info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        self._waiting = 0
        self._count_lock = threading.Lock()
        self._local_pause = 0.0
        self._shared_pause = 0.0  # as last read from the store by the waiting thread
        self._last_beat = 0.0
        self._peers_cache: tuple[float, list[dict[str, Any]]] = (0.0, [])
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="grok_nb-limiter")
        self._side = ThreadPoolExecutor(1, thread_name_prefix="grok_nb-limiter-state")
        self._closed = False

    def __repr__(self) -> str:
        return f"<SharedLimiter {self.backend} {self.where} rate={self.rate:g}/s>"

    # -- waiting for a slot --------------------------------------------------------------------------
    async def acquire(self) -> None:
        """Wait for one request slot shared with every process on this key."""
        if self._closed:
            raise RuntimeError("this limiter is closed")
        cancel = threading.Event()
        with self._count_lock:
            self._waiting += 1
        try:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._acquire_blocking, cancel)
        except BaseException:
            cancel.set()  # a cancelled wait lets the worker thread go at once
            raise
        finally:
            with self._count_lock:
                self._waiting -= 1

    def _acquire_blocking(self, cancel: threading.Event) -> None:
        # optional heavy dependency: pyrate_limiter, already loaded by the bucket this limiter holds
        from pyrate_limiter import RateItem

        while not cancel.is_set():
            now = time.time()
            if now - self._last_beat >= HEARTBEAT_S:
                self._beat(now)
            self._shared_pause = self._state.paused_until()
            hold = max(self._local_pause, self._shared_pause) - now
            if hold > 0:
                cancel.wait(min(hold, 1.0))
                continue
            # Each try stamps the request with the clock read now (pyrate-limiter's own blocking
            # retry advances the old stamp by the time it meant to sleep, which lets processes bunch).
            # pyrate-limiter's Limiter is bypassed: its non-blocking path hands filelock a bool timeout.
            item = RateItem(self._name, self._bucket.now())
            if self._bucket.put(item):
                if now - self._last_leak >= LEAK_EVERY_S:
                    self._last_leak = now
                    self._bucket.leak(self._bucket.now())
                return
            cancel.wait(self._retry_in(item))

    def _retry_in(self, item: Any) -> float:
        try:
            wait_ms = self._bucket.waiting(item)
        except Exception:  # a store hiccup: try again soon rather than fail the request
            wait_ms = 0
        wait_s = (wait_ms if isinstance(wait_ms, (int, float)) and wait_ms > 0 else 0) / 1000.0
        return min(max(wait_s + 0.001, self._interval / 8), self._interval, 0.5)

    def pause(self, seconds: float, everyone: bool = True) -> None:
        """Hold back every process on this key ``seconds`` from now (after a 429 with Retry-After); with
        ``everyone`` False, this process alone (a good answer lifts it)."""
        if seconds <= 0:
            return
        until = time.time() + seconds
        self._local_pause = max(self._local_pause, until)  # this process at once; the others via the store
        if everyone and not self._closed:
            self._side.submit(self._state.pause_until, until)

    def lift(self) -> None:
        """End this process's pause early (a later answer was good); a pause other processes stored stays."""
        self._local_pause = 0.0

    # -- who else is on the key ----------------------------------------------------------------------
    def _beat(self, now: float) -> None:
        # While requests wait, the worker thread keeps the list of peers fresh, so views read it without I/O.
        self._last_beat = now
        self._state.beat(self._peer_id, {**self._info, "waiting": self._waiting, "jobs": self.jobs}, now)
        self._refresh_peers(now)

    def _refresh_peers(self, now: float) -> list[dict[str, Any]]:
        try:
            peers = [p for p in self._state.peers(now) if p.get("peer_id") != self._peer_id]
        except Exception:  # a failing store: views keep the last list; the scheduler hears of it on acquire()
            return self._peers_cache[1]
        self._peers_cache = (now, peers)
        return peers

    def peers(self, refresh: bool = False) -> list[dict[str, Any]]:
        """Other live processes on this key: pid, host, jobs, waiting (requests queued), last_seen (epoch s).

        Answered from memory while this process is busy (refreshed every couple of seconds by the
        thread that waits for slots); asks the store only when that is stale or ``refresh`` is set.
        """
        now = time.time()
        at, cached = self._peers_cache
        if not refresh and now - at < HEARTBEAT_S * 1.5:
            return cached
        return self._refresh_peers(now)

    @property
    def waiting(self) -> int:
        """Requests of this process waiting for a slot now."""
        return self._waiting

    @property
    def waiting_for_others(self) -> bool:
        """True when this process waits for slots and other live processes share the key."""
        return self._waiting > 0 and bool(self.peers())

    def status(self) -> dict[str, Any]:
        """Where the budget lives, who shares it, and a one-line message for a card."""
        peers = self.peers()
        paused = max(0.0, max(self._local_pause, self._shared_pause) - time.time())  # from memory, as peers
        others = len(peers)
        message = ""
        if self._waiting and others:
            message = f"waiting for the key's rate limit: {others} other process{'es' if others != 1 else ''}"
        elif paused:
            message = f"the key's rate limit is paused for {paused:.1f} s (the server answered 429)"
        return {"backend": self.backend, "where": self.where, "rate": self.rate, "peers": peers,
                "me": {**self._info, "jobs": self.jobs, "waiting": self._waiting}, "waiting": self._waiting,
                "paused_s": paused, "waiting_for_others": bool(self._waiting and others),
                "message": message}

    def close(self) -> None:
        """Leave the list of peers and release files and connections."""
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._side.shutdown(wait=True)
        try:
            self._state.leave(self._peer_id)
        except Exception:  # leaving is courtesy: the entry ages out anyway
            pass
        try:
            self._state.close()
            self._bucket.close()
        except OSError:
            # pyrate-limiter takes its file lock just to close; a lock file that cannot be taken (another user's,
            # a folder gone read-only) must not stop a client closing: close the connection without it.
            conn = getattr(self._bucket, "conn", None)
            if conn is not None:
                conn.close()
        finally:
            if self._on_close:
                self._on_close()


# -- choosing where the budget lives ------------------------------------------------------------------
def open_budget_file(path: Path) -> sqlite3.Connection:
    """A connection to the key's budget file (the storage layer's SQLite opening, errors named the same way)."""
    conn = open_sqlite(path, what="The shared rate limit file", error=SharedServiceError, damaged_hint=_FILE_HINT)
    conn.row_factory = None  # pyrate-limiter unpacks plain tuples
    conn.execute("PRAGMA synchronous = NORMAL")  # seconds of data: no fsync per request
    return conn


def _sqlite_limiter(fingerprint: str, rate: float, home: Path) -> SharedLimiter:
    # optional heavy dependencies: pyrate_limiter (0.2 s to import) and its filelock, loaded only for a shared budget
    from filelock import FileLock
    from pyrate_limiter import SQLiteBucket
    from pyrate_limiter.buckets.sqlite_bucket import Queries

    path = home / "ratelimit" / f"{fingerprint}.sqlite"
    lock = FileLock(str(path) + ".lock")  # the lock pyrate-limiter takes around each request: one process at a time
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with lock:  # one process creates the tables
            conn = open_budget_file(path)
            conn.execute(Queries.CREATE_BUCKET_TABLE.format(table="requests"))
            conn.execute(Queries.CREATE_INDEX_ON_TIMESTAMP.format(index_name="idx_requests_rate_item_timestamp",
                                                                  table_name="requests"))
            bucket = SQLiteBucket([pyrate_rate(rate)], conn, table="requests", lock=lock)
            state = _SQLiteState(path)
    except SharedServiceError:
        raise
    except (OSError, sqlite3.Error) as exc:
        raise SharedServiceError(
            f"The shared rate limit file {path} cannot be used ({exc}). Check that GROK_NB_HOME "
            f"({home}) is writable, or delete that file: it only holds the last few seconds of requests.",
            location=str(path)) from exc
    return SharedLimiter(bucket, state, name=fingerprint, rate=rate, backend="sqlite", where=str(path))


def _redis_limiter(fingerprint: str, rate: float, location: Location) -> SharedLimiter:
    # optional heavy dependencies: redis and pyrate_limiter, loaded only for a Redis budget
    import redis
    from pyrate_limiter import RedisBucket

    prefix = f"grok_nb:ratelimit:{fingerprint}"
    conn = connect_redis(location, purpose=_PURPOSE, setting=ENV_SHARED_URL, error=SharedServiceError)
    try:
        bucket = RedisBucket.init([pyrate_rate(rate)], conn, prefix)
        state = _RedisState(conn, prefix)
    except (redis.RedisError, OSError, ValueError) as exc:
        raise unreachable(location, exc, purpose=_PURPOSE, setting=ENV_SHARED_URL, error=SharedServiceError) from exc
    return SharedLimiter(bucket, state, name=fingerprint, rate=rate, backend="redis", where=location.shown)


def _postgres_limiter(fingerprint: str, rate: float, location: Location) -> SharedLimiter:
    # optional heavy dependency: pyrate_limiter, loaded only for a PostgreSQL budget
    from pyrate_limiter import PostgresBucket

    pool = postgres_pool(location, purpose=_PURPOSE, setting=ENV_SHARED_URL, error=SharedServiceError)
    try:
        bucket = PostgresBucket(pool, f"grok_nb_{fingerprint}", [pyrate_rate(rate)])
        state = _PostgresState(pool, fingerprint)
    except Exception as exc:  # psycopg.Error, OSError, PoolTimeout
        pool.close()
        raise unreachable(location, exc, purpose=_PURPOSE, setting=ENV_SHARED_URL, error=SharedServiceError) from exc
    return SharedLimiter(bucket, state, name=fingerprint, rate=rate, backend="postgresql", where=location.shown,
                         on_close=pool.close)


def bucket_name(api_key: str, bucket: str | None = None) -> str:
    """The name a key's shared budget is kept under (a file, Redis keys, a table): never the key itself.

    ``bucket`` names another budget of the same key (a judge model's: xAI limits each model on its own).
    """
    fingerprint = key_fingerprint(api_key)
    if bucket is None:
        return fingerprint
    # Letters, digits and underscores only (a file name, a Redis key and a PostgreSQL table name alike), with a hash
    # of the exact name so that two names that read alike once cleaned stay two budgets.
    cleaned = re.sub(r"[^a-z0-9]+", "_", bucket.lower()).strip("_")[:20]
    return f"{fingerprint}_{cleaned}_{hashlib.sha256(bucket.encode()).hexdigest()[:8]}"


def make_limiter(api_key: str | None, rate: float, home: Path, shared_url: str | None = None, *,
                 bucket: str | None = None) -> Limiter:
    """The limiter for a key: shared by every process on it (SQLite under ``home``, or ``shared_url``).

    ``shared_url`` (default ``GROK_NB_SHARED_URL``) is ``redis://…`` or ``postgresql://…``;
    ``"local"`` keeps the budget in this process. Without a key there is nothing to share
    (each process has its own embedded simulator), so the limiter is per process. ``bucket`` names a budget of
    the key apart from the video models' one (a judge model's: ``bucket="grok-4.3"``), shared the same way.
    """
    if rate <= 0:
        raise ValueError(f"rate must be positive requests per second, not {rate!r}")
    where = (shared_url.strip() or None) if shared_url is not None else settings.shared_url()
    if not api_key or where == "local":
        return RateLimiter(rate)
    fingerprint = bucket_name(api_key, bucket)
    if where is None:
        return _sqlite_limiter(fingerprint, rate, Path(home))
    location = parse_location(where, setting=ENV_SHARED_URL, kinds=(REDIS, POSTGRESQL), error=SharedServiceError,
                              local="for one machine")
    if location.kind == REDIS:
        return _redis_limiter(fingerprint, rate, location)
    if location.kind == POSTGRESQL:
        return _postgres_limiter(fingerprint, rate, location)
    raise SharedServiceError(f"{ENV_SHARED_URL}={where} is not understood: use redis://host:6379/0 or "
                             "postgresql://user@host/db (or leave it unset for one machine).", location=where)

