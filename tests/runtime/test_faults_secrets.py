"""Issue 14, item 13: a server (a proxy, a gateway) that quotes the API key in its messages never gets the key
into an exception, a history row, an export or the SQLite files."""

from __future__ import annotations

import httpx
import pytest

from grok_nb.api.responses import parse_job_status, parse_poll_error
from grok_nb.errors import APIError, error_from_response, forget_secret, parse_error_body, redact, remember_secret
from tests.conftest import FAST, SPEED
from tests.hostile import PollRewriter

#: A key that does not look like an xAI key: only knowing it finds it (a class simulator's key, a gateway's).
KEY = "gw-9f8e7d6c5b4a3210-classkey"
#: Another credential a gateway might echo: shaped like an xAI key, not the client's own.
OTHER = "xai-OTHERteamKEY0123456789abcdef"
QUOTE = f"upstream refused key {KEY} (Authorization: Bearer {KEY}); try {OTHER} or bearer sk-live-0123456789abcdef"


class QuotingGateway(PollRewriter):
    """Forwards to the simulator over loopback, then puts the key into the answers' error messages."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and b"[quote:reject]" in request.content:
            # refused at submit with the key in the message (nothing forwarded: no job starts)
            return httpx.Response(400, json={"code": f"bad_key {KEY}", "error": QUOTE})
        return await super().handle_async_request(request)

    def rewrite(self, body: dict) -> dict | None:
        if body.get("status") == "failed":
            body["error"] = {"code": f"internal_error {KEY}", "message": QUOTE}
        elif isinstance(body.get("error"), str) and "moderation" in body["error"]:
            body["error"] += " " + QUOTE
        else:
            return None
        return body


def leaks(text: str | bytes) -> list[str]:
    """Which secrets appear in a text or in raw bytes."""
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    found = [s for s in (KEY, OTHER, "sk-live-0123456789abcdef") if s.encode() in data]
    return found


# -- the mechanism, pure ---------------------------------------------------------------------------
def test_redact_removes_given_live_and_shaped_keys():
    assert leaks(redact(QUOTE, KEY)) == []
    assert "Bearer ***" in redact(QUOTE, KEY) and "xai-***" in redact(QUOTE, KEY)
    # without being handed the key, a live client's key is still known (a key of its own: the suite's other tests
    # may still hold clients of KEY)
    fresh = "gw-0a1b2c3d4e5f6789-registry"
    assert fresh in redact(f"refused {fresh}")
    remember_secret(fresh)
    try:
        assert fresh not in redact(f"refused {fresh}")
    finally:
        forget_secret(fresh)
    assert fresh in redact(f"refused {fresh}")
    assert redact("the bearer of bad news") == "the bearer of bad news"  # ordinary words survive


def test_every_parser_of_server_text_redacts():
    code, message = parse_error_body({"error": {"message": QUOTE, "code": KEY}}, KEY)
    assert leaks(f"{code} {message}") == []
    status = parse_job_status({"status": "failed", "error": {"code": KEY, "message": QUOTE}}, KEY)
    assert leaks(f"{status.error_code} {status.error_message} {status.message}") == []
    status = parse_job_status({"status": "done", "video": {"url": "http://x/v.mp4"},
                               "usage": {"cost_in_usd_ticks": QUOTE}}, KEY)
    assert status.cost_usd is None and leaks(repr(status.cost_reported)) == []
    status = parse_job_status({"status": "done", "video": {"url": f"ftp://{KEY}"}}, KEY)
    assert leaks(f"{status.no_video_reason} {status.message}") == []
    moderated = parse_poll_error(400, {"error": f"rejected by content moderation {QUOTE}"}, KEY)
    assert moderated is not None and leaks(f"{moderated.error_message} {moderated.message}") == []
    error = error_from_response(401, {"error": QUOTE, "code": KEY}, secret=KEY)
    assert isinstance(error, APIError) and leaks(f"{error} {error!r} {error.server_message} {error.code}") == []


# -- end to end: every output of a client whose jobs fail with the key in the message -------------------
@pytest.mark.slow
def test_quoted_key_reaches_no_output(sim, tmp_path, isolated_home):
    import grok_nb
    from grok_nb.cli import main

    studio = grok_nb.Studio(api_key=KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED,
                            transport=QuotingGateway())
    client = studio.client
    try:
        failed = client.generate("A storm at sea [sim:fail=internal_error]", duration=1)
        moderated = client.generate("A fox [sim:moderate=http400]", duration=1)
        with pytest.raises(grok_nb.GrokError) as refused:
            client.generate("A boat [quote:reject]", duration=1)
        grid = studio.compare(prompt=["A lantern [sim:fail=internal_error]", "A kite [sim:moderate=http400]"],
                              duration=1, display=False)
        table = grid.wait()
        assert failed.status == "failed" and moderated.status == "moderated"
        assert "upstream refused key ***" in str(failed.error)  # the message itself is kept, only the key goes

        outputs: dict[str, str | bytes] = {
            "exceptions": " ".join(f"{e} {e!r} {getattr(e, 'message', '')} {getattr(e, 'code', '')}"
                                   for e in (failed.error, moderated.error, refused.value)),
            "runs": f"{failed!r} {failed.summary()} {failed._repr_html_()} {moderated._repr_html_()}",
            "rows": repr(client.store.rows()) + repr([client.store.exchanges(r["run_id"])
                                                      for r in client.store.rows()]),
        }
        df = client.history()
        outputs["dataframe"] = df.to_string() + repr(df.to_dict())
        outputs["csv"] = df.to_csv()
        outputs["html"] = df.to_html()
        outputs["grid table"] = table.to_string() + table.to_html() + repr(grid._repr_mimebundle_())
        outputs["grid report"] = grid.to_html(tmp_path / "report.html").read_text()
        csv_path = tmp_path / "runs.csv"
        assert main(["history", "--csv", str(csv_path), "--home", str(isolated_home)]) == 0
        outputs["cli csv"] = csv_path.read_text()
        for suffix in ("", "-wal", "-shm"):
            path = isolated_home / f"history.sqlite{suffix}"
            if path.exists():
                outputs[path.name] = path.read_bytes()
        assert "history.sqlite-wal" in outputs  # the WAL is checked while it holds the writes
    finally:
        client.close()
    outputs["history.sqlite after close"] = (isolated_home / "history.sqlite").read_bytes()
    leaked = {name: leaks(text) for name, text in outputs.items() if leaks(text)}
    assert leaked == {}


def test_a_client_collected_while_its_key_registry_is_in_use_does_not_deadlock():
    """The garbage collector may finalize a client while the same thread holds the key registry's lock (inside
    redact()): the release must not wait for that lock (it hung a test worker once)."""
    import threading

    from grok_nb import errors
    from grok_nb.runtime import logs

    class Owner:
        pass

    key = "xai-finalizedWhileLocked0123456789"
    finished = threading.Event()

    def collect_under_the_locks() -> None:
        owner = Owner()
        logs.protect_secret(key, owner)
        with errors._secrets_lock:
            del owner  # the finalizer runs here, in this thread, with the registry's lock held
        finished.set()

    thread = threading.Thread(target=collect_under_the_locks, daemon=True)
    thread.start()
    thread.join(timeout=10)
    assert finished.is_set(), "releasing a key from a finalizer waited for a lock its own thread held"
    assert errors.redact(f"a {key} b") == "a xai-*** b"  # still shaped like a key: redacted all the same
    other = Owner()
    logs.protect_secret("xai-anotherClientLater0123456789", other)  # the next use of the registries
    assert key not in errors._live_secrets  # the queued release went through
