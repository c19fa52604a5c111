"""The run history: numbered schema migrations, one API, two engines.

SQLite (``GROK_NB_HOME/history.sqlite``, WAL) is the default: many processes open, migrate and
write it at once. ``GROK_NB_HISTORY_URL=postgresql://…`` keeps the same tables in PostgreSQL so
a team sees each other's runs. SQL is written once with ``:name`` parameters; the engines
(``sqlite.py``, ``postgres.py``) connect, lock migrations and translate parameters; the tables are in ``schema.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import Any

from ..jobs.lifecycle import Status
from ..settings import history_url, home_dir, redact_url
from .engines import engine_for
from .journal import IdJournal
from .owners import current_user, owner_alive, process_owner
from .schema import (
    EXCHANGE_COLUMNS,
    FLOAT_COLUMNS,
    JSON_COLUMNS,
    MIGRATIONS,
    POSTGRES_VARIANTS,
    RUN_COLUMNS,
    TIME_COLUMNS,
    utcnow,
)
from .storage import HistoryError, StorageError

log = logging.getLogger("grok_nb")

#: How long an owner's hold on an unfinished job lasts without a write (each poll's write renews it); longer than
#: the longest gap between two polls of a job, so a live owner never loses it. A dead owner on this machine loses it
#: at once (its process is gone); one on another machine when it runs out.
LEASE_S = 10 * 60.0

__all__ = ["EXCHANGE_COLUMNS", "MIGRATIONS", "POSTGRES_VARIANTS", "RUN_COLUMNS", "SORT_SQL", "HistoryError", "RunStore",
           "filter_runs", "history_location", "open_store", "run_filters", "runs_frame", "utcnow"]


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _since_utc(since: Any) -> Any:
    import pandas as pd  # optional heavy dependency: pandas (loaded only when runs are read as a DataFrame)

    when = pd.Timestamp(since)
    return when.tz_localize(timezone.utc) if when.tzinfo is None else when.tz_convert(timezone.utc)


def filter_runs(df: Any, *, status: Any = None, kind: Any = None, text: str | None = None,
                tags: Any = None, since: Any = None) -> Any:
    """Rows of a history DataFrame matching status/kind/tags (a value or a list), text in the prompt, a start time."""
    if status is not None:
        df = df[df["status"].isin(_as_list(status))]
    if kind is not None:
        df = df[df["kind"].isin(_as_list(kind))]
    if text:
        df = df[df["prompt"].fillna("").str.contains(text, case=False, regex=False)]
    for tag in _as_list(tags or []):
        df = df[df["tags"].map(lambda ts, tag=tag: tag in ts).astype(bool)]  # bool even when empty
    if since is not None:
        df = df[df["created_at"] >= _since_utc(since)]
    return df


def run_filters(*, status: Any = None, kind: Any = None, tags: Any = None, since: Any = None,
                made_by: Any = None) -> tuple[str, dict[str, Any]]:
    """A WHERE clause (SQLite and PostgreSQL alike, on indexed columns) and its parameters for these filters.

    Tags are matched on the stored JSON text, a superset that ``filter_runs`` makes exact.
    """
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column, value in (("status", status), ("kind", kind), ("made_by", made_by)):
        if value is None:
            continue
        wanted = _as_list(value)
        names = [f"{column}{i}" for i in range(len(wanted))]
        params.update(zip(names, wanted, strict=True))
        clauses.append(f"{column} IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
    for i, tag in enumerate(_as_list(tags or [])):
        text = json.dumps(str(tag)).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params[f"tag{i}"] = f"%{text}%"
        clauses.append(f"tags LIKE :tag{i} ESCAPE '\\'")
    if since is not None:
        params["since"] = _since_utc(since).isoformat(timespec="microseconds")
        clauses.append("created_at >= :since")
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _json_lists(values: Any) -> Any:
    """JSON list texts as lists, each distinct text decoded once (rows with the same text share one list)."""
    import pandas as pd  # optional heavy dependency: pandas (loaded only when runs are read as a DataFrame)

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    decoded = pd.Series([json.loads(u) if u else [] for u in uniques] + [[]], dtype=object)  # last: NULL, no tags
    return decoded.take(codes).set_axis(values.index)  # code -1 (NULL) picks the last


def runs_frame(columns: list[str], records: list[tuple[Any, ...]]) -> Any:
    """Rows of the runs table as a DataFrame with proper dtypes (UTC datetimes, floats), every step vectorized."""
    import pandas as pd  # optional heavy dependency: pandas (loaded only when runs are read as a DataFrame)

    df = pd.DataFrame.from_records(records, columns=columns, coerce_float=True)
    for col in TIME_COLUMNS:
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601")
    for col in FLOAT_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    for col in ("progress", "rating"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    df["poll_count"] = pd.to_numeric(df["poll_count"]).astype("int64")
    df["winner"] = pd.to_numeric(df["winner"], errors="coerce").eq(1)
    df["generate_audio"] = df["generate_audio"].map({1: True, 0: False}).astype("boolean")
    for col in JSON_COLUMNS:
        df[col] = _json_lists(df[col])
    return df


class RunStore:
    """Reads and writes the history; every call is its own short transaction.

    ``RunStore(path)`` is a SQLite file; ``RunStore("postgresql://…")`` a PostgreSQL database.
    """

    def __init__(self, path: str | os.PathLike[str], *, journal: str | os.PathLike[str] | None = None):
        # journal: where request ids wait when the history cannot take them (default: beside the SQLite file,
        # or in GROK_NB_HOME for a server).
        self._db = engine_for(path)
        #: The SQLite file, or None for a server.
        self.path: Path | None = getattr(self._db, "path", None)
        #: Where the history is, safe to show: the file, or the URL without its password.
        self.location: str = self._db.location
        self._db.migrate(MIGRATIONS, POSTGRES_VARIANTS)
        if journal is None:
            name = hashlib.sha256(self.location.encode()).hexdigest()[:12]
            journal = (self.path.with_name(self.path.name + ".ids") if self.path is not None
                       else home_dir() / f"history-{name}.ids")
        #: Request ids that could not be written yet (a full disk); they go in at the next write, open or resume.
        self.journal = IdJournal(Path(journal))
        self.journal.reserve()  # while there is room: the reserve is what a full disk still lets us write
        self._journaled = self.journal.pending()
        if self._journaled:
            self.replay_journal()

    def __repr__(self) -> str:
        return f"RunStore({self.location!r})"

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return str(self._db.dialect)

    @property
    def schema_version(self) -> int:
        """The number of migrations applied."""
        return int(self._db.schema_version())

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        self._db.close()

    # -- rows in, one transaction per call ---------------------------------------------------------
    @staticmethod
    def _encode(fields: dict[str, Any]) -> dict[str, Any]:
        unknown = set(fields) - set(RUN_COLUMNS)
        if unknown:
            raise KeyError(f"not history columns: {sorted(unknown)}")
        out = dict(fields)
        for col in JSON_COLUMNS:
            if col in out and out[col] is not None and not isinstance(out[col], str):
                out[col] = json.dumps(list(out[col]))
        if "generate_audio" in out and out["generate_audio"] is not None:
            out["generate_audio"] = int(bool(out["generate_audio"]))
        return out

    def _insert(self, tx: Any, fields: dict[str, Any]) -> None:
        if "owner" not in fields:  # made here: this process holds it
            fields = {"owner": process_owner(), "lease_until": time.time() + LEASE_S, **fields}
        fields = {"created_at": utcnow(), "made_by": current_user(), **fields}
        row = self._encode(fields)
        tx.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)

    def _update(self, tx: Any, run_id: str, fields: dict[str, Any]) -> None:
        if fields:
            row = self._encode(fields)
            sets = ", ".join(f"{c} = :{c}" for c in row)
            if "lease_until" not in row:  # a write by the job's owner (each poll's) renews its lease
                sets += ", lease_until = CASE WHEN owner = :_me THEN :_until ELSE lease_until END"
            tx.execute(f"UPDATE runs SET {sets} WHERE run_id = :_run_id",
                       {**row, "_run_id": run_id, "_me": process_owner(), "_until": time.time() + LEASE_S})

    def claim(self, row: dict[str, Any], me: str | None = None) -> bool:
        """Become the one process that waits on this job; False if another holds it (a live owner, a lease).

        Compare-and-set on the owner seen in ``row``: of two processes resuming at once, one wins.
        The seen owner's lease counts unless that process is known to be gone.
        """
        me = me or process_owner()
        seen = row.get("owner") or ""
        dead = seen != me and owner_alive(seen) is False
        with self._db.transaction(write=True) as tx:
            changed = tx.execute(
                "UPDATE runs SET owner = :me, lease_until = :until WHERE run_id = :run_id AND (owner = :me OR "
                "(COALESCE(owner, '') = :seen AND (:dead = 1 OR lease_until IS NULL OR lease_until < :now)))",
                {"me": me, "until": time.time() + LEASE_S, "run_id": row["run_id"], "seen": seen,
                 "dead": int(dead), "now": time.time()})
        return bool(changed)

    @staticmethod
    def _add_exchange(tx: Any, run_id: str | None, method: str, path: str, status: int | None,
                      elapsed_ms: float, summary: str = "", at: str | None = None) -> None:
        tx.execute("INSERT INTO exchanges (run_id, at, method, path, status, elapsed_ms, summary) "
                   "VALUES (:run_id, :at, :method, :path, :status, :elapsed_ms, :summary)",
                   {"run_id": run_id, "at": at or utcnow(), "method": method, "path": path, "status": status,
                    "elapsed_ms": elapsed_ms, "summary": summary})

    @contextmanager
    def _writing(self, ids: list[tuple[str, str]]) -> Iterator[Any]:
        """A write transaction; if the store fails while it carries request ids, they go to the journal first."""
        try:
            with self._db.transaction(write=True) as tx:
                yield tx
        except Exception as exc:
            if ids and _store_failed(exc):
                raise self.keep(ids, exc) from exc
            raise
        if self._journaled:  # the history takes writes again: bring in what waited
            self.replay_journal()

    def keep(self, ids: list[tuple[str, str]], exc: BaseException) -> HistoryError:
        """Journal ``(run_id, request_id)`` pairs the history could not take; the error says where and what to do."""
        kept = []
        for run_id, request_id in ids:
            try:
                self.journal.append(run_id, request_id)
                kept.append(request_id)
            except (OSError, ValueError) as journal_exc:
                log.error("grok_nb: request id %s (run %s) could not be journaled either (%s)",
                          request_id, run_id, journal_exc)
        self._journaled = self._journaled or bool(kept)
        first = ids[0][1]
        where = (f"It is kept in {self.journal.path} and goes into the history as soon as it can be written "
                 "(the next write, open or resume)" if kept else
                 "It could not be journaled either: note it now")
        return HistoryError(f"The request id {first} could not be written to the history at {self.location} "
                            f"({exc}). {where}. The job goes on at the server: client.get({first!r}) re-attaches it.",
                            location=self.location, request_id=first)

    def record_request_id(self, run_id: str, request_id: str) -> None:
        """Make a submit's request id durable now (its own committed transaction), before the next POST leaves.

        If the history cannot take it (a full disk, a dropped server), the id goes to the journal and a
        ``HistoryError`` carrying ``.request_id`` is raised.
        """
        with self._writing([(run_id, request_id)]) as tx:
            tx.execute("UPDATE runs SET request_id = :rid, status = :pending WHERE run_id = :run_id",
                       {"rid": request_id, "pending": Status.PENDING.value, "run_id": run_id})

    def replay_journal(self) -> int:
        """Write the journal's request ids into the history (rows still without one); how many went in."""
        entries = self.journal.entries()
        if not entries:
            self._journaled = False
            return 0
        done: set[tuple[str, str]] = set()
        try:
            with self._db.transaction(write=True) as tx:
                for run_id, request_id in entries:
                    owner = tx.fetchone("SELECT run_id FROM runs WHERE request_id = :rid", {"rid": request_id})
                    if owner is not None:  # already there (written after all, or replayed by another process)
                        done.add((run_id, request_id))
                        continue
                    row = tx.fetchone("SELECT status FROM runs WHERE run_id = :run_id", {"run_id": run_id})
                    if row is None:  # the row itself was lost (a history started afresh): the paid id is not
                        self._insert(tx, {"run_id": run_id, "request_id": request_id, "backend": "unknown",
                                          "kind": "unknown", "status": Status.PENDING.value})
                    else:
                        tx.execute("UPDATE runs SET request_id = :rid, status = :pending, error_code = NULL, "
                                   "error_message = NULL WHERE run_id = :run_id AND request_id IS NULL",
                                   {"rid": request_id, "pending": Status.PENDING.value, "run_id": run_id})
                    done.add((run_id, request_id))
        except Exception as exc:
            if _store_failed(exc):
                return 0  # still no room: the ids stay in the journal
            raise
        self.journal.forget(done)
        self._journaled = self.journal.pending()
        log.info("grok_nb: %d request id(s) from %s are in the history now", len(done), self.journal.path)
        return len(done)

    def insert(self, **fields: Any) -> None:
        """Add a run (``run_id``, ``backend``, ``kind``, ``status`` at least); ``made_by``/``owner`` default to here."""
        with self._writing(_ids_in([("insert", fields)])) as tx:
            self._insert(tx, fields)

    def update(self, run_id: str, /, **fields: Any) -> None:
        """Change some columns of one run."""
        if fields:
            with self._writing(_ids_in([("update", {**fields, "run_id": run_id})])) as tx:
                self._update(tx, run_id, fields)

    def add_exchange(self, run_id: str | None, method: str, path: str, status: int | None,
                     elapsed_ms: float, summary: str = "", at: str | None = None) -> None:
        """Log one HTTP exchange of a run (no headers, no bodies with data); ``at`` defaults to now."""
        with self._db.transaction(write=True) as tx:
            self._add_exchange(tx, run_id, method, path, status, elapsed_ms, summary, at)

    def add_exchanges(self, rows: Iterable[dict[str, Any]]) -> None:
        """Log many exchanges in one transaction (dicts with add_exchange's arguments)."""
        with self._db.transaction(write=True) as tx:
            for row in rows:
                self._add_exchange(tx, **row)

    def apply(self, batch: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Run a batch of writes in one transaction, in order: all of them or none.

        Each item is ``(op, kwargs)``: ``("insert", {...fields})``, ``("update", {"run_id": id, ...fields})``
        or ``("add_exchange", {"run_id", "method", "path", "status", "elapsed_ms", "summary", "at"})``.
        Meant for a writer thread that drains what the event loop queued.
        """
        ops = list(batch)
        for op, _ in ops:
            if op not in ("insert", "update", "add_exchange"):
                raise ValueError(f"unknown history write {op!r}: use insert, update or add_exchange")
        if not ops:
            return
        with self._writing(_ids_in(ops)) as tx:
            for op, args in ops:
                if op == "insert":
                    self._insert(tx, dict(args))
                elif op == "update":
                    fields = dict(args)
                    self._update(tx, fields.pop("run_id"), fields)
                else:
                    self._add_exchange(tx, **args)

    # -- rows out ----------------------------------------------------------------------------------
    @staticmethod
    def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is None:
            return None
        out = dict(row)
        for col in JSON_COLUMNS:
            if out.get(col):
                out[col] = json.loads(out[col])
        return out

    def _one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        with self._db.transaction() as tx:
            return self._decode(tx.fetchone(sql, params))

    def get(self, run_id: str) -> dict[str, Any] | None:
        """One run by run id, as a dict."""
        return self._one("SELECT * FROM runs WHERE run_id = :run_id", {"run_id": run_id})

    def find(self, request_id: str) -> dict[str, Any] | None:
        """One run by the API's request id."""
        return self._one("SELECT * FROM runs WHERE request_id = :rid", {"rid": request_id})

    def find_by_url(self, video_url: str) -> dict[str, Any] | None:
        """The newest run whose result is at ``video_url``."""
        return self._one("SELECT * FROM runs WHERE video_url = :url ORDER BY created_at DESC LIMIT 1",
                         {"url": video_url})

    def rows(self, *, status: str | Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Every run (or those with a status in ``status``), oldest first; journaled request ids go in first."""
        if self.journal.pending():
            self.replay_journal()
        where, params = "", {}
        if status is not None:
            wanted = [status] if isinstance(status, str) else list(status)
            params = {f"s{i}": s for i, s in enumerate(wanted)}
            where = f" WHERE status IN ({', '.join(':' + k for k in params)})" if wanted else " WHERE 1 = 0"
        with self._db.transaction() as tx:
            return [self._decode(r) for r in tx.fetchall(f"SELECT * FROM runs{where} ORDER BY created_at", params)]  # type: ignore[misc]

    # -- uploads -----------------------------------------------------------------------------------
    def remember_file(self, *, file_id: str, base_url: str, sha256: str, size: int, filename: str | None,
                      expires_at: str | None) -> None:
        """Record an upload (its id, content hash, size and expiry) for the server at ``base_url``."""
        with self._db.transaction(write=True) as tx:
            tx.execute("DELETE FROM files WHERE file_id = :file_id AND base_url = :base_url",
                       {"file_id": file_id, "base_url": base_url})
            tx.execute("INSERT INTO files (file_id, base_url, sha256, bytes, filename, created_at, expires_at) "
                       "VALUES (:file_id, :base_url, :sha256, :bytes, :filename, :created_at, :expires_at)",
                       {"file_id": file_id, "base_url": base_url, "sha256": sha256, "bytes": size,
                        "filename": filename, "created_at": utcnow(), "expires_at": expires_at})

    def find_files(self, sha256: str, base_url: str) -> list[dict[str, Any]]:
        """Uploads of these bytes to this server, newest first (expired ones included: the caller checks)."""
        with self._db.transaction() as tx:
            rows: list[dict[str, Any]] = tx.fetchall(
                "SELECT * FROM files WHERE sha256 = :sha256 AND base_url = :base_url ORDER BY created_at DESC",
                {"sha256": sha256, "base_url": base_url})
        return rows

    def forget_file(self, file_id: str, base_url: str) -> None:
        """Drop an upload the server no longer knows."""
        with self._db.transaction(write=True) as tx:
            tx.execute("DELETE FROM files WHERE file_id = :file_id AND base_url = :base_url",
                       {"file_id": file_id, "base_url": base_url})

    def exchanges(self, run_id: str) -> list[dict[str, Any]]:
        """The HTTP exchanges of one run, in order."""
        with self._db.transaction() as tx:
            rows: list[dict[str, Any]] = tx.fetchall(
                "SELECT at, method, path, status, elapsed_ms, summary FROM exchanges "
                "WHERE run_id = :run_id ORDER BY id",
                {"run_id": run_id})
        return rows

    def dataframe(self, *, status: Any = None, kind: Any = None, text: str | None = None, tags: Any = None,
                  since: Any = None, made_by: Any = None) -> Any:
        """The history (or the runs that pass the filters) as a pandas DataFrame with proper dtypes, oldest first.

        ``status``, ``kind``, ``made_by`` (a value or a list), ``tags`` (all of them) and ``since`` are
        applied in SQL, on indexes; ``text`` (in the prompt, any case) on the rows that come back.
        """
        where, params = run_filters(status=status, kind=kind, tags=tags, since=since, made_by=made_by)
        with self._db.transaction() as tx:
            # No ORDER BY: SQLite would walk the created_at index and fetch each row by its rowid, about three
            # times slower than reading the table in order; the rows come (nearly) in creation order anyway and
            # pandas puts any stragglers in place with one vectorized sort.
            columns, records = tx.table(f"SELECT * FROM runs{where}", params)
        df = runs_frame(columns, records)
        if not df["created_at"].is_monotonic_increasing:
            df = df.sort_values("created_at", kind="stable", na_position="first").reset_index(drop=True)
        if text or tags:
            df = filter_runs(df, text=text, tags=tags).reset_index(drop=True)
        return df

    def count(self, **filters: Any) -> int:
        """How many runs pass the filters of ``run_filters`` (and ``text``), counted in SQL."""
        where, params = self._where(filters)
        with self._db.transaction() as tx:
            row = tx.fetchone(f"SELECT COUNT(*) AS n FROM runs{where}", params)
        return int(row["n"]) if row else 0

    def page(self, *, sort: str = "newest", offset: int = 0, limit: int = 100, **filters: Any) -> Any:
        """One page of the runs that pass the filters, sorted in SQL (a SORT_SQL key): what a browser shows."""
        where, params = self._where(filters)
        order = SORT_SQL.get(sort, SORT_SQL["newest"])
        params.update(_limit=max(0, int(limit)), _offset=max(0, int(offset)))
        with self._db.transaction() as tx:
            columns, records = tx.table(f"SELECT * FROM runs{where} ORDER BY {order} LIMIT :_limit OFFSET :_offset",
                                        params)
        return runs_frame(columns, records)

    def facets(self) -> dict[str, Any]:
        """The values the filters can take (statuses, kinds, tags) and how many people made runs, from SQL."""
        with self._db.transaction() as tx:
            statuses = [r["v"] for r in tx.fetchall("SELECT DISTINCT status AS v FROM runs WHERE status IS NOT NULL")]
            kinds = [r["v"] for r in tx.fetchall("SELECT DISTINCT kind AS v FROM runs WHERE kind IS NOT NULL")]
            tag_texts = [r["v"] for r in tx.fetchall("SELECT DISTINCT tags AS v FROM runs WHERE tags IS NOT NULL")]
            makers = tx.fetchone("SELECT COUNT(DISTINCT made_by) AS n FROM runs")
        tags = {t for text in tag_texts if text for t in json.loads(text)}
        return {"status": sorted(statuses), "kind": sorted(kinds), "tags": sorted(tags),
                "makers": int(makers["n"]) if makers else 0}

    def _where(self, filters: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        filters = dict(filters)
        text = filters.pop("text", None)
        where, params = run_filters(**filters)
        if text:
            # Any case: LIKE is case-blind in SQLite (ASCII letters), ILIKE in PostgreSQL.
            like = "ILIKE" if self.dialect == "postgresql" else "LIKE"
            params["_text"] = "%" + str(text).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where += (" AND " if where else " WHERE ") + f"prompt {like} :_text ESCAPE '\\'"
        return where, params


#: The browser's sort choices as SQL (unknown values last, then oldest first), the same in SQLite and PostgreSQL.
SORT_SQL: dict[str, str] = {
    "newest": "created_at DESC", "oldest": "created_at ASC",
    "cost": "(COALESCE(cost_actual_usd, cost_estimated_usd) IS NULL), COALESCE(cost_actual_usd, cost_estimated_usd) "
            "DESC, created_at ASC",
    "latency": "(latency_s IS NULL), latency_s DESC, created_at ASC",
    "rating": "(rating IS NULL), rating DESC, created_at ASC",
    "duration": "(video_duration IS NULL), video_duration DESC, created_at ASC",
}


def _store_failed(exc: BaseException) -> bool:
    """True when the store itself failed (full, damaged, unreachable), not the caller's row (a duplicate, a typo)."""
    return isinstance(exc, (StorageError, OSError)) or (
        isinstance(exc, sqlite3.Error) and not isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)))


def _ids_in(ops: Iterable[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    """The (run_id, request_id) pairs a batch of writes carries."""
    return [(str(args["run_id"]), str(args["request_id"])) for op, args in ops
            if op in ("insert", "update") and args.get("request_id") and args.get("run_id")]


def history_location(home: str | os.PathLike[str] | None = None, url: str | None = None) -> str | Path:
    """Where the history is: ``url``, else ``GROK_NB_HISTORY_URL``, else ``home/history.sqlite``."""
    return url or history_url() or home_dir(home) / "history.sqlite"


def open_store(home: str | os.PathLike[str] | None = None, url: str | None = None) -> RunStore:
    """The history to use: ``GROK_NB_HISTORY_URL`` (PostgreSQL) when set, else the SQLite file in the home."""
    where = history_location(home, url)
    if isinstance(where, Path):
        return RunStore(where)
    name = hashlib.sha256(redact_url(where).encode()).hexdigest()[:12]
    return RunStore(where, journal=home_dir(home) / f"history-{name}.ids")
