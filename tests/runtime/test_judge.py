"""The vision judge through the one request path, over real loopback HTTP against the simulator: the body as the
contract says, fail-closed verdicts, one call per video/rubric/model/frames/detail, money reserved then reconciled,
429 and 5xx under the one retry rule, a bucket apart from the videos', and no key anywhere."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time

import httpx
import pandas as pd
import pytest

import grok_nb
from grok_nb.api.frames import sample_frames
from grok_nb.api.judge import DEFAULT_RUBRIC, estimate_body_cost, judge_body
from grok_nb.api.pricing import TICKS_PER_USD
from grok_nb.errors import BudgetExceeded, JudgeError, ValidationError
from grok_nb.simulator.judge import MALFORMED
from tests._clips import flat, write_clip
from tests.conftest import FAST, SPEED, TEST_KEY, count

PROMPT = "A fox at night"
#: The contract's structured-output format, copied from /work/shared/xai-judge-api.md.
CONTRACT_FORMAT = {"type": "json_schema", "name": "judgement", "strict": True,
                   "schema": {"type": "object", "additionalProperties": False,
                              "required": ["score", "passed", "reason"],
                              "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1},
                                             "passed": {"type": "boolean"},
                                             "reason": {"type": "string"}}}}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Three small MP4s: dark and moving, bright and still, colourful."""
    import numpy as np

    folder = tmp_path_factory.mktemp("judge-runtime")
    stripes = np.zeros((96, 160, 3), dtype=np.uint8)
    for k, colour in enumerate([(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 220, 0), (255, 0, 255)]):
        stripes[:, k * 32:(k + 1) * 32] = colour
    return {"dark": write_clip(folder / "dark.mp4", flat((18, 18, 30), noise=5, moving=True)),
            "bright": write_clip(folder / "bright.mp4", flat((235, 230, 215), noise=5)),
            "colourful": write_clip(folder / "colourful.mp4", lambda i: stripes)}


def money(usd):
    """Dollars as the ledger shows them (to a millionth)."""
    return pytest.approx(usd, abs=1e-6)


def add_run(client, path, prompt=PROMPT, run_id="r-dark", status="done") -> str:
    """A finished run of this history whose MP4 is ``path`` (as a download leaves it)."""
    store = client.store
    store.insert(run_id=run_id, request_id=f"req-{run_id}", backend="simulator", kind="generate", model="m",
                 prompt=prompt, status=status, local_path=str(path), duration=2.0, resolution="480p")
    return run_id


class Gateway(httpx.AsyncHTTPTransport):
    """The real transport, recording every request; judge calls can be held, answered otherwise or rewritten."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[httpx.Request] = []
        self.hold: asyncio.Event | None = None
        self.answer = None  # async (request) -> httpx.Response | None: answer a judge call instead of the server
        self.rewrite = None  # (answer JSON) -> answer JSON, for the server's judge answers

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.requests.append(request)
        if request.url.path != "/v1/responses":
            return await super().handle_async_request(request)
        if self.hold is not None:
            await self.hold.wait()
        if self.answer is not None:
            given = await self.answer(request)
            if given is not None:
                return given
        response = await super().handle_async_request(request)
        if self.rewrite is None or response.status_code != 200:
            return response
        await response.aread()
        return httpx.Response(200, json=self.rewrite(json.loads(response.content)))

    def judge_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path == "/v1/responses"]


@pytest.fixture
def gateway():
    return Gateway()


@pytest.fixture
def client(sim, gateway):
    c = grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, transport=gateway)
    yield c
    c.close()


@pytest.fixture
async def aclient(sim, gateway):
    c = grok_nb.AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, transport=gateway)
    yield c
    await c.aclose()


# -- the request as the contract says ----------------------------------------------------------------
@pytest.mark.slow
def test_the_judges_request_is_the_contracts_byte_for_byte_and_the_key_goes_to_the_api_only(client, gateway, sim):
    run = client.generate(PROMPT, duration=1)
    judgement = client.judge(run)
    assert judgement.ok and 0 <= judgement.score <= 1 and judgement.request_id.startswith("resp_")
    (call,) = gateway.judge_calls()
    expected = judge_body(PROMPT, DEFAULT_RUBRIC, sample_frames(run.path, 6, 384), model="grok-4.3", detail="low")
    assert call.method == "POST" and call.url == httpx.URL(f"{sim.url}/v1/responses")
    assert call.content == httpx.Request("POST", call.url, json=expected).content  # byte for byte
    assert call.headers["content-type"] == "application/json"
    body = json.loads(call.content)
    assert set(body) == {"model", "store", "input", "text"}
    assert body["model"] == "grok-4.3" and body["store"] is False and body["text"] == {"format": CONTRACT_FORMAT}
    (message,) = body["input"]
    assert message["role"] == "user"
    images, text = message["content"][:-1], message["content"][-1]
    assert len(images) == 6 and text["type"] == "input_text" and PROMPT in text["text"]
    for item in images:
        assert set(item) == {"type", "image_url", "detail"} and item["type"] == "input_image"
        assert item["detail"] == "low" and item["image_url"].startswith("data:image/jpeg;base64,")
        assert base64.b64decode(item["image_url"].split(",", 1)[1])[:3] == b"\xff\xd8\xff"  # a JPEG
    # The key goes with every API call and with nothing else (the MP4's download carries none).
    for request in gateway.requests:
        api = request.url.path.startswith("/v1/")
        assert ("authorization" in request.headers) is api, request.url.path
        if api:
            assert request.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert any(r.url.path.startswith("/media/") for r in gateway.requests)


def test_a_judge_call_takes_no_slot_of_the_video_limit_and_is_logged_under_no_run(client, clips, gateway):
    add_run(client, clips["dark"])
    client.judge("r-dark")
    judges = client._async._judges
    assert client.scheduler.granted == {0: 0, 1: 0}  # the video scheduler granted nothing
    assert judges.scheduler("grok-4.3").granted[1] == 1 and judges.sent == 1
    client._async._engine.writer.flush()
    assert client.store.exchanges("r-dark") == []
    with client.store._db.transaction() as tx:
        logged = tx.fetchall("SELECT run_id, method, path, status, summary FROM exchanges")
    assert [(r["run_id"], r["method"], r["path"], r["status"]) for r in logged] == [
        (None, "POST", "/v1/responses", 200)]
    assert logged[0]["summary"].startswith("score=")


# -- fail closed ------------------------------------------------------------------------------------
@pytest.mark.parametrize("malformed", MALFORMED)
def test_each_malformed_answer_fails_closed_and_is_never_reused(client, clips, sim, malformed):
    add_run(client, clips["dark"])
    sim.config.judge_answer = malformed
    judgement = client.judge("r-dark")
    assert judgement.score is None and judgement.passed is None and not judgement.ok
    assert judgement.error and judgement.cost_usd > 0  # the failed call was billed, and counted
    with pytest.raises(JudgeError, match="not a valid judgement") as raised:
        judgement.raise_for_error()
    assert "still billed" in str(raised.value)
    again = client.judge("r-dark")  # nothing was cached as a score: the call goes again
    assert again.score is None and not again.cached and count(sim, "POST", "/v1/responses") == 2
    rows = client.judgements("r-dark")
    assert len(rows) == 2 and rows["score"].isna().all() and rows["error"].notna().all()
    assert pd.isna(client.history().set_index("run_id").loc["r-dark", "judge_score"])
    sim.config.judge_answer = "valid"
    valid = client.judge("r-dark")
    assert valid.ok and not valid.cached and count(sim, "POST", "/v1/responses") == 3


def test_each_failure_says_why_in_words(client, clips, sim):
    add_run(client, clips["dark"])
    said = {}
    for malformed in MALFORMED:
        sim.config.judge_answer = malformed
        said[malformed] = client.judge("r-dark").error
    assert "not JSON" in said["not_json"] and "outside 0-1" in said["score_out_of_range"]
    assert "missing 'passed'" in said["missing_field"] and "unexpected keys" in said["extra_key"]
    assert "no output" in said["no_output"] and "refused" in said["refusal"]


# -- one call per video, rubric, model, frames and detail ---------------------------------------------
def test_a_repeated_judge_call_sends_nothing_in_this_client_or_a_new_one(sim, clips, isolated_home):
    with grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as first:
        add_run(first, clips["dark"])
        judged = first.judge("r-dark")
        again = first.judge("req-r-dark")  # by request id this time
        assert again.cached and again.score == judged.score and again.judgement_id == judged.judgement_id
        assert first.judge_spent_usd == money(judged.cost_usd)
    with grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as second:
        assert second.home == first.home
        cached = second.judge("r-dark")
        assert cached.cached and cached.score == judged.score and second.judge_spent_usd == 0
        # Another rubric, model, frame count or detail is another call.
        second.judge("r-dark", "Is it dark?")
        second.judge("r-dark", frames=3)
        second.judge("r-dark", detail="high")
        second.judge("r-dark", model="grok-4.20-0309")
        assert second.judge("r-dark", "Is it dark?").cached
    assert count(sim, "POST", "/v1/responses") == 5


@pytest.mark.anyio
async def test_concurrent_identical_calls_send_once(aclient, clips, sim, gateway):
    add_run(aclient, clips["dark"])
    gateway.hold = asyncio.Event()
    calls = [asyncio.create_task(aclient.judge("r-dark")) for _ in range(5)]
    calls.append(asyncio.create_task(aclient.judge_many(["r-dark", "req-r-dark"])))
    await asyncio.sleep(0.3)
    gateway.hold.set()
    *single, many = await asyncio.gather(*calls)
    assert count(sim, "POST", "/v1/responses") == 1 and len(gateway.judge_calls()) == 1
    assert {j.judgement_id for j in [*single, *many]} == {single[0].judgement_id}
    assert aclient.budget.reserved_usd == 0 and aclient.judge_spent_usd == money(single[0].cost_usd)
    assert len(await aclient.judgements()) == 1


def test_another_run_of_the_same_video_and_prompt_gets_the_verdict_without_a_call(client, clips, sim):
    add_run(client, clips["dark"], run_id="r1")
    add_run(client, clips["dark"], run_id="r2")
    first, second = client.judge_many(["r1", "r2"])
    assert count(sim, "POST", "/v1/responses") == 1
    assert (first.run_id, second.run_id) == ("r1", "r2") and first.score == second.score
    assert second.cached and second.cost_usd == 0 and first.cost_usd > 0
    history = client.history().set_index("run_id")
    assert history.loc["r1", "judge_score"] == history.loc["r2", "judge_score"] == first.score
    assert history.loc["r2", "judge_cost_usd"] == 0


# -- money --------------------------------------------------------------------------------------------
def test_a_judge_over_the_remaining_budget_raises_and_sends_nothing(sim, clips):
    with grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=0.005) as c:
        add_run(c, clips["dark"], run_id="r1")
        add_run(c, clips["bright"], run_id="r2")
        with pytest.raises(BudgetExceeded, match="nothing was sent"):
            c.judge("r1", frames=12)  # 12 images: about $0.016 estimated
        with pytest.raises(BudgetExceeded):
            c.judge_many(["r1", "r2"])  # each fits, both do not: none is sent
        assert c.budget.reserved_usd == 0 and c.spent_usd == 0
    assert count(sim, "POST", "/v1/responses") == 0


@pytest.mark.anyio
async def test_the_reserve_is_the_estimate_and_the_answers_cost_settles_it(aclient, clips, gateway):
    add_run(aclient, clips["dark"])
    expected = judge_body(PROMPT, DEFAULT_RUBRIC, sample_frames(clips["dark"], 6, 384))
    estimate = estimate_body_cost(expected)
    gateway.hold = asyncio.Event()
    costs = []
    gateway.rewrite = lambda answer: costs.append(answer["usage"]["cost_in_usd_ticks"]) or answer
    call = asyncio.create_task(aclient.judge("r-dark"))
    for _ in range(100):
        if aclient.budget.reserved_usd:
            break
        await asyncio.sleep(0.02)
    assert aclient.budget.reserved_usd == money(estimate)  # held while the call is out
    gateway.hold.set()
    judgement = await call
    assert judgement.estimate_usd == pytest.approx(estimate) and judgement.cost_basis == "actual"
    assert judgement.cost_usd == pytest.approx(costs[0] / TICKS_PER_USD) and judgement.cost_usd < estimate
    assert aclient.budget.reserved_usd == 0
    assert aclient.budget.spent_by_kind == {"video": 0.0, "judge": money(judgement.cost_usd)}


@pytest.mark.parametrize("ticks", [-10 * TICKS_PER_USD, 10**15, "free", None])
def test_a_negative_or_absurd_reported_cost_never_loosens_the_budget(client, clips, gateway, ticks):
    add_run(client, clips["dark"])

    def lie(answer):
        answer["usage"]["cost_in_usd_ticks"] = ticks
        return answer

    gateway.rewrite = lie
    judgement = client.judge("r-dark")
    assert judgement.ok and judgement.cost_basis.startswith("estimate (")
    assert judgement.cost_usd == pytest.approx(judgement.estimate_usd)
    assert client.judge_spent_usd == money(judgement.estimate_usd)


@pytest.mark.slow
def test_spent_usd_counts_video_and_judge_costs_apart_and_together(client):
    run = client.generate(PROMPT, duration=1)
    judgement = client.judge(run)
    by_kind = client.budget.spent_by_kind
    assert by_kind["video"] == money(run.cost_budget_usd) and by_kind["judge"] == money(judgement.cost_usd)
    assert client.spent_usd == pytest.approx(by_kind["video"] + by_kind["judge"])
    assert client.judge_spent_usd == by_kind["judge"]
    row = client.history().iloc[-1]
    assert row["judge_cost_usd"] == pytest.approx(judgement.cost_usd) and row["cost_budget_usd"] == run.cost_budget_usd


# -- the one retry rule, and a bucket of its own ------------------------------------------------------
@pytest.mark.parametrize("retry_after", [True, False])
def test_a_429_pauses_the_judge_bucket_only_and_is_retried(client, clips, sim, monkeypatch, retry_after):
    # Without a Retry-After the service has not said how long: the backoff then holds every call of the bucket.
    add_run(client, clips["dark"])
    judge_limiter = client._async._judges.scheduler("grok-4.3").limiter
    paused = {"video": [], "judge": []}
    monkeypatch.setattr(client.limiter, "pause", lambda s, everyone=True: paused["video"].append((s, everyone)))
    pause = judge_limiter.pause
    monkeypatch.setattr(judge_limiter, "pause",
                        lambda s, everyone=True: paused["judge"].append((s, everyone)) or pause(s, everyone))
    sim.config.update(judge_burst_429=2, retry_after_header=retry_after)
    before = sim.simulator.by_key.get(TEST_KEY, {}).get(("judge", 429), 0)  # the session simulator counts for the whole session
    judgement = client.judge("r-dark")
    assert judgement.ok and count(sim, "POST", "/v1/responses") == 3
    assert paused["video"] == [] and len(paused["judge"]) == 2 and all(s > 0 for s, _ in paused["judge"])
    # asked for, the hold is every process's on the key; not asked for, this process's alone (a good answer ends it)
    assert all(everyone == retry_after for _, everyone in paused["judge"])
    if retry_after:
        assert [s for s, _ in paused["judge"]] == [pytest.approx(1 / SPEED, abs=0.001)] * 2
    assert sim.simulator.by_key[TEST_KEY][("judge", 429)] - before == 2


def test_a_judge_call_refused_for_credits_is_not_sent_again_and_slows_nothing(client, clips, sim):
    add_run(client, clips["dark"])
    judges = client._async._judges.scheduler("grok-4.3")
    sim.config.credits_usd = 0.0  # a 429 about money: waiting does not help
    judgement = client.judge("r-dark")
    assert count(sim, "POST", "/v1/responses") == 1 and judgement.score is None and "credit" in judgement.error
    assert judges.pace.share == 1.0 and judges.pace.cuts == 0


def test_429s_slow_the_judge_bucket_and_good_answers_win_its_pace_back(client, clips, sim):
    add_run(client, clips["dark"])
    add_run(client, clips["bright"], run_id="r-bright")
    judges = client._async._judges.scheduler("grok-4.3")
    video = client._async._engine.scheduler
    sim.config.judge_burst_429 = 1
    assert client.judge("r-dark").ok
    assert judges.pace.cuts == 1 and judges.pace.share == pytest.approx(0.7 * 1.05)  # cut, then one good answer
    assert video.pace.share == 1.0  # the videos' bucket is not slowed by the judge's limit
    assert client.judge("r-bright").ok and judges.pace.share == pytest.approx(0.7 * 1.05 ** 2)


@pytest.mark.parametrize("how", ["502", "reset"])
def test_a_failure_after_the_post_may_have_arrived_is_not_resent(client, clips, sim, gateway, how):
    add_run(client, clips["dark"])
    forward = httpx.AsyncHTTPTransport()

    async def arrived_then_lost(request):
        await (await forward.handle_async_request(request)).aread()  # the server got it (and billed it)
        if how == "reset":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        return httpx.Response(502, json={"error": "Bad gateway"})

    gateway.answer = arrived_then_lost
    judgement = client.judge("r-dark")
    assert count(sim, "POST", "/v1/responses") == 1 and len(gateway.judge_calls()) == 1
    assert judgement.score is None and "not sent again" in judgement.error
    # it may have been billed: the estimate counts
    assert client.judge_spent_usd == money(judgement.estimate_usd) and judgement.cost_usd == judgement.estimate_usd
    gateway.answer = None
    assert client.judge("r-dark").ok and count(sim, "POST", "/v1/responses") == 2  # judging again sends again


def test_a_refused_call_bills_nothing_and_says_so(client, clips, sim):
    add_run(client, clips["dark"])
    judgement = client.judge("r-dark", model="grok-9-vision")  # the service knows no such model: 404
    assert judgement.score is None and "refused" in judgement.error and "does not exist" in judgement.error
    assert judgement.cost_usd == 0 and client.judge_spent_usd == 0 and client.budget.reserved_usd == 0
    with pytest.raises(JudgeError, match="nothing was billed"):
        judgement.raise_for_error()


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_video_poll_is_not_delayed_by_a_burst_of_judge_calls(sim, clips, isolated_home):
    sim.config.done_at_latency = True  # done at the modelled latency, whatever the machine's render queue

    def lag(run) -> float:
        """How long after the server could first say "done" the client saw it (seconds)."""
        (job,) = sim.simulator.jobs_by_prompt(run.prompt)
        return run.latency_s - job.latency

    async with grok_nb.AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED,
                                   judge_rate_limit=0.5) as c:
        baseline = await c.generate("A boat on a lake", duration=1)
        add_run(c, clips["dark"])
        judges = [asyncio.create_task(c.judge("r-dark", f"Rubric number {i}: is it dark?")) for i in range(20)]
        await asyncio.sleep(0.2)  # the judge calls are sampled and queued on their slow bucket (one call per 2 s)
        run = await c.generate("A boat on a lake, again", duration=1)
        pending = sum(not j.done() for j in judges)
        assert run.ok and pending >= 15  # the video finished while the judges still wait for their turns
        # Its polls came when planned (FAST polls at least every 0.05 s): a judge's 2-s slot never held one back.
        assert run.polls <= baseline.polls + 2 and lag(run) < 1.0 and lag(baseline) < 1.0
        video = c.scheduler.granted
        assert video[0] + video[1] == baseline.polls + run.polls + 2  # only the two videos' submits and polls
        # The judge calls granted a turn so far (each reaches the server a moment after its grant), at most 5.
        assert count(sim, "POST", "/v1/responses") <= c._judges.scheduler("grok-4.3").granted[1] <= 5
    # Closing drops the calls still waiting for a turn: nothing of them was sent or billed.
    results = await asyncio.gather(*judges, return_exceptions=True)
    dropped = [r for r in results if isinstance(r, grok_nb.GrokError)]
    assert len(dropped) >= 15 and all("nothing was sent" in str(e) for e in dropped)
    assert c.budget.reserved_usd == 0
    assert c.judge_spent_usd == money(sum(r.cost_usd for r in results if not isinstance(r, Exception)))


@pytest.mark.anyio
async def test_closing_while_frames_are_sampled_ends_each_call_with_a_clear_error(sim, clips, isolated_home,
                                                                                 monkeypatch):
    from grok_nb.runtime.judge import Judges

    real = Judges._body
    started = threading.Event()

    def slow_body(*args):
        started.set()
        time.sleep(0.5)  # two calls sample on the judge's two threads; the others wait for a thread
        return real(*args)

    monkeypatch.setattr(Judges, "_body", staticmethod(slow_body))
    c = grok_nb.AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED)
    add_run(c, clips["dark"])
    calls = [asyncio.create_task(c.judge("r-dark", f"Rubric {i}: is it dark?")) for i in range(4)]
    assert await asyncio.to_thread(started.wait, 10)
    await c.aclose()
    results = await asyncio.gather(*calls, return_exceptions=True)
    # Each caller hears that nothing was sent (never a bare CancelledError from a dropped thread's future).
    assert all(isinstance(r, grok_nb.GrokError) and "nothing was sent" in str(r) for r in results), results
    assert count(sim, "POST", "/v1/responses") == 0 and c.judge_spent_usd == 0 and c.budget.reserved_usd == 0


# -- checks before anything is sent ---------------------------------------------------------------
@pytest.mark.parametrize(("args", "field"), [
    ({"rubric": ""}, "rubric"), ({"rubric": []}, "rubric"), ({"rubric": ["a", "a"]}, "rubric[1]"),
    ({"frames": 0}, "frames"), ({"frames": 65}, "frames"), ({"frames": 2.5}, "frames"),
    ({"detail": "medium"}, "detail"), ({"model": ""}, "model"), ({"model": " grok-4.3"}, "model"),
    ({"width": 8}, "width"), ({"run": "no-such-run"}, "run"), ({"run": 42}, "run"), ({"run": "r-failed"}, "run"),
])
def test_bad_input_is_refused_naming_the_field_before_anything_is_sent(client, clips, sim, args, field):
    add_run(client, clips["dark"])
    add_run(client, clips["dark"], run_id="r-failed", status="failed")
    args = {"run": "r-dark", **args}
    with pytest.raises(ValidationError) as raised:
        client.judge(args.pop("run"), **args)
    assert raised.value.field == field
    assert count(sim, "POST", "/v1/responses") == 0 and client.budget.reserved_usd == 0


def test_a_missing_or_damaged_video_is_named(client, tmp_path, sim):
    damaged = tmp_path / "cut.mp4"
    damaged.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    add_run(client, damaged, run_id="r-cut")
    with pytest.raises(grok_nb.GrokError, match="cut.mp4"):
        client.judge("r-cut")
    assert count(sim, "POST", "/v1/responses") == 0 and client.budget.reserved_usd == 0


# -- the key -------------------------------------------------------------------------------------------
KEY = "gw-5e4d3c2b1a-judgekey-0099"


@pytest.mark.parametrize("where", ["refusal", "reason", "error field"])
def test_the_key_never_reaches_a_judgement_the_history_the_wal_or_an_error(sim, clips, isolated_home, where):
    gateway = Gateway()
    quote = f"upstream saw key {KEY} (Authorization: Bearer {KEY})"

    async def quoting(request):
        if where == "refusal":
            return httpx.Response(400, json={"code": f"bad {KEY}", "error": quote})
        return None

    def rewrite(answer):
        if where == "reason":
            text = json.loads(answer["output"][0]["content"][0]["text"])
            text["reason"] = quote
            answer["output"][0]["content"][0]["text"] = json.dumps(text)
        else:
            answer["error"] = {"message": quote}
        return answer

    gateway.answer, gateway.rewrite = quoting, rewrite
    with grok_nb.Client(api_key=KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, transport=gateway) as c:
        add_run(c, clips["dark"])
        judgement = c.judge("r-dark")
        texts = [repr(judgement), str(judgement.reason), str(judgement.error), str(judgement.answer_text)]
        if not judgement.ok:
            with pytest.raises(JudgeError) as raised:
                judgement.raise_for_error()
            texts.append(f"{raised.value} {raised.value!r} {raised.value.reason}")
        judged = c.judgements()
        texts += [judged.to_string(), repr(judged.to_dict()), c.history().to_csv()]
        with c.store._db.transaction() as tx:
            texts.append(repr(tx.fetchall("SELECT * FROM exchanges")))
        files = [isolated_home / f"history.sqlite{suffix}" for suffix in ("", "-wal")]
        blobs = [f.read_bytes() for f in files if f.exists()]
        assert "history.sqlite-wal" in {f.name for f in files if f.exists()}
    assert (judgement.ok, "***" in (judgement.reason + (judgement.error or ""))) == (where == "reason", True)
    for text in texts:
        assert KEY not in text
    for blob in blobs:
        assert KEY.encode() not in blob


@pytest.mark.anyio
async def test_a_judge_call_is_on_disk_before_its_answer_and_its_verdict_replaces_the_trace(aclient, clips, sim,
                                                                                           gateway):
    """A process that ends while the call is out leaves a row saying it may have been billed (its estimate);
    once the answer comes, the verdict replaces that row (one row per call)."""
    add_run(aclient, clips["dark"])
    gateway.hold = asyncio.Event()
    call = asyncio.create_task(aclient.judge("r-dark"))
    await asyncio.sleep(0.3)  # the POST is out, held by the gateway: its row is already on disk
    rows = await aclient.judgements()
    assert len(rows) == 1 and rows.iloc[0]["score"] is None or rows.iloc[0]["score"] != rows.iloc[0]["score"]
    assert "may have been billed" in rows.iloc[0]["error"] and rows.iloc[0]["cost_usd"] > 0
    gateway.hold.set()
    judged = await call
    rows = await aclient.judgements()
    assert len(rows) == 1 and rows.iloc[0]["judgement_id"] == judged.judgement_id
    assert rows.iloc[0]["score"] == judged.score and not rows.iloc[0]["error"]
    assert count(sim, "POST", "/v1/responses") == 1
