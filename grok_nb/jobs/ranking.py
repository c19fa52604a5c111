"""A blind arena's ranking: Bradley–Terry strengths from pairwise votes, bootstrap intervals, and the next pair to show.

Each vote says which of two options (``a`` and ``b``) won, or ``tie``. The Bradley–Terry model gives
each option a strength ``s`` on the natural-log scale with P(a beats b) = 1 / (1 + exp(s_b - s_a)); a
tie counts as half a win for each side. Strengths are fitted by maximum likelihood with a small L2
prior (``alpha / 2 * sum(s**2)``), which keeps an option that won every vote finite and centres the
strengths on their mean (the prior's optimum has mean zero, since every vote's gradient sums to zero).

The fit works on the matrix of (half-)wins, so a bootstrap's refits are fitted together as one stack
by Newton's method (numpy). ``choix.opt_pairwise`` fits the same penalized model but takes (winner,
loser) pairs only (a tie would be two duplicated votes) and loops over the votes in Python: about
45 ms for 600 votes on this project's machines, so 500 refits would take some 20 s against well
under a second here.

Pure: no I/O. numpy and pandas are imported when votes are ranked.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

WINNERS = ("a", "b", "tie")
COLUMNS = ["option", "strength", "lo", "hi", "wins", "losses", "ties", "votes"]
#: The L2 prior's weight: small beside the information of a few votes, large enough to keep every strength finite.
DEFAULT_ALPHA = 0.01
DEFAULT_BOOTSTRAP = 500
_NEWTON_STEPS = 100
_NEWTON_TOL = 1e-9

Vote = tuple[Hashable, Hashable, str]


def read_votes(votes: Any, by: Any = None) -> list[Vote]:
    """Votes as (option a, option b, winner) triples, from a DataFrame with columns ``a``, ``b``, ``winner``,
    or from mappings with those keys, or from (a, b, winner) tuples.

    ``by`` maps what ``a`` and ``b`` hold to the option ranked (a mapping, a pandas Series or a function, e.g.
    run id → model); a vote whose two sides map to the same option is left out. A winner other than
    ``"a"``, ``"b"`` or ``"tie"``, or a vote of an option against itself, raises ValidationError naming it.
    """
    if by is not None and (isinstance(by, (str, bytes)) or not (callable(by) or hasattr(by, "__getitem__"))):
        raise ValidationError("by", by, "a mapping or function from what a vote's a and b hold to the option ranked")
    rows: Iterable[Any]
    if hasattr(votes, "columns") and hasattr(votes, "itertuples"):  # a pandas DataFrame
        missing = [c for c in ("a", "b", "winner") if c not in votes.columns]
        if missing:
            raise ValidationError("votes", list(votes.columns), "a table with columns a, b and winner")
        rows = votes[["a", "b", "winner"]].itertuples(index=False, name=None)
    elif isinstance(votes, (str, bytes)) or not isinstance(votes, Iterable):
        raise ValidationError("votes", votes, "a table or list of votes, each with a, b and winner")
    else:
        rows = votes
    out: list[Vote] = []
    for i, row in enumerate(rows):
        if isinstance(row, Mapping):
            try:
                a, b, winner = row["a"], row["b"], row["winner"]
            except KeyError:
                raise ValidationError(f"votes[{i}]", row, "a vote with keys a, b and winner") from None
        elif isinstance(row, Sequence) and not isinstance(row, (str, bytes)) and len(row) == 3:
            a, b, winner = row
        else:
            raise ValidationError(f"votes[{i}]", row, "a vote: (a, b, winner) or a mapping with those keys")
        if not isinstance(winner, str) or winner not in WINNERS:
            raise ValidationError(f"votes[{i}].winner", winner, "'a', 'b' or 'tie'")
        for side, value in (("a", a), ("b", b)):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                raise ValidationError(f"votes[{i}].{side}", value, "the option shown on that side")
        if by is not None:
            a, b = _option(by, a, f"votes[{i}].a"), _option(by, b, f"votes[{i}].b")
            if a == b:
                continue  # two runs of the same option: says nothing about the options ranked
        elif a == b:
            raise ValidationError(f"votes[{i}].b", b, "an option other than a (a vote compares two)")
        out.append((a, b, winner))
    return out


def _option(by: Any, value: Any, field: str) -> Hashable:
    try:
        option = by(value) if callable(by) else by[value]
    except (KeyError, IndexError):
        raise ValidationError(field, value, "a value that `by` maps to an option") from None
    if option is None or (isinstance(option, float) and math.isnan(option)):
        raise ValidationError(field, value, "a value that `by` maps to an option (it maps to nothing)")
    return option  # type: ignore[no-any-return]


def _index(votes: list[Vote], options: Sequence[Hashable] | None = None) -> tuple[list[Hashable], np.ndarray]:
    """The options (given, else in order of first appearance) and the wins matrix W[i, j] (ties half each)."""
    import numpy as np  # numpy, a heavy import: loaded only when votes are ranked

    names: list[Hashable] = list(dict.fromkeys(options)) if options is not None else \
        list(dict.fromkeys(x for a, b, _ in votes for x in (a, b)))
    where = {name: i for i, name in enumerate(names)}
    wins = np.zeros((len(names), len(names)))
    for a, b, winner in votes:
        if a not in where or b not in where:
            continue
        i, j = where[a], where[b]
        if winner == "a":
            wins[i, j] += 1
        elif winner == "b":
            wins[j, i] += 1
        else:
            wins[i, j] += 0.5
            wins[j, i] += 0.5
    return names, wins


def fit_strengths(wins: np.ndarray, alpha: float = DEFAULT_ALPHA) -> tuple[np.ndarray, np.ndarray]:
    """Bradley–Terry strengths (centred) and the Hessian of the penalized log-likelihood at them.

    ``wins`` is (n, n) or a stack (B, n, n) of win counts, ``wins[i, j]`` the (half-)wins of i over j; every
    matrix of a stack is fitted at once by Newton's method with a halving line search (the objective is
    strictly concave, so it converges to the one maximum).
    """
    import numpy as np  # numpy, a heavy import: loaded only when votes are ranked

    if not alpha > 0:
        raise ValidationError("alpha", alpha, "a positive prior weight (it keeps every strength finite)")
    stack = np.asarray(wins, dtype=float)
    single = stack.ndim == 2
    if single:
        stack = stack[None]
    batch, n, _ = stack.shape
    total = stack + stack.transpose(0, 2, 1)
    eye = np.eye(n)

    def objective(s: np.ndarray) -> np.ndarray:
        diff = s[:, :, None] - s[:, None, :]
        value: np.ndarray = -(stack * np.logaddexp(0.0, -diff)).sum(axis=(1, 2)) - 0.5 * alpha * (s * s).sum(axis=1)
        return value

    s = np.zeros((batch, n))
    value = objective(s)
    hessian = -alpha * np.broadcast_to(eye, (batch, n, n)).copy()
    for _ in range(_NEWTON_STEPS):
        diff = s[:, :, None] - s[:, None, :]
        p = 0.5 * (1.0 + np.tanh(0.5 * diff))  # the logistic function, without overflow
        gradient = (stack - total * p).sum(axis=2) - alpha * s
        weight = total * p * (1.0 - p)
        hessian = weight - weight.sum(axis=2)[:, :, None] * eye - alpha * eye
        step = np.linalg.solve(hessian, gradient[:, :, None])[:, :, 0]  # s - step is the Newton point
        t = np.ones(batch)
        for _ in range(40):
            candidate = s - t[:, None] * step
            new_value = objective(candidate)
            worse = new_value < value - 1e-12
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
        s, value = candidate, new_value
        if np.abs(t[:, None] * step).max() < _NEWTON_TOL:
            break
    s = s - s.mean(axis=1, keepdims=True)
    return (s[0], hessian[0]) if single else (s, hessian)


def _unbounded(wins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per option: its likelihood has no finite maximum upwards (no option outside its group ever beat or tied
    one of the group) and downwards (the group never beat or tied an outsider). Groups are the strongly
    connected components of the graph i → j when i beat or tied j."""
    import numpy as np  # numpy, a heavy import: loaded only when votes are ranked

    n = len(wins)
    reach = (wins > 0) | np.eye(n, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(max(n, 2))))):  # transitive closure by squaring
        reach = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
    group = reach & reach.T
    outside = ~group
    up = np.array([outside[i].any() and not (wins[outside[i]][:, group[i]] > 0).any() for i in range(n)])
    down = np.array([outside[i].any() and not (wins[group[i]][:, outside[i]] > 0).any() for i in range(n)])
    return up, down


def ranking(votes: Any, by: Any = None, *, alpha: float = DEFAULT_ALPHA, bootstrap: int = DEFAULT_BOOTSTRAP,
            level: float = 0.95, seed: int | None = 0) -> pd.DataFrame:
    """One row per option, strongest first: ``option``, ``strength``, ``lo``, ``hi``, ``wins``, ``losses``,
    ``ties``, ``votes``.

    ``strength`` is the Bradley–Terry strength (natural-log scale, centred on the mean, see the module's
    docstring). ``lo`` and ``hi`` bound a ``level`` interval from ``bootstrap`` refits on the votes drawn again
    with replacement (percentiles). An option (or group of options) that no other ever beat or tied keeps a
    finite, regularized strength and ``hi = inf``; one that never beat or tied another, ``lo = -inf``. No votes:
    an empty frame with these columns. Deterministic for a given ``seed``.
    """
    import numpy as np  # numpy and pandas, heavy imports: loaded only when votes are ranked
    import pandas as pd

    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int) or bootstrap < 0:
        raise ValidationError("bootstrap", bootstrap, "a whole number of refits, 0 or more (0: no interval)")
    if not 0 < level < 1:
        raise ValidationError("level", level, "a coverage between 0 and 1, such as 0.95")
    read = read_votes(votes, by)
    if not read:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "option" else float) for c in COLUMNS})
    names, wins = _index(read)
    strength, _ = fit_strengths(wins, alpha)
    n = len(names)
    if bootstrap:
        where = {name: i for i, name in enumerate(names)}
        each = np.zeros((len(read), n * n))  # each vote's contribution to the flattened wins matrix
        for v, (a, b, winner) in enumerate(read):
            i, j = where[a], where[b]
            if winner == "tie":
                each[v, i * n + j] = each[v, j * n + i] = 0.5
            else:
                each[v, (i * n + j) if winner == "a" else (j * n + i)] = 1.0
        rng = np.random.default_rng(seed)
        draws = rng.multinomial(len(read), np.full(len(read), 1.0 / len(read)), size=bootstrap)
        refits, _ = fit_strengths((draws @ each).reshape(bootstrap, n, n), alpha)
        tail = (1.0 - level) / 2
        lo, hi = np.quantile(refits, tail, axis=0), np.quantile(refits, 1.0 - tail, axis=0)
    else:
        lo, hi = np.full(n, np.nan), np.full(n, np.nan)
    up, down = _unbounded(wins)
    hi = np.where(up, np.inf, hi)
    lo = np.where(down, -np.inf, lo)
    counts = {name: [0, 0, 0] for name in names}
    for a, b, winner in read:
        if winner == "tie":
            counts[a][2] += 1
            counts[b][2] += 1
        else:
            counts[a if winner == "a" else b][0] += 1
            counts[b if winner == "a" else a][1] += 1
    frame = pd.DataFrame({"option": pd.Series(names, dtype=object), "strength": strength, "lo": lo, "hi": hi,
                          "wins": [counts[x][0] for x in names], "losses": [counts[x][1] for x in names],
                          "ties": [counts[x][2] for x in names]})
    frame["votes"] = frame["wins"] + frame["losses"] + frame["ties"]
    order = sorted(range(n), key=lambda i: (-strength[i], str(names[i])))
    return frame.iloc[order].reset_index(drop=True)


def next_pair(options: Sequence[Hashable], votes: Any = (), rng: Any = None, *,
              alpha: float = DEFAULT_ALPHA) -> tuple[Hashable, Hashable]:
    """The next two options to show, in a random left/right order: the least certain of the pairs seen least.

    Pairs are taken in rounds (no pair is shown again before every other pair has been shown as often);
    within a round, the pair whose order is least certain comes first: the smallest difference of
    strengths in units of its standard error (from the fit's Hessian), so close or rarely compared pairs
    go first. Ties between pairs are broken by ``rng`` (a ``random.Random``, a numpy Generator or a seed).
    """
    import numpy as np  # numpy, a heavy import: loaded only when votes are ranked

    names = list(dict.fromkeys(options))
    if len(names) < 2:
        raise ValidationError("options", options, "at least two different options to compare")
    draw = _uniform(rng)
    names, wins = _index(read_votes(votes), names)  # votes on other options are left out
    strength, hessian = fit_strengths(wins, alpha)
    covariance = np.linalg.inv(-hessian)
    seen = wins + wins.T  # votes per pair (a tie counts once: 0.5 + 0.5)
    n = len(names)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    fewest = min(seen[i, j] for i, j in pairs)
    candidates = []
    for i, j in pairs:
        if seen[i, j] > fewest:
            continue
        spread = covariance[i, i] + covariance[j, j] - 2 * covariance[i, j]
        candidates.append((abs(strength[i] - strength[j]) / math.sqrt(max(spread, 1e-12)), i, j))
    best = min(c[0] for c in candidates)
    closest = [(i, j) for z, i, j in candidates if z <= best + 1e-9]
    i, j = closest[min(len(closest) - 1, int(draw() * len(closest)))]
    return (names[i], names[j]) if draw() < 0.5 else (names[j], names[i])


def _uniform(rng: Any) -> Callable[[], float]:
    """A function drawing uniform numbers in [0, 1) from a random.Random, a numpy Generator, a seed or None."""
    import numpy as np  # numpy, a heavy import: loaded only when votes are ranked

    if isinstance(rng, random.Random):
        return rng.random
    if isinstance(rng, np.random.Generator):
        return lambda: float(rng.random())
    if rng is None or (isinstance(rng, int) and not isinstance(rng, bool)):
        generator = np.random.default_rng(rng)
        return lambda: float(generator.random())
    raise ValidationError("rng", rng, "a random.Random, a numpy Generator, a seed (int) or None")
