"""The simulated judge over real loopback HTTP: the contract's checks, answers from the frames it was sent, and the
switches that make it answer badly (malformed judgements, 429s) so that a client's fail-closed path can be tested."""

from __future__ import annotations

import base64
import io
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from grok_nb.api import pricing
from grok_nb.api.frames import sample_frames
from grok_nb.api.judge import DEFAULT_RUBRIC, estimate_body_cost, judge_body, parse_judgement
from grok_nb.simulator.judge import MALFORMED, read_request
from grok_nb.simulator.state import ApiRefusal
from tests._clips import flat, write_clip

AUTH = {"Authorization": "Bearer judge-key"}


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Frames of four small clips: dark and still, bright and still, dark with a white square moving, colourful."""
    folder = tmp_path_factory.mktemp("judge-clips")
    made = {"dark": flat((18, 18, 30), noise=5), "bright": flat((235, 230, 215), noise=5),
            "moving": flat((18, 18, 30), noise=5, moving=True), "colourful": _stripes()}
    return {name: sample_frames(write_clip(folder / f"{name}.mp4", picture), n=6, width=160)
            for name, picture in made.items()}


def _stripes():
    import numpy as np

    image = np.zeros((96, 160, 3), dtype=np.uint8)
    for k, colour in enumerate([(255, 0, 0), (0, 200, 0), (0, 0, 255), (255, 220, 0), (255, 0, 255)]):
        image[:, k * 32:(k + 1) * 32] = colour
    return lambda i: image


def post(sim, body, **kw):
    return httpx.post(f"{sim.url}/v1/responses", json=body, headers=AUTH, timeout=60, **kw)


def judged(sim, frames, rubric="A dark night scene", prompt="A fox at night", model="grok-4.3"):
    body = judge_body(prompt, rubric, frames, model=model)
    answer = post(sim, body)
    assert answer.status_code == 200, answer.text
    return parse_judgement(answer.json(), rubric=rubric, model=model, estimate_usd=estimate_body_cost(body))


def test_the_contracts_body_is_answered_in_the_contracts_shape(sim, clips):
    body = judge_body("A fox at night", DEFAULT_RUBRIC, clips["dark"])
    answer = post(sim, body)
    assert answer.status_code == 200
    data = answer.json()
    assert data["object"] == "response" and data["status"] == "completed" and data["model"] == "grok-4.3"
    assert data["id"].startswith("resp_")
    message = data["output"][0]
    assert message["type"] == "message" and message["role"] == "assistant"
    verdict = json.loads(message["content"][0]["text"])
    assert set(verdict) == {"score", "passed", "reason"} and "SIMULATED" in verdict["reason"]
    usage = data["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert usage["input_tokens"] >= 6 * 600  # six low-detail images at 600 tokens each, plus the text
    expected = pricing.judge_usd("grok-4.3", usage["input_tokens"], usage["output_tokens"]).usd
    assert usage["cost_in_usd_ticks"] == pricing.ticks_from_usd(expected)
    j = parse_judgement(data, rubric=DEFAULT_RUBRIC, model="grok-4.3", estimate_usd=estimate_body_cost(body))
    assert j.ok and j.cost_basis == "actual" and 0 < j.cost_usd < j.estimate_usd
    assert sim.simulator.by_key["judge-key"][("judge", 200)] >= 1


def test_a_dark_clip_scores_higher_than_a_bright_one_on_a_dark_night_rubric(sim, clips):
    dark, bright = judged(sim, clips["dark"]), judged(sim, clips["bright"])
    assert dark.score > 0.8 > 0.2 > bright.score
    assert dark.passed is True and bright.passed is False
    assert "dark" in dark.reason and "brightness" in dark.reason
    sunny = "A bright sunny day"
    assert judged(sim, clips["bright"], sunny).score > judged(sim, clips["dark"], sunny).score


def test_motion_stillness_and_colour_are_measured(sim, clips):
    assert judged(sim, clips["moving"], "Fast motion").score > judged(sim, clips["dark"], "Fast motion").score
    assert judged(sim, clips["dark"], "A still, static shot").score > \
        judged(sim, clips["moving"], "A still, static shot").score
    assert judged(sim, clips["colourful"], "Vivid and colourful").score > \
        judged(sim, clips["dark"], "Vivid and colourful").score + 0.3


def test_the_default_rubric_reads_the_prompt_and_else_is_a_stable_middling_score(sim, clips):
    night = judged(sim, clips["dark"], DEFAULT_RUBRIC, prompt="A dark night over the sea")
    assert night.score > 0.8 and "prompt asks for" in night.reason
    plain = judged(sim, clips["dark"], DEFAULT_RUBRIC, prompt="A fox")
    assert 0.3 <= plain.score <= 0.65 and "middling" in plain.reason
    assert judged(sim, clips["dark"], DEFAULT_RUBRIC, prompt="A fox").score == plain.score


def test_answers_are_deterministic(sim, clips):
    body = judge_body("A fox", ["The scene is dark", "Something moves", "A fox"], clips["moving"])
    first, second = post(sim, body).json(), post(sim, body).json()
    assert first["output"][0]["content"] == second["output"][0]["content"]
    assert first["usage"] == second["usage"] and first["id"] != second["id"]


def test_criteria_are_answered_when_the_schema_asks_for_them(sim, clips):
    rubric = ["The scene is dark", "Something is moving", "A fox is visible"]
    j = judged(sim, clips["dark"], rubric)
    assert j.ok and list(j.criteria) == rubric
    assert j.criteria["The scene is dark"] > 0.8 and j.criteria["Something is moving"] < 0.2
    assert j.score == pytest.approx(sum(j.criteria.values()) / 3, abs=1e-3)


def test_storage_must_be_off_when_images_are_sent(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    for store in (True, None):
        sent = {**body, "store": store} if store is not None else {k: v for k, v in body.items() if k != "store"}
        answer = post(sim, sent)
        assert answer.status_code == 400 and "stor" in answer.json()["error"].lower()


def _with_image(body, data: bytes, mime: str):
    content = [dict(c) for c in body["input"][0]["content"]]
    content[0]["image_url"] = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return {**body, "input": [{"role": "user", "content": content}]}


def test_webp_and_other_types_are_refused(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:2])
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), (10, 10, 10)).save(buf, format="WEBP")
    for data, mime in ((buf.getvalue(), "image/webp"), (buf.getvalue(), "image/jpeg"), (b"GIF89a....", "image/gif")):
        answer = post(sim, _with_image(body, data, mime))
        assert answer.status_code == 400, mime
        assert "only JPEG and PNG" in answer.json()["error"] and "input[0].content[0]" in answer.json()["error"]


def test_an_image_that_does_not_decode_is_refused_not_a_server_error(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    for data in (b"\xff\xd8\xff" + bytes(5000), clips["dark"][0].jpeg[:200]):
        answer = post(sim, _with_image(body, data, "image/jpeg"))
        assert answer.status_code == 400 and "could not be decoded" in answer.json()["error"]


@pytest.mark.slow
def test_an_image_over_the_services_20_mib_is_refused(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    huge = b"\xff\xd8\xff" + bytes(20 * 2**20)
    answer = post(sim, _with_image(body, huge, "image/jpeg"))
    assert answer.status_code == 400 and "at most 20 MiB" in answer.json()["error"]


def test_an_image_over_the_size_limit_is_refused(sim, clips, monkeypatch):
    from grok_nb.simulator import judge

    monkeypatch.setattr(judge, "MAX_IMAGE_BYTES", 2**20)  # the server runs in this process: a 1 MiB limit
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    answer = post(sim, _with_image(body, b"\xff\xd8\xff" + bytes(2**20), "image/jpeg"))
    assert answer.status_code == 400 and "the image is 1.0 MiB; images may be at most" in answer.json()["error"]
    assert post(sim, body).status_code == 200


@pytest.mark.parametrize(("change", "status", "words"), [
    ({"model": "grok-9-vision"}, 404, "does not exist"),
    ({"model": "grok-imagine-video"}, 404, "does not exist"),
    ({"input": []}, 422, "input"),
    ({"input": [{"role": "user", "content": [{"type": "input_video", "video_url": "x"}]}]}, 422, "input_video"),
    ({"text": {"format": {"type": "json_schema", "name": "judgement", "strict": True,
                          "schema": {"type": "object", "properties": {"score": {"type": "number"}},
                                     "required": ["score"]}}}}, 400, "additionalProperties"),
    ({"text": {"format": {"type": "json_schema", "name": "judgement", "strict": True,
                          "schema": {"type": "object", "additionalProperties": False,
                                     "properties": {"score": {"type": "number"}, "reason": {"type": "string"}},
                                     "required": ["score"]}}}}, 400, "required"),
    ({"text": {"format": {"type": "json_schema", "name": "a judgement!", "schema": {"type": "object"}}}}, 400,
     "name"),
    ({"text": {"format": {"type": "yaml"}}}, 400, "text.format.type"),
])
def test_requests_the_service_would_refuse_are_refused(sim, clips, change, status, words):
    body = {**judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1]), **change}
    answer = post(sim, body)
    assert answer.status_code == status and words in answer.json()["error"]


def test_the_same_auth_and_error_shapes_as_the_video_routes(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    assert httpx.post(f"{sim.url}/v1/responses", json=body, timeout=30).status_code == 401
    sim.config.error_shape = "nested"
    nested = post(sim, {**body, "store": True})
    assert nested.status_code == 400 and "stor" in nested.json()["error"]["message"].lower()


def test_without_a_schema_the_answer_is_prose_and_fails_closed(sim, clips):
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:2])
    del body["text"]
    j = parse_judgement(post(sim, body).json(), rubric=DEFAULT_RUBRIC, model="grok-4.3", estimate_usd=0.01)
    assert j.score is None and "not JSON" in j.error


@pytest.mark.parametrize("malformed", MALFORMED)
def test_malformed_answer_switches_fail_closed_in_the_client(sim, clips, malformed):
    sim.config.judge_answer = malformed
    j = judged(sim, clips["dark"])
    assert j.score is None and j.passed is None and j.error
    assert j.cost_usd is not None and j.cost_usd > 0  # billed all the same


def test_a_prompt_marker_asks_for_a_malformed_answer(sim, clips):
    j = judged(sim, clips["dark"], prompt="A fox [sim:judge=score_out_of_range]")
    assert j.score is None and "outside 0-1" in j.error


def test_a_reasoning_item_before_the_message_is_read_past(sim, clips):
    sim.config.judge_reasoning_item = True
    body = judge_body("A fox", "A dark night scene", clips["dark"])
    data = post(sim, body).json()
    assert data["output"][0]["type"] == "reasoning"
    assert parse_judgement(data, rubric="A dark night scene", model="grok-4.3", estimate_usd=0.01).score > 0.8


def test_a_burst_of_429s_with_retry_after_then_answers(sim, clips):
    sim.config.judge_burst_429 = 2
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    for _ in range(2):
        refused = post(sim, body)
        assert refused.status_code == 429 and float(refused.headers["retry-after"]) > 0
    assert post(sim, body).status_code == 200


def test_the_judge_has_its_own_rate_limit_per_key_and_model(sim, clips):
    sim.config.judge_rate_limit = 0.1 / sim.config.speed  # one request per ten wall seconds: the bucket holds two
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    statuses = [post(sim, body).status_code for _ in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    assert post(sim, {**body, "model": "grok-4.6"}).status_code == 200  # another model: another bucket
    listing = httpx.get(f"{sim.url}/v1/video-generation-models", headers=AUTH, timeout=30)
    assert listing.status_code == 200  # the video models' bucket is untouched


def test_a_judge_is_billed_against_the_teams_credits(sim, clips):
    sim.config.credits_usd = sim.simulator.spent_usd + 1e-6
    body = judge_body("A fox", DEFAULT_RUBRIC, clips["dark"][:1])
    assert post(sim, body).status_code == 200
    refused = post(sim, body)
    assert refused.status_code == 429 and "credits" in refused.json()["error"]


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=16)


@pytest.mark.parametrize("where", ["body", "input", "message", "content", "item", "text", "format", "schema",
                                   "properties", "required", "store"])
@settings(max_examples=60, deadline=None)
@given(junk=JSON)
def test_a_junk_body_is_refused_never_a_crash(junk, where):
    """The service answers a 4xx for any body it cannot take; the simulator never fails with a 500 instead."""
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}
    schema = {"type": "object", "additionalProperties": False, "required": ["score"],
              "properties": {"score": {"type": "number"}}}
    fmt = {"type": "json_schema", "name": "judgement", "strict": True, "schema": schema}
    message = {"role": "user", "content": [{"type": "input_text", "text": "t"}]}
    body = {"model": "grok-4.3", "store": False, "input": [message], "text": {"format": fmt}}
    if where == "body":
        body = junk
    elif where == "input":
        body["input"] = junk
    elif where == "message":
        body["input"] = [junk]
    elif where == "content":
        message["content"] = junk
    elif where == "item":
        message["content"] = [junk, image]
    elif where == "text":
        body["text"] = junk
    elif where == "format":
        body["text"] = {"format": junk}
    elif where == "schema":
        fmt["schema"] = junk
    elif where == "properties":
        schema["properties"] = junk
    elif where == "required":
        schema["required"] = junk
    else:
        body["store"] = junk
    try:
        read_request(body)
    except ApiRefusal as refusal:
        assert 400 <= refusal.status < 500 and refusal.message
