"""Sorting and filtering the history by measures (and any numeric column), in SQL, on SQLite and PostgreSQL alike:
the same answers as pandas over the whole DataFrame; names only from the numeric columns, never a caller's text."""

from __future__ import annotations

import math

import pytest

from grok_nb import ValidationError
from grok_nb.history.store import NUMERIC_COLUMNS, RunStore, numeric_ranges, sort_sql
from tests.servers import postgres_server, postgres_url  # noqa: F401  (fixtures)

#: (run id, motion, brightness, cuts, take): b and e were not measured; c and d tie on motion.
ROWS = [("a", 0.012, 0.40, 0, 1), ("b", None, None, None, 2), ("c", 0.030, 0.15, 1, 1), ("d", 0.030, 0.55, 0, 3),
        ("e", None, 0.20, None, None), ("f", 0.002, 0.16, 0, 2)]


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    where = str(tmp_path / "h.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = RunStore(where)
    for i, (run_id, motion, brightness, cuts, take) in enumerate(ROWS):
        store.insert(run_id=run_id, backend="simulator", kind="generate", status="done", prompt=f"p {run_id}",
                     created_at=f"2026-01-0{i + 1}T00:00:00.000000+00:00", m_motion=motion, m_brightness=brightness,
                     m_cuts=cuts, take=take)
    return store


def _ids(df) -> list[str]:
    return df["run_id"].tolist()


def test_sorted_by_a_measure_largest_first_unmeasured_last_ties_newest_first(store):
    assert _ids(store.dataframe(sort="m_motion")) == ["d", "c", "a", "f", "e", "b"]
    assert _ids(store.dataframe(sort="m_motion desc")) == ["d", "c", "a", "f", "e", "b"]
    assert _ids(store.dataframe(sort="m_motion asc")) == ["f", "a", "d", "c", "e", "b"]
    assert _ids(store.dataframe(sort="m_cuts")) == ["c", "f", "d", "a", "e", "b"]
    assert _ids(store.dataframe(sort="take asc")) == ["c", "a", "f", "b", "d", "e"]
    assert _ids(store.dataframe()) == ["f", "e", "d", "c", "b", "a"]  # newest first, as ever
    assert _ids(store.page(sort="m_brightness", limit=3)) == ["d", "a", "e"]
    assert _ids(store.page(sort="m_brightness", offset=3, limit=3)) == ["f", "c", "b"]


@pytest.mark.parametrize("where, expected", [
    ({"m_motion": (0.01, None)}, ["d", "c", "a"]),
    ({"m_motion": (None, 0.012)}, ["f", "a"]),  # both ends included
    ({"m_motion": (0.012, 0.03)}, ["d", "c", "a"]),
    ({"m_motion": (None, None)}, ["f", "d", "c", "a"]),  # measured at all
    ({"m_cuts": 1}, ["c"]),  # a number: exactly that value
    ({"take": 2, "m_brightness": (0.1, 0.2)}, ["f"]),
    ({"m_brightness": [0.5, 1]}, ["d"]),
    ({}, ["f", "e", "d", "c", "b", "a"]),
])
def test_filtered_by_measure_ranges_as_pandas_filters(store, where, expected):
    got = store.dataframe(where=where)
    assert _ids(got) == expected
    everything = store.dataframe()
    oracle = everything
    for column, bounds in where.items():
        low, high = bounds if isinstance(bounds, (tuple, list)) else (bounds, bounds)
        values = oracle[column].astype("float64")
        keep = values.notna()
        if low is not None:
            keep &= values >= low
        if high is not None:
            keep &= values <= high
        oracle = oracle[keep]
    assert _ids(oracle) == expected
    assert store.count(where=where) == len(expected)


def test_sort_and_filter_together_with_the_other_filters(store):
    got = store.dataframe(status="done", text="p", where={"m_motion": (0.001, None)}, sort="m_brightness asc")
    assert _ids(got) == ["c", "f", "a", "d"]


@pytest.mark.parametrize("sort", ["m_motion; DROP TABLE runs", "prompt", "m_motion sideways", " ", "m_error",
                                  "lease_until", "winner", "1", None, 3])
def test_a_sort_that_is_not_a_numeric_column_is_refused_naming_what_is_allowed(store, sort):
    with pytest.raises(ValidationError) as err:
        store.dataframe(sort=sort) if sort is not None else sort_sql(sort)
    assert err.value.field == "sort" and "m_motion" in str(err.value) and "newest" in str(err.value)
    assert len(store.dataframe()) == 6  # nothing was dropped


@pytest.mark.parametrize("where, field", [
    ({"prompt": (0, 1)}, "where"),
    ({"m_motion) OR (1=1": (0, None)}, "where"),
    ({"m_motion": (math.nan, None)}, "where['m_motion']"),
    ({"m_motion": (True, None)}, "where['m_motion']"),
    ({"m_motion": ("0.1", None)}, "where['m_motion']"),
    ({"m_motion": (0.2, 0.1)}, "where['m_motion']"),
    ({"m_motion": (0.1, 0.2, 0.3)}, "where['m_motion']"),
    ({"m_motion": math.inf}, "where['m_motion']"),
    ([("m_motion", (0, 1))], "where"),
])
def test_a_bad_range_is_refused_naming_the_field_and_what_is_allowed(where, field):
    with pytest.raises(ValidationError) as err:
        numeric_ranges(where)
    assert err.value.field == field


def test_sql_holds_the_whitelisted_names_and_parameters_only():
    clauses, params = numeric_ranges({"m_motion": (0.1, None), "take": 2})
    assert clauses == ["m_motion >= :_w0lo", "take >= :_w1lo", "take <= :_w1hi"]
    assert params == {"_w0lo": 0.1, "_w1lo": 2.0, "_w1hi": 2.0}
    assert sort_sql("m_motion asc") == "(m_motion IS NULL), m_motion ASC, created_at DESC"
    assert "m_motion" in NUMERIC_COLUMNS and "take" in NUMERIC_COLUMNS and "prompt" not in NUMERIC_COLUMNS
    assert "winner" not in NUMERIC_COLUMNS and "generate_audio" not in NUMERIC_COLUMNS
