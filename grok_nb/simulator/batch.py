"""The simulated Batch API: create a batch, add requests, read counters and paged results, cancel.

Each request becomes an ordinary simulated job (same checks, same renders, same prices), but
it is ready after a share of the batch's turnaround (``BatchBook.turnaround_s``, simulated
seconds scaled by the simulator's speed) rather than after a single job's latency, so results
arrive in no fixed order. Batch calls never touch the key's rate limit; adding requests has its
own limit (1,000 calls per 30 s). Result URLs live one hour.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from ..api.batch import (
    ADD_CALLS_PER_WINDOW,
    ADD_CALLS_WINDOW_S,
    MAX_REQUESTS_PER_CALL,
    RESULT_URL_LIFETIME_S,
)
from .files import FileRefusal, file_store
from .state import MEDIA_NAME, ApiRefusal, Job, Simulator

#: The single-job error names as the gRPC codes a batch result carries.
_GRPC = {"cancelled": 1, "invalid_argument": 3, "deadline_exceeded": 4, "not_found": 5, "permission_denied": 7,
         "resource_exhausted": 8, "failed_precondition": 9, "internal_error": 13, "service_unavailable": 14}
#: How long a batch may run before what is left expires (simulated seconds).
BATCH_LIFETIME_S = 24 * 3600.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass
class BatchRequest:
    """One request of a batch."""

    rid: str
    kind: str
    added_at: float  # monotonic
    ready_after: float  # seconds after added_at (real)
    job: Job | None = None
    state: str = "pending"  # pending | succeeded | failed | cancelled
    error: tuple[int, str] | None = None
    url_expires_at: float | None = None  # monotonic
    video: dict[str, Any] | None = None
    cost_ticks: int | None = None


@dataclass
class SimBatch:
    """One batch and its requests."""

    id: str
    name: str
    created: float  # Unix seconds
    created_mono: float
    expires_mono: float
    expire_time: float  # Unix seconds
    owner: str | None = None
    cancel_time: float | None = None
    requests: dict[str, BatchRequest] = field(default_factory=dict)
    finished: list[str] = field(default_factory=list)  # the order results became readable
    cost_ticks: int = 0


class BatchBook:
    """Every batch of one simulator."""

    def __init__(self, sim: Simulator):
        self.sim = sim
        #: Simulated seconds within which every request of a batch is ready (each at a random share of it).
        self.turnaround_s = 600.0
        self.batches: dict[str, SimBatch] = {}
        self._lock = threading.RLock()
        self._rng = random.Random(sim.config.seed)
        self._add_calls: list[float] = []

    def _scaled(self, seconds: float) -> float:
        return seconds / max(1e-9, self.sim.config.speed)

    # -- calls -------------------------------------------------------------------------------------
    def create(self, body: Any, owner: str | None) -> SimBatch:
        """``POST /v1/batches {"name"}``."""
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"].strip():
            raise ApiRefusal(400, "invalid-argument", 'A batch needs a name: {"name": "..."}.')
        if body.get("input_file_id") is not None:
            raise ApiRefusal(400, "invalid-argument", "This simulator takes batch requests, not JSONL input files.")
        now, mono = time.time(), self.sim.clock()
        life = self._scaled(BATCH_LIFETIME_S)
        batch = SimBatch("batch_" + uuid.uuid4().hex, body["name"].strip()[:256], now, mono, mono + life,
                         now + life, owner)
        with self._lock:
            self.batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> SimBatch:
        """A batch, brought up to date; 404 when unknown."""
        with self._lock:
            batch = self.batches.get(batch_id)
        if batch is None:
            raise ApiRefusal(404, "not-found", f"Batch {batch_id} not found.")
        self.sweep(batch)
        return batch

    def add(self, batch: SimBatch, body: Any, owner: str | None) -> None:
        """``POST /v1/batches/{id}/requests``: each request becomes a job; a bad one fails on its own."""
        items = body.get("batch_requests") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ApiRefusal(400, "invalid-argument", 'Send {"batch_requests": [{"batch_request_id", '
                                                      '"batch_request": {"video_generation": {...}}}, ...]}.')
        if len(items) > MAX_REQUESTS_PER_CALL:
            raise ApiRefusal(400, "invalid-argument", f"At most {MAX_REQUESTS_PER_CALL} requests per call; "
                                                      f"got {len(items)}.")
        if batch.cancel_time is not None or self.sim.clock() > batch.expires_mono:
            raise ApiRefusal(400, "invalid-argument", f"Batch {batch.id} is cancelled or expired: no more "
                                                      "requests can be added.")
        window = self._scaled(ADD_CALLS_WINDOW_S)
        mono = self.sim.clock()
        with self._lock:
            self._add_calls = [t for t in self._add_calls if mono - t < window]
            if len(self._add_calls) >= ADD_CALLS_PER_WINDOW:
                raise ApiRefusal(429, "resource-exhausted",
                                 f"Too many batch request calls: at most {ADD_CALLS_PER_WINDOW} per "
                                 f"{ADD_CALLS_WINDOW_S:g} s.", retry_after=window)
            self._add_calls.append(mono)
        seen: set[str] = set()
        parsed = []
        for i, item in enumerate(items):
            rid = item.get("batch_request_id") if isinstance(item, dict) else None
            if not isinstance(rid, str) or not rid.strip() or len(rid) > 256:
                raise ApiRefusal(400, "invalid-argument", f"batch_requests[{i}] needs a batch_request_id.")
            if rid in seen or rid in batch.requests:
                raise ApiRefusal(400, "invalid-argument", f"batch_request_id {rid} is used twice in batch {batch.id}.")
            seen.add(rid)
            inner = item.get("batch_request")
            if not isinstance(inner, dict) or not any(isinstance(inner.get(k), dict)
                                                      for k in ("video_generation", "video_extension")):
                raise ApiRefusal(400, "invalid-argument", f"batch_requests[{i}].batch_request needs a "
                                                          "video_generation or video_extension object.")
            parsed.append((rid, inner))
        for rid, inner in parsed:
            if isinstance(inner.get("video_extension"), dict):
                kind, job_body = "extend", inner["video_extension"]
            else:
                job_body = inner["video_generation"]
                kind = "edit" if isinstance(job_body, dict) and job_body.get("video") else "generate"
            request = BatchRequest(rid, kind, self.sim.clock(),
                                   self._scaled(self.turnaround_s) * self._rng.uniform(0.2, 1.0))
            try:
                job_id = self.sim.submit(kind, file_store(self.sim).resolve(job_body), owner)
                request.job = self.sim.jobs[job_id]
                request.job.latency = request.ready_after
            except (ApiRefusal, FileRefusal) as exc:
                code = 5 if exc.status == 404 else 8 if exc.status == 429 else 3
                request.state, request.error = "failed", (code, exc.message)
            with self._lock:
                batch.requests[rid] = request
                if request.state != "pending":
                    batch.finished.append(rid)

    def cancel(self, batch: SimBatch) -> None:
        """``POST /v1/batches/{id}:cancel``: what has not run is cancelled (and not billed)."""
        self.sweep(batch)
        with self._lock:
            if batch.cancel_time is None:
                batch.cancel_time = time.time()
            for request in batch.requests.values():
                if request.state == "pending":
                    request.state, request.error = "cancelled", (1, "The request was cancelled with its batch.")
                    batch.finished.append(request.rid)

    def sweep(self, batch: SimBatch) -> None:
        """Requests whose time has come become readable, in no fixed order; what outlives the batch expires."""
        now = self.sim.clock()
        ready = []
        with self._lock:
            for request in batch.requests.values():
                if request.state != "pending" or request.job is None:
                    continue
                job = request.job
                if now > batch.expires_mono:
                    request.state, request.error = "failed", (4, "The batch expired before this request ran.")
                    ready.append(request)
                elif now >= request.added_at + request.ready_after and job.future is not None and job.future.done():
                    ready.append(request)
            self._rng.shuffle(ready)
            for request in ready:
                if request.state == "pending":
                    self._finish(batch, request, now)
                batch.finished.append(request.rid)

    def _finish(self, batch: SimBatch, request: BatchRequest, now: float) -> None:
        job = request.job
        assert job is not None
        job.done_at = now
        self.sim._finish(job, now)  # the single-job outcome and price: one place decides both
        if job.error is not None:
            code, message = job.error
            request.state, request.error = "failed", (_GRPC.get(code, 2), message)
            return
        request.state = "succeeded"
        request.cost_ticks = job.cost_ticks
        batch.cost_ticks += job.cost_ticks or 0
        request.url_expires_at = now + self._scaled(RESULT_URL_LIFETIME_S)
        moderated = job.forced == "moderate"
        assert job.result is not None
        request.video = {"url": "" if moderated else f"/media/batch/xai-video-{job.id}.mp4",
                         "duration": round(job.result["seconds"], 3), "respect_moderation": not moderated}

    # -- answers ---------------------------------------------------------------------------------
    def answer(self, batch: SimBatch) -> dict[str, Any]:
        """The Batch object: counters, times, cost (no status field: done means num_pending == 0)."""
        states = [r.state for r in batch.requests.values()]
        body: dict[str, Any] = {
            "batch_id": batch.id, "name": batch.name, "create_time": _iso(batch.created),
            "expire_time": _iso(batch.expire_time),
            "state": {"num_requests": len(states), "num_pending": states.count("pending"),
                      "num_success": states.count("succeeded"), "num_error": states.count("failed"),
                      "num_cancelled": states.count("cancelled")},
            "cost_breakdown": {"total_cost_usd_ticks": batch.cost_ticks}}
        if batch.cancel_time is not None:
            body["cancel_time"] = _iso(batch.cancel_time)
        return body

    def results(self, batch: SimBatch, base: str, limit: Any, token: Any) -> dict[str, Any]:
        """One page of readable results; the token continues from where this page ends."""
        try:
            size = max(1, min(1000, int(limit))) if limit not in (None, "") else 100
        except ValueError:
            raise ApiRefusal(400, "invalid-argument", f"limit must be a whole number; got {limit!r}.") from None
        start = 0
        if token:
            match = re.fullmatch(r"o:(\d+)", _unb64(token) or "")
            if match is None:
                raise ApiRefusal(400, "invalid-argument", "pagination_token is not one this server gave.")
            start = int(match.group(1))
        with self._lock:
            ids = batch.finished[start:start + size]
            total = len(batch.finished)
            done = all(r.state != "pending" for r in batch.requests.values())
        page = [self._result(batch.requests[rid], base) for rid in ids]
        end = start + len(ids)
        more = end < total or not done
        return {"results": page, "pagination_token": _b64(f"o:{end}") if more else None}

    def _result(self, request: BatchRequest, base: str) -> dict[str, Any]:
        if request.error is not None:
            code, message = request.error
            return {"batch_request_id": request.rid, "batch_result": {"error": {"code": code, "message": message}}}
        assert request.job is not None and request.video is not None
        video = dict(request.video)
        if video["url"]:
            video["url"] = base + video["url"]
        key = "video_extension" if request.kind == "extend" else "video_generation"
        return {"batch_request_id": request.rid, "batch_result": {"response": {key: {
            "video": video, "model": request.job.model, "usage": {"cost_in_usd_ticks": request.cost_ticks}}}}}

    def request_states(self, batch: SimBatch) -> dict[str, Any]:
        """Each request's state."""
        with self._lock:
            entries = [{"batch_request_id": r.rid, "state": r.state} for r in batch.requests.values()]
        return {"batch_request_metadata": entries, "pagination_token": None}

    def media_path(self, name: str) -> Path | None:
        """The file behind a batch result URL while it lives (one hour, scaled)."""
        match = MEDIA_NAME.fullmatch(name)
        if match is None:
            return None
        with self._lock:
            requests = [r for b in self.batches.values() for r in b.requests.values()
                        if r.job is not None and r.job.id == match.group(1)]
        if not requests or requests[0].url_expires_at is None or not requests[0].video or \
                not requests[0].video["url"] or self.sim.clock() > requests[0].url_expires_at:
            return None
        path = self.sim.media_dir / name
        return path if path.is_file() else None


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def batch_book(sim: Simulator) -> BatchBook:
    """The batches of ``sim`` (made on first use, kept with it)."""
    book = sim.__dict__.get("batches")
    if book is None:
        book = sim.__dict__.setdefault("batches", BatchBook(sim))
    return book  # type: ignore[no-any-return]


async def json_body(request: Request) -> Any:
    """A POST's JSON body, or the service's refusal of an empty (415) or unreadable (422) one."""
    raw = await request.body()
    if not raw:
        raise ApiRefusal(415, "invalid-argument", "Empty body: send a JSON object.")
    try:
        return json.loads(raw)
    except ValueError:
        raise ApiRefusal(422, "invalid-argument", "The body is not valid JSON.") from None


def batch_routes(sim: Simulator, error_response: Callable[[ApiRefusal], Response]) -> list[Route]:
    """The Batch endpoints: authenticated like the rest, but outside the key's rate limit."""
    book = batch_book(sim)

    def endpoint(handler: Callable[[Request, str], Any]) -> Callable[[Request], Any]:
        async def serve(request: Request) -> Response:
            try:
                token = sim.check_auth(request.headers.get("authorization"))
                response: Response = await handler(request, token)
            except ApiRefusal as refusal:
                response = error_response(refusal)
            sim.requests.append((request.method, request.url.path, response.status_code))
            return response
        return serve

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def batches(request: Request, token: str) -> Response:
        if request.method == "POST":
            batch = book.create(await json_body(request), token)
            return JSONResponse(book.answer(batch))
        with book._lock:
            ids = list(book.batches)
        return JSONResponse({"batches": [book.answer(book.get(i)) for i in ids], "pagination_token": None})

    async def one(request: Request, token: str) -> Response:
        return JSONResponse(book.answer(book.get(request.path_params["batch_id"])))

    async def cancel(request: Request, token: str) -> Response:
        batch = book.get(request.path_params["batch_id"])
        book.cancel(batch)
        return JSONResponse(book.answer(batch))

    async def requests(request: Request, token: str) -> Response:
        batch = book.get(request.path_params["batch_id"])
        if request.method == "GET":
            return JSONResponse(book.request_states(batch))
        body = await json_body(request)
        await asyncio.to_thread(book.add, batch, body, token)
        return JSONResponse({})

    async def results(request: Request, token: str) -> Response:
        batch = book.get(request.path_params["batch_id"])
        return JSONResponse(book.results(batch, base(request), request.query_params.get("limit"),
                                         request.query_params.get("pagination_token")))

    async def media(request: Request) -> Response:
        path = book.media_path(request.path_params["name"])
        if path is None:
            sim.requests.append((request.method, request.url.path, 403))
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                            status_code=403, media_type="application/xml")
        sim.requests.append((request.method, request.url.path, 200))
        return FileResponse(path, media_type="video/mp4")

    async def config(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                changes = json.loads(await request.body() or b"{}")
                book.turnaround_s = float(changes["turnaround_s"])
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": f"send {{'turnaround_s': seconds}} ({exc})"}, status_code=400)
        return JSONResponse({"turnaround_s": book.turnaround_s, "batches": len(book.batches)})

    return [
        Route("/v1/batches", endpoint(batches), methods=["GET", "POST"]),
        Route("/v1/batches/{batch_id:str}:cancel", endpoint(cancel), methods=["POST"]),
        Route("/v1/batches/{batch_id:str}", endpoint(one), methods=["GET"]),
        Route("/v1/batches/{batch_id:str}/requests", endpoint(requests), methods=["GET", "POST"]),
        Route("/v1/batches/{batch_id:str}/results", endpoint(results), methods=["GET"]),
        Route("/media/batch/{name:str}", media, methods=["GET", "HEAD"]),
        Route("/_simulator/batch", config, methods=["GET", "PATCH"]),
    ]
