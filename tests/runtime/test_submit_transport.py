"""Submit failures that a loopback server cannot stage (a reset connection, a refused one), via httpx.MockTransport."""

import httpx
import pytest

import grok_nb
from grok_nb import Client
from tests.conftest import FAST
from tests.hostile import tiny_mp4


def _client(handler) -> Client:
    return Client(api_key="xai-mock", base_url="https://api.x.ai", policy=FAST, rate_limit=1000,
                  transport=httpx.MockTransport(handler))


def _failing(error: type[httpx.TransportError], message: str) -> tuple[list, object]:
    """A transport handler that records each request, then fails it with ``error``."""
    calls: list = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise error(message, request=request)

    return calls, handler


def test_reset_connection_after_sending_is_uncertain_and_never_resent():
    calls, handler = _failing(httpx.RemoteProtocolError, "Server disconnected without sending a response.")
    with _client(handler) as c:
        with pytest.raises(grok_nb.SubmitUncertainError, match="not resent"):
            c.generate("reset", duration=1)
        row = c.history().iloc[0]
    assert len(calls) == 1 and row["status"] == "uncertain" and row["backend"] == "xai"


def test_refused_connection_is_retried_then_reported():
    calls, handler = _failing(httpx.ConnectError, "Connection refused")
    with _client(handler) as c:
        with pytest.raises(grok_nb.ConnectionFailed, match="could not reach"):
            c.generate("refused", duration=1)
        assert c.history()["status"].tolist() == ["rejected"]
    assert len(calls) == FAST.submit_retries + 1  # nothing reached the server, so retrying is safe


def test_answer_without_request_id_is_uncertain():
    with _client(lambda r: httpx.Response(200, json={"weird": True})) as c:
        with pytest.raises(grok_nb.SubmitUncertainError, match="without a request_id"):
            c.generate("odd", duration=1)


def test_the_key_goes_to_the_api_and_never_to_the_media_host():
    seen = {}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.setdefault(request.url.host, []).append(request.headers.get("authorization"))
        if request.method == "POST":
            return httpx.Response(200, json={"request_id": "r-1"})
        if request.url.host == "api.x.ai":
            return httpx.Response(202, json={"status": "done",
                                             "video": {"url": "https://vidgen.x.ai/r-1.mp4", "duration": 1}})
        return httpx.Response(200, content=video)

    video = tiny_mp4()
    with _client(handler) as c:
        run = c.generate("media host", duration=1)
    assert run.ok and run.cost_basis == "estimate"
    assert set(seen["api.x.ai"]) == {"Bearer xai-mock"} and seen["vidgen.x.ai"] == [None]


def test_truncated_or_non_mp4_downloads_are_errors_not_files():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(200, json={"request_id": "r-2"})
        if request.url.host == "api.x.ai":
            return httpx.Response(200, json={"status": "done", "video": {"url": "https://vidgen.x.ai/r-2.mp4"}})
        return httpx.Response(200, content=b"<html>not a video</html>")

    with _client(handler) as c:
        run = c.generate("bad download", duration=1)
        assert not list(c.cache_dir.iterdir())
    # Done at the server but not on disk: its own status, never "done".
    assert run.status == "download_failed" and run.path is None and isinstance(run.error, grok_nb.DownloadError)
    assert c.store.find("r-2")["status"] == "download_failed"
