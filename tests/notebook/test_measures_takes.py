"""Measures and takes in the views, without a browser: each cell's mean and spread over its takes, the colour scale
across a grid, the metrics a view can show (a new one registered appears everywhere), the table's display, the
history browser's measure sort and filter, and plot_measures' points and means."""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest

import grok_nb
from grok_nb.api.measure import Measures
from grok_nb.api.pricing import CostEstimate
from grok_nb.history.store import RunStore
from grok_nb.jobs.results import Run
from grok_nb.notebook import browser as B
from grok_nb.notebook import fallback, gridstate, metrics, plots
from grok_nb.notebook.compare import Grid, combined_status, spread
from grok_nb.notebook.controller import Controller
from grok_nb.notebook.gridview import VideoGrid
from grok_nb.notebook.studio import numeric_column, numeric_sort

NOW = dt.datetime(2026, 6, 1, 12, 0, 0, tzinfo=dt.timezone.utc)


def _run(run_id: str = "r", status: str = "done", motion: float | None = None, brightness: float | None = None,
         cost: float = 0.1, latency: float | None = None, **kw) -> Run:
    measures = Measures(motion=motion, brightness=brightness, cuts=0) if motion is not None or brightness is not None else None
    return Run(run_id=run_id, kind="generate", model="grok-imagine-video", prompt="p", params={"duration": 2},
               estimate=CostEstimate(0.1), request_id=f"req-{run_id}", status=status, cost_actual_usd=cost,
               latency_s=latency, path="/tmp/never-read.mp4" if status == "done" else None, measures=measures,
               submitted_at=NOW, **kw)


class _Client:  # prices only: a grid's tables never ask it for more
    store = None

    def estimate_cost(self, **_kw):
        return CostEstimate(0.1)


class _Handle:
    def __init__(self, run):
        self.run = run


def _grid(takes: int, runs: list[list[Run]], **axes) -> Grid:
    grid = Grid(_Client(), {"prompt": ["calm", "storm"], "duration": 2, **axes}, takes=takes)
    for cell, cell_runs in zip(grid.cells, runs, strict=True):
        cell.handles = [_Handle(r) for r in cell_runs]
    grid.started_at = 1.0
    return grid


# -- a cell's mean and spread -----------------------------------------------------------------------------------

def test_spread_is_the_mean_and_the_sample_standard_deviation_of_the_known_values():
    assert spread([1.0, 2.0, 3.0]) == (2.0, 1.0)
    assert spread([1.0, None, 3.0, float("nan")]) == (2.0, math.sqrt(2.0))
    mean, sd = spread([5.0])
    assert mean == 5.0 and math.isnan(sd)  # one take: no spread to speak of
    mean, sd = spread([None, None])
    assert math.isnan(mean) and math.isnan(sd)
    assert spread([0.1, 0.1, 0.1]) == (pytest.approx(0.1), 0.0)  # the same price each time: no rounding noise
    values = [0.012, 0.0155, 0.0149, 0.021]
    assert spread(values) == (pytest.approx(statistics.mean(values), abs=1e-15),
                              pytest.approx(statistics.stdev(values), abs=1e-15))


def test_the_table_gives_each_cell_the_mean_and_spread_of_every_measure_cost_and_latency():
    calm = [_run("c1", motion=1.0, brightness=0.2, latency=10.0, cost=0.1),
            _run("c2", motion=2.0, brightness=0.2, latency=12.0, cost=0.1),
            _run("c3", motion=3.0, brightness=0.2, latency=14.0, cost=0.1)]
    err = grok_nb.JobFailedError("internal_error", "boom", request_id="req-s2")
    storm = [_run("s1", motion=0.5, brightness=0.6, latency=20.0, cost=0.2),
             _run("s2", status="failed", error=err, cost=0.0),
             _run("s3", motion=1.5, brightness=0.8, latency=30.0, cost=0.4)]
    grid = _grid(3, [calm, storm])
    table = grid.table()
    assert list(table["prompt"]) == ["calm", "storm"] and list(table["takes"]) == [3, 3]
    assert list(table["done"]) == [3, 2] and list(table["status"]) == ["done", "2 done · 1 failed"]
    assert (table.loc[0, "m_motion"], table.loc[0, "m_motion_sd"]) == (2.0, 1.0)
    assert (table.loc[1, "m_motion"], table.loc[1, "m_motion_sd"]) == (1.0, math.sqrt(0.5))  # the failed take: none
    assert (table.loc[0, "m_brightness"], table.loc[0, "m_brightness_sd"]) == (pytest.approx(0.2), 0.0)
    assert (table.loc[1, "m_brightness"], table.loc[1, "m_brightness_sd"]) == (pytest.approx(0.7),
                                                                               pytest.approx(math.sqrt(0.02)))
    assert (table.loc[0, "latency_s"], table.loc[0, "latency_s_sd"]) == (12.0, 2.0)
    assert (table.loc[1, "latency_s"], table.loc[1, "latency_s_sd"]) == (25.0, math.sqrt(50.0))
    assert (table.loc[0, "cost_usd"], table.loc[0, "cost_usd_sd"]) == (pytest.approx(0.1), 0.0)
    assert table.loc[1, "cost_usd"] == pytest.approx(0.2) and table.loc[1, "cost_usd_sd"] == pytest.approx(0.2)
    assert table.loc[1, "error"].startswith("take 2: ") and "boom" in table.loc[1, "error"]
    assert "request_id" not in table.columns  # per take: takes_table()
    assert table["m_motion_sd"].dtype == "float64" and math.isnan(table.loc[0, "m_loudness_dbfs"])
    takes = grid.takes_table()
    assert len(takes) == 6 and list(takes["take"]) == [1, 2, 3, 1, 2, 3]
    assert list(takes["m_motion"].fillna(-1)) == [1.0, 2.0, 3.0, 0.5, -1, 1.5]
    assert list(takes["request_id"]) == ["req-c1", "req-c2", "req-c3", "req-s1", "req-s2", "req-s3"]
    # Shown: each mean with its spread, the _sd columns folded in, the cell's takes counted.
    shown = table._repr_html_()
    assert ">m_motion<" in shown and ">m_motion_sd<" not in shown and ">takes<" in shown and ">done<" in shown
    assert "2.0 ± 1.0" in shown and "12.0 s ± 2.0 s" in shown and "✓ 2 done" in shown and "✗ 1 failed" in shown
    assert "0.200" in shown and "0.200 ±" not in shown  # takes that agree: the value alone
    assert "nan" not in shown and "None" not in shown


def test_a_grid_of_one_take_keeps_its_request_ids_and_shows_no_spread():
    grid = _grid(1, [[_run("a", motion=0.01)], [_run("b", motion=0.02)]])
    table = grid.table()
    assert list(table["request_id"]) == ["req-a", "req-b"] and table["m_motion_sd"].isna().all()
    shown = table._repr_html_()
    assert "±" not in shown and ">takes<" not in shown and ">request_id<" in shown and ">m_motion<" in shown


def test_combined_status():
    assert combined_status(["done", "done"]) == "done"
    assert combined_status(["done", "failed", "done"]) == "2 done · 1 failed"


def test_the_plan_says_cells_times_takes_and_every_take_is_priced():
    grid = Grid(_Client(), {"prompt": ["a", "b", "c"], "duration": [1, 2]}, takes=3)
    assert grid.plan_text == "6 cells × 3 takes = 18 jobs" and grid.jobs == 18
    assert grid.estimate_usd == pytest.approx(1.8) and "18 jobs" in repr(grid)
    with pytest.raises(grok_nb.BudgetExceeded) as err:
        grid.check_budget(1.0, None, None)
    assert err.value.jobs == 18
    with pytest.raises(grok_nb.ConfirmationRequired, match="18 jobs"):
        grid.check_budget(None, 1.0, None)
    assert Grid(_Client(), {"prompt": ["a", "b"]}).plan_text == "2 jobs"
    for bad in (0, -1, 1.5, True, "3", 21):
        with pytest.raises(grok_nb.ValidationError, match="takes"):
            Grid(_Client(), {"prompt": "a"}, takes=bad)


# -- the colour scale -----------------------------------------------------------------------------------------------

def test_the_scale_runs_from_the_smallest_to_the_largest_value():
    assert metrics.scale([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    assert metrics.scale([2.0, None, 4.0]) == [0.0, None, 1.0]  # a missing value: no place on it
    assert metrics.scale([0.3, 0.3, 0.3]) == [None, None, None]  # all the same: nothing to tell apart
    assert metrics.scale([None, None]) == [None, None] and metrics.scale([]) == []
    assert metrics.scale([7.0]) == [None]
    assert metrics.colour(0.0) == metrics.SCALE[0] and metrics.colour(1.0) == metrics.SCALE[-1]
    assert metrics.colour(None) is None and metrics.colour(0.5) == metrics.SCALE[2]
    assert metrics.colour(-3) == metrics.SCALE[0] and metrics.colour(9) == metrics.SCALE[-1]


def test_metric_values_tint_across_every_take_of_the_grid():
    runs = [_run("a", motion=0.01, brightness=0.5), _run("b", motion=0.03, brightness=0.5),
            _run("c", status="pending"), _run("d", motion=0.02, brightness=0.5)]
    values = gridstate.metric_values(runs, ["m_motion", "m_brightness", "m_cuts"])
    assert [v["m_motion"] for v in values] == [["0.010", metrics.SCALE[0]], ["0.030", metrics.SCALE[-1]],
                                               ["—", None], ["0.020", metrics.SCALE[2]]]
    assert all(v["m_brightness"][1] is None for v in values)  # constant: no tint
    assert values[0]["m_cuts"] == ["0", None]


def _luminance(rgb) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])


@pytest.mark.parametrize("background, text", [
    ((255, 255, 255), (0, 0, 0, 0.87)),  # JupyterLab Light: layout-color1, ui-font-color1
    ((33, 33, 33), (255, 255, 255, 0.87)),  # JupyterLab Dark
    ((17, 17, 17), (255, 255, 255, 0.87)),  # a darker dark theme
])
def test_text_on_every_tint_of_the_scale_reads_at_4_5_to_1(background, text):
    """The grid mixes the scale's colour 35 % into the theme's background (grid.js) and keeps the theme's text."""
    assert "${colour} 35%, var(--grok-bg)" in (Path(metrics.__file__).parent / "static" / "grid.js").read_text()
    for i in range(11):
        hexed = metrics.colour(i / 10)
        tint = [int(hexed[k:k + 2], 16) for k in (1, 3, 5)]
        bg = [0.35 * t + 0.65 * b for t, b in zip(tint, background, strict=True)]
        fg = [text[3] * t + (1 - text[3]) * b for t, b in zip(text[:3], bg, strict=True)]
        lighter, darker = sorted((_luminance(fg), _luminance(bg)), reverse=True)
        assert (lighter + 0.05) / (darker + 0.05) >= 4.5, (i, hexed, background)


# -- which metrics, found how ------------------------------------------------------------------------------------

def test_a_metric_is_found_in_the_measures_the_history_columns_or_the_run_s_own_lookup(monkeypatch):
    run = _run(motion=0.02)
    assert metrics.value(run, "m_motion") == 0.02 and metrics.value(run, "m_loudness_dbfs") is None
    assert metrics.value(run, "latency_s") is None and metrics.value(None, "m_motion") is None
    from_row = _run(status="done")
    from_row.extra.update(m_motion=0.03, judge_score=7, m_video_codec="h264", nan=float("nan"))
    assert metrics.value(from_row, "m_motion") == 0.03 and metrics.value(from_row, "judge_score") == 7.0
    assert metrics.value(from_row, "m_video_codec") is None and metrics.value(from_row, "nan") is None

    class Scored(Run):  # runs may grow their own lookup one day: it is asked first
        def metric(self, name):
            return 0.9 if name == "judge_score" else None

    scored = Scored(run_id="s", kind="generate", model="m", prompt="p", measures=Measures(motion=0.5))
    assert metrics.value(scored, "judge_score") == 0.9 and metrics.value(scored, "m_motion") == 0.5


def test_a_registered_metric_shows_in_the_picker_the_footers_and_the_tables(monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    metrics.register("judge_score", "judge", unit="/10")
    runs = [_run("a", motion=0.01), _run("b", motion=0.02)]
    runs[0].extra["judge_score"], runs[1].extra["judge_score"] = 6.5, 8.0
    assert metrics.present(runs) == ["m_motion", "m_cuts", "judge_score"]
    grid = _grid(1, [[runs[0]], [runs[1]]])
    view = VideoGrid(grid)
    assert ["judge_score", "judge (/10)"] in view.widget.metric_names
    assert view.tiles()[1]["metrics"]["judge_score"] == ["8.00", metrics.SCALE[-1]]
    table = grid.table()
    assert list(table["judge_score"]) == [6.5, 8.0] and "judge_score_sd" in table.columns
    view.widget.metrics_shown = ["judge_score", "m_motion"]
    assert "judge (/10) 8.00" in view.static_html()
    view.widget.metrics_shown = ["no_such_metric", "m_motion"]  # what no metric is named is dropped
    assert view.widget.metrics_shown == ["m_motion"]
    with pytest.raises(ValueError, match="metric name"):
        metrics.register("not a name")


def test_metric_text():
    assert metrics.text("m_motion", 0.01234) == "0.012" and metrics.text("m_sharpness", 1310.2) == "1,310"
    assert metrics.text("m_loudness_dbfs", -20.84) == "\u221220.8" and metrics.text("m_cuts", 2.0) == "2"
    assert metrics.text("m_flicker", 0.0000153) == "1.5e\u22125" and metrics.text("m_motion", None) == "—"
    assert metrics.text("m_motion", float("nan")) == "—" and metrics.text("m_black", 0.0) == "0"
    assert metrics.with_spread("m_motion", 0.028425, 0.000136) == "0.02842 ± 0.00014"
    assert metrics.with_spread("m_sharpness", 1310.2, 25.3) == "1,310 ± 25"
    assert metrics.with_spread("m_motion", 0.5, 0.0) == "0.500"


def test_static_copies_show_the_picked_metrics_and_the_take():
    runs = [_run("a", motion=0.01, brightness=0.3), _run("b", motion=0.03, brightness=0.4)]
    lay = gridstate.layout([{"prompt": "p"}], ["prompt"])
    tiles, names = gridstate.grid_tiles(runs, 2, lay, ["p"], chosen={0: 1})
    assert names == ["m_motion", "m_brightness", "m_cuts"] and tiles[0]["take"] == 1
    html = fallback.grid_html(lay.rows, lay.cols, "", tiles, "2 of 2 done", metrics=[("m_motion", "motion")])
    assert "take 2 of 2" in html and "motion 0.030" in html and "brightness" not in html
    assert "rgba(253,231,37,0.35)" in html  # the largest value's tint, translucent over any page
    assert gridstate.synced(tiles[0]) == {k: tiles[0][k] for k in ("index", "row", "col", "label", "take", "takes")}


# -- the history browser and Studio.history ----------------------------------------------------------------------

def test_the_browser_sorts_and_filters_by_a_measure_and_shows_its_column(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    for i, motion in enumerate([0.02, None, 0.001, 0.04]):
        store.insert(run_id=f"r{i}", backend="simulator", kind="generate", status="done", prompt=f"prompt {i}",
                     created_at=(NOW + dt.timedelta(seconds=i)).isoformat(), m_motion=motion)
    feed = B.HistoryFeed(Controller(store), live=False)
    view = feed.view
    assert ("motion", "m_motion") in view.sort.options and ("motion", "m_motion") in view.measure.options
    view.sort.value = "m_motion"
    assert [value for _, value in view.runs.options] == ["r3", "r0", "r2", "r1"]  # largest first, unmeasured last
    assert "motion▼" in view.head.value and "0.040" in view.runs.options[0][0]
    view.measure.value = "m_motion"
    view.low.value = "0.01"
    assert [value for _, value in view.runs.options] == ["r3", "r0"] and "2 runs" in view.count.value
    assert view.filters()["where"] == {"m_motion": (0.01, None)}
    view.high.value = "0.03"
    assert [value for _, value in view.runs.options] == ["r0"]
    view.low.value = "lots"  # not a number: that end is left open, and the browser says so
    assert [value for _, value in view.runs.options] == ["r0", "r2"] and "not a number" in view.message.value
    assert "m_motion" in view.static_html() or "0.020" in view.static_html()
    view.measure.value = ""
    assert "where" not in view.filters()


def test_the_browser_tells_takes_of_one_request_apart():
    rows = [{"run_id": f"r{k}", "prompt": "A calm lake", "status": "done", "take": k, "latency_s": 1.0,
             "created_at": NOW, "kind": "generate", "tags": [], "cost_actual_usd": 0.1} for k in (1, 2, 3)]
    view = B.HistoryBrowser()
    view.show_history(pd.DataFrame(rows))
    labels = [label for label, _ in view.runs.options]
    assert len(set(labels)) == 3 and [label.split()[3] for label in labels] == ["1", "2", "3"]
    assert re.search(r"prompt +take +status", view.head.value)
    assert ">take<" in view.static_html()
    view.show_history(pd.DataFrame(rows[:1]))  # one take of each: no column for it
    assert "take" not in view.head.value


def test_studio_names_measures_by_their_short_names():
    assert numeric_column("motion") == "m_motion" and numeric_column("m_motion") == "m_motion"
    assert numeric_column("take") == "take" and numeric_sort("motion asc") == "m_motion asc"
    assert numeric_sort("newest") == "newest" and numeric_sort("sideways") == "sideways"  # the store refuses it
    with pytest.raises(grok_nb.ValidationError) as err:
        numeric_column("prompt", "y")
    assert err.value.field == "y"


@pytest.mark.slow
def test_studio_history_sorts_filters_and_plots_by_measures(studio):
    store = studio.client.store
    rows = [("calm", 1, 0.002), ("calm", 2, 0.004), ("storm", 1, 0.02), ("storm", 2, 0.03), ("storm", 3, None)]
    for i, (prompt, take, motion) in enumerate(rows):
        store.insert(run_id=f"r{i}", backend="simulator", kind="generate", status="done", prompt=prompt, take=take,
                     created_at=(NOW + dt.timedelta(seconds=i)).isoformat(), m_motion=motion, tags=["exp"])
    df = studio.history(sort="motion", where={"motion": (0.003, None)})
    assert df["run_id"].tolist() == ["r3", "r2", "r1"]
    assert studio.history(sort="m_motion asc")["run_id"].tolist() == ["r0", "r1", "r2", "r3", "r4"]
    shown = df._repr_html_()
    assert ">m_motion<" in shown and "0.030" in shown and ">take<" in shown
    with pytest.raises(grok_nb.ValidationError, match="sort"):
        studio.history(sort="prompt")
    with pytest.raises(grok_nb.ValidationError, match="where"):
        studio.history(where={"prompt": (0, 1)})
    fig = studio.plot_measures("exp", x="prompt", y="motion")
    assert fig.means["prompt"].tolist() == ["calm", "storm"] and fig.means["n"].tolist() == [2, 2]
    with pytest.raises(grok_nb.ValidationError) as err:
        studio.plot_measures("exp", x="nope")
    assert err.value.field == "x"
    with pytest.raises(grok_nb.ValidationError) as err:
        studio.plot_measures("exp", y="prompt")
    assert err.value.field == "y"


# -- plot_measures ------------------------------------------------------------------------------------------------

def _frame() -> pd.DataFrame:
    made = [NOW + dt.timedelta(seconds=i) for i in range(7)]
    return pd.DataFrame({
        "prompt": ["storm", "calm", "storm", "calm", "calm", "storm", "dusk"],
        "duration": [2, 4, 4, 2, 4, 2, 2],
        "m_motion": [0.03, 0.001, 0.02, 0.003, 0.002, 0.04, None],
        "created_at": made,
    }).iloc[::-1]  # as a history comes: newest first


def test_measure_points_are_every_take_and_the_means_with_their_sample_sd():
    points, means = plots.measure_points(_frame(), "prompt", "m_motion")
    assert means["prompt"].tolist() == ["storm", "calm"]  # as first made; "dusk" was never measured
    assert means["n"].tolist() == [3, 3]
    assert means["mean"].tolist() == [pytest.approx(0.03), pytest.approx(0.002)]
    assert means["sd"].tolist() == [pytest.approx(0.01), pytest.approx(0.001)]
    assert len(points) == 6 and sorted(points["m_motion"]) == sorted([0.03, 0.001, 0.02, 0.003, 0.002, 0.04])
    storm = points[points["prompt"] == "storm"]["at"].tolist()
    assert storm == pytest.approx([-0.18, 0.0, 0.18]) and means["at"].tolist() == [0.0, 1.0]  # spread sideways
    points, means = plots.measure_points(_frame(), "duration", "m_motion")  # numbers: in order, at their values
    assert means["duration"].tolist() == [2, 4] and means["at"].tolist() == [2.0, 4.0]
    assert means["mean"].tolist() == [pytest.approx((0.03 + 0.003 + 0.04) / 3), pytest.approx(0.023 / 3)]
    with pytest.raises(grok_nb.ValidationError):
        plots.measure_points(_frame(), "nope", "m_motion")


@pytest.mark.slow
def test_measures_by_draws_the_points_and_the_means():
    fig = plots.measures_by(_frame(), "prompt", "m_motion", label="motion", theme="dark")
    ax = fig.axes[0]
    drawn = ax.collections[0].get_offsets()
    assert sorted(drawn[:, 1].tolist()) == sorted([0.03, 0.001, 0.02, 0.003, 0.002, 0.04])
    mean_line = ax.lines[0]
    assert mean_line.get_ydata().tolist() == [pytest.approx(0.03), pytest.approx(0.002)]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["storm", "calm"]
    assert ax.get_title() == "motion by prompt: 6 takes" and ax.get_ylabel() == "motion"
    assert any("mean ± 1 sd" in t.get_text() for t in ax.get_legend().get_texts())
    assert fig.patch.get_alpha() == 0.0 and fig._repr_png_()[:4] == b"\x89PNG"
    whole = plots.measures_by(pd.DataFrame({"prompt": ["a", "b"], "m_cuts": [0, 2]}), "prompt", "m_cuts", whole=True)
    ticks = whole.axes[0].get_yticks()
    assert all(float(t).is_integer() for t in ticks)
    long = plots.measures_by(pd.DataFrame({"prompt": ["A sunny meadow at noon, then cut to a city street"],
                                           "m_motion": [0.1]}), "prompt", "m_motion")
    lines = long.axes[0].get_xticklabels()[0].get_text().split("\n")  # wrapped on two short lines, cut after
    assert len(lines) == 2 and all(len(line) <= 23 for line in lines) and lines[1].endswith("…"), lines


def test_the_history_table_shows_measures_and_a_judge_score_only_once_there_are_some(tmp_path):
    from grok_nb.notebook.tables import HistoryFrame

    store = RunStore(tmp_path / "h.sqlite")
    store.insert(run_id="a", backend="simulator", kind="generate", status="done", prompt="p", take=1)
    store.insert(run_id="b", backend="simulator", kind="generate", status="done", prompt="p", take=2)

    def heads(df) -> list[str]:
        return re.findall(r'col_heading level0 col\d+" >([^<]+)<', HistoryFrame(df)._repr_html_())

    plain = heads(store.dataframe())
    assert not [h for h in plain if h.startswith(("judge_", "m_"))] and "take" in plain
    store.update("a", m_motion=0.02, m_brightness=0.4)
    df = store.dataframe()
    assert [h for h in heads(df) if h.startswith("m_")] == ["m_motion", "m_brightness"]
    df.loc[0, "judge_score"] = 0.8
    assert "judge_score" in heads(df) and "judge_reason" not in heads(df)
    df["mine"] = 1  # a column the user added is never hidden
    assert heads(df)[-1] == "mine"


@pytest.mark.slow
def test_a_grid_of_takes_sent_as_one_batch_fills_each_cell_s_takes(studio, sim, tmp_path):
    from grok_nb.simulator.batch import batch_book

    batch_book(sim.simulator).turnaround_s = 600.0
    grid = studio.compare(prompt=["A calm lake at night", "Horses running through a storm"], duration=1, takes=2,
                          batch=True, display=False)
    table = grid.wait(timeout=120)
    assert list(table["done"]) == [2, 2] and list(table["status"]) == ["done", "done"]
    takes = grid.takes_table()
    assert list(takes["take"]) == [1, 2, 1, 2] and takes["path"].nunique() == 4  # a batch request has no request id
    assert all(r.batch_id for r in grid.runs) and len({r.batch_id for r in grid.runs}) == 1
    assert [r.take for r in grid.runs] == [1, 2, 1, 2]
    assert [r.prompt for r in grid.runs] == ["A calm lake at night"] * 2 + ["Horses running through a storm"] * 2
    tiles = grid.view.tiles()
    assert all([k["kind"] for k in t["takes"]] == ["done", "done"] for t in tiles)
    srcs = [k["src"] for t in tiles for k in t["takes"]]
    assert len(set(srcs)) == 4 and all(srcs)
    report = grid.to_html(tmp_path / "takes.html").read_text()
    assert report.count("data:video/mp4;base64,") == 4  # each take's video once, not the chosen one again
