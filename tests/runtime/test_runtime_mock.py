"""The runtime's parts driven directly on ``httpx.MockTransport``: the one request path (sender), the engine, the
batch follower and uploads, with no server at all (each answer written here, every request counted)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from grok_nb.api.pricing import CostEstimate
from grok_nb.errors import DownloadError, SubmitUncertainError
from grok_nb.history.store import RunStore
from grok_nb.jobs.budget import Budget
from grok_nb.jobs.results import Run
from grok_nb.jobs.status import Status
from grok_nb.runtime.batch import BatchJob
from grok_nb.runtime.engine import Engine
from grok_nb.runtime.files import Uploads
from grok_nb.runtime.ratelimit import RateLimiter
from grok_nb.runtime.scheduler import POLL, SUBMIT
from grok_nb.runtime.sender import Fetched, Reading, plain_reading
from grok_nb.runtime.transport import Answer, Api
from tests.conftest import FAST
from tests.hostile import tiny_mp4

KEY = "xai-MOCKKEY0123456789abcdef"
BASE = "https://api.test"
Handler = Callable[[httpx.Request], httpx.Response]

pytestmark = pytest.mark.anyio


class Recorder:
    """A caller of the sender: keeps the exchanges it is told of and the notes it is shown."""

    request_id = "req-1"

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.notes: list[str | None] = []

    async def exchanged(self, entry: dict[str, Any]) -> None:
        self.entries.append(entry)

    def waiting(self, note: str | None) -> None:
        self.notes.append(note)


def _engine(tmp_path: Path, handler: Handler, **budget: Any) -> Engine:
    api = Api(BASE, KEY, timeout=5.0, transport=httpx.MockTransport(handler))
    return Engine(api, store=RunStore(tmp_path / "h.sqlite"), cache_dir=tmp_path, policy=FAST,
                  limiter=RateLimiter(1000.0), budget=Budget(**budget), backend="xai", base_url=BASE, secret=KEY)


def _plain(answer: Answer) -> Reading:
    from grok_nb.errors import APIError

    return plain_reading(answer, lambda a: APIError("refused", status_code=a.status_code or 0))


# -- the one request path --------------------------------------------------------------------------------
async def test_a_get_refused_with_429_waits_its_retry_after_then_succeeds(tmp_path):
    seen: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(asyncio.get_event_loop().time())
        if len(seen) == 1:
            return httpx.Response(429, headers={"retry-after": "0.2"}, json={"error": f"slow down {KEY}"})
        return httpx.Response(200, json={"ok": True})

    engine = _engine(tmp_path, handler)
    caller = Recorder()
    reply = await engine.sender.send(caller, "GET", "/v1/thing", _plain, started=asyncio.get_event_loop().time(),
                                     turn=POLL)
    assert reply.outcome == "ok" and reply.value == {"ok": True} and reply.attempts == 2
    assert seen[1] - seen[0] >= 0.19  # the Retry-After was honoured (capped by the policy, not ignored)
    assert [e["status"] for e in caller.entries] == [429, 200]
    assert all(KEY not in json.dumps(e) for e in caller.entries)  # the exchange record is redacted
    await engine.aclose()


@pytest.mark.parametrize("answer", [httpx.Response(502), "reset"])
async def test_a_post_that_may_have_arrived_is_never_sent_again(tmp_path, answer):
    posts: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        posts.append(request)
        if answer == "reset":
            raise httpx.ReadError("reset after the body was sent", request=request)
        return answer

    engine = _engine(tmp_path, handler)
    run = Run("r1", "generate", "grok-imagine-video", "a fox", estimate=CostEstimate(0.05))
    job = engine.job(run, endpoint="/v1/videos/generations", body={"prompt": "a fox"})
    (work,) = await engine.start([job])
    with pytest.raises(SubmitUncertainError):
        await work
    assert len(posts) == 1 and run.status is Status.UNCERTAIN
    await engine.aclose()


async def test_a_post_never_sent_is_tried_again(tmp_path):
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, json={"id": "x"})

    engine = _engine(tmp_path, handler)
    reply = await engine.sender.send(Recorder(), "POST", "/v1/files", _plain,
                                     started=asyncio.get_event_loop().time(), turn=SUBMIT)
    assert reply.outcome == "ok" and calls["n"] == 2
    await engine.aclose()


async def test_a_get_that_keeps_failing_ends_at_its_deadline(tmp_path):
    engine = _engine(tmp_path, lambda request: httpx.Response(503))
    engine.sender.policy = dataclasses.replace(FAST, deadline=0.5)
    reply = await engine.sender.send(Recorder(), "GET", "/v1/thing", _plain,
                                     started=asyncio.get_event_loop().time(), turn=POLL)
    assert reply.outcome == "deadline" and reply.attempts > 1
    await engine.aclose()


# -- the one download ------------------------------------------------------------------------------------
@pytest.mark.parametrize("serve,expect", [
    ("whole", "fetched"), ("half", "not a whole MP4"), ("loop", "redirects"), ("gone", "expired or is gone"),
])
async def test_every_download_is_checked_whole_and_bounded(tmp_path, serve, expect):
    data = tiny_mp4()
    media = "https://media.test/v.mp4"

    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers  # the key never goes to the media host
        if serve == "loop":
            return httpx.Response(302, headers={"location": media})
        if serve == "gone":
            return httpx.Response(403)
        return httpx.Response(200, content=data if serve == "whole" else data[: len(data) // 2])

    engine = _engine(tmp_path, handler)
    got = await engine.sender.download(Recorder(), media, tmp_path / "v.mp4")
    if expect == "fetched":
        assert isinstance(got, Fetched) and got.size == len(data) and (tmp_path / "v.mp4").read_bytes() == data
    else:
        assert isinstance(got, DownloadError) and expect in str(got) and not (tmp_path / "v.mp4").exists()
    assert not list(tmp_path.glob("*.part"))  # no temporary file left behind
    await engine.aclose()


# -- the engine ------------------------------------------------------------------------------------------
async def test_the_engine_submits_polls_downloads_and_concludes_once(tmp_path):
    polls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"request_id": "req-9"})
        if request.url.host == "media.test":
            return httpx.Response(200, content=tiny_mp4())
        polls["n"] += 1
        if polls["n"] < 3:
            return httpx.Response(202, json={"status": "pending", "progress": 40 * polls["n"]})
        return httpx.Response(200, json={"status": "done", "video": {"url": "https://media.test/v.mp4", "duration": 1},
                                         "usage": {"cost_in_usd_ticks": 500_000_000}})

    engine = _engine(tmp_path, handler, limit_usd=1.0)
    (reservation,) = engine.budget.reserve([0.05])
    run = Run("r1", "generate", "grok-imagine-video", "a fox", estimate=CostEstimate(0.05))
    job = engine.job(run, endpoint="/v1/videos/generations", body={"prompt": "a fox"}, reservation=reservation)
    (work,) = await engine.start([job])
    done = await work
    assert done.status is Status.DONE and done.path is not None and done.path.read_bytes() == tiny_mp4()
    assert done.latency_s is not None and done.latency_s >= 0 and done.polls == 3
    assert engine.budget.spent_usd == pytest.approx(0.05) and engine.budget.reserved_usd == 0
    row = engine.store.get("r1")  # type: ignore[attr-defined]
    assert row["status"] == "done" and row["request_id"] == "req-9" and row["cost_budget_usd"] == pytest.approx(0.05)
    await engine.aclose()


# -- batches ---------------------------------------------------------------------------------------------
async def test_the_batch_follower_ends_when_page_tokens_come_back(tmp_path):
    reads = {"results": 0}
    added: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/v1/batches":
            return httpx.Response(200, json={"batch_id": "b1", "state": {"num_requests": 0}})
        if request.method == "POST" and path.endswith("/requests"):
            added.extend(i["batch_request_id"] for i in json.loads(request.content)["batch_requests"])
            return httpx.Response(200, json={})
        if path.endswith("/results"):
            reads["results"] += 1
            token = request.url.params.get("pagination_token")
            results = [{"batch_request_id": rid, "batch_result": {"response": {"video_generation": {
                "video": {"url": f"https://media.test/{rid}.mp4", "duration": 1}}}}} for rid in added]
            return httpx.Response(200, json={"results": results, "pagination_token": "B" if token == "A" else "A"})
        if request.url.host == "media.test":
            return httpx.Response(200, content=tiny_mp4())
        return httpx.Response(200, json={"batch_id": "b1", "state": {"num_requests": len(added), "num_pending": 0,
                                                                     "num_success": len(added)}})

    engine = _engine(tmp_path, handler)
    batch = BatchJob(engine, name="cycle", spec_for=_spec, speed=1000.0)
    runs = [batch.generate(f"a fox {i}", duration=1) for i in range(2)]
    await batch.submit()
    await asyncio.wait_for(batch.wait(), 30)
    assert [r.status for r in runs] == [Status.DONE, Status.DONE] and reads["results"] < 10
    await engine.aclose()


def _spec(kind: str, **arguments: Any) -> Any:
    from grok_nb.api import validation

    return validation.generate_spec(**arguments)


# -- uploads ---------------------------------------------------------------------------------------------
async def test_an_upload_is_reused_while_its_id_lives_and_forgotten_when_gone(tmp_path):
    asked: list[str] = []
    gone = {"now": False}

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(f"{request.method} {request.url.path}")
        if request.method == "POST":
            return httpx.Response(200, json={"id": "file_1", "bytes": 4, "created_at": 1, "filename": "a.png"})
        return httpx.Response(404 if gone["now"] else 200, json={"id": "file_1"})

    engine = _engine(tmp_path, handler)
    uploads = Uploads(engine, BASE)
    first = await uploads.upload_bytes(b"\x89PNG....", "image/png")
    again = await uploads.upload_bytes(b"\x89PNG....", "image/png")
    assert first.id == again.id == "file_1" and asked == ["POST /v1/files", "GET /v1/files/file_1"]
    gone["now"] = True
    await uploads.upload_bytes(b"\x89PNG....", "image/png")
    assert asked[-2:] == ["GET /v1/files/file_1", "POST /v1/files"] and uploads.sent == 2
    await engine.aclose()
