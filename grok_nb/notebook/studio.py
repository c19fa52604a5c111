"""``grok_nb.Studio``: the notebook front door: live cards, comparison grids, history, experiments."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..client import Client
from ..compare import Grid
from ..errors import ConfirmationRequired
from ..pricing import CostEstimate
from ..probe import probe
from ..results import JobHandle, Run
from ..store import filter_runs
from . import plots
from .gridview import VideoGrid
from .media import MediaServer
from .widgets import ConfirmBar, HistoryBrowser, JobCard

#: Above this estimate, a grid waits for a confirmation (confirm=True, or the Run button).
DEFAULT_CONFIRM_ABOVE_USD = 2.0


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


class Studio:
    """Owns a client, the history and the views; every job shows a live card in its cell."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, *,
                 budget_usd: float | None = None, confirm_above_usd: float | None = DEFAULT_CONFIRM_ABOVE_USD,
                 player: str = "local", client: Client | None = None, **client_options: Any):
        self.client = client or Client(api_key, base_url, **client_options)
        self.budget_usd = budget_usd
        self.confirm_above_usd = confirm_above_usd
        if player not in ("local", "remote"):
            raise ValueError("player must be 'local' (served from the cache) or 'remote' (the result URL)")
        self.player = player
        self.experiment_name: str | None = None
        self._probes: dict[str, tuple[int, int, float]] = {}

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
        card = JobCard(self.player_source)
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

    def generate(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Like ``Client.generate``, shown as a live card; returns the handle at once."""
        return self._job(self.client.generate, *args, **kwargs)

    def edit(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Like ``Client.edit``, shown as a live card; returns the handle at once."""
        return self._job(self.client.edit, *args, **kwargs)

    def extend(self, *args: Any, **kwargs: Any) -> JobHandle:
        """Like ``Client.extend``, shown as a live card; returns the handle at once."""
        return self._job(self.client.extend, *args, **kwargs)

    def get(self, request_id: str, **kwargs: Any) -> JobHandle:
        """Re-attach to a job by request id, shown as a live card."""
        return self._job(self.client.get, request_id, **kwargs)

    def estimate_cost(self, *args: Any, **kwargs: Any) -> CostEstimate:
        """The price before sending; the arguments of generate/edit/extend."""
        return self.client.estimate_cost(*args, **kwargs)

    # -- experiments ----------------------------------------------------------------------------
    def experiment(self, name: str) -> "_Experiment":
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
        budget = budget_usd if budget_usd is not None else self.budget_usd
        grid.check_budget(budget, None, None)  # over budget: nothing is sent, no confirmation can help
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
                since: Any = None) -> "HistoryFrame":
        """The history as a DataFrame, filtered; shown with dollars, seconds and short prompts."""
        wanted = ([tags] if isinstance(tags, str) else list(tags or [])) + ([experiment] if experiment else [])
        df = filter_runs(self.client.history(), status=status, kind=kind, text=text, tags=wanted, since=since)
        return HistoryFrame(df.reset_index(drop=True))

    def browse(self) -> HistoryBrowser:
        """A widget over the history: filter, sort, play side by side, rate, keep notes."""
        return HistoryBrowser(self.client.store, self.player_source)

    def plot_latency(self, **filters: Any) -> Any:
        """Latency by resolution and duration (a matplotlib Figure)."""
        return plots.latency_by_resolution_and_duration(self.history(**filters))

    def plot_cost(self, **filters: Any) -> Any:
        """Cumulative cost over time (a matplotlib Figure)."""
        return plots.cost_over_time(self.history(**filters))

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

    def __enter__(self) -> "_Experiment":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.studio._set_experiment(self.previous)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


try:
    import pandas as _pd

    class HistoryFrame(_pd.DataFrame):
        """A history DataFrame that renders cost as dollars, latency in seconds and prompts truncated."""

        _DISPLAY = ["created_at", "kind", "status", "prompt", "resolution", "video_duration", "cost_actual_usd",
                    "cost_estimated_usd", "latency_s", "poll_count", "tags", "rating", "request_id"]

        @property
        def _constructor(self) -> type:
            return HistoryFrame

        def _repr_html_(self) -> str:
            cols = [c for c in self._DISPLAY if c in self.columns]
            view = _pd.DataFrame(self[cols]).copy()
            if "prompt" in view:
                view["prompt"] = view["prompt"].fillna("").map(lambda p: p if len(p) <= 48 else p[:47] + "…")
            if "created_at" in view:
                view["created_at"] = view["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
            if "tags" in view:
                view["tags"] = view["tags"].map(", ".join)
            formats = {"cost_actual_usd": "${:.3f}", "cost_estimated_usd": "${:.3f}", "latency_s": "{:.1f} s",
                       "video_duration": "{:g} s"}
            styler = view.style.format({k: v for k, v in formats.items() if k in view}, na_rep="—")
            return styler.hide(axis="index").to_html()
except ImportError:  # pragma: no cover
    pass

