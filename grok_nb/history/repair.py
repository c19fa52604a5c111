"""Mending a damaged SQLite history: keep a copy, start afresh with every row that can be read, re-index the videos."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..jobs.status import STATUSES
from .schema import EXCHANGE_COLUMNS, RUN_COLUMNS
from .storage import BUSY_TIMEOUT_S
from .store import RunStore

#: The statuses a run with its video in the cache may be re-indexed from (the MP4 is there: it is done): those
#: whose video may exist at the server without this history having it.
_NOT_YET_DONE = tuple(s.value for s, info in STATUSES.items() if info.video_possible)


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


#: When the table's size cannot be read, probing stops this many rowids past the last readable row.
_GIVE_UP_AFTER = 5_000


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
            conn.execute("SELECT name FROM sqlite_master").fetchall()
        except sqlite3.Error:
            return []  # not a database at all (its header is gone): no row can be read one by one either
        try:
            top, guessed = conn.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0, False
        except sqlite3.Error:
            top, guessed = 100_000, True
        misses = 0
        for rowid in range(1, top + 1):
            try:
                row = conn.execute(f"SELECT * FROM {table} WHERE rowid = ?", (rowid,)).fetchone()
            except sqlite3.Error:
                row = None
            if row is not None:
                rows.append(dict(row))
                misses = 0
            else:
                misses += 1
                if guessed and misses > _GIVE_UP_AFTER:  # far past the last readable row: the rest is gone too
                    break
    finally:
        conn.close()
    return rows


def safe_name(request_id: str) -> str:
    """The cache's file name (without ``.mp4``) for a request id: as the engine writes it."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in request_id)[:100]


def reindex_videos(store: RunStore, videos: Path) -> tuple[int, int]:
    """Point runs at their cached MP4s, and add a row for each cached MP4 no run knows; (linked, added)."""
    if not videos.is_dir():
        return 0, 0
    files = {f.stem: f for f in sorted(videos.glob("*.mp4")) if f.is_file() and f.stat().st_size > 0}
    linked = added = 0
    known: set[str] = set()
    for row in store.rows():
        request_id = row.get("request_id")
        file = files.get(safe_name(request_id)) if request_id else None
        if file is None:
            continue
        known.add(file.stem)
        fields: dict[str, Any] = {}
        if row.get("local_path") != str(file):
            fields["local_path"] = str(file)
        if row.get("status") in _NOT_YET_DONE:
            fields["status"] = "done"
        if fields:
            store.update(row["run_id"], **fields)
            linked += 1
    for stem, file in files.items():
        if stem in known:
            continue
        made = datetime.fromtimestamp(file.stat().st_mtime, timezone.utc).isoformat(timespec="microseconds")
        store.insert(run_id=uuid.uuid4().hex, request_id=stem, backend="unknown", kind="unknown", status="done",
                     local_path=str(file), created_at=made, finished_at=made,
                     error_message="re-indexed from the video cache by grok-nb history --repair: its parameters "
                                   "were in the damaged history")
        added += 1
    return linked, added


def repair(path: str | Path, videos: str | Path | None = None) -> str:
    """Keep a copy of a damaged history, start a fresh one with every row that can be read; says what it did.

    ``videos`` (default: the ``videos`` folder next to the file) is re-indexed: runs point at their
    cached MP4s again, and an MP4 no readable run knows gets a row of its own.
    """
    path = Path(path)
    folder = Path(videos) if videos is not None else path.parent / "videos"
    if not path.exists():
        return f"No history at {path}: nothing to repair (a fresh one is made on first use)."
    problem = check(path)
    if problem is None:
        store = RunStore(path)
        linked, added = reindex_videos(store, folder)
        store.close()
        return f"The history {path} is healthy: nothing to repair." + _videos_note(linked, added, folder)
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
    linked, added = reindex_videos(store, folder)
    store.close()
    if recovered is not None:
        recovered.unlink(missing_ok=True)
    return (f"The history {path} was damaged ({problem}). A copy is kept at {kept}. A fresh history was started "
            f"with {saved_runs} run(s) and {saved_exchanges} HTTP exchange(s) that could be read."
            + _videos_note(linked, added, folder))


def _videos_note(linked: int, added: int, folder: Path) -> str:
    if not linked and not added:
        return ""
    return (f" Re-indexed the video cache {folder}: {linked} run(s) point at their MP4 again, {added} MP4(s) no run "
            "knew got a row of their own.")
