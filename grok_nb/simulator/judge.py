"""The simulated vision judge: ``POST /v1/responses`` checked as the contract says and answered from the frames sent.

No model is asked. The frames are decoded and measured (brightness, colourfulness, change between
frames); the rubric's words that name something measurable (dark, night, bright, colourful, grey,
moving, still, ...) are scored against those measures, and the answer says it is SIMULATED and what it
saw. A rubric that names nothing measurable is read through the video's prompt, and failing that gets a
stable middling score. Same frames and text, same answer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import re
import time
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..api import pricing
from ..api.media import sniff_image_type
from .state import ApiRefusal

#: The models that answer here: the judge models of the price table.
JUDGE_MODELS = tuple(pricing.JUDGE_PRICES)
#: The service's documented limit per image (decoded bytes).
MAX_IMAGE_BYTES = 20 * 2**20
DETAILS = ("auto", "low", "high")
#: Tokens the simulator bills per image by detail (below the client's conservative estimate, as a real bill should
#: be); ``auto`` is ``low`` for an image at most 512 px a side, else ``high``.
IMAGE_TOKENS = {"low": 600, "high": 1_500}
#: Malformed answers a test can ask for (``SimulatorConfig.judge_answer`` or ``[sim:judge=<name>]`` in the text).
MALFORMED = ("not_json", "score_out_of_range", "missing_field", "extra_key", "no_output", "refusal")
_MARKER = re.compile(r"\[sim:judge=([a-z_]+)\]")
_SCHEMA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PROMPT = re.compile(r"<prompt>\n(.*?)\n</prompt>", re.DOTALL)
_RUBRIC = re.compile(r"\nRubric[^\n]*:\n(.*?)(?:\n\nAnswer in JSON|\Z)", re.DOTALL)

#: Words a rubric can use for something the simulator measures: (measure, True when more of it scores higher).
WORDS: dict[str, tuple[str, bool]] = {
    **dict.fromkeys(("dark", "darker", "night", "nighttime", "dim", "gloomy", "shadowy"), ("brightness", False)),
    **dict.fromkeys(("bright", "brighter", "sunny", "daylight", "daytime", "sunlit"), ("brightness", True)),
    **dict.fromkeys(("colourful", "colorful", "vivid", "vibrant", "saturated"), ("colour", True)),
    **dict.fromkeys(("grey", "gray", "monochrome", "muted", "colourless", "colorless"), ("colour", False)),
    **dict.fromkeys(("motion", "moving", "moves", "movement", "fast", "dynamic"), ("change", True)),
    **dict.fromkeys(("still", "static", "calm", "motionless", "frozen"), ("change", False)),
}
_WORD = re.compile(r"[a-z]+")


@dataclass
class JudgeCall:
    """A checked ``/v1/responses`` request: its model, images (bytes, detail), text and answer format."""

    model: str
    images: list[tuple[bytes, str]] = field(default_factory=list)
    text: str = ""
    schema: dict[str, Any] | None = None  # a json_schema format's schema; None: answer in prose
    criteria: tuple[str, ...] = ()


def _refuse(message: str, status: int = 400, code: str = "invalid-argument") -> ApiRefusal:
    return ApiRefusal(status, code, message)


def read_request(body: Any) -> JudgeCall:
    """Check a body like the service does: model, ``store``, ``input``'s shape, the images, ``text.format``."""
    if not isinstance(body, dict):
        raise _refuse("The body must be a JSON object.", 422)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _refuse("model is required: the name of a model, such as grok-4.3.", 422)
    if model not in JUDGE_MODELS:
        raise _refuse(f"The model {model} does not exist or your team does not have access to it.", 404, "not-found")
    call = JudgeCall(model=model)
    _read_input(body.get("input"), call)
    if call.images and body.get("store", True) is not False:
        raise _refuse("Storing a response whose input has images is not supported: send \"store\": false "
                      "(storage of conversation history with images is unavailable).")
    if "store" in body and not isinstance(body["store"], bool):
        raise _refuse("store must be true or false.")
    _read_format(body.get("text"), call)
    return call


def _read_input(value: Any, call: JudgeCall) -> None:
    if isinstance(value, str) and value:
        call.text = value
        return
    if not isinstance(value, list) or not value:
        raise _refuse("input must be a non-empty string or a list of messages.", 422)
    texts: list[str] = []
    for m, message in enumerate(value):
        where = f"input[{m}]"
        if not isinstance(message, dict) or message.get("role") not in ("user", "system", "developer"):
            raise _refuse(f"{where} must be a message with role user, system or developer.", 422)
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        if not isinstance(content, list) or not content:
            raise _refuse(f"{where}.content must be a string or a non-empty list of content items.", 422)
        for c, item in enumerate(content):
            at = f"{where}.content[{c}]"
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "input_text":
                if not isinstance(item.get("text"), str):
                    raise _refuse(f"{at}.text must be a string.", 422)
                texts.append(item["text"])
            elif kind == "input_image":
                call.images.append(_image(item, at))
            else:
                raise _refuse(f"{at}.type {kind!r} is not supported here: use input_text or input_image.", 422)
    call.text = "\n\n".join(texts)


def _image(item: dict[str, Any], at: str) -> tuple[bytes, str]:
    detail = item.get("detail", "auto")
    if detail not in DETAILS:
        raise _refuse(f"{at}.detail must be auto, low or high, not {str(detail)[:20]!r}.")
    url = item.get("image_url")
    if isinstance(url, dict):
        url = url.get("url")
    if not isinstance(url, str) or not url:
        raise _refuse(f"{at}.image_url must be a data: URI or an https URL of a JPEG or PNG image.", 422)
    if not url.startswith("data:"):
        raise _refuse(f"{at}.image_url: the simulator fetches no image URLs; send the image inline as a data: URI.")
    header, _, payload = url.partition(",")
    declared = header[len("data:"):].split(";")[0].lower()
    if declared not in ("image/jpeg", "image/png"):
        raise _refuse(f"{at}: unsupported image type {declared[:40] or 'unknown'}; only JPEG and PNG images are "
                      "accepted.")
    try:
        data = base64.b64decode(payload, validate=True) if header.endswith(";base64") else b""
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise _refuse(f"{at}.image_url is not a base64 data: URI of an image.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _refuse(f"{at}: the image is {len(data) / 2**20:.1f} MiB; images may be at most "
                      f"{MAX_IMAGE_BYTES // 2**20} MiB.")
    mime = sniff_image_type(data)
    if mime not in ("image/jpeg", "image/png"):
        raise _refuse(f"{at}: unsupported image type {mime or 'unknown'}; only JPEG and PNG images are accepted.")
    _decodes(data, at)
    return data, detail


def _decodes(data: bytes, at: str) -> None:
    """Refuse an image that does not decode whole (the service cannot look at it)."""
    from PIL import Image  # Pillow, a heavy import: loaded only when a judge is asked

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                im.load()
    except Exception as exc:  # Pillow raises many types on a bad image; each one is the sender's problem
        raise _refuse(f"{at}: the image could not be decoded ({type(exc).__name__}).") from None


def _read_format(text: Any, call: JudgeCall) -> None:
    if text is None:
        return
    if not isinstance(text, dict):
        raise _refuse("text must be an object such as {\"format\": {...}}.", 422)
    fmt = text.get("format")
    if fmt is None:
        return
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind in ("text", "json_object"):
        return
    if kind != "json_schema":
        raise _refuse("text.format.type must be text, json_object or json_schema.")
    assert isinstance(fmt, dict)
    name, schema, strict = fmt.get("name"), fmt.get("schema"), fmt.get("strict", False)
    if not isinstance(name, str) or not _SCHEMA_NAME.fullmatch(name):
        raise _refuse("text.format.name must be 1 to 64 letters, digits, underscores or dashes.")
    if not isinstance(strict, bool):
        raise _refuse("text.format.strict must be true or false.")
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise _refuse(f"Invalid schema for response format {name!r}: the root must be an object schema.")
    if strict:
        _check_strict(schema, name, "root")
    call.schema = schema
    properties = schema.get("properties")
    criteria = properties.get("criteria") if isinstance(properties, dict) else None
    if isinstance(criteria, dict) and isinstance(criteria.get("properties"), dict):
        call.criteria = tuple(str(k) for k in criteria["properties"])


def _check_strict(schema: dict[str, Any], name: str, where: str) -> None:
    """Strict structured output: every object closed (additionalProperties false) and all its properties required."""
    if schema.get("type") != "object":
        return
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        raise _refuse(f"Invalid schema for response format {name!r}: {where} must list its properties.")
    if schema.get("additionalProperties") is not False:
        raise _refuse(f"Invalid schema for response format {name!r}: in {where}, 'additionalProperties' must be "
                      "supplied and false for strict output.")
    required = schema.get("required")
    if not isinstance(required, list) or not all(isinstance(k, str) for k in required) or \
            sorted(required) != sorted(properties):
        raise _refuse(f"Invalid schema for response format {name!r}: in {where}, 'required' must list every "
                      "property for strict output.")
    for key, sub in properties.items():
        if isinstance(sub, dict):
            _check_strict(sub, name, f"{where}.{key}")


# -- what the frames show --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Seen:
    """Measures of the frames, each from 0 to 1."""

    brightness: float
    colour: float
    change: float
    frames: int


def measure(images: list[bytes]) -> Seen:
    """Mean brightness, colourfulness (Hasler and Süsstrunk's measure / 100) and mean change between frames."""
    import numpy as np  # numpy and Pillow, heavy imports: loaded only when a judge is asked
    from PIL import Image

    if not images:
        return Seen(0.5, 0.0, 0.0, 0)
    arrays = []
    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            arrays.append(np.asarray(im.convert("RGB").resize((64, 36)), dtype=float) / 255.0)
    stack = np.stack(arrays)
    r, g, b = stack[..., 0], stack[..., 1], stack[..., 2]
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    rg, yb = (r - g) * 255, (0.5 * (r + g) - b) * 255
    colourful = [math.hypot(rg[i].std(), yb[i].std()) + 0.3 * math.hypot(rg[i].mean(), yb[i].mean())
                 for i in range(len(arrays))]
    change = float(np.abs(np.diff(luma, axis=0)).mean()) if len(arrays) > 1 else 0.0
    return Seen(brightness=round(float(luma.mean()), 4), colour=round(min(1.0, float(np.mean(colourful)) / 100), 4),
                change=round(min(1.0, 5 * change), 4), frames=len(arrays))


def _value(seen: Seen, measure_name: str, more: bool) -> float:
    value = float(getattr(seen, measure_name))
    return value if more else 1.0 - value


def score_text(text: str, seen: Seen) -> tuple[float | None, list[str]]:
    """The mean of the measures the text's words name (None when it names none), and what each word scored."""
    found = list(dict.fromkeys(w for w in _WORD.findall(text.lower()) if w in WORDS))
    if not found:
        return None, []
    values = [_value(seen, *WORDS[w]) for w in found]
    return sum(values) / len(values), [f"{w} {v:.2f}" for w, v in zip(found, values, strict=True)]


def _middling(text: str, seen: Seen) -> float:
    """A stable score for a text that names nothing measurable: from a hash of it, nudged by the colourfulness."""
    unit = int(hashlib.sha256(text.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF
    return 0.45 + 0.2 * (unit - 0.5) + 0.1 * (seen.colour - 0.5)


def verdict(call: JudgeCall, seen: Seen) -> dict[str, Any]:
    """The judgement the simulator gives: score, passed, reason (and criteria when the schema asks for them)."""
    rubric_match = _RUBRIC.search(call.text)
    rubric = rubric_match.group(1) if rubric_match else call.text
    prompt_match = _PROMPT.search(call.text)
    prompt = prompt_match.group(1) if prompt_match else ""
    saw = (f"SIMULATED judge (no model was asked): over {seen.frames} frame{'s' if seen.frames != 1 else ''}, "
           f"brightness {seen.brightness:.2f}, colourfulness {seen.colour:.2f}, change between frames "
           f"{seen.change:.2f}")
    answer: dict[str, Any] = {}
    if call.criteria:
        scores: dict[str, float] = {}
        notes = []
        for criterion in call.criteria:
            value, words = score_text(criterion, seen)
            scores[criterion] = round(value if value is not None else _middling(criterion, seen), 3)
            notes.append(f"{criterion!r} {scores[criterion]:.2f}" + (f" ({', '.join(words)})" if words else ""))
        score = round(sum(scores.values()) / len(scores), 3)
        reason = f"{saw}; criteria: {'; '.join(notes)}."
        answer["criteria"] = scores
    else:
        value, words = score_text(rubric, seen)
        source = "the rubric"
        if value is None and prompt:
            value, words = score_text(prompt, seen)
            source = "the prompt"
        if value is None:
            score = round(_middling(rubric + "\n" + prompt, seen), 3)
            reason = f"{saw}; the rubric names nothing measurable here: a stable middling score."
        else:
            score = round(value, 3)
            reason = f"{saw}; {source} asks for {', '.join(words)}."
    return {"score": score, "passed": score >= 0.5, "reason": reason, **answer}


def _tokens(images: list[tuple[bytes, str]]) -> int:
    from PIL import Image  # Pillow, a heavy import: loaded only when a judge is asked

    total = 0
    for data, detail in images:
        if detail == "auto":
            with Image.open(io.BytesIO(data)) as im:
                detail = "low" if max(im.size) <= 512 else "high"
        total += IMAGE_TOKENS[detail]
    return total


def answer(call: JudgeCall, malformed: str | None = None, reasoning: bool = False) -> dict[str, Any]:
    """The ``/v1/responses`` answer to a checked call (``malformed``: one of MALFORMED, for fail-closed tests)."""
    marker = _MARKER.search(call.text)
    if marker and marker.group(1) in MALFORMED:
        malformed = marker.group(1)
    seen = measure([data for data, _ in call.images])
    judged = verdict(call, seen)
    if malformed == "score_out_of_range":
        judged["score"] = 7
    elif malformed == "missing_field":
        del judged["passed"]
    elif malformed == "extra_key":
        judged["confidence"] = 0.9
    if call.schema is None or malformed == "not_json":
        text = f"{judged['reason']} I would give it {judged.get('score', 0.5) * 10:.0f} out of 10."
    else:
        text = json.dumps(judged)
    content: list[dict[str, Any]] = [{"type": "output_text", "text": text, "annotations": []}]
    if malformed == "refusal":
        content = [{"type": "refusal", "refusal": "SIMULATED refusal: I cannot judge these images."}]
    output: list[dict[str, Any]] = []
    reasoning_tokens = 0
    if reasoning:
        output.append({"type": "reasoning", "id": f"rs_{uuid.uuid4().hex}", "summary": []})
        reasoning_tokens = 64
    if malformed != "no_output":
        output.append({"type": "message", "id": f"msg_{uuid.uuid4().hex}", "status": "completed",
                       "role": "assistant", "content": content})
    input_tokens = _tokens(call.images) + math.ceil(len(call.text) / 4) + 20
    output_tokens = math.ceil(len(text) / 4) + reasoning_tokens
    cost = pricing.judge_usd(call.model, input_tokens, output_tokens).usd
    return {"id": f"resp_{uuid.uuid4().hex}", "object": "response", "created_at": int(time.time()),
            "model": call.model, "status": "completed", "store": False, "output": output,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
                      "total_tokens": input_tokens + output_tokens,
                      "cost_in_usd_ticks": pricing.ticks_from_usd(cost)}}
