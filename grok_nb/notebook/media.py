"""A loopback file server for the video cache, so widget players load files, not bytes through the kernel."""

from __future__ import annotations

import re
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from ..loopback import BackgroundServer

_NAME = re.compile(r"[A-Za-z0-9_\-]{1,120}\.mp4")


def _app(root: Path) -> Starlette:
    async def video(request: Request) -> Response:
        name = request.path_params["name"]
        path = root / name
        if not _NAME.fullmatch(name) or not path.is_file():
            return Response("not found", status_code=404)
        return FileResponse(path, media_type="video/mp4")  # Range requests answered with 206

    return Starlette(routes=[Route("/videos/{name:str}", video, methods=["GET", "HEAD"])])


class MediaServer:
    """Serves one cache folder's MP4s at ``http://127.0.0.1:<port>/videos/<name>``."""

    _servers: dict[Path, MediaServer] = {}
    _lock = threading.Lock()

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self._server = BackgroundServer(_app(self.root), name="grok-nb-media").start()

    @classmethod
    def for_folder(cls, root: Path) -> MediaServer:
        """The one server of a folder, started on first use."""
        key = Path(root).resolve()
        with cls._lock:
            if key not in cls._servers:
                cls._servers[key] = cls(key)
            return cls._servers[key]

    def url_for(self, path: str | Path) -> str | None:
        """The URL of a file in the folder, or None when it lies elsewhere."""
        path = Path(path).resolve()
        if path.parent != self.root or not _NAME.fullmatch(path.name):
            return None
        return f"{self._server.url}/videos/{path.name}"
