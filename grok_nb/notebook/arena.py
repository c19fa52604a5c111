"""A blind arena: two takes side by side, their parameters hidden and their sides shuffled; a vote per pair.

``ArenaState`` is the pure part: which two runs to show next (the least certain pair of options first,
through ``jobs.ranking.next_pair``; no pair shown again before the others have been, at the level of options
and of takes), and how far the round has come. ``Arena`` draws it as an anywidget (its script shipped in the
package, nothing fetched) and sends each vote through the controller to ``client.vote``, as voter and
experiment say; ``undo()`` takes the last one back (``client.delete_vote``) and shows its pair again.
``Arena.auto(judge=...)`` lets a vision judge vote on the next pairs (``client.judge_pair``),
recorded as its own voter.
"""

from __future__ import annotations

import html
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any

import anywidget
import pandas as pd
import traitlets as t

from ..api.frames import DEFAULT_FRAMES, DEFAULT_WIDTH
from ..api.judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL
from ..client import _option as option_value
from ..errors import ValidationError
from ..history.rows import row_of
from ..history.schema import RUN_COLUMNS
from ..jobs.ranking import next_pair
from ..jobs.results import Run
from ..runtime.judge import judge_voter
from . import assets, fallback, tables
from .live import LiveDisplay
from .present import Media

log = logging.getLogger(__name__)

#: What a vote's side means as the votes table keeps it: ``a`` is the take shown on the left.
SIDES = {"left": "a", "right": "b", "tie": "tie"}
#: An option made of every run on its own (``by="run_id"``): each take is ranked apart.
EACH_RUN = "run_id"


def option_of(run: Run, by: str) -> Hashable:
    """The option a run stands for in a ranking by ``by``: its history column of that name, as ``client.ranking``
    reads it (lists as tuples, nothing as "(none)")."""
    row = {**run.extra, **row_of(run)}
    return option_value(row.get(by))  # type: ignore[no-any-return]


def check_by(by: Any) -> str:
    """``by`` is a column of the history (prompt, resolution, duration, model, take, run_id, ...)."""
    if not isinstance(by, str) or by not in RUN_COLUMNS:
        raise ValidationError("by", by, "a column of the history, such as prompt, resolution, duration, model, take "
                                        "or run_id (each take apart)")
    return by


def default_by(runs: Sequence[Run], axes: Sequence[str] = ()) -> str:
    """What an arena compares when not told: the first axis of a grid (not its takes) that is a history column and
    splits the runs, else their prompts when they differ, else every run on its own."""
    for axis in [*axes, "prompt"]:
        if axis in ("take", "repeat"):  # takes of one cell are what an arena pits against each other, not an option
            continue
        if axis in RUN_COLUMNS and axis != EACH_RUN and len({option_of(r, axis) for r in runs}) > 1:
            return axis
    return EACH_RUN


Vote = tuple[str, str, str]


class ArenaState:
    """Which two runs to show next, from the votes cast so far (pure: no I/O, no widgets).

    ``takes`` maps each run id to the option it stands for. Options are paired by ``jobs.ranking.next_pair``
    (rounds: no pair of options again before every other pair has been seen as often; within a round the least
    certain first); of the chosen options' takes, the pair of runs shown least goes first, then the runs shown
    least. ``rng`` draws the sides (a ``random.Random``, a seed, or None).
    """

    def __init__(self, takes: Mapping[str, Hashable], votes: Iterable[Vote] = (), rng: Any = None):
        self.option_of = dict(takes)
        self.options = list(dict.fromkeys(self.option_of.values()))
        self.rng = rng if isinstance(rng, random.Random) else random.Random(rng)
        self.votes: list[Vote] = []
        for a, b, winner in votes:
            if a in self.option_of and b in self.option_of and a != b:
                self.votes.append((a, b, winner))

    @property
    def can_vote(self) -> bool:
        """True when there are two options to compare."""
        return len(self.options) >= 2

    def option_votes(self) -> list[tuple[Hashable, Hashable, str]]:
        """The votes as options (a vote between two takes of one option says nothing about the options: left out)."""
        return [(self.option_of[a], self.option_of[b], w) for a, b, w in self.votes
                if self.option_of[a] != self.option_of[b]]

    def pair(self, exclude: Iterable[frozenset[str]] = ()) -> tuple[str, str] | None:
        """(left run id, right run id) to show next, or None when there are not two options (or, with ``exclude``,
        when every pair of takes of the chosen options has been shown: the judge, which would answer the same)."""
        if not self.can_vote:
            return None
        left, right = next_pair(self.options, self.option_votes(), self.rng)
        skip = set(exclude)
        candidates = self._candidates(left, right, skip)
        if not candidates and skip:
            # Every take of those two options was asked: the pair of options seen least that has takes left.
            seen = Counter(frozenset((x, y)) for x, y, _ in self.option_votes())
            order = sorted((seen[frozenset((x, y))], self.rng.random(), i, j)
                           for i, x in enumerate(self.options) for j, y in enumerate(self.options) if i < j)
            for *_, i, j in order:
                x, y = (self.options[i], self.options[j]) if self.rng.random() < 0.5 else \
                    (self.options[j], self.options[i])
                candidates = self._candidates(x, y, skip)
                if candidates:
                    break
        if not candidates:
            return None
        *_, a, b = min(candidates)
        return a, b

    def _candidates(self, left: Hashable, right: Hashable,
                    skip: set[frozenset[str]]) -> list[tuple[int, int, float, str, str]]:
        """Pairs of takes of two options (left's first), with how often each pair and each run was shown."""
        pairs = Counter(frozenset((a, b)) for a, b, _ in self.votes)
        shown = Counter(x for a, b, _ in self.votes for x in (a, b))
        return [(pairs[frozenset((a, b))], shown[a] + shown[b], self.rng.random(), a, b)
                for a in self.takes(left) for b in self.takes(right) if frozenset((a, b)) not in skip]

    def takes(self, option: Hashable) -> list[str]:
        """The run ids standing for ``option``, in the order given."""
        return [run_id for run_id, o in self.option_of.items() if o == option]

    def record(self, left: str, right: str, side: str) -> Vote:
        """Keep a vote on a pair shown: ``side`` is left, right or tie; returned as the votes table keeps it
        (``a`` is the left run)."""
        if side not in SIDES:
            raise ValidationError("side", side, "'left', 'right' or 'tie'")
        if left not in self.option_of or right not in self.option_of or left == right:
            raise ValidationError("pair", (left, right), "two different runs of this arena")
        vote = (left, right, SIDES[side])
        self.votes.append(vote)
        return vote

    def unrecord(self, vote: Vote) -> None:
        """Forget a vote taken back (its latest copy): the pairs it had settled are due again."""
        for i in range(len(self.votes) - 1, -1, -1):
            if self.votes[i] == vote:
                del self.votes[i]
                return
        raise ValidationError("vote", vote, "a vote this arena recorded")

    def progress(self) -> dict[str, int]:
        """``votes`` cast, the ``round`` under way, its ``size`` (pairs of options) and the pairs ``left`` in it."""
        k = len(self.options)
        size = k * (k - 1) // 2
        seen = Counter(frozenset((a, b)) for a, b, _ in self.option_votes())
        counts = [seen[frozenset((x, y))] for i, x in enumerate(self.options) for y in self.options[i + 1:]]
        fewest = min(counts) if counts else 0
        return {"votes": len(self.votes), "round": fewest + 1, "size": size,
                "left": sum(1 for c in counts if c == fewest)}


def counter_text(progress: Mapping[str, int], judge_votes: int = 0) -> str:
    """'3 votes so far · round 2: 1 of 3 pairs left' (and the judge's votes when it voted)."""
    votes, size, left = progress["votes"], progress["size"], progress["left"]
    text = (f"{votes} vote{'s' if votes != 1 else ''} so far · round {progress['round']}: {left} of {size} "
            f"pair{'s' if size != 1 else ''} left")
    if judge_votes:
        text += f" · the judge: {judge_votes} vote{'s' if judge_votes != 1 else ''}"
    return text


class ArenaWidget(anywidget.AnyWidget):
    """The browser side of an Arena: two videos, the keys and buttons, the counter."""

    _esm = assets.esm("arena.js")
    _css = assets.css("arena.css")
    left = t.Dict().tag(sync=True)  # src, poster, width, height: nothing that names a parameter
    right = t.Dict().tag(sync=True)
    pair = t.Unicode("").tag(sync=True)  # a token per pair shown: a vote names the pair it was cast on
    counter = t.Dict().tag(sync=True)
    voter = t.Unicode("").tag(sync=True)
    message = t.Unicode("").tag(sync=True)
    answered = t.Int(0).tag(sync=True)  # counts the votes handled (the view takes the next one after it moves)
    hide_css = t.Unicode("").tag(sync=True)


class Arena:
    """A blind arena over finished runs: ``vote('left'|'right'|'tie')`` (what ← → ↓ do), ``undo()`` (Backspace),
    ``auto(judge=...)``, ``pair`` (the two Runs shown), ``votes()`` (this arena's votes)."""

    def __init__(self, runs: Sequence[Run], *, by: str, voter: str, experiment: str | None,
                 media: Callable[[Run], Media | None], on_vote: Callable[..., Any], votes: Callable[..., Any],
                 delete_vote: Callable[[Any], Any], judge_pair: Callable[..., Any], budget: Any = None,
                 left_out: int = 0, seed: Any = None):
        self.by = check_by(by)
        self.voter = voter
        self.experiment = experiment
        self.runs = [r for r in runs if media(r) is not None]
        self.left_out = left_out + len(runs) - len(self.runs)  # not finished, or their video is not here
        self._media = media
        self._on_vote = on_vote
        self._read_votes = votes
        self._delete_vote = delete_vote
        self._cast: list[tuple[dict[str, Any], tuple[str, str]]] = []  # this arena's votes as cast, for undo()
        self._judge_pair = judge_pair
        self.budget = budget
        self._by_id = {r.run_id: r for r in self.runs}
        self._seed = seed
        self.state = ArenaState({r.run_id: option_of(r, self.by) for r in self.runs}, self._mine(voter), seed)
        self.judge_votes = self._judged()
        self.current: tuple[str, str] | None = None
        self._token = 0
        self._lock = threading.Lock()
        key = fallback.new_key()
        self.widget = ArenaWidget(voter=voter, hide_css=fallback.hide_css(key))
        self.widget.add_class("grok-arena-widget")
        self.widget.on_msg(self._on_msg)
        self._display = LiveDisplay(lambda: fallback.bundle(self.widget, None, ""), self.static_html, key)
        self._next()

    # -- votes --------------------------------------------------------------------------------------
    def _mine(self, voter: str) -> list[Vote]:
        """This voter's votes among the arena's runs (in its experiment), oldest first."""
        df = self._read_votes(self.experiment, voter=voter)
        return [(a, b, w) for a, b, w in zip(df["a"], df["b"], df["winner"], strict=True)
                if a in self._by_id and b in self._by_id]

    def _judged(self) -> int:
        df = self._read_votes(self.experiment)
        judged = df[df["voter"].astype(str).str.startswith("judge:")]
        return int(sum(1 for a, b in zip(judged["a"], judged["b"], strict=True)
                       if a in self._by_id and b in self._by_id))

    @property
    def options(self) -> list[Hashable]:
        """What the arena compares (values of ``by``), in the order first seen."""
        return list(self.state.options)

    @property
    def pair(self) -> tuple[Run, Run] | None:
        """The two runs shown now (left, right); None when there is nothing to compare."""
        if self.current is None:
            return None
        return self._by_id[self.current[0]], self._by_id[self.current[1]]

    def vote(self, side: str) -> dict[str, Any]:
        """Vote on the pair shown: ``left``, ``right`` or ``tie`` (what ← → ↓ do); recorded in the history (``a`` is
        the left run), then the next pair is shown. Returns the vote as recorded."""
        if side not in SIDES:
            raise ValidationError("side", side, "'left' (← the left take is better), 'right' (→) or 'tie' (↓)")
        with self._lock:
            if self.current is None:
                raise ValidationError("arena", self.by, "two finished runs of two different options to compare: "
                                                        "there is no pair to vote on")
            left, right = self.current
            recorded: dict[str, Any] = self._on_vote(left, right, SIDES[side], voter=self.voter,
                                                     experiment=self.experiment)
            self.state.record(left, right, side)
            self._cast.append((recorded, (left, right)))
            self._next()
        self._display.refresh()
        return recorded

    def undo(self) -> dict[str, Any]:
        """Take back the last vote cast in this arena (what Backspace does): it is deleted from the history and its
        pair is shown again, sides as they were. Returns the vote as it was kept."""
        with self._lock:
            if not self._cast:
                raise ValidationError("undo", self.voter, "a vote cast in this arena: there is none to take back")
            recorded, shown = self._cast[-1]
            try:
                removed: dict[str, Any] = self._delete_vote(recorded)
            except ValidationError:  # deleted already (client.delete_vote): the arena forgets it too
                removed = recorded
            self._cast.pop()
            self.state.unrecord((recorded["a"], recorded["b"], recorded["winner"]))
            self.current = shown
            self._token += 1
            self._draw()
        self._display.refresh()
        return removed

    def votes(self) -> tables.VoteFrame:
        """Every vote on this arena's runs (people's and the judge's) in its experiment, oldest first, with the
        options the two runs stand for (``option_a`` was shown on the left)."""
        df = self._read_votes(self.experiment)
        df = df[df["a"].isin(self._by_id) & df["b"].isin(self._by_id)].reset_index(drop=True)
        df.insert(2, "option_a", [self.state.option_of[a] for a in df["a"]])
        df.insert(3, "option_b", [self.state.option_of[b] for b in df["b"]])
        frame = tables.VoteFrame(df)
        voters = df["voter"].nunique()
        frame.attrs["caption"] = (f"{len(df)} vote{'s' if len(df) != 1 else ''} by {voters} "
                                  f"voter{'s' if voters != 1 else ''} on this arena's runs (by {self.by}), oldest "
                                  "first; a was shown on the left.")
        return frame

    def auto(self, judge: str = DEFAULT_JUDGE_MODEL, rubric: str | Sequence[str] | None = None, *,
             pairs: int | None = None, frames: int = DEFAULT_FRAMES, detail: str = "low", width: int = DEFAULT_WIDTH,
             tie_within: float = 0.0, progress: Callable[[int, int, list[tuple[str, str]]], Any] | None = None
             ) -> tables.VoteFrame:
        """Let a vision judge vote on the arena's next ``pairs`` (default: one round), the least certain first, each
        through ``client.judge_pair`` (both takes judged against ``rubric``, the higher score wins), recorded under
        the voter ``judge:<model>`` in the arena's experiment. A pair of takes the judge already voted on is not
        asked again (it would answer the same). Returns one row per pair asked: the runs (``a`` shown left), their
        options, the ``winner`` (None when a judgement failed: then no vote was recorded, ``error`` says why) and
        the two scores."""
        if pairs is not None and (isinstance(pairs, bool) or not isinstance(pairs, int) or pairs < 1):
            raise ValidationError("pairs", pairs, "a whole number of pairs, at least 1 (None: one round)")
        voter = judge_voter(judge)
        judge_state = ArenaState(self.state.option_of, self._mine(voter), self._seed)
        asked = {frozenset((a, b)) for a, b, _ in judge_state.votes}
        total = pairs if pairs is not None else judge_state.progress()["size"]
        rows: list[dict[str, Any]] = []
        failures: list[tuple[str, str]] = []
        while len(rows) < total:
            chosen = judge_state.pair(exclude=asked)
            if chosen is None:
                break
            left, right = chosen
            asked.add(frozenset(chosen))
            judged = self._judge_pair(left, right, rubric, model=judge, frames=frames, detail=detail, width=width,
                                      experiment=self.experiment, tie_within=tie_within)
            error = judged.a.error or judged.b.error
            if judged.winner is not None:
                judge_state.votes.append((left, right, judged.winner))
                self.judge_votes += 1
            else:
                failures.append((str(self.state.option_of[left]), error or "no vote"))
            rows.append({"a": left, "b": right, "option_a": self.state.option_of[left],
                         "option_b": self.state.option_of[right], "winner": judged.winner,
                         "score_a": judged.a.score, "score_b": judged.b.score, "voter": voter,
                         "error": error})
            if progress is not None:
                progress(len(rows), total, failures)
        self._draw()
        self._display.refresh()
        frame = tables.VoteFrame(pd.DataFrame(rows, columns=["a", "b", "option_a", "option_b", "winner", "score_a",
                                                             "score_b", "voter", "error"]))
        for column in ("score_a", "score_b"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
        cast = int(frame["winner"].notna().sum())
        frame.attrs["caption"] = (f"{voter} was asked about {len(frame)} pair{'s' if len(frame) != 1 else ''} of "
                                  f"takes: {cast} vote{'s' if cast != 1 else ''} recorded"
                                  + (f", {len(frame) - cast} without a vote (a judgement failed: see error)"
                                     if cast < len(frame) else "")
                                  + (f"; every pair it can tell apart has been asked ({total} wanted)"
                                     if len(frame) < total else "") + ".")
        return frame

    # -- drawing ------------------------------------------------------------------------------------
    def _next(self) -> None:
        self.current = self.state.pair()
        self._token += 1
        self._draw()

    def _side(self, run_id: str) -> dict[str, Any]:
        media = self._media(self._by_id[run_id])
        if media is None:
            return {}
        return {"src": media.src, "poster": media.poster or "", "width": media.width, "height": media.height}

    def _draw(self) -> None:
        current = self.current
        progress = self.state.progress()
        with self.widget.hold_sync():
            self.widget.left = self._side(current[0]) if current else {}
            self.widget.right = self._side(current[1]) if current else {}
            self.widget.pair = f"{self._token}" if current else ""
            self.widget.counter = {**progress, "judge_votes": self.judge_votes, "can_undo": bool(self._cast),
                                   "text": counter_text(progress, self.judge_votes)}
            if current is None:
                self.widget.message = self._why_empty()

    def _why_empty(self) -> str:
        found = len(self.runs)
        return (f"Nothing to compare: the arena needs finished runs of at least two different {self.by} values "
                f"(it has {found} finished run{'s' if found != 1 else ''}"
                + (f"; {self.left_out} not finished or without a video here" if self.left_out else "")
                + "). Wait for the grid, or pick another by=.")

    def _on_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        # Exceptions in widget callbacks vanish in JupyterLab: say them in the arena instead.
        # One state message for the next pair, the counter and the answer: a view that shows the new count has
        # also taken its keys back (in two messages, a key pressed between them was dropped).
        with self.widget.hold_sync():
            try:
                if content.get("type") == "undo":
                    self.widget.message = ""
                    self.undo()
                    return
                if content.get("type") != "vote":
                    return
                if str(content.get("pair")) != self.widget.pair:
                    return  # a vote on a pair no longer shown (a second press): the view waits for the next pair
                self.widget.message = ""
                self.vote(str(content.get("side")))
            except Exception as exc:  # noqa: BLE001
                log.exception("arena vote %r failed", content)
                self.widget.message = f"{type(exc).__name__}: {exc}"
            finally:
                self.widget.answered = self.widget.answered + 1

    # -- display ------------------------------------------------------------------------------------
    def static_html(self) -> str:
        """What a saved notebook shows: what the arena compared and how many votes were cast."""
        progress = self.state.progress()
        options = len(self.state.options)
        bits = [f"{len(self.runs)} take{'s' if len(self.runs) != 1 else ''} of {options} "
                f"option{'s' if options != 1 else ''} (by {self.by})"]
        if self.experiment:
            bits.append(f"experiment “{self.experiment}”")
        bits.append(f"{progress['votes']} vote{'s' if progress['votes'] != 1 else ''} by {self.voter}")
        if self.judge_votes:
            bits.append(f"{self.judge_votes} by the judge")
        return (f'<div class="grok-static-arena tex2jax_ignore mathjax_ignore" style="font-size:13px;margin:4px 0;'
                f'text-align:left"><b>grok_nb blind arena</b> · {html.escape(" · ".join(bits))}'
                f'<div style="font-size:12px">In a live notebook it shows two takes side by side, parameters hidden '
                f"and sides shuffled, and ← → ↓ vote. <code>studio.ranking(...)</code> ranks the votes.</div></div>")

    def __repr__(self) -> str:
        return (f"<grok_nb Arena by={self.by!r}: {len(self.runs)} runs, {len(self.state.options)} options, "
                f"{self.state.progress()['votes']} votes by {self.voter}>")

    def _repr_mimebundle_(self, **_kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return fallback.bundle(self.widget, self.static_html(), repr(self))

    def _ipython_display_(self) -> None:
        self._display.show()


def judge_table(runs: Sequence[Run], judged: Mapping[str, Any],
                not_judged: Mapping[str, str]) -> tables.JudgeFrame:
    """``studio.judge``'s table: one row per run (run_id, prompt, score, passed, reason, cost_usd, cached); a failed
    judgement's reason is why it failed, a run not judged says why it was not."""
    rows = []
    for run in runs:
        judgement = judged.get(run.run_id)
        if judgement is not None:
            cost = 0.0 if judgement.cached else judgement.cost_usd
            rows.append({"run_id": run.run_id, "prompt": run.prompt, "score": judgement.score,
                         "passed": judgement.passed, "reason": judgement.error or judgement.reason,
                         "cost_usd": cost, "cached": bool(judgement.cached)})
        else:
            rows.append({"run_id": run.run_id, "prompt": run.prompt, "score": None, "passed": None,
                         "reason": not_judged.get(run.run_id, "not judged"), "cost_usd": 0.0, "cached": False})
    frame = pd.DataFrame(rows, columns=["run_id", "prompt", "score", "passed", "reason", "cost_usd", "cached"])
    frame["score"] = pd.to_numeric(frame["score"], errors="coerce").astype("float64")
    frame["passed"] = frame["passed"].astype("boolean")
    frame["cost_usd"] = pd.to_numeric(frame["cost_usd"], errors="coerce").astype("float64")
    return tables.JudgeFrame(frame)


def judged_caption(frame: pd.DataFrame, model: str, not_judged: int = 0) -> str:
    """'9 runs · 8 scored by grok-4.3 · 1 failed · 3 from the history (nothing sent) · judge calls $0.012 (counted
    apart from videos)'."""
    scored = int(frame["score"].notna().sum())
    failed = len(frame) - scored - not_judged
    cached = int(frame["cached"].sum())
    cost = float(frame["cost_usd"].fillna(0.0).sum())
    bits = [f"{len(frame)} run{'s' if len(frame) != 1 else ''}", f"{scored} scored by {model}"]
    if failed:
        bits.append(f"{failed} failed (fail closed: no score)")
    if not_judged:
        bits.append(f"{not_judged} not judged (no finished video)")
    if cached:
        bits.append(f"{cached} from the history (nothing sent)")
    bits.append(f"judge calls {tables.usd(cost)} (counted apart from videos)")
    return " · ".join(bits)
