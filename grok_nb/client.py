"""The public client for xAI's video API: one async core (``AsyncClient``) and a thin sync facade (``Client``).

A job goes: validate (no I/O) → reserve its price in the budget → record a history row →
submit (never resent once it may have reached the server, never cancelled by a waiter) →
record the request id → poll when the scheduler says it is worth it → download the MP4 at
once (result URLs expire). The engine (``engine.py``) does the work; this module turns
what users hold into specs and hands back ``Run`` records and ``JobHandle`` s.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import os
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import httpx

from .api import media, validation
from .api.models import ModelInfo, parse_models_listing, with_allowed_values
from .api.pricing import CostEstimate
from .api.validation import DEFAULT_MODEL, JobSpec, VideoRef
from .backends import Backend, resolve_backend
from .errors import ValidationError, error_from_response
from .history.store import RunStore, open_store
from .jobs.budget import Budget, Reservation
from .jobs.lifecycle import RESUMABLE, Status
from .jobs.policy import PollPolicy
from .jobs.results import JobHandle, Run
from .runtime.batch import BatchJob, SyncBatch, resumable_batches
from .runtime.cache import cached_problem, sweep_parts
from .runtime.engine import NOT_SENT_AFTER_CRASH, UNCERTAIN_AFTER_CRASH, Engine, UpdateCallback, reconcile_orphans
from .runtime.files import Uploads
from .runtime.logs import protect_secret
from .runtime.ratelimit import make_limiter
from .runtime.scheduler import POLL
from .runtime.transport import Api
from .settings import check_home, home_dir, redact_url

DEFAULT_DEADLINE_S = 15 * 60.0
DEFAULT_RATE_LIMIT = 1.0  # requests per second, polls included: xAI's limit for the video models
#: Requests are spaced a little wider than the limit, so jitter on the way never lands two closer than it allows.
RATE_SAFETY = 0.95
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: The statuses a resume looks at.
UNFINISHED = sorted(s.value for s in RESUMABLE)
#: How long closing a client (or the interpreter) waits for POSTs in flight to bring back their ids.
SETTLE_SUBMITS_S = 30.0

P = ParamSpec("P")
T = TypeVar("T")


class AsyncClient:
    """The async core: ``await client.generate(...)`` and friends."""

    home: Path  # the data folder: history, video cache, key-sharing state
    budget: Budget  # the ledger of what this client may spend, has spent and holds for jobs under way
    tags: list[str]  # put on every run of this client
    policy: PollPolicy  # the timings of waiting: deadline, poll gaps, retries
    cache_dir: Path  # where finished MP4s are kept
    store: RunStore  # the run history (SQLite in the home, or PostgreSQL)
    limiter: Any  # the key's request budget (shared with other processes on the key)

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        rate_limit: float | None = None,
        poll_interval: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        home: str | os.PathLike[str] | None = None,
        tags: Sequence[str] = (),
        budget_usd: float | None = None,
        simulator_speed: float | None = None,
        policy: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        quiet: bool = False,
        backend: Backend | None = None,
        limiter: Any = None,
    ):
        """Settings come from the arguments, then XAI_API_KEY / GROK_NB_BASE_URL / GROK_NB_HOME, then defaults.

        With neither a key nor a base URL, videos come from the embedded simulator (it says so).
        """
        self.home = check_home(home_dir(home))  # a read-only home is reported before anything is sent
        self.budget = Budget(budget_usd)
        self.tags: list[str] = validation.check_tags(tags)
        self._backend = backend or resolve_backend(api_key, base_url, simulator_speed=simulator_speed, quiet=quiet)
        protect_secret(self._backend.api_key, self)
        speed = self._backend.speed
        if policy is None:
            # Defaults follow the server's clock (the simulator runs faster); explicit values are taken as given.
            policy = PollPolicy(deadline=deadline).scaled(speed)
            if poll_interval is not None:
                policy = replace(policy, interval=poll_interval, max_interval=max(poll_interval, policy.max_interval))
        self.policy = policy
        self.cache_dir = self.home / "videos"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        sweep_parts(self.cache_dir)  # downloads cut off by a process that is gone
        self.store = open_store(self.home)  # GROK_NB_HISTORY_URL (PostgreSQL), else the SQLite file in the home
        rate = rate_limit if rate_limit is not None else DEFAULT_RATE_LIMIT * RATE_SAFETY * speed
        if limiter is None:
            # One budget per key for every process on this machine (or beyond, with GROK_NB_SHARED_URL);
            # the embedded simulator's key is this process's own, so there is nothing to share.
            limiter = make_limiter(None if self._backend.embedded else self._backend.api_key, rate, self.home)
        self.limiter = limiter
        self._engine = Engine(
            Api(self._backend.base_url, self._backend.api_key, timeout=timeout, transport=transport),
            store=self.store, cache_dir=self.cache_dir, policy=policy, limiter=self.limiter, budget=self.budget,
            backend=self._backend.name, base_url=redact_url(self._backend.base_url), speed=speed,
            secret=self._backend.api_key)
        self._models: list[ModelInfo] | None = None

    # -- what users see --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._backend.base_url

    @property
    def backend(self) -> str:
        """``xai`` or ``simulator``."""
        return self._backend.name

    @property
    def simulated(self) -> bool:
        """True when videos come from a simulator, not xAI."""
        return self._backend.name == "simulator"

    @property
    def scheduler(self) -> Any:
        """The scheduler that spends this client's request budget."""
        return self._engine.scheduler

    @property
    def budget_usd(self) -> float | None:
        """The spending limit for everything sent through this client (None: no limit)."""
        return self.budget.limit_usd

    @property
    def spent_usd(self) -> float:
        """What this client's finished jobs cost (actual where reported, else estimated)."""
        return self.budget.spent_usd

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent: the budget less what is spent and held for jobs under way."""
        return self.budget.remaining_usd

    def __repr__(self) -> str:
        budget = "" if self.budget_usd is None else f" budget=${self.budget_usd:.2f} spent=${self.spent_usd:.2f}"
        return (f"<{type(self).__name__} backend={self.backend} base_url={redact_url(self.base_url)} "
                f"api_key={'set' if self._backend.api_key else 'none'} home={self.home}{budget}>")

    def history(self, **filters: Any) -> Any:
        """Every run (or those passing status, kind, tags, text, since, made_by), one row each, oldest first."""
        self._engine.writer.flush()
        return self.store.dataframe(**filters)

    def estimate_cost(self, *args: Any, kind: str = "generate", **kwargs: Any) -> CostEstimate:
        """The price of a job before anything is sent; takes the arguments of generate/edit/extend."""
        kind = validation.check_kind(kind)
        if kind == "edit":
            return self._edit_spec(*args, **kwargs).estimate
        if kind == "extend":
            return self._extend_spec(*args, **kwargs).estimate
        return validation.generate_spec(*args, **kwargs).estimate

    # -- the three kinds of job ------------------------------------------------------------------
    @with_allowed_values("generate")  # the values each argument may take, per model (help(), Shift-Tab)
    async def generate(
        self,
        prompt: str | None = None,
        *,
        image: Any = None,
        reference_images: Sequence[Any] | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        last_frame: Any = None,
        keyframes: Sequence[dict[str, Any]] | None = None,
        reference_audios: Sequence[str | dict[str, Any]] | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        spec = validation.generate_spec(prompt, image=image, reference_images=reference_images, duration=duration,
                                        resolution=resolution, aspect_ratio=aspect_ratio, model=model,
                                        generate_audio=generate_audio, user=user, last_frame=last_frame,
                                        keyframes=keyframes, reference_audios=reference_audios)
        return await self._start(spec, tags, wait, on_update)

    @with_allowed_values("edit")
    async def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        user: str | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Change a video by prompt.

        ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id.
        """
        spec = self._edit_spec(video, prompt, model=model, user=user, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    @with_allowed_values("extend")
    async def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Continue a video (same inputs as edit); ``duration`` is the length of the added part only."""
        spec = self._extend_spec(video, prompt, duration=duration, model=model, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    async def start_many(self, jobs: Sequence[dict[str, Any]], *, tags: Sequence[str] = (),
                         on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Start several generate() jobs (one dict of arguments each) as one: all fit the budget, or none is sent."""
        specs = [validation.generate_spec(**args) for args in jobs]  # every one validated before anything is sent
        tag_list = validation.check_tags(tags)
        reservations = self.budget.reserve([s.estimate.usd for s in specs])
        handles = []
        try:
            for i, (spec, reservation) in enumerate(zip(specs, reservations, strict=True)):
                callback = on_update(i) if on_update else None
                handles.append(await self._start(spec, tag_list, False, callback, reservation))
        finally:
            for reservation in reservations[len(handles):]:  # jobs that never started hold no money
                self.budget.release(reservation)
        return handles  # type: ignore[return-value]

    async def get(self, request_id: str, *, wait: bool = True,
                  on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        request_id = validation.check_request_id(request_id)
        await asyncio.to_thread(self._engine.writer.flush)
        row = await asyncio.to_thread(self.store.find, request_id)
        if row is not None:
            run = Run.from_row(row)
            # A done run is handed back only while its MP4 is whole; else the engine downloads it again.
            if run.status in (Status.FAILED, Status.EXPIRED, Status.MODERATED, Status.REJECTED) or (
                    run.status is Status.DONE and run.path is not None
                    and await asyncio.to_thread(cached_problem, run.path, run.video_bytes) is None):
                return run if wait else self._handle(run, _finished(run))
            work = await self._engine.attach(run, on_update)
        else:  # started elsewhere: this history learns of it now
            run = Run(run_id=uuid.uuid4().hex, kind="unknown", model="", prompt=None, backend=self.backend,
                      request_id=request_id, status=Status.PENDING)
            work = await self._engine.attach(run, on_update, new=True)
        return await self._launch(run, work, wait)

    async def resume(self, *, on_update: Callable[[Run], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Re-attach every unfinished job of this history that has a request id; sends no submit.

        Rows left ``submitting`` by a process that is gone become ``uncertain`` if their POST had left (it
        may or may not have started a job, so nothing is resent) and ``rejected`` if it never left
        (nothing sent, nothing billed). Jobs another live process is waiting for are left to it.
        """
        await asyncio.to_thread(self._engine.writer.flush)
        rows = await asyncio.to_thread(self.store.rows, status=UNFINISHED)
        batch_rows = [row for row in rows if row.get("batch_id")]  # followed by their batch, never polled alone
        rows = [row for row in rows if not row.get("batch_id")]
        attach, lost, unsent = reconcile_orphans(rows, set(self._engine.jobs), self._engine.owner)
        for row in lost:
            message = UNCERTAIN_AFTER_CRASH.format(when=row.get("submitted_at") or row["created_at"])
            await asyncio.to_thread(self.store.update, row["run_id"], status=Status.UNCERTAIN.value,
                                    error_code="SubmitUncertainError", error_message=message)
        for row in unsent:
            await asyncio.to_thread(self.store.update, row["run_id"], status=Status.REJECTED.value,
                                    error_code="NotSent", error_message=NOT_SENT_AFTER_CRASH)
        handles = []
        for run_id, job in list(self._engine.jobs.items()):  # this process's own jobs
            handle = self._handles.get(run_id)
            if handle is None or handle.done():  # nobody waits for it any more: wait again
                callback = on_update(job.run) if on_update else None
                if callback is not None:
                    job.listeners.append(callback)
                handle = self._handle(job.run, self._engine.follow(job))
            handles.append(handle)
        for row in attach:
            if not await asyncio.to_thread(self.store.claim, row, self._engine.owner):
                continue  # another process took it first, or holds its lease: one owner per job
            run = Run.from_row(row)
            callback = on_update(run) if on_update else None
            handles.append(self._handle(run, await self._engine.attach(run, callback)))
        handles.extend(await self._resume_batches(batch_rows, on_update))
        return handles

    def waiting(self) -> int:
        """How many jobs of this history wait to be resumed (unfinished, with no live process on them)."""
        attach, lost, unsent = reconcile_orphans(self.store.rows(status=UNFINISHED), set(self._engine.jobs),
                                                 self._engine.owner)
        return len(attach) + len(lost) + len(unsent)

    async def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The video models this key may use (``GET /v1/video-generation-models``), cached after the first call."""
        if self._models is None or refresh:
            await self.scheduler.turn(POLL)
            answer = await self._engine.api.request("GET", "/v1/video-generation-models")
            if not answer.ok:
                raise error_from_response(answer.status_code or 0, answer.body, headers=answer.headers,
                                          secret=self._backend.api_key)
            self._models = parse_models_listing(answer.body)
        return list(self._models or [])

    # -- plumbing --------------------------------------------------------------------------------
    def _edit_spec(self, video: Any, prompt: Any = None, **options: Any) -> JobSpec:
        return validation.edit_spec(prompt, self._video_ref(video), **options)

    def _extend_spec(self, video: Any, prompt: Any = None, **options: Any) -> JobSpec:
        return validation.extend_spec(prompt, self._video_ref(video), **options)

    def _video_ref(self, video: Any) -> VideoRef:
        """A Run, a JobHandle, a request id in the history, or a URL → the input video."""
        if isinstance(video, JobHandle):
            video = video.run
        if isinstance(video, Run):
            if not video.url:
                raise ValidationError("video", video, "a finished run that has a video URL (wait for it first)")
            return VideoRef(video.url, video.duration, video.resolution, video.run_id)
        if isinstance(video, str) and video.startswith(("http://", "https://")):
            row = self.store.find_by_url(video)
            if row is not None:
                return VideoRef(video, row.get("video_duration"), row.get("resolution"), row["run_id"])
            return VideoRef(video)
        if media.looks_like_local_video(video):
            return media.video_ref(video)
        if isinstance(video, str) and video.strip():
            validation.check_text(video, "video")
            row = self.store.find(video.strip())
            if row is None or not row.get("video_url"):
                raise ValidationError("video", video, "a Run, a URL, or the request id of a finished run in this "
                                                      "history (re-attach first with client.get(request_id))")
            return VideoRef(row["video_url"], row.get("video_duration"), row.get("resolution"), row["run_id"])
        raise ValidationError("video", video, "a Run, a request id, or an http(s) URL of an MP4")

    async def _start(self, spec: JobSpec, tags: Any, wait: bool, on_update: UpdateCallback | None,
                     reservation: Reservation | None = None) -> Run | JobHandle:
        tag_list = validation.check_tags(tags)
        spec = await self._uploads.externalize(spec)  # local inputs over 10 MiB go as {"file_id": ...}
        if reservation is None:
            reservation = self.budget.reserve([spec.estimate.usd])[0]  # BudgetExceeded: nothing is sent
        run = Run(run_id=uuid.uuid4().hex, kind=spec.kind, model=spec.model, prompt=spec.params.get("prompt"),
                  params=spec.params, backend=self.backend, estimate=spec.estimate,
                  parent_run_id=spec.parent_run_id, tags=[*self.tags, *tag_list], duration=spec.params.get("duration"))
        work = await self._engine.start(run, spec.endpoint, spec.body, reservation, on_update)
        return await self._launch(run, work, wait)

    async def _launch(self, run: Run, work: Awaitable[Run], wait: bool) -> Run | JobHandle:
        if wait:
            return await work
        return self._handle(run, work)

    def _handle(self, run: Run, work: Awaitable[Run]) -> JobHandle:
        loop = asyncio.get_running_loop()
        handle = JobHandle(run, loop.create_task(work), loop)  # type: ignore[arg-type]
        self._handles[run.run_id] = handle
        return handle

    @functools.cached_property
    def _handles(self) -> weakref.WeakValueDictionary[str, JobHandle]:
        return weakref.WeakValueDictionary()

    # -- Files and Batch -------------------------------------------------------------------------
    async def upload(self, file: Any, *, expires_after: int | None = None, filename: str | None = None) -> str:
        """Upload an input (path, bytes or PIL image, at most 50 MB) to the Files API; returns its file id.

        The same bytes are not uploaded twice while their id lives. Pass ``{"file_id": id}`` as an
        ``image`` or ``video``; ``expires_after`` is in seconds (3,600 to 2,592,000).
        """
        return (await self._uploads.upload(file, expires_after=expires_after, filename=filename)).id

    def batch(self, name: str | None = None, *, tags: Sequence[str] = (),
              on_update: UpdateCallback | None = None) -> BatchJob:
        """A batch builder: ``b.generate/edit/extend(...)`` as on the client, sent outside the key's rate limit.

        ``with client.batch(name="sweep") as b: ...`` (``async with`` on AsyncClient) submits on
        leaving the block (or ``b.submit()``); ``b.wait()`` returns the runs once all are done;
        ``b.cancel()`` cancels what has not run (each awaited on AsyncClient). Best effort (typically
        within 24 hours), billed at standard prices.
        """
        job = BatchJob(self._engine, name=name, spec_for=self._batch_spec, uploads=self._uploads,
                       backend=self.backend, tags=[*self.tags, *validation.check_tags(tags)],
                       speed=self._backend.speed, on_update=on_update)
        self._batches.append(job)
        return job

    async def start_batch(self, jobs: Sequence[dict[str, Any]], *, name: str | None = None, tags: Sequence[str] = (),
                          on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Send several generate() jobs (one dict of arguments each) as one batch; a handle per job, at once.

        Like ``start_many`` (all fit the budget or none is sent), but outside the key's rate limit and
        best effort: results come back typically within 24 hours, billed at standard prices.
        """
        job = self.batch(name, tags=tags)
        runs = [job.generate(**args) for args in jobs]  # every one validated before anything is sent
        for i, run in enumerate(runs):
            callback = on_update(i) if on_update else None
            if callback is not None:
                job.listen(run, callback)
        await job.submit()
        return [job.handle(run) for run in runs]

    def _batch_spec(self, kind: str, *args: Any, **kwargs: Any) -> JobSpec:
        if kind == "generate":
            return validation.generate_spec(*args, **kwargs)
        if kind == "edit":
            return self._edit_spec(*args, **kwargs)
        return self._extend_spec(*args, **kwargs)

    async def _resume_batches(self, rows: list[dict[str, Any]],
                              on_update: Callable[[Run], UpdateCallback | None] | None) -> list[JobHandle]:
        followed = {b.batch_id for b in self._batches if b.batch_id is not None}
        handles: list[JobHandle] = []
        for batch_id, group in resumable_batches(rows, self._engine.owner, followed).items():
            job = await BatchJob.attach(self._engine, batch_id, group, backend=self.backend, speed=self._backend.speed)
            for run in job.runs:
                callback = on_update(run) if on_update else None
                if callback is not None:
                    job.listeners.append(callback)
            self._batches.append(job)
            handles.extend(job.handle(run) for run in job.runs)
        return handles

    @functools.cached_property
    def _batches(self) -> list[BatchJob]:
        return []

    @functools.cached_property
    def _uploads(self) -> Uploads:
        return Uploads(self._engine, redact_url(self._backend.base_url), self._backend.speed)

    async def aclose(self) -> None:
        """Let submits in flight bring back their request ids, write the history, close the connections."""
        await self._engine.settle_submits(SETTLE_SUBMITS_S)
        for batch in self._batches:  # they go on at the server; resume() follows them again
            await batch.aclose()
        await self._engine.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def _finished(run: Run) -> Run:
    return run


class _LoopThread:
    """An event loop in a daemon thread, so blocking calls work anywhere, even inside a running kernel loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grok-nb-client", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop thread and block for its result."""
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result()

    def alive(self) -> bool:
        """True until closed."""
        return self._thread.is_alive()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # stopped: close it too, or its selector and socketpair leak
            self.loop.close()


#: Clients still open (held until closed: each runs a loop thread); at exit each is closed, so POSTs in
#: flight bring back their request ids and the history writer empties its queue.
_OPEN: set[Client] = set()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_OPEN):
        try:
            client.close()
        except (Exception, KeyboardInterrupt):  # the interpreter is ending anyway; the ids are written
            pass


class Client:
    """The blocking facade over :class:`AsyncClient`: same methods, same arguments, no ``await``.

    Each method runs its AsyncClient twin on the client's loop thread; a job method starts the job
    there and then blocks on its handle, so Ctrl+C stops the waiting and never the job.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        rate_limit: float | None = None,
        poll_interval: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        home: str | os.PathLike[str] | None = None,
        tags: Sequence[str] = (),
        budget_usd: float | None = None,
        simulator_speed: float | None = None,
        policy: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        quiet: bool = False,
        backend: Backend | None = None,
        limiter: Any = None,
    ):
        """Settings come from the arguments, then XAI_API_KEY / GROK_NB_BASE_URL / GROK_NB_HOME, then defaults.

        With neither a key nor a base URL, videos come from the embedded simulator (it says so).
        """
        self._loop = _LoopThread()
        try:
            self._async = self._loop.call(_make_async, api_key, base_url, deadline=deadline, rate_limit=rate_limit,
                                          poll_interval=poll_interval, timeout=timeout, home=home, tags=tags,
                                          budget_usd=budget_usd, simulator_speed=simulator_speed, policy=policy,
                                          transport=transport, quiet=quiet, backend=backend, limiter=limiter)
        except BaseException:
            self._loop.close()
            raise
        _OPEN.add(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    # -- what users see (the async core's, read from any thread) -----------------------------------
    @property
    def home(self) -> Path:
        """The data folder: history, video cache, key-sharing state."""
        return self._async.home

    @property
    def budget(self) -> Budget:
        """The ledger of what this client may spend, has spent and holds for jobs under way."""
        return self._async.budget

    @property
    def tags(self) -> list[str]:
        """Tags put on every run of this client."""
        return self._async.tags

    @property
    def policy(self) -> PollPolicy:
        """The timings of waiting: deadline, poll gaps, retries."""
        return self._async.policy

    @property
    def cache_dir(self) -> Path:
        """Where finished MP4s are kept."""
        return self._async.cache_dir

    @property
    def store(self) -> RunStore:
        """The run history (SQLite in the home, or PostgreSQL)."""
        return self._async.store

    @property
    def limiter(self) -> Any:
        """The key's request budget (shared with other processes on the key)."""
        return self._async.limiter

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._async.base_url

    @property
    def backend(self) -> str:
        """``xai`` or ``simulator``."""
        return self._async.backend

    @property
    def simulated(self) -> bool:
        """True when videos come from a simulator, not xAI."""
        return self._async.simulated

    @property
    def scheduler(self) -> Any:
        """The scheduler that spends this client's request budget."""
        return self._async.scheduler

    @property
    def budget_usd(self) -> float | None:
        """The spending limit for everything sent through this client (None: no limit)."""
        return self._async.budget_usd

    @property
    def spent_usd(self) -> float:
        """What this client's finished jobs cost (actual where reported, else estimated)."""
        return self._async.spent_usd

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent: the budget less what is spent and held for jobs under way."""
        return self._async.remaining_usd

    @property
    def _backend(self) -> Backend:
        return self._async._backend

    def history(self, **filters: Any) -> Any:
        """Every run (or those passing status, kind, tags, text, since, made_by), one row each, oldest first."""
        return self._async.history(**filters)

    def estimate_cost(self, *args: Any, kind: str = "generate", **kwargs: Any) -> CostEstimate:
        """The price of a job before anything is sent; takes the arguments of generate/edit/extend."""
        return self._async.estimate_cost(*args, kind=kind, **kwargs)

    def waiting(self) -> int:
        """How many jobs of this history wait to be resumed (unfinished, with no live process on them)."""
        return self._async.waiting()

    # -- jobs: started on the loop thread, waited for here -------------------------------------------
    @with_allowed_values("generate")
    def generate(
        self,
        prompt: str | None = None,
        *,
        image: Any = None,
        reference_images: Sequence[Any] | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        last_frame: Any = None,
        keyframes: Sequence[dict[str, Any]] | None = None,
        reference_audios: Sequence[str | dict[str, Any]] | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        return self._job(wait, self._async.generate(
            prompt, image=image, reference_images=reference_images, duration=duration, resolution=resolution,
            aspect_ratio=aspect_ratio, model=model, generate_audio=generate_audio, user=user, last_frame=last_frame,
            keyframes=keyframes, reference_audios=reference_audios, tags=tags, wait=False, on_update=on_update))

    @with_allowed_values("edit")
    def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        user: str | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Change a video by prompt.

        ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id.
        """
        return self._job(wait, self._async.edit(video, prompt, model=model, user=user, tags=tags, wait=False,
                                                on_update=on_update, **unsupported))

    @with_allowed_values("extend")
    def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Continue a video (same inputs as edit); ``duration`` is the length of the added part only."""
        return self._job(wait, self._async.extend(video, prompt, duration=duration, model=model, tags=tags,
                                                  wait=False, on_update=on_update, **unsupported))

    def get(self, request_id: str, *, wait: bool = True,
            on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        return self._job(wait, self._async.get(request_id, wait=False, on_update=on_update))

    def start_many(self, jobs: Sequence[dict[str, Any]], *, tags: Sequence[str] = (),
                   on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Start several generate() jobs (one dict of arguments each) as one: all fit the budget, or none is sent."""
        return self._loop.call(self._async.start_many, jobs, tags=tags, on_update=on_update)

    def resume(self, *, on_update: Callable[[Run], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Re-attach every unfinished job of this history that has a request id; sends no submit.

        Rows left ``submitting`` by a process that is gone become ``uncertain`` if their POST had left (it
        may or may not have started a job, so nothing is resent) and ``rejected`` if it never left
        (nothing sent, nothing billed). Jobs another live process is waiting for are left to it.
        """
        return self._loop.call(self._async.resume, on_update=on_update)

    def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The video models this key may use (``GET /v1/video-generation-models``), cached after the first call."""
        return self._loop.call(self._async.models, refresh=refresh)

    def _job(self, wait: bool, start: Coroutine[Any, Any, Run | JobHandle]) -> Run | JobHandle:
        """Start a job on the loop thread (``start`` was called with wait=False), then block on it when asked."""
        handle = self._loop.call(_awaited, start)
        assert isinstance(handle, JobHandle)
        return handle.result() if wait else handle

    def upload(self, file: Any, *, expires_after: int | None = None, filename: str | None = None) -> str:
        """Upload an input (path, bytes or PIL image, at most 50 MB) to the Files API; returns its file id.

        The same bytes are not uploaded twice while their id lives. Pass ``{"file_id": id}`` as an
        ``image`` or ``video``; ``expires_after`` is in seconds (3,600 to 2,592,000).
        """
        return self._loop.call(self._async.upload, file, expires_after=expires_after, filename=filename)

    def batch(self, name: str | None = None, *, tags: Sequence[str] = (),
              on_update: UpdateCallback | None = None) -> SyncBatch:
        """A batch builder: ``b.generate/edit/extend(...)`` as on the client, sent outside the key's rate limit.

        ``with client.batch(name="sweep") as b: ...`` (``async with`` on AsyncClient) submits on
        leaving the block (or ``b.submit()``); ``b.wait()`` returns the runs once all are done;
        ``b.cancel()`` cancels what has not run (each awaited on AsyncClient). Best effort (typically
        within 24 hours), billed at standard prices.
        """
        job = self._loop.call(functools.partial(_make_batch, self._async, name, tags, on_update))
        return SyncBatch(job, self._loop.call)

    def start_batch(self, jobs: Sequence[dict[str, Any]], *, name: str | None = None, tags: Sequence[str] = (),
                    on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Send several generate() jobs (one dict of arguments each) as one batch; a handle per job, at once.

        Like ``start_many`` (all fit the budget or none is sent), but outside the key's rate limit and
        best effort: results come back typically within 24 hours, billed at standard prices.
        """
        return self._loop.call(self._async.start_batch, jobs, name=name, tags=tags, on_update=on_update)

    def close(self) -> None:
        """Let submits in flight bring back their request ids, close the connections, stop the loop thread."""
        if not self._loop.alive():
            return
        _OPEN.discard(self)
        interrupted = False
        try:
            future = asyncio.run_coroutine_threadsafe(self._async.aclose(), self._loop.loop)
            deadline = time.monotonic() + SETTLE_SUBMITS_S + 15
            while True:
                try:
                    future.result(max(0.0, deadline - time.monotonic()))
                    break
                except KeyboardInterrupt:
                    # Another Ctrl+C (often the one that ends a script) must not drop the request ids
                    # still on their way: they are what makes a paid job resumable. Waiting stays bounded.
                    if not interrupted:
                        jobs = list(self._async._engine.jobs.values())
                        left = sum(1 for j in jobs if j.submit_task is not None and not j.submit_task.done())
                        print(f"grok_nb: still waiting (up to {deadline - time.monotonic():.0f} s) for {left} "
                              "submit(s) in flight to bring back their request ids, so that no paid job is lost",
                              file=sys.stderr, flush=True)
                    interrupted = True
        finally:
            self._loop.close()
        if interrupted:
            raise KeyboardInterrupt

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def _make_async(*args: Any, **kwargs: Any) -> AsyncClient:
    return AsyncClient(*args, **kwargs)


async def _make_batch(client: AsyncClient, name: str | None, tags: Sequence[str],
                      on_update: UpdateCallback | None) -> BatchJob:
    return client.batch(name, tags=tags, on_update=on_update)


async def _awaited(coroutine: Coroutine[Any, Any, T]) -> T:
    return await coroutine


async def _within(coroutine: Coroutine[Any, Any, T], seconds: float) -> T:
    return await asyncio.wait_for(coroutine, seconds)
