"""Bradley–Terry ranking of blind pairwise votes: recovers known strengths, honest intervals, the edge cases,
and the choice of the next pair."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pandas as pd
import pytest

from grok_nb.errors import ValidationError
from grok_nb.jobs import ranking as rk
from grok_nb.jobs.ranking import COLUMNS, fit_strengths, next_pair, ranking, read_votes

TRUE = np.array([-1.5, -0.8, -0.2, 0.3, 0.7, 1.5])
TRUE = TRUE - TRUE.mean()
PAIRS = list(itertools.combinations(range(len(TRUE)), 2))


def simulate(rng: np.random.Generator, n_votes: int = 600) -> list[tuple[str, str, str]]:
    """Votes on uniformly drawn pairs, each won with the Bradley–Terry probability of the true strengths."""
    votes = []
    for k in rng.integers(0, len(PAIRS), n_votes):
        i, j = PAIRS[k]
        if rng.random() < 0.5:
            i, j = j, i
        p_a = 1 / (1 + math.exp(TRUE[j] - TRUE[i]))
        votes.append((f"o{i}", f"o{j}", "a" if rng.random() < p_a else "b"))
    return votes


def spearman(x, y) -> float:
    rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
    return float(np.corrcoef(rx, ry)[0, 1])


def measure(draws: int, bootstrap: int, seed: int) -> tuple[float, float, float]:
    """Mean and least rank correlation with the truth, and the intervals' coverage of the true centred strengths."""
    rng = np.random.default_rng(seed)
    rhos, covered = [], 0
    for d in range(draws):
        table = ranking(simulate(rng), seed=d, bootstrap=bootstrap).set_index("option")
        names = [f"o{k}" for k in range(len(TRUE))]
        rhos.append(spearman(table.loc[names, "strength"].to_numpy(), TRUE))
        covered += sum(table.lo[n] <= t <= table.hi[n] for n, t in zip(names, TRUE, strict=True))
    return float(np.mean(rhos)), float(min(rhos)), covered / (draws * len(TRUE))


@pytest.mark.parametrize(("draws", "bootstrap", "least_coverage"), [
    (8, 200, 0.8),  # the quick loop's version
    pytest.param(40, 400, 0.85, marks=pytest.mark.slow),  # 240 intervals: about 95 % should cover
])
def test_recovers_known_strengths_with_intervals_that_cover_them(draws, bootstrap, least_coverage):
    rho, worst, coverage = measure(draws=draws, bootstrap=bootstrap, seed=2026 + draws)
    print(f"\nranking, {draws} draws x 600 votes x 6 options, {bootstrap} refits: mean Spearman {rho:.3f} "
          f"(least {worst:.3f}), coverage of the true strengths {coverage:.3f}")
    assert worst >= 0.9
    assert least_coverage <= coverage <= 1.0


def test_one_draw_ranks_in_the_true_order_with_centred_strengths():
    table = ranking(simulate(np.random.default_rng(3)), bootstrap=100)
    assert list(table.columns) == COLUMNS
    assert spearman(table.set_index("option").loc[[f"o{k}" for k in range(6)], "strength"].to_numpy(), TRUE) >= 0.9
    assert table.strength.is_monotonic_decreasing
    assert abs(table.strength.mean()) < 1e-9
    assert (table.lo <= table.strength).all() and (table.strength <= table.hi).all()
    assert (table.votes == table.wins + table.losses + table.ties).all()
    assert table.votes.sum() == 2 * 600


def test_the_fit_is_the_maximum_of_the_penalized_likelihood():
    """Stationary point of the strictly concave objective: the gradient vanishes, so it is the one maximum."""
    wins = np.array([[0, 7, 3.5], [2, 0, 6], [1.5, 1, 0]])
    s, hessian = fit_strengths(wins, alpha=0.01)
    total = wins + wins.T
    p = 1 / (1 + np.exp(-(s[:, None] - s[None, :])))
    gradient = (wins - total * p).sum(axis=1) - 0.01 * s
    assert np.abs(gradient).max() < 1e-8
    assert np.all(np.linalg.eigvalsh(hessian) < 0)
    # a stack is fitted like each of its matrices alone
    stacked, _ = fit_strengths(np.stack([wins, wins.T]), alpha=0.01)
    assert np.allclose(stacked[0], s) and np.allclose(stacked[1], fit_strengths(wins.T)[0])


def test_deterministic_for_a_seed():
    votes = simulate(np.random.default_rng(4), 120)
    pd.testing.assert_frame_equal(ranking(votes, seed=9), ranking(votes, seed=9))
    assert not ranking(votes, seed=9).lo.equals(ranking(votes, seed=10).lo)


def test_an_option_that_won_every_vote_is_finite_with_an_open_interval():
    votes = [("champ", "x", "a"), ("y", "champ", "b"), ("champ", "y", "a"), ("x", "y", "a"), ("y", "x", "a"),
             ("x", "y", "tie")]
    table = ranking(votes).set_index("option")
    assert math.isfinite(table.strength["champ"]) and table.strength["champ"] == table.strength.max()
    assert table.hi["champ"] == math.inf and math.isfinite(table.lo["champ"])
    assert math.isfinite(table.hi["x"]) and math.isfinite(table.hi["y"])
    assert table.loc["champ", ["wins", "losses", "ties", "votes"]].tolist() == [3, 0, 0, 3]


def test_an_option_that_lost_every_vote_has_no_lower_bound():
    table = ranking([("a1", "z", "a"), ("z", "b1", "b"), ("a1", "b1", "a"), ("b1", "a1", "a")]).set_index("option")
    assert table.lo["z"] == -math.inf and math.isfinite(table.strength["z"])
    assert table.strength["z"] == table.strength.min()


def test_a_tie_is_half_a_win_each():
    ties = ranking([("p", "q", "tie")] * 4 + [("p", "r", "a")] * 3 + [("r", "q", "b")] * 3, bootstrap=0)
    halves = ranking([("p", "q", "a"), ("q", "p", "a")] * 2 + [("p", "r", "a")] * 3 + [("r", "q", "b")] * 3,
                     bootstrap=0)
    t, h = ties.set_index("option"), halves.set_index("option")
    assert np.allclose(t.strength.sort_index(), h.strength.sort_index())
    assert t.loc["p", ["wins", "losses", "ties"]].tolist() == [3, 0, 4]
    assert t.strength["p"] == pytest.approx(t.strength["q"])  # even against each other, both beat r
    # tied, p and q are one group that r never beat: open upwards together; r open downwards
    assert t.hi["p"] == t.hi["q"] == math.inf and t.lo["r"] == -math.inf
    assert np.isnan(t.lo["p"]) and np.isnan(t.hi["r"])  # bootstrap=0: no interval where one could be finite
    bounded = ranking([("p", "q", "tie")] * 4 + [("p", "r", "a")] * 3 + [("r", "q", "b")] * 3).set_index("option")
    assert math.isfinite(bounded.lo["p"]) and math.isfinite(bounded.hi["r"])


def test_no_votes_gives_an_empty_frame_with_the_columns():
    for empty in ([], pd.DataFrame({"a": [], "b": [], "winner": []})):
        table = ranking(empty)
        assert table.empty and list(table.columns) == COLUMNS


@pytest.mark.parametrize("winner", ["A", "left", "", None, 1, "tie "])
def test_a_winner_other_than_a_b_or_tie_is_refused(winner):
    with pytest.raises(ValidationError) as err:
        ranking([("x", "y", "a"), ("x", "y", winner)])
    assert err.value.field == "votes[1].winner"
    assert "'a', 'b' or 'tie'" in str(err.value)


def test_other_bad_votes_are_refused_by_name():
    with pytest.raises(ValidationError, match=r"votes\[0\]\.b"):
        ranking([("x", "x", "a")])
    with pytest.raises(ValidationError, match=r"votes\[0\]\.a"):
        ranking([(None, "x", "a")])
    with pytest.raises(ValidationError, match="columns a, b and winner"):
        ranking(pd.DataFrame({"left": ["x"], "right": ["y"], "winner": ["a"]}))
    with pytest.raises(ValidationError, match=r"votes\[0\]"):
        ranking([{"a": "x", "winner": "a"}])


def test_votes_from_a_table_or_mappings_and_ranked_by_a_mapping():
    frame = pd.DataFrame({"a": ["r1", "r2", "r3", "r1"], "b": ["r3", "r4", "r2", "r2"],
                          "winner": ["a", "b", "tie", "a"]})
    assert read_votes(frame) == read_votes(frame.to_dict("records"))
    model = {"r1": "m1", "r2": "m1", "r3": "m2", "r4": "m2"}
    by_model = read_votes(frame, by=model)
    assert by_model == [("m1", "m2", "a"), ("m1", "m2", "b"), ("m2", "m1", "tie")]  # r1 v r2: same model, left out
    assert read_votes(frame, by=pd.Series(model)) == by_model == read_votes(frame, by=model.get)
    assert set(ranking(frame, by=model).option) == {"m1", "m2"}
    with pytest.raises(ValidationError, match=r"votes\[1\]\.b"):
        read_votes(frame, by={"r1": "m1", "r2": "m1", "r3": "m2"})


def test_next_pair_shows_every_pair_before_repeating_one():
    options = ["v1", "v2", "v3", "v4", "v5"]
    pairs = list(itertools.combinations(options, 2))
    votes: list[tuple[str, str, str]] = []
    rng = random.Random(1)
    truth = {o: i for i, o in enumerate(options)}
    for round_ in range(3):
        shown = set()
        for _ in pairs:
            a, b = next_pair(options, votes, rng)
            key = frozenset((a, b))
            assert key not in shown, f"{a} v {b} repeated in round {round_} before every pair was seen"
            shown.add(key)
            votes.append((a, b, "a" if truth[a] > truth[b] else "b"))
        assert len(shown) == len(pairs)


def test_next_pair_prefers_the_least_certain_pair():
    # every pair seen twice; s1 and s2 split their votes, s0 always loses to everyone: s1 v s2 is the open question
    votes = [("s1", "s2", "a"), ("s2", "s1", "a")] + [(x, "s0", "a") for x in ("s1", "s2") for _ in range(2)]
    for seed in range(10):
        assert set(next_pair(["s0", "s1", "s2"], votes, seed)) == {"s1", "s2"}
    # with no votes every pair is as uncertain: the choice and the sides vary with the rng
    firsts = {next_pair(["s0", "s1", "s2"], [], np.random.default_rng(seed)) for seed in range(30)}
    assert len({frozenset(p) for p in firsts}) == 3 and len(firsts) > 3


def test_next_pair_refuses_too_few_options_and_a_bad_rng():
    with pytest.raises(ValidationError, match="options"):
        next_pair(["only"], [])
    with pytest.raises(ValidationError, match="rng"):
        next_pair(["a", "b"], [], rng="seed")


def test_unbounded_groups():
    # {p, q} beat {r} and never lost to it; p and q split: p, q open upwards, r downwards
    wins = np.array([[0, 1, 2], [1, 0, 2], [0, 0, 0]], dtype=float)
    up, down = rk._unbounded(wins)
    assert up.tolist() == [True, True, False] and down.tolist() == [False, False, True]
    connected = np.array([[0, 1, 2], [1, 0, 2], [1, 0, 0]], dtype=float)
    assert not rk._unbounded(connected)[0].any() and not rk._unbounded(connected)[1].any()
