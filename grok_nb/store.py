"""The run history: one SQLite file (WAL), numbered schema migrations, safe for several processes."""

from __future__ import annotations

import json
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

# Each entry moves the schema one version up; never edit a released one, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: runs
    """
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        request_id TEXT UNIQUE,
        backend TEXT NOT NULL,
        base_url TEXT,
        kind TEXT NOT NULL,
        model TEXT,
        prompt TEXT,
        duration REAL,
        resolution TEXT,
        aspect_ratio TEXT,
        image TEXT,
        reference_images TEXT,
        generate_audio INTEGER,
        input_video TEXT,
        parent_run_id TEXT,
        status TEXT NOT NULL,
        progress INTEGER,
        error_code TEXT,
        error_message TEXT,
        created_at TEXT NOT NULL,
        submitted_at TEXT,
        finished_at TEXT,
        latency_s REAL,
        poll_count INTEGER NOT NULL DEFAULT 0,
        cost_estimated_usd REAL,
        cost_actual_usd REAL,
        video_url TEXT,
        video_duration REAL,
        local_path TEXT,
        tags TEXT
    );
    CREATE INDEX runs_created ON runs(created_at);
    """,
    # 2: the HTTP exchanges of each run, for teaching and debugging (never headers or keys)
    """
    CREATE TABLE exchanges (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT,
        at TEXT NOT NULL,
        method TEXT NOT NULL,
        path TEXT NOT NULL,
        status INTEGER,
        elapsed_ms REAL,
        summary TEXT
    );
    CREATE INDEX exchanges_run ON exchanges(run_id);
    """,
    # 3: what people thought of a run (the history browser writes these); edits find inputs by URL
    """
    ALTER TABLE runs ADD COLUMN rating INTEGER;
    ALTER TABLE runs ADD COLUMN note TEXT;
    CREATE INDEX runs_video_url ON runs(video_url)
    """,
    # 4: the run a person picked as the best of its row in a comparison grid (1, else NULL)
    """
    ALTER TABLE runs ADD COLUMN winner INTEGER
    """,
)

RUN_COLUMNS = (
    "run_id", "request_id", "backend", "base_url", "kind", "model", "prompt", "duration", "resolution",
    "aspect_ratio", "image", "reference_images", "generate_audio", "input_video", "parent_run_id",
    "status", "progress", "error_code", "error_message", "created_at", "submitted_at", "finished_at",
    "latency_s", "poll_count", "cost_estimated_usd", "cost_actual_usd", "video_url", "video_duration",
    "local_path", "tags", "rating", "note", "winner",
)
_JSON_COLUMNS = ("reference_images", "tags")
_TIME_COLUMNS = ("created_at", "submitted_at", "finished_at")
_FLOAT_COLUMNS = ("duration", "latency_s", "cost_estimated_usd", "cost_actual_usd", "video_duration")


def utcnow() -> str:
    """Now, UTC, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def filter_runs(df: Any, *, status: Any = None, kind: Any = None, text: str | None = None,
                tags: Any = None, since: Any = None) -> Any:
    """Rows of a history DataFrame that match: status/kind/tags (a value or a list), text in the prompt, since a time."""
    import pandas as pd

    def as_list(value: Any) -> list:
        return [value] if isinstance(value, str) else list(value)

    if status is not None:
        df = df[df["status"].isin(as_list(status))]
    if kind is not None:
        df = df[df["kind"].isin(as_list(kind))]
    if text:
        df = df[df["prompt"].fillna("").str.contains(text, case=False, regex=False)]
    for tag in as_list(tags or []):
        df = df[df["tags"].map(lambda ts, tag=tag: tag in ts)]
    if since is not None:
        when = pd.Timestamp(since)
        df = df[df["created_at"] >= (when.tz_localize(timezone.utc) if when.tzinfo is None else when)]
    return df


class RunStore:
    """Reads and writes the history; every call opens its own short transaction."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One connection per thread: sqlite3 connections must not cross threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _migrate(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("BEGIN IMMEDIATE")  # two processes opening a new file migrate once
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        finally:
            conn.close()

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to the file."""
        with self._connect() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    @staticmethod
    def _encode(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - set(RUN_COLUMNS)
        if unknown:
            raise KeyError(f"not history columns: {sorted(unknown)}")
        out = dict(fields)
        for col in _JSON_COLUMNS:
            if col in out and out[col] is not None and not isinstance(out[col], str):
                out[col] = json.dumps(list(out[col]))
        if "generate_audio" in out and out["generate_audio"] is not None:
            out["generate_audio"] = int(bool(out["generate_audio"]))
        return out

    def insert(self, **fields: Any) -> None:
        """Add a run (``run_id``, ``backend``, ``kind``, ``status`` at least)."""
        fields.setdefault("created_at", utcnow())
        row = self._encode(fields)
        cols = ", ".join(row)
        marks = ", ".join(f":{c}" for c in row)
        with self._connect() as conn:
            conn.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", row)

    def update(self, run_id: str, /, **fields: Any) -> None:
        """Change some columns of one run."""
        if not fields:
            return
        row = self._encode(fields)
        sets = ", ".join(f"{c} = :{c}" for c in row)
        with self._connect() as conn:
            conn.execute(f"UPDATE runs SET {sets} WHERE run_id = :_run_id", {**row, "_run_id": run_id})

    def _decode(self, row: sqlite3.Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out = dict(row)
        for col in _JSON_COLUMNS:
            if out.get(col):
                out[col] = json.loads(out[col])
        return out

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run by run id, as a dict."""
        with self._connect() as conn:
            return self._decode(conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone())

    def find(self, request_id: str) -> dict[str, Any] | None:
        """One run by the API's request id."""
        with self._connect() as conn:
            return self._decode(
                conn.execute("SELECT * FROM runs WHERE request_id = ?", (request_id,)).fetchone())

    def find_by_url(self, video_url: str) -> dict[str, Any] | None:
        """The newest run whose result is at ``video_url``."""
        with self._connect() as conn:
            return self._decode(conn.execute(
                "SELECT * FROM runs WHERE video_url = ? ORDER BY created_at DESC LIMIT 1", (video_url,)).fetchone())

    def rows(self) -> list[dict[str, Any]]:
        """Every run, oldest first."""
        with self._connect() as conn:
            return [self._decode(r) for r in conn.execute("SELECT * FROM runs ORDER BY created_at")]  # type: ignore[misc]

    def add_exchange(self, run_id: str | None, method: str, path: str, status: int | None,
                     elapsed_ms: float, summary: str = "") -> None:
        """Log one HTTP exchange of a run (no headers, no bodies with data)."""
        with self._connect() as conn:
            conn.execute("INSERT INTO exchanges (run_id, at, method, path, status, elapsed_ms, summary) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)", (run_id, utcnow(), method, path, status, elapsed_ms, summary))

    def exchanges(self, run_id: str) -> list[dict[str, Any]]:
        """The HTTP exchanges of one run, in order."""
        with self._connect() as conn:
            return [dict(r) for r in conn.execute(
                "SELECT at, method, path, status, elapsed_ms, summary FROM exchanges WHERE run_id = ? ORDER BY id",
                (run_id,))]

    def dataframe(self) -> "Any":
        """The history as a pandas DataFrame with proper dtypes (UTC datetimes, floats)."""
        import pandas as pd

        with self._connect() as conn:
            df = pd.read_sql_query("SELECT * FROM runs ORDER BY created_at", conn)
        for col in _TIME_COLUMNS:
            df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
        for col in _FLOAT_COLUMNS:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        df["progress"] = pd.to_numeric(df["progress"], errors="coerce").astype("Int64")
        df["rating"] = pd.to_numeric(df["rating"], errors="coerce").astype("Int64")
        df["winner"] = pd.to_numeric(df["winner"], errors="coerce").eq(1)
        df["poll_count"] = df["poll_count"].astype("int64")
        df["generate_audio"] = df["generate_audio"].map({1: True, 0: False}).astype("boolean")
        for col in _JSON_COLUMNS:
            df[col] = df[col].map(lambda v: json.loads(v) if isinstance(v, str) and v else [])
        return df
