"""The HTTP client for xAI's video API: one async core (``AsyncClient``) and a thin sync facade (``Client``).

A job goes: validate (no I/O) → record a history row → submit (never resent once it
may have reached the server) → record the request id → poll under one shared rate
limiter and one deadline → download the MP4 at once (result URLs expire).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any, Awaitable, Callable, Sequence
from urllib.parse import urlsplit

import httpx

from . import __version__, media, validation
from .backends import Backend, resolve_backend
from .config import home_dir
from .errors import (
    APIError, ConnectionFailed, DeadlineExceeded, DownloadError, GrokError, JobExpiredError, JobFailedError,
    ModeratedError, RateLimitError, SubmitUncertainError, ValidationError, error_from_response, redact,
)
from .policy import HttpProblem, PollPolicy, Stop, SubmitOutcome, TransportProblem, next_step, submit_step
from .pricing import CostEstimate
from .ratelimit import RateLimiter
from .responses import JobStatus, parse_job_status
from .results import JobHandle, Run
from .store import RunStore
from .validation import DEFAULT_MODEL, JobSpec, VideoRef

log = logging.getLogger("grok_nb")

DEFAULT_DEADLINE_S = 15 * 60.0
DEFAULT_RATE_LIMIT = 1.0  # requests per second, polls included: xAI's limit for the video models
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DOWNLOAD_DEADLINE_S = 5 * 60.0
UpdateCallback = Callable[[Run], Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        simulator_speed: float | None = None,
        policy: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        quiet: bool = False,
    ):
        self._backend: Backend = resolve_backend(api_key, base_url, simulator_speed=simulator_speed, quiet=quiet)
        speed = self._backend.speed
        if policy is None:
            # Defaults follow the server's clock (the simulator runs faster); explicit values are taken as given.
            policy = PollPolicy(deadline=deadline).scaled(speed)
            if poll_interval is not None:
                policy = replace(policy, interval=poll_interval, max_interval=max(poll_interval, policy.max_interval))
        self.policy = policy
        self.limiter = RateLimiter(rate_limit if rate_limit is not None else DEFAULT_RATE_LIMIT * speed)
        self.home = home_dir(home)
        self.cache_dir = self.home / "videos"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.store = RunStore(self.home / "history.sqlite")
        self.tags: list[str] = list(tags)
        headers = {"User-Agent": f"grok_nb/{__version__}", "Accept": "application/json"}
        if self._backend.api_key:
            headers["Authorization"] = f"Bearer {self._backend.api_key}"
        self._http = httpx.AsyncClient(base_url=self._backend.base_url, headers=headers, timeout=timeout,
                                       transport=transport)
        # Result URLs live on another host: never send the key there.
        self._media = httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport,
                                        headers={"User-Agent": f"grok_nb/{__version__}"})
        self._rng = random.Random()

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

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} backend={self.backend} base_url={self.base_url} "
                f"api_key={'set' if self._backend.api_key else 'none'} home={self.home}>")

    def history(self) -> Any:
        """Every run so far, as a pandas DataFrame (one row per run)."""
        return self.store.dataframe()

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
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``)."""
        spec = self._spec("generate", prompt, image=image, reference_images=reference_images, duration=duration,
                          resolution=resolution, aspect_ratio=aspect_ratio, model=model,
                          generate_audio=generate_audio, user=user)
        return await self._start(spec, tags, wait, on_update)

    async def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Change a video by prompt; ``video`` is a Run, a request id from the history, or a URL."""
        spec = self._spec("edit", video, prompt, model=model, generate_audio=generate_audio, user=user, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    async def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Continue a video; ``duration`` is the length of the added part only."""
        spec = self._spec("extend", video, prompt, duration=duration, model=model, generate_audio=generate_audio,
                          user=user)
        return await self._start(spec, tags, wait, on_update)

    async def get(self, request_id: str, *, wait: bool = True, on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        if not isinstance(request_id, str) or not request_id.strip() or "/" in request_id:
            raise ValidationError("request_id", request_id, "the id a submit returned, e.g. '3f2a…-…'")
        row = self.store.find(request_id)
        if row is not None:
            run = Run.from_row(row)
            if run.ok or run.status in ("failed", "expired", "moderated"):
                return run if wait else self._handle(run, _finished(run))
            run.error = None
        else:
            run = Run(run_id=uuid.uuid4().hex, kind="unknown", model="", prompt=None, backend=self.backend,
                      request_id=request_id, status="pending")
            self.store.insert(**run.to_row(self.base_url))
        return await self._launch(run, self._wait(run, on_update), wait)

    # -- plumbing --------------------------------------------------------------------------------
    def _spec(self, kind: str, *args: Any, **kwargs: Any) -> JobSpec:
        builders = {"generate": self._generate_spec, "edit": self._edit_spec, "extend": self._extend_spec}
        if kind not in builders:
            raise ValidationError("kind", kind, "generate, edit or extend")
        return builders[kind](*args, **kwargs)

    def _generate_spec(self, prompt: Any = None, *, image: Any = None, reference_images: Any = None,
                       **options: Any) -> JobSpec:
        if reference_images is not None and not isinstance(reference_images, (list, tuple)):
            raise ValidationError("reference_images", reference_images, "a list of up to 7 images")
        validation.check_reference_count(len(reference_images or ()))
        refs = [media.image_ref(r, f"reference_images[{i}]") for i, r in enumerate(reference_images or ())]
        img = media.image_ref(image, "image") if image is not None else None
        return validation.generate_spec(prompt, image=img, reference_images=refs, **options)

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
        if isinstance(video, str) and video.strip():
            row = self.store.find(video.strip())
            if row is None or not row.get("video_url"):
                raise ValidationError("video", video, "a Run, a URL, or the request id of a finished run in this "
                                                      "history (re-attach first with client.get(request_id))")
            return VideoRef(row["video_url"], row.get("video_duration"), row.get("resolution"), row["run_id"])
        raise ValidationError("video", video, "a Run, a request id, or an http(s) URL of an MP4")

    async def _start(self, spec: JobSpec, tags: Sequence[str], wait: bool, on_update: UpdateCallback | None) -> Run | JobHandle:
        run = Run(run_id=uuid.uuid4().hex, kind=spec.kind, model=spec.model, prompt=spec.params.get("prompt"),
                  params=spec.params, backend=self.backend, estimate=spec.estimate,
                  parent_run_id=spec.parent_run_id, tags=[*self.tags, *tags], duration=spec.params.get("duration"))
        # The row exists before a byte is sent: a crash mid-submit still leaves a trace.
        self.store.insert(**run.to_row(self.base_url))
        return await self._launch(run, self._job(spec, run, on_update), wait)

    async def _launch(self, run: Run, work: Awaitable[Run], wait: bool) -> Run | JobHandle:
        if wait:
            return await work
        return self._handle(run, work)

    def _handle(self, run: Run, work: Awaitable[Run]) -> JobHandle:
        loop = asyncio.get_running_loop()
        return JobHandle(run, loop.create_task(work), loop)  # type: ignore[arg-type]

    async def _job(self, spec: JobSpec, run: Run, on_update: UpdateCallback | None) -> Run:
        await self._submit(spec, run, on_update)
        return await self._wait(run, on_update)

    def _save(self, run: Run, on_update: UpdateCallback | None) -> None:
        self.store.update(run.run_id, **run.to_row(self.base_url))
        if on_update is not None:
            try:
                on_update(run)
            except Exception:  # a broken view must never lose a paid job
                log.exception("grok_nb: an on_update callback failed")

    def _exchange(self, run: Run, method: str, url: str, status: int | None, started: float, summary: str) -> None:
        parts = urlsplit(url)
        path = parts.path  # never the query string: signed URLs carry tokens
        entry = {"at": _now().isoformat(), "method": method, "path": path, "status": status,
                 "elapsed_ms": round((time.monotonic() - started) * 1000, 1), "summary": summary}
        run.exchanges.append(entry)
        self.store.add_exchange(run.run_id, method, path, status, entry["elapsed_ms"], summary)

    async def _submit(self, spec: JobSpec, run: Run, on_update: UpdateCallback | None) -> None:
        attempt = 0
        while True:
            await self.limiter.acquire()
            run.submitted_at, started = _now(), time.monotonic()
            run._started_monotonic = started  # type: ignore[attr-defined]
            error: GrokError | None = None
            request_id = None
            try:
                response = await self._http.post(spec.endpoint, json=spec.body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                outcome = SubmitOutcome(never_sent=True)
                error = ConnectionFailed(f"could not reach {self.base_url}: {type(exc).__name__}. "
                                         "Check the network or GROK_NB_BASE_URL.")
                self._exchange(run, "POST", spec.endpoint, None, started, f"no connection ({type(exc).__name__})")
            except httpx.TransportError as exc:  # sent (at least partly), no answer: a job may exist
                outcome = SubmitOutcome(maybe_sent=True)
                error = SubmitUncertainError(f"No answer to the submit ({type(exc).__name__}).", run_id=run.run_id)
                self._exchange(run, "POST", spec.endpoint, None, started, f"no answer ({type(exc).__name__})")
            else:
                body = _json(response)
                if response.status_code < 400:
                    request_id = body.get("request_id") or body.get("id") if isinstance(body, dict) else None
                    outcome = SubmitOutcome(accepted=bool(request_id), maybe_sent=not request_id)
                    if not request_id:
                        error = SubmitUncertainError(f"The server answered {response.status_code} without a "
                                                     "request_id.", run_id=run.run_id)
                    self._exchange(run, "POST", spec.endpoint, response.status_code, started,
                                   f"request_id={request_id}")
                else:
                    error = error_from_response(response.status_code, body, headers=response.headers,
                                                secret=self._backend.api_key)
                    out_of_credits = isinstance(error, RateLimitError) and error.out_of_credits
                    outcome = SubmitOutcome(status_code=response.status_code, retry_after=error.retry_after,
                                            out_of_credits=out_of_credits)
                    if response.status_code >= 500:
                        error = SubmitUncertainError(f"The server answered {response.status_code} to the submit.",
                                                     run_id=run.run_id)
                    self._exchange(run, "POST", spec.endpoint, response.status_code, started,
                                   redact(str(getattr(error, "server_message", error)), self._backend.api_key)[:200])
            step = submit_step(self.policy, outcome, attempt, self._rng.random())
            if isinstance(step, Stop) and step.outcome == "accepted":
                run.request_id, run.status = str(request_id), "pending"
                self._save(run, on_update)  # the request id is on disk before anything else happens
                return
            if isinstance(step, Stop):
                run.status = "uncertain" if step.outcome == "uncertain" else "rejected"
                run.error = error
                self._save(run, on_update)
                assert error is not None
                raise error
            if outcome.retry_after is not None:
                self.limiter.pause(outcome.retry_after)
            log.info("grok_nb: submit not accepted (%s); retrying in %.2f s", step.reason, step.delay)
            await asyncio.sleep(step.delay)
            attempt += 1

    async def _poll_once(self, run: Run) -> tuple[JobStatus | HttpProblem | TransportProblem, APIError | None]:
        await self.limiter.acquire()
        started = time.monotonic()
        path = f"/v1/videos/{run.request_id}"
        try:
            response = await self._http.get(path)
        except httpx.TransportError as exc:
            self._exchange(run, "GET", path, None, started, f"no answer ({type(exc).__name__})")
            return TransportProblem(type(exc).__name__), None
        body = _json(response)
        if response.status_code < 400:
            status = parse_job_status(body)
            summary = f"status={status.status}" + (f" progress={status.progress}" if status.progress is not None else "")
            self._exchange(run, "GET", path, response.status_code, started, summary)
            return status, None
        error = error_from_response(response.status_code, body, headers=response.headers,
                                    request_id=run.request_id, secret=self._backend.api_key)
        self._exchange(run, "GET", path, response.status_code, started, error.server_message[:200])
        if error.retry_after is not None:
            self.limiter.pause(error.retry_after)
        return HttpProblem(response.status_code, error.retry_after), error

    def _apply(self, run: Run, status: JobStatus, warned: set[str]) -> None:
        if not status.known_status and status.status not in warned:
            warned.add(status.status)
            log.warning("grok_nb: request %s has status %r, not one of xAI's documented statuses; "
                        "treating it as still running", run.request_id, status.status)
        run.status = "pending" if not status.terminal else ("moderated" if status.moderated else status.status)
        if status.progress is not None:
            run.progress = status.progress
        if status.url:
            run.url = status.url
        if status.duration is not None:
            run.duration = status.duration
        if status.cost_usd is not None:
            run.cost_actual_usd = status.cost_usd
        if status.model and not run.model:
            run.model = status.model

    async def _wait(self, run: Run, on_update: UpdateCallback | None) -> Run:
        started = time.monotonic()
        errors_in_a_row = polls = 0
        warned: set[str] = set()
        try:
            while True:
                observation, error = await self._poll_once(run)
                polls += 1
                run.polls += 1
                if isinstance(observation, JobStatus):
                    errors_in_a_row = 0
                    self._apply(run, observation, warned)
                else:
                    errors_in_a_row += 1
                step = next_step(self.policy, observation, elapsed=time.monotonic() - started, polls=polls,
                                 errors_in_a_row=errors_in_a_row, rand=self._rng.random())
                if isinstance(step, Stop):
                    break
                self._save(run, on_update)
                await asyncio.sleep(step.delay)
        except asyncio.CancelledError:
            run.error, run.stopped = None, True
            self._save(run, on_update)
            raise
        if step.outcome == "deadline":
            run.stopped = True
            run.error = DeadlineExceeded(time.monotonic() - started, request_id=run.request_id, run=run)
            self._save(run, on_update)
            raise run.error
        if step.outcome == "fatal":
            assert error is not None
            run.error = error
            self._save(run, on_update)
            raise error
        self._finish_timing(run)
        if step.outcome == "done":
            run.error = None
            await self._download(run, on_update)
        elif step.outcome == "moderated":
            run.error = ModeratedError(request_id=run.request_id, run=run)
        elif step.outcome == "failed":
            assert isinstance(observation, JobStatus)
            run.error = JobFailedError(observation.error_code, observation.error_message,
                                       request_id=run.request_id, run=run)
        elif step.outcome == "expired":
            run.error = JobExpiredError(request_id=run.request_id, run=run)
        self._save(run, on_update)
        if run.error is not None:
            log.warning("grok_nb: %s", run.error)
        return run

    def _finish_timing(self, run: Run) -> None:
        run.finished_at = _now()
        started = getattr(run, "_started_monotonic", None)
        if started is not None:
            run.latency_s = round(time.monotonic() - started, 3)
        elif run.submitted_at is not None:  # re-attached: only wall-clock times are known
            run.latency_s = round((run.finished_at - run.submitted_at).total_seconds(), 3)

    async def _download(self, run: Run, on_update: UpdateCallback | None) -> None:
        """Stream the MP4 to a temporary file, check it, then rename it into the cache."""
        assert run.url and run.request_id
        dest = self.cache_dir / f"{_safe_name(run.request_id)}.mp4"
        if dest.is_file() and dest.stat().st_size > 0:
            run.path = dest
            return
        tmp = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
        policy = replace(self.policy, deadline=DOWNLOAD_DEADLINE_S)
        started, errors = time.monotonic(), 0
        try:
            while True:
                t0 = time.monotonic()
                problem: HttpProblem | TransportProblem
                try:
                    async with self._media.stream("GET", run.url) as response:
                        if response.status_code == 200:
                            size = 0
                            with open(tmp, "wb") as out:
                                async for chunk in response.aiter_bytes(1 << 16):
                                    out.write(chunk)
                                    size += len(chunk)
                            expected = response.headers.get("content-length")
                            self._exchange(run, "GET", run.url, 200, t0, f"{size} bytes")
                            if expected is not None and int(expected) != size:
                                raise httpx.ReadError(f"got {size} of {expected} bytes")
                            with open(tmp, "rb") as check:
                                if check.read(12)[4:8] != b"ftyp":
                                    raise DownloadError("the download is not an MP4 file", request_id=run.request_id, run=run)
                            os.replace(tmp, dest)
                            run.path = dest
                            return
                        self._exchange(run, "GET", run.url, response.status_code, t0, "download refused")
                        if response.status_code in (401, 403, 404, 410):
                            run.error = DownloadError(
                                f"the video's URL answered {response.status_code}: it has expired or is gone. "
                                "Result URLs are temporary (about 24 h); generate the video again",
                                request_id=run.request_id, run=run)
                            return
                        from .errors import parse_retry_after

                        problem = HttpProblem(response.status_code, parse_retry_after(response.headers.get("retry-after")))
                except httpx.TransportError as exc:
                    self._exchange(run, "GET", run.url, None, t0, f"download broke ({type(exc).__name__})")
                    problem = TransportProblem(str(exc))
                errors += 1
                step = next_step(policy, problem, elapsed=time.monotonic() - started, polls=0,
                                 errors_in_a_row=errors, rand=self._rng.random())
                if isinstance(step, Stop):
                    run.error = DownloadError(f"could not download the video ({step.outcome}); its URL is "
                                              f"{run.url}, valid for about 24 h", request_id=run.request_id, run=run)
                    return
                await asyncio.sleep(step.delay)
        except DownloadError as exc:
            run.error = exc
        finally:
            tmp.unlink(missing_ok=True)

    async def aclose(self) -> None:
        """Close the HTTP connections."""
        await self._http.aclose()
        await self._media.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def _finished(run: Run) -> Run:
    return run


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _safe_name(request_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in request_id)[:100]


class _LoopThread:
    """An event loop in a daemon thread, so blocking calls work anywhere, even inside a running kernel loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grok-nb-client", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(), self.loop).result()  # type: ignore[arg-type]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


class Client:
    """The blocking facade over :class:`AsyncClient`: same methods, same arguments, no ``await``."""

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **options: Any):
        self._loop = _LoopThread()
        self._async = self._loop.call(partial(_make_async, api_key, base_url, options))

    def __getattr__(self, name: str) -> Any:
        # Non-job attributes (policy, store, backend, history, estimate_cost...) come from the core.
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._async, name)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    def _job(self, method: Callable[..., Awaitable[Any]], *args: Any, wait: bool = True, **kwargs: Any) -> Any:
        handle = self._loop.call(partial(method, *args, wait=False, **kwargs))
        return handle.result() if wait else handle

    def generate(self, *args: Any, **kwargs: Any) -> Run | JobHandle:
        """Text/image/reference→video; see :meth:`AsyncClient.generate`."""
        return self._job(self._async.generate, *args, **kwargs)

    def edit(self, *args: Any, **kwargs: Any) -> Run | JobHandle:
        """Change a video by prompt; see :meth:`AsyncClient.edit`."""
        return self._job(self._async.edit, *args, **kwargs)

    def extend(self, *args: Any, **kwargs: Any) -> Run | JobHandle:
        """Continue a video; see :meth:`AsyncClient.extend`."""
        return self._job(self._async.extend, *args, **kwargs)

    def get(self, *args: Any, **kwargs: Any) -> Run | JobHandle:
        """Re-attach to a job by request id; see :meth:`AsyncClient.get`."""
        return self._job(self._async.get, *args, **kwargs)

    def close(self) -> None:
        """Close the connections and stop the client's loop thread."""
        self._loop.call(self._async.aclose)
        self._loop.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def _make_async(api_key: str | None, base_url: str | None, options: dict) -> AsyncClient:
    return AsyncClient(api_key, base_url, **options)
