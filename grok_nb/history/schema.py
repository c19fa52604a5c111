"""The history's tables: numbered migrations, and the column lists every other module reads from here.

Pure (no I/O). The engines (``sqlite.py``, ``postgres.py``) run these migrations; the store
(``store.py``) encodes and decodes rows by these columns.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

# Each entry moves the schema one version up; never edit a released one, append a new one.
# Write new ones in SQL that SQLite and PostgreSQL both run (TEXT, INTEGER, DOUBLE PRECISION,
# ALTER TABLE ... ADD COLUMN, CREATE INDEX); where they cannot, add the PostgreSQL text to POSTGRES_VARIANTS.
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
    # 4: who made a run (a team sharing one history) and which process submitted it (to find rows it left behind)
    """
    ALTER TABLE runs ADD COLUMN made_by TEXT;
    ALTER TABLE runs ADD COLUMN owner TEXT;
    CREATE INDEX runs_status ON runs(status)
    """,
    # 5: the run a person picked as the best of its row in a comparison grid (1, else NULL)
    """
    ALTER TABLE runs ADD COLUMN winner INTEGER
    """,
    # 6: what the budget counted for a finished run, and which figure (a server's cost is not always sane);
    #    the size of the cached MP4 as downloaded (a cached copy is trusted only while whole)
    """
    ALTER TABLE runs ADD COLUMN cost_budget_usd DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN cost_budget_basis TEXT;
    ALTER TABLE runs ADD COLUMN video_bytes BIGINT
    """,
    # 7: uploads (the same bytes are not uploaded twice while their id lives) and the batch a run belongs to
    """
    CREATE TABLE files (
        file_id TEXT NOT NULL,
        base_url TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        filename TEXT,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        PRIMARY KEY (file_id, base_url)
    );
    CREATE INDEX files_sha256 ON files(sha256);
    ALTER TABLE runs ADD COLUMN batch_id TEXT;
    CREATE INDEX runs_batch ON runs(batch_id)
    """,
    # 8: the owner's lease on an unfinished job (epoch seconds), renewed by its writes: one process waits on a job
    """
    ALTER TABLE runs ADD COLUMN lease_until DOUBLE PRECISION
    """,
    # 9: the history's filters read by index (status and created_at have theirs): kind, who made a run
    """
    CREATE INDEX runs_kind ON runs(kind);
    CREATE INDEX runs_made_by ON runs(made_by)
    """,
    # 10: the job's status as the answer said it (a poll that saw the job end, for timelines): a field, not text
    """
    ALTER TABLE exchanges ADD COLUMN job_status TEXT
    """,
    # 11: what the downloaded video measures (grok_nb.measure; m_error when it could not be measured), and which
    #     take of its grid cell a run is
    """
    ALTER TABLE runs ADD COLUMN m_brightness DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_contrast DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_colourfulness DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_sharpness DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_motion DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_flicker DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_cuts INTEGER;
    ALTER TABLE runs ADD COLUMN m_frozen DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_black DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_loudness_dbfs DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_peak_dbfs DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_silence DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_duration_s DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_width INTEGER;
    ALTER TABLE runs ADD COLUMN m_height INTEGER;
    ALTER TABLE runs ADD COLUMN m_fps DOUBLE PRECISION;
    ALTER TABLE runs ADD COLUMN m_video_codec TEXT;
    ALTER TABLE runs ADD COLUMN m_audio_codec TEXT;
    ALTER TABLE runs ADD COLUMN m_error TEXT;
    ALTER TABLE runs ADD COLUMN take INTEGER
    """,
    # 12: a vision judge's verdicts on runs (a failed one has no score and says why in error; only valid ones are
    #     reused, found by cache_key), and pairwise votes between runs (a person's, or a judge's) for a ranking
    """
    CREATE TABLE judgements (
        judgement_id TEXT PRIMARY KEY,
        run_id TEXT,
        cache_key TEXT NOT NULL,
        video_sha256 TEXT,
        model TEXT NOT NULL,
        rubric TEXT NOT NULL,
        rubric_hash TEXT NOT NULL,
        frames INTEGER NOT NULL,
        detail TEXT NOT NULL,
        width INTEGER,
        score DOUBLE PRECISION,
        passed INTEGER,
        reason TEXT,
        criteria TEXT,
        error TEXT,
        request_id TEXT,
        cost_usd DOUBLE PRECISION,
        cost_basis TEXT,
        estimate_usd DOUBLE PRECISION,
        made_by TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX judgements_key ON judgements(cache_key);
    CREATE INDEX judgements_run ON judgements(run_id);
    CREATE TABLE votes (
        vote_id TEXT PRIMARY KEY,
        a TEXT NOT NULL,
        b TEXT NOT NULL,
        winner TEXT NOT NULL,
        voter TEXT NOT NULL,
        experiment TEXT,
        judgement_a TEXT,
        judgement_b TEXT,
        created_at TEXT NOT NULL
    );
    CREATE INDEX votes_experiment ON votes(experiment)
    """,
    # 13: a new client's poll planner reads the latencies of the newest finished runs on its server from this alone
    """
    CREATE INDEX runs_done_latency ON runs(base_url, created_at, model, kind, resolution, duration, latency_s)
        WHERE status = 'done' AND batch_id IS NULL
    """,
)


#: PostgreSQL texts of the steps whose SQLite text it cannot run (AUTOINCREMENT; REAL is 4 bytes there).
POSTGRES_VARIANTS: dict[int, str] = {
    1: MIGRATIONS[0].replace(" REAL", " DOUBLE PRECISION"),
    2: MIGRATIONS[1].replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
                    .replace(" REAL", " DOUBLE PRECISION"),
}


_CREATE = re.compile(r"CREATE TABLE (\w+) \((.*?)\);", re.S)
_ADD = re.compile(r"ALTER TABLE (\w+) ADD COLUMN (\w+) ([A-Z ]+?)\s*(?:;|$)", re.M)
_TYPES = {"TEXT": str, "REAL": float, "DOUBLE PRECISION": float, "INTEGER": int, "BIGINT": int}


def column_types(table: str, migrations: tuple[str, ...] = MIGRATIONS) -> dict[str, type]:
    """The columns ``table`` has after every migration, in order, each with its Python type (str, float or int),
    read from the migrations (written only there)."""
    columns: dict[str, type] = {}
    for script in migrations:
        for name, body in _CREATE.findall(script):
            if name == table:
                columns = {}
                for line in body.split(",\n"):
                    words = line.split()
                    if words and not words[0].isupper():  # a column, not a table constraint (PRIMARY KEY ...)
                        kind = " ".join(w for w in words[1:3] if w.isupper() and w not in ("NOT", "PRIMARY", "UNIQUE"))
                        columns[words[0]] = _TYPES.get(kind, _TYPES.get(kind.split(" ")[0], str))
        for name, column, kind in _ADD.findall(script):
            if name == table:
                columns[column] = _TYPES.get(kind.strip(), str)
    return columns


def columns_of(table: str, migrations: tuple[str, ...] = MIGRATIONS) -> tuple[str, ...]:
    """The columns ``table`` has after every migration, in order, read from the migrations (written only there)."""
    return tuple(column_types(table, migrations))


#: Every column of a run, in table order (a new migration that adds one adds it here too).
RUN_COLUMNS: tuple[str, ...] = columns_of("runs")
#: The columns of an HTTP exchange that callers write (``id`` is the database's).
EXCHANGE_COLUMNS: tuple[str, ...] = tuple(c for c in columns_of("exchanges") if c != "id")
#: Columns kept as JSON text (lists).
JSON_COLUMNS = ("reference_images", "tags")
#: ISO 8601 UTC times, kept as text (they sort as text).
TIME_COLUMNS = ("created_at", "submitted_at", "finished_at")
#: Every column of a run with its Python type, as the migrations declare it.
RUN_TYPES: dict[str, type] = column_types("runs")
#: Numbers with a fraction, read as float64 (NaN for NULL).
FLOAT_COLUMNS = tuple(c for c, kind in RUN_TYPES.items() if kind is float)
#: Whole numbers, read as nullable Int64, except those that are flags (read as booleans) or always set.
INT_COLUMNS = tuple(c for c, kind in RUN_TYPES.items() if kind is int and c not in ("generate_audio", "winner",
                                                                                        "poll_count"))
#: Every column of a judgement and of a vote, in table order.
JUDGEMENT_COLUMNS: tuple[str, ...] = columns_of("judgements")
VOTE_COLUMNS: tuple[str, ...] = columns_of("votes")


def utcnow() -> str:
    """Now, UTC, ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")
