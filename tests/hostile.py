"""A hostile stand-in for the video API on real loopback: answers that lie, stall, trickle or cannot be read.

Each test sets ``HostileServer.mode`` (and its knobs); every request is counted in ``seen``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json
import time
from typing import Any

import av
import httpx
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from grok_nb.loopback import BackgroundServer


@functools.lru_cache(maxsize=1)
def tiny_mp4() -> bytes:
    """A whole MP4 (one 16×16 frame): downloads are checked for a whole file, not just its first bytes."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), dtype=np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return out.getvalue()


class PollRewriter(httpx.AsyncBaseTransport):
    """Forwards to a real server over loopback and lets ``rewrite`` change each poll's JSON answer (None: as sent)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()

    def rewrite(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method != "GET" or not request.url.path.startswith("/v1/videos/"):
            return response
        await response.aread()
        try:
            body = json.loads(response.content)
        except ValueError:
            return response
        changed = self.rewrite(body) if isinstance(body, dict) else None
        return response if changed is None else httpx.Response(response.status_code, json=changed)


class HostileServer:
    """Submits are accepted; polls are answered as ``mode`` says; the video is served from the same host."""

    def __init__(self) -> None:
        self.mode = "done"
        self.retry_after = "3600"  # the header sent with 429 answers
        self.bad_polls = 1  # how many polls get the hostile answer before an honest one (-1: all of them)
        self.trickle_every_s = 1.0
        self.poll_delay_s: dict[str, float] = {}  # per request id: answer its polls this much later
        self.media_mode = "whole"  # or "loop": the video's URL redirects to itself; "half": half the MP4, honestly sized
        self.seen: list[tuple[str, str, int]] = []
        self._ids = itertools.count(1)
        self._polls: dict[str, int] = {}
        app = Starlette(routes=[
            Route("/v1/videos/generations", self.submit, methods=["POST"]),
            Route("/v1/videos/{rid}", self.poll, methods=["GET"]),
            Route("/media/{rid}.mp4", self.media, methods=["GET"]),
        ])
        self._server = BackgroundServer(app, name="grok-nb-hostile")

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return self._server.url

    def start(self) -> HostileServer:
        """Serve on a free loopback port."""
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.stop()

    def polls(self, rid: str | None = None) -> int:
        """How many polls arrived (for one request id, or for all)."""
        return sum(1 for m, p, _ in self.seen if m == "GET" and p.startswith("/v1/videos/")
                   and (rid is None or p.endswith(f"/{rid}")))

    async def submit(self, request: Request) -> Response:
        rid = f"r-hostile-{next(self._ids)}"
        self.seen.append(("POST", request.url.path, 200))
        return JSONResponse({"request_id": rid})

    def _done(self, request: Request, rid: str) -> Response:
        url = f"{request.base_url}media/{rid}.mp4"
        return JSONResponse({"status": "done", "progress": 100, "video": {"url": url, "duration": 1}})

    async def poll(self, request: Request) -> Response:
        rid = request.path_params["rid"]
        n = self._polls[rid] = self._polls.get(rid, 0) + 1
        await asyncio.sleep(self.poll_delay_s.get(rid, 0.0))
        hostile = self.bad_polls < 0 or n <= self.bad_polls
        mode = self.mode if hostile else "done"
        answer: Response
        if mode == "retry-after":
            answer = JSONResponse({"error": "slow down"}, status_code=429, headers={"Retry-After": self.retry_after})
        elif mode == "unknown":
            answer = JSONResponse({"code": "not_found", "error": f"no such request: {rid}"}, status_code=404)
        elif mode == "garbage":
            answer = Response("<html><body>502 from a proxy, said as a 200</body></html>", media_type="text/html")
        elif mode == "trickle":
            answer = StreamingResponse(self._trickle(), media_type="application/json")
        elif mode == "pending":
            answer = JSONResponse({"status": "pending", "progress": 10})
        else:
            answer = self._done(request, rid)
        self.seen.append(("GET", request.url.path, answer.status_code))
        return answer

    async def _trickle(self) -> Any:
        for ch in b'{"status": "pending", "progress": 10' + b" " * 1000 + b"}":
            yield bytes([ch])
            await asyncio.sleep(self.trickle_every_s)

    async def media(self, request: Request) -> Response:
        if self.media_mode == "loop":
            self.seen.append(("GET", request.url.path, 302))
            return Response(status_code=302, headers={"location": str(request.url)})
        self.seen.append(("GET", request.url.path, 200))
        data = tiny_mp4()
        return Response(data[: len(data) // 2] if self.media_mode == "half" else data, media_type="video/mp4")


class BatchLiar(httpx.AsyncBaseTransport):
    """Forwards to a real simulator over loopback; lies about batches, and serves hostile result URLs.

    Result URLs are rewritten to ``http://hostile.media/<mode>/...`` when the request's prompt carries ``[media:<mode>]``
    (``half``: the first half of the MP4 with an honest Content-Length; ``loop``: a redirect to itself; ``trickle``:
    one byte every ``trickle_every_s``). Other lies are switched on by attribute.
    """

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.prompts: dict[str, str] = {}  # batch_request_id → prompt, from the calls adding requests
        self.trickle_every_s = 0.5
        self.cycle_tokens = False  # results pages: the real first page, then tokens A, B, A, B... forever
        self.drop_add_answer = False  # the call adding requests arrives, but its answer is lost
        self.listing_fails_until = 0.0  # monotonic: the request listing answers 503 until then
        self.expired = False  # the batch says it expired an hour ago, everything pending, no results
        self.cancelled = False  # the batch says it was cancelled an hour ago, everything pending, no results
        self.quote: str | None = None  # failed results quote this (the key)
        self.state_status: int | None = None  # answer every read of the batch's counters with this HTTP status
        self.create_delay_s = 0.0  # the call making the batch answers this much later
        self.results_reads = 0
        self.media_reads: dict[str, int] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "hostile.media":
            return await self._media(request)
        path = request.url.path
        if request.method == "POST" and path.rstrip("/").endswith("/batches"):
            await asyncio.sleep(self.create_delay_s)
        if request.method == "POST" and path.endswith("/requests"):
            for item in json.loads(request.content).get("batch_requests", []):
                body = next(iter(item["batch_request"].values()))
                self.prompts[item["batch_request_id"]] = str(body.get("prompt"))
            response = await self.inner.handle_async_request(request)
            await response.aread()
            if self.drop_add_answer:
                raise httpx.ReadError("the connection was reset after the requests arrived", request=request)
            return response
        if request.method == "GET" and path.endswith("/requests") and time.monotonic() < self.listing_fails_until:
            return httpx.Response(503, json={"code": "unavailable", "error": "the listing is not available"})
        if request.method == "GET" and path.endswith("/results"):
            self.results_reads += 1
            if self.expired or self.cancelled:
                return httpx.Response(200, json={"results": [], "pagination_token": None})
            if self.cycle_tokens:
                token = request.url.params.get("pagination_token")
                request = httpx.Request("GET", request.url.copy_remove_param("pagination_token"),
                                        headers=request.headers)
                response = await self.inner.handle_async_request(request)
                await response.aread()
                body = json.loads(response.content)
                body["pagination_token"] = "B" if token == "A" else "A"
                return httpx.Response(200, json=self._rewrite_results(body))
            response = await self.inner.handle_async_request(request)
            await response.aread()
            return httpx.Response(response.status_code, json=self._rewrite_results(json.loads(response.content)))
        if self.state_status is not None and request.method == "GET" and path.startswith("/v1/batches/") \
                and path.count("/") == 3:
            return httpx.Response(self.state_status, json={"code": "refused", "error": "not for you"})
        response = await self.inner.handle_async_request(request)
        if (self.expired or self.cancelled) and request.method == "GET" and path.startswith("/v1/batches/") \
                and path.count("/") == 3:
            await response.aread()
            body = json.loads(response.content)
            hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
            state = body.setdefault("state", {})
            n = state.get("num_requests", 0)
            state.update(num_pending=n, num_success=0, num_error=0, num_cancelled=0)
            body["expire_time" if self.expired else "cancel_time"] = hour_ago
            return httpx.Response(200, json=body)
        return response

    def _rewrite_results(self, body: dict[str, Any]) -> dict[str, Any]:
        for entry in body.get("results", []):
            prompt = self.prompts.get(entry.get("batch_request_id"), "")
            result = entry.get("batch_result", {})
            if self.quote is not None and "error" in result:
                result["error"]["message"] = f"gateway refused key {self.quote} (Authorization: Bearer {self.quote})"
            for mode in ("half", "loop", "trickle"):
                if f"[media:{mode}]" not in prompt:
                    continue
                video = result.get("response", {}).get("video_generation", {}).get("video", {})
                if video.get("url"):
                    video["url"] = f"http://hostile.media/{mode}/{entry['batch_request_id']}?u={video['url']}"
        return body

    async def _media(self, request: httpx.Request) -> httpx.Response:
        mode = request.url.path.split("/")[1]
        self.media_reads[mode] = self.media_reads.get(mode, 0) + 1
        if mode == "loop":
            return httpx.Response(302, headers={"location": str(request.url)})
        original = httpx.Request("GET", request.url.params["u"])
        response = await self.inner.handle_async_request(original)
        await response.aread()
        data = response.content
        if mode == "half":
            return httpx.Response(200, content=data[: len(data) // 2], headers={"content-type": "video/mp4"})

        async def slowly() -> Any:
            for i in range(len(data)):
                yield data[i:i + 1]
                await asyncio.sleep(self.trickle_every_s)

        return httpx.Response(200, content=slowly(), headers={"content-length": str(len(data))})
