"""The judge, the blind arena and the ranking in the notebook: the arena's pair order (pure), the judge's table and
progress, votes reaching the history as the sides were shown, the ranking's table and plot."""

from __future__ import annotations

import math
import random
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import grok_nb
from grok_nb.errors import ValidationError
from grok_nb.jobs.budget import BudgetSnapshot
from grok_nb.notebook import plots, tables
from grok_nb.notebook.arena import ArenaState, counter_text

NIGHT = "Is the scene dark, as at night?"


def _takes(options: int, takes: int) -> dict[str, str]:
    return {f"{o}{t}": o for o in "ABCDEFG"[:options] for t in range(takes)}


def _round(state: ArenaState, n: int, side: str = "tie") -> list[frozenset[str]]:
    """Vote on the next ``n`` pairs; the pairs of options shown, in order."""
    shown = []
    for _ in range(n):
        left, right = state.pair()
        shown.append(frozenset((state.option_of[left], state.option_of[right])))
        state.record(left, right, side)
    return shown


# -- the arena's state, pure ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("options", [2, 3, 4, 5])
def test_no_pair_of_options_comes_again_before_every_other_was_shown(options):
    state = ArenaState(_takes(options, 2), rng=3)
    size = options * (options - 1) // 2
    for round_no in range(3):
        assert state.progress() == {"votes": round_no * size, "round": round_no + 1, "size": size, "left": size}
        shown = _round(state, size, side=random.Random(round_no).choice(["left", "right", "tie"]))
        assert len(set(shown)) == size, f"round {round_no + 1} repeated a pair: {shown}"


def test_the_least_certain_pair_comes_first():
    # A beat B and C; B and C tied: after that round, B against C is the closest call.
    votes = [("A0", "B0", "a"), ("A0", "C0", "a"), ("B0", "C0", "tie")]
    for seed in range(10):
        state = ArenaState(_takes(3, 1), votes, rng=seed)
        left, right = state.pair()
        assert {left, right} == {"B0", "C0"}


def test_the_sides_are_shuffled_and_a_vote_is_recorded_as_shown():
    lefts = Counter()
    for seed in range(40):
        state = ArenaState({"r1": "night", "r2": "noon"}, rng=seed)
        left, right = state.pair()
        lefts[left] += 1
        assert state.record(left, right, "left") == (left, right, "a")  # a is the run shown on the left
    assert lefts["r1"] > 5 and lefts["r2"] > 5, lefts  # either run appears on the left
    state = ArenaState({"r1": "night", "r2": "noon"}, rng=1)
    left, right = state.pair()
    assert state.record(left, right, "right") == (left, right, "b")
    assert state.record(left, right, "tie") == (left, right, "tie")
    assert state.votes == [(left, right, "b"), (left, right, "tie")]


def test_a_side_that_is_not_left_right_or_tie_is_refused_naming_it():
    state = ArenaState({"r1": "x", "r2": "y"})
    with pytest.raises(ValidationError, match="side") as err:
        state.record("r1", "r2", "a")
    assert "'left', 'right' or 'tie'" in str(err.value)
    with pytest.raises(ValidationError, match="pair"):
        state.record("r1", "r9", "left")
    assert state.votes == []


def test_takes_rotate_no_pair_of_runs_again_before_the_others():
    state = ArenaState(_takes(2, 3), rng=5)  # 2 options × 3 takes: 9 pairs of runs across the options
    seen = []
    for _ in range(9):
        left, right = state.pair()
        seen.append(frozenset((left, right)))
        state.record(left, right, "left")
    assert len(set(seen)) == 9
    shown = Counter(run for pair in seen for run in pair)
    assert set(shown.values()) == {3}  # every take shown as often


def test_two_takes_of_one_option_never_meet_and_one_option_has_no_pair():
    state = ArenaState(_takes(3, 2), rng=0)
    for _ in range(12):
        left, right = state.pair()
        assert state.option_of[left] != state.option_of[right]
        state.record(left, right, "tie")
    lonely = ArenaState({"r1": "only", "r2": "only"})
    assert not lonely.can_vote and lonely.pair() is None
    assert lonely.progress() == {"votes": 0, "round": 1, "size": 0, "left": 0}


def test_the_judge_never_gets_a_pair_of_takes_twice_and_runs_out():
    state = ArenaState(_takes(3, 2), rng=2)  # 12 pairs of takes across options
    asked: set[frozenset[str]] = set()
    while (pair := state.pair(exclude=asked)) is not None:
        assert frozenset(pair) not in asked
        asked.add(frozenset(pair))
        state.votes.append((*pair, "a"))
    assert len(asked) == 12


def test_a_vote_taken_back_makes_its_pair_due_again():
    state = ArenaState(_takes(3, 1), rng=random.Random(2))
    left, right = state.pair()
    vote = state.record(left, right, "left")
    assert state.progress()["left"] == 2
    state.unrecord(vote)
    assert state.votes == [] and state.progress() == {"votes": 0, "round": 1, "size": 3, "left": 3}
    with pytest.raises(ValidationError, match="vote"):
        state.unrecord(vote)  # nothing of it is left to take back


def test_votes_on_runs_outside_the_arena_are_left_out():
    state = ArenaState({"r1": "x", "r2": "y"}, [("r1", "elsewhere", "a"), ("r1", "r2", "b"), ("r1", "r1", "a")])
    assert state.votes == [("r1", "r2", "b")]


def test_counter_text():
    assert counter_text({"votes": 1, "round": 1, "size": 3, "left": 2}) == "1 vote so far · round 1: 2 of 3 pairs left"
    assert counter_text({"votes": 4, "round": 2, "size": 1, "left": 1}, judge_votes=3) == \
        "4 votes so far · round 2: 1 of 1 pair left · the judge: 3 votes"


# -- tables and plots from known frames ----------------------------------------------------------------------------

def _known() -> pd.DataFrame:
    return pd.DataFrame({"option": ["night", "fog", "noon"], "strength": [2.5, -0.7, -1.8],
                         "lo": [1.9, -1.4, -math.inf], "hi": [math.inf, 0.2, -0.9], "wins": [6, 2, 0],
                         "losses": [0, 3, 5], "ties": [0, 1, 1], "votes": [6, 6, 6]})


def test_the_ranking_table_shows_open_ends_and_keeps_the_numbers():
    frame = tables.RankingFrame(_known())
    frame.attrs.update(by="prompt", votes=9, level=0.95, bootstrap=500)
    shown = frame._repr_html_()
    assert "[+1.90, open]" in shown and "[open, -0.90]" in shown and "[-1.40, +0.20]" in shown
    assert "95% interval" in shown and "by prompt · 9 votes · strongest first" in shown
    assert "open: no vote bounds that end" in shown
    assert frame["hi"].iloc[0] == math.inf  # the frame keeps inf; only the display says "open"
    assert tables.interval(float("nan"), float("nan")) == "—"
    assert "No votes to rank yet" in tables.RankingFrame(_known().iloc[0:0])._repr_html_()


def test_the_ranking_table_escapes_options_and_voters():
    df = _known().assign(option=["<b>x</b>", "y", "z"])
    df.insert(0, "voter", ["<i>me</i>", "me", "me"])
    shown = tables.RankingFrame(df)._repr_html_()
    assert "<b>x</b>" not in shown and "<i>me</i>" not in shown and "&lt;b&gt;x&lt;/b&gt;" in shown


def test_plot_ranking_from_a_known_frame():
    from matplotlib.patches import FancyArrowPatch

    fig = plots.plot_ranking(_known(), theme="dark")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["night", "fog", "noon"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # the strongest on top
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)] + \
             [c.arrow_patch for c in ax.texts if getattr(c, "arrow_patch", None) is not None]
    assert len(arrows) == 2  # night's open top, noon's open bottom
    left, right = ax.get_xlim()
    tips = sorted(round(a.xy[0], 6) for a in ax.texts if getattr(a, "arrow_patch", None) is not None)
    assert tips == [round(left, 6), round(right, 6)]
    assert fig._repr_png_().startswith(b"\x89PNG")


def test_plot_ranking_draws_each_voter_side_by_side():
    people = _known().assign(voter="ann")
    judge = _known().assign(voter="judge:grok-4.3", strength=[1.0, 0.5, -1.5])
    fig = plots.plot_ranking(pd.concat([people, judge], ignore_index=True))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ann", "judge:grok-4.3"]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(dots) == 6 and len({round(line.get_ydata()[0], 3) for line in dots}) == 6  # offset, not overlaid
    with pytest.raises(ValidationError, match="frame"):
        plots.plot_ranking(pd.DataFrame({"option": ["a"]}))
    empty = plots.plot_ranking(_known().iloc[0:0])
    assert any(t.get_text() == "no votes yet" for t in empty.axes[0].texts)


def test_the_ledger_shows_judge_costs_apart_and_still_adds_up():
    line = tables.ledger(BudgetSnapshot(5.0, 2.1584, 0.5, judge_usd=0.0084))
    assert line.replace(tables.NBSP, " ") == ("budget $5.00: $2.16 spent + $0.50 reserved + $2.34 left "
                                              "(spent: $2.15 video + $0.0084 judge)")
    assert tables.ledger(BudgetSnapshot(5.0, 2.16, 0.5)).replace(tables.NBSP, " ") == \
        "budget $5.00: $2.16 spent + $0.50 reserved + $2.34 left"  # no judge calls: the line as before
    money = re.search(r"budget \$([\d.]+): \$([\d.]+) spent \+ \$([\d.]+) reserved \+ \$([\d.]+) left",
                      line.replace(tables.NBSP, " "))
    limit, spent, held, left = (float(g) for g in money.groups())
    assert abs(spent + held + left - limit) < 0.005


def test_judge_progress_line():
    shown = tables.judge_progress_html(3, 9, [("A fox", "not JSON"), *[("B", "x")] * 5], 0.0123,
                                       money="budget $5.00: …").replace(tables.NBSP, " ")
    assert "3 of 9 judged · 6 failed" in shown and "judge calls $0.01 so far" in shown and "A fox" in shown
    assert "not JSON" in shown and "and 2 more" in shown and 'aria-valuenow="3"' in shown


# -- with the simulator ----------------------------------------------------------------------------------------------

def _grid(studio, prompts, **kw):
    grid = studio.compare(prompt=prompts, duration=1, display=False, **kw)
    grid.wait()
    return grid


@pytest.mark.slow
def test_judge_a_grid_table_footers_history_and_money(studio):
    studio.client.budget.set_limit(5.0)
    grid = _grid(studio, ["A city street at night", "A sunny beach at noon",
                          "A storm at sea [sim:fail=internal_error]"])
    draws = grid.view.draws
    table = studio.judge(grid, NIGHT, display=False)
    assert list(table.columns) == ["run_id", "prompt", "score", "passed", "reason", "cost_usd", "cached"]
    assert list(table["run_id"]) == [r.run_id for r in grid.runs]
    night, noon, failed = (table.iloc[i] for i in range(3))
    assert night["score"] > noon["score"]  # the simulated judge sees the night clip is darker
    assert failed["reason"].startswith("not judged: failed") and math.isnan(failed["score"])
    assert table["cost_usd"].iloc[:2].gt(0).all() and failed["cost_usd"] == 0
    # the grid's runs carry the scores for its footers, and the grid was drawn again
    assert grid.runs[0].extra["judge_score"] == night["score"] and grid.runs[0].extra["judge_passed"] is True
    assert "judge_score" not in grid.runs[2].extra
    assert grid.view.draws > draws
    # counted in spent_usd, apart from the videos, in every ledger line
    assert studio.client.judge_spent_usd == pytest.approx(table["cost_usd"].sum(), abs=1e-6)
    assert "judge)" in tables.ledger(studio.client.budget.snapshot())
    assert "judge)" in grid.view.summary()["text"]
    assert "2 scored by grok-4.3 · 1 not judged" in table.attrs["caption"]
    assert "2 scored" in table._repr_html_() and ">reason<" in table._repr_html_()
    # again: from the history, nothing sent, nothing spent
    spent = studio.client.spent_usd
    again = studio.judge(grid, NIGHT, display=False)
    assert again["cached"].iloc[:2].all() and again["cost_usd"].sum() == 0 and studio.client.spent_usd == spent
    # judged under the default rubric, the history's judge columns say the same
    default = studio.judge([grid.runs[0]], display=False)
    row = studio.history().set_index("run_id").loc[grid.runs[0].run_id]
    assert row["judge_score"] == pytest.approx(default["score"].iloc[0]) and row["judge_cost_usd"] > 0


@pytest.mark.slow
def test_a_failed_judgement_has_no_score_and_says_why_in_the_cell(studio, sim, monkeypatch):
    from grok_nb.notebook import studio as studio_module

    shown: list[str] = []

    class Handle:
        def update(self, obj):
            shown.append(obj.data)

    def display(obj, display_id=None, **_kw):
        shown.append(obj.data)
        return Handle()

    monkeypatch.setattr(studio_module, "_in_kernel", lambda: True)
    monkeypatch.setattr(studio_module.ipd, "display", display)
    grid = _grid(studio, ["A fox at dusk", "A boat at noon"])
    sim.config.judge_answer = "not_json"
    table = studio.judge(grid, "Is it dark?")
    assert table["score"].isna().all() and table["passed"].isna().all()
    assert all("JSON" in r for r in table["reason"]), list(table["reason"])
    assert all(r.extra["judge_score"] is None for r in grid.runs)
    last = shown[-1]
    assert "2 of 2 judged · 2 failed" in last and "A fox at dusk" in last and "JSON" in last
    assert "judge calls $" in last


@pytest.mark.slow
def test_judge_refuses_bad_input_before_sending(studio, sim):
    grid = _grid(studio, ["A fox", "A boat"])
    before = sum(1 for m, p, _ in sim.simulator.requests if p.startswith("/v1/responses"))
    with pytest.raises(ValidationError, match="frames"):
        studio.judge(grid, frames=0, display=False)
    with pytest.raises(ValidationError, match="runs"):
        studio.judge(42, display=False)
    with pytest.raises(ValidationError, match=r"runs\[1\]"):
        studio.judge([grid.runs[0], "no-such-run"], display=False)
    with pytest.raises(ValidationError, match="runs"):
        studio.judge("an experiment nobody ran", display=False)
    assert sum(1 for m, p, _ in sim.simulator.requests if p.startswith("/v1/responses")) == before


@pytest.mark.slow
def test_the_arena_records_each_vote_as_shown_and_moves_on(studio):
    with studio.experiment("arena-test"):
        grid = _grid(studio, ["A city street at night", "A sunny beach at noon", "A harbour in fog"])
    arena = studio.arena(grid, voter="ann", seed=4, display=False)
    assert arena.by == "prompt" and arena.experiment == "arena-test"
    assert arena.widget.counter["text"] == "0 votes so far · round 1: 3 of 3 pairs left"
    # the view gets no parameter: only sources, posters and shapes
    assert set(arena.widget.left) == {"src", "poster", "width", "height"}
    assert "night" not in str(arena.widget.left) + str(arena.widget.right) + arena.static_html().split("·")[0]
    expected = []
    sent: list[set[str]] = []  # the keys of each state message the view gets
    arena.widget.send_state = lambda key=None: sent.append({key} if isinstance(key, str) else set(key or ()))
    for side in ("left", "right", "tie"):
        left, right = arena.pair
        token = arena.widget.pair
        sent.clear()
        arena._on_msg(None, {"type": "vote", "side": side, "pair": token}, None)
        # the next pair, the count and the answer reach the view in one message: when the count shows, the keys work
        assert len(sent) == 1 and {"pair", "counter", "answered"} <= sent[0], sent
        arena._on_msg(None, {"type": "vote", "side": side, "pair": token}, None)  # a second press: ignored
        expected.append((left.run_id, right.run_id, {"left": "a", "right": "b", "tie": "tie"}[side]))
        assert arena.widget.pair != token and arena.widget.message == ""
    votes = studio.client.votes("arena-test")
    assert list(zip(votes["a"], votes["b"], votes["winner"], strict=True)) == expected
    assert set(votes["voter"]) == {"ann"}
    assert arena.widget.counter["text"] == "3 votes so far · round 2: 3 of 3 pairs left"
    assert "3 votes by ann" in arena.static_html()
    # a bad side says so in the arena, records nothing
    arena._on_msg(None, {"type": "vote", "side": "up", "pair": arena.widget.pair}, None)
    assert "side" in arena.widget.message and len(studio.client.votes("arena-test")) == 3
    # a new arena on the same runs continues the round (no pair again before the others)
    again = studio.arena(grid, voter="ann", display=False)
    assert again.state.progress()["votes"] == 3
    # the default voter is this user
    mine = studio.arena(grid, display=False)
    mine.vote("tie")
    assert studio.client.votes("arena-test")["voter"].iloc[-1] == grok_nb.history.owners.current_user()
    shown = arena.votes()._repr_html_()
    assert "A city street at night" in shown and ">left (a)<" in shown and "ann" in shown


@pytest.mark.slow
def test_undo_takes_the_last_vote_back_and_shows_its_pair_again(studio):
    with studio.experiment("arena-undo"):
        grid = _grid(studio, ["A city street at night", "A sunny beach at noon", "A harbour in fog"])
    arena = studio.arena(grid, voter="bo", seed=5, display=False)
    assert arena.widget.counter["can_undo"] is False
    with pytest.raises(ValidationError, match="undo.*none to take back"):
        arena.undo()
    first = arena.pair
    arena.vote("left")
    second, token = arena.pair, arena.widget.pair
    assert arena.widget.counter["can_undo"] is True
    arena._on_msg(None, {"type": "vote", "side": "right", "pair": token}, None)  # a mis-click
    answered = arena.widget.answered
    arena._on_msg(None, {"type": "undo"}, None)  # Backspace
    assert arena.widget.answered == answered + 1 and arena.widget.message == ""
    assert arena.pair == second and arena.widget.pair != token  # shown again, sides as they were
    votes = studio.client.votes("arena-undo")
    assert list(zip(votes["a"], votes["b"], votes["winner"], strict=True)) == [(first[0].run_id, first[1].run_id, "a")]
    assert arena.widget.counter["text"].startswith("1 vote so far") and arena.widget.counter["can_undo"] is True
    arena.vote("tie")  # voted again, as meant
    assert list(studio.client.votes("arena-undo")["winner"]) == ["a", "tie"]
    arena.undo()
    arena.undo()
    assert len(studio.client.votes("arena-undo")) == 0 and arena.pair == first
    assert arena.widget.counter["can_undo"] is False and arena.state.progress()["votes"] == 0
    arena._on_msg(None, {"type": "undo"}, None)  # nothing left: said in the arena, nothing deleted
    assert "none to take back" in arena.widget.message
    cast = arena.vote("right")  # taken back elsewhere first: the arena's undo forgets it all the same
    studio.client.delete_vote(cast)
    assert arena.undo()["vote_id"] == cast["vote_id"] and arena.widget.counter["can_undo"] is False
    assert arena.pair == first and arena.state.progress()["votes"] == 0
    # the client: a vote, or its id, is taken back once; an unknown one is refused naming it
    vote = studio.client.vote(first[0], first[1], "b", voter="bo", experiment="arena-undo")
    assert studio.client.delete_vote(vote)["vote_id"] == vote["vote_id"]
    with pytest.raises(ValidationError, match=f"vote.*{vote['vote_id']}.*nothing was deleted"):
        studio.client.delete_vote(vote["vote_id"])
    with pytest.raises(ValidationError, match="vote_id"):
        studio.client.delete_vote(42)


@pytest.mark.slow
def test_the_judge_votes_in_the_arena_as_its_own_voter(studio):
    grid = _grid(studio, ["A city street at night", "A sunny beach at noon"], takes=2)
    arena = studio.arena(grid, experiment="auto", display=False)
    first = arena.auto(rubric=NIGHT, pairs=2)
    assert len(first) == 2 and set(first["voter"]) == {"judge:grok-4.3"} and first["winner"].notna().all()
    for _, row in first.iterrows():  # the darker clip wins
        night_side = "a" if "night" in row["option_a"] else "b"
        assert row["winner"] == night_side
    assert len(arena.auto(rubric=NIGHT)) == 1  # by default one round: here, the one pair of prompts
    rest = arena.auto(rubric=NIGHT, pairs=5)  # the last of the 4 pairs of takes; none asked twice
    assert len(rest) == 1 and "every pair it can tell apart has been asked" in rest.attrs["caption"]
    votes = arena.votes()
    assert len(votes) == 4 and len({frozenset(p) for p in zip(votes["a"], votes["b"], strict=True)}) == 4
    assert arena.auto(rubric=NIGHT).empty
    assert arena.judge_votes == 4 and "the judge: 4 votes" in arena.widget.counter["text"]
    ranked = studio.ranking(grid, voter="judge:grok-4.3")
    assert list(ranked["option"]) == ["A city street at night", "A sunny beach at noon"]
    assert ranked["hi"].iloc[0] == math.inf and "open" in ranked._repr_html_()


@pytest.mark.slow
def test_ranking_by_any_axis_pooled_or_per_voter(studio):
    grid = _grid(studio, ["A fox", "A boat"], resolution=["480p", "720p"])
    fox480, fox720, boat480, boat720 = grid.runs
    client = studio.client
    client.vote(fox720, fox480, "a", voter="ann")
    client.vote(boat720, boat480, "a", voter="ann")
    client.vote(fox480, boat720, "b", voter="bob")
    by_resolution = studio.ranking(grid, by="resolution")
    assert list(by_resolution["option"]) == ["720p", "480p"] and by_resolution.attrs["votes"] == 3
    split = studio.ranking(grid, by="resolution", compare_voters=True)
    assert list(split["voter"].unique()) == ["ann", "bob"]
    assert studio.ranking(grid, by="prompt", voter="ann").empty  # ann only compared takes of one prompt
    assert list(studio.ranking(None, by="resolution")["option"]) == ["720p", "480p"]
    with pytest.raises(ValidationError, match="by"):
        studio.ranking(grid, by="flavour")
    fig = studio.plot_ranking(grid, by="resolution")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["ann", "bob"]
    one = studio.plot_ranking(grid, by="resolution", voter="ann")
    assert one.axes[0].get_legend() is None
    assert np.isfinite(split["strength"]).all()
