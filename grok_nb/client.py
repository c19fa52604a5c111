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
import threading
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any

import httpx

from .api import media, validation
from .api.models import parse_models_listing
from .api.pricing import CostEstimate
from .api.validation import DEFAULT_MODEL, JobSpec, VideoRef
from .errors import ValidationError, error_from_response
from .history.store import open_store
from .jobs.budget import Budget, Reservation
from .jobs.lifecycle import RESUMABLE, Status
from .jobs.policy import PollPolicy
from .jobs.results import JobHandle, Run
from .runtime.backends import Backend, resolve_backend
from .runtime.engine import UNCERTAIN_AFTER_CRASH, Engine, UpdateCallback, reconcile_orphans
from .runtime.logs import protect_secret
from .runtime.ratelimit import make_limiter
from .runtime.scheduler import POLL
from .runtime.transport import Api, is_mp4
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


class AsyncClient:
    """The async core: ``await client.generate(...)`` and friends."""

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        rate_limit: float | None = None,
        poll_interval: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        home: str | os.PathLike | None = None,
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
        self._models: list[dict] | None = None

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
        return self._spec(kind, *args, **kwargs).estimate

    # -- the three kinds of job ------------------------------------------------------------------
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
        keyframes: Sequence[dict] | None = None,
        reference_audios: Sequence[str | dict] | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        spec = self._spec("generate", prompt, image=image, reference_images=reference_images, duration=duration,
                          resolution=resolution, aspect_ratio=aspect_ratio, model=model,
                          generate_audio=generate_audio, user=user, last_frame=last_frame, keyframes=keyframes,
                          reference_audios=reference_audios)
        return await self._start(spec, tags, wait, on_update)

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
        """Change a video by prompt; ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id."""
        spec = self._spec("edit", video, prompt, model=model, user=user, **unsupported)
        return await self._start(spec, tags, wait, on_update)

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
        spec = self._spec("extend", video, prompt, duration=duration, model=model, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    async def start_many(self, jobs: Sequence[dict[str, Any]], *, tags: Sequence[str] = (),
                         on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Start several generate() jobs (one dict of arguments each) as one: all fit the budget, or none is sent."""
        specs = [self._spec("generate", **args) for args in jobs]  # every one validated before anything is sent
        tag_list = validation.check_tags(tags)
        reservations = self.budget.reserve([s.estimate.usd for s in specs])
        handles = []
        try:
            for i, (spec, reservation) in enumerate(zip(specs, reservations)):
                callback = on_update(i) if on_update else None
                handles.append(await self._start(spec, tag_list, False, callback, reservation))
        finally:
            for reservation in reservations[len(handles):]:  # jobs that never started hold no money
                self.budget.release(reservation)
        return handles  # type: ignore[return-value]

    async def get(self, request_id: str, *, wait: bool = True, on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        request_id = validation.check_request_id(request_id)
        await asyncio.to_thread(self._engine.writer.flush)
        row = await asyncio.to_thread(self.store.find, request_id)
        if row is not None:
            run = Run.from_row(row)
            if run.status in (Status.FAILED, Status.EXPIRED, Status.MODERATED, Status.REJECTED) or (
                    run.status is Status.DONE and run.path is not None and is_mp4(run.path)):
                return run if wait else self._handle(run, _finished(run))
            work = await self._engine.attach(run, on_update)
        else:  # started elsewhere: this history learns of it now
            run = Run(run_id=uuid.uuid4().hex, kind="unknown", model="", prompt=None, backend=self.backend,
                      request_id=request_id, status=Status.PENDING)
            work = await self._engine.attach(run, on_update, new=True)
        return await self._launch(run, work, wait)

    async def resume(self, *, on_update: Callable[[Run], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Re-attach every unfinished job of this history that has a request id; sends no submit.

        Rows left ``submitting`` by a process that is gone become ``uncertain``: their POST may or
        may not have started a job, so nothing is resent. Jobs another live process is waiting
        for are left to it.
        """
        await asyncio.to_thread(self._engine.writer.flush)
        rows = await asyncio.to_thread(self.store.rows, status=UNFINISHED)
        attach, lost = reconcile_orphans(rows, set(self._engine.jobs), self._engine.owner)
        for row in lost:
            message = UNCERTAIN_AFTER_CRASH.format(when=row.get("submitted_at") or row["created_at"])
            await asyncio.to_thread(self.store.update, row["run_id"], status=Status.UNCERTAIN.value,
                                    error_code="SubmitUncertainError", error_message=message)
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
            run = Run.from_row(row)
            await asyncio.to_thread(self.store.update, run.run_id, owner=self._engine.owner)
            callback = on_update(run) if on_update else None
            handles.append(self._handle(run, await self._engine.attach(run, callback)))
        return handles

    def waiting(self) -> int:
        """How many jobs of this history wait to be resumed (unfinished, with no live process on them)."""
        attach, lost = reconcile_orphans(self.store.rows(status=UNFINISHED), set(self._engine.jobs), self._engine.owner)
        return len(attach) + len(lost)

    async def models(self, *, refresh: bool = False) -> list[dict]:
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
    def _spec(self, kind: Any, *args: Any, **kwargs: Any) -> JobSpec:
        builders = {"generate": validation.generate_spec, "edit": self._edit_spec, "extend": self._extend_spec}
        return builders[validation.check_kind(kind)](*args, **kwargs)

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

    async def aclose(self) -> None:
        """Let submits in flight bring back their request ids, write the history, close the connections."""
        await self._engine.settle_submits(SETTLE_SUBMITS_S)
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

    def call(self, fn: Callable[[], Awaitable[Any]], timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result(timeout)  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


#: Clients still open (held until closed: each runs a loop thread); at exit each is closed, so POSTs in
#: flight bring back their request ids and the history writer empties its queue.
_OPEN: set[Client] = set()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_OPEN):
        try:
            client.close()
        except Exception:
            pass


def _blocking(async_method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """The sync twin of an AsyncClient method: same signature, same docstring (one source of truth)."""
    name = async_method.__name__

    @functools.wraps(async_method)
    def method(self: Client, *args: Any, **kwargs: Any) -> Any:
        return self._loop.call(functools.partial(getattr(self._async, name), *args, **kwargs))

    return method


def _blocking_job(async_method: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """The sync twin of a job method: starts the job on the client's loop, then blocks on its handle."""
    name = async_method.__name__

    @functools.wraps(async_method)
    def method(self: Client, *args: Any, wait: bool = True, **kwargs: Any) -> Any:
        handle = self._loop.call(functools.partial(getattr(self._async, name), *args, wait=False, **kwargs))
        return handle.result() if wait else handle

    return method


class Client:
    """The blocking facade over :class:`AsyncClient`: same methods, same arguments, no ``await``."""

    @functools.wraps(AsyncClient.__init__)
    def __init__(self, *args: Any, **kwargs: Any):
        self._loop = _LoopThread()
        try:
            self._async: AsyncClient = self._loop.call(functools.partial(_make_async, args, kwargs))
        except BaseException:
            self._loop.close()
            raise
        _OPEN.add(self)

    def __getattr__(self, name: str) -> Any:
        # Non-job attributes (policy, store, backend, budget, spent_usd...) come from the core.
        if name.startswith("__") or name in ("_async", "_loop"):
            raise AttributeError(name)
        return getattr(self._async, name)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    generate = _blocking_job(AsyncClient.generate)
    edit = _blocking_job(AsyncClient.edit)
    extend = _blocking_job(AsyncClient.extend)
    get = _blocking_job(AsyncClient.get)
    resume = _blocking(AsyncClient.resume)
    start_many = _blocking(AsyncClient.start_many)
    models = _blocking(AsyncClient.models)
    history = AsyncClient.history
    estimate_cost = AsyncClient.estimate_cost
    waiting = AsyncClient.waiting

    def close(self) -> None:
        """Let submits in flight bring back their request ids, close the connections, stop the loop thread."""
        if not self._loop._thread.is_alive():
            return
        _OPEN.discard(self)
        try:
            self._loop.call(self._async.aclose, timeout=SETTLE_SUBMITS_S + 15)
        finally:
            self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


for _name in ("base_url", "backend", "simulated", "scheduler", "budget_usd", "spent_usd", "remaining_usd"):
    setattr(Client, _name, property(lambda self, _n=_name: getattr(self._async, _n),
                                    doc=getattr(AsyncClient, _name).__doc__))


async def _make_async(args: tuple, kwargs: dict) -> AsyncClient:
    return AsyncClient(*args, **kwargs)
