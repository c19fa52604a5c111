"""A Grok vision model as a judge of videos: the request body, its price, its cache key and a fail-closed parse.

Pure: nothing here sends or reads anything. The call is ``POST /v1/responses`` with sampled frames as
``input_image`` items (there is no video input), ``store: false`` (the docs advise it when sending
images), and a strict JSON schema in ``text.format`` so that the answer is ``{"score", "passed",
"reason"}`` (plus ``criteria`` when the rubric is a list). An answer that is not exactly that is a
failed judgement, never a score: :func:`parse_judgement` returns a :class:`Judgement` whose ``error``
says why (``Judgement.raise_for_error()`` raises :class:`~grok_nb.errors.JudgeError` for callers who
prefer an exception).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import JudgeError, ValidationError, redact, shown_value
from .frames import Frame
from .media import sniff_image_type
from .pricing import cost_problem, judge_estimate, usd_from_ticks
from .refs import check_text

DEFAULT_MODEL = "grok-4.3"
DETAILS = ("auto", "low", "high")
#: The judge models take JPEG and PNG (not WebP).
IMAGE_TYPES = ("image/jpeg", "image/png")
#: Per image, before base64: the docs allow 20 MiB (older pages 10 MiB); a judged frame is far smaller.
MAX_IMAGE_BYTES = 5 * 2**20
#: The whole JSON body, base64 included: one request is capped near 25 MB; stay well under it.
MAX_REQUEST_BYTES = 20_000_000
MAX_CRITERIA = 20
MAX_CRITERION_CHARS = 200
#: Changes whenever the body's wording or schema changes, so that cached judgements of another body are not reused.
BODY_VERSION = 1
SCHEMA_NAME = "judgement"
#: Asks how well a video shows its own prompt.
DEFAULT_RUBRIC = ("How well does the video show what its prompt asks for: the subjects, the setting, what "
                  "happens and the style? 1 when all of it is clearly there, 0.5 when only part of it is, 0 when "
                  "the video shows something else. Passed when someone reading the prompt would recognise it.")

#: A rubric: one text, or a list of criteria each scored from 0 to 1.
Rubric = str | Sequence[str]
FrameLike = Frame | bytes

_SCORE = {"type": "number", "minimum": 0, "maximum": 1}
_ANSWER_KEYS = ("score", "passed", "reason")


def criteria_of(rubric: Rubric) -> tuple[str, ...]:
    """The criteria of a list rubric (each stripped, distinct), or () for a rubric that is one text."""
    if isinstance(rubric, str):
        if not rubric.strip():
            raise ValidationError("rubric", rubric, "a non-empty text, or a list of criteria")
        check_text(rubric, "rubric")
        return ()
    if isinstance(rubric, (bytes, bytearray, Mapping)) or not isinstance(rubric, Sequence):
        raise ValidationError("rubric", rubric, "a text, or a list of criteria (texts)")
    if not 1 <= len(rubric) <= MAX_CRITERIA:
        raise ValidationError("rubric", rubric, f"from 1 to {MAX_CRITERIA} criteria")
    criteria: list[str] = []
    for i, item in enumerate(rubric):
        text = check_text(item, f"rubric[{i}]", "a criterion (a text)").strip()
        if not text or len(text) > MAX_CRITERION_CHARS:
            raise ValidationError(f"rubric[{i}]", item, f"a criterion of 1 to {MAX_CRITERION_CHARS} characters")
        if text in criteria:
            raise ValidationError(f"rubric[{i}]", item, "a criterion not already in the list")
        criteria.append(text)
    return tuple(criteria)


def rubric_text(rubric: Rubric) -> str:
    """A rubric as one stable text (JSON: the stripped text, or the list of criteria), as the history keeps it."""
    criteria = criteria_of(rubric)
    return json.dumps(list(criteria) if criteria else str(rubric).strip(), ensure_ascii=False)


def rubric_hash(rubric: Rubric) -> str:
    """A short stable name of a rubric, to find the judgements made against it."""
    return hashlib.sha256(rubric_text(rubric).encode("utf-8")).hexdigest()[:32]


def judgement_schema(criteria: Sequence[str] = ()) -> dict[str, Any]:
    """The strict JSON schema of an answer: score, passed, reason (and one score per criterion under ``criteria``)."""
    properties: dict[str, Any] = {"score": dict(_SCORE), "passed": {"type": "boolean"}, "reason": {"type": "string"}}
    required = list(_ANSWER_KEYS)
    if criteria:
        properties["criteria"] = {"type": "object", "additionalProperties": False, "required": list(criteria),
                                  "properties": {c: dict(_SCORE) for c in criteria}}
        required.append("criteria")
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


def judge_text(prompt: str, rubric: Rubric, frames: Sequence[FrameLike]) -> str:
    """The ``input_text`` of a judge call: how the frames were sampled, the video's prompt, the rubric."""
    criteria = criteria_of(rubric)
    times = [f.t_s for f in frames if isinstance(f, Frame)]
    n = len(frames)
    what = f"{n} frame{'s' if n != 1 else ''}"
    if len(times) == n and n:
        sizes = {(f.width, f.height) for f in frames if isinstance(f, Frame)}
        size = f", {next(iter(sizes))[0]}×{next(iter(sizes))[1]} pixels each" if len(sizes) == 1 else ""
        shown = ", ".join(f"{t:.2f} s" for t in times)
        sampled = f"Judge a generated video from {what} sampled evenly over its length, in time order at {shown}{size}."
    else:
        sampled = f"Judge a generated video from {what} sampled from it, in time order."
    if criteria:
        rules = ("Rubric (score each criterion from 0 to 1 under \"criteria\", keyed exactly as written; \"score\" is "
                 "your overall score):\n" + "\n".join(f"- {c}" for c in criteria))
    else:
        assert isinstance(rubric, str)
        rules = "Rubric:\n" + rubric.strip()
    return (f"{sampled}\n\nThe video was made from this prompt:\n<prompt>\n{prompt.strip() or '(no prompt)'}\n"
            f"</prompt>\n\n{rules}\n\nAnswer in JSON: \"score\" from 0 to 1 (how well the video meets the rubric), "
            "\"passed\" (true when it meets it), \"reason\" (one or two sentences on what you saw).")


def _image_bytes(frame: Any, i: int) -> bytes:
    data = frame.jpeg if isinstance(frame, Frame) else frame
    if not isinstance(data, (bytes, bytearray)):
        raise ValidationError(f"frames[{i}]", frame, "a Frame from sample_frames, or the bytes of a JPEG or PNG")
    mime = sniff_image_type(bytes(data))
    if mime not in IMAGE_TYPES:
        raise ValidationError(f"frames[{i}]", f"<{len(data)} bytes of {mime or 'unknown type'}>",
                              "a JPEG or PNG image (the judge models take no WebP or other types)")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError(f"frames[{i}]", f"<{len(data) / 2**20:.1f} MiB {mime}>",
                              f"an image of at most {MAX_IMAGE_BYTES // 2**20} MiB: sample a smaller width")
    return bytes(data)


def judge_body(prompt: str, rubric: Rubric, frames: Sequence[FrameLike], *, model: str = DEFAULT_MODEL,
               detail: str = "low") -> dict[str, Any]:
    """The body of ``POST /v1/responses`` asking ``model`` to judge ``frames`` of a video against ``rubric``.

    Checked before anything is sent: JPEG or PNG frames only, each under ``MAX_IMAGE_BYTES``, the whole
    body (base64 included) under ``MAX_REQUEST_BYTES``; a bad value raises ValidationError naming it.
    """
    check_text(prompt, "prompt")
    model = check_text(model, "model", "a judge model's name, such as grok-4.3").strip()
    if not model:
        raise ValidationError("model", model, "a judge model's name, such as grok-4.3")
    if detail not in DETAILS:
        raise ValidationError("detail", detail, "one of " + ", ".join(DETAILS))
    if isinstance(frames, (bytes, bytearray, str)) or not isinstance(frames, Sequence) or not frames:
        raise ValidationError("frames", frames, "a non-empty list of frames (sample_frames) or JPEG/PNG bytes")
    content: list[dict[str, Any]] = []
    for i, frame in enumerate(frames):
        data = _image_bytes(frame, i)
        mime = sniff_image_type(data)
        content.append({"type": "input_image",
                        "image_url": f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}",
                        "detail": detail})
    text = judge_text(prompt, rubric, frames)
    content.append({"type": "input_text", "text": text})
    body = {"model": model, "store": False, "input": [{"role": "user", "content": content}],
            "text": {"format": {"type": "json_schema", "name": SCHEMA_NAME, "strict": True,
                                "schema": judgement_schema(criteria_of(rubric))}}}
    size = len(json.dumps(body).encode("utf-8"))
    if size > MAX_REQUEST_BYTES:
        raise ValidationError("frames", f"<{len(frames)} frames, {size / 1e6:.1f} MB once base64-encoded>",
                              f"at most {MAX_REQUEST_BYTES / 1e6:g} MB in one request: fewer frames or a smaller width")
    return body


def estimate_judge_cost(model: str, frames: int | Sequence[Any], detail: str, text_chars: int) -> float:
    """A conservative price (USD) of one judge call, to reserve before it is sent (see ``pricing.judge_estimate``)."""
    count = frames if isinstance(frames, int) else len(frames)
    return judge_estimate(model, images=count, detail=detail, text_chars=text_chars).usd


def estimate_body_cost(body: Mapping[str, Any]) -> float:
    """The conservative price of a body made by :func:`judge_body`: its model, images, detail and text."""
    content = body["input"][0]["content"]
    images = [item for item in content if item.get("type") == "input_image"]
    chars = sum(len(item.get("text", "")) for item in content if item.get("type") == "input_text")
    detail = images[0].get("detail", "auto") if images else "auto"
    return estimate_judge_cost(str(body["model"]), len(images), detail, chars)


def judgement_key(video_sha256: str, rubric: Rubric, model: str, frames: int, detail: str, *,
                  width: int | None = None, prompt: str | None = None) -> str:
    """A stable hash naming one judgement, so that the same video, rubric, model, frames and detail are judged once."""
    check_text(video_sha256, "video_sha256", "the video's SHA-256 (hex)")
    if not video_sha256.strip():
        raise ValidationError("video_sha256", video_sha256, "the video's SHA-256 (hex)")
    criteria = criteria_of(rubric)
    what = {"v": BODY_VERSION, "video": video_sha256.strip().lower(), "model": model, "frames": frames,
            "detail": detail, "width": width, "prompt": prompt,
            "rubric": list(criteria) if criteria else str(rubric).strip()}
    return hashlib.sha256(json.dumps(what, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Judgement:
    """One judge's verdict on one video; a failed one has ``score`` and ``passed`` None and says why in ``error``."""

    score: float | None
    passed: bool | None
    reason: str
    criteria: dict[str, float] = field(default_factory=dict)
    model: str = DEFAULT_MODEL
    #: What the call counts against a budget: the answer's ``cost_in_usd_ticks`` when sane, else the estimate.
    cost_usd: float | None = None
    #: ``actual``, or ``estimate (why the answer's figure was not used)``.
    cost_basis: str = "actual"
    estimate_usd: float | None = None
    #: The judge answer's ``id``.
    request_id: str | None = None
    error: str | None = None
    run_id: str | None = None
    rubric: str | tuple[str, ...] = DEFAULT_RUBRIC
    frames: int = 0
    detail: str = "low"
    key: str | None = None
    #: The answer's text as received (cut), to see what a failed judgement said.
    answer_text: str | None = field(default=None, repr=False)
    #: True when this verdict was found in the history: nothing was sent (and nothing spent) for it this time.
    cached: bool = False
    #: The history's id of this judgement (votes cast from it name it).
    judgement_id: str | None = None

    @property
    def ok(self) -> bool:
        """True for a valid judgement (a score in 0-1, passed, a reason)."""
        return self.error is None

    def raise_for_error(self) -> Judgement:
        """Itself when valid; else raise JudgeError with why."""
        if self.error is not None:
            raise JudgeError(self.error, request_id=self.request_id, judgement=self)
        return self


def parse_judgement(answer: Any, *, rubric: Rubric, model: str, estimate_usd: float, run_id: str | None = None,
                    frames: int = 0, detail: str = "low", key: str | None = None) -> Judgement:
    """A Judgement from a ``/v1/responses`` answer (a dict, or its JSON text), failing closed.

    The text is read from the first ``output_text`` (a ``reasoning`` item may come first) and must be JSON
    matching :func:`judgement_schema` exactly: any missing, extra, non-finite or out-of-range value, a
    non-JSON text or no output at all gives ``score=None``, ``passed=None`` and ``error`` saying why. Never
    raises for a bad answer. The cost is counted either way (the call was billed): the answer's figure when
    ``pricing.cost_problem`` finds nothing wrong with it, else ``estimate_usd``.
    """
    criteria = criteria_of(rubric)
    shown_rubric: str | tuple[str, ...] = criteria if criteria else str(rubric)
    if isinstance(answer, (str, bytes, bytearray)):
        try:
            answer = json.loads(answer)
        except ValueError:
            answer = None
    body = answer if isinstance(answer, dict) else {}
    request_id = body.get("id") if isinstance(body.get("id"), str) else None
    answered_model = body.get("model") if isinstance(body.get("model"), str) and body.get("model") else model
    usage: dict[str, Any] = body["usage"] if isinstance(body.get("usage"), dict) else {}
    reported = usage.get("cost_in_usd_ticks")
    actual = usd_from_ticks(reported)
    problem = cost_problem(estimate_usd, actual, reported)
    if problem is None and actual is not None:
        cost, basis = actual, "actual"
    else:
        cost, basis = estimate_usd, f"estimate ({problem})"
    common: dict[str, Any] = {"model": answered_model, "cost_usd": cost, "cost_basis": basis,
                              "estimate_usd": estimate_usd, "request_id": request_id, "run_id": run_id,
                              "rubric": shown_rubric, "frames": frames, "detail": detail, "key": key}
    if not isinstance(answer, dict):
        return Judgement(None, None, "", error="the answer is not a JSON object", **common)
    text, problem = _output_text(answer)
    if text is None:
        return Judgement(None, None, "", error=problem, **common)
    common["answer_text"] = text[:2000]
    verdict, problem = _verdict(text, criteria)
    if verdict is None:
        return Judgement(None, None, "", error=problem, **common)
    return Judgement(score=verdict["score"], passed=verdict["passed"], reason=verdict["reason"],
                     criteria=verdict.get("criteria", {}), **common)


def _output_text(answer: dict[str, Any]) -> tuple[str | None, str]:
    """The first ``output_text`` of the answer, or None and why there is none."""
    error = answer.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        return None, f"the answer reports an error: {redact(str(message))[:200]}"
    status = answer.get("status")
    if status is not None and status != "completed":
        details = answer.get("incomplete_details")
        why = details.get("reason") if isinstance(details, dict) else None
        return None, f"the answer's status is {str(status)[:40]!r}" + (f" ({str(why)[:80]})" if why else "")
    output = answer.get("output")
    if not isinstance(output, list) or not output:
        return None, "the answer has no output"
    for item in output:
        if not isinstance(item, dict) or item.get("type") != "message":
            continue  # a reasoning item (or a future kind) before the message
        parts = item.get("content")
        for part in parts if isinstance(parts, list) else []:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "output_text":
                text = part.get("text")
                if not isinstance(text, str):
                    return None, "the answer's output_text holds no text"
                return text, ""
            if part.get("type") == "refusal":
                return None, f"the model refused: {str(part.get('refusal'))[:200]}"
    return None, "the answer has no output_text"


def _number(value: Any, name: str) -> tuple[float | None, str]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None, f"{name} is not a number: {shown_value(value)}"
    if not math.isfinite(value):
        return None, f"{name} is not a finite number: {value!r}"
    if not 0 <= value <= 1:
        return None, f"{name} {value!r} is outside 0-1"
    return float(value), ""


def _keys_problem(given: dict[str, Any], expected: Sequence[str], where: str) -> str:
    """What is missing from or extra in ``given`` (exactly ``expected`` are allowed), or "" when nothing is."""
    missing = [k for k in expected if k not in given]
    if missing:
        return f"missing {', '.join(map(shown_value, missing))} in {where}"
    extra = sorted(set(given) - set(expected))
    return f"unexpected keys in {where}: {', '.join(map(shown_value, extra))}" if extra else ""


def _verdict(text: str, criteria: tuple[str, ...]) -> tuple[dict[str, Any] | None, str]:
    """The answer's JSON checked against the schema (exactly its keys, each of its type and range)."""
    try:
        data = json.loads(text)
    except ValueError:
        return None, f"the output text is not JSON: {shown_value(text)}"
    if not isinstance(data, dict):
        return None, f"the output JSON is not an object: {shown_value(data)}"
    problem = _keys_problem(data, (*_ANSWER_KEYS, "criteria") if criteria else _ANSWER_KEYS, "the output JSON")
    if problem:
        return None, problem
    score, problem = _number(data["score"], "score")
    if score is None:
        return None, problem
    if not isinstance(data["passed"], bool):
        return None, f"passed is not true or false: {shown_value(data['passed'])}"
    if not isinstance(data["reason"], str):
        return None, f"reason is not a text: {shown_value(data['reason'])}"
    verdict: dict[str, Any] = {"score": score, "passed": data["passed"], "reason": data["reason"]}
    if criteria:
        given = data["criteria"]
        if not isinstance(given, dict):
            return None, f"criteria is not an object: {shown_value(given)}"
        problem = _keys_problem(given, criteria, "criteria")
        if problem:
            return None, problem
        scores: dict[str, float] = {}
        for c in criteria:
            value, problem = _number(given[c], f"criteria[{c!r}]")
            if value is None:
                return None, problem
            scores[c] = value
        verdict["criteria"] = scores
    return verdict, ""

