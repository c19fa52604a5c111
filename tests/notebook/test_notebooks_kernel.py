"""The notebooks run in a real Jupyter kernel; a card keeps updating after its cell has returned."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
pytestmark = pytest.mark.kernel


def _execute(name: str, workdir: Path) -> tuple[Any, Path]:
    import nbformat  # not at the top: its jsonschema takes 3 s to import, in every worker
    from nbclient import NotebookClient

    shutil.copy(NOTEBOOKS / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    out = workdir / f"executed_{name}"
    nbformat.write(nb, out)
    return nb, out


def _widget_states(nb) -> list[dict]:
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [m["state"] | {"_model_name": m["model_name"]} for m in state.values()]


def _bars(nb) -> list[dict]:
    return [s for s in _widget_states(nb) if s["_model_name"] == "FloatProgressModel" and "grok-progress" in s.get("_dom_classes", [])]


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") if out.output_type == "stream" else json.dumps(out.get("data", {})))
    return "\n".join(parts)


def test_the_repo_notebooks_are_saved_without_outputs_or_video_bytes():
    import nbformat

    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), path.name
        assert "base64" not in path.read_text() and path.stat().st_size < 50_000


def test_quickstart(tmp_path):
    nb, _ = _execute("01_quickstart.ipynb", tmp_path)
    bars = _bars(nb)
    shown = [(b.get("description"), b["value"], b["bar_style"]) for b in bars]  # said in full if it fails
    assert len(bars) == 4 and all(b["value"] == 100 and b["bar_style"] == "success" for b in bars), shown
    text = _text(nb)
    assert "SIMULATED" in text and "generate · done" in text and "edit · done" in text and "extend · done" in text
    players = [s["value"] for s in _widget_states(nb) if "grok-player" in s.get("_dom_classes", [])]
    assert sum("grok-video" in p for p in players) == 4
    # Each card also leaves a static shadow (poster, state, cost) for the saved notebook and nbconvert.
    assert text.count("grok-static-card") == 4 and text.count("data:image/jpeg;base64,") >= 4
    assert "downloading" not in text and "rendering" not in text  # the shadows show outcomes


def _outputs(nb, source_start: str) -> list[dict]:
    """The display data of the code cell whose source starts with ``source_start``."""
    cell = next(c for c in nb.cells if c.cell_type == "code" and c.source.startswith(source_start))
    return [o.get("data", {}) for o in cell.get("outputs", []) if o.output_type in ("execute_result", "display_data")]


def test_compare_grid_notebook_stays_small(tmp_path):
    nb, out = _execute("02_compare_prompts.ipynb", tmp_path)
    grids = [s for s in _widget_states(nb) if s["_model_name"] == "AnyModel" and "grok-vgrid-widget" in s.get("_dom_classes", [])]
    assert len(grids) == 2
    tiles = grids[0]["tiles"]
    assert len(tiles) == 12 and all(t["kind"] == "done" and t["poster"].startswith("data:image/jpeg") for t in tiles)
    assert grids[0]["summary"]["text"].startswith("12 of 12 done")
    # The section on measures and takes: 3 cells of 3 takes, each take done and measured.
    moods = grids[1]
    assert len(moods["tiles"]) == 3 and all(len(t["takes"]) == 3 for t in moods["tiles"])
    assert all(k["kind"] == "done" and k["metrics"]["m_motion"][0] != "—" for t in moods["tiles"] for k in t["takes"])
    assert moods["summary"]["text"].startswith("9 of 9 done") and "3 cells × 3 takes = 9 jobs" in moods["axes"]
    assert moods["metrics_shown"] == ["m_motion", "m_brightness", "judge_score"]  # the judge's once judged
    text = _text(nb)
    assert "above the budget of $1.00; nothing was sent" in text
    assert text.count("image/png") >= 3  # the plots
    assert "grok-static-grid" in text and text.count("grok-static-tile") >= 15  # the saved notebook's fallback
    # Each cell's mean ± spread, sorted by motion: the calm night lake moves least; only the cut has a cut.
    [by_motion] = _outputs(nb, "table = takes.wait()")
    rows = re.findall(r"<tr>(.*?)</tr>", by_motion["text/html"], re.S)[1:]
    assert len(rows) == 3 and "still lake at night" in rows[0] and " ± " in by_motion["text/html"]
    assert "then cut to" in rows[2] and ">m_cuts<" in by_motion["text/html"]
    # The history sorted and filtered by a measure, in SQL: the lake (too still) is left out.
    [moving] = _outputs(nb, 'studio.history(experiment="moods", sort=')
    prompts = re.findall(r'title="([^"]+)"', moving["text/html"])
    assert len(prompts) == 6 and not any("lake" in p for p in prompts) and "then cut to" in prompts[0]
    # The summary table is shown once, formatted: dollars, seconds, no None, no duplicated duration.
    assert not any("grok-grid-table" in s.get("_dom_classes", []) for s in _widget_states(nb))
    [table] = _outputs(nb, "grid.wait()")
    shown = table["text/html"]
    assert shown.count("<tr>") == 13 and "$0." in shown and " s</td>" in shown  # header + 12 rows
    assert "None" not in shown and "nan" not in shown and ">duration_s<" not in shown and ">error<" not in shown
    # Columns the user picks are the columns shown.
    [picked] = _outputs(nb, 'studio.history(experiment="fox-boat-clouds")[[')
    heads = [c for c in ("prompt", "resolution", "latency_s", "cost_actual_usd", "request_id", "status", "kind")
             if f">{c}</th>" in picked["text/html"]]
    assert heads == ["prompt", "resolution", "latency_s", "cost_actual_usd", "request_id"]
    # The browser also shows a table of its runs: what a saved notebook reopened without its kernel shows.
    live, static = _outputs(nb, "studio.browse()")
    assert "application/vnd.jupyter.widget-view+json" in live and "grok-browser-static" in static["text/html"]
    assert static["text/html"].count("<tr>") == 22  # header + 12 + 9 runs
    import nbformat
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nbformat.read(out, as_version=4))
    assert "grok-browser-static" in body  # shared as HTML, the history is there
    # A 12-cell grid and a 3 × 3-take one, saved with widget state (each grid carries its script), posters and
    # three plots.
    assert out.stat().st_size < 850_000, out.stat().st_size
    assert "data:video" not in out.read_text()
    report = tmp_path / "fox_boat_clouds_report.html"
    assert report.read_text().count("data:video/mp4;base64,") == 12


def test_how_the_api_works(tmp_path):
    nb, _ = _execute("03_how_the_api_works.ipynb", tmp_path)
    text = _text(nb)
    assert "request_id:" in text and "status=pending" in text and "status=done" in text
    assert "duration=20 is not allowed" in text and "service_unavailable" in text and "expired or is gone" in text
    assert "try again later.; try again later" not in text
    styles = sorted(b["bar_style"] for b in _bars(nb))
    # Done is green; the failed job and the video whose URL expired before its download are red (no video).
    assert styles.count("success") >= 1 and styles.count("danger") >= 2
    # The teaching timelines: one scheduler, then a loop per job.
    [shared] = _outputs(nb, "server.config.rate_limit = 0.2")
    [loops] = _outputs(nb, "loners = ")
    assert "image/png" in shared and "image/png" in loops
    # The failure modes the notebook just made lead its history table, newest first, and the caption says so.
    [table] = _outputs(nb, 'studio.history()[["kind", "status", "error_code"')
    shown = table["text/html"]
    statuses = re.findall(r'title="(done|failed|expired|moderated)"', shown)
    assert statuses[:2] == ["expired", "failed"], statuses
    assert re.search(r"\d+ runs, newest first\.", shown)


def test_batches_and_uploads(tmp_path):
    nb, _ = _execute("04_batches_and_uploads.ipynb", tmp_path)
    grids = [o for o in _outputs(nb, "grid = studio.compare(") if "application/vnd.jupyter.widget-view+json" in o]
    assert len(grids) == 1 and not any(c.source.strip() == "grid" for c in nb.cells)  # the grid is shown once
    [morning] = _outputs(nb, "morning = ")
    assert "grok-table" in morning["text/html"] and "newest first" in morning["text/html"]  # formatted, not raw
    [dusk] = _outputs(nb, "dusk")
    # A Run as a cell's value: a card whose player is the copy kept beside the notebook, so it plays once saved.
    assert "grok-static-card" in dusk["text/html"] and '<source src="grok_nb_videos/' in dusk["text/html"]
    assert (tmp_path / "grok_nb_videos").is_dir() and any((tmp_path / "grok_nb_videos").glob("*.mp4"))


def test_a_card_keeps_advancing_after_its_cell_returned(tmp_path):
    """Execute one cell that starts a job and returns; then run nothing and watch the widget messages."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "GROK_NB_HOME": str(tmp_path / "home")}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        code = ("import grok_nb\nstudio = grok_nb.Studio(simulator_speed=10)\n"
                "h = studio.generate('background progress', duration=2)\n"
                "print('BAR', h.card.bar.model_id)")
        msg_id = kc.execute(code)
        bar_id = None
        returned_at = None
        while returned_at is None:
            msg = kc.get_iopub_msg(timeout=60)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream" and "BAR" in msg["content"]["text"]:
                bar_id = msg["content"]["text"].split("BAR ")[1].split()[0]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                returned_at = time.monotonic()
        assert bar_id
        values, styles = [], []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "success" not in styles:
            try:
                msg = kc.get_iopub_msg(timeout=5)
            except Exception:
                continue
            if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == bar_id:
                state = msg["content"]["data"].get("state", {})
                if "value" in state:
                    values.append(state["value"])
                if "bar_style" in state:
                    styles.append(state["bar_style"])
        # No other execute_request was sent: the updates came from the job, after the cell had returned.
        assert "success" in styles and values[-1] == 100
        assert len(values) >= 2 and values == sorted(values)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_which_prompt_wins(tmp_path):
    nb, out = _execute("05_which_prompt_wins.ipynb", tmp_path)
    text = _text(nb)
    prompts = ["A quiet harbour at night, lanterns on the water", "A harbour at noon under a bright sun",
               "A harbour at dawn in grey fog"]
    # the judge: a table of the nine takes, its progress line left in its final state
    judged = _outputs(nb, "NIGHT = ")
    assert any("9 of 9 judged" in o.get("text/html", "") for o in judged)
    [table] = [o for o in judged if "grok-table" in o.get("text/html", "")]
    assert table["text/html"].count("<tr>") == 10 and "9 scored by grok-4.3" in table["text/html"]
    # the arena: a live view, and a static copy saying what it was and how many votes were cast
    arena = _outputs(nb, "arena = studio.arena(grid)")
    assert any("application/vnd.jupyter.widget-view+json" in o for o in arena)
    [static] = [o["text/html"] for o in arena if "grok-static-arena" in o.get("text/html", "")]
    assert "9 takes of 3 options (by prompt)" in static and "6 votes by" in static and "9 by the judge" in static
    assert not any(p in static for p in prompts)  # the parameters stay hidden
    [auto] = _outputs(nb, 'arena.auto(judge="grok-4.3"')
    assert "judge:grok-4.3 was asked about 9 pairs of takes: 9 votes recorded" in auto["text/html"]
    # the ranking has every prompt, night first (both voters prefer the dark clip)
    [ranking] = _outputs(nb, 'studio.ranking(grid, by="prompt")')
    shown = ranking["text/html"]
    assert all(p in shown for p in prompts) and shown.index(prompts[0]) < min(shown.index(p) for p in prompts[1:])
    assert "15 votes" in shown and "open" in shown
    [plot] = _outputs(nb, 'studio.plot_ranking(grid, by="prompt")')
    assert "image/png" in plot
    [votes] = _outputs(nb, "arena.votes()")
    assert votes["text/html"].count("<tr>") == 16 and "judge:grok-4.3" in votes["text/html"]
    assert "Error" not in text and "Traceback" not in text
    assert out.stat().st_size < 700_000 and "data:video" not in out.read_text()


def _run_cell(kc, code: str) -> list[dict]:
    """Execute ``code`` and return the iopub messages filed under it (what nbclient keeps), until it is idle."""
    msg_id = kc.execute(code)
    kept = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue  # nbclient drops these too: they belong to another cell
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return kept
        kept.append(msg)


def test_jobs_that_end_between_cells_are_saved_in_their_final_state_by_the_cell_that_waits(tmp_path):
    """nbclient keeps only the messages filed under the cell it is running. Jobs that finish after one cell
    returned and before the next one started (their last draws are filed under the cell that started them) are
    drawn again by ``result()``, ``await`` and ``grid.wait()``, under the cell that waits: a notebook run by
    nbconvert or nbclient is saved with its final cards and grids, however the timing fell."""
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "GROK_NB_HOME": str(tmp_path / "home")}
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        started = _run_cell(kc, (
            "import grok_nb\nstudio = grok_nb.Studio(simulator_speed=300)\n"
            "h = studio.generate('between cells', duration=1)\n"
            "a = studio.generate('awaited between cells', duration=1)\n"
            "grid = studio.compare(prompt=['one', 'two [sim:fail=internal_error]'], duration=1)\n"
            "print('IDS', h.card.bar.model_id, a.card.bar.model_id, grid.view.widget.model_id)"))
        [ids] = [m["content"]["text"] for m in started if m["msg_type"] == "stream" and "IDS" in m["content"]["text"]]
        bar, awaited_bar, grid_id = ids.split()[1:4]
        # The gap between the cells: every job ends here, drawn under the first cell.
        deadline = time.monotonic() + 60
        ended: set[str] = set()
        while time.monotonic() < deadline and len(ended) < 3:
            try:
                msg = kc.get_iopub_msg(timeout=1)
            except Exception:
                continue
            state = msg["content"].get("data", {}).get("state", {}) if msg["msg_type"] == "comm_msg" else {}
            if state.get("bar_style") == "success":
                ended.add(msg["content"]["comm_id"])
            if "done" in str(state.get("summary", {}).get("text", "")) and "1 of 2 done" in state["summary"]["text"]:
                ended.add(msg["content"]["comm_id"])
        assert ended == {bar, awaited_bar, grid_id}, ended
        time.sleep(0.5)

        def final_states(msgs: list[dict]) -> dict[str, dict]:
            states: dict[str, dict] = {}
            for m in msgs:
                if m["msg_type"] == "comm_msg":
                    states.setdefault(m["content"]["comm_id"], {}).update(m["content"]["data"].get("state", {}))
            return states

        def shadows(msgs: list[dict]) -> list[str]:
            return [m["content"]["data"].get("text/html", "") for m in msgs if m["msg_type"] == "update_display_data"]

        waited = _run_cell(kc, "h.result()\ngrid.wait();")
        states = final_states(waited)
        assert (states.get(bar, {}).get("value"), states.get(bar, {}).get("bar_style")) == (100, "success"), states
        assert "1 of 2 done" in states.get(grid_id, {}).get("summary", {}).get("text", ""), states.get(grid_id)
        html = shadows(waited)
        assert any("grok-static-card" in s and "between cells" in s and "done" in s for s in html), html
        assert any("grok-static-grid" in s and "1 of 2 done" in s and "failed" in s for s in html), html

        awaited = _run_cell(kc, "await a")
        states = final_states(awaited)
        assert states.get(awaited_bar, {}).get("bar_style") == "success", states
        assert any("grok-static-card" in s and "awaited between cells" in s for s in shadows(awaited))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
