"""A hostile stand-in for the video API on real loopback: answers that lie, stall, trickle or cannot be read.

Each test sets ``HostileServer.mode`` (and its knobs); every request is counted in ``seen``.
"""

from __future__ import annotations

import asyncio
import functools
import io
import itertools
import json
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
        self.seen.append(("GET", request.url.path, 200))
        return Response(tiny_mp4(), media_type="video/mp4")
