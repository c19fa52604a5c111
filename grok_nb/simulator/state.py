"""The simulated service's state: jobs, their timing, faults, billing. No HTTP here."""

from __future__ import annotations

import concurrent.futures
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .. import pricing, validation
from ..errors import ValidationError
from .worker import WorkerPool

REAL_RATE_LIMIT_RPS = 1.0
REAL_URL_LIFETIME_S = 24 * 3600.0
#: Markers a prompt can carry to ask the simulator for an outcome (for demos and teaching).
_MARKER = re.compile(r"\[sim:(fail|moderate|slow)(?:=([a-z_]+))?\]")


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
    pending_http_status: int = 200  # or 202
    omit_progress: bool = False
    error_shape: str = "flat"  # flat {"code","error"}, legacy, nested {"error": {...}}
    submit_delay_s: float = 0.0  # wall seconds a submit waits after creating its job (read-timeout tests)
    credits_usd: float | None = None  # None: unlimited; else 429 "out of credits" once spent
    render_workers: int = 2
    seed: int | None = None
    #: Resolution → (lo, hi) real seconds: each job's latency is drawn uniformly from its range
    #: (no jitter). None keeps the model of ``real_latency_s``. For benchmarks of waiting strategies.
    latency_ranges: dict[str, tuple[float, float]] | None = None
    #: Frames are rendered at this fraction of the requested size (durations kept): benchmarks
    #: that time the API, not the pictures, keep the render workers from setting the pace.
    render_scale: float = 1.0

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


def real_latency_s(kind: str, seconds: float, resolution: str, *, has_image: bool = False) -> float:
    """The service's typical latency in real seconds, from the documented figures.

    1 s 480p ≈ 20 s, 6 s 480p ≈ 1.5 min, 15 s 720p ≈ 6 min, a ~6 s edit ≈ 80 s.
    """
    factor = {"480p": 1.0, "720p": 1.7, "1080p": 2.6}.get(resolution, 1.0)
    if kind == "edit":
        return 20.0 + 10.0 * seconds * factor
    return 8.0 + 14.0 * seconds * factor + (5.0 if has_image else 0.0)


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
    render_payload: dict
    n_images: int = 0
    forced: str | None = None  # fail / moderate from faults or prompt markers
    forced_code: str | None = None
    future: concurrent.futures.Future | None = None
    done_at: float | None = None
    result: dict | None = None
    error: tuple[str, str] | None = None
    cost_ticks: int | None = None
    polls: int = 0
    owner: str | None = None  # the API key that submitted it (per-key counts)
    rendered_at: float | None = None  # monotonic time its render finished

    @property
    def ready_at(self) -> float | None:
        """The monotonic time the server first could answer "done" (or failed): latency over, render finished."""
        if self.rendered_at is None:
            return None
        return max(self.created + self.latency, self.rendered_at)


class Simulator:
    """The service: accepts jobs, renders them in worker processes, answers polls."""

    def __init__(self, config: SimulatorConfig | None = None, media_dir: str | Path | None = None):
        import tempfile

        self.config = config or SimulatorConfig()
        self.media_dir = Path(media_dir or tempfile.mkdtemp(prefix="grok-nb-sim-"))
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.jobs: dict[str, Job] = {}
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=20_000)
        #: API key → Counter of (kind, HTTP status), kind being submit, poll or other (not media downloads).
        self.by_key: dict[str, Counter] = {}
        self.spent_usd = 0.0
        self.clock = time.monotonic
        self._rng = random.Random(self.config.seed)
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._pool: WorkerPool | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def pool(self) -> WorkerPool:
        """Render worker processes, started on first use."""
        if self._pool is None:
            self._pool = WorkerPool(self.config.render_workers)
        return self._pool

    def close(self) -> None:
        """Stop the render workers."""
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

    def check_rate(self, token: str) -> None:
        """A token bucket per key; 429 when empty, and the injected faults."""
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
            rate = cfg.rate_limit * cfg.speed
            capacity = max(2.0, rate)
            now = self.clock()
            tokens, last = self._buckets.get(token, (capacity, now))
            tokens = min(capacity, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[token] = (tokens, now)
                raise ApiRefusal(429, "resource-exhausted",
                                 f"Too many requests: the limit is {cfg.rate_limit:g} request(s) per second.",
                                 retry_after=(1.0 - tokens) / rate)
            self._buckets[token] = (tokens - 1.0, now)

    # -- submissions -----------------------------------------------------------------------------
    def record(self, token: str | None, method: str, path: str, status: int) -> None:
        """Log one API request, and count it for its key."""
        self.requests.append((method, path, status))
        if token is not None:
            kind = "submit" if method == "POST" else "poll" if path.count("/") == 3 and path.startswith("/v1/videos/") \
                else "other"
            with self._lock:
                self.by_key.setdefault(token, Counter())[(kind, status)] += 1

    def submit(self, kind: str, body: Any, owner: str | None = None) -> str:
        """Validate a POST body like the service does, start the job, return its request id."""
        if not isinstance(body, dict):
            raise ApiRefusal(422, "invalid-argument", "The body must be a JSON object.")
        try:
            job = self._job_from_body(kind, body)
        except ValidationError as exc:
            raise ApiRefusal(400 if exc.field != "model" else 404, "invalid-argument", str(exc)) from None
        if self.config.credits_usd is not None and self.spent_usd >= self.config.credits_usd:
            raise ApiRefusal(429, "resource-exhausted", "Your team has run out of credits or reached its "
                             "spending limit. Purchase more credits at https://console.x.ai.")
        job.render_payload.update(media_dir=str(self.media_dir),
                                  out_path=str(self.media_dir / f"xai-video-{job.id}.mp4"))
        if self.config.render_scale != 1.0 and job.kind == "generate":
            scale = self.config.render_scale
            payload = job.render_payload
            payload["width"] = max(16, int(round(payload["width"] * scale / 2)) * 2)
            payload["height"] = max(16, int(round(payload["height"] * scale / 2)) * 2)
        job.owner = owner
        job.future = self.pool.submit(job.render_payload)
        job.future.add_done_callback(lambda _: setattr(job, "rendered_at", self.clock()))
        with self._lock:
            self.jobs[job.id] = job
        return job.id

    def _job_from_body(self, kind: str, body: dict) -> Job:
        get = body.get
        model = get("model") or validation.DEFAULT_MODEL
        model = validation.canonical_model(model)
        prompt = get("prompt")
        image = get("image") or get("image_url") or get("input_reference")
        refs = get("reference_images") or []
        payload: dict[str, Any] = {"kind": kind, "prompt": prompt, "model": model,
                                   "generate_audio": get("generate_audio", True) is not False}
        n_images = 0
        if kind == "generate":
            if image and refs:
                raise ValidationError("reference_images", f"{len(refs)} image(s)", "not together with image")
            if not isinstance(refs, list) or len(refs) > validation.MAX_REFERENCE_IMAGES:
                raise ValidationError("reference_images", refs if not isinstance(refs, list) else f"{len(refs)} images",
                                      f"a list of at most {validation.MAX_REFERENCE_IMAGES}")
            validation.check_prompt(prompt, required=not image, why="required unless an image is given")
            raw_duration = get("duration", get("seconds", validation.DEFAULT_DURATION))
            seconds = validation.check_duration(raw_duration, "duration", 1,
                                                validation.REFERENCE_MAX_DURATION if refs else 15)
            allowed = validation.MODEL_RESOLUTIONS[model] if not refs else ("480p", "720p")
            resolution = validation.check_choice(get("resolution") or "480p", "resolution", allowed)
            ratio = get("aspect_ratio")
            image_url = _url_of(image, "image") if image else None
            if ratio is None and image_url:
                ratio = _image_ratio(image_url) or "16:9"
            ratio = validation.check_choice(ratio or "16:9", "aspect_ratio", validation.ASPECT_RATIOS)
            width, height = validation.frame_size(resolution, ratio)
            payload.update(width=width, height=height, seconds=seconds, image_url=image_url,
                           reference_urls=[_url_of(r, "reference_images") for r in refs])
            n_images = (1 if image else 0) + len(refs)
            latency = real_latency_s(kind, seconds, resolution, has_image=bool(image))
        else:
            validation.check_prompt(prompt, required=True)
            video = get("video")
            video_url = _url_of(video, "video") if video else None
            if not video_url:
                raise ValidationError("video", video, 'an object {"url": "<mp4 url>"}')
            if kind == "edit":
                seconds, input_range = 0.0, (0.0, validation.EDIT_MAX_INPUT_S)
                latency = real_latency_s("edit", 6.0, "480p")
            else:
                seconds = validation.check_duration(get("duration", get("seconds", validation.EXTEND_DEFAULT_DURATION)),
                                                    "duration", *validation.EXTEND_DURATION_RANGE)
                input_range = validation.EXTEND_INPUT_RANGE
                latency = real_latency_s("extend", seconds, "720p")
            resolution = "720p"
            payload.update(width=0, height=0, seconds=seconds, video_url=video_url, input_range=input_range)
        ranges = self.config.latency_ranges
        if ranges and resolution in ranges:
            scaled = self._scaled(self._rng.uniform(*ranges[resolution]))
        else:
            scaled = self._scaled(latency) * (1 + self._rng.uniform(-self.config.latency_jitter,
                                                                    self.config.latency_jitter))
        job = Job(id=str(uuid.uuid4()), kind=kind, model=model, prompt=prompt or "", resolution=resolution,
                  created=self.clock(), latency=scaled, render_payload=payload, n_images=n_images)
        marker = _MARKER.search(prompt or "")
        if marker and marker.group(1) in ("fail", "moderate"):
            job.forced, job.forced_code = marker.group(1), marker.group(2)
        elif marker and marker.group(1) == "slow":
            job.latency *= 10
        elif self._rng.random() < self.config.fail_rate:
            job.forced, job.forced_code = "fail", self._rng.choice(self.config.fail_codes)
        elif self._rng.random() < self.config.moderation_rate:
            job.forced = "moderate"
        return job

    # -- polls -----------------------------------------------------------------------------------
    def status(self, request_id: str, media_base: str) -> tuple[int, dict]:
        """The HTTP status and body answering a poll."""
        with self._lock:
            job = self.jobs.get(request_id)
        if job is None:
            raise ApiRefusal(404, "not-found", f"No video request with id {request_id}.")
        job.polls += 1
        now = self.clock()
        elapsed = now - job.created
        if job.error is None and job.result is None and job.future is not None and job.future.done():
            self._finish(job, now)
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
        video = {"url": "" if moderated else f"{media_base}/media/xai-video-{job.id}.mp4",
                 "duration": round(job.result["seconds"], 3), "respect_moderation": not moderated}
        return 200, {"status": "done", "progress": 100, "model": job.model, "video": video,
                     "usage": {"cost_in_usd_ticks": job.cost_ticks}}

    def _pending(self, job: Job, elapsed: float) -> tuple[int, dict]:
        body: dict[str, Any] = {"status": self.config.pending_status}
        if not self.config.omit_progress:
            body["progress"] = min(99, int(100 * elapsed / max(job.latency, 1e-9)))
        return self.config.pending_http_status, body

    def _finish(self, job: Job, now: float) -> None:
        assert job.future is not None
        answer = job.future.result()
        if "refused" in answer:
            job.error = tuple(answer["refused"])  # type: ignore[assignment]
            return
        if "crashed" in answer:  # the service's own fault
            job.error = ("internal_error", "rendering failed; try again")
            return
        result = answer["ok"]
        if job.forced == "fail":
            code = job.forced_code or "internal_error"
            job.error = (code, {"invalid_argument": "The request could not be processed as given.",
                                "service_unavailable": "The service is busy; try again later.",
                                "permission_denied": "This team may not use this model.",
                                "failed_precondition": "An input could not be used."}.get(
                                    code, "The video could not be generated."))
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

    def media_path(self, name: str) -> Path | None:
        """The file behind a media URL while it lives; None once expired or unknown."""
        match = re.fullmatch(r"xai-video-([0-9a-f-]{36})\.mp4", name)
        job = self.jobs.get(match.group(1)) if match else None
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

    def snapshot(self) -> dict:
        """The settings and counters, for the admin endpoint."""
        return {"config": asdict(self.config), "jobs": len(self.jobs), "spent_usd": round(self.spent_usd, 6),
                "requests": len(self.requests)}


def _url_of(value: Any, field_name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("url"), str) and value["url"]:
        return value["url"]
    if isinstance(value, dict) and value.get("file_id"):
        raise ValidationError(field_name, value, "a URL (the simulator has no file store)")
    raise ValidationError(field_name, value, 'an object {"url": "..."}')


def _image_ratio(url: str) -> str | None:
    """The allowed aspect ratio nearest an inline image's shape (image→video keeps it)."""
    if not url.startswith("data:"):
        return None
    import base64
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(base64.b64decode(url.partition(",")[2]))) as im:
            return validation.nearest_aspect_ratio(*im.size)
    except Exception:
        return None
