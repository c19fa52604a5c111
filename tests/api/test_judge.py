"""The judge call's pure parts: the contract's body exactly, checks before sending, a fail-closed parse, the cost
rule, the estimate and the cache key."""

from __future__ import annotations

import base64
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from grok_nb.api import pricing
from grok_nb.api.frames import Frame
from grok_nb.api.judge import (
    DEFAULT_RUBRIC,
    MAX_IMAGE_BYTES,
    Judgement,
    estimate_body_cost,
    estimate_judge_cost,
    judge_body,
    judge_text,
    judgement_key,
    judgement_schema,
    parse_judgement,
)
from grok_nb.errors import JudgeError, ValidationError

#: The body of /work/shared/xai-judge-api.md, as written there (placeholders in angle brackets).
CONTRACT = """{"model": "grok-4.3",
 "store": false,
 "input": [{"role": "user", "content": [
     {"type": "input_image", "image_url": "data:image/jpeg;base64,<1>", "detail": "low"},
     {"type": "input_image", "image_url": "data:image/jpeg;base64,<2>", "detail": "low"},
     {"type": "input_text", "text": "<rubric, the video's prompt, how the frames were sampled>"}]}],
 "text": {"format": {"type": "json_schema", "name": "judgement", "strict": true,
          "schema": {"type": "object", "additionalProperties": false,
                     "required": ["score", "passed", "reason"],
                     "properties": {"score": {"type": "number", "minimum": 0, "maximum": 1},
                                    "passed": {"type": "boolean"},
                                    "reason": {"type": "string"}}}}}}"""


def jpeg(colour=(40, 40, 60), size=(96, 54), fmt="JPEG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format=fmt)
    return buf.getvalue()


FRAMES = [Frame(0.5, jpeg((10, 10, 10)), 96, 54), Frame(1.5, jpeg((200, 200, 200)), 96, 54)]


def test_the_body_is_the_contracts_byte_for_byte():
    body = judge_body("A fox in the snow", DEFAULT_RUBRIC, FRAMES, model="grok-4.3", detail="low")
    text = judge_text("A fox in the snow", DEFAULT_RUBRIC, FRAMES)
    expected = (CONTRACT.replace("<1>", base64.b64encode(FRAMES[0].jpeg).decode())
                .replace("<2>", base64.b64encode(FRAMES[1].jpeg).decode())
                .replace('"<rubric, the video\'s prompt, how the frames were sampled>"', json.dumps(text)))
    assert json.dumps(body) == json.dumps(json.loads(expected))
    # the text says what the judge needs: how the frames were sampled, the prompt, the rubric
    assert "2 frames sampled evenly" in text and "0.50 s, 1.50 s" in text and "96×54" in text
    assert "A fox in the snow" in text and DEFAULT_RUBRIC in text


def test_a_list_rubric_asks_for_one_required_score_per_criterion():
    criteria = ["The fox is visible", "It is snowing"]
    body = judge_body("A fox", criteria, FRAMES)
    schema = body["text"]["format"]["schema"]
    assert schema["required"] == ["score", "passed", "reason", "criteria"]
    assert schema["properties"]["criteria"] == {
        "type": "object", "additionalProperties": False, "required": criteria,
        "properties": {c: {"type": "number", "minimum": 0, "maximum": 1} for c in criteria}}
    text = body["input"][0]["content"][-1]["text"]
    assert all(f"- {c}" in text for c in criteria)


def test_png_and_raw_bytes_are_sent_with_their_type():
    body = judge_body("x", "rubric", [jpeg(fmt="PNG"), FRAMES[0]], detail="high")
    images = [c for c in body["input"][0]["content"] if c["type"] == "input_image"]
    assert images[0]["image_url"].startswith("data:image/png;base64,")
    assert images[1]["image_url"].startswith("data:image/jpeg;base64,") and images[1]["detail"] == "high"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"frames": []}, "frames"),
    ({"frames": [jpeg(fmt="WEBP")]}, "frames[0]"),
    ({"frames": [FRAMES[0], b"GIF89a not allowed"]}, "frames[1]"),
    ({"frames": ["data:image/jpeg;base64,..."]}, "frames[0]"),
    ({"frames": [b"\xff\xd8\xff" + b"\0" * (MAX_IMAGE_BYTES + 1)]}, "frames[0]"),
    ({"detail": "medium"}, "detail"),
    ({"model": ""}, "model"),
    ({"rubric": ""}, "rubric"),
    ({"rubric": []}, "rubric"),
    ({"rubric": ["ok", "ok"]}, "rubric[1]"),
    ({"rubric": ["ok", 3]}, "rubric[1]"),
    ({"rubric": {"a": 1}}, "rubric"),
    ({"prompt": None}, "prompt"),
])
def test_bad_input_is_refused_by_name_before_sending(kwargs, field):
    args = {"prompt": "A fox", "rubric": DEFAULT_RUBRIC, "frames": FRAMES, **kwargs}
    with pytest.raises(ValidationError) as err:
        judge_body(args.pop("prompt"), args.pop("rubric"), args.pop("frames"), **args)
    assert err.value.field == field


def test_webp_is_refused_as_webp():
    with pytest.raises(ValidationError, match="JPEG or PNG"):
        judge_body("x", "r", [jpeg(fmt="WEBP")])


def test_the_base64_growth_counts_against_the_request_cap(monkeypatch):
    from grok_nb.api import judge

    # 4 images of 3 MB each are 12 MB raw, 16 MB in base64: over a 15 MB cap although the raw bytes are under it
    frame = b"\xff\xd8\xff" + b"\0" * 3_000_000
    monkeypatch.setattr(judge, "MAX_REQUEST_BYTES", 15_000_000)
    with pytest.raises(ValidationError) as err:
        judge_body("x", "r", [frame] * 4)
    assert err.value.field == "frames" and "base64" in str(err.value) and "fewer frames" in str(err.value)
    judge_body("x", "r", [frame] * 3)  # 12 MB in base64: fits


# -- parsing, fail closed ------------------------------------------------------------------------------
def answer(text, *, reasoning=False, ticks=12_345_678, extra=None):
    output = [{"type": "reasoning", "id": "rs_1", "summary": []}] if reasoning else []
    output.append({"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": text}]})
    body = {"id": "resp_abc", "object": "response", "model": "grok-4.3", "status": "completed", "output": output,
            "usage": {"input_tokens": 7000, "output_tokens": 80, "total_tokens": 7080, "cost_in_usd_ticks": ticks}}
    return {**body, **(extra or {})}


GOOD = {"score": 0.8, "passed": True, "reason": "A fox in snow, clearly."}


def parse(value, rubric=DEFAULT_RUBRIC, **kw):
    return parse_judgement(value, rubric=rubric, model="grok-4.3", estimate_usd=0.01, **kw)


def test_a_valid_answer_is_a_judgement():
    j = parse(answer(json.dumps(GOOD)), run_id="run-1", frames=6, key="k1")
    assert (j.score, j.passed, j.reason, j.criteria, j.error) == (0.8, True, "A fox in snow, clearly.", {}, None)
    assert j.ok and j.raise_for_error() is j
    assert j.request_id == "resp_abc" and j.model == "grok-4.3" and j.run_id == "run-1" and j.key == "k1"
    assert j.cost_usd == pytest.approx(0.0012345678) and j.cost_basis == "actual" and j.estimate_usd == 0.01


def test_the_text_is_read_after_a_reasoning_item_and_from_json_text():
    j = parse(json.dumps(answer(json.dumps({**GOOD, "score": 1}), reasoning=True)))
    assert j.ok and j.score == 1.0 and isinstance(j.score, float)


def test_criteria_are_read_when_the_rubric_is_a_list():
    rubric = ["fox", "snow"]
    j = parse(answer(json.dumps({**GOOD, "criteria": {"fox": 1, "snow": 0.25}})), rubric=rubric)
    assert j.ok and j.criteria == {"fox": 1.0, "snow": 0.25} and j.rubric == ("fox", "snow")


BAD_VERDICTS = {
    "score missing": ({"passed": True, "reason": "r"}, "missing 'score'"),
    "score a string": ({**GOOD, "score": "0.8"}, "score is not a number"),
    "score a bool": ({**GOOD, "score": True}, "score is not a number"),
    "score null": ({**GOOD, "score": None}, "score is not a number"),
    "score NaN": ('{"score": NaN, "passed": true, "reason": "r"}', "not a finite number"),
    "score Infinity": ('{"score": Infinity, "passed": true, "reason": "r"}', "not a finite number"),
    "score above 1": ({**GOOD, "score": 1.5}, "outside 0-1"),
    "score on a 10 scale": ({**GOOD, "score": 8}, "outside 0-1"),
    "score below 0": ({**GOOD, "score": -0.1}, "outside 0-1"),
    "passed a string": ({**GOOD, "passed": "yes"}, "passed is not true or false"),
    "passed a number": ({**GOOD, "passed": 1}, "passed is not true or false"),
    "passed missing": ({"score": 0.5, "reason": "r"}, "missing 'passed'"),
    "reason not a text": ({**GOOD, "reason": None}, "reason is not a text"),
    "reason missing": ({"score": 0.5, "passed": False}, "missing 'reason'"),
    "extra key": ({**GOOD, "confidence": 0.9}, "unexpected keys"),
    "criteria when none were asked": ({**GOOD, "criteria": {}}, "unexpected keys"),
    "not JSON": ("It looks great, 8/10.", "not JSON"),
    "JSON in a code fence": ("```json\n" + json.dumps(GOOD) + "\n```", "not JSON"),
    "a JSON list": ("[0.8, true, \"r\"]", "not an object"),
    "empty text": ("", "not JSON"),
}


@pytest.mark.parametrize("case", BAD_VERDICTS)
def test_every_malformed_verdict_fails_closed(case):
    verdict, why = BAD_VERDICTS[case]
    text = verdict if isinstance(verdict, str) else json.dumps(verdict)
    j = parse(answer(text))
    assert j.score is None and j.passed is None and not j.ok
    assert why in j.error
    assert j.request_id == "resp_abc" and j.cost_usd == pytest.approx(0.0012345678)  # billed all the same
    with pytest.raises(JudgeError) as err:
        j.raise_for_error()
    assert err.value.request_id == "resp_abc" and why in str(err.value) and err.value.judgement is j


BAD_CRITERIA = {
    "criteria missing": (GOOD, "missing 'criteria'"),
    "criteria not an object": ({**GOOD, "criteria": [1, 1]}, "criteria is not an object"),
    "a criterion missing": ({**GOOD, "criteria": {"fox": 1}}, "missing 'snow' in criteria"),
    "an unknown criterion": ({**GOOD, "criteria": {"fox": 1, "snow": 1, "sky": 1}}, "unexpected keys in criteria: 'sky'"),
    "a criterion out of range": ({**GOOD, "criteria": {"fox": 1, "snow": 2}}, "criteria['snow'] 2 is outside 0-1"),
    "a criterion not a number": ({**GOOD, "criteria": {"fox": 1, "snow": "high"}}, "is not a number"),
}


@pytest.mark.parametrize("case", BAD_CRITERIA)
def test_every_malformed_criteria_fails_closed(case):
    verdict, why = BAD_CRITERIA[case]
    j = parse(answer(json.dumps(verdict)), rubric=["fox", "snow"])
    assert j.score is None and j.passed is None and why in j.error


BAD_ANSWERS = {
    "no output": ({"id": "resp_abc", "status": "completed", "output": []}, "no output"),
    "output missing": ({"id": "resp_abc", "status": "completed"}, "no output"),
    "only reasoning": ({"id": "resp_abc", "output": [{"type": "reasoning", "summary": []}]}, "no output_text"),
    "text not a string": ({"id": "resp_abc", "output": [{"type": "message", "content": [
        {"type": "output_text", "text": None}]}]}, "holds no text"),
    "a refusal": ({"id": "resp_abc", "output": [{"type": "message", "content": [
        {"type": "refusal", "refusal": "I can't"}]}]}, "refused"),
    "incomplete": ({"id": "resp_abc", "status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"},
                    "output": []}, "'incomplete' (max_output_tokens)"),
    "an error": ({"id": "resp_abc", "error": {"message": "boom"}, "output": []}, "reports an error: boom"),
    "a list": ([GOOD], "not a JSON object"),
    "None": (None, "not a JSON object"),
    "not JSON at all": ("<html>bad gateway</html>", "not a JSON object"),
}


@pytest.mark.parametrize("case", BAD_ANSWERS)
def test_every_malformed_answer_fails_closed(case):
    value, why = BAD_ANSWERS[case]
    j = parse(value)
    assert j.score is None and j.passed is None and why in j.error
    assert j.cost_usd == 0.01 and j.cost_basis.startswith("estimate")  # no figure: the estimate counts


@pytest.mark.parametrize(("ticks", "basis"), [
    (-5_000_000, "negative"), (10**12, "over 10x"), (None, "no cost reported"), ("lots", "not a number"),
    (float("nan"), "not a number"),
])
def test_a_wrong_cost_never_loosens_the_budget(ticks, basis):
    j = parse(answer(json.dumps(GOOD), ticks=ticks))
    assert j.ok and j.cost_usd == 0.01 and basis in j.cost_basis


def test_the_cost_rule_is_the_videos_one():
    from grok_nb.jobs import lifecycle

    assert lifecycle.cost_problem is pricing.cost_problem


# -- price and key -------------------------------------------------------------------------------------
def test_the_estimate_is_conservative_and_says_why():
    usd = estimate_judge_cost("grok-4.3", 6, "low", 900)
    # 6 × 1,000 image tokens + 300 text + 200 overhead at $1.25/M, 300 output tokens at $2.50/M
    assert usd == pytest.approx((6000 + 300 + 200) * 1.25e-6 + 300 * 2.5e-6)
    assert estimate_judge_cost("grok-4.3", FRAMES, "high", 0) > estimate_judge_cost("grok-4.3", FRAMES, "low", 0)
    assert estimate_judge_cost("grok-4.6", 6, "low", 900) > usd  # dearer model
    estimate = pricing.judge_estimate("grok-4.3", images=6, detail="low", text_chars=900)
    assert not estimate.exact and "1,000 per 'low' image" in str(estimate)


def test_an_unknown_judge_model_is_priced_at_the_dearest_rate_with_a_note():
    unknown = pricing.judge_estimate("grok-9-vision", images=6, detail="low", text_chars=900)
    dearest = pricing.judge_estimate("grok-4.7", images=6, detail="low", text_chars=900)
    assert unknown.usd == dearest.usd and "price unknown for judge model 'grok-9-vision'" in str(unknown)
    assert pricing.JUDGE_PRICES["grok-4.3"]["input_per_mtok"].as_of == pricing.PRICES_AS_OF == "2026-09-29"


def test_the_estimate_of_a_body():
    body = judge_body("A fox", DEFAULT_RUBRIC, FRAMES, model="grok-4.6", detail="high")
    text = body["input"][0]["content"][-1]["text"]
    assert estimate_body_cost(body) == estimate_judge_cost("grok-4.6", 2, "high", len(text))


def test_the_simulators_bill_for_a_judge_is_below_the_estimate():
    # what a call like the estimate's costs at the table's rates with fewer image tokens
    assert pricing.judge_usd("grok-4.3", 6 * 600 + 400, 60).usd < estimate_judge_cost("grok-4.3", 6, "low", 1200)


def test_the_cache_key_is_stable_and_changes_with_each_input():
    sha = "ab" * 32
    key = judgement_key(sha, DEFAULT_RUBRIC, "grok-4.3", 6, "low")
    assert key == judgement_key(sha.upper(), DEFAULT_RUBRIC + "  ", "grok-4.3", 6, "low") and len(key) == 64
    others = {judgement_key("cd" * 32, DEFAULT_RUBRIC, "grok-4.3", 6, "low"),
              judgement_key(sha, "Is it dark?", "grok-4.3", 6, "low"),
              judgement_key(sha, DEFAULT_RUBRIC, "grok-4.6", 6, "low"),
              judgement_key(sha, DEFAULT_RUBRIC, "grok-4.3", 8, "low"),
              judgement_key(sha, DEFAULT_RUBRIC, "grok-4.3", 6, "high"),
              judgement_key(sha, DEFAULT_RUBRIC, "grok-4.3", 6, "low", width=512),
              judgement_key(sha, DEFAULT_RUBRIC, "grok-4.3", 6, "low", prompt="A fox"),
              judgement_key(sha, ["Is it dark?"], "grok-4.3", 6, "low")}
    assert key not in others and len(others) == 8
    assert judgement_key(sha, ["Is it dark?"], "grok-4.3", 6, "low") != judgement_key(sha, "Is it dark?", "grok-4.3",
                                                                                      6, "low")
    with pytest.raises(ValidationError, match="video_sha256"):
        judgement_key("", DEFAULT_RUBRIC, "grok-4.3", 6, "low")


def test_schema_and_judgement_defaults():
    assert judgement_schema()["required"] == ["score", "passed", "reason"]
    failed = Judgement(None, None, "", error="why")
    assert not failed.ok
    with pytest.raises(JudgeError, match="why"):
        failed.raise_for_error()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)


@settings(max_examples=100, deadline=None)
@given(junk=JSON, where=st.sampled_from(["answer", "output", "item", "content", "part", "text", "verdict", "usage"]))
def test_no_answer_makes_the_parse_raise_or_pass_junk_as_a_score(junk, where):
    """Whatever comes back, the parse returns a Judgement: a valid one only when the verdict is well formed."""
    part = {"type": "output_text", "text": json.dumps(GOOD)}
    item = {"type": "message", "content": [part]}
    body = {"id": "resp_x", "status": "completed", "output": [item], "usage": {"cost_in_usd_ticks": 10**6}}
    if where == "answer":
        body = junk
    elif where == "output":
        body["output"] = junk
    elif where == "item":
        body["output"] = [junk, item] if junk != item else [junk]
    elif where == "content":
        item["content"] = junk
    elif where == "part":
        item["content"] = [junk]
    elif where == "text":
        part["text"] = junk
    elif where == "verdict":
        part["text"] = json.dumps(junk)
    else:
        body["usage"] = junk
    j = parse(body, rubric=["fox"] if where == "verdict" else DEFAULT_RUBRIC)
    assert isinstance(j, Judgement)
    if j.ok:
        assert isinstance(j.score, float) and 0 <= j.score <= 1 and isinstance(j.passed, bool)
    else:
        assert j.score is None and j.passed is None and j.error
    assert j.cost_usd is not None and 0 <= j.cost_usd < 1
