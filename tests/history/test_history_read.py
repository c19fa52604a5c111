"""Reading the history at scale: filters in SQL on indexes, on SQLite and PostgreSQL alike; JSON columns
decoded once per distinct text; the same answers as filtering the whole DataFrame."""

from __future__ import annotations

import pandas as pd
import pytest

from grok_nb.history.store import RunStore, run_filters
from tests.servers import postgres_server, postgres_url  # noqa: F401  (fixtures)


def filter_runs(df, *, status=None, kind=None, text=None, tags=None, since=None, made_by=None):
    """The oracle: the same filters written plainly over a whole DataFrame."""
    def as_list(value):
        return [value] if isinstance(value, str) else list(value)

    if status is not None:
        df = df[df["status"].isin(as_list(status))]
    if kind is not None:
        df = df[df["kind"].isin(as_list(kind))]
    if made_by is not None:
        df = df[df["made_by"].isin(as_list(made_by))]
    if text:
        df = df[df["prompt"].fillna("").str.casefold().str.contains(text.casefold(), regex=False)]
    for tag in as_list(tags or []):
        df = df[df["tags"].map(lambda ts, tag=tag: tag in ts).astype(bool)]
    if since is not None:
        when = pd.Timestamp(since)
        df = df[df["created_at"] >= (when.tz_localize("UTC") if when.tzinfo is None else when)]
    return df


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    where = str(tmp_path / "h.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = RunStore(where)
    rows = [("a", "generate", "done", ["exp-1"], "A red fox", "2026-01-01T00:00:00.000000+00:00", "ana"),
            ("b", "edit", "failed", [], "a FOX at night", "2026-01-02T00:00:00.000000+00:00", "bo"),
            ("c", "generate", "done", ["exp-1", "50%_off"], "Clouds", "2026-01-03T00:00:00.000000+00:00", "ana"),
            ("d", "extend", "done", ["exp-10"], "Ébène café", "2026-01-04T00:00:00.000000+00:00", "ana"),
            ("e", "generate", "moderated", None, None, "2026-01-05T00:00:00.000000+00:00", "bo"),
            ("f", "generate", "done", ['say "hi"', '"hi'], "Quotes", "2026-01-06T00:00:00.000000+00:00", "bo")]
    for run_id, kind, status, tags, prompt, created, who in rows:
        store.insert(run_id=run_id, backend="simulator", kind=kind, status=status, tags=tags, prompt=prompt,
                     created_at=created, made_by=who)
    return store


@pytest.mark.parametrize("filters", [
    {}, {"status": "done"}, {"status": ["done", "failed"]}, {"status": []}, {"kind": "generate"},
    {"tags": "exp-1"}, {"tags": ["exp-1", "50%_off"]}, {"tags": "50%"}, {"tags": "exp"}, {"text": "fox"},
    {"text": "ÉBÈNE"}, {"since": "2026-01-03"}, {"since": pd.Timestamp("2026-01-02T01:00:00+01:00")},
    {"status": "done", "kind": "generate", "tags": "exp-1", "since": "2026-01-02"},
    {"tags": 'say "hi"'}, {"tags": "hi"}, {"made_by": "bo", "text": "FOX"},
])
@pytest.mark.slow
def test_sql_filters_answer_as_the_dataframe_filter_does(store, filters):
    expected = filter_runs(store.dataframe(), **filters)["run_id"].tolist()
    assert store.dataframe(**filters)["run_id"].tolist() == expected


def test_who_made_a_run_is_a_filter_too(store):
    assert store.dataframe(made_by="bo")["run_id"].tolist() == ["f", "e", "b"]  # newest first
    assert store.dataframe(made_by=["ana"], status="done")["run_id"].tolist() == ["d", "c", "a"]


def test_tags_are_matched_whole_and_like_wildcards_are_literal():
    where, params = run_filters(tags=["50%_off"])
    assert "ESCAPE" in where and params["tag0b"] == '%["50\\%\\_off"]%'


def test_json_columns_are_lists_and_rows_without_tags_have_empty_ones(store):
    df = store.dataframe()
    assert df["tags"].tolist() == [['say "hi"', '"hi'], [], ["exp-10"], ["exp-1", "50%_off"], [], ["exp-1"]]
    assert df["reference_images"].tolist() == [[]] * 6


def test_the_filters_use_indexes(tmp_path):
    store = RunStore(tmp_path / "h.sqlite")
    import sqlite3

    conn = sqlite3.connect(tmp_path / "h.sqlite")
    for column in ("kind", "made_by", "status", "created_at"):
        where, params = run_filters(**{("since" if column == "created_at" else column): "2026-01-01"})
        sql = f"EXPLAIN QUERY PLAN SELECT * FROM runs{where}"
        plan = " ".join(str(row[-1]) for row in conn.execute(sql.replace(":", ":"), params))
        assert "USING INDEX" in plan, (column, plan)
    store.close()


# -- the browser's queries: paged, sorted and filtered in SQL ------------------------------------------

@pytest.fixture(params=["sqlite", "postgresql"])
def many(request, tmp_path):
    where = str(tmp_path / "m.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    store = RunStore(where)
    ops = []
    for i in range(230):
        ops.append(("insert", {
            "run_id": f"r{i:03d}", "backend": "simulator", "kind": "generate" if i % 3 else "edit",
            "status": "done" if i % 7 else "failed", "prompt": f"{'Fox' if i % 2 else 'boat'} number {i}",
            "created_at": f"2026-02-01T00:{i // 60:02d}:{i % 60:02d}.000000+00:00", "made_by": "ana",
            "latency_s": None if i % 11 == 0 else float((i * 37) % 101), "rating": (i % 6) or None,
            "cost_estimated_usd": 0.05 * (i % 5 + 1), "cost_actual_usd": None if i % 4 == 0 else 0.01 * (i % 9),
            "video_duration": float(i % 8) if i % 5 else None, "tags": ["odd"] if i % 2 else []}))
    store.apply(ops)
    return store


@pytest.mark.parametrize("sort", ["newest", "oldest", "cost", "latency", "rating", "duration"])
@pytest.mark.slow
def test_a_page_is_what_sorting_the_whole_frame_gives(many, sort):
    # The oracle: the same order written plainly (unknown values last, ties newest first, as SORT_SQL says).
    df = many.dataframe().assign(cost=lambda d: d["cost_actual_usd"].fillna(d["cost_estimated_usd"]))
    key, ascending = {"newest": ("created_at", False), "oldest": ("created_at", True), "cost": ("cost", False),
                      "latency": ("latency_s", False), "rating": ("rating", False),
                      "duration": ("video_duration", False)}[sort]
    df = df.sort_values("created_at", ascending=False, kind="stable").sort_values(
        key, ascending=ascending, na_position="last", kind="stable")
    whole = df["run_id"].tolist()
    pages = [many.page(sort=sort, offset=offset, limit=100)["run_id"].tolist() for offset in (0, 100, 200)]
    assert [len(p) for p in pages] == [100, 100, 30] and sum(pages, []) == whole


def test_filters_count_and_facets_come_from_sql(many):
    filters = {"status": "done", "kind": "generate", "text": "fox", "tags": "odd"}
    expected = filter_runs(many.dataframe(), **filters)["run_id"].tolist()
    assert many.count(**filters) == len(expected) and many.count() == 230
    assert sorted(many.page(sort="oldest", limit=500, **filters)["run_id"]) == sorted(expected)
    assert many.count(text="50%") == 0 and many.count(text="NUMBER 1") == 1 + 10 + 100  # 1, 1x, 1xx
    facets = many.facets()
    assert facets == {"status": ["done", "failed"], "kind": ["edit", "generate"], "tags": ["odd"], "makers": 1}


def test_runs_written_out_of_creation_order_come_back_newest_first(store):
    """Sorted in SQL: a run added later with an older time still sorts into place."""
    for i, at in enumerate(["2020-11-02T10:00:00+00:00", "2020-11-03T10:00:00+00:00", "2020-11-01T10:00:00+00:00"]):
        store.insert(run_id=f"late{i}", backend="simulator", kind="generate", status="done", prompt=f"late-{i}",
                     created_at=at)
    df = store.dataframe()
    assert df["created_at"].is_monotonic_decreasing and df.index.tolist() == list(range(len(df)))
    assert df["prompt"].tolist()[-3:] == ["late-1", "late-0", "late-2"]
    assert store.dataframe(text="late-")["prompt"].tolist() == ["late-1", "late-0", "late-2"]
