"""One HTTP request at a time, described plainly: no retries, no decisions, no history (``sender.py`` does those).

Answers are read with a size cap, so a misbehaving server cannot fill memory; the key goes to
the API host only, never to the host that serves the videos. A download is bounded as a whole:
a size cap, a redirect limit, a deadline and a floor on its rate, so a URL that trickles or loops
cannot hold a download slot for long.
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

from .._version import __version__

#: The largest JSON answer read from the API; a job's status is a few hundred bytes.
MAX_ANSWER_BYTES = 1 << 20
#: The largest video downloaded (a 15 s 1080p clip is tens of MB).
MAX_VIDEO_BYTES = 2 << 30
#: The most redirects a video URL may take before the download gives up.
MAX_REDIRECTS = 10
#: A download slower than this on average (bytes/s), RATE_GRACE_S after its answer began, is cut off: a URL that
#: trickles must not hold a download slot (a real CDN sends a clip in seconds). The clock starts at the answer's
#: headers, not at the request: a server may take its time to start (a video still being written).
MIN_DOWNLOAD_RATE = 8 * 1024
RATE_GRACE_S = 3.0
#: The problem of an Answer whose video passed MAX_VIDEO_BYTES (trying again cannot help).
VIDEO_TOO_LARGE = f"the video is larger than {MAX_VIDEO_BYTES >> 30} GiB"
#: The start of the problem of a download cut off for its rate (asked again a few times, not until the deadline).
TOO_SLOW = "too slow"
#: The problem of an Answer cut off at the caller's deadline (sent, maybe partly answered).
PAST_DEADLINE = "the answer had not come in full by the deadline"
#: Transport errors raised before a byte of the request left this machine.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol,
               httpx.LocalProtocolError)


@dataclass(frozen=True)
class Answer:
    """What one request got: an HTTP status and body, or a transport problem."""

    status_code: int | None  # None: no answer
    body: Any = None  # parsed JSON, else text; a download's: the bytes written
    headers: Any = None
    problem: str | None = None  # the transport error's name, or why the body was not read
    never_sent: bool = False  # the request never left: the server saw nothing
    final: bool = False  # asking again cannot help (an unsupported scheme, a redirect loop, a video too large)
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


def _no_answer(exc: Exception, sent: float) -> Answer:
    """The Answer of a request that got none: never sent (nothing reached the server), or sent and unanswered."""
    now = time.monotonic()
    if isinstance(exc, httpx.TooManyRedirects):
        return Answer(None, problem=f"the URL redirects more than {MAX_REDIRECTS} times", final=True,
                      sent_at=sent, received_at=now)
    never = isinstance(exc, _NEVER_SENT)
    return Answer(None, problem=type(exc).__name__, never_sent=never, final=isinstance(exc, httpx.UnsupportedProtocol),
                  sent_at=sent, received_at=now)


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
        self._media = httpx.AsyncClient(timeout=timeout, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                                        transport=transport, headers={"User-Agent": f"grok_nb/{__version__}"})

    async def request(self, method: str, path: str, body: Any = None, *, form: dict[str, str] | None = None,
                      file: tuple[str, bytes, str] | None = None, until: float | None = None) -> Answer:
        """Send one API request (JSON ``body``, or a multipart ``form`` then ``file``) and read its answer
        (at most MAX_ANSWER_BYTES), all of it before monotonic ``until``."""
        sent = time.monotonic()
        try:
            return await _before(until, self._request(method, path, body, form, file, sent))
        except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11 on
            return Answer(None, problem=PAST_DEADLINE, sent_at=sent, received_at=time.monotonic())

    async def _request(self, method: str, path: str, body: Any, form: dict[str, str] | None,
                       file: tuple[str, bytes, str] | None, sent: float) -> Answer:
        # A multipart upload sends its fields first: expires_after must come before the file part.
        options: dict[str, Any] = ({"data": form or {}, "files": {"file": file}} if file is not None
                                   else {"json": body})
        try:
            async with self._http.stream(method, path, **options) as response:
                raw, too_big = await _read_capped(response, MAX_ANSWER_BYTES)
        except httpx.HTTPError as exc:
            return _no_answer(exc, sent)
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
                began = time.monotonic()
                # The file is written from a worker thread: the loop that polls every job never waits on the disk.
                out = await asyncio.to_thread(open, part, "wb")
                try:
                    # Chunks as they arrive (so that the rate is judged as the bytes come), written a MiB at a time.
                    pending: list[bytes] = []
                    waiting = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_VIDEO_BYTES:
                            return _cut(size, response, VIDEO_TOO_LARGE, sent, final=True)
                        took = time.monotonic() - began
                        if took > RATE_GRACE_S and size < MIN_DOWNLOAD_RATE * took:
                            return _cut(size, response, f"{TOO_SLOW}: {size} bytes in {took:.0f} s", sent)
                        pending.append(chunk)
                        waiting += len(chunk)
                        if waiting >= 1 << 20:
                            await asyncio.to_thread(out.write, b"".join(pending))
                            pending, waiting = [], 0
                    if pending:
                        await asyncio.to_thread(out.write, b"".join(pending))
                    await asyncio.to_thread(_sync_to_disk, out)
                finally:
                    out.close()
        except httpx.HTTPError as exc:
            return _no_answer(exc, sent)
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


def _cut(size: int, response: httpx.Response, problem: str, sent: float, final: bool = False) -> Answer:
    """A download given up part way (too large, too slow): what came, and why it stopped."""
    now = time.monotonic()
    return Answer(200, size, response.headers, problem, final=final, elapsed_ms=round((now - sent) * 1000, 1),
                  sent_at=sent, received_at=now)


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
