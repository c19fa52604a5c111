"""The SQLite history: migrations, rows, dtypes, and two processes writing at once."""

import sqlite3
import subprocess
import sys
import textwrap

import pandas as pd

from grok_nb.store import MIGRATIONS, RunStore


def test_migrations_are_numbered_and_idempotent(tmp_path):
    path = tmp_path / "h.sqlite"
    store = RunStore(path)
    assert store.schema_version == len(MIGRATIONS)
    RunStore(path)  # opening again applies nothing twice
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_old_file_is_migrated_forward(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO runs (run_id, backend, kind, status, created_at) VALUES ('r0', 'xai', 'generate', 'done', '2026-01-01T00:00:00+00:00')")
    conn.commit()
    conn.close()
    store = RunStore(path)
    assert store.schema_version == len(MIGRATIONS) and store.get("r0")["status"] == "done"
    store.add_exchange("r0", "GET", "/v1/videos/x", 200, 1.5, "status=done")
    assert store.exchanges("r0")[0]["path"] == "/v1/videos/x"


def test_rows_and_dataframe_dtypes(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    store.insert(run_id="a", backend="simulator", kind="generate", status="submitting", prompt="p",
                 reference_images=["sha256:1"], tags=["exp"], generate_audio=True, cost_estimated_usd=0.4)
    store.update("a", request_id="rid", status="done", submitted_at="2026-11-21T10:00:00+00:00",
                 finished_at="2026-11-21T10:01:00+00:00", latency_s=60.0, cost_actual_usd=0.4, progress=100)
    assert store.find("rid")["run_id"] == "a"
    df = store.dataframe()
    assert str(df["submitted_at"].dtype).startswith("datetime64") and str(df["submitted_at"].dt.tz) == "UTC"
    assert df["latency_s"].dtype == "float64" and df["cost_actual_usd"].dtype == "float64"
    assert df.loc[0, "tags"] == ["exp"] and df.loc[0, "reference_images"] == ["sha256:1"]
    assert bool(df.loc[0, "generate_audio"]) is True and df.loc[0, "progress"] == 100
    assert isinstance(df, pd.DataFrame)


WRITER = textwrap.dedent("""
    import sys
    from grok_nb.store import RunStore
    store = RunStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        rid = f"{sys.argv[2]}-{i}"
        store.insert(run_id=rid, backend="simulator", kind="generate", status="submitting")
        store.update(rid, request_id="req-" + rid, status="pending", progress=i % 100)
        store.update(rid, status="done", progress=100)
""")


def test_two_processes_writing_lose_nothing(tmp_path):
    path = tmp_path / "shared.sqlite"
    RunStore(path)
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name, "150"]) for name in ("a", "b")]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    df = RunStore(path).dataframe()
    assert len(df) == 300 and (df["status"] == "done").all() and df["request_id"].is_unique
