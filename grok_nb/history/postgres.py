"""The history in PostgreSQL (``GROK_NB_HISTORY_URL``): the same tables and numbered migrations, for a team."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from ..settings import redact_url

#: One advisory lock id for every grok_nb migration, so of many processes one migrates at a time.
MIGRATION_LOCK = 7260142
_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=256)
def to_pyformat(sql: str) -> str:
    """``:name`` parameters (the history's SQL) as psycopg's ``%(name)s``."""
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%"))


def _error(message: str) -> Exception:
    from .store import HistoryError

    return HistoryError(message)


class _Tx:
    def __init__(self, conn: Any):
        self.conn = conn

    def execute(self, sql: str, params: Any = None) -> None:
        self.conn.execute(to_pyformat(sql), params or None)

    def fetchone(self, sql: str, params: Any = None) -> dict[str, Any] | None:
        return self.conn.execute(to_pyformat(sql), params or None).fetchone()

    def fetchall(self, sql: str, params: Any = None) -> list[dict[str, Any]]:
        return self.conn.execute(to_pyformat(sql), params or None).fetchall()

    def table(self, sql: str, params: Any = None) -> tuple[list[str], list[tuple]]:
        cur = self.conn.execute(to_pyformat(sql), params or None)
        columns = [d.name for d in cur.description]
        return columns, [tuple(r[c] for c in columns) for r in cur.fetchall()]


class PostgresEngine:
    """A history in a PostgreSQL database: one connection per thread, migrations under an advisory lock."""

    dialect = "postgresql"

    def __init__(self, url: str):
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise _error(f"GROK_NB_HISTORY_URL={redact_url(url)} needs psycopg: pip install 'grok_nb[team]'") from exc
        self.url = url
        self.location = redact_url(url)
        self._local = threading.local()

    def _conn(self) -> Any:
        import psycopg
        from psycopg.rows import dict_row

        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10)
            except psycopg.Error as exc:
                raise _error(
                    f"Cannot open the history at {self.location} ({type(exc).__name__}: "
                    f"{redact_url(str(exc)).strip()}). Check that the PostgreSQL server runs and accepts connections "
                    "from here, and the host, port, user, password and database name in GROK_NB_HISTORY_URL "
                    "(unset it to use the local SQLite history).") from exc
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[_Tx]:
        """A transaction (PostgreSQL needs no write lock up front)."""
        import psycopg

        conn = self._conn()
        try:
            with conn.transaction():
                yield _Tx(conn)
        except psycopg.OperationalError as exc:
            conn.close()  # a dropped connection: the next call opens a new one
            raise _error(f"The history at {self.location} stopped answering ({redact_url(str(exc)).strip()}). "
                         "Check the PostgreSQL server and the network, then try again.") from exc

    def schema_version(self) -> int:
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
                raise _error(f"The history at {self.location} was written by a newer grok_nb (schema {version}, "
                             f"this one knows {len(migrations)}). Upgrade grok_nb: pip install -U grok_nb.")
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in filter(str.strip, variants.get(number, script).split(";")):
                    tx.conn.execute(statement)
                tx.execute("INSERT INTO grok_nb_schema (version, applied_at) VALUES (:v, now()::text)", {"v": number})

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
