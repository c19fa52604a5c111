"""The API's rules, checked before any byte is sent (pure: no I/O).

Each ``*_spec`` function turns user arguments into the JSON body to send, the
parameters to keep in the history, and the price estimate, or raises
:class:`~grok_nb.errors.ValidationError` naming the field, the value and what is allowed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

from . import pricing
from .errors import ValidationError

DEFAULT_MODEL = "grok-imagine-video"
MODEL_ALIASES = {"grok-imagine-video-1.5-preview": "grok-imagine-video-1.5"}
#: Resolutions each model renders for text/image→video.
MODEL_RESOLUTIONS = {
    "grok-imagine-video": ("480p", "720p"),
    "grok-imagine-video-1.5": ("480p", "720p", "1080p"),
}
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
DEFAULT_RESOLUTION = "480p"
#: The docs say 8, one tutorial says 6: grok_nb always sends the duration explicitly.
DEFAULT_DURATION = 8
DURATION_RANGE = (1, 15)
MAX_REFERENCE_IMAGES = 7
REFERENCE_MAX_DURATION = 10
REFERENCE_MAX_RESOLUTION = "720p"
EDIT_MAX_INPUT_S = 8.7
#: Docs say added 2–10 s and input 2–15 s; spec and SDK say 1–10 s and 2–30 s. Accept the union.
EXTEND_DURATION_RANGE = (1, 10)
EXTEND_DEFAULT_DURATION = 6
EXTEND_INPUT_RANGE = (2.0, 30.0)
EXTEND_DOCUMENTED_MAX_INPUT_S = 15.0
EDIT_EXTEND_MAX_RESOLUTION = "720p"
_RES_ORDER = {"480p": 0, "720p": 1, "1080p": 2}

ENDPOINTS = {"generate": "/v1/videos/generations", "edit": "/v1/videos/edits", "extend": "/v1/videos/extensions"}


@dataclass(frozen=True)
class ImageRef:
    """An image ready to send: the JSON payload and what the history keeps (URL or hash, never base64)."""

    payload: dict[str, str]
    label: str


@dataclass(frozen=True)
class VideoRef:
    """An input video: its URL, and its length and resolution when known."""

    url: str
    duration: float | None = None
    resolution: str | None = None
    parent_run_id: str | None = None


@dataclass
class JobSpec:
    """A validated request: where to send it, what to send, what to record, what it costs."""

    kind: str
    model: str
    body: dict[str, Any]
    params: dict[str, Any]
    estimate: pricing.CostEstimate
    parent_run_id: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        """The API path this spec is posted to."""
        return ENDPOINTS[self.kind]


def canonical_model(model: Any) -> str:
    """The model's canonical name, resolving aliases."""
    if not isinstance(model, str) or MODEL_ALIASES.get(model, model) not in MODEL_RESOLUTIONS:
        allowed = sorted(MODEL_RESOLUTIONS) + sorted(MODEL_ALIASES)
        raise ValidationError("model", model, f"one of {', '.join(allowed)}")
    return MODEL_ALIASES.get(model, model)


def check_duration(value: Any, field_name: str, lo: int, hi: int) -> int:
    """Whole seconds in [lo, hi]; numeric strings like "8" are accepted as the API does."""
    allowed = f"whole seconds from {lo} to {hi}"
    if isinstance(value, bool):
        raise ValidationError(field_name, value, allowed)
    number: float
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValidationError(field_name, value, allowed) from None
    elif isinstance(value, (int, float)):
        number = float(value)
    else:
        raise ValidationError(field_name, value, allowed)
    if number != int(number) or not lo <= number <= hi:
        raise ValidationError(field_name, value, allowed)
    return int(number)


def check_prompt(prompt: Any, *, required: bool, why: str = "") -> str | None:
    """A non-blank string when required; None or a string otherwise."""
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        if required:
            raise ValidationError("prompt", prompt, "a non-empty text" + (f" ({why})" if why else ""))
        return None
    if not isinstance(prompt, str):
        raise ValidationError("prompt", prompt, "a string")
    return prompt


def check_reference_count(count: int) -> None:
    """At most seven reference images."""
    if count > MAX_REFERENCE_IMAGES:
        raise ValidationError("reference_images", f"{count} images", f"at most {MAX_REFERENCE_IMAGES}")


def check_choice(value: Any, field_name: str, allowed: tuple[str, ...], why: str = "") -> str:
    """One of ``allowed``, exactly."""
    if value not in allowed:
        raise ValidationError(field_name, value, f"one of {', '.join(allowed)}" + (f" {why}" if why else ""))
    return value


def _cap_resolution(resolution: str | None, cap: str) -> str:
    if resolution is None or _RES_ORDER.get(resolution, 99) > _RES_ORDER[cap]:
        return cap
    return resolution


def _common_body(model: str, generate_audio: Any, user: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if generate_audio is not None:
        if not isinstance(generate_audio, bool):
            raise ValidationError("generate_audio", generate_audio, "True or False")
        body["generate_audio"] = generate_audio
    if user is not None:
        if not isinstance(user, str):
            raise ValidationError("user", user, "a string")
        body["user"] = user
    return body


def generate_spec(
    prompt: Any,
    *,
    image: ImageRef | None = None,
    reference_images: list[ImageRef] | None = None,
    duration: Any = None,
    resolution: Any = None,
    aspect_ratio: Any = None,
    model: Any = DEFAULT_MODEL,
    generate_audio: Any = None,
    user: Any = None,
) -> JobSpec:
    """Validate a text→video, image→video or reference→video request."""
    model = canonical_model(model)
    notes: list[str] = []
    refs = list(reference_images or [])
    if refs and image is not None:
        raise ValidationError("reference_images", f"{len(refs)} image(s)",
                              "not together with image= (the API answers 400); use one or the other")
    check_reference_count(len(refs))
    prompt = check_prompt(prompt, required=image is None,
                          why="required for text→video and reference→video")
    if image is not None and prompt is None:
        notes.append("image→video without a prompt: the API may accept it and then fail the job; "
                     "consider a short prompt")
        warnings.warn(notes[-1], stacklevel=3)

    max_duration = REFERENCE_MAX_DURATION if refs else DURATION_RANGE[1]
    duration = check_duration(DEFAULT_DURATION if duration is None else duration,
                              "duration", DURATION_RANGE[0], max_duration)
    resolutions = MODEL_RESOLUTIONS[model]
    if refs:
        resolutions = tuple(r for r in resolutions if _RES_ORDER[r] <= _RES_ORDER[REFERENCE_MAX_RESOLUTION])
    resolution = check_choice(DEFAULT_RESOLUTION if resolution is None else resolution, "resolution",
                              resolutions, f"for {model}" + (" with reference_images" if refs else ""))
    if aspect_ratio is not None:
        check_choice(aspect_ratio, "aspect_ratio", ASPECT_RATIOS)

    body = _common_body(model, generate_audio, user)
    if prompt is not None:
        body["prompt"] = prompt
    body["duration"] = duration
    body["resolution"] = resolution
    if aspect_ratio is not None:
        body["aspect_ratio"] = aspect_ratio
    if image is not None:
        body["image"] = image.payload
    if refs:
        body["reference_images"] = [r.payload for r in refs]
    params = {
        "prompt": prompt, "duration": duration, "resolution": resolution,
        # Image→video keeps the image's ratio unless one is given.
        "aspect_ratio": aspect_ratio or (None if image is not None else "16:9"),
        "image": image.label if image is not None else None,
        "reference_images": [r.label for r in refs] or None,
        "generate_audio": generate_audio,
    }
    cost = pricing.estimate("generate", model=model, duration=duration, resolution=resolution,
                            n_images=(1 if image is not None else 0) + len(refs))
    return JobSpec("generate", model, body, params, cost, warnings=notes)


def edit_spec(prompt: Any, video: VideoRef, *, model: Any = DEFAULT_MODEL, generate_audio: Any = None,
              user: Any = None, duration: Any = None, resolution: Any = None, aspect_ratio: Any = None) -> JobSpec:
    """Validate an edit of an existing video (output keeps its length, capped at 720p)."""
    model = canonical_model(model)
    for name, value in (("duration", duration), ("resolution", resolution), ("aspect_ratio", aspect_ratio)):
        if value is not None:
            raise ValidationError(name, value, "not settable for an edit: the output keeps the input's "
                                               "duration, resolution (capped at 720p) and shape")
    prompt = check_prompt(prompt, required=True, why="an edit says what to change")
    _check_video_url(video)
    if video.duration is not None and video.duration > EDIT_MAX_INPUT_S + 1e-6:
        raise ValidationError("video", f"a {video.duration:g} s video",
                              f"at most {EDIT_MAX_INPUT_S} s long for an edit")
    seconds = video.duration if video.duration is not None else EDIT_MAX_INPUT_S
    resolution = _cap_resolution(video.resolution, EDIT_EXTEND_MAX_RESOLUTION)
    body = _common_body(model, generate_audio, user)
    body.update(prompt=prompt, video={"url": video.url})
    params = {"prompt": prompt, "duration": video.duration, "resolution": resolution,
              "aspect_ratio": None, "input_video": video.url, "generate_audio": generate_audio}
    cost = pricing.estimate("edit", model=model, duration=seconds, resolution=resolution,
                            input_duration=seconds, input_duration_known=video.duration is not None)
    return JobSpec("edit", model, body, params, cost, parent_run_id=video.parent_run_id)


def extend_spec(prompt: Any, video: VideoRef, *, duration: Any = None, model: Any = DEFAULT_MODEL,
                generate_audio: Any = None, user: Any = None) -> JobSpec:
    """Validate an extension: ``duration`` is the length of the added part only."""
    model = canonical_model(model)
    prompt = check_prompt(prompt, required=True, why="an extension says what happens next")
    _check_video_url(video)
    added = check_duration(EXTEND_DEFAULT_DURATION if duration is None else duration,
                           "duration", *EXTEND_DURATION_RANGE)
    notes: list[str] = []
    if video.duration is not None:
        lo, hi = EXTEND_INPUT_RANGE
        if not lo <= video.duration <= hi:
            raise ValidationError("video", f"a {video.duration:g} s video", f"{lo:g} to {hi:g} s long to extend")
        if video.duration > EXTEND_DOCUMENTED_MAX_INPUT_S:
            notes.append("xAI's docs cap extension inputs at 15 s (the spec allows 30 s): the job may be refused")
    if added < 2:
        notes.append("xAI's docs say an extension adds at least 2 s (the spec allows 1 s)")
    for note in notes:
        warnings.warn(note, stacklevel=3)
    resolution = _cap_resolution(video.resolution, EDIT_EXTEND_MAX_RESOLUTION)
    body = _common_body(model, generate_audio, user)
    body.update(prompt=prompt, video={"url": video.url}, duration=added)
    total = added + video.duration if video.duration is not None else None
    params = {"prompt": prompt, "duration": total, "added_duration": added, "resolution": resolution,
              "aspect_ratio": None, "input_video": video.url, "generate_audio": generate_audio}
    cost = pricing.estimate("extend", model=model, duration=added, resolution=resolution,
                            input_duration=video.duration if video.duration is not None else EXTEND_DOCUMENTED_MAX_INPUT_S,
                            input_duration_known=video.duration is not None)
    return JobSpec("extend", model, body, params, cost, parent_run_id=video.parent_run_id, warnings=notes)


def _check_video_url(video: VideoRef) -> None:
    if not isinstance(video.url, str) or not video.url.startswith(("http://", "https://")):
        raise ValidationError("video", video.url, "an earlier run, its request id, or an http(s) URL of an MP4")


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Output (width, height): the short side is the resolution's number, the long side a multiple of 16.

    480p 16:9 is 848×480 and 720p 16:9 is 1280×720, as the service renders them.
    """
    short = int(resolution.rstrip("p"))
    w_ratio, h_ratio = (int(x) for x in aspect_ratio.split(":"))
    if w_ratio == h_ratio:
        return short, short
    long_side = 16 * round(short * max(w_ratio, h_ratio) / min(w_ratio, h_ratio) / 16)
    return (long_side, short) if w_ratio > h_ratio else (short, long_side)


def nearest_aspect_ratio(width: int, height: int) -> str:
    """The allowed aspect ratio closest to an image's shape (image→video keeps the image's ratio)."""
    import math

    target = math.log(width / height)
    return min(ASPECT_RATIOS, key=lambda r: abs(math.log(int(r.split(":")[0]) / int(r.split(":")[1])) - target))
