"""The history on SQLite and on PostgreSQL: migrations, rows, dtypes, batches, many processes at once, damage."""

import os
import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from grok_nb.history.owners import process_owner
from grok_nb.history.repair import repair
from grok_nb.history.store import MIGRATIONS, HistoryError, RunStore, open_store
from tests.servers import postgres_server, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def where(request, tmp_path):
    """Where a fresh history goes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "h.sqlite")
    return request.getfixturevalue("postgres_url")


def test_migrations_are_numbered_and_idempotent(where):
    store = RunStore(where)
    assert store.schema_version == len(MIGRATIONS)
    again = RunStore(where)  # opening again applies nothing twice
    assert again.schema_version == len(MIGRATIONS)
    if store.dialect == "sqlite":
        assert sqlite3.connect(where).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_old_file_is_migrated_forward(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (run_id, backend, kind, status, created_at) "
                 "VALUES ('r0', 'xai', 'generate', 'done', '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    store = RunStore(path)
    assert store.schema_version == len(MIGRATIONS) and store.get("r0")["status"] == "done"
    assert store.get("r0")["made_by"] is None  # old rows keep an empty author
    store.add_exchange("r0", "GET", "/v1/videos/x", 200, 1.5, "status=done")
    assert store.exchanges("r0")[0]["path"] == "/v1/videos/x"


@pytest.mark.slow
def test_an_old_postgres_history_is_migrated_forward(postgres_url):  # noqa: F811  (a fixture)
    import psycopg

    from grok_nb.history.store import POSTGRES_VARIANTS

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for statement in filter(str.strip, POSTGRES_VARIANTS[1].split(";")):
            conn.execute(statement)
        conn.execute("CREATE TABLE grok_nb_schema (version INTEGER PRIMARY KEY, applied_at TEXT)")
        conn.execute("INSERT INTO grok_nb_schema VALUES (1, 'then')")
        conn.execute("INSERT INTO runs (run_id, backend, kind, status, created_at) "
                     "VALUES ('r0', 'xai', 'generate', 'done', '2026-01-01T00:00:00+00:00')")
    store = RunStore(postgres_url)
    assert store.schema_version == len(MIGRATIONS) and store.get("r0")["status"] == "done"


def test_rows_and_dataframe_dtypes(where):
    store = RunStore(where)
    store.insert(run_id="a", backend="simulator", kind="generate", status="submitting", prompt="p",
                 reference_images=["sha256:1"], tags=["exp"], generate_audio=True, cost_estimated_usd=0.4)
    store.update("a", request_id="rid", status="done", submitted_at="2026-11-21T10:00:00+00:00",
                 finished_at="2026-11-21T10:01:00+00:00", latency_s=60.123456789, cost_actual_usd=0.4, progress=100,
                 video_url="https://vidgen.x.ai/a.mp4", rating=4, note="nice")
    assert store.find("rid")["run_id"] == "a" and store.find_by_url("https://vidgen.x.ai/a.mp4")["note"] == "nice"
    df = store.dataframe()
    assert str(df["submitted_at"].dtype).startswith("datetime64") and str(df["submitted_at"].dt.tz) == "UTC"
    assert df["latency_s"].dtype == "float64" and df.loc[0, "latency_s"] == 60.123456789  # no 4-byte REAL
    assert df.loc[0, "tags"] == ["exp"] and df.loc[0, "reference_images"] == ["sha256:1"]
    assert bool(df.loc[0, "generate_audio"]) is True and df.loc[0, "progress"] == 100 and df.loc[0, "rating"] == 4
    assert df.loc[0, "owner"] == process_owner() and "@" in df.loc[0, "made_by"]
    assert isinstance(df, pd.DataFrame) and [r["run_id"] for r in store.rows(status="done")] == ["a"]
    assert store.rows(status=["pending", "submitting"]) == []


def test_empty_history_dataframe_has_the_columns(where):
    df = RunStore(where).dataframe()
    assert df.empty and {"made_by", "owner", "rating", "created_at"} <= set(df.columns)


def test_who_made_a_run_comes_from_grok_nb_user(where, monkeypatch):
    monkeypatch.setenv("GROK_NB_USER", "ana")
    store = RunStore(where)
    store.insert(run_id="a", backend="simulator", kind="generate", status="submitting")
    store.insert(run_id="b", backend="simulator", kind="generate", status="submitting", made_by="bo")
    assert store.get("a")["made_by"] == "ana" and store.get("b")["made_by"] == "bo"


def test_a_batch_is_one_transaction(where):
    store = RunStore(where)
    store.apply([
        ("insert", {"run_id": "a", "backend": "simulator", "kind": "generate", "status": "submitting"}),
        ("update", {"run_id": "a", "status": "pending", "request_id": "r-a"}),
        ("add_exchange", {"run_id": "a", "method": "POST", "path": "/v1/videos/generations", "status": 200,
                          "elapsed_ms": 3.0, "summary": "request_id=r-a", "at": "2026-11-21T10:00:00+00:00"}),
    ])
    assert store.get("a")["status"] == "pending" and store.exchanges("a")[0]["at"] == "2026-11-21T10:00:00+00:00"
    with pytest.raises(Exception):  # noqa: B017  (the engine's own integrity error: sqlite3's or psycopg's)
        store.apply([("update", {"run_id": "a", "status": "done"}),
                     ("insert", {"run_id": "a", "backend": "x", "kind": "generate", "status": "done"})])  # duplicate
    assert store.get("a")["status"] == "pending"  # the failed batch left nothing behind
    store.add_exchanges([{"run_id": "a", "method": "GET", "path": "/v1/videos/r-a", "status": 200,
                          "elapsed_ms": 1.0}] * 3)
    assert len(store.exchanges("a")) == 4
    with pytest.raises(ValueError, match="unknown history write"):
        store.apply([("delete", {"run_id": "a"})])


WRITER = textwrap.dedent("""
    import sys
    from grok_nb.history.store import RunStore
    store = RunStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        rid = f"{sys.argv[2]}-{i}"
        store.insert(run_id=rid, backend="simulator", kind="generate", status="submitting")
        store.update(rid, request_id="req-" + rid, status="pending", progress=i % 100)
        store.update(rid, status="done", progress=100)
""")


@pytest.mark.slow
def test_two_processes_writing_lose_nothing(where):
    RunStore(where)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, where, name, "100"]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    df = RunStore(where).dataframe()
    assert len(df) == 200 and (df["status"] == "done").all() and df["request_id"].is_unique


OPENER = textwrap.dedent("""
    import sys, time
    from grok_nb.history.store import RunStore
    start = float(sys.argv[3])
    time.sleep(max(0.0, start - time.time()))  # all open at the same instant
    store = RunStore(sys.argv[1])
    store.insert(run_id=sys.argv[2], backend="simulator", kind="generate", status="done")
    print(store.schema_version)
""")


def _open_at_once(where: str, n: int = 8) -> None:
    import time

    start = time.time() + 1.5  # after every interpreter has started
    procs = [subprocess.Popen([sys.executable, "-c", OPENER, where, f"p{i}", repr(start)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * n, [err for _, err in results]
    assert {out.strip() for out, _ in results} == {str(len(MIGRATIONS))}


@pytest.mark.slow
def test_eight_processes_open_a_fresh_history_at_once(where):
    _open_at_once(where)
    store = RunStore(where)
    assert len(store.rows()) == 8 and store.schema_version == len(MIGRATIONS)
    if store.dialect == "postgresql":  # each step recorded once
        import psycopg

        with psycopg.connect(where) as conn:
            versions = [r[0] for r in conn.execute("SELECT version FROM grok_nb_schema ORDER BY version")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
    else:  # the old code lost one of eight about one round in three: a few more fresh files
        for round_ in range(2):
            fresh = f"{where}.{round_}"
            _open_at_once(fresh)
            assert len(RunStore(fresh).rows()) == 8


@pytest.mark.slow
def test_eight_processes_migrate_an_old_history_at_once(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)  # a version-1 file, still in the default rollback journal
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    _open_at_once(str(path))
    store = RunStore(path)
    assert len(store.rows()) == 8 and store.schema_version == len(MIGRATIONS)


def test_open_store_follows_grok_nb_history_url(tmp_path, monkeypatch, postgres_url):  # noqa: F811
    assert open_store(tmp_path).path == tmp_path / "history.sqlite"
    monkeypatch.setenv("GROK_NB_HISTORY_URL", postgres_url)
    store = open_store(tmp_path)
    assert store.dialect == "postgresql" and store.path is None and store.location == postgres_url


def test_a_postgres_that_cannot_be_reached_is_named_without_its_password():
    from tests.servers import free_port

    url = f"postgresql://ana:s3cretpw@127.0.0.1:{free_port()}/grok"
    with pytest.raises(HistoryError) as info:
        RunStore(url)
    text = str(info.value)
    assert "s3cretpw" not in text and "postgresql://ana:***@127.0.0.1" in text and "Check that" in text


def test_an_unknown_history_url_is_explained(tmp_path):
    with pytest.raises(HistoryError, match="GROK_NB_HISTORY_URL=mysql://u:\\*\\*\\*@db/x is not understood"):
        RunStore("mysql://u:pw@db/x")


def _history_with_runs(path, n=300):
    store = RunStore(path)
    for i in range(n):
        store.insert(run_id=f"r{i:04d}", backend="simulator", kind="generate", status="done",
                     prompt="a lighthouse at dusk, waves " * 8,
                     created_at=f"2026-11-21T10:{i // 60:02d}:{i % 60:02d}+00:00")
        store.add_exchange(f"r{i:04d}", "GET", f"/v1/videos/r{i}", 200, 1.0, "status=done")
    store.close()
    return store


@pytest.mark.slow
def test_a_damaged_history_is_named_and_repair_salvages_what_it_can(tmp_path):
    path = tmp_path / "history.sqlite"
    _history_with_runs(path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    size = path.stat().st_size
    with open(path, "r+b") as f:  # smash a few pages in the middle of the file
        f.seek(size // 2)
        f.write(os.urandom(3 * 4096))
    with pytest.raises(HistoryError) as info:
        store = RunStore(path)
        store.rows()
        store.dataframe()
    text = str(info.value)
    assert str(path) in text and "grok-nb history --repair" in text
    message = repair(path)
    kept = list(tmp_path.glob("history.sqlite.damaged-*[0-9]"))
    assert len(kept) == 1 and str(kept[0]) in message
    fresh = RunStore(path)
    saved = len(fresh.rows())
    assert 0 < saved < 300 and f"{saved} run(s)" in message
    assert fresh.schema_version == len(MIGRATIONS)
    assert repair(path).endswith("healthy: nothing to repair.")


def test_a_file_that_is_not_a_database_gets_the_repair_hint(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"this is not sqlite at all" * 200)
    with pytest.raises(HistoryError, match="grok-nb history --repair"):
        RunStore(path)
    assert "0 run(s)" in repair(path)
    assert RunStore(path).rows() == []


def test_a_history_that_cannot_be_opened_says_what_to_check(tmp_path):
    path = tmp_path / "history.sqlite"
    path.mkdir()  # a folder where the file should be
    with pytest.raises(HistoryError, match="cannot be opened .* Check that you may read and write it"):
        RunStore(path)


def test_grok_nb_history_names_the_damage_and_repair_mends_it(isolated_home, capsys):
    from grok_nb.cli import main

    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "history.sqlite").write_bytes(b"garbage" * 1000)
    assert main(["history"]) == 1
    err = capsys.readouterr().err
    assert "history.sqlite is damaged" in err and "grok-nb history --repair" in err
    assert main(["history", "--repair"]) == 0
    assert "A copy is kept at" in capsys.readouterr().out
    assert main(["history"]) == 0 and "No runs yet" in capsys.readouterr().out


def test_the_run_columns_are_written_once_and_match_the_tables(where):
    from grok_nb.history.schema import EXCHANGE_COLUMNS, RUN_COLUMNS

    store = RunStore(where)
    with store._db.transaction() as tx:
        runs, _ = tx.table("SELECT * FROM runs WHERE 1 = 0")
        exchanges, _ = tx.table("SELECT * FROM exchanges WHERE 1 = 0")
    assert tuple(runs) == RUN_COLUMNS and tuple(c for c in exchanges if c != "id") == EXCHANGE_COLUMNS


LAYERED = ["grok_nb/history", "grok_nb/runtime/ratelimit.py", "grok_nb/settings.py"]
#: The only modules imported inside a function there: optional or heavy, each with a comment naming it.
OPTIONAL_HEAVY = {"psycopg", "psycopg_pool", "redis", "pandas", "pyrate_limiter", "filelock"}


def test_the_storage_modules_import_at_the_top_without_a_cycle():
    import ast
    import importlib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    files = [f for p in LAYERED for f in ((root / p).glob("*.py") if (root / p).is_dir() else [root / p])]
    late = []
    for file in files:
        lines = file.read_text().splitlines()
        for node in ast.walk(ast.parse(file.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names = [inner.module or ""] if isinstance(inner, ast.ImportFrom) else [a.name for a in inner.names]
                    top = {n.split(".")[0] for n in names}
                    nearby = " ".join(lines[max(0, inner.lineno - 4):inner.lineno])
                    if getattr(inner, "level", 0) or not top <= OPTIONAL_HEAVY or "optional heavy" not in nearby:
                        late.append(f"{file.name}:{inner.lineno} {names}")
    assert late == []
    for name in ("schema", "storage", "owners", "sqlite", "postgres", "engines", "store", "repair"):
        importlib.import_module(f"grok_nb.history.{name}")  # each imports on its own: no cycle to break


def test_every_storage_error_is_one_type_that_names_where(tmp_path):
    from grok_nb.errors import GrokError
    from grok_nb.history.storage import SharedServiceError, StorageError

    assert issubclass(HistoryError, StorageError) and issubclass(SharedServiceError, StorageError)
    assert issubclass(StorageError, GrokError)
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"not a database" * 300)
    with pytest.raises(StorageError) as info:
        RunStore(path)
    assert info.value.location == str(path)
    with pytest.raises(StorageError) as info:
        RunStore("redis://:pw@host/0")  # a URL the history does not take
    assert info.value.location == "redis://:***@host/0" and "pw" not in str(info.value)


def test_repair_re_indexes_the_cached_videos(tmp_path):
    path = tmp_path / "history.sqlite"
    videos = tmp_path / "videos"
    videos.mkdir()
    store = RunStore(path)
    store.insert(run_id="kept", request_id="req-kept", backend="simulator", kind="generate", status="pending")
    store.close()
    (videos / "req-kept.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 100)  # finished while the file broke
    (videos / "req-orphan.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 100)  # its row was on a lost page
    (videos / "req-x.mp4.1234.part").write_bytes(b"half")  # an interrupted download is no video
    message = repair(path)
    assert "healthy" in message and "1 run(s) point at their MP4 again, 1 MP4(s)" in message
    fresh = RunStore(path)
    kept = fresh.get("kept")
    assert kept["local_path"] == str(videos / "req-kept.mp4") and kept["status"] == "done"
    orphan = fresh.find("req-orphan")
    assert orphan["local_path"] == str(videos / "req-orphan.mp4") and orphan["status"] == "done"
    assert len(fresh.rows()) == 2
    assert "Re-indexed" not in repair(path)  # nothing left to do


def test_repair_of_a_damaged_file_re_indexes_the_videos_too(tmp_path):
    path = tmp_path / "history.sqlite"
    path.write_bytes(b"garbage" * 1000)
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "req-1.mp4").write_bytes(b"\0\0\0\x18ftypmp42" + b"\0" * 100)
    message = repair(path)
    assert "0 run(s)" in message and "1 MP4(s) no run knew got a row" in message
    assert RunStore(path).find("req-1")["status"] == "done"


def test_every_measure_has_its_history_column_of_its_type():
    """A new measure needs its column (a migration): the history keeps every measure with the type it has."""
    from grok_nb.api.measure import MEASURE_COLUMNS
    from grok_nb.history.schema import RUN_TYPES

    assert {c: RUN_TYPES.get(c) for c in MEASURE_COLUMNS} == MEASURE_COLUMNS
    assert RUN_TYPES["take"] is int and RUN_TYPES["m_error"] is str


def test_the_latencies_a_new_client_starts_from_are_this_servers_newest_finished_runs(where):
    store = RunStore(where)
    here, there = "http://127.0.0.1:9", "https://api.x.ai"
    for i in range(6):
        store.insert(run_id=f"r{i}", backend="simulator", base_url=here, kind="generate", model="m", duration=6.0,
                     resolution="480p", status="done", latency_s=float(10 + i), created_at=f"2026-11-01T00:00:0{i}+00:00")
    store.insert(run_id="failed", backend="simulator", base_url=here, kind="generate", status="failed", latency_s=1.0)
    store.insert(run_id="batch", backend="simulator", base_url=here, kind="generate", status="done", latency_s=9e3,
                 batch_id="b1")
    store.insert(run_id="elsewhere", backend="xai", base_url=there, kind="edit", status="done", latency_s=80.0)
    rows = store.latency_samples(here, limit=4)
    assert [r["latency_s"] for r in rows] == [12.0, 13.0, 14.0, 15.0]  # the newest four, oldest first
    assert rows[0] == {"model": "m", "kind": "generate", "resolution": "480p", "duration": 6.0, "latency_s": 12.0}
    assert [r["kind"] for r in store.latency_samples(there)] == ["edit"]
