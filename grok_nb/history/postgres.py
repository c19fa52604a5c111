"""The history in PostgreSQL (``GROK_NB_HISTORY_URL``): the same tables and numbered migrations, for a team."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from ..settings import ENV_HISTORY_URL
from .storage import HistoryError, Location, connect_postgres, needs_team, unreachable


def _psycopg() -> Any:
    """psycopg, or None when it is not installed (the history then stays in SQLite; a PostgreSQL URL says what to
    install). Imported on first use, not with grok_nb: it takes longer to import than the rest of the client."""
    try:
        import psycopg  # optional heavy dependency: psycopg (grok_nb[team])
    except ImportError:
        return None
    return psycopg


#: One advisory lock id for every grok_nb migration, so of many processes one migrates at a time.
MIGRATION_LOCK = 7260142
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_PURPOSE = "the history"
_OTHERWISE = " (unset it to use the local SQLite history)"


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """``:name`` parameters (the history's SQL) as psycopg's ``%(name)s``."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


class _Tx:
    """One transaction's view: named ``:param`` SQL, rows as dicts."""

    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, params: Any = None) -> int:
        """Run one statement; the number of rows it changed."""
        return int(self.conn.execute(to_pyformat(sql), params or None).rowcount)

    def fetchone(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        row: dict[str, Any] | None = self.conn.execute(to_pyformat(sql), params or None).fetchone()
        return row

    def fetchall(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.conn.execute(to_pyformat(sql), params or None).fetchall()
        return rows

    def table(self, sql: str, params: Any = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        cur = self.conn.execute(to_pyformat(sql), params or None)
        columns = [d.name for d in cur.description]
        return columns, [tuple(r[c] for c in columns) for r in cur.fetchall()]


class PostgresEngine:
    """A history in a PostgreSQL database: one connection per thread, migrations under an advisory lock."""

    dialect = "postgresql"

    def __init__(self, location: Location):
        self._where = location
        self._psycopg = _psycopg()
        if self._psycopg is None:
            raise needs_team(location, "psycopg", setting=ENV_HISTORY_URL, error=HistoryError)
        self.url = location.target
        self.location = location.shown
        self._local = threading.local()

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            from psycopg.rows import dict_row  # optional heavy dependency: psycopg (grok_nb[team])

            conn = connect_postgres(self._where, purpose=_PURPOSE, setting=ENV_HISTORY_URL, error=HistoryError,
                                    otherwise=_OTHERWISE, row_factory=dict_row, connect_timeout=10)
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[_Tx]:
        """A transaction (PostgreSQL needs no write lock up front)."""
        conn = self._conn()
        try:
            with conn.transaction():
                yield _Tx(conn)
        except self._psycopg.OperationalError as exc:
            conn.close()  # a dropped connection: the next call opens a new one
            raise unreachable(self._where, exc, purpose=_PURPOSE, setting=ENV_HISTORY_URL, error=HistoryError,
                              otherwise=_OTHERWISE) from exc

    def schema_version(self) -> int:
        """The number of migrations applied."""
        with self.transaction() as tx:
            row = tx.fetchone("SELECT max(version) AS v FROM grok_nb_schema")
        return int(row["v"] or 0) if row else 0

    def migrate(self, migrations: Sequence[str], variants: dict[int, str]) -> None:
        """Bring the database up to date; the advisory lock makes each step run once, whoever opens it first."""
        with self.transaction(write=True) as tx:
            tx.execute(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            tx.execute("CREATE TABLE IF NOT EXISTS grok_nb_schema (version INTEGER PRIMARY KEY, applied_at TEXT)")
            row = tx.fetchone("SELECT max(version) AS v FROM grok_nb_schema")
            version = int(row["v"] or 0) if row else 0
            if version > len(migrations):
                raise HistoryError(f"The history at {self.location} was written by a newer grok_nb (schema {version}, "
                                   f"this one knows {len(migrations)}). Upgrade grok_nb: pip install -U grok_nb.",
                                   location=self.location)
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in filter(str.strip, variants.get(number, script).split(";")):
                    tx.conn.execute(statement)
                tx.execute("INSERT INTO grok_nb_schema (version, applied_at) VALUES (:v, now()::text)", {"v": number})

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

