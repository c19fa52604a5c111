"""Issue 15's rules, both ways over loopback: grok_nb refuses (or sends) first, and the simulator, sent the same
body raw (client-side checks bypassed), answers as the service does: a 400, a failed_precondition, or a job."""

from __future__ import annotations

import time
import warnings

import httpx
import pytest

import grok_nb
from grok_nb.api.responses import parse_job_status, parse_poll_error
from tests.conftest import count

AUTH = {"Authorization": "Bearer any-key"}
V1, V15, LITE = "grok-imagine-video", "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite"
IMG = "https://example.com/a.png"


def _png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


def _post(sim, body, kind="generations"):
    return httpx.post(f"{sim.url}/v1/videos/{kind}", json=body, headers=AUTH)


def _final(sim, rid, timeout=30):
    """Poll raw until the job is no longer pending; the last answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH)
        status = parse_poll_error(answer.status_code, answer.json()) if answer.status_code >= 400 else \
            parse_job_status(answer.json() if answer.content else "")
        if status is not None and status.terminal:
            return answer
        time.sleep(0.02)
    raise AssertionError("job did not finish")


def _refused_first(client, sim, field, **kwargs):
    """The client refuses with a ValidationError naming ``field`` and the simulator sees no request."""
    sim.simulator.requests.clear()
    with pytest.raises(grok_nb.ValidationError) as info:
        client.estimate_cost(**kwargs)
    with pytest.raises(grok_nb.ValidationError):
        client.generate(wait=False, **kwargs)
    assert info.value.field.startswith(field) and str(info.value).startswith(info.value.field + "=")
    assert count(sim, "POST", "/v1/videos") == 0
    return info.value


# -- 1. voice tags are zero-based and never a reason to refuse ----------------------------------------
@pytest.mark.slow
def test_voice_tags_are_sent_as_written_and_the_service_takes_them(client, sim):
    body = {"model": V15, "prompt": "<AUDIO_1> sings", "reference_audios": [{"voice_id": "eve"}], "duration": 1}
    assert _post(sim, body).status_code == 200  # raw: a tag naming no voice is not a 400
    with pytest.warns(UserWarning, match=r"<AUDIO_1> names no voice.*<AUDIO_0>"):
        run = client.generate("<AUDIO_1> sings", model=V15, reference_audios=["eve"], duration=1)
    assert run.ok and client.store.find(run.request_id)["prompt"] == "<AUDIO_1> sings"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # zero-based tags, or none at all: not a word
        for prompt in ("<AUDIO_0> sings", "no tags at all"):
            client.estimate_cost(prompt, model=V15, reference_audios=["eve"], duration=1)


# -- 2. lite: text→video and image→video only; 1080p allowed ----------------------------------------------
@pytest.mark.parametrize("field,kwargs,raw", [
    ("reference_images", dict(reference_images=[IMG]), {"reference_images": [{"url": IMG}]}),
    ("reference_audios", dict(reference_audios=["eve"]), {"reference_audios": [{"voice_id": "eve"}]}),
    ("last_frame", dict(last_frame=IMG), {"last_frame": {"url": IMG}}),
    ("keyframes", dict(keyframes=[{"image": IMG, "timestamp_s": 1}]),
     {"keyframes": [{"image": {"url": IMG}, "timestamp_s": 1}]}),
])
def test_lite_refuses_references_frames_and_voices(client, sim, field, kwargs, raw):
    error = _refused_first(client, sim, field, prompt="x", model=LITE, **kwargs)
    assert "text→video and image→video only" in str(error)
    answer = _post(sim, {"model": LITE, "prompt": "x", **raw})
    assert answer.status_code == 400 and field in answer.json()["error"]


def test_lite_takes_1080p(client, sim):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimate = client.estimate_cost("x", model=LITE, resolution="1080p", duration=1, image=_png())
    assert estimate.usd == pytest.approx(0.14 + 0.01) and estimate.exact
    assert _post(sim, {"model": LITE, "prompt": "x", "resolution": "1080p", "duration": 1}).status_code == 200


# -- 3. keyframes strictly inside the clip, one per 1/3-s slot -------------------------------------------
@pytest.mark.parametrize("times,words", [((0,), "strictly inside"), ((4,), "strictly inside"),
                                         ((3.9,), "snaps to 4 s"), ((1, 1.1), "1/3-s slot")])
@pytest.mark.slow
def test_keyframes_outside_the_clip_or_sharing_a_slot(client, sim, times, words):
    frames = [{"image": IMG, "timestamp_s": t} for t in times]
    error = _refused_first(client, sim, "keyframes", prompt="x", model=V15, duration=4, keyframes=frames)
    assert words in str(error)
    raw = [{"image": {"url": IMG}, "timestamp_s": t} for t in times]
    answer = _post(sim, {"model": V15, "prompt": "x", "duration": 4, "keyframes": raw})
    assert answer.status_code == 400 and "keyframes[" in answer.json()["error"]


def test_keyframes_in_neighbouring_slots_are_taken(sim):
    ok = _post(sim, {"model": V15, "prompt": "x", "duration": 1,
                     "keyframes": [{"image": {"url": IMG}, "timestamp_s": t} for t in (1 / 3, 0.5)]})
    assert ok.status_code == 200, ok.text


# -- 4. every reference→video at most 720p ------------------------------------------------------------------
@pytest.mark.parametrize("model,kwargs,raw", [
    (V15, dict(reference_audios=["eve"]), {"reference_audios": [{"voice_id": "eve"}]}),
    (V15, dict(reference_images=[IMG]), {"reference_images": [{"url": IMG}]}),
])
def test_reference_to_video_is_capped_at_720p(client, sim, model, kwargs, raw):
    error = _refused_first(client, sim, "resolution", prompt="x", model=model, resolution="1080p", **kwargs)
    assert "720p" in str(error) and error.value == "1080p"
    answer = _post(sim, {"model": model, "prompt": "x", "resolution": "1080p", **raw})
    assert answer.status_code == 400 and "resolution" in answer.json()["error"]


# -- 5. edits and extensions: grok-imagine-video only --------------------------------------------------------
@pytest.mark.slow
def test_edits_on_15_models_are_refused_first_and_fail_at_the_service(client, sim):
    base = client.generate("base clip", duration=2)
    sim.simulator.requests.clear()
    for model in (V15, LITE):
        for method, kwargs in ((client.edit, {}), (client.extend, dict(duration=2))):
            with pytest.raises(grok_nb.ValidationError, match="grok-imagine-video only") as info:
                method(base, "night", model=model, **kwargs)
            assert info.value.field == "model"
    assert count(sim, "POST", "/v1/videos") == 0
    for model, kind, body in ((V15, "edits", {}), (LITE, "extensions", {"duration": 2})):
        rid = _post(sim, {"model": model, "prompt": "night", "video": {"url": base.url}, **body}, kind)
        last = _final(sim, rid.json()["request_id"]).json()
        assert last["status"] == "failed" and last["error"]["code"] == "failed_precondition"


@pytest.mark.slow
def test_an_unknown_model_edit_still_goes_out_with_a_warning(client, sim):
    base = client.generate("base clip", duration=2)
    with pytest.warns(UserWarning, match="does not know model"):
        with pytest.raises(grok_nb.NotFoundError) as info:
            client.edit(base, "night", model="grok-imagine-video-9")
    assert count(sim, "POST", "/v1/videos/edits") == 1
    assert "client.models()" in str(info.value) and ".." not in str(info.value)


# -- 6. moderation: by code at poll time, and as a failed invalid_argument; billed, never retried ---------------
@pytest.mark.slow
def test_poll_time_400_is_moderated_by_its_code_whatever_the_wording(client, sim):
    sim.config.update(moderation_code="imagine:content-moderated")
    run = client.generate("blocked [sim:moderate=http400]", duration=1)
    assert run.status == "moderated" and run.cost_actual_usd == pytest.approx(0.05)
    assert count(sim, "POST", "/v1/videos") == 1  # not resubmitted


@pytest.mark.slow
def test_a_failed_job_about_moderation_is_moderated_and_billed(client, sim):
    rid = _post(sim, {"prompt": "blocked raw [sim:moderate=failed]", "duration": 1}).json()["request_id"]
    raw = _final(sim, rid).json()
    assert raw["status"] == "failed" and raw["error"]["code"] == "invalid_argument"
    assert "moderation" in raw["error"]["message"] and raw["usage"]["cost_in_usd_ticks"] == round(0.05 * 1e10)
    sim.simulator.requests.clear()
    run = client.generate("blocked [sim:moderate=failed]", duration=1)
    assert run.status == "moderated" and isinstance(run.error, grok_nb.ModeratedError)
    assert run.cost_actual_usd == pytest.approx(0.05)
    assert client.store.find(run.request_id)["status"] == "moderated"
    assert count(sim, "POST", "/v1/videos") == 1  # final, not retried


# -- 7. prices: every input image; extensions add the input's seconds at $0.01 ---------------------------------
@pytest.mark.slow
def test_the_simulator_bills_what_the_client_estimates(client, sim):
    base = client.generate("base clip", duration=2)
    estimate = client.estimate_cost(base, "more", kind="extend", duration=1)
    assert not estimate.exact and "extension" in str(estimate)
    longer = client.extend(base, "more", duration=1)
    assert longer.cost_actual_usd == pytest.approx(1 * 0.05 + 2 * 0.01)
    assert estimate.usd == pytest.approx(longer.cost_actual_usd)


# -- 8. long prompts: a warning, never a refusal -------------------------------------------------------------------
@pytest.mark.slow
def test_long_prompts_are_sent_with_a_warning(client, sim):
    long = "a fox in the snow " * 250  # 4,500 characters
    assert _post(sim, {"prompt": long, "duration": 1}).status_code == 200
    with pytest.warns(UserWarning, match="4,096"):
        handle = client.generate(long, duration=1, wait=False)
    assert handle.result(timeout=60).ok


# -- 10. a pending poll is a 202 by default; 200 is understood too --------------------------------------------------
@pytest.mark.slow
def test_pending_polls_are_202_by_default_and_200_still_works(client, sim):
    rid = _post(sim, {"prompt": "slow [sim:slow]", "duration": 1}).json()["request_id"]
    answer = httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH)
    assert answer.status_code == 202 and answer.json()["status"] == "pending"
    sim.config.update(pending_http_status=200)
    assert client.generate("pending as 200", duration=1).ok


# -- 14. careless inputs: host-less URLs, chat models ----------------------------------------------------------------
@pytest.mark.parametrize("url", ["http://", "https://", "http:///a.png", "https://:443/a.png"])
def test_urls_without_a_host_are_refused_first_and_by_the_service(client, sim, url):
    error = _refused_first(client, sim, "image", prompt="x", image=url)
    assert "host" in str(error) and repr(url) in str(error)
    answer = _post(sim, {"prompt": "x", "image": {"url": url}})
    assert answer.status_code == 400 and "host" in answer.json()["error"]


def test_chat_models_are_refused_first_and_the_service_404_reads_well(client, sim):
    error = _refused_first(client, sim, "model", prompt="x", model="grok-2")
    assert "chat" in str(error) and "grok-imagine-video" in str(error)
    answer = _post(sim, {"prompt": "x", "model": "grok-2"})
    assert answer.status_code == 404
    text = str(grok_nb.errors.error_from_response(404, answer.json()))
    assert ".." not in text and "client.models()" in text and "request id" not in text


def test_a_closed_client_leaves_no_event_loop_open(sim):
    """Found here: a refused call, then a collection inside a later test, reported the loop of every closed client."""
    with grok_nb.Client(api_key="xai-test", base_url=sim.url) as client:
        with pytest.raises(grok_nb.ValidationError):
            client.generate("x", model=LITE, reference_images=[IMG], wait=False)
    assert client._loop.loop.is_closed()
