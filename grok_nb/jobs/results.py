"""What a job gives back: a live ``Run`` record and a ``JobHandle`` to wait on it."""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..api.pricing import CostEstimate
from ..errors import DeadlineExceeded, GrokError, JobError
from .lifecycle import FINAL, Status, cost_problem, status_of

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
    stopped: bool = False  # nobody is polling it any more (deadline, Ctrl+C); resumable by request id
    # e.g. "waiting for the key's rate limit: 2 other processes"
    waiting_note: str | None = field(default=None, repr=False)
    exchanges: list[dict[str, Any]] = field(default_factory=list, repr=False)

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

    def to_row(self, base_url: str | None = None) -> dict[str, Any]:
        """The history columns for this run (never image data, never the key)."""
        p = self.params
        error_code = getattr(self.error, "code", None) or (type(self.error).__name__ if self.error else None)
        return {
            "run_id": self.run_id, "request_id": self.request_id, "backend": self.backend, "base_url": base_url,
            "kind": self.kind, "model": self.model, "prompt": self.prompt,
            "duration": self.duration if self.duration is not None else p.get("duration"),
            "resolution": p.get("resolution"), "aspect_ratio": p.get("aspect_ratio"), "image": p.get("image"),
            "reference_images": p.get("reference_images"), "generate_audio": p.get("generate_audio"),
            "input_video": p.get("input_video"), "parent_run_id": self.parent_run_id, "status": self.status.value,
            "progress": self.progress, "error_code": error_code,
            "error_message": str(self.error) if self.error else self._stopped_note(),
            "submitted_at": self.submitted_at.isoformat() if self.submitted_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "latency_s": self.latency_s, "poll_count": self.polls,
            "cost_estimated_usd": self.estimate.usd if self.estimate else None,
            "cost_actual_usd": self.cost_actual_usd, "cost_budget_usd": self.cost_budget_usd,
            "cost_budget_basis": self.cost_budget_basis, "video_url": self.url, "video_duration": self.duration,
            "local_path": str(self.path) if self.path else None, "video_bytes": self.video_bytes,
            "tags": list(self.tags), "batch_id": self.batch_id,
        }

    def _stopped_note(self) -> str | None:
        if not self.stopped:
            return None
        if self.request_id:
            return (f"stopped waiting; the job goes on at the server: resume with client.get({self.request_id!r}) "
                    "or client.resume()")
        return ("stopped waiting during the submit; the POST is finishing in the background and its request id "
                "goes to the history: client.resume() re-attaches it")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        """Rebuild a run from its history row (to resume it, or to show it)."""
        def when(value: Any) -> datetime | None:
            return datetime.fromisoformat(value) if value else None

        params = {k: row.get(k) for k in ("prompt", "duration", "resolution", "aspect_ratio", "image",
                                          "reference_images", "generate_audio", "input_video")}
        estimate = CostEstimate(row["cost_estimated_usd"]) if row.get("cost_estimated_usd") is not None else None
        error = (JobError(row["error_message"], request_id=row.get("request_id"))
                 if row.get("error_message") and status_of(row.get("status")).final
                 and status_of(row.get("status")) is not Status.DONE else None)
        return cls(
            run_id=row["run_id"], kind=row["kind"], model=row.get("model") or "", prompt=row.get("prompt"),
            params=params, backend=row.get("backend") or "", request_id=row.get("request_id"),
            status=row["status"], progress=row.get("progress"), url=row.get("video_url"),
            path=Path(row["local_path"]) if row.get("local_path") else None, video_bytes=row.get("video_bytes"),
            duration=row.get("video_duration") if row.get("video_duration") is not None else row.get("duration"),
            estimate=estimate, cost_actual_usd=row.get("cost_actual_usd"),
            cost_budget_usd=row.get("cost_budget_usd"), cost_budget_basis=row.get("cost_budget_basis"),
            submitted_at=when(row.get("submitted_at")),
            finished_at=when(row.get("finished_at")), latency_s=row.get("latency_s"),
            polls=row.get("poll_count") or 0, error=error, parent_run_id=row.get("parent_run_id"),
            tags=list(row.get("tags") or []), batch_id=row.get("batch_id"),
        )

    def take(self, *, progress: int | None = None, url: str | None = None, duration: float | None = None,
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
            parts.append(f"${self.cost_usd:.3f} ({self.cost_basis})")
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


class JobHandle:
    """A job under way: ``result()`` blocks for it, ``await handle`` awaits it, ``run`` is live."""

    def __init__(self, run: Run, task: asyncio.Task[Run], loop: asyncio.AbstractEventLoop):
        self.run = run
        self._task = task
        self._loop = loop

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
        """Block until the job is finished; ``timeout`` seconds at most (the job keeps running after)."""
        if self._on_loop_thread():
            # Blocking inside the loop that runs the job (AsyncClient in a notebook cell):
            # only a re-entrant loop can make progress here.
            import nest_asyncio2

            nest_asyncio2.apply(self._loop)
            return self._loop.run_until_complete(asyncio.wait_for(asyncio.shield(self._task), timeout))
        future: concurrent.futures.Future[Run] = asyncio.run_coroutine_threadsafe(self._shielded(), self._loop)
        try:
            return future.result(timeout)
        except DeadlineExceeded:  # the job's own deadline (a TimeoutError too): it knows how long it waited
            raise
        except concurrent.futures.TimeoutError:
            raise DeadlineExceeded(timeout or 0.0, request_id=self.run.request_id, run=self.run) from None
        except KeyboardInterrupt:
            self.stop_waiting()
            print(f"grok_nb: {self.stop_message()}", flush=True)
            raise

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
            return asyncio.shield(self._task).__await__()
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shielded(), self._loop)).__await__()

    def add_done_callback(self, fn: Callable[[JobHandle], Any]) -> None:
        """Call ``fn(handle)`` once waiting is over (on the client's loop thread)."""
        self._loop.call_soon_threadsafe(self._task.add_done_callback, lambda _task: fn(self))

    def stop_waiting(self) -> None:
        """Stop polling; the job stays in the history and can be resumed by request id."""
        self._loop.call_soon_threadsafe(self._task.cancel)
