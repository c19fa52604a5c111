"""``grok_nb.Studio``: the notebook front door: live cards, comparison grids, history, experiments."""

from __future__ import annotations

import concurrent.futures
import functools
import html
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import IPython
import IPython.display as ipd
import pandas as pd

from ..api.batch import BEST_EFFORT_NOTE as BATCH_NOTE
from ..api.frames import DEFAULT_FRAMES, DEFAULT_WIDTH
from ..api.judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL
from ..api.pricing import CostEstimate
from ..errors import ConfirmationRequired, ValidationError
from ..history.owners import current_user
from ..history.rows import run_of
from ..history.store import NUMERIC_COLUMNS, SORT_SQL
from ..jobs.ranking import DEFAULT_BOOTSTRAP
from ..jobs.ranking import ranking as rank_votes
from ..jobs.results import JobHandle, Run
from ..jobs.status import Status
from ..runtime.judge import check_label, check_options
from ..sync_client import Client
from . import fallback, gridstate, looks, metrics, plots, tables
from .arena import Arena, check_by, default_by, judge_table, judged_caption, option_of
from .browser import HistoryBrowser, HistoryFeed
from .compare import Grid
from .controller import VIDEOS_BESIDE, Controller, poster_html
from .gridview import VideoGrid
from .keystatus import KeyStatus
from .present import Media
from .tables import ExchangeFrame, HistoryFrame
from .timeline import build_timeline
from .widgets import ConfirmBar, JobCard

__all__ = ["HistoryFrame", "Studio"]

#: Above this estimate, a grid waits for a confirmation (confirm=True, or the Run button).
DEFAULT_CONFIRM_ABOVE_USD = 2.0


def _display(obj: Any) -> None:
    ipd.display(obj)  # type: ignore[no-untyped-call]


def _with_card(client_method: Callable[..., Any]) -> Callable[..., Any]:
    """A Studio twin of a client job method: same parameters (less wait/on_update, plus display), shown as a card."""
    name = client_method.__name__

    @functools.wraps(client_method)
    def method(self: Studio, *args: Any, display: bool = True, **kwargs: Any) -> JobHandle:
        return self._job(getattr(self.client, name), *args, display=display, **kwargs)

    params = [p for n, p in inspect.signature(client_method).parameters.items() if n not in ("wait", "on_update")]
    display = inspect.Parameter("display", inspect.Parameter.KEYWORD_ONLY, default=True, annotation=bool)
    at = next((i for i, p in enumerate(params) if p.kind is p.VAR_KEYWORD), len(params))
    params.insert(at, display)
    method.__signature__ = inspect.Signature(params, return_annotation=JobHandle)  # type: ignore[attr-defined]
    method.__doc__ = f"{(client_method.__doc__ or '').strip()} Shown as a live card; returns the handle at once."
    del method.__wrapped__
    return method


class Studio:
    """Owns a client, the history and the views; every job shows a live card in its cell."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *,
                 budget_usd: float | None = None, confirm_above_usd: float | None = DEFAULT_CONFIRM_ABOVE_USD,
                 player: str = "local", keep_videos: str | Path | None = VIDEOS_BESIDE, client: Client | None = None,
                 **client_options: Any):
        """A client (new, or ``client=``) with a budget for everything sent through it, and the views.

        ``confirm_above_usd``: a grid estimated above it waits for confirm=True or its Run button.
        ``player``: 'local' plays the cached MP4s, 'remote' the result URLs (a browser on another machine).
        ``keep_videos``: in a notebook, the folder (beside it) where the videos it shows are kept, so that the saved
        notebook and its HTML export play them; None keeps none (saved copies then show posters).
        """
        keep = Path(keep_videos) if keep_videos is not None and _in_kernel() else None
        controller = Controller(None, player, keep)  # refuses an unknown player before a client is made
        if client is None:
            client = Client(api_key, base_url, budget_usd=budget_usd, **client_options)
        elif budget_usd is not None:
            client.budget.set_limit(budget_usd)
        self.client = client
        controller.store = client.store
        controller.client = client  # judge calls and votes go through the client
        self.controller = controller  # every read and write the views ask for
        self.confirm_above_usd = confirm_above_usd
        self.player = player
        self.experiment_name: str | None = None
        self._show_runs_as_cards()
        waiting = self._core.waiting()
        if waiting:
            print(f"grok_nb: {waiting} job{'s' if waiting != 1 else ''} of this history "
                  f"{'are' if waiting != 1 else 'is'} unfinished; studio.resume() shows them again (sends no submit).",
                  flush=True)

    def _show_runs_as_cards(self) -> None:
        """In a kernel, a Run (or a client's job handle) left as a cell's value shows as a card whose player is the
        copy kept beside the notebook, so it still plays once the notebook is saved and reopened anywhere."""
        shell = IPython.get_ipython()
        if shell is None or not hasattr(shell, "kernel"):
            return
        formatter = shell.display_formatter.formatters["text/html"]
        formatter.for_type(Run, self.run_html)
        formatter.for_type(JobHandle, lambda handle: self.run_html(handle.run))

    def run_html(self, run: Run) -> str:
        """A run as a small static card: what was asked, its player (or poster, or error), state, cost, request id."""
        media = self.controller.media(run) if run.ok else None
        tile = gridstate.tile(0, run, poster=media.poster if media else None, href=media.href if media else None,
                              where=media.where if media else None)
        return fallback.card_html(tile, f"{run.kind} · {run.prompt or '(no prompt)'}")

    @property
    def budget_usd(self) -> float | None:
        """The spending limit of the studio's client (None: no limit)."""
        limit = self._core.budget_usd
        return None if limit is None else float(limit)

    @property
    def spent_usd(self) -> float:
        """What finished jobs sent through this studio cost."""
        return float(self._core.spent_usd)

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent."""
        left = self._core.remaining_usd
        return None if left is None else float(left)

    @property
    def _core(self) -> Any:
        # The sync Client forwards to AsyncClient at run time; its methods are not typed for a Client self.
        return self.client

    def __repr__(self) -> str:
        return f"<Studio {self.client!r} experiment={self.experiment_name!r}>"

    # -- players --------------------------------------------------------------------------------
    def player_source(self, run: Run) -> tuple[str, int, int, float | None] | None:
        """(src, width, height, seconds) for a finished run's player; None when there is nothing to play."""
        media = self.controller.media(run)
        return media.source if media else None

    def media(self, run: Run) -> Media | None:
        """A finished run's video as the views show it (source, shape, poster, link); None when there is none."""
        return self.controller.media(run)

    # -- jobs with cards ------------------------------------------------------------------------
    def _feed(self, card: JobCard) -> Callable[[Run], None]:
        """A job's on_update: the run, and once it is done its video, handed to the card."""
        def on_update(run: Run) -> None:
            card.update(run, self.controller.media(run))
        return on_update

    def _carded(self, handle: JobHandle, card: JobCard, display: bool) -> JobHandle:
        """Give ``handle`` its card: drawn from the run now, sent again whenever the job's result is waited for."""
        self._feed(card)(handle.run)
        handle.card = card  # type: ignore[attr-defined]  # the card rides on its handle
        handle.on_result(lambda _run: card.settle())
        if display:
            _display(card)
        return handle

    def _job(self, method: Any, *args: Any, display: bool = True, **kwargs: Any) -> JobHandle:
        card = JobCard(budget=self.client.budget)
        try:
            handle: JobHandle = method(*args, wait=False, on_update=self._feed(card), **kwargs)
        except BaseException:
            card.close()
            raise
        return self._carded(handle, card, display)

    generate = _with_card(Client.generate)
    edit = _with_card(Client.edit)
    extend = _with_card(Client.extend)
    get = _with_card(Client.get)

    def resume(self, *, display: bool = True) -> list[JobHandle]:
        """Re-attach every unfinished job of the history (no submit is sent), each shown as a live card."""
        cards: dict[str, JobCard] = {}

        def card_for(run: Run) -> Any:
            cards[run.run_id] = JobCard(budget=self.client.budget)
            return self._feed(cards[run.run_id])

        handles: list[JobHandle] = self._core.resume(on_update=card_for)
        for handle in handles:
            self._carded(handle, cards.get(handle.run.run_id) or JobCard(budget=self.client.budget), display)
        return handles

    def estimate_cost(self, *args: Any, **kwargs: Any) -> CostEstimate:
        """The price before sending; the arguments of generate/edit/extend."""
        estimate: CostEstimate = self._core.estimate_cost(*args, **kwargs)
        return estimate

    # -- the judge, the arena and rankings -------------------------------------------------------
    def judge(self, runs: Any, rubric: str | Sequence[str] | None = None, *, model: str = DEFAULT_JUDGE_MODEL,
              frames: int = DEFAULT_FRAMES, detail: str = "low", width: int = DEFAULT_WIDTH,
              display: bool = True) -> tables.JudgeFrame:
        """Judge many runs at once (``client.judge_many``): a table of run_id, prompt, score, passed, reason,
        cost_usd and cached, one row per run, while the cell shows how far it has come.

        ``runs``: a Grid, a list of Runs / handles / run ids / request ids, or an experiment's name. Runs without a
        finished video are listed as not judged. The cell shows n of N judged, the failed ones with their reason,
        and what the judge calls cost so far, apart from the videos. Each judged run carries ``judge_score`` and
        ``judge_passed`` in ``run.extra``, and a grid's footers are drawn again. Judged under the default rubric,
        the history's ``judge_score``, ``judge_passed``, ``judge_reason`` and ``judge_cost_usd`` columns say the
        same. Ctrl+C stops waiting: the calls go on and their verdicts are kept (judging again hands them back
        at no cost).
        """
        check_options(rubric, model, frames, detail, width)  # before anything is read or sent
        targets = self._target_runs(runs)
        todo = [r for r in targets if r.status is Status.DONE]
        not_judged = {r.run_id: f"not judged: {looks.look(looks.state_of(r)).word} (no finished video)"
                      for r in targets if r.status is not Status.DONE}
        options = dict(model=model, frames=frames, detail=detail, width=width)
        live = display and _in_kernel()
        progress = _JudgeProgress(self.controller, todo) if live else None
        try:
            judgements = progress.wait(rubric, options) if progress else \
                self.controller.judge_many(todo, rubric, **options) if todo else []
        except BaseException as exc:
            if progress is not None:
                progress.stopped(exc)
            raise
        judged = {run.run_id: j for run, j in zip(todo, judgements, strict=True)}
        for run, judgement in zip(todo, judgements, strict=True):
            run.extra["judge_score"] = judgement.score  # None when it failed: a footer shows no score, not an old one
            run.extra["judge_passed"] = judgement.passed
        if isinstance(runs, Grid):  # its footers read run.extra: each judged cell is drawn again
            view = getattr(runs, "view", None)
            for index, cell in enumerate(runs.cells):
                for take, run in enumerate(cell.runs):
                    if view is not None and run.run_id in judged:
                        view.cell_callback(index, take)(run)
        frame = judge_table(targets, judged, not_judged)
        frame.attrs["caption"] = judged_caption(frame, model, len(not_judged))
        if progress is not None:
            progress.finished(judgements)
        return frame

    def arena(self, runs: Any, *, by: str | None = None, voter: str | None = None, experiment: str | None = None,
              seed: int | None = None, display: bool = True) -> Arena:
        """A blind arena over finished runs: two takes side by side, parameters hidden, sides shuffled; ← / → / ↓
        (or the buttons) vote left, right or tie, and the next pair loads.

        ``runs``: a Grid, a list of Runs / handles / ids, or an experiment's name. ``by``: what is being compared
        (a history column: prompt, resolution, ..., run_id for every take on its own); by default the grid's
        first axis, else the prompt. Pairs of options come least certain first, none again before the others
        have been seen (``jobs.ranking.next_pair``). Each vote goes to the history's votes table (``client.vote``:
        the two runs, ``a`` shown left, the winner, ``voter`` (default: you), ``experiment`` (default: the
        studio's, else the one tag the runs share), when). ``arena.auto(judge=...)`` lets the judge vote too.
        """
        targets = self._target_runs(runs)
        axes = runs.columns if isinstance(runs, Grid) else ()
        done = [r for r in targets if r.ok]
        by = check_by(by) if by is not None else default_by(done, axes)
        voter = check_label(voter, "voter", "who votes (a name)") or current_user()
        if experiment is None:
            experiment = self._experiment_of(targets)
        experiment = check_label(experiment, "experiment", "an experiment's name (a text)")
        arena = Arena(targets, by=by, voter=voter, experiment=experiment, media=self.controller.media,
                      on_vote=self.controller.vote, votes=self.controller.votes,
                      delete_vote=self.controller.delete_vote, judge_pair=self.controller.judge_pair, seed=seed)
        if display:
            _display(arena)
        return arena

    def ranking(self, runs: Any = None, by: str = "prompt", voter: str | None = None, *,
                compare_voters: bool = False, bootstrap: int = DEFAULT_BOOTSTRAP, level: float = 0.95,
                seed: int | None = 0) -> tables.RankingFrame:
        """The options ranked from the votes, strongest first: option, strength, lo, hi (a ``level`` interval;
        ``inf`` where no vote bounds it, shown as "open"), wins, losses, ties, votes.

        ``runs``: None (every vote of the history) or an experiment's name (its votes), ranked by the history's
        column ``by`` as ``client.ranking`` does; or a Grid, an Arena or a list of runs (the votes between those
        runs; ``by`` any of their history columns, such as an axis of the grid). ``voter``: one voter's votes
        (a person, or ``judge:<model>``); ``compare_voters=True``: each voter ranked apart, with a ``voter`` column.
        """
        check_by(by)
        options: dict[str, Any] = dict(bootstrap=bootstrap, level=level, seed=seed)
        local = runs is not None and not isinstance(runs, str)
        if local:
            targets = self._target_runs(runs)
            option = {r.run_id: option_of(r, by) for r in targets}
            votes = self.controller.votes(None, voter=voter)
            votes = votes[votes["a"].isin(option) & votes["b"].isin(option)]
        else:
            votes = self.controller.votes(runs, voter=voter)
        voters = list(dict.fromkeys(votes["voter"])) if compare_voters else [voter]

        def rank(who: str | None) -> pd.DataFrame:
            if not local:
                return self.controller.ranking(runs, by, who, **options)
            mine = votes if who is None else votes[votes["voter"] == who]
            return rank_votes(mine, lambda run_id: option[run_id], **options)

        parts = []
        for who in voters:
            part = rank(who)
            if compare_voters:
                part.insert(0, "voter", who)
            parts.append(part)
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0] if parts else rank(None)
        shown = tables.RankingFrame(frame)
        shown.attrs.update(by=by, votes=int(frame["votes"].sum() // 2), level=level, bootstrap=bootstrap)
        return shown

    def plot_ranking(self, runs: Any = None, by: str = "prompt", voter: str | None = None, *,
                     compare_voters: bool | None = None, theme: str = "auto", **options: Any) -> Any:
        """A forest plot of :meth:`ranking` (same arguments): each option's strength and interval, strongest on
        top, an end no vote bounds drawn as an arrow. By default each voter who voted is drawn side by side (people
        and the judge, in colours of their own); ``compare_voters=False`` pools the votes. ``theme``: auto, light
        or dark."""
        split = compare_voters if compare_voters is not None else voter is None
        frame = self.ranking(runs, by, voter, compare_voters=split, **options)
        if split and compare_voters is None and "voter" in frame.columns and frame["voter"].nunique() <= 1:
            frame = frame.drop(columns="voter")  # one voter: nothing to tell apart
        return plots.plot_ranking(frame, theme=theme)

    def _target_runs(self, runs: Any) -> list[Run]:
        """The runs that a Grid, an Arena, a list (Runs, handles, run ids, request ids) or an experiment's name
        stands for."""
        allowed = "a Grid, an arena, a list of Runs / job handles / run ids / request ids, or an experiment's name"
        if isinstance(runs, Grid):
            return [r for r in runs.runs if r is not None]
        if isinstance(runs, Arena):
            return list(runs.runs)
        if isinstance(runs, str):
            ids = list(self._core.history(tags=[runs])["run_id"])
            if not ids:
                raise ValidationError("runs", runs, allowed + " (no run of this history is tagged with it)")
            return [run_of(row) for row in self.controller.rows(ids)]
        if isinstance(runs, (Run, JobHandle)):
            runs = [runs]
        if not isinstance(runs, (list, tuple)) or not runs:
            raise ValidationError("runs", runs, allowed)
        found: list[Run] = []
        for i, item in enumerate(runs):
            if isinstance(item, JobHandle):
                item = item.run
            if isinstance(item, Run):
                found.append(item)
                continue
            rows = self.controller.rows([item]) if isinstance(item, str) else []
            if not rows:
                raise ValidationError(f"runs[{i}]", item, "a Run, a job handle, or a run id or request id of this "
                                                          "history")
            found.append(run_of(rows[0]))
        return found

    def _experiment_of(self, runs: Sequence[Run]) -> str | None:
        """The studio's experiment, else the one tag every run carries (a grid made inside an experiment)."""
        if self.experiment_name:
            return self.experiment_name
        shared = set.intersection(*(set(r.tags) for r in runs)) if runs else set()
        return next(iter(shared)) if len(shared) == 1 else None

    # -- experiments ----------------------------------------------------------------------------
    def experiment(self, name: str) -> _Experiment:
        """Tag every following run with ``name``; as a context manager, only runs inside the block."""
        return _Experiment(self, name)

    def _set_experiment(self, name: str | None) -> None:
        tags = [t for t in self.client.tags if t != self.experiment_name]
        self.experiment_name = name
        self.client.tags[:] = tags + ([name] if name else [])

    # -- grids ----------------------------------------------------------------------------------
    def grid(self, *, takes: int = 1, budget_usd: float | None = None, confirm: bool | None = None,
             display: bool = True, batch: bool = False, **axes: Any) -> Grid:
        """A comparison grid (the same as :meth:`compare`); ``batch=True`` sends it as one batch."""
        return self.compare(takes=takes, budget_usd=budget_usd, confirm=confirm, display=display, batch=batch, **axes)

    def compare(self, *, takes: int = 1, budget_usd: float | None = None, confirm: bool | None = None,
                display: bool = True, batch: bool = False, **axes: Any) -> Grid:
        """A grid of generate() jobs: list arguments are axes, scalars are fixed; priced and guarded first.

        ``takes=N`` makes each cell (one combination of the axes) N times: the service has no seed, so takes
        show how much a cell varies; the tile shows one take at a time (its strip picks which), ``grid.table()``
        gives each cell's mean and spread, and the estimate and the budget count every take before anything is
        sent. ``batch=True`` sends the grid as one batch: outside the key's rate limit, best effort (typically
        within 24 hours), billed at standard prices; the grid fills in as results arrive.
        """
        grid = Grid(self.client, axes, takes, tags=[], batch=batch)
        grid.check_budget(budget_usd, None, None)  # over budget: nothing is sent, no confirmation can help
        view = VideoGrid(grid, on_intent=self.controller.review, budget=self.client.budget)
        grid.view = view  # type: ignore[attr-defined]
        if batch:
            view.widget.message = BATCH_NOTE

        def cell_update(index: int, take: int) -> Callable[[Run], None]:
            draw = view.cell_callback(index, take)

            def on_update(run: Run) -> None:
                view.set_media(index, self.controller.media(run), take)  # found before the take's last draw
                draw(run)
            return on_update

        def start() -> None:
            grid.start(cell_update)
            view.update(force=True)

        try:
            grid.check_budget(None, self.confirm_above_usd, confirm)
        except ConfirmationRequired as exc:
            if not display or not _in_kernel():
                raise
            bar = ConfirmBar(f"{html.escape(grid.plan_text)}, estimated <b>${exc.estimate_usd:.2f}</b> (more than "
                             f"${exc.threshold_usd:.2f}): run them?", start, view.cancel)
            _display(bar)
            _display(view)
            return grid
        start()
        if display:
            _display(view)
        return grid

    # -- history --------------------------------------------------------------------------------
    def history(self, *, status: str | Sequence[str] | None = None, kind: str | Sequence[str] | None = None,
                text: str | None = None, tags: str | Sequence[str] | None = None, experiment: str | None = None,
                since: Any = None, sort: str | None = None, where: dict[str, Any] | None = None) -> HistoryFrame:
        """The history as a DataFrame, filtered and sorted in SQL; shown with dollars, seconds and short prompts.

        ``sort``: 'newest' (the default), 'oldest', 'cost', 'latency', 'rating', 'duration', or any numeric column
        largest first: a measure by its column or its name (``"m_motion"`` or ``"motion"``), ``"take"``...; add
        ``" asc"`` for smallest first. ``where``: ranges of numeric columns, ``{"motion": (0.02, None)}`` (both ends
        included, None open; a run without the value never passes) or a number for exactly that value.
        """
        wanted = ([tags] if isinstance(tags, str) else list(tags or [])) + ([experiment] if experiment else [])
        order = numeric_sort(sort) if sort is not None else None
        ranges = {numeric_column(k): v for k, v in where.items()} if isinstance(where, dict) else where
        df = self._core.history(status=status, kind=kind, text=text, tags=wanted, since=since,
                                **({"sort": order} if order else {}), **({"where": ranges} if ranges else {}))
        frame = HistoryFrame(df.reset_index(drop=True))
        frame.attrs["order"] = "newest first" if order in (None, "newest") else "as sorted"
        # A measure the rows are sorted or filtered by is shown beside the usual columns.
        asked = [order.split(" ")[0]] if order else []
        frame.attrs["measures"] = [c for c in [*asked, *(ranges or {})] if c in metrics.METRICS]
        frame.attrs["poster"] = poster_html  # the table shows a poster per done row; the controller reads the MP4s
        return frame

    def status(self) -> Any:
        """The processes and jobs sharing this key's request budget (this one first), and where it lives."""
        backend = getattr(self._core, "_backend", None)
        return KeyStatus(self._core.limiter.status(), embedded=bool(getattr(backend, "embedded", False)),
                         speed=float(getattr(backend, "speed", 1.0)), budget=self.client.budget.snapshot())

    def browse(self, *, live: bool = True) -> HistoryBrowser:
        """A widget over the history: filter, sort, play side by side, rate and note each run; new runs appear live."""
        return HistoryFeed(self.controller, live=live, budget=self.client.budget).view

    def plot_latency(self, theme: str = "auto", **filters: Any) -> Any:
        """Latency by resolution and duration (a matplotlib Figure); ``theme``: auto, light or dark."""
        return plots.latency_by_resolution_and_duration(self.history(**filters), theme=theme)

    def plot_measures(self, experiment: str | None = None, *, x: str = "prompt", y: str = "motion",
                      theme: str = "auto", **filters: Any) -> Any:
        """A measure of the finished runs (of ``experiment``) by a parameter, as a matplotlib Figure: every take a
        point, spread sideways within its x value, and per x value the mean with a bar of ± 1 sample standard
        deviation (n − 1). ``y``: a measure (``"motion"`` or ``"m_motion"``) or any numeric column; ``x``: a
        column of the history (``"prompt"``, ``"resolution"``, ``"duration"``...); ``filters``: those of history().
        ``fig.points`` and ``fig.means`` hold the numbers drawn."""
        column = numeric_column(y, "y")
        frame = self.history(experiment=experiment, **{"status": "done", **filters})
        if x not in frame.columns:
            raise ValidationError("x", x, f"a column of the history: {', '.join(frame.columns)}")
        metric = metrics.METRICS.get(column)
        return plots.measures_by(frame, x, column, label=metrics.label(column), whole=bool(metric and metric.whole),
                                 theme=theme)

    def plot_cost(self, theme: str = "auto", **filters: Any) -> Any:
        """What the runs cost (a matplotlib Figure): per job with a running total when they ran close together
        (grids), else cumulative against the clock; re-runs of an experiment coloured apart. ``theme``: auto,
        light or dark."""
        return plots.cost_over_time(self.history(**filters), theme=theme)

    def plot_timeline(self, runs: Any = None, *, last: int = 12, rate_limit: float | None = None,
                      theme: str = "auto", **filters: Any) -> Any:
        """Submits, polls, done and downloads of several jobs on one time axis, with the shared rate limit."""
        # runs: a Grid, or Runs / handles / run ids / request ids; without it, the `last` runs that pass
        # `filters` (the arguments of history()). rate_limit: the requests per second the slots show
        # (default: this studio's client's).
        if isinstance(runs, Grid):
            return runs.timeline(theme=theme)
        if runs is None:
            rows = self.history(**filters).sort_values("created_at").tail(last).to_dict("records")
        else:
            rows = [self._history_row(r) for r in ([runs] if isinstance(runs, (str, Run, JobHandle)) else runs)]
        jobs = [(_lane_label(row), self.controller.exchanges(row["run_id"]), row["status"]) for row in rows]
        interval = 1.0 / rate_limit if rate_limit else getattr(getattr(self.client, "limiter", None), "interval", None)
        return plots.plot_timeline(build_timeline(jobs, interval=interval), theme=theme)

    def _history_row(self, run: Any) -> dict[str, Any]:
        if isinstance(run, JobHandle):
            run = run.run
        run_id = run.run_id if isinstance(run, Run) else str(run)
        rows = self.controller.rows([run_id])
        if not rows:
            raise ValidationError("runs", run, "Runs, job handles, run ids or request ids from this history")
        return rows[0]

    def exchanges(self, run: Run | JobHandle) -> Any:
        """A run's HTTP exchanges (method, path, status, timing; never the key) as a DataFrame."""
        run = run.run if isinstance(run, JobHandle) else run
        return ExchangeFrame(pd.DataFrame(self.controller.exchanges(run.run_id)))


def numeric_column(name: Any, field: str = "where") -> str:
    """A numeric history column by its name, or a measure by its short name ("motion" is ``m_motion``)."""
    if isinstance(name, str) and name not in NUMERIC_COLUMNS and f"m_{name}" in NUMERIC_COLUMNS:
        return f"m_{name}"
    if isinstance(name, str) and name in NUMERIC_COLUMNS:
        return name
    raise ValidationError(field, name, "a numeric column of the history or a measure's name: "
                                       + ", ".join(NUMERIC_COLUMNS))


def numeric_sort(sort: Any) -> str:
    """A sort as the history takes it: its named sorts as they are, a measure by its short name too."""
    if not isinstance(sort, str) or sort in SORT_SQL:
        return sort  # type: ignore[no-any-return]  # the store names what is wrong with anything else
    name, _, way = sort.strip().partition(" ")
    try:
        column = numeric_column(name, "sort")
    except ValidationError:
        return sort  # the store says what a sort may be
    return f"{column} {way.strip()}".strip()


class _JudgeProgress:
    """A judge run's progress in its cell (an HTML output redrawn in place: a saved notebook keeps its last state)."""

    def __init__(self, controller: Controller, runs: Sequence[Run]):
        self.controller = controller
        self.runs = list(runs)
        self.prompts = {r.run_id: r.prompt or "(no prompt)" for r in self.runs}
        self.before = controller.budget().judge_usd
        self.started = pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1)
        self.handle = ipd.display(ipd.HTML(self._html(0, [])), display_id=True)  # type: ignore[no-untyped-call]

    def _html(self, done: int, failures: list[tuple[str, str]], finished: bool = False, note: str = "") -> str:
        snapshot = self.controller.budget()
        return tables.judge_progress_html(done, len(self.runs), failures, snapshot.judge_usd - self.before,
                                          money=tables.ledger(snapshot), finished=finished, note=note)

    def _draw(self, *args: Any, **kwargs: Any) -> None:
        if self.handle is not None:
            self.handle.update(ipd.HTML(self._html(*args, **kwargs)))  # type: ignore[no-untyped-call]

    def _so_far(self) -> tuple[int, list[tuple[str, str]]]:
        """How many of the runs have a judgement kept since the start, and the failed ones' reasons."""
        df = self.controller.judgements(list(self.prompts))
        df = df[df["created_at"] >= self.started]
        failed = df[df["error"].notna()]
        return (int(df["run_id"].nunique()),
                [(self.prompts.get(r, r), str(e)) for r, e in zip(failed["run_id"], failed["error"], strict=True)])

    def wait(self, rubric: Any, options: dict[str, Any]) -> list[Any]:
        """Judge the runs in a worker thread, redrawing about four times a second until they are all answered."""
        if not self.runs:
            return []
        pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="grok-nb-judging")
        try:
            future = pool.submit(self.controller.judge_many, self.runs, rubric, **options)
            while True:
                try:
                    return list(future.result(timeout=0.25))
                except concurrent.futures.TimeoutError:
                    self._draw(*self._so_far())
        finally:
            pool.shutdown(wait=False)

    def stopped(self, exc: BaseException) -> None:
        """Say where it stopped: Ctrl+C (the calls go on, their verdicts are kept) or an error (nothing was sent
        when it came before sending)."""
        done, failures = self._so_far()
        if isinstance(exc, KeyboardInterrupt):
            note = ("stopped waiting: the judge calls already sent go on and their verdicts are kept; judging again "
                    "hands them back at no cost")
        else:
            note = f"stopped: {type(exc).__name__}: {exc}"
        self._draw(done, failures, finished=True, note=note)

    def finished(self, judgements: Sequence[Any]) -> None:
        """The final line: every run answered, the failed ones with their reason."""
        failures = [(self.prompts[r.run_id], j.error) for r, j in zip(self.runs, judgements, strict=True)
                    if j.error is not None]
        self._draw(len(self.runs), failures, finished=True)


class _Experiment:
    """Sets the studio's experiment now; as a context manager, restores the previous one on exit."""

    def __init__(self, studio: Studio, name: str):
        self.studio, self.name = studio, name
        self.previous = studio.experiment_name
        studio._set_experiment(name)

    def __enter__(self) -> _Experiment:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.studio._set_experiment(self.previous)


def _lane_label(row: dict[str, Any]) -> str:
    """A job's name on a timeline: its prompt, resolution and length."""
    prompt = str(row.get("prompt") or row.get("kind") or "")
    bits = [prompt if len(prompt) <= 18 else prompt[:17] + "…", row.get("resolution")]
    length = row.get("duration")
    if isinstance(length, (int, float)) and length == length:
        bits.append(f"{length:g} s")
    return " · ".join(str(b) for b in bits if b)


def _in_kernel() -> bool:
    shell = IPython.get_ipython()
    return shell is not None and hasattr(shell, "kernel")
