"""The SQLite history file: safe to open, migrate and write from many processes at once; repairable."""

from __future__ import annotations

import random
import shutil
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

#: How long a process waits for another that holds the file (a migration, a long write).
BUSY_TIMEOUT_S = 30.0
REPAIR_HINT = "grok-nb history --repair"


def _error(message: str) -> Exception:
    from .store import HistoryError

    return HistoryError(message)


def damaged(path: Path, exc: BaseException) -> Exception:
    """The error for a file that is not a readable SQLite history."""
    return _error(f"The history file {path} is damaged or is not a grok_nb history ({exc}). Close the notebooks "
                  f"that use it and run `{REPAIR_HINT}` (add --home if you set one): it keeps a copy of this file as "
                  f"{path.name}.damaged-<time>, starts a fresh history and carries over every run it can read. "
                  "Or point GROK_NB_HOME at another folder.")


def unreadable(path: Path, exc: BaseException) -> Exception:
    """The error for a file the process may not open."""
    return _error(f"The history file {path} cannot be opened ({exc}). Check that you may read and write it and "
                  f"its folder (ls -l {path.parent}), that the disk is not full, or point GROK_NB_HOME at "
                  "another folder.")


def _translate(path: Path, exc: sqlite3.Error) -> Exception | None:
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        if "unable to open" in text or "readonly" in text or "disk i/o" in text:
            return unreadable(path, exc)
        return None
    if type(exc) is sqlite3.DatabaseError:  # SQLITE_CORRUPT / SQLITE_NOTADB; IntegrityError etc. pass through
        return damaged(path, exc)
    return None


def _retry_busy(action: Any, deadline: float) -> Any:
    # Switching to WAL needs the file to itself for an instant, and SQLite does not always wait for it.
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))


class _Tx:
    """One transaction's view: named ``:param`` SQL, rows as dicts."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> None:
        self.conn.execute(sql, params)

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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise unreadable(self.path, exc) from exc
        self._local = threading.local()

    def _open(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise (_translate(self.path, exc) or unreadable(self.path, exc)) from exc
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")  # first: every later step may wait
            deadline = time.monotonic() + BUSY_TIMEOUT_S

            def wal() -> None:
                # Another process may be switching at this instant; once WAL, the mode sticks to the file.
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL").fetchone()

            _retry_busy(wal, deadline)
        except sqlite3.Error as exc:
            conn.close()
            raise (_translate(self.path, exc) or exc) from exc
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
        with self.transaction() as tx:
            return tx.conn.execute("PRAGMA user_version").fetchone()[0]

    def migrate(self, migrations: Sequence[str], variants: dict[int, str]) -> None:
        """Bring the file up to date; under BEGIN IMMEDIATE, so of many processes one migrates and each step runs once."""
        with self.transaction(write=True) as tx:
            version = tx.conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(migrations):
                raise _error(f"The history file {self.path} was written by a newer grok_nb (schema {version}, this "
                             f"one knows {len(migrations)}). Upgrade grok_nb: pip install -U grok_nb.")
            for number, script in enumerate(migrations[version:], start=version + 1):
                for statement in filter(str.strip, script.split(";")):
                    tx.conn.execute(statement)
                tx.conn.execute(f"PRAGMA user_version = {number}")

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


# -- repair ----------------------------------------------------------------------------------------
def check(path: Path) -> str | None:
    """None when the file is a healthy SQLite database, else what is wrong."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_S)
        try:
            result = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(exc)
    return None if result == ["ok"] else "; ".join(result[:3])


def _recovered_copy(damaged_file: Path, folder: Path) -> Path | None:
    # The sqlite3 shell's .recover reads every page it can, past broken ones; Python's sqlite3 has no equivalent.
    shell = shutil.which("sqlite3")
    if shell is None:
        return None
    out = folder / f"{damaged_file.name}.recovered"
    out.unlink(missing_ok=True)
    try:
        dump = subprocess.run([shell, str(damaged_file), ".recover"], capture_output=True, timeout=300)
        if not dump.stdout:
            return None
        subprocess.run([shell, str(out)], input=dump.stdout, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out.exists() else None


def _readable_rows(source: Path, table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` that can be read, skipping broken pages row by row."""
    try:
        conn = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
    except sqlite3.Error:
        return []
    rows: list[dict[str, Any]] = []
    try:
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]
        except sqlite3.Error:
            pass
        try:
            top = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
        except sqlite3.Error:
            top = 100_000
        for rowid in range(1, top + 1):
            try:
                row = conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error:
                continue
            if row is not None:
                rows.append(dict(row))
    finally:
        conn.close()
    return rows


def repair(path: str | Path) -> str:
    """Keep a copy of a damaged history, start a fresh one at ``path`` with every row that can be read; says what it did."""
    from .store import EXCHANGE_COLUMNS, RUN_COLUMNS, RunStore

    path = Path(path)
    if not path.exists():
        return f"No history at {path}: nothing to repair (a fresh one is made on first use)."
    problem = check(path)
    if problem is None:
        return f"The history {path} is healthy: nothing to repair."
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    path.rename(kept)
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(kept.with_name(kept.name + suffix))
    recovered = _recovered_copy(kept, path.parent)
    sources = [s for s in (recovered, kept) if s is not None]
    runs: dict[str, dict[str, Any]] = {}
    exchanges: list[dict[str, Any]] = []
    for source in sources:
        for row in _readable_rows(source, "runs"):
            if row.get("run_id") and row["run_id"] not in runs:
                runs[row["run_id"]] = row
        if not exchanges:
            exchanges = _readable_rows(source, "exchanges")
    store = RunStore(path)
    saved_runs = saved_exchanges = 0
    for row in runs.values():
        fields = {k: v for k, v in row.items() if k in RUN_COLUMNS}
        if not all(fields.get(k) for k in ("run_id", "backend", "kind", "status", "created_at")):
            continue
        try:
            store.insert(**fields)
            saved_runs += 1
        except (sqlite3.Error, KeyError):
            continue
    batch = [{k: v for k, v in row.items() if k in EXCHANGE_COLUMNS} for row in exchanges
             if row.get("method") and row.get("path") and row.get("at")]
    if batch:
        store.add_exchanges(batch)
        saved_exchanges = len(batch)
    store.close()
    if recovered is not None:
        recovered.unlink(missing_ok=True)
    return (f"The history {path} was damaged ({problem}). A copy is kept at {kept}. A fresh history was started "
            f"with {saved_runs} run(s) and {saved_exchanges} HTTP exchange(s) that could be read.")
