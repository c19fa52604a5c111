"""The SQLite history file: safe to open, migrate and write from many processes at once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .storage import HistoryError, open_sqlite, sqlite_error

REPAIR_HINT = "grok-nb history --repair"


def _fold(text: object) -> str | None:
    return text.casefold() if isinstance(text, str) else None


def damaged_hint(path: Path) -> str:
    """What to do about a damaged history file."""
    return (f"Close the notebooks that use it and run `{REPAIR_HINT}` (add --home if you set one): it keeps a copy of "
            f"this file as {path.name}.damaged-<time>, starts a fresh history and carries over every run it can "
            "read. Or point GROK_NB_HOME at another folder.")


def _translate(path: Path, exc: BaseException) -> HistoryError | None:
    return sqlite_error(path, exc, what="The history file", error=HistoryError, damaged_hint=damaged_hint(path))


class _Tx:
    """One transaction's view: named ``:param`` SQL, rows as dicts."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self.conn.execute(sql, params).rowcount

    def fetchone(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else dict(row)

    def fetchall(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params)]

    def table(self, sql: str, params: Any = ()) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self.conn.cursor()
        cur.row_factory = None  # plain tuples from C: no Python call per row
        cur.execute(sql, params)
        return [d[0] for d in cur.description], cur.fetchall()


class SQLiteEngine:
    """A history in one SQLite file (WAL): one connection per thread, busy timeout set before anything else."""

    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = Path(path)
        self.location = str(self.path)
        self._local = threading.local()

    def _open(self) -> sqlite3.Connection:
        conn = open_sqlite(self.path, what="The history file", error=HistoryError,
                           damaged_hint=damaged_hint(self.path))
        # Text filters match any case of any letter (SQLite's own LIKE folds ASCII letters only).
        conn.create_function("grok_fold", 1, _fold, deterministic=True)
        return conn

    def _conn(self) -> sqlite3.Connection:
        # One connection per thread: a connection's transactions must not interleave across threads.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._open()
        return conn

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[_Tx]:
        """A transaction; ``write`` takes the write lock at once (no upgrade deadlocks between processes)."""
        conn = self._conn()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise (_translate(self.path, exc) or exc) from exc
        try:
            yield _Tx(conn)
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                translated = _translate(self.path, exc)
                if translated is not None:
                    raise translated from exc
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise (_translate(self.path, exc) or exc) from exc

    def schema_version(self) -> int:
        """The number of migrations applied."""
        with self.transaction() as tx:
            return int(tx.conn.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self, migrations: Sequence[str], variants: dict[int, str]) -> None:
        """Bring the file up to date under BEGIN IMMEDIATE: of many processes one migrates, each step runs once."""
        with self.transaction(write=True) as tx:
            version = tx.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(migrations):
                raise HistoryError(f"The history file {self.path} was written by a newer grok_nb (schema {version}, "
                                   f"this one knows {len(migrations)}). Upgrade grok_nb: pip install -U grok_nb.",
                                   location=self.location)
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    tx.conn.execute(statement)
                tx.conn.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
