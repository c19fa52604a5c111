"""One HTTP request at a time, described plainly: no retries, no decisions, no history (the engine does those).

Answers are read with a size cap, so a misbehaving server cannot fill memory; the key goes to
the API host only, never to the host that serves the videos.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..api.probe import is_mp4 as is_mp4  # re-exported: the engine and client import it from here

#: The largest JSON answer read from the API; a job's status is a few hundred bytes.
MAX_ANSWER_BYTES = 1 << 20
#: The largest video downloaded (a 15 s 1080p clip is tens of MB).
MAX_VIDEO_BYTES = 2 << 30
#: The problem of an Answer whose video passed MAX_VIDEO_BYTES (trying again cannot help).
VIDEO_TOO_LARGE = f"the video is larger than {MAX_VIDEO_BYTES >> 30} GiB"
#: The problem of an Answer cut off at the caller's deadline (sent, maybe partly answered).
PAST_DEADLINE = "the answer had not come in full by the deadline"
#: Transport errors raised before a byte of the request left this machine.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
               httpx.LocalProtocolError)


@dataclass(frozen=True)
class Answer:
    """What one request got: an HTTP status and body, or a transport problem."""

    status_code: int | None  # None: no answer
    body: Any = None  # parsed JSON, else text
    headers: Any = None
    problem: str | None = None  # the transport error's name, or why the body was not read
    never_sent: bool = False  # the request never left: the server saw nothing
    elapsed_ms: float = 0.0
    sent_at: float = 0.0  # monotonic
    received_at: float = 0.0

    @property
    def ok(self) -> bool:
        """A 1xx–3xx answer whose body was read."""
        return self.status_code is not None and self.status_code < 400 and self.problem is None


def parse_body(raw: bytes) -> Any:
    """JSON when it is JSON, else text; nothing for an empty body."""
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


class Api:
    """The API host (with the key) and the media host (without it), over httpx."""

    def __init__(self, base_url: str, api_key: str | None, *, timeout: float | httpx.Timeout,
                 transport: httpx.AsyncBaseTransport | None = None):
        headers = {"User-Agent": f"grok_nb/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self.base_url = base_url
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        # Result URLs live on another host: never send the key there.
        self._media = httpx.AsyncClient(timeout=timeout, follow_redirects=True, transport=transport,
                                        headers={"User-Agent": f"grok_nb/{__version__}"})

    async def request(self, method: str, path: str, body: Any = None, *, until: float | None = None) -> Answer:
        """Send one API request and read its answer (at most MAX_ANSWER_BYTES), all of it before monotonic ``until``."""
        sent = time.monotonic()
        try:
            return await _before(until, self._request(method, path, body, sent))
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            return Answer(None, problem=PAST_DEADLINE, sent_at=sent, received_at=time.monotonic())

    async def _request(self, method: str, path: str, body: Any, sent: float) -> Answer:
        try:
            async with self._http.stream(method, path, json=body) as response:
                raw, too_big = await _read_capped(response, MAX_ANSWER_BYTES)
        except _NEVER_SENT as exc:
            return Answer(None, problem=type(exc).__name__, never_sent=True, sent_at=sent, received_at=time.monotonic())
        except httpx.TransportError as exc:  # sent (at least partly), no answer
            return Answer(None, problem=type(exc).__name__, sent_at=sent, received_at=time.monotonic())
        received = time.monotonic()
        problem = f"the answer was larger than {MAX_ANSWER_BYTES >> 20} MiB and was not read" if too_big else None
        return Answer(response.status_code, None if too_big else parse_body(raw), response.headers, problem,
                      elapsed_ms=round((received - sent) * 1000, 1), sent_at=sent, received_at=received)

    async def upload(self, path: str, fields: dict[str, str], file: tuple[str, bytes, str]) -> Answer:
        """POST a multipart form: ``fields`` first (``expires_after`` must come before the file), then ``file``."""
        sent = time.monotonic()
        try:
            async with self._http.stream("POST", path, data=fields, files={"file": file}) as response:
                raw, too_big = await _read_capped(response, MAX_ANSWER_BYTES)
        except _NEVER_SENT as exc:
            return Answer(None, problem=type(exc).__name__, never_sent=True, sent_at=sent, received_at=time.monotonic())
        except httpx.TransportError as exc:
            return Answer(None, problem=type(exc).__name__, sent_at=sent, received_at=time.monotonic())
        received = time.monotonic()
        problem = f"the answer was larger than {MAX_ANSWER_BYTES >> 20} MiB and was not read" if too_big else None
        return Answer(response.status_code, None if too_big else parse_body(raw), response.headers, problem,
                      elapsed_ms=round((received - sent) * 1000, 1), sent_at=sent, received_at=received)

    async def download(self, url: str, part: Path, *, until: float | None = None) -> Answer:
        """Stream a video into ``part``, all of it before monotonic ``until``; the Answer's body is the bytes written.

        Raises OSError when the file cannot be written (full disk, read-only folder).
        """
        sent = time.monotonic()
        try:
            return await _before(until, self._download(url, part, sent))
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            return Answer(None, problem=PAST_DEADLINE, sent_at=sent, received_at=time.monotonic())

    async def _download(self, url: str, part: Path, sent: float) -> Answer:
        try:
            async with self._media.stream("GET", url) as response:
                if response.status_code != 200:
                    return Answer(response.status_code, headers=response.headers, sent_at=sent,
                                  received_at=time.monotonic())
                size, expected = 0, response.headers.get("content-length")
                # The file is written from a worker thread: the loop that polls every job never waits on the disk.
                out = await asyncio.to_thread(open, part, "wb")
                try:
                    async for chunk in response.aiter_bytes(1 << 20):
                        size += len(chunk)
                        if size > MAX_VIDEO_BYTES:
                            return Answer(200, size, response.headers, VIDEO_TOO_LARGE,
                                          sent_at=sent, received_at=time.monotonic())
                        await asyncio.to_thread(out.write, chunk)
                    await asyncio.to_thread(_sync_to_disk, out)
                finally:
                    out.close()
        except _NEVER_SENT as exc:
            return Answer(None, problem=type(exc).__name__, never_sent=True, sent_at=sent, received_at=time.monotonic())
        except httpx.TransportError as exc:
            return Answer(None, problem=type(exc).__name__, sent_at=sent, received_at=time.monotonic())
        received = time.monotonic()
        problem = None
        if expected is not None and expected.isdigit() and int(expected) != size:
            problem = f"got {size} of {expected} bytes"
        return Answer(200, size, response.headers, problem, elapsed_ms=round((received - sent) * 1000, 1),
                      sent_at=sent, received_at=received)

    async def aclose(self) -> None:
        """Close both connection pools."""
        await self._http.aclose()
        await self._media.aclose()


async def _before(until: float | None, work: Coroutine[Any, Any, Answer]) -> Answer:
    """``work``'s answer, or TimeoutError at monotonic ``until``: a server that trickles its answer cannot hold
    a request past the caller's deadline (httpx's read timeout is per chunk, so it never fires)."""
    if until is None:
        return await work
    return await asyncio.wait_for(work, max(0.0, until - time.monotonic()))


def _sync_to_disk(out: Any) -> None:
    out.flush()
    os.fsync(out.fileno())


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes, bool]:
    chunks, size = [], 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > cap:
            return b"", True
        chunks.append(chunk)
    return b"".join(chunks), False


def path_of(url: str) -> str:
    """A URL's path, never its query string (signed URLs carry tokens)."""
    return urlsplit(url).path or url[:100]
