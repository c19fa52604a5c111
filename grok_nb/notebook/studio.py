"""``grok_nb.Studio``: the notebook front door: live cards, comparison grids, history, experiments."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import IPython
import IPython.display as ipd
import pandas as pd

from ..api.batch import BEST_EFFORT_NOTE as BATCH_NOTE
from ..api.pricing import CostEstimate
from ..client import Client
from ..errors import ConfirmationRequired, ValidationError
from ..jobs.results import JobHandle, Run
from . import plots
from .browser import HistoryBrowser, HistoryFeed
from .compare import Grid
from .controller import Controller, poster_html
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
                 player: str = "local", client: Client | None = None, **client_options: Any):
        """A client (new, or ``client=``) with a budget for everything sent through it, and the views.

        ``confirm_above_usd``: a grid estimated above it waits for confirm=True or its Run button.
        ``player``: 'local' plays the cached MP4s, 'remote' the result URLs (a browser on another machine).
        """
        controller = Controller(None, player)  # refuses an unknown player before a client is made
        if client is None:
            client = Client(api_key, base_url, budget_usd=budget_usd, **client_options)
        elif budget_usd is not None:
            client.budget.set_limit(budget_usd)
        self.client = client
        controller.store = client.store
        self.controller = controller  # every read and write the views ask for
        self.confirm_above_usd = confirm_above_usd
        self.player = player
        self.experiment_name: str | None = None
        waiting = self._core.waiting()
        if waiting:
            print(f"grok_nb: {waiting} job{'s' if waiting != 1 else ''} of this history "
                  f"{'are' if waiting != 1 else 'is'} unfinished; studio.resume() shows them again (sends no submit).",
                  flush=True)

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

    def _job(self, method: Any, *args: Any, display: bool = True, **kwargs: Any) -> JobHandle:
        card = JobCard(budget=self.client.budget)
        try:
            handle: JobHandle = method(*args, wait=False, on_update=self._feed(card), **kwargs)
        except BaseException:
            card.close()
            raise
        self._feed(card)(handle.run)
        handle.card = card  # type: ignore[attr-defined]  # the card rides on its handle
        if display:
            _display(card)
        return handle

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
            card = cards.get(handle.run.run_id) or JobCard(budget=self.client.budget)
            self._feed(card)(handle.run)
            handle.card = card  # type: ignore[attr-defined]  # the card rides on its handle
            if display:
                _display(card)
        return handles

    def estimate_cost(self, *args: Any, **kwargs: Any) -> CostEstimate:
        """The price before sending; the arguments of generate/edit/extend."""
        estimate: CostEstimate = self._core.estimate_cost(*args, **kwargs)
        return estimate

    # -- experiments ----------------------------------------------------------------------------
    def experiment(self, name: str) -> _Experiment:
        """Tag every following run with ``name``; as a context manager, only runs inside the block."""
        return _Experiment(self, name)

    def _set_experiment(self, name: str | None) -> None:
        tags = [t for t in self.client.tags if t != self.experiment_name]
        self.experiment_name = name
        self.client.tags[:] = tags + ([name] if name else [])

    # -- grids ----------------------------------------------------------------------------------
    def grid(self, *, repeats: int = 1, budget_usd: float | None = None, confirm: bool | None = None,
             display: bool = True, batch: bool = False, **axes: Any) -> Grid:
        """A comparison grid (the same as :meth:`compare`); ``batch=True`` sends it as one batch."""
        return self.compare(repeats=repeats, budget_usd=budget_usd, confirm=confirm, display=display, batch=batch,
                            **axes)

    def compare(self, *, repeats: int = 1, budget_usd: float | None = None, confirm: bool | None = None,
                display: bool = True, batch: bool = False, **axes: Any) -> Grid:
        """A grid of generate() jobs: list arguments are axes, scalars are fixed; priced and guarded first.

        ``batch=True`` sends the grid as one batch: outside the key's rate limit, best effort
        (typically within 24 hours), billed at standard prices; the grid fills in as results arrive.
        """
        grid = Grid(self.client, axes, repeats, tags=[], batch=batch)
        grid.check_budget(budget_usd, None, None)  # over budget: nothing is sent, no confirmation can help
        budget = budget_usd if budget_usd is not None else self.budget_usd
        view = VideoGrid(grid, on_intent=self.controller.review, budget_usd=budget)
        grid.view = view  # type: ignore[attr-defined]
        if batch:
            view.widget.message = BATCH_NOTE

        def cell_update(index: int) -> Callable[[Run], None]:
            draw = view.cell_callback(index)

            def on_update(run: Run) -> None:
                view.set_media(index, self.controller.media(run))  # found before the cell's last draw
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
            bar = ConfirmBar(f"{exc.jobs} jobs, estimated <b>${exc.estimate_usd:.2f}</b> (more than "
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
                since: Any = None) -> HistoryFrame:
        """The history as a DataFrame, filtered; shown with dollars, seconds and short prompts."""
        wanted = ([tags] if isinstance(tags, str) else list(tags or [])) + ([experiment] if experiment else [])
        df = self._core.history(status=status, kind=kind, text=text, tags=wanted, since=since)  # filtered in SQL
        frame = HistoryFrame(df.reset_index(drop=True))
        frame.attrs["poster"] = poster_html  # the table shows a poster per done row; the controller reads the MP4s
        return frame

    def status(self) -> Any:
        """The processes and jobs sharing this key's request budget (this one first), and where it lives."""
        embedded = bool(getattr(getattr(self._core, "_backend", None), "embedded", False))
        return KeyStatus(self._core.limiter.status(), embedded=embedded)

    def browse(self, *, live: bool = True) -> HistoryBrowser:
        """A widget over the history: filter, sort, play side by side, rate and note each run; new runs appear live."""
        return HistoryFeed(self.client.store, self.controller.media, live=live).view

    def plot_latency(self, theme: str = "auto", **filters: Any) -> Any:
        """Latency by resolution and duration (a matplotlib Figure); ``theme``: auto, light or dark."""
        return plots.latency_by_resolution_and_duration(self.history(**filters), theme=theme)

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
        store = self.client.store
        if runs is None:
            rows = self.history(**filters).sort_values("created_at").tail(last).to_dict("records")
        else:
            rows = [self._history_row(r) for r in ([runs] if isinstance(runs, (str, Run, JobHandle)) else runs)]
        jobs = [(_lane_label(row), store.exchanges(row["run_id"]), row["status"]) for row in rows]
        interval = 1.0 / rate_limit if rate_limit else getattr(getattr(self.client, "limiter", None), "interval", None)
        return plots.plot_timeline(build_timeline(jobs, interval=interval), theme=theme)

    def _history_row(self, run: Any) -> dict[str, Any]:
        if isinstance(run, JobHandle):
            run = run.run
        run_id = run.run_id if isinstance(run, Run) else str(run)
        row = self.client.store.get(run_id) or self.client.store.find(run_id)
        if row is None:
            raise ValidationError("runs", run, "Runs, job handles, run ids or request ids from this history")
        return dict(row)

    def exchanges(self, run: Run | JobHandle) -> Any:
        """A run's HTTP exchanges (method, path, status, timing; never the key) as a DataFrame."""
        run = run.run if isinstance(run, JobHandle) else run
        return ExchangeFrame(pd.DataFrame(self.client.store.exchanges(run.run_id)))


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
