"""The history's judgements and votes on SQLite and PostgreSQL: only valid verdicts are reused, the runs table shows the
newest valid default-rubric verdict and what judging each run cost, votes read back as a ranking's input."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from grok_nb.api.judge import DEFAULT_RUBRIC, rubric_hash, rubric_text
from grok_nb.history.store import RunStore
from grok_nb.jobs.ranking import ranking
from tests.servers import postgres_server, postgres_url  # noqa: F401  (fixtures)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    where = str(tmp_path / "h.sqlite") if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    s = RunStore(where)
    for i in range(3):
        s.insert(run_id=f"r{i}", backend="simulator", kind="generate", status="done", prompt=f"prompt {i}",
                 resolution="480p" if i < 2 else "720p")
    return s


def judgement(run_id: str, *, key: str = "k", score: float | None = 0.5, rubric=DEFAULT_RUBRIC, error=None,
              cost: float = 0.004, judgement_id: str | None = None) -> dict:
    return {"judgement_id": judgement_id or f"j{time.monotonic_ns()}", "run_id": run_id, "cache_key": key,
            "video_sha256": "ab" * 32, "model": "grok-4.3", "rubric": rubric_text(rubric),
            "rubric_hash": rubric_hash(rubric), "frames": 6, "detail": "low", "width": 384, "score": score,
            "passed": None if score is None else score >= 0.5, "reason": "seen" if score is not None else "",
            "criteria": None, "error": error, "request_id": "resp_1", "cost_usd": cost, "cost_basis": "actual",
            "estimate_usd": 0.009}


def test_a_failed_judgement_is_kept_but_never_found_as_a_score(store):
    store.add_judgement(**judgement("r0", key="same", score=None, error="the output text is not JSON"))
    assert store.find_judgement("same") is None
    store.add_judgement(**judgement("r0", key="same", score=0.75, judgement_id="good"))
    store.add_judgement(**judgement("r0", key="same", score=None, error="later, failed"))
    found = store.find_judgement("same")
    assert found is not None and found["judgement_id"] == "good" and found["score"] == 0.75
    assert found["passed"] is True and found["criteria"] == {} and found["rubric"] == DEFAULT_RUBRIC
    df = store.judgements(run_id="r0")
    assert len(df) == 3 and df["score"].isna().sum() == 2
    assert len(store.judgements(valid=True)) == 1 and len(store.judgements(valid=False)) == 2


def test_judgements_read_back_with_their_types_and_filters(store):
    store.add_judgement(**{**judgement("r0", rubric=["dark", "moving"]), "criteria": {"dark": 0.9, "moving": 0.1}})
    store.add_judgement(**judgement("r1", score=0.2))
    df = store.judgements()
    assert str(df["score"].dtype) == "float64" and str(df["passed"].dtype) == "boolean"
    assert str(df["created_at"].dtype).startswith("datetime64") and str(df["frames"].dtype) == "Int64"
    listed = store.judgements(rubric=["dark", "moving"])
    assert len(listed) == 1 and listed["rubric"][0] == ["dark", "moving"]
    assert listed["criteria"][0] == {"dark": 0.9, "moving": 0.1}
    assert list(store.judgements(rubric=DEFAULT_RUBRIC)["run_id"]) == ["r1"]
    assert store.judgements(model="grok-4.7").empty and list(store.judgements().columns) == list(df.columns)
    with pytest.raises(KeyError, match="not judgement columns"):
        store.add_judgement(**judgement("r0"), api_key="no")


def test_the_runs_table_shows_the_newest_valid_default_rubric_verdict_and_what_judging_cost(store):
    store.add_judgement(**judgement("r0", score=0.3, cost=0.004))
    store.add_judgement(**judgement("r0", score=0.9, cost=0.005))  # newest valid one under the default rubric
    store.add_judgement(**judgement("r0", score=None, error="not JSON", cost=0.006))  # failed: billed, no score
    store.add_judgement(**judgement("r0", score=0.1, rubric="Is it dark?", cost=0.001))  # another rubric
    store.add_judgement(**judgement("r1", score=None, error="refused", cost=0.0))
    df = store.dataframe().set_index("run_id")
    assert df.loc["r0", "judge_score"] == 0.9 and bool(df.loc["r0", "judge_passed"]) is True
    assert df.loc["r0", "judge_reason"] == "seen"
    assert df.loc["r0", "judge_cost_usd"] == pytest.approx(0.016)  # every call on the run, failed ones too
    assert pd.isna(df.loc["r1", "judge_score"]) and pd.isna(df.loc["r1", "judge_passed"])
    assert df.loc["r1", "judge_cost_usd"] == 0.0
    assert pd.isna(df.loc["r2", "judge_score"]) and pd.isna(df.loc["r2", "judge_cost_usd"])  # never judged
    assert str(df["judge_score"].dtype) == "float64" and str(df["judge_passed"].dtype) == "boolean"
    filtered = store.dataframe(status="done", text="prompt 0")
    assert list(filtered["judge_score"]) == [0.9]


def test_votes_read_back_as_a_rankings_input(store):
    store.add_vote(vote_id="v1", a="r0", b="r1", winner="a", voter="ana")
    store.add_vote(vote_id="v2", a="r0", b="r2", winner="tie", voter="ana", experiment="e1")
    store.add_vote(vote_id="v3", a="r1", b="r2", winner="b", voter="judge:grok-4.3", experiment="e1",
                   judgement_a="ja", judgement_b="jb")
    votes = store.votes()
    assert list(votes["vote_id"]) == ["v1", "v2", "v3"]
    assert list(votes.columns[:6]) == ["a", "b", "winner", "voter", "experiment", "created_at"]
    assert list(store.votes(experiment="e1")["vote_id"]) == ["v2", "v3"]
    assert list(store.votes(voter="judge:grok-4.3")["vote_id"]) == ["v3"]
    assert store.find_vote(voter="judge:grok-4.3", judgement_a="ja", judgement_b="jb", experiment="e1") is not None
    assert store.find_vote(voter="judge:grok-4.3", judgement_a="ja", judgement_b="jb") is None  # another experiment
    ranked = ranking(votes, by=None, seed=0)
    assert set(ranked["option"]) == {"r0", "r1", "r2"} and ranked["votes"].sum() == 6
    with pytest.raises(KeyError, match="not vote columns"):
        store.add_vote(vote_id="v4", a="r0", b="r1", winner="a", voter="ana", note="no")
    taken = store.delete_vote("v2")  # taken back: the row as it was kept, and gone from every reading
    assert taken is not None and taken["winner"] == "tie" and taken["experiment"] == "e1"
    assert list(store.votes()["vote_id"]) == ["v1", "v3"] and store.delete_vote("v2") is None


def test_before_any_judgement_the_judge_columns_are_there_and_empty(store):
    df = store.dataframe()
    assert len(df) == 3 and df["judge_score"].isna().all() and df["judge_passed"].isna().all()
    assert df["judge_reason"].isna().all() and df["judge_cost_usd"].isna().all()
    assert str(df["judge_score"].dtype) == "float64" and str(df["judge_passed"].dtype) == "boolean"
    assert str(df["judge_cost_usd"].dtype) == "float64"
