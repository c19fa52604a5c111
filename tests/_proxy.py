"""A fault-injecting HTTP/1.1 proxy on loopback, in front of the simulator: resets, 5xx, hangs and 429 storms.

Each request asks ``decide(method, path)`` what to do: ``forward``; ``reset`` / ``502`` / ``hang``
after forwarding (the job exists at the server, the client never learns its id); or ``429``
without forwarding (nothing reached the server).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import httpx


class FaultProxy:
    """``with FaultProxy(upstream, decide) as proxy: Client(base_url=proxy.url, ...)``."""

    def __init__(self, upstream: str, decide: Callable[[str, str], str], hang_s: float = 3.0):
        self.upstream, self.decide, self.hang_s = upstream, decide, hang_s
        self.seen: list[tuple[str, str, str]] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._http.aclose()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._http = httpx.AsyncClient(base_url=self.upstream, timeout=30)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                length = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                action = self.decide(method, path)
                self.seen.append((method, path, action))
                if action == "429":
                    self._write(writer, 429, b'{"code":"resource-exhausted","error":"Too many requests (proxy)."}',
                                {"Retry-After": "0.02"})
                    await writer.drain()
                    continue
                forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
                response = await self._http.request(method, path, content=body, headers=forwarded)
                if action == "reset":
                    writer.transport.abort()  # the job exists; the client sees the connection die
                    return
                if action == "hang":
                    await asyncio.sleep(self.hang_s)
                    writer.transport.abort()
                    return
                if action == "502":
                    self._write(writer, 502, b"<html>Bad gateway</html>", {})
                else:
                    self._write(writer, response.status_code, response.content,
                                {k: v for k, v in response.headers.items()
                                 if k.lower() in ("content-type", "retry-after")})
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @staticmethod
    def _write(writer: asyncio.StreamWriter, status: int, body: bytes, headers: dict[str, str]) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
