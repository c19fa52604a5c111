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
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import timezone
from pathlib import Path
from typing import Any

from ..api.judge import DEFAULT_RUBRIC, rubric_hash
from ..errors import ValidationError
from ..jobs.status import Status
from ..settings import history_url, home_dir, redact_url
from .engines import engine_for
from .journal import IdJournal
from .owners import current_user, owner_alive, process_owner
from .schema import (
    EXCHANGE_COLUMNS,
    FLOAT_COLUMNS,
    INT_COLUMNS,
    JSON_COLUMNS,
    JUDGEMENT_COLUMNS,
    MIGRATIONS,
    POSTGRES_VARIANTS,
    RUN_COLUMNS,
    RUN_TYPES,
    TIME_COLUMNS,
    VOTE_COLUMNS,
    utcnow,
)
from .storage import HistoryError, StorageError

log = logging.getLogger("grok_nb")

#: How long an owner's hold on an unfinished job lasts without a write (each poll's write renews it); longer than
#: the longest gap between two polls of a job, so a live owner never loses it. A dead owner on this machine loses it
#: at once (its process is gone); one on another machine when it runs out.
LEASE_S = 10 * 60.0

__all__ = ["EXCHANGE_COLUMNS", "JUDGED_COLUMNS", "MIGRATIONS", "NUMERIC_COLUMNS", "POSTGRES_VARIANTS", "RUN_COLUMNS",
           "SORT_SQL", "HistoryError", "RunStore", "history_location", "numeric_ranges", "open_store", "run_filters",
           "runs_frame", "sort_sql", "utcnow"]


def _as_list(value: Any) -> list[Any]:
    return [value] if isinstance(value, str) else list(value)


def _since_utc(since: Any) -> Any:
    import pandas as pd  # optional heavy dependency: pandas (loaded only when runs are read as a DataFrame)

    when = pd.Timestamp(since)
    return when.tz_localize(timezone.utc) if when.tzinfo is None else when.tz_convert(timezone.utc)


def _like(text: str) -> str:
    """``text`` for a LIKE pattern, its wildcards escaped (with ``ESCAPE '\\'``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _in_clauses(**columns: Any) -> tuple[list[str], dict[str, Any]]:
    """``column IN (...)`` clauses and their parameters for the columns given a value or a list (None: any)."""
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for column, value in columns.items():
        if value is None:
            continue
        wanted = _as_list(value)
        names = [f"{column}{i}" for i in range(len(wanted))]
        params.update(zip(names, wanted, strict=True))
        clauses.append(f"{column} IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
    return clauses, params


def run_filters(*, status: Any = None, kind: Any = None, tags: Any = None, since: Any = None,
                made_by: Any = None, text: str | None = None, where: Mapping[str, Any] | None = None,
                dialect: str = "sqlite") -> tuple[str, dict[str, Any]]:
    """A WHERE clause (SQLite and PostgreSQL alike) and its parameters for these filters: every filter of the
    history is applied here, in SQL.

    ``status``, ``kind``, ``made_by``: a value or a list (on indexes); ``tags``: all of them, matched exactly
    as elements of the stored JSON list; ``since``: created then or later; ``text``: in the prompt, any case;
    ``where``: ranges of numeric columns, ``{"m_motion": (0.1, None), "take": 1}`` (see ``numeric_ranges``).
    """
    clauses, params = _in_clauses(status=status, kind=kind, made_by=made_by)
    for i, tag in enumerate(_as_list(tags or [])):
        # An element of a JSON list written with json.dumps is [ or ", " then its encoding then , or ]: a quote
        # escaped inside another tag (\") never stands there, so the match is exact.
        encoded = _like(json.dumps(str(tag)))
        shapes = {"a": f"%[{encoded},%", "b": f"%[{encoded}]%", "c": f"%, {encoded},%", "d": f"%, {encoded}]%"}
        params.update({f"tag{i}{k}": v for k, v in shapes.items()})
        clauses.append("(" + " OR ".join(f"tags LIKE :tag{i}{k} ESCAPE '\\'" for k in shapes) + ")")
    if since is not None:
        params["since"] = _since_utc(since).isoformat(timespec="microseconds")
        clauses.append("created_at >= :since")
    if text:
        if dialect == "postgresql":
            params["text"] = f"%{_like(str(text))}%"
            clauses.append("prompt ILIKE :text ESCAPE '\\'")
        else:  # grok_fold: the SQLite engine's casefold of every letter
            params["text"] = f"%{_like(str(text).casefold())}%"
            clauses.append("grok_fold(prompt) LIKE :text ESCAPE '\\'")
    ranges, values = numeric_ranges(where)
    clauses += ranges
    params.update(values)
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
    for col in INT_COLUMNS:
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
    def _add_exchange(tx: Any, **entry: Any) -> None:
        row = {c: entry.get(c) for c in EXCHANGE_COLUMNS}
        row["at"] = row["at"] or utcnow()
        tx.execute(f"INSERT INTO exchanges ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)

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
                     elapsed_ms: float, summary: str = "", at: str | None = None, **more: Any) -> None:
        """Log one HTTP exchange of a run (no headers, no bodies with data); ``at`` defaults to now; ``more``: the
        exchange's other columns (``job_status``)."""
        with self._db.transaction(write=True) as tx:
            self._add_exchange(tx, run_id=run_id, method=method, path=path, status=status, elapsed_ms=elapsed_ms,
                               summary=summary, at=at, **more)

    def add_exchanges(self, rows: Iterable[dict[str, Any]]) -> None:
        """Log many exchanges in one transaction (dicts with add_exchange's arguments)."""
        with self._db.transaction(write=True) as tx:
            for row in rows:
                self._add_exchange(tx, **row)

    def apply(self, batch: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Run a batch of writes in one transaction, in order: all of them or none.

        Each item is ``(op, kwargs)``: ``("insert", {...fields})``, ``("update", {"run_id": id, ...fields})``
        or ``("add_exchange", {"run_id", ...the exchange's columns})``.
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
            shown = ", ".join(c for c in EXCHANGE_COLUMNS if c != "run_id")
            rows: list[dict[str, Any]] = tx.fetchall(
                f"SELECT {shown} FROM exchanges WHERE run_id = :run_id ORDER BY id", {"run_id": run_id})
        return rows

    def dataframe(self, *, status: Any = None, kind: Any = None, text: str | None = None, tags: Any = None,
                  since: Any = None, made_by: Any = None, where: Mapping[str, Any] | None = None,
                  sort: str | None = None) -> Any:
        """The history (or the runs that pass the filters, all applied in SQL) as a pandas DataFrame with proper
        dtypes, newest first (or as ``sort`` says: see ``sort_sql``)."""
        order = sort_sql(sort or "newest")
        clause, params = self._where(dict(status=status, kind=kind, text=text, tags=tags, since=since,
                                          made_by=made_by, where=where))
        with self._db.transaction() as tx:
            columns, records = tx.table(f"SELECT * FROM runs{clause} ORDER BY {order}", params)
        return self._with_judgements(runs_frame(columns, records))

    # -- judgements and votes ------------------------------------------------------------------------
    def add_judgement(self, **fields: Any) -> None:
        """Keep one judge call's verdict (``JUDGEMENT_COLUMNS``); a failed one has no score and says why in ``error``.

        Written again under the same ``judgement_id``, the row is replaced (a call is recorded before it is sent,
        then its verdict over it). ``rubric`` and ``criteria`` may be given as Python values (kept as JSON),
        ``passed`` as a bool.
        """
        unknown = set(fields) - set(JUDGEMENT_COLUMNS)
        if unknown:
            raise KeyError(f"not judgement columns: {sorted(unknown)}")
        row = {"created_at": utcnow(), "made_by": current_user(), **fields}
        for col in ("rubric", "criteria"):
            if row.get(col) is not None and not isinstance(row[col], str):
                row[col] = json.dumps(row[col], ensure_ascii=False)
        if row.get("passed") is not None:
            row["passed"] = int(bool(row["passed"]))
        again = ", ".join(f"{c} = excluded.{c}" for c in row if c not in ("judgement_id", "created_at", "made_by"))
        with self._db.transaction(write=True) as tx:
            tx.execute(f"INSERT INTO judgements ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)}) "
                       f"ON CONFLICT (judgement_id) DO UPDATE SET {again}", row)

    def find_judgement(self, cache_key: str) -> dict[str, Any] | None:
        """The newest VALID judgement made under ``cache_key`` (a failed one is never reused), or None."""
        with self._db.transaction() as tx:
            row = tx.fetchone("SELECT * FROM judgements WHERE cache_key = :key AND score IS NOT NULL AND error IS NULL "
                              "ORDER BY created_at DESC LIMIT 1", {"key": cache_key})
        return _judgement_row(row) if row is not None else None

    def judgements(self, *, run_id: Any = None, rubric: Any = None, model: Any = None,
                   valid: bool | None = None) -> Any:
        """The judgements (of a run or runs, under a rubric, by a model or models) as a DataFrame, oldest first.

        ``valid`` True keeps only the ones with a score, False only the failed ones. ``rubric`` is a text or a list
        of criteria, compared as :func:`grok_nb.api.judge.rubric_text` writes it. ``passed`` is a nullable boolean,
        ``criteria`` a dict (empty for a one-text rubric), ``rubric`` a text or a list.
        """
        import pandas as pd  # optional heavy dependency: pandas (loaded only when rows are read as a DataFrame)

        clauses, params = _in_clauses(run_id=run_id, model=model)
        if rubric is not None:
            params["rubric_hash"] = rubric_hash(rubric)
            clauses.append("rubric_hash = :rubric_hash")
        if valid is not None:
            clauses.append("score IS NOT NULL AND error IS NULL" if valid else "(score IS NULL OR error IS NOT NULL)")
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._db.transaction() as tx:
            columns, records = tx.table(f"SELECT * FROM judgements{where} ORDER BY created_at", params)
        df = pd.DataFrame.from_records(records, columns=columns or list(JUDGEMENT_COLUMNS), coerce_float=True)
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
        for col in ("score", "cost_usd", "estimate_usd"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        for col in ("frames", "width"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
        df["passed"] = df["passed"].map({1: True, 0: False}).astype("boolean")
        df["rubric"] = df["rubric"].map(lambda v: json.loads(v) if isinstance(v, str) else v).astype(object)
        df["criteria"] = df["criteria"].map(lambda v: json.loads(v) if isinstance(v, str) else {}).astype(object)
        return df

    def add_vote(self, **fields: Any) -> None:
        """Keep one pairwise vote (``VOTE_COLUMNS``: the runs ``a`` and ``b``, ``winner`` a, b or tie, ``voter``...)."""
        unknown = set(fields) - set(VOTE_COLUMNS)
        if unknown:
            raise KeyError(f"not vote columns: {sorted(unknown)}")
        row = {"created_at": utcnow(), **fields}
        with self._db.transaction(write=True) as tx:
            tx.execute(f"INSERT INTO votes ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)

    def delete_vote(self, vote_id: str) -> dict[str, Any] | None:
        """Take a vote back: the row removed (as it was kept), or None when no vote has this id."""
        with self._db.transaction(write=True) as tx:
            row = tx.fetchone("SELECT * FROM votes WHERE vote_id = :id", {"id": vote_id})
            if row is None or not tx.execute("DELETE FROM votes WHERE vote_id = :id", {"id": vote_id}):
                return None  # unknown, or taken back by another process in the meantime
        return row

    def find_vote(self, *, voter: str, judgement_a: str, judgement_b: str,
                  experiment: str | None = None) -> dict[str, Any] | None:
        """A vote this voter already cast from these two judgements (in this experiment), or None."""
        params = {"voter": voter, "ja": judgement_a, "jb": judgement_b}
        same = "experiment IS NULL"
        if experiment is not None:
            params["experiment"], same = experiment, "experiment = :experiment"
        with self._db.transaction() as tx:
            return tx.fetchone("SELECT * FROM votes WHERE voter = :voter AND judgement_a = :ja AND judgement_b = :jb "
                               f"AND {same} ORDER BY created_at LIMIT 1", params)

    def votes(self, *, experiment: Any = None, voter: Any = None) -> Any:
        """The votes (of an experiment or experiments, by a voter or voters) as a DataFrame, oldest first: ``a`` and
        ``b`` (run ids), ``winner`` (a, b or tie), ``voter``, ``experiment``, ``created_at``, ``vote_id`` and, for a
        judge's vote, the two judgements it was cast from."""
        import pandas as pd  # optional heavy dependency: pandas (loaded only when rows are read as a DataFrame)

        clauses, params = _in_clauses(experiment=experiment, voter=voter)
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        with self._db.transaction() as tx:
            columns, records = tx.table(f"SELECT * FROM votes{where} ORDER BY created_at, vote_id", params)
        df = pd.DataFrame.from_records(records, columns=columns or list(VOTE_COLUMNS))
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True, format="ISO8601")
        return df[["a", "b", "winner", "voter", "experiment", "created_at", "vote_id", "judgement_a", "judgement_b"]]

    def _with_judgements(self, df: Any) -> Any:
        """``df`` (runs) with ``judge_score``, ``judge_passed`` and ``judge_reason`` of each run's newest valid
        judgement under the default rubric (any model, frames or detail), and ``judge_cost_usd``: what every judge
        call on the run cost (every rubric, failed calls too; NaN when it was never judged)."""
        import pandas as pd  # optional heavy dependency: pandas (loaded only when runs are read as a DataFrame)

        with self._db.transaction() as tx:
            latest = tx.fetchall("SELECT run_id, score, passed, reason, created_at FROM judgements WHERE "
                                 "rubric_hash = :h AND run_id IS NOT NULL AND score IS NOT NULL AND error IS NULL",
                                 {"h": _DEFAULT_RUBRIC_HASH})
            costs = tx.fetchall("SELECT run_id, SUM(cost_usd) AS usd FROM judgements WHERE run_id IS NOT NULL "
                                "GROUP BY run_id", {})
        if not latest and not costs:  # nothing judged yet: the columns are empty, at no cost per row
            df["judge_score"] = pd.Series(float("nan"), index=df.index, dtype="float64")
            df["judge_passed"] = pd.Series(pd.NA, index=df.index, dtype="boolean")
            df["judge_reason"] = pd.Series(None, index=df.index, dtype=object)
            df["judge_cost_usd"] = pd.Series(float("nan"), index=df.index, dtype="float64")
            return df
        newest: dict[str, dict[str, Any]] = {}
        for row in sorted(latest, key=lambda r: r["created_at"]):
            newest[row["run_id"]] = row
        ids = df["run_id"]
        df["judge_score"] = ids.map({k: r["score"] for k, r in newest.items()}).astype("float64")
        df["judge_passed"] = ids.map({k: bool(r["passed"]) for k, r in newest.items()}).astype("boolean")
        df["judge_reason"] = ids.map({k: r["reason"] for k, r in newest.items()}).astype(object)
        df["judge_cost_usd"] = pd.to_numeric(ids.map({r["run_id"]: r["usd"] for r in costs}),
                                             errors="coerce").astype("float64")
        return df

    def count(self, **filters: Any) -> int:
        """How many runs pass the filters of ``run_filters`` (and ``text``), counted in SQL."""
        where, params = self._where(filters)
        with self._db.transaction() as tx:
            row = tx.fetchone(f"SELECT COUNT(*) AS n FROM runs{where}", params)
        return int(row["n"]) if row else 0

    def page(self, *, sort: str = "newest", offset: int = 0, limit: int = 100, **filters: Any) -> Any:
        """One page of the runs that pass the filters, sorted in SQL (see ``sort_sql``): what a browser shows."""
        order = sort_sql(sort)
        where, params = self._where(filters)
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
        return run_filters(**filters, dialect=self.dialect)

    def latency_samples(self, base_url: str | None, limit: int = 2000) -> list[dict[str, Any]]:
        """How long the newest ``limit`` finished runs on the server at ``base_url`` took, oldest first (``model``,
        ``kind``, ``resolution``, ``duration``, ``latency_s``): what a new client's poll planner starts from (it
        keeps the newest few hundred of each bucket). Batch runs are left out: their latency is the batch's."""
        with self._db.transaction() as tx:
            rows: list[dict[str, Any]] = tx.fetchall(
                "SELECT model, kind, resolution, duration, latency_s FROM runs WHERE status = 'done'"
                " AND batch_id IS NULL AND base_url = :base_url AND latency_s > 0 ORDER BY created_at DESC LIMIT :n",
                {"base_url": base_url, "n": max(0, int(limit))})
        rows.reverse()
        return rows


#: The browser's sort choices as SQL (unknown values last, then oldest first), the same in SQLite and PostgreSQL.
SORT_SQL: dict[str, str] = {
    "newest": "created_at DESC", "oldest": "created_at ASC",
    "cost": "(COALESCE(cost_actual_usd, cost_estimated_usd) IS NULL), COALESCE(cost_actual_usd, cost_estimated_usd) "
            "DESC, created_at DESC",
    "latency": "(latency_s IS NULL), latency_s DESC, created_at DESC",
    "rating": "(rating IS NULL), rating DESC, created_at DESC",
    "duration": "(video_duration IS NULL), video_duration DESC, created_at DESC",
}
#: Columns the history's DataFrame holds beyond the runs table's: each run's judgement (see ``_with_judgements``).
JUDGED_COLUMNS = ("judge_score", "judge_passed", "judge_reason", "judge_cost_usd")
#: Columns the history may be sorted by and filtered on as numbers (``sort=``, ``where=``): every float and
#: whole-number column of a run, the measures (``m_motion``...) and ``take`` included; not flags or leases.
NUMERIC_COLUMNS: tuple[str, ...] = tuple(c for c, kind in RUN_TYPES.items() if kind in (int, float)
                                         and c not in ("generate_audio", "winner", "lease_until"))
_DIRECTIONS = {"desc": "DESC", "asc": "ASC"}


def _numeric_column(field: str, name: Any) -> str:
    """``name`` as one of NUMERIC_COLUMNS (the whitelist's own string: SQL never holds a caller's text)."""
    for column in NUMERIC_COLUMNS:
        if name == column:
            return column
    raise ValidationError(field, name, f"a numeric history column: {', '.join(NUMERIC_COLUMNS)}")


def sort_sql(sort: str) -> str:
    """The ORDER BY text of a sort: a SORT_SQL key, or a numeric column, largest first (``"m_motion"``, also
    ``"m_motion desc"``) or smallest first (``"m_motion asc"``); runs without a value last, then newest first."""
    if isinstance(sort, str) and sort in SORT_SQL:
        return SORT_SQL[sort]
    name, _, way = sort.strip().partition(" ") if isinstance(sort, str) else ("", "", "")
    direction = _DIRECTIONS.get(way.strip().lower() or "desc")
    if direction is None or name not in NUMERIC_COLUMNS:
        raise ValidationError("sort", sort, f"one of {', '.join(SORT_SQL)}, or a numeric column (largest first; "
                                            f"add ' asc' for smallest first): {', '.join(NUMERIC_COLUMNS)}")
    column = _numeric_column("sort", name)
    return f"({column} IS NULL), {column} {direction}, created_at DESC"


def _bound(column: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        raise ValidationError(f"where[{column!r}]", value, "a finite number, or None for no bound")
    return float(value)


def numeric_ranges(where: Mapping[str, Any] | None) -> tuple[list[str], dict[str, Any]]:
    """SQL conditions and parameters for ranges of numeric columns: ``{"m_motion": (0.1, None)}`` is
    ``m_motion >= 0.1`` (both ends included, None is open, a run without a value never passes), a plain number
    is that value exactly. Columns come from NUMERIC_COLUMNS only."""
    if where is None:
        return [], {}
    if not isinstance(where, Mapping):
        raise ValidationError("where", where, "a dict of {numeric column: (low, high)}, e.g. {'m_motion': (0.1, None)}")
    clauses: list[str] = []
    params: dict[str, Any] = {}
    for i, (name, bounds) in enumerate(where.items()):
        column = _numeric_column("where", name)
        if isinstance(bounds, (tuple, list)) and len(bounds) == 2:
            low, high = _bound(column, bounds[0]), _bound(column, bounds[1])
        elif isinstance(bounds, (int, float)) and not isinstance(bounds, bool):
            low = high = _bound(column, bounds)
        else:
            raise ValidationError(f"where[{column!r}]", bounds, "(low, high) with None for an open end, or a number")
        if low is not None and high is not None and low > high:
            raise ValidationError(f"where[{column!r}]", bounds, "a range whose low end is not above its high end")
        if low is not None:
            clauses.append(f"{column} >= :_w{i}lo")
            params[f"_w{i}lo"] = low
        if high is not None:
            clauses.append(f"{column} <= :_w{i}hi")
            params[f"_w{i}hi"] = high
        if low is None and high is None:
            clauses.append(f"{column} IS NOT NULL")
    return clauses, params


_DEFAULT_RUBRIC_HASH = rubric_hash(DEFAULT_RUBRIC)



def _judgement_row(row: dict[str, Any]) -> dict[str, Any]:
    """A judgements row with its JSON and flags decoded."""
    out = dict(row)
    out["rubric"] = json.loads(out["rubric"]) if out.get("rubric") else out.get("rubric")
    out["criteria"] = json.loads(out["criteria"]) if out.get("criteria") else {}
    out["passed"] = None if out.get("passed") is None else bool(out["passed"])
    return out


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
