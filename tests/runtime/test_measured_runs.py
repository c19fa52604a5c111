"""Every downloaded video is measured, after it is done (never before, never on the event loop): run.measures, the
history's m_* columns, and a file that cannot be measured marks its run, never the job."""

from __future__ import annotations

import pytest

import grok_nb
from grok_nb import Client
from grok_nb.api.measure import MEASURE_COLUMNS, Measures
from grok_nb.errors import MeasureError
from tests.conftest import FAST, SPEED, TEST_KEY


@pytest.mark.slow
def test_a_run_is_measured_after_it_is_done_and_the_history_keeps_the_measures(sim):
    seen: list[tuple[str, bool]] = []
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as client:
        run = client.generate("A dark night street", duration=1,
                              on_update=lambda r: seen.append((r.status.value, r.measures is not None)))
        assert run.ok and isinstance(run.measures, Measures)
        assert run.measures.duration_s == pytest.approx(1.0, abs=0.2) and 0 <= run.measures.brightness <= 1
        assert run.mismatches() == {} or set(run.mismatches()) <= {"resolution"}  # the suite draws small clips
        row = client.history().iloc[0]
        assert set(MEASURE_COLUMNS) <= set(row.index) and row["m_brightness"] == pytest.approx(run.measures.brightness)
        assert Measures.from_columns(row) == run.measures and row["m_error"] is None
        again = client.get(run.request_id)  # read back from the history: the measures come with it
        assert again.measures == run.measures
    # The views saw the job done before its measures came: measuring never held "done" back.
    assert ("done", False) in seen and seen[-1] == ("done", True)
    assert seen.index(("done", False)) < seen.index(("done", True))


@pytest.mark.slow
def test_a_video_that_cannot_be_measured_marks_its_run_and_stays_done(sim, monkeypatch):
    import grok_nb.runtime.engine as engine

    def broken(path):
        raise MeasureError(str(path), "it is cut short")

    monkeypatch.setattr(engine, "measure", broken)
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as client:
        run = client.generate("A fox", duration=1)
        assert run.status == "done" and run.ok and run.measures is None
        assert "cut short" in run.extra["m_error"]
        row = client.history().iloc[0]
        assert row["status"] == "done" and "cut short" in row["m_error"] and grok_nb.Status(row["status"]).ok
