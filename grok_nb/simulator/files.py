"""The simulated Files API: ``POST /v1/files`` (multipart), ``GET``/``DELETE /v1/files/{id}``, ``.../content``.

Uploads are kept in the simulator's media folder; a video request naming ``{"file_id": ...}``
is served from there (images as inline data, so the output follows the image's shape).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..api.files import EXPIRES_AFTER_RANGE, MAX_UPLOAD_BYTES
from ..api.media import sniff_image_type
from ..api.probe import is_mp4
from .state import ApiRefusal, Simulator

#: Where an uploaded video is read by the render workers (they read /media/ paths from the media folder).
LOCAL_FILE_URL = "http://files.simulator.invalid/media/{name}"


class FileRefusal(Exception):
    """An HTTP error answer of the Files API: status, code, message."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


@dataclass
class StoredFile:
    """One upload."""

    id: str
    filename: str
    size: int
    created_at: int  # Unix seconds
    expires_at: int | None  # Unix seconds (the simulator's clock scaled into real time)
    path: Path
    purpose: str | None = None

    def answer(self) -> dict[str, Any]:
        """The File object the API answers with."""
        body: dict[str, Any] = {"id": self.id, "object": "file", "bytes": self.size, "created_at": self.created_at,
                                "filename": self.filename}
        if self.purpose:
            body["purpose"] = self.purpose
        if self.expires_at is not None:
            body["expires_at"] = self.expires_at
        return body


def parse_multipart(content_type: str, raw: bytes) -> list[tuple[str, str | None, bytes]]:
    """The parts of a multipart/form-data body in order: (field name, file name or None, bytes)."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise FileRefusal(400, "invalid-argument", "Send the upload as multipart/form-data with a 'file' part.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    if not message.is_multipart():
        raise FileRefusal(400, "invalid-argument", "The multipart body could not be read.")
    parts = []
    for part in message.iter_parts():
        disposition = part.get("Content-Disposition", "")
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        payload = part.get_payload(decode=True)
        if not disposition or not isinstance(name, str):
            continue
        parts.append((name, filename, payload if isinstance(payload, bytes) else b""))
    return parts


class FileStore:
    """The uploads one simulator holds; ``speed`` scales ``expires_after`` into real time."""

    def __init__(self, folder: Path, speed: Callable[[], float]):
        self.folder = folder
        self._speed = speed
        self._files: dict[str, StoredFile] = {}
        self._lock = threading.Lock()
        self.uploads = 0  # how many POST /v1/files were accepted (tests count re-uploads)

    def upload(self, content_type: str, raw: bytes) -> StoredFile:
        """Store one multipart upload; refuses what the service refuses."""
        if len(raw) > MAX_UPLOAD_BYTES + 64 * 1024:
            raise FileRefusal(413, "invalid-argument", f"The file is larger than {MAX_UPLOAD_BYTES // 10**6} MB.")
        parts = parse_multipart(content_type, raw)
        names = [name for name, _, _ in parts]
        if "file" not in names:
            raise FileRefusal(400, "invalid-argument", "The upload has no 'file' part.")
        file_at = names.index("file")
        fields = {name: data.decode("utf-8", "replace") for name, filename, data in parts if name != "file"}
        if "expires_after" in names and names.index("expires_after") > file_at:
            raise FileRefusal(400, "invalid-argument", "expires_after must come before the file part.")
        expires_at = None
        if "expires_after" in fields:
            lo, hi = EXPIRES_AFTER_RANGE
            text = fields["expires_after"].strip()
            if not text.isdigit() or not lo <= int(text) <= hi:
                raise FileRefusal(400, "invalid-argument",
                                  f"expires_after must be whole seconds from {lo} to {hi}; got {text[:40]!r}.")
            expires_at = int(time.time() + int(text) / max(1e-9, self._speed()))
        _, filename, data = parts[file_at]
        if not data:
            raise FileRefusal(400, "invalid-argument", "The file is empty.")
        if len(data) > MAX_UPLOAD_BYTES:
            raise FileRefusal(413, "invalid-argument", f"The file is larger than {MAX_UPLOAD_BYTES // 10**6} MB.")
        file_id = "file_" + uuid.uuid4().hex
        ext = "mp4" if is_mp4(data) else {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}.get(
            sniff_image_type(data) or "", "bin")
        path = self.folder / f"{file_id}.{ext}"
        path.write_bytes(data)
        stored = StoredFile(file_id, (filename or "upload")[:200], len(data), int(time.time()), expires_at, path,
                            fields.get("purpose"))
        with self._lock:
            self._files[file_id] = stored
            self.uploads += 1
        return stored

    def get(self, file_id: str) -> StoredFile:
        """A live upload, or 404."""
        with self._lock:
            stored = self._files.get(file_id)
        if stored is None or (stored.expires_at is not None and time.time() >= stored.expires_at):
            raise FileRefusal(404, "not-found", f"File {file_id} not found (or expired).")
        return stored

    def delete(self, file_id: str) -> None:
        """Forget an upload (404 when unknown)."""
        stored = self.get(file_id)
        with self._lock:
            self._files.pop(file_id, None)
        stored.path.unlink(missing_ok=True)

    def listing(self) -> list[dict[str, Any]]:
        """Every live upload."""
        with self._lock:
            files = list(self._files.values())
        now = time.time()
        return [f.answer() for f in files if f.expires_at is None or now < f.expires_at]

    def resolve(self, body: Any) -> Any:
        """A request body with each ``{"file_id": ...}`` replaced by what the renderer reads; 400 for an unknown id.

        Images become inline data (the output follows the image's shape); videos a /media/ URL of the stored file.
        """
        if isinstance(body, list):
            return [self.resolve(v) for v in body]
        if not isinstance(body, dict):
            return body
        file_id = body.get("file_id")
        if isinstance(file_id, str) and file_id and not body.get("url"):
            try:
                stored = self.get(file_id)
            except FileRefusal:
                raise FileRefusal(400, "invalid-argument",
                                  f"File {file_id} not found: upload it first (POST /v1/files), or it expired.") \
                    from None
            data = stored.path.read_bytes()
            mime = sniff_image_type(data)
            if mime is not None:
                return {"url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"}
            return {"url": LOCAL_FILE_URL.format(name=stored.path.name)}
        return {key: self.resolve(value) for key, value in body.items()}


def file_store(sim: Simulator) -> FileStore:
    """The uploads of ``sim`` (made on first use, kept with it)."""
    store = sim.__dict__.get("files")
    if store is None:
        store = sim.__dict__.setdefault("files", FileStore(sim.media_dir, lambda: sim.config.speed))
    return store  # type: ignore[no-any-return]


_SAFE_ID = re.compile(r"[A-Za-z0-9_\-]{1,200}")


def file_routes(store: FileStore, api: Callable[..., Any]) -> list[Any]:
    """The Files endpoints, each run through the simulator's ``api`` wrapper (auth, rate limit, error shapes)."""

    def refused(exc: FileRefusal) -> ApiRefusal:
        return ApiRefusal(exc.status, exc.code, exc.message)

    def one(request: Request) -> StoredFile:
        file_id = request.path_params["file_id"]
        if not _SAFE_ID.fullmatch(file_id):
            raise ApiRefusal(404, "not-found", "No such file.")
        try:
            return store.get(file_id)
        except FileRefusal as exc:
            raise refused(exc) from None

    async def create(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            raw = await request.body()
            try:
                stored = store.upload(request.headers.get("content-type", ""), raw)
            except FileRefusal as exc:
                raise refused(exc) from None
            return JSONResponse(stored.answer())
        return await api(request, handle)  # type: ignore[no-any-return]

    async def listing(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            return JSONResponse({"data": store.listing()})
        return await api(request, handle)  # type: ignore[no-any-return]

    async def item(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            stored = one(request)
            if request.method == "DELETE":
                store.delete(stored.id)
                return JSONResponse({"id": stored.id, "deleted": True})
            return JSONResponse(stored.answer())
        return await api(request, handle)  # type: ignore[no-any-return]

    async def content(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            stored = one(request)
            return Response(stored.path.read_bytes(), media_type="application/octet-stream")
        return await api(request, handle)  # type: ignore[no-any-return]

    return [
        Route("/v1/files", create, methods=["POST"]),
        Route("/v1/files", listing, methods=["GET"]),
        Route("/v1/files/{file_id:str}", item, methods=["GET", "DELETE"]),
        Route("/v1/files/{file_id:str}/content", content, methods=["GET"]),
    ]
