"""What a job gives back: a live ``Run`` record and a ``JobHandle`` to wait on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import os
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..api.measure import Measures, mismatches
from ..api.pricing import CostEstimate, usd_text
from ..errors import DeadlineExceeded, GrokError
from .lifecycle import cost_problem
from .status import FINAL, Status, status_of

#: Job outcomes after which nothing changes by itself.
FINAL_STATUSES = tuple(s.value for s in FINAL)


@dataclass
class Run:
    """One job: what was asked, where it stands, what it cost. Updated live while it runs."""

    run_id: str
    kind: str
    model: str
    prompt: str | None
    params: dict[str, Any] = field(default_factory=dict)
    backend: str = "simulator"
    request_id: str | None = None
    status: Status = Status.SUBMITTING
    progress: int | None = None
    url: str | None = None
    path: Path | None = None
    video_bytes: int | None = None  # the size of the MP4 as downloaded (a cached copy must still have it)
    duration: float | None = None
    estimate: CostEstimate | None = None
    cost_actual_usd: float | None = None  # as the server reported it, even when it cannot be right
    #: What the budget counted for the finished job, and which figure that was (``count_cost``'s basis).
    cost_budget_usd: float | None = None
    cost_budget_basis: str | None = None
    #: ``usage.cost_in_usd_ticks`` as sent, when it was not a number (kept to say so).
    cost_reported: Any = field(default=None, repr=False)
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    latency_s: float | None = None
    polls: int = 0
    error: GrokError | None = None
    parent_run_id: str | None = None
    tags: list[str] = field(default_factory=list)
    batch_id: str | None = None  # the batch it was sent in (its batch_request_id is the run id)
    take: int | None = None  # which take of its grid cell (1, 2, ...); None outside a grid
    #: What the downloaded video measures (``grok_nb.measure``): filled in just after the download, off the loop.
    measures: Measures | None = None
    stopped: bool = False  # nobody is polling it any more (deadline, Ctrl+C); resumable by request id
    # e.g. "waiting for the key's rate limit: 2 other processes"
    waiting_note: str | None = field(default=None, repr=False)
    exchanges: list[dict[str, Any]] = field(default_factory=list, repr=False)
    #: History columns the run does not own, as last read (rating, note, measures, who made it...).
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        # Rows and older code hand in plain text; the run always holds a Status.
        if name == "status" and not isinstance(value, Status):
            value = status_of(value)
        object.__setattr__(self, name, value)

    @property
    def resolution(self) -> str | None:
        """The output's resolution (edits and extensions: the input's, capped at 720p)."""
        return self.params.get("resolution")

    @property
    def aspect_ratio(self) -> str | None:
        """The requested aspect ratio, when one applies."""
        return self.params.get("aspect_ratio")

    @property
    def cost_usd(self) -> float | None:
        """The actual cost when the server reported a plausible one, else the estimate."""
        if self.cost_basis == "actual":
            return self.cost_actual_usd
        return self.estimate.usd if self.estimate else None

    @property
    def cost_basis(self) -> str:
        """``actual`` (a plausible ``usage.cost_in_usd_ticks``) or ``estimate`` (from the price table).

        A negative figure, or one over ten times the estimate, stays in ``cost_actual_usd`` as
        reported, but the estimate stands for the run's cost (``cost_budget_basis`` says why).
        """
        if self.cost_actual_usd is None:
            return "estimate"
        estimate = self.estimate.usd if self.estimate else float("inf")
        return "actual" if cost_problem(estimate, self.cost_actual_usd) is None else "estimate"

    @property
    def finished(self) -> bool:
        """True once the job reached a final outcome."""
        return self.status.final

    @property
    def ok(self) -> bool:
        """True when the video is done and on disk."""
        return self.status == "done" and self.path is not None and self.error is None

    def receive(self, *, progress: int | None = None, url: str | None = None, duration: float | None = None,
             cost_usd: float | None = None, cost_reported: Any = None, model: str | None = None) -> None:
        """Take what an answer (a poll or a batch result) says: each field only when it says it; the model
        only when not known yet."""
        if progress is not None:
            self.progress = progress
        if url:
            self.url = url
        if duration is not None:
            self.duration = duration
        if cost_usd is not None:
            self.cost_actual_usd = cost_usd
        if cost_reported is not None:
            self.cost_reported = cost_reported
        if model and not self.model:
            self.model = model

    def mismatches(self) -> dict[str, tuple[Any, Any]]:
        """Where the video's file differs from what was asked (``{field: (asked, got)}``); empty when it matches or
        is not measured yet. An extension is asked for its input's length plus the added part."""
        if self.measures is None:
            return {}
        asked = {k: self.params.get(k) for k in ("resolution", "aspect_ratio", "generate_audio")}
        asked["duration"] = self.duration if self.kind == "extend" else self.params.get("duration") or self.duration
        return mismatches(self.measures, asked)

    def raise_for_status(self) -> Run:
        """Raise the job's error, if it has one; else return the run."""
        if self.error is not None:
            raise self.error
        return self

    def summary(self) -> str:
        """One line: kind, status, length, resolution, cost, latency, request id."""
        parts = [self.kind, self.status]
        if self.progress is not None and not self.finished:
            parts.append(f"{self.progress}%")
        if self.duration is not None:
            parts.append(f"{self.duration:g} s")
        if self.resolution:
            parts.append(self.resolution)
        if self.cost_usd is not None:
            parts.append(f"{usd_text(self.cost_usd)} ({self.cost_basis})")
        if self.latency_s is not None:
            parts.append(f"{self.latency_s:.1f} s latency")
        parts.append(f"request {self.request_id or '—'}")
        return " · ".join(parts)

    def __repr__(self) -> str:
        prompt = (self.prompt or "")[:40]
        return f"<Run {self.kind} {self.status} prompt={prompt!r} request_id={self.request_id} path={self.path}>"

    def video_src(self) -> str | None:
        """Where a browser can load the video: a path relative to the working directory, else the URL."""
        if self.path is not None and Path(self.path).is_file():
            try:
                rel = os.path.relpath(self.path)
            except ValueError:  # another drive on Windows
                rel = ".."
            if not rel.startswith(".."):
                return Path(rel).as_posix()
        if self.url:
            return self.url
        return Path(self.path).resolve().as_uri() if self.path is not None else None

    def _repr_html_(self) -> str:
        summary = html.escape(self.summary())
        prompt = html.escape(self.prompt or "")
        if self.error is not None:
            name = html.escape(type(self.error).__name__)
            return (f'<div class="grok-run grok-run-error"><div style="color:#b00020"><b>{name}</b>: '
                    f"{html.escape(str(self.error))}</div><div><i>{prompt}</i></div><div>{summary}</div></div>")
        src = self.video_src()
        shape = (self.aspect_ratio or "16:9").replace(":", "/")
        player = (f'<video class="grok-player" src="{html.escape(src)}" controls preload="metadata" playsinline '
                  f'style="max-width:100%;width:480px;aspect-ratio:{shape}"></video>'
                  if src and self.status == "done" else "")
        return f'<div class="grok-run">{player}<div><i>{prompt}</i></div><div>{summary}</div></div>'


def stopped_note(run: Run) -> str | None:
    """What a stopped run's history row says of how to pick it up again (None while someone waits for it)."""
    if not run.stopped:
        return None
    if run.request_id:
        return (f"stopped waiting; the job goes on at the server: resume with client.get({run.request_id!r}) "
                "or client.resume()")
    return ("stopped waiting during the submit; the POST is finishing in the background and its request id "
            "goes to the history: client.resume() re-attaches it")


#: How long ``result(timeout)`` waits, once its time is up, for the answer to its last look at the job.
LAST_LOOK_S = 10.0


class JobHandle:
    """A job under way: ``result()`` blocks for it, ``await handle`` awaits it, ``run`` is live.

    ``look`` (when given) polls the job once more, now, and says whether it is over at the server:
    ``result(timeout)`` asks it before giving up, so a job that is done is returned done.
    """

    def __init__(self, run: Run, task: asyncio.Task[Run], loop: asyncio.AbstractEventLoop,
                 look: Callable[[], Awaitable[bool]] | None = None):
        self.run = run
        self._task = task
        self._loop = loop
        self._look = look
        self._on_result: list[Callable[[Run], Any]] = []

    def on_result(self, fn: Callable[[Run], Any]) -> None:
        """Call ``fn(run)`` in the waiting thread each time ``result()`` or ``await`` hands the run back.

        A notebook view draws its final state again there: filed under the cell that waits, it is saved by
        nbclient even when the job ended between two cells (messages filed under no running cell are dropped).
        """
        self._on_result.append(fn)

    def _handed(self, run: Run) -> Run:
        for fn in self._on_result:
            fn(run)
        return run

    @property
    def request_id(self) -> str | None:
        """The API's id for the job, once the submit was accepted."""
        return self.run.request_id

    def done(self) -> bool:
        """True when waiting is over (finished, failed, or stopped)."""
        return self._task.done()

    def __repr__(self) -> str:
        return f"<JobHandle {self.run.kind} {self.run.status} request_id={self.run.request_id}>"

    def _repr_html_(self) -> str:
        return self.run._repr_html_()

    def _on_loop_thread(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    def result(self, timeout: float | None = None) -> Run:
        """Block until the job is finished; ``timeout`` seconds at most (the job keeps running after).

        When the time is up, the job is polled once more: one done at the server is returned done.
        """
        return self._handed(self._result(timeout))

    def _result(self, timeout: float | None) -> Run:
        if self._on_loop_thread():
            # Blocking inside the loop that runs the job (AsyncClient in a notebook cell):
            # only a re-entrant loop can make progress here.
            import nest_asyncio2

            nest_asyncio2.apply(self._loop)
            try:
                return self._loop.run_until_complete(asyncio.wait_for(asyncio.shield(self._task), timeout))
            except DeadlineExceeded:
                raise
            except asyncio.TimeoutError:
                if self._look is not None and self._loop.run_until_complete(self._last_look()):
                    return self._loop.run_until_complete(asyncio.shield(self._task))
                raise DeadlineExceeded(timeout or 0.0, request_id=self.run.request_id, run=self.run) from None
        future: concurrent.futures.Future[Run] = asyncio.run_coroutine_threadsafe(self._shielded(), self._loop)
        try:
            return future.result(timeout)
        except DeadlineExceeded:  # the job's own deadline (a TimeoutError too): it knows how long it waited
            raise
        except concurrent.futures.TimeoutError:
            if self._look is not None and asyncio.run_coroutine_threadsafe(self._last_look(), self._loop).result():
                return future.result()  # over at the server: its wait ends with the run (and its download)
            raise DeadlineExceeded(timeout or 0.0, request_id=self.run.request_id, run=self.run) from None
        except KeyboardInterrupt:
            self.stop_waiting()
            print(f"grok_nb: {self.stop_message()}", flush=True)
            raise

    async def _last_look(self) -> bool:
        """Poll the job once more (at most ``LAST_LOOK_S`` for its answer): True when it is over at the server."""
        if self._task.done():
            return True
        assert self._look is not None
        try:
            return await asyncio.wait_for(self._look(), LAST_LOOK_S)
        except asyncio.TimeoutError:
            return False

    def stop_message(self) -> str:
        """What happened to the job when its waiting stopped, and how to pick it up again."""
        rid = self.run.request_id
        if rid:
            return (f"stopped waiting for request {rid}; the job goes on at the server. "
                    f"Resume with client.get({rid!r}) or client.resume().")
        return ("stopped waiting during the submit; the POST is finishing in the background and its request id "
                "will be written to the history. Resume with client.resume().")

    async def _shielded(self) -> Run:
        return await asyncio.shield(self._task)

    def __await__(self) -> Generator[Any, None, Run]:
        if self._on_loop_thread():
            run = yield from asyncio.shield(self._task).__await__()
        else:
            run = yield from asyncio.wrap_future(
                asyncio.run_coroutine_threadsafe(self._shielded(), self._loop)).__await__()
        return self._handed(run)

    def add_done_callback(self, fn: Callable[[JobHandle], Any]) -> None:
        """Call ``fn(handle)`` once waiting is over (on the client's loop thread)."""
        self._loop.call_soon_threadsafe(self._task.add_done_callback, lambda _task: fn(self))

    def stop_waiting(self) -> None:
        """Stop polling; the job stays in the history and can be resumed by request id."""
        self._loop.call_soon_threadsafe(self._task.cancel)
