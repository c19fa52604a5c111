"""The client's judge and votes: what a run may be given as, votes refused whole when wrong, a ranking equal to the
ranking module's on the same votes, and a judge voting beside people under its own name."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

import grok_nb
from grok_nb.errors import ValidationError
from grok_nb.history.owners import current_user
from grok_nb.jobs.ranking import ranking
from tests._clips import flat, write_clip
from tests.conftest import FAST, SPEED, TEST_KEY, count


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("judge-client")
    return {"dark": write_clip(folder / "dark.mp4", flat((18, 18, 30), noise=5, moving=True)),
            "bright": write_clip(folder / "bright.mp4", flat((235, 230, 215), noise=5)),
            "grey": write_clip(folder / "grey.mp4", flat((128, 128, 128), noise=5))}


@pytest.fixture
def runs(client, clips):
    """Three finished runs of this history, one per clip (prompt, resolution and duration differ)."""
    for i, (name, path) in enumerate(clips.items()):
        client.store.insert(run_id=name, request_id=f"req-{name}", backend="simulator", kind="generate", model="m",
                            prompt=f"A {name} scene", status="done", local_path=str(path), duration=float(1 + i % 2),
                            resolution="720p" if name == "grey" else "480p")
    return list(clips)


def votes_count(client) -> int:
    return len(client.votes())


# -- what a run may be ----------------------------------------------------------------------------
@pytest.mark.slow
def test_a_run_a_handle_a_request_id_and_a_run_id_are_one_judgement(client, sim):
    run = client.generate("A fox at night", duration=1)
    handle = client.generate("A fox at night", duration=1, wait=False)
    handle.result(timeout=60)
    first = client.judge(run)
    assert first.ok and first.run_id == run.run_id and not first.cached
    for same in (run.request_id, run.run_id, first.run_id):
        again = client.judge(same)
        assert again.cached and again.judgement_id == first.judgement_id
    assert client.judge(handle).run_id == handle.run.run_id
    assert count(sim, "POST", "/v1/responses") == 2  # two takes: two videos, two calls
    history = client.history().set_index("run_id")
    assert history.loc[run.run_id, "judge_score"] == first.score


@pytest.mark.slow
def test_a_video_gone_from_the_cache_is_downloaded_again_before_it_is_judged(client, sim):
    run = client.generate("A lantern in the fog", duration=1)
    run.path.unlink()
    judgement = client.judge(run.request_id)
    assert judgement.ok and client.store.find(run.request_id)["local_path"]


def test_a_run_not_finished_is_refused(client, clips):
    client.store.insert(run_id="pending", request_id="req-p", backend="simulator", kind="generate",
                        prompt="x", status="pending")
    with pytest.raises(ValidationError, match="wait for it first") as raised:
        client.judge("req-p")
    assert raised.value.field == "run"


def test_judge_many_keeps_the_order_and_names_a_bad_entry(client, runs, sim):
    with pytest.raises(ValidationError) as raised:
        client.judge_many(["dark", "nope", "bright"])
    assert raised.value.field == "runs[1]" and count(sim, "POST", "/v1/responses") == 0
    with pytest.raises(ValidationError, match="runs"):
        client.judge_many("dark")
    judged = client.judge_many(["bright", "dark", "grey"], "Is the scene dark?")
    assert [j.run_id for j in judged] == ["bright", "dark", "grey"]
    assert judged[1].score > judged[2].score > judged[0].score
    assert count(sim, "POST", "/v1/responses") == 3


def test_a_list_rubric_is_scored_per_criterion(client, runs):
    judgement = client.judge("dark", ["The scene is dark", "The scene is colourful"])
    assert judgement.ok and set(judgement.criteria) == {"The scene is dark", "The scene is colourful"}
    assert judgement.criteria["The scene is dark"] > 0.8
    kept = client.judgements("dark")
    assert kept["criteria"][0] == judgement.criteria and kept["rubric"][0] == list(judgement.rubric)


# -- votes ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("winner", ["A", "left", "", None, 1, "a ", ["a"]])
def test_a_bad_winner_is_refused_naming_it_and_nothing_is_written(client, runs, winner):
    with pytest.raises(ValidationError) as raised:
        client.vote("dark", "bright", winner)
    assert raised.value.field == "winner" and "'a'" in str(raised.value) and "'tie'" in str(raised.value)
    assert votes_count(client) == 0


@pytest.mark.parametrize(("a", "b", "field"), [("nope", "bright", "a"), ("dark", "", "b"), ("dark", "dark", "b"),
                                               ("dark", "req-dark", "b"), (None, "dark", "a")])
def test_a_vote_on_an_unknown_or_the_same_run_is_refused(client, runs, a, b, field):
    with pytest.raises(ValidationError) as raised:
        client.vote(a, b, "a")
    assert raised.value.field == field and votes_count(client) == 0


@pytest.mark.parametrize(("option", "value"), [("voter", ""), ("voter", 3), ("experiment", " "),
                                               ("experiment", "x" * 201)])
def test_a_bad_voter_or_experiment_is_refused(client, runs, option, value):
    with pytest.raises(ValidationError) as raised:
        client.vote("dark", "bright", "a", **{option: value})
    assert raised.value.field == option and votes_count(client) == 0


def test_a_vote_is_recorded_by_run_id_request_id_or_run(client, runs):
    vote = client.vote("dark", "req-bright", "b", experiment="night")
    assert (vote["a"], vote["b"], vote["winner"], vote["voter"], vote["experiment"]) == (
        "dark", "bright", "b", current_user(), "night")
    client.vote("grey", "dark", "tie", voter="ana")
    table = client.votes()
    assert list(table["winner"]) == ["b", "tie"] and list(table["voter"]) == [current_user(), "ana"]
    assert list(client.votes("night")["vote_id"]) == [vote["vote_id"]]
    assert list(client.votes(voter="ana")["a"]) == ["grey"]


def test_the_ranking_from_recorded_votes_matches_the_ranking_module_on_the_same_votes(client, runs):
    cast = [("dark", "bright", "a"), ("dark", "grey", "a"), ("grey", "bright", "a"), ("bright", "dark", "tie"),
            ("grey", "dark", "b"), ("bright", "grey", "b")]
    for a, b, winner in cast:
        client.vote(a, b, winner, experiment="e")
    client.vote("bright", "dark", "a", experiment="other")  # left out of the experiment's ranking
    prompts = {name: f"A {name} scene" for name in runs}
    ranked = client.ranking("e", by="prompt")
    expected = ranking([(prompts[a], prompts[b], w) for a, b, w in cast])
    pd.testing.assert_frame_equal(ranked, expected)
    assert ranked["option"][0] == "A dark scene"
    by_run = client.ranking("e", by="run_id")
    pd.testing.assert_frame_equal(by_run, ranking(cast))
    # by resolution: the two 480p runs' votes between themselves say nothing about resolutions and are left out
    by_resolution = client.ranking("e", by="resolution")
    assert set(by_resolution["option"]) == {"480p", "720p"} and by_resolution["votes"].sum() == 2 * 4
    with pytest.raises(ValidationError) as raised:
        client.ranking("e", by="no_such_column")
    assert raised.value.field == "by"


def test_no_votes_rank_to_an_empty_table(client, runs):
    assert client.ranking().empty and list(client.ranking().columns)[:2] == ["option", "strength"]


# -- a judge votes ----------------------------------------------------------------------------------
def test_a_judge_votes_under_its_own_name_once_per_pair_of_judgements(client, runs, sim):
    pair = client.judge_pair("dark", "bright", "Is the scene dark?", experiment="e")
    assert pair.ok and pair.winner == "a" and pair.voter == "judge:grok-4.3" and pair.a.score > pair.b.score
    client.vote("dark", "bright", "b", experiment="e", voter="ana")  # a person disagrees
    again = client.judge_pair("dark", "bright", "Is the scene dark?", experiment="e")
    assert again.vote_id == pair.vote_id and again.a.cached and again.b.cached  # nothing sent, no second vote
    assert count(sim, "POST", "/v1/responses") == 2
    judge_votes = client.votes("e", voter="judge:grok-4.3")
    assert len(judge_votes) == 1 and judge_votes["judgement_a"][0] == pair.a.judgement_id
    side_by_side = {voter: client.ranking("e", by="run_id", voter=voter)["option"][0]
                    for voter in ("judge:grok-4.3", "ana")}
    assert side_by_side == {"judge:grok-4.3": "dark", "ana": "bright"}
    tie = client.judge_pair("dark", "bright", "Is the scene dark?", tie_within=1.0)
    assert tie.winner == "tie" and len(client.votes(voter="judge:grok-4.3")) == 2


def test_a_judge_with_a_failed_judgement_casts_no_vote(client, runs, sim):
    sim.config.judge_answer = "not_json"
    pair = client.judge_pair("dark", "grey")
    assert not pair.ok and pair.winner is None and pair.vote_id is None and pair.a.error
    assert votes_count(client) == 0


def test_a_judge_pair_of_one_run_is_refused_before_anything_is_sent(client, runs, sim):
    with pytest.raises(ValidationError) as raised:
        client.judge_pair("dark", "req-dark")
    assert raised.value.field == "b" and count(sim, "POST", "/v1/responses") == 0
    with pytest.raises(ValidationError) as raised:
        client.judge_pair("dark", "bright", tie_within=-0.1)
    assert raised.value.field == "tie_within"


@pytest.mark.anyio
async def test_the_async_client_judges_and_votes_too(sim, clips):
    async with grok_nb.AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as c:
        for name in ("dark", "bright"):
            c.store.insert(run_id=name, backend="simulator", kind="generate", prompt=f"A {name} scene", status="done",
                           local_path=str(clips[name]))
        judged, pair = await asyncio.gather(c.judge("dark"), c.judge_pair("dark", "bright"))
        assert judged.ok and pair.ok and count(sim, "POST", "/v1/responses") == 2
        await c.vote("dark", "bright", "a")
        assert len(await c.votes()) == 2 and not (await c.ranking()).empty


def test_judge_rate_limit_is_checked(sim):
    for bad in (0, -1, float("nan"), "fast", True):
        with pytest.raises(ValidationError) as raised:
            grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, judge_rate_limit=bad)
        assert raised.value.field == "judge_rate_limit"
