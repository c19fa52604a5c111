"""The simulator's HTTP layer: the xAI video REST contract, and the vision judge's call, as a Starlette (ASGI) app."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._version import __version__
from ..api import models, pricing
from .batch import batch_routes, json_body
from .files import FileRefusal, file_routes, file_store
from .judge import answer as judge_answer
from .judge import read_request as read_judge_request
from .state import ApiRefusal, Simulator

_KINDS = {"generations": "generate", "edits": "edit", "extensions": "extend"}
#: How long a download waits for a render still running (wall seconds) before it is told to try again.
RENDER_WAIT_S = 300.0
_LEGACY_CODES = {400: "Client specified an invalid argument", 401: "Unauthenticated", 403: "Forbidden",
                 404: "Some requested entity was not found", 422: "Unprocessable entity",
                 429: "Resource exhausted", 500: "Internal error", 503: "Service unavailable"}


def _error_response(sim: Simulator, refusal: ApiRefusal) -> JSONResponse:
    shape = sim.config.error_shape
    if shape == "nested":
        body: dict[str, Any] = {"error": {"message": refusal.message, "code": refusal.code}}
    elif shape == "legacy":
        body = {"code": _LEGACY_CODES.get(refusal.status, refusal.code), "error": refusal.message}
    else:
        body = {"code": refusal.code, "error": refusal.message}
    headers = {}
    if refusal.status == 429 and refusal.retry_after is not None and sim.config.retry_after_header:
        headers["Retry-After"] = f"{max(0.0, refusal.retry_after):.3f}"
    return JSONResponse(body, status_code=refusal.status, headers=headers)


def model_listing() -> list[dict[str, Any]]:
    """The models the simulator serves, from grok_nb.api.models, shaped like xAI's model listings."""
    aliases = {**models.ALIASES, **models.PINNED}
    return [{"id": name, "object": "model", "owned_by": "xai", "created": 0,
             "input_modalities": ["text", "image"] + (["audio"] if rules.max_reference_audios else []),
             "output_modalities": ["video"], "resolutions": list(rules.resolutions),
             "aliases": [a for a, family in aliases.items() if family == name]}
            for name, rules in models.MODELS.items()]


def create_app(sim: Simulator) -> ASGIApp:
    """The ASGI app serving ``sim`` under the same paths as https://api.x.ai."""

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def api(request: Request, handler: Callable[[Request], Awaitable[Response]], *,
                  rate_limited: bool = True) -> Response:
        token = None
        try:
            token = sim.check_auth(request.headers.get("authorization"))
            if rate_limited:  # else the handler checks its own bucket (the judge: per key and model)
                sim.check_rate(token)
            request.state.token = token
            response = await handler(request)
        except ApiRefusal as refusal:
            response = _error_response(sim, refusal)
        sim.record(token, request.method, request.url.path, response.status_code)
        return response

    async def submit(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            body = await json_body(request)
            kind = _KINDS.get(request.path_params["kind"])
            if kind is None:
                raise ApiRefusal(404, "not-found", f"No such endpoint: POST {request.url.path}.")
            try:  # {"file_id": ...} inputs are read from the simulated Files API
                body = file_store(sim).resolve(body)
            except FileRefusal as exc:
                raise ApiRefusal(exc.status, exc.code, exc.message) from None
            request_id = await asyncio.to_thread(sim.submit, kind, body, request.state.token)
            if sim.config.submit_delay_s:
                await asyncio.sleep(sim.config.submit_delay_s)
            return JSONResponse({"request_id": request_id})
        return await api(request, handle)

    async def respond(request: Request) -> Response:
        """A vision judge's call (POST /v1/responses), rate-limited per key and model, answered from its frames."""
        async def handle(request: Request) -> Response:
            body = await json_body(request)
            call = await asyncio.to_thread(read_judge_request, body)
            cfg = sim.config
            if cfg.judge_burst_429 > 0:
                cfg.judge_burst_429 -= 1
                raise ApiRefusal(429, "resource-exhausted", f"Too many requests for model {call.model} "
                                 "(injected burst).", retry_after=1.0 / max(1e-9, cfg.speed))
            sim.check_rate(request.state.token, bucket=f"{request.state.token}\n{call.model}",
                           limit=cfg.judge_rate_limit)
            sim.check_credits()
            malformed = cfg.judge_answer if cfg.judge_answer != "valid" else None
            answer = await asyncio.to_thread(judge_answer, call, malformed, cfg.judge_reasoning_item)
            sim.charge(answer["usage"]["cost_in_usd_ticks"] / pricing.TICKS_PER_USD)
            return JSONResponse(answer)
        return await api(request, handle, rate_limited=False)

    async def poll(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            status, body = sim.status(request.path_params["request_id"], base(request))
            if body is None:  # seen live: a 202 with an empty body while pending
                return Response(b"", status_code=status)
            return JSONResponse(body, status_code=status)
        return await api(request, handle)

    async def models(request: Request) -> Response:
        async def handle(request: Request) -> Response:
            wanted = request.path_params.get("model")
            listing = model_listing()
            if wanted is None:
                return JSONResponse({"models": listing})
            for entry in listing:
                if wanted == entry["id"] or wanted in entry["aliases"]:
                    return JSONResponse(entry)
            raise ApiRefusal(404, "not-found", f"Model {wanted} not found.")
        return await api(request, handle)

    async def media(request: Request) -> Response:
        # Served as vidgen.x.ai would: no key, no rate limit, gone once the URL expires.
        name = request.path_params["name"]
        rendering = sim.render_of(name)
        if rendering is not None:  # answered done at its latency: the file comes once rendered
            waiting = asyncio.wrap_future(rendering)
            done, _ = await asyncio.wait([waiting], timeout=RENDER_WAIT_S)
            if not done:
                waiting.cancel()
                sim.requests.append((request.method, request.url.path, 503))
                return JSONResponse({"error": "The video is still being rendered; try again shortly."},
                                    status_code=503, headers={"Retry-After": "5"})
            if not waiting.cancelled():
                waiting.exception()  # retrieved: a crashed render is answered below, not logged as unhandled
        if sim.render_failed(name):  # done was answered before the render crashed: say so, not "expired"
            sim.requests.append((request.method, request.url.path, 500))
            return JSONResponse({"error": "Rendering this video failed on the server."}, status_code=500)
        path = sim.media_path(name)
        if path is None:
            sim.requests.append((request.method, request.url.path, 403))
            return Response("<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                            status_code=403, media_type="application/xml")
        sim.requests.append((request.method, request.url.path, 200))
        return FileResponse(path, media_type="video/mp4")  # answers Range requests with 206

    async def admin_config(request: Request) -> Response:
        if request.method == "PATCH":
            try:
                sim.config.update(**json.loads(await request.body() or b"{}"))
            except (KeyError, ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(sim.snapshot())

    async def admin_requests(request: Request) -> Response:
        return JSONResponse([list(r) for r in sim.requests])

    async def root(request: Request) -> Response:
        return JSONResponse({"service": "grok_nb simulator of the xAI video API", "version": __version__,
                             "docs": "https://docs.x.ai", "speed": sim.config.speed})

    routes = [
        Route("/", root),
        Route("/v1/videos/{kind:str}", submit, methods=["POST"]),
        Route("/v1/videos/{request_id:str}", poll, methods=["GET"]),
        Route("/v1/responses", respond, methods=["POST"]),
        Route("/v1/video-generation-models", models, methods=["GET"]),
        Route("/v1/video-generation-models/{model:str}", models, methods=["GET"]),
        Route("/media/{name:str}", media, methods=["GET", "HEAD"]),
        Route("/_simulator/config", admin_config, methods=["GET", "PATCH"]),
        Route("/_simulator/requests", admin_requests, methods=["GET"]),
        *file_routes(file_store(sim), api),
        *batch_routes(sim, lambda refusal: _error_response(sim, refusal)),
    ]
    return _tag_responses(Starlette(routes=routes))


def _tag_responses(app: ASGIApp) -> ASGIApp:
    """Mark every answer as simulated (a plain ASGI wrapper: file streaming stays untouched)."""

    async def tagged(scope: Scope, receive: Receive, send: Send) -> None:
        async def send_tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-grok-nb-simulator", __version__.encode())]
            await send(message)

        await app(scope, receive, send_tagged if scope["type"] == "http" else send)

    return tagged
