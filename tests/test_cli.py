"""The grok-nb command: simulator server, history export, the demo (the main job)."""

import contextlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest

from grok_nb.api.probe import probe
from grok_nb.cli import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The main job run once for this module: ``(its home, what it printed)``."""
    home = tmp_path_factory.mktemp("demo-home")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(out):
        mp.setenv("GROK_NB_HOME", str(home))
        mp.delenv("GROK_NB_SIMULATOR_SCALE")  # the frames' true sizes are checked below
        assert main(["demo", "--speed", "300"]) == 0
    return home, out.getvalue()


@pytest.mark.slow  # the demo: a simulator at full size, nine clips
def test_demo_makes_real_mp4s_and_a_history(demo):
    home, out = demo
    assert "SIMULATED" in out and "9 runs, 9 done" in out and "MP4s are in" in out
    report = Path(out.split("HTML report of the comparison (open it in a browser): ")[1].splitlines()[0])
    html = report.read_text(encoding="utf-8")
    assert report.suffix == ".html" and html.count("data:video/mp4;base64,") == 6
    from grok_nb.history.store import RunStore

    df = RunStore(home / "history.sqlite").dataframe()
    assert len(df) == 9 and (df["status"] == "done").all()
    assert df["latency_s"].gt(0).all() and df["cost_actual_usd"].gt(0).all()
    for row in df.itertuples():
        info = probe(row.local_path)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert info.duration == row.video_duration
    grid = df[df["kind"] == "generate"].dropna(subset=["aspect_ratio"])
    assert sorted({(probe(p).width, probe(p).height) for p in grid["local_path"]}) == [(848, 480), (1280, 720)]
    assert set(df["kind"]) == {"generate", "edit", "extend"}


@pytest.mark.slow
def test_history_csv_export(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GROK_NB_HOME", str(demo[0]))
    out = tmp_path / "runs.csv"
    assert main(["history", "--csv", str(out)]) == 0
    df = pd.read_csv(out)
    assert len(df) == 9 and {"cost_actual_usd", "latency_s", "request_id"} <= set(df.columns)
    assert main(["history"]) == 0 and "generate" in capsys.readouterr().out
    # --limit keeps the newest runs, shown newest first; a prompt cut short says so with an ellipsis.
    assert main(["history", "--limit", "2"]) == 0
    shown = capsys.readouterr().out.splitlines()[1:]
    newest = df.sort_values("created_at", ascending=False)["kind"].head(2).tolist()
    assert len(shown) == 2 and [line.split()[2] for line in shown] == newest, shown
    assert main(["history"]) == 0 and "…" in capsys.readouterr().out  # the demo's prompts are longer than 40
    _, printed = demo
    assert "…" in printed and "$" in printed and ".000" not in printed.split("total cost")[1].split(",")[0]


@pytest.mark.slow
def test_simulator_command_serves_the_contract(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "grok_nb.cli", "simulator", "--port", str(port), "--speed", "300"],
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert "GROK_NB_BASE_URL" in proc.stdout.readline() + proc.stdout.readline()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "GROK_NB_BASE_URL": base, "XAI_API_KEY": "anything"}
        script = "import grok_nb; r = grok_nb.Client(rate_limit=300, poll_interval=0.02).generate('cli', duration=1); print(r.status, r.backend)"
        result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
        assert result.stdout.split() == ["done", "simulator"], result.stderr
        assert httpx.get(base + "/").json()["service"].startswith("grok_nb simulator")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
