"""The simulated service's state: jobs, their timing, faults, billing. No HTTP here."""

from __future__ import annotations

import base64
import concurrent.futures
import functools
import heapq
import io
import itertools
import random
import re
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..api import latency, media, models, pricing, validation
from ..api.validation import ImageRef, VideoRef
from ..errors import ValidationError
from .clips import clip_seconds
from .worker import WorkerPool

REAL_RATE_LIMIT_RPS = 1.0
#: How long result URLs live here by default (simulated seconds). xAI says "ephemeral" (the SDK says 24 h,
#: batches 1 h); tests and notebooks shorten it to show an expired URL.
REAL_URL_LIFETIME_S = 24 * 3600.0
#: A rendered video's file name, the request id in it.
MEDIA_NAME = re.compile(r"xai-video-([0-9a-f-]{36})\.mp4")
#: Markers a prompt can carry to ask the simulator for an outcome (for demos and teaching):
#: [sim:fail=<code>], [sim:moderate] (done, withheld), [sim:moderate=http400] (a poll-time 400),
#: [sim:moderate=failed] (failed invalid_argument about moderation), [sim:slow], and the live-service
#: answer variants [sim:done=no_status], [sim:done=no_url], [sim:done=nested], [sim:pending=empty].
_MARKER = re.compile(r"\[sim:(fail|moderate|slow|done|pending)(?:=([a-z_0-9]+))?\]")


@dataclass
class SimulatorConfig:
    """The simulator's knobs. ``speed`` scales latencies, the rate limit and URL lifetimes together."""

    speed: float = 30.0
    api_key: str | None = None  # None: any non-empty bearer token is accepted
    rate_limit: float = REAL_RATE_LIMIT_RPS  # per second of simulated time
    enforce_rate_limit: bool = True
    url_lifetime_s: float = REAL_URL_LIFETIME_S  # simulated seconds
    latency_jitter: float = 0.15
    # Injected faults
    fail_rate: float = 0.0
    fail_codes: tuple[str, ...] = ("internal_error", "service_unavailable", "invalid_argument")
    moderation_rate: float = 0.0
    server_error_rate: float = 0.0  # share of API requests answered 500/503
    burst_429: int = 0  # the next N API requests are answered 429
    retry_after_header: bool = True
    pending_status: str = "pending"  # or "processing", as third-party guides spell it
    pending_http_status: int = 202  # as the spec and live clients see it; 200 is accepted too
    omit_progress: bool = False
    #: The share of each job's latency spent at 99 % before it is done (the service's last stretch):
    #: progress runs to 99 over the rest, then holds. Benchmarks of waiting strategies set it.
    progress_tail: float = 0.0
    #: Progress as a real service may report it: each job's readings run up to this many points ahead of or
    #: behind its true share, for the whole job (drawn per job, uniform)...
    progress_bias: float = 0.0
    #: ...and each answer's reading is off by up to this many points more (uniform, drawn per answer).
    progress_jitter: float = 0.0
    #: Every job takes this multiple of its modelled latency (a service faster or slower than documented).
    latency_factor: float = 1.0
    error_shape: str = "flat"  # flat {"code","error"}, legacy, nested {"error": {...}}
    submit_delay_s: float = 0.0  # wall seconds a submit waits after creating its job (read-timeout tests)
    # Answers seen from the live service beyond the spec
    moderation_as_http_400: bool = False  # moderated jobs: poll answers HTTP 400 with usage, not done
    #: That 400's code (earlier: "Client specified an invalid argument").
    moderation_code: str = "imagine:content-moderated"
    moderation_as_failed: bool = False  # moderated jobs: failed, invalid_argument, a message about moderation
    done_without_status: bool = False  # done answers: {"video": {...}, "model": ...} with no status/progress
    done_without_url: bool = False  # done answers: a video object without a url (delivered elsewhere)
    nested_response: bool = False  # done answers: the video nested under "response"
    pending_empty_body: bool = False  # pending polls: HTTP 202 with an empty body
    credits_usd: float | None = None  # None: unlimited; else 429 "out of credits" once spent
    render_workers: int = 2
    seed: int | None = None
    #: Resolution → (lo, hi) real seconds: each job's latency is drawn uniformly from its range
    #: (no jitter). None keeps the model of ``real_latency_s``. For benchmarks of waiting strategies.
    latency_ranges: dict[str, tuple[float, float]] | None = None
    #: Frames are rendered at this fraction of the requested size (durations kept): benchmarks
    #: that time the API, not the pictures, keep the render workers from setting the pace.
    render_scale: float = 1.0
    #: A text→video job is done at its modelled latency even while its MP4 still renders (its download
    #: waits for the render): on a busy machine latency still follows resolution and duration, not the
    #: render queue. False: done only once rendered, as for every job with inputs to fetch.
    done_at_latency: bool = True
    # The vision judge (POST /v1/responses)
    #: Judge requests per second per key and model (simulated seconds): a judge model's limit is its own.
    judge_rate_limit: float = 5.0
    judge_burst_429: int = 0  # the next N judge requests are answered 429 with Retry-After
    #: "valid", or a malformed answer for fail-closed tests: not_json, score_out_of_range, missing_field,
    #: extra_key, no_output, refusal (a prompt can ask for one with [sim:judge=<name>]).
    judge_answer: str = "valid"
    judge_reasoning_item: bool = False  # a reasoning item before the message, as reasoning models send

    def update(self, **changes: Any) -> None:
        """Change knobs by name; unknown names are an error."""
        names = {f.name for f in fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise KeyError(f"unknown simulator setting {key!r}; known: {sorted(names)}")
            if key == "fail_codes":
                value = tuple(value)
            if key == "latency_ranges" and value is not None:
                value = {str(res): (float(lo), float(hi)) for res, (lo, hi) in dict(value).items()}
            setattr(self, key, value)


def _seconds(value: Any) -> Any:
    """A duration as the service takes it: a text of digits ("8") is read as the number (the client refuses text,
    to say how to write it; the service is lenient)."""
    return int(value.strip()) if isinstance(value, str) and value.strip().isdigit() else value


def real_latency_s(kind: str, seconds: float, resolution: str, *, has_image: bool = False,
                   model: str | None = None) -> float:
    """The service's typical latency in real seconds (grok_nb.api.latency, which the client's planner uses too)."""
    return latency.typical_latency_s(kind, seconds, resolution, has_image=has_image, model=model)


class ApiRefusal(Exception):
    """An HTTP error answer: status, API code and message."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after
        super().__init__(message)


@dataclass
class Job:
    """One simulated video job."""

    id: str
    kind: str
    model: str
    prompt: str
    resolution: str
    created: float
    latency: float
    render_payload: dict[str, Any]
    n_images: int = 0
    forced: str | None = None  # fail / moderate from faults or prompt markers
    forced_code: str | None = None
    forced_message: str | None = None
    future: concurrent.futures.Future[dict[str, Any]] | None = None
    done_at: float | None = None
    result: dict[str, Any] | None = None
    error: tuple[str, str] | None = None
    cost_ticks: int | None = None
    polls: int = 0
    variants: set[str] = field(default_factory=set)  # live-service answer variants asked by prompt markers
    owner: str | None = None  # the API key that submitted it (per-key counts)
    rendered_at: float | None = None  # monotonic time its render finished
    done_at_latency: bool = False  # answered done once its latency is over, rendered or not (text→video)
    progress_bias: float = 0.0  # points its progress runs ahead of (+) or behind its true share

    @property
    def ready_at(self) -> float | None:
        """The monotonic time the server first could answer "done" (or failed): latency over, render finished."""
        if self.done_at_latency:
            return self.created + self.latency
        if self.rendered_at is None:
            return None
        return max(self.created + self.latency, self.rendered_at)

    @property
    def known_result(self) -> dict[str, Any] | None:
        """What its render will give, when nothing has to be fetched or checked first (text→video)."""
        payload = self.render_payload
        if self.kind != "generate" or payload.get("image_url") or payload.get("reference_urls"):
            return None
        return {"width": payload["width"], "height": payload["height"], "seconds": clip_seconds(payload["seconds"])}


class Simulator:
    """The service: accepts jobs, renders them in worker processes, answers polls."""

    def __init__(self, config: SimulatorConfig | None = None, media_dir: str | Path | None = None):
        self.config = config or SimulatorConfig()
        self.media_dir = Path(media_dir or tempfile.mkdtemp(prefix="grok-nb-sim-"))
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=500_000)
        #: API key → Counter of (kind, HTTP status), kind being submit, poll or other (not media downloads).
        self.by_key: dict[str, Counter[tuple[str, int]]] = {}
        self.spent_usd = 0.0
        self.clock = time.monotonic
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._pool: WorkerPool | None = None
        # Renders wait here, earliest due first, so that a job's latency is its own (kind, resolution,
        # duration) and not its place in a grid: a FIFO pool made the 12th tile of a grid the slowest.
        self._renders: list[tuple[float, int, Job]] = []
        self._render_seq = itertools.count()
        self._rendering = 0

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def pool(self) -> WorkerPool:
        """Render worker processes, started on first use."""
        if self._pool is None:
            self._pool = WorkerPool(self.config.render_workers)
        return self._pool

    def close(self) -> None:
        """Stop the render workers."""
        with self._lock:
            queued, self._renders = self._renders, []
        for _, _, job in queued:
            if job.future is not None:
                job.future.cancel()
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _scaled(self, real_seconds: float) -> float:
        return real_seconds / max(1e-9, self.config.speed)

    # -- gatekeeping -----------------------------------------------------------------------------
    def check_auth(self, authorization: str | None) -> str:
        """The bearer token, or a 401 refusal."""
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiRefusal(401, "unauthenticated", "Missing bearer token: send 'Authorization: Bearer <key>'.")
        if self.config.api_key is not None and token != self.config.api_key:
            # xAI echoes part of the key back; grok_nb's client must redact it.
            raise ApiRefusal(400, "Client specified an invalid argument",
                             f"Incorrect API key provided: {token[:4]}***{token[-3:]}. Obtain an API key "
                             "from https://console.x.ai.")
        return token

    def check_rate(self, token: str, bucket: str | None = None, limit: float | None = None) -> None:
        """A token bucket per key (or per ``bucket``, at ``limit`` requests a second); 429 when empty, and the
        injected faults."""
        cfg = self.config
        with self._lock:
            if cfg.burst_429 > 0:
                cfg.burst_429 -= 1
                raise ApiRefusal(429, "resource-exhausted", "Too many requests (injected burst).",
                                 retry_after=self._scaled(1.0))
            if cfg.server_error_rate and self._rng.random() < cfg.server_error_rate:
                status = self._rng.choice((500, 503))
                raise ApiRefusal(status, "internal" if status == 500 else "unavailable",
                                 "The service had a problem (injected fault).")
            if not cfg.enforce_rate_limit:
                return
            per_s = cfg.rate_limit if limit is None else limit
            rate = per_s * cfg.speed
            capacity = max(2.0, rate)
            now = self.clock()
            key = token if bucket is None else bucket
            tokens, last = self._buckets.get(key, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise ApiRefusal(429, "resource-exhausted",
                                 f"Too many requests: the limit is {per_s:g} request(s) per second.",
                                 retry_after=(1.0 - tokens) / rate)
            self._buckets[key] = (tokens - 1.0, now)

    # -- submissions -----------------------------------------------------------------------------
    def record(self, token: str | None, method: str, path: str, status: int) -> None:
        """Log one API request, and count it for its key."""
        self.requests.append((method, path, status))
        if token is not None:
            kind = "judge" if path == "/v1/responses" else "submit" if method == "POST" \
                else "poll" if path.count("/") == 3 and path.startswith("/v1/videos/") else "other"
            with self._lock:
                self.by_key.setdefault(token, Counter())[(kind, status)] += 1

    def check_credits(self) -> None:
        """A 429 "out of credits" once the team's credits are spent."""
        if self.config.credits_usd is not None and self.spent_usd >= self.config.credits_usd:
            raise ApiRefusal(429, "resource-exhausted", "Your team has run out of credits or reached its "
                             "spending limit. Purchase more credits at https://console.x.ai.")

    def charge(self, usd: float) -> None:
        """Bill ``usd`` to the team (what the credits are checked against)."""
        with self._lock:
            self.spent_usd += usd

    def submit(self, kind: str, body: Any, owner: str | None = None) -> str:
        """Validate a POST body like the service does, start the job, return its request id."""
        if not isinstance(body, dict):
            raise ApiRefusal(422, "invalid-argument", "The body must be a JSON object.")
        try:
            job = self._job_from_body(kind, body)
        except ValidationError as exc:
            raise ApiRefusal(400 if exc.field != "model" else 404, "invalid-argument", str(exc)) from None
        self.check_credits()
        # The take is the request id: the same request renders the same video, two jobs of one prompt differ a little.
        job.render_payload.update(media_dir=str(self.media_dir),
                                  out_path=str(self.media_dir / f"xai-video-{job.id}.mp4"), take=job.id)
        if self.config.render_scale != 1.0 and job.kind == "generate":
            scale = self.config.render_scale
            payload = job.render_payload
            payload["width"] = max(16, int(round(payload["width"] * scale / 2)) * 2)
            payload["height"] = max(16, int(round(payload["height"] * scale / 2)) * 2)
        job.owner = owner
        # Decided now, not at the first poll after its latency: the benchmarks read ready_at from it.
        job.done_at_latency = self.config.done_at_latency and job.known_result is not None
        job.future = concurrent.futures.Future()
        with self._lock:
            self.jobs[job.id] = job
            heapq.heappush(self._renders, (job.created + job.latency, next(self._render_seq), job))
        self._dispatch_renders()
        return job.id

    def _dispatch_renders(self) -> None:
        """Hand queued renders to free workers, the job due soonest first."""
        pool = self.pool
        while True:
            with self._lock:
                if self._rendering >= pool.size or not self._renders:
                    return
                job = heapq.heappop(self._renders)[2]
                self._rendering += 1
            try:
                inner = pool.submit(job.render_payload)
            except RuntimeError as exc:  # the pool is shut down: the simulator is closing
                with self._lock:
                    self._rendering -= 1
                assert job.future is not None
                job.future.set_exception(exc)
                continue
            inner.add_done_callback(functools.partial(self._rendered, job))

    def _rendered(self, job: Job, done: concurrent.futures.Future[dict[str, Any]]) -> None:
        job.rendered_at = self.clock()  # before the job's future resolves: ready_at is set when a poll sees it
        with self._lock:
            self._rendering -= 1
        assert job.future is not None
        if done.cancelled():
            job.future.cancel()
        elif (error := done.exception()) is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(done.result())
        if self._pool is not None:
            self._dispatch_renders()

    def _job_from_body(self, kind: str, body: dict[str, Any]) -> Job:
        """Check a body with the per-model rules grok_nb's client uses (warnings off: a server refuses or not)."""
        get = body.get
        name = get("model") or validation.DEFAULT_MODEL
        family = models.served_names().get(name) if isinstance(name, str) else None
        if family is None:
            raise ApiRefusal(404, "not-found", f"The model {name} does not exist or your team does not have "
                                               "access to it.")
        prompt = get("prompt")
        if prompt is not None and not isinstance(prompt, str):
            raise ValidationError("prompt", prompt, "a string")
        payload: dict[str, Any] = {"kind": kind, "prompt": prompt, "model": name,
                                   "generate_audio": get("generate_audio", True) is not False}
        n_images = 0
        forced: tuple[str, str] | None = None
        if kind == "generate":
            image = get("image") or get("image_url") or get("input_reference")
            refs = get("reference_images")
            keyframes = get("keyframes")
            spec = validation.generate_spec(
                prompt, model=name, image=_image_of(image, "image") if image else None,
                reference_images=[_image_of(r, f"reference_images[{i}]") for i, r in enumerate(refs)]
                if isinstance(refs, list) else refs,
                last_frame=_image_of(get("last_frame"), "last_frame") if get("last_frame") else None,
                keyframes=[{**k, "image": _image_of(k.get("image"), f"keyframes[{i}].image")} if isinstance(k, dict)
                           else k for i, k in enumerate(keyframes)] if isinstance(keyframes, list) else keyframes,
                reference_audios=get("reference_audios"),
                duration=_seconds(get("duration", get("seconds"))), resolution=get("resolution"),
                aspect_ratio=get("aspect_ratio"), generate_audio=get("generate_audio"), user=get("user"),
                _warn_now=False)
            seconds, resolution = spec.body["duration"], spec.body["resolution"]
            rules = models.MODELS[family]
            image_url = _url_of(spec.body["image"], "image") if "image" in spec.body else None
            ratio = spec.body.get("aspect_ratio")
            if ratio is None and image_url:
                ratio = _image_ratio(image_url, rules.aspect_ratios)
            width, height = validation.frame_size(resolution, ratio or "16:9")
            sent = spec.body
            payload.update(width=width, height=height, seconds=seconds, image_url=image_url,
                           reference_urls=[_url_of(r, "reference_images") for r in sent.get("reference_images", [])],
                           # For renderers that can use them; the current one draws the first frame only.
                           last_frame_url=_url_of(sent["last_frame"], "last_frame") if "last_frame" in sent else None,
                           keyframes=[{"url": _url_of(k["image"], "keyframes"), "timestamp_s": k["timestamp_s"]}
                                      for k in sent.get("keyframes", [])],
                           voice_ids=[v["voice_id"] for v in sent.get("reference_audios", [])])
            n_images = sum(1 for key in ("image", "last_frame") if key in spec.body) + \
                len(spec.body.get("reference_images", [])) + len(spec.body.get("keyframes", []))
            latency = real_latency_s(kind, seconds, resolution, has_image=bool(image), model=family)
        else:
            video = get("video")
            if isinstance(video, str):
                video = {"url": video}
            if not isinstance(video, dict) or not (video.get("url") or video.get("file_id")):
                raise ValidationError("video", video, 'an object {"url": "<mp4 url>"} or {"file_id": ...}')
            ref = VideoRef(video.get("url"), file_id=video.get("file_id") if not video.get("url") else None)
            builder = validation.edit_spec if kind == "edit" else validation.extend_spec
            # A model whose docs leave this operation out takes the request and fails the job with
            # failed_precondition (below), where grok_nb's client refuses it: check the body by the
            # rules of the model that documents it.
            allowed = kind in models.MODELS[family].operations
            options: dict[str, Any] = {"model": name if allowed else validation.DEFAULT_MODEL,
                                       "generate_audio": get("generate_audio"), "_warn_now": False}
            if kind == "edit":
                options["user"] = get("user")
            else:
                if get("user") is not None:
                    raise ValidationError("user", get("user"), "not a field of the extension body")
                options["duration"] = _seconds(get("duration", get("seconds")))
            spec = builder(prompt, ref, **options)
            video_url = _url_of(spec.body["video"], "video")
            if kind == "edit":
                seconds, input_range = 0.0, (0.0, validation.EDIT_MAX_INPUT_S)
                latency = real_latency_s("edit", 6.0, "480p", model=family)
            else:
                seconds = spec.body["duration"]
                input_range = validation.EXTEND_INPUT_RANGE
                latency = real_latency_s("extend", seconds, "720p", model=family)
            resolution = "720p"
            payload.update(width=0, height=0, seconds=seconds, video_url=video_url, input_range=input_range)
            if not allowed:
                noun = "Edits" if kind == "edit" else "Extensions"
                forced = ("failed_precondition", f"{noun} are not supported for model {name}.")
        ranges = self.config.latency_ranges
        if ranges and resolution in ranges:  # benchmarks: the documented spread, uniform
            scaled = self._scaled(self._rng.uniform(*ranges[resolution]))
        else:
            scaled = self._scaled(latency) * (1 + self._rng.uniform(-self.config.latency_jitter,
                                                                    self.config.latency_jitter))
        bias = self.config.progress_bias
        job = Job(id=str(uuid.uuid4()), kind=kind, model=family, prompt=prompt or "", resolution=resolution,
                  created=self.clock(), latency=scaled * self.config.latency_factor, render_payload=payload,
                  n_images=n_images, progress_bias=self._rng.uniform(-bias, bias) if bias else 0.0)
        for marker in _MARKER.finditer(prompt or ""):
            what, value = marker.group(1), marker.group(2)
            if what in ("fail", "moderate"):
                job.forced, job.forced_code = what, value
                if what == "moderate" and value in ("http400", "failed"):
                    job.variants.add("moderation_as_http_400" if value == "http400" else "moderation_as_failed")
            elif what == "slow":
                job.latency *= 10
            elif what in ("done", "pending") and value:
                job.variants.add({"no_status": "done_without_status", "no_url": "done_without_url",
                                  "nested": "nested_response", "empty": "pending_empty_body"}.get(value, value))
        if forced is not None:
            job.forced, job.forced_code, job.forced_message = "fail", forced[0], forced[1]
        elif job.forced is None and self._rng.random() < self.config.fail_rate:
            job.forced, job.forced_code = "fail", self._rng.choice(self.config.fail_codes)
        elif job.forced is None and self._rng.random() < self.config.moderation_rate:
            job.forced = "moderate"
        return job

    # -- polls -----------------------------------------------------------------------------------
    def status(self, request_id: str, media_base: str) -> tuple[int, dict[str, Any] | None]:
        """The HTTP status and body answering a poll (body None: an empty answer)."""
        with self._lock:
            job = self.jobs.get(request_id)
        if job is None:
            raise ApiRefusal(404, "not-found", f"No video request with id {request_id}.")
        job.polls += 1
        now = self.clock()
        elapsed = now - job.created
        if job.error is None and job.result is None and job.future is not None:
            if job.future.done():
                self._finish(job, now)
            elif elapsed >= job.latency and job.done_at_latency:
                self._finish(job, now, {"ok": job.known_result})
        finished = job.error is not None or job.result is not None
        if not finished or elapsed < job.latency:
            return self._pending(job, elapsed)
        if job.done_at is None:
            job.done_at = max(now, job.created + job.latency)
        if job.error is not None:
            code, message = job.error
            return 200, {"status": "failed", "progress": 0, "error": {"code": code, "message": message}}
        if now > job.done_at + self._scaled(self.config.url_lifetime_s):
            return 200, {"status": "expired", "progress": 100, "model": job.model}
        assert job.result is not None
        moderated = job.forced == "moderate"
        usage = {"cost_in_usd_ticks": job.cost_ticks}
        if moderated and self._variant(job, "moderation_as_http_400"):
            # Seen live: moderation reported at poll time as a 400 that still carries the (billed) usage.
            return 400, {"code": self.config.moderation_code,
                         "error": "Generated video rejected by content moderation.", "usage": usage}
        if moderated and self._variant(job, "moderation_as_failed"):
            # Seen live: a failed job, invalid_argument, whose message speaks of moderation (billed).
            return 200, {"status": "failed", "progress": 0, "usage": usage,
                         "error": {"code": "invalid_argument",
                                   "message": "Content blocked by moderation: the request violates the usage "
                                              "policy."}}
        video: dict[str, Any] = {"url": "" if moderated else f"{media_base}/media/xai-video-{job.id}.mp4",
                                 "duration": round(job.result["seconds"], 3), "respect_moderation": not moderated}
        if self._variant(job, "done_without_url"):
            del video["url"]  # delivered elsewhere (upload_url / storage): nothing to download
        if self._variant(job, "done_without_status"):
            return 200, {"video": video, "model": job.model}
        if self._variant(job, "nested_response"):
            return 200, {"status": "done", "response": {"video": video, "model": job.model}, "usage": usage}
        return 200, {"status": "done", "progress": 100, "model": job.model, "video": video, "usage": usage}

    def _variant(self, job: Job, name: str) -> bool:
        """A live-service answer variant, switched on for every job or by this job's prompt marker."""
        return name in job.variants or bool(getattr(self.config, name))

    def _pending(self, job: Job, elapsed: float) -> tuple[int, dict[str, Any] | None]:
        if self._variant(job, "pending_empty_body"):
            return 202, None
        body: dict[str, Any] = {"status": self.config.pending_status}
        if not self.config.omit_progress:
            span = job.latency * (1.0 - min(0.9, max(0.0, self.config.progress_tail)))
            jitter = self.config.progress_jitter
            reading = 100 * elapsed / max(span, 1e-9) + job.progress_bias + (
                self._rng.uniform(-jitter, jitter) if jitter else 0.0)
            body["progress"] = min(99, max(0, int(reading)))
        return self.config.pending_http_status, body

    def _finish(self, job: Job, now: float, answer: dict[str, Any] | None = None) -> None:
        assert job.future is not None
        answer = job.future.result() if answer is None else answer
        if "refused" in answer:
            code, message = answer["refused"]
            job.error = (str(code), str(message))
            return
        if "crashed" in answer:  # the service's own fault
            job.error = ("internal_error", "rendering failed; try again")
            return
        result = answer["ok"]
        if job.forced == "fail":
            code = job.forced_code or "internal_error"
            job.error = (code, job.forced_message or _FAILURE_MESSAGES.get(code, "The video could not be generated."))
            return
        job.result = result
        if job.kind == "generate":
            res = job.resolution
        else:  # edits and extensions keep the input's resolution, capped at 720p
            res = "720p" if min(result["width"], result["height"]) >= 720 else "480p"
        added = job.render_payload["seconds"] if job.kind == "extend" else result["seconds"]
        estimate = pricing.estimate(job.kind, model=job.model, duration=added, resolution=res,
                                    n_images=job.n_images, input_duration=result.get("input_seconds"))
        job.cost_ticks = pricing.ticks_from_usd(estimate.usd)
        with self._lock:
            self.spent_usd += estimate.usd

    def job_of_media(self, name: str) -> Job | None:
        """The job behind a media file name (``xai-video-<request id>.mp4``); None for any other name."""
        match = MEDIA_NAME.fullmatch(name)
        return self.jobs.get(match.group(1)) if match else None

    def render_of(self, name: str) -> concurrent.futures.Future[dict[str, Any]] | None:
        """The render behind a media URL while it still runs (the job was answered done before it ended)."""
        job = self.job_of_media(name)
        if job is None or job.future is None or job.future.done():
            return None
        return job.future

    def render_failed(self, name: str) -> bool:
        """True when the render behind a media URL ended without a video (it crashed, or its input was refused)."""
        job = self.job_of_media(name)
        future = job.future if job is not None else None
        if future is None or not future.done() or future.cancelled():
            return False
        return future.exception() is not None or "ok" not in future.result()

    def media_path(self, name: str) -> Path | None:
        """The file behind a media URL while it lives; None once expired or unknown."""
        job = self.job_of_media(name)
        if job is None or job.result is None or job.forced == "moderate" or job.done_at is None:
            return None
        if self.clock() > job.done_at + self._scaled(self.config.url_lifetime_s):
            return None
        path = self.media_dir / name
        return path if path.is_file() else None

    def jobs_by_prompt(self, prompt: str) -> list[Job]:
        """The jobs whose prompt is exactly ``prompt`` (to prove a submit was not duplicated)."""
        with self._lock:
            return [job for job in self.jobs.values() if job.prompt == prompt]

    def snapshot(self) -> dict[str, Any]:
        """The settings and counters, for the admin endpoint."""
        return {"config": asdict(self.config), "jobs": len(self.jobs), "spent_usd": round(self.spent_usd, 6),
                "requests": len(self.requests)}


_FAILURE_MESSAGES = {"invalid_argument": "The request could not be processed as given.",
                     "service_unavailable": "The service is busy; try again later.",
                     "permission_denied": "This team may not use this model.",
                     "failed_precondition": "An input could not be used."}


def _image_of(value: Any, field_name: str) -> ImageRef:
    """An image object of a request body, as the validation rules take it (never fetched or decoded here)."""
    if isinstance(value, str):
        value = {"url": value}
    if isinstance(value, dict) and isinstance(value.get("url"), str) and value["url"]:
        if value["url"].startswith(("http://", "https://")):
            media.check_url(value["url"], field_name)  # a URL without a host cannot be fetched: 400
        return ImageRef({"url": value["url"]}, value["url"][:80])
    if isinstance(value, dict) and isinstance(value.get("file_id"), str) and value["file_id"]:
        return ImageRef({"file_id": value["file_id"]}, f"file_id:{value['file_id']}")
    raise ValidationError(field_name, value, 'an object {"url": "..."} or {"file_id": ...}')


def _url_of(value: Any, field_name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("url"), str) and value["url"]:
        return str(value["url"])
    if isinstance(value, dict) and value.get("file_id"):
        raise ValidationError(field_name, value, "a URL (the simulator has no file store)")
    raise ValidationError(field_name, value, 'an object {"url": "..."}')


def _image_ratio(url: str, allowed: tuple[str, ...] = validation.ASPECT_RATIOS) -> str | None:
    """The allowed aspect ratio nearest an inline image's shape (image→video keeps it)."""
    if not url.startswith("data:"):
        return None
    from PIL import Image  # Pillow, a heavy import: loaded only for an inline image

    try:
        with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as im:
            return validation.nearest_aspect_ratio(*im.size, allowed)
    except Exception:
        return None
