"""``grok_nb.Studio``: the notebook front door: live cards, comparison grids, history, experiments."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..api.pricing import CostEstimate
from ..api.probe import probe
from ..client import Client
from ..errors import ConfirmationRequired
from ..jobs.results import JobHandle, Run
from . import plots
from .browser import HistoryBrowser
from .compare import Grid
from .gridview import VideoGrid
from .media import MediaServer
from .tables import HistoryFrame
from .widgets import ConfirmBar, JobCard

__all__ = ["HistoryFrame", "Studio"]

#: Above this estimate, a grid waits for a confirmation (confirm=True, or the Run button).
DEFAULT_CONFIRM_ABOVE_USD = 2.0


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


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
    del method.__wrapped__  # type: ignore[attr-defined]
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
        if player not in ("local", "remote"):
            raise ValueError("player must be 'local' (served from the cache) or 'remote' (the result URL)")
        if client is None:
            client = Client(api_key, base_url, budget_usd=budget_usd, **client_options)
        elif budget_usd is not None:
            client.budget.set_limit(budget_usd)
        self.client = client
        self.confirm_above_usd = confirm_above_usd
        self.player = player
        self.experiment_name: str | None = None
        self._probes: dict[str, tuple[int, int, float]] = {}
        waiting = self.client.waiting()
        if waiting:
            print(f"grok_nb: {waiting} job{'s' if waiting != 1 else ''} of this history "
                  f"{'are' if waiting != 1 else 'is'} unfinished; studio.resume() shows them again (sends no submit).",
                  flush=True)

    @property
    def budget_usd(self) -> float | None:
        """The spending limit of the studio's client (None: no limit)."""
        return self.client.budget_usd

    @property
    def spent_usd(self) -> float:
        """What finished jobs sent through this studio cost."""
        return self.client.spent_usd

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent."""
        return self.client.remaining_usd

    def __repr__(self) -> str:
        return f"<Studio {self.client!r} experiment={self.experiment_name!r}>"

    # -- players --------------------------------------------------------------------------------
    def player_source(self, run: Run) -> tuple[str, int, int, float | None] | None:
        """(src, width, height, seconds) for a finished run's player; None when there is nothing to play."""
        if run.path is None or not Path(run.path).is_file():
            return None
        key = str(run.path)
        if key not in self._probes:
            info = probe(run.path)
            self._probes[key] = (info.width, info.height, info.duration)
        width, height, seconds = self._probes[key]
        src = None
        if self.player == "local":
            src = MediaServer.for_folder(Path(run.path).parent).url_for(run.path)
        src = src or run.url
        return (src, width, height, seconds) if src else None

    # -- jobs with cards ------------------------------------------------------------------------
    def _job(self, method: Any, *args: Any, display: bool = True, **kwargs: Any) -> JobHandle:
        card = JobCard(self.player_source, budget=self.client.budget)
        try:
            handle = method(*args, wait=False, on_update=card.update, **kwargs)
        except BaseException:
            card.close()
            raise
        card.update(handle.run)
        handle.card = card  # type: ignore[attr-defined]
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
            cards[run.run_id] = JobCard(self.player_source, budget=self.client.budget)
            return cards[run.run_id].update

        handles = self.client.resume(on_update=card_for)
        for handle in handles:
            card = cards.get(handle.run.run_id) or JobCard(self.player_source, budget=self.client.budget)
            card.update(handle.run)
            handle.card = card  # type: ignore[attr-defined]
            if display:
                _display(card)
        return handles

    def estimate_cost(self, *args: Any, **kwargs: Any) -> CostEstimate:
        """The price before sending; the arguments of generate/edit/extend."""
        return self.client.estimate_cost(*args, **kwargs)

    # -- experiments ----------------------------------------------------------------------------
    def experiment(self, name: str) -> _Experiment:
        """Tag every following run with ``name``; as a context manager, only runs inside the block."""
        return _Experiment(self, name)

    def _set_experiment(self, name: str | None) -> None:
        tags = [t for t in self.client.tags if t != self.experiment_name]
        self.experiment_name = name
        self.client.tags[:] = tags + ([name] if name else [])

    # -- grids ----------------------------------------------------------------------------------
    def compare(self, *, repeats: int = 1, budget_usd: float | None = None, confirm: bool | None = None,
                display: bool = True, **axes: Any) -> Grid:
        """A grid of generate() jobs: list arguments are axes, scalars are fixed; priced and guarded first."""
        grid = Grid(self.client, axes, repeats, tags=[])
        grid.check_budget(budget_usd, None, None)  # over budget: nothing is sent, no confirmation can help
        budget = budget_usd if budget_usd is not None else self.budget_usd
        view = VideoGrid(grid, self.player_source, store=self.client.store, budget_usd=budget)
        grid.view = view  # type: ignore[attr-defined]

        def start() -> None:
            grid.start(view.cell_callback)
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
        df = self.client.history(status=status, kind=kind, text=text, tags=wanted, since=since)  # filtered in SQL
        return HistoryFrame(df.reset_index(drop=True))

    def status(self) -> Any:
        """The processes and jobs sharing this key's request budget (this one first), and where it lives."""
        from .keystatus import KeyStatus

        return KeyStatus(self.client.limiter.status())

    def browse(self, *, live: bool = True) -> HistoryBrowser:
        """A widget over the history: filter, sort, play side by side, rate and note each run; new runs appear live."""
        return HistoryBrowser(self.client.store, self.player_source, live=live)

    def plot_latency(self, theme: str = "auto", **filters: Any) -> Any:
        """Latency by resolution and duration (a matplotlib Figure); ``theme``: auto, light or dark."""
        return plots.latency_by_resolution_and_duration(self.history(**filters), theme=theme)

    def plot_cost(self, theme: str = "auto", **filters: Any) -> Any:
        """Cumulative cost over time (a matplotlib Figure); ``theme``: auto, light or dark."""
        return plots.cost_over_time(self.history(**filters), theme=theme)

    def plot_timeline(self, runs: Any = None, *, last: int = 12, rate_limit: float | None = None,
                      theme: str = "auto", **filters: Any) -> Any:
        """Submits, polls, done and downloads of several jobs on one time axis, with the shared rate limit."""
        # runs: a Grid, or Runs / handles / run ids / request ids; without it, the `last` runs that pass
        # `filters` (the arguments of history()). rate_limit: the requests per second the slots show
        # (default: this studio's client's).
        from .timeline import build_timeline

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
            from ..errors import ValidationError

            raise ValidationError("runs", run, "Runs, job handles, run ids or request ids from this history")
        return row

    def exchanges(self, run: Run | JobHandle) -> Any:
        """A run's HTTP exchanges (method, path, status, timing; never the key) as a DataFrame."""
        import pandas as pd

        run = run.run if isinstance(run, JobHandle) else run
        return pd.DataFrame(self.client.store.exchanges(run.run_id))


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
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")
