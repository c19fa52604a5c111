"""The API's rules, checked before any byte is sent.

Each ``*_spec`` function turns user arguments into the JSON body to send, the
parameters to keep in the history, and the price estimate, or raises
:class:`~grok_nb.errors.ValidationError` naming the field, the value and what is allowed.
Per-model rules come from :mod:`grok_nb.api.models`. Nothing here speaks HTTP; the only I/O
is reading a local image or video the caller named (through :mod:`grok_nb.api.media`).
"""

from __future__ import annotations

import math
import numbers
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from . import media, models, pricing

# ImageRef, VideoRef and check_text are re-exported: callers of the first release import them from here.
from .refs import ImageRef as ImageRef
from .refs import VideoRef as VideoRef
from .refs import check_text as check_text

DEFAULT_MODEL = models.DEFAULT_MODEL
#: Kept for callers of the first release; the rules per model live in :mod:`grok_nb.api.models`.
MODEL_ALIASES = models.ALIASES
MODEL_RESOLUTIONS = {name: rules.resolutions for name, rules in models.MODELS.items()}
ASPECT_RATIOS = models.ASPECT_RATIOS
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
MAX_TAG_LENGTH = 200
MAX_REQUEST_ID_LENGTH = 128
MAX_VOICE_ID_LENGTH = 256
_RES_ORDER = {"480p": 0, "720p": 1, "1080p": 2}
#: No limit is published; third-party clients cap prompts here, so grok_nb warns above it and sends.
PROMPT_ADVISED_MAX = 4096
#: Keyframe times are snapped by the service to this grid (seconds); one keyframe per slot.
KEYFRAME_GRID_S = 1 / 3
_AUDIO_TAG = re.compile(r"<AUDIO_(\d{1,6})>")
_IMAGE_TAG = re.compile(r"<IMAGE_(\d{1,6})>")
#: xAI ids are UUIDs; allow letters, digits, '-', '_' and single dots between them (never "..", "/", "?", "#").
_REQUEST_ID = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_TOKEN = re.compile(r"[^\s\x00-\x1f\x7f]+")

ENDPOINTS = {"generate": "/v1/videos/generations", "edit": "/v1/videos/edits", "extend": "/v1/videos/extensions"}
KINDS = tuple(ENDPOINTS)


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
    family: str | None = None  # the known model family, None for a model grok_nb does not know

    @property
    def endpoint(self) -> str:
        """The API path this spec is posted to."""
        return ENDPOINTS[self.kind]


# -- single values ---------------------------------------------------------------------------------
def _finite_number(value: Any, field_name: str, allowed: str) -> float | int:
    """An int or finite float from a number or a numeric string; never Overflow/ValueError."""
    if isinstance(value, bool):
        raise ValidationError(field_name, value, allowed)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        try:
            number = float(value)
        except (OverflowError, ValueError, TypeError):
            raise ValidationError(field_name, value, allowed) from None
    elif isinstance(value, str) and len(value) <= 40:
        text = value.strip()
        if re.fullmatch(r"[+-]?\d+", text):
            return int(text)
        try:
            number = float(text)
        except ValueError:
            raise ValidationError(field_name, value, allowed) from None
    else:
        raise ValidationError(field_name, value, allowed)
    if not math.isfinite(number):
        raise ValidationError(field_name, value, allowed)
    return number


def check_number(value: Any, field_name: str, lo: float, hi: float) -> float | int:
    """A finite number of seconds in [lo, hi] (numeric strings accepted)."""
    allowed = f"a number of seconds from {lo:g} to {hi:g}"
    number = _finite_number(value, field_name, allowed)
    if not lo <= number <= hi:
        raise ValidationError(field_name, value, allowed)
    return int(number) if float(number).is_integer() else float(number)


def check_duration(value: Any, field_name: str, lo: int, hi: int) -> int:
    """Whole seconds in [lo, hi], given as a number (a text such as "6" is refused, saying how to write it)."""
    allowed = f"whole seconds from {lo} to {hi}"
    if isinstance(value, str):
        text = value.strip()
        hint = f" ({field_name}={text}, not {field_name}={value!r})" if re.fullmatch(r"\d+", text) else ""
        raise ValidationError(field_name, value, f"{allowed}, given as a number{hint}")
    number = _finite_number(value, field_name, allowed)
    if not lo <= number <= hi or number != int(number):
        raise ValidationError(field_name, value, allowed)
    return int(number)


def check_prompt(prompt: Any, *, required: bool, why: str = "") -> str | None:
    """A non-blank string when required; None or a string otherwise."""
    if prompt is None or (isinstance(prompt, str) and not prompt.strip()):
        if required:
            raise ValidationError("prompt", prompt, "a non-empty text" + (f" ({why})" if why else ""))
        return None
    return check_text(prompt, "prompt", "a string")


def check_reference_count(count: int, maximum: int = MAX_REFERENCE_IMAGES) -> None:
    """At most ``maximum`` reference images (seven on every known model)."""
    if count > maximum:
        raise ValidationError("reference_images", f"{count} images", f"at most {maximum}")


def check_choice(value: Any, field_name: str, allowed: tuple[str, ...], why: str = "") -> str:
    """One of ``allowed``, exactly."""
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(field_name, value, f"one of {', '.join(allowed)}" + (f" {why}" if why else ""))
    return value


#: The most takes of one request (each is a job of its own, billed as such).
MAX_TAKES = 20


def check_takes(value: Any) -> int:
    """How many times each request is made (the API has no seed: takes show how much a prompt varies)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TAKES:
        raise ValidationError("takes", value, f"a whole number from 1 to {MAX_TAKES} (each take is a job of its own, "
                                              "billed as such)")
    return value


def check_tags(value: Any) -> list[str]:
    """Tags as a list: a str is one tag, None is no tag, else a list/tuple/set of non-empty strings."""
    allowed = f"a tag or a list of tags (non-empty strings of at most {MAX_TAG_LENGTH} characters)"
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise ValidationError("tags", value, allowed)
    tags: list[str] = []
    for tag in items:
        check_text(tag, "tags", allowed)
        if not tag.strip() or len(tag) > MAX_TAG_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in tag):
            raise ValidationError("tags", value, allowed)
        tags.append(tag)
    return tags


def check_request_id(value: Any) -> str:
    """A request id as the submit returned it (surrounding whitespace dropped); nothing that changes the URL path."""
    allowed = (f"the id a submit returned, e.g. '3f2a9c1e-…': letters, digits, '-', '_' and dots between them, "
               f"at most {MAX_REQUEST_ID_LENGTH} characters")
    if not isinstance(value, str):
        raise ValidationError("request_id", value, allowed)
    text = value.strip()
    if not text or len(text) > MAX_REQUEST_ID_LENGTH or not _REQUEST_ID.fullmatch(text):
        raise ValidationError("request_id", value, allowed)
    return text


def check_kind(value: Any) -> str:
    """generate, edit or extend."""
    if not isinstance(value, str) or value not in ENDPOINTS:
        raise ValidationError("kind", value, "generate, edit or extend")
    return value


def check_sendable(body: dict[str, Any] | list[Any], path: str = "") -> None:
    """Every value of a body can go out as JSON in UTF-8: JSON types only, finite numbers, no lone surrogates."""
    items = body.items() if isinstance(body, dict) else enumerate(body)
    for key, value in items:
        where = f"{path}[{key}]" if isinstance(key, int) else (f"{path}.{key}" if path else str(key))
        if isinstance(value, str):
            check_text(value, where)
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValidationError(where, value, "a finite number")
        elif isinstance(value, (dict, list)):
            check_sendable(value, where)
        elif value is not None and type(value) not in (bool, int, float):
            raise ValidationError(where, value, "a JSON value")


def _cap_resolution(resolution: str | None, cap: str) -> str:
    if resolution is None or _RES_ORDER.get(resolution, 99) > _RES_ORDER[cap]:
        return cap
    return resolution


def _refuse_unknown(kind: str, unknown: dict[str, Any], known: str) -> None:
    for name, value in unknown.items():
        raise ValidationError(name, value, f"not an argument of {kind}; it takes {known}")


def _warn(notes: list[str], enabled: bool) -> None:
    if enabled:
        for note in notes:
            warnings.warn(note, stacklevel=4)


def _image(value: Any, field_name: str) -> ImageRef:
    return value if isinstance(value, ImageRef) else media.image_ref(value, field_name)


def _video(value: Any) -> VideoRef:
    return value if isinstance(value, VideoRef) else media.video_ref(value, "video")


def _model(value: Any, operation: str, notes: list[str]) -> models.Model:
    model = models.resolve(value)
    if not model.known:
        notes.append(models.unknown_model_note(model.name))  # the one warning for an unknown name
    models.check_operation(model, operation)
    return model


def _prompt_notes(prompt: str | None, notes: list[str]) -> None:
    if prompt is not None and len(prompt) > PROMPT_ADVISED_MAX:
        notes.append(f"the prompt has {len(prompt):,} characters: xAI publishes no limit, but clients cap at "
                     f"{PROMPT_ADVISED_MAX:,} and a prompt that is too long fails as invalid_argument (sent anyway)")


def _common_body(model: str, generate_audio: Any, user: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model}
    if generate_audio is not None:
        if not isinstance(generate_audio, bool):
            raise ValidationError("generate_audio", generate_audio, "True or False")
        body["generate_audio"] = generate_audio
    if user is not None:
        body["user"] = check_text(user, "user", "a string (your end user's id)")
    return body


# -- generate ----------------------------------------------------------------------------------------
def _reference_images(value: Any, image: ImageRef | None, model: models.Model) -> list[ImageRef]:
    rules = model.rules
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValidationError("reference_images", value,
                              f"a list of up to {rules.max_reference_images or MAX_REFERENCE_IMAGES} images")
    if value and not rules.max_reference_images:
        raise _only_on(model, "reference_images", f"{len(value)} image(s)", "max_reference_images")
    check_reference_count(len(value), rules.max_reference_images)
    refs = [_image(r, f"reference_images[{i}]") for i, r in enumerate(value)]
    if refs and image is not None and not rules.image_with_references:
        raise ValidationError("reference_images", f"{len(refs)} image(s)",
                              f"not together with image= on {model.name} (the API answers 400); use one or the "
                              "other, or grok-imagine-video-1.5, which pins the image as the first frame")
    return refs


def _only_on(model: models.Model, name: str, shown: Any, what: str) -> ValidationError:
    takers = [m for m, r in models.MODELS.items() if getattr(r, what)]
    scope = " (it does text→video and image→video only)" if model.rules is models.GROK_IMAGINE_VIDEO_15_LITE else ""
    return ValidationError(name, shown, f"not an input of {model.name}{scope}; {' and '.join(takers)} take {name}=")


def _keyframe_time(value: Any, where: str, duration: int) -> tuple[float | int, int]:
    """A keyframe's time as given, and its 1/3-s slot; strictly inside the clip once snapped to the grid."""
    allowed = (f"seconds strictly inside the {duration} s clip (0 to {duration}, both ends excluded), on the "
               f"service's 1/3-s grid")
    when = check_number(value, where, 0, duration)
    slot = round(when / KEYFRAME_GRID_S)
    if not 0 < when < duration or not 0 < slot < round(duration / KEYFRAME_GRID_S):
        raise ValidationError(where, value, allowed + (f" ({when:g} s snaps to {slot * KEYFRAME_GRID_S:.3g} s)"
                                                       if 0 < when < duration else ""))
    return when, slot


def _keyframes(value: Any, model: models.Model, duration: int,
               notes: list[str]) -> list[tuple[ImageRef, float | int]]:
    rules = model.rules
    if value is None:
        return []
    shape = "{'image': <image>, 'timestamp_s': seconds}"
    if not isinstance(value, (list, tuple)):
        raise ValidationError("keyframes", value, f"a list of up to {rules.max_keyframes or 4} {shape}")
    if value and not rules.max_keyframes:
        raise _only_on(model, "keyframes", f"{len(value)} keyframe(s)", "max_keyframes")
    if len(value) > rules.max_keyframes:
        raise ValidationError("keyframes", f"{len(value)} keyframes", f"at most {rules.max_keyframes}")
    frames: list[tuple[ImageRef, float | int]] = []
    slots: dict[int, int] = {}
    previous = -1.0
    for i, item in enumerate(value):
        if not isinstance(item, dict) or set(item) != {"image", "timestamp_s"}:
            raise ValidationError(f"keyframes[{i}]", item, f"a dict {shape}")
        where = f"keyframes[{i}].timestamp_s"
        when, slot = _keyframe_time(item["timestamp_s"], where, duration)
        if slot in slots:
            raise ValidationError(where, item["timestamp_s"], f"at most one keyframe per 1/3-s slot: "
                                  f"keyframes[{slots[slot]}] is in the same slot (both snap to "
                                  f"{slot * KEYFRAME_GRID_S:.3g} s)")
        if when <= previous:
            raise ValidationError(where, item["timestamp_s"],
                                  f"a time after the previous keyframe's {previous:g} s (increasing)")
        if abs(when - slot * KEYFRAME_GRID_S) > 1e-6:
            notes.append(f"{where} {when:g} s is snapped by the service to the 1/3-s grid: "
                         f"{slot * KEYFRAME_GRID_S:.3f} s")
        slots[slot], previous = i, when
        frames.append((_image(item["image"], f"keyframes[{i}].image"), when))
    return frames


def _reference_audios(value: Any, model: models.Model) -> list[str]:
    rules = model.rules
    if value is None:
        return []
    allowed = f"a list of up to {rules.max_reference_audios or 3} voice ids (str or {{'voice_id': str}})"
    if not isinstance(value, (list, tuple)):
        raise ValidationError("reference_audios", value, allowed)
    if value and not rules.max_reference_audios:
        raise _only_on(model, "reference_audios", f"{len(value)} voice(s)", "max_reference_audios")
    if len(value) > rules.max_reference_audios:
        raise ValidationError("reference_audios", f"{len(value)} voices", f"at most {rules.max_reference_audios}")
    voices: list[str] = []
    for i, item in enumerate(value):
        voice = item.get("voice_id") if isinstance(item, dict) and set(item) == {"voice_id"} else item
        where = f"reference_audios[{i}]"
        voice = check_text(voice, where, allowed)
        if len(voice) > MAX_VOICE_ID_LENGTH or not _TOKEN.fullmatch(voice):
            raise ValidationError(where, item, f"a voice id without spaces or control characters, at most "
                                               f"{MAX_VOICE_ID_LENGTH} characters")
        voices.append(voice)
    return voices


def _tag_notes(prompt: str | None, voices: int, images: int, model: models.Model) -> list[str]:
    """Warnings for prompt tags that name no input; a prompt is never refused for its tags (none need be tagged)."""
    notes: list[str] = []
    if not prompt:
        return notes
    if model.rules.max_reference_audios:  # elsewhere "<AUDIO_0>" is just text
        for n in sorted({int(t) for t in _AUDIO_TAG.findall(prompt)}):
            if n >= voices:
                tags = f"<AUDIO_0> to <AUDIO_{voices - 1}>" if voices else "no voice tag"
                notes.append(f"the prompt's <AUDIO_{n}> names no voice: with {voices} reference_audios the tags are "
                             f"{tags} (zero-based, in the order given); sent as written")
    for n in sorted({int(t) for t in _IMAGE_TAG.findall(prompt)}):
        if n > images or not images:  # <IMAGE_n> with n == images is input n under one-based numbering
            notes.append(f"the prompt's <IMAGE_{n}> names no input image: this request has {images} (first frame, "
                         "references, keyframes, last frame; <IMAGE_0> is the first); sent as written")
    return notes


_GENERATE_ARGS = ("prompt, image, reference_images, last_frame, keyframes, reference_audios, duration, resolution, "
                  "aspect_ratio, model, generate_audio, user")


def generate_spec(
    prompt: Any = None,
    *,
    image: Any = None,
    reference_images: Any = None,
    duration: Any = None,
    resolution: Any = None,
    aspect_ratio: Any = None,
    model: Any = DEFAULT_MODEL,
    generate_audio: Any = None,
    user: Any = None,
    last_frame: Any = None,
    keyframes: Any = None,
    reference_audios: Any = None,
    _warn_now: bool = True,
    **unknown: Any,
) -> JobSpec:
    """Validate text→video, image→video (first frame, optionally ``last_frame``/``keyframes``) or reference→video.

    Images may be :class:`ImageRef` or anything ``media.image_ref`` takes.
    """
    _refuse_unknown("generate", unknown, _GENERATE_ARGS)
    notes: list[str] = []
    spec_model = _model(model, "generate", notes)
    rules = spec_model.rules
    img = _image(image, "image") if image is not None else None
    refs = _reference_images(reference_images, img, spec_model)
    last = None
    if last_frame is not None:
        if not rules.last_frame:
            raise _only_on(spec_model, "last_frame", last_frame if isinstance(last_frame, str) else "<image>",
                           "last_frame")
        last = _image(last_frame, "last_frame")
    voices = _reference_audios(reference_audios, spec_model)

    max_duration = rules.reference_max_duration if refs else rules.duration_range[1]
    duration = check_duration(DEFAULT_DURATION if duration is None else duration, "duration",
                              rules.duration_range[0], max_duration)
    frames = _keyframes(keyframes, spec_model, duration, notes)
    framed = img is not None or last is not None or bool(frames)
    optional = framed or (bool(refs) and not rules.reference_prompt_required)
    prompt = check_prompt(prompt, required=not optional or bool(voices),
                          why="required for text→video" + (", reference→video" if rules.reference_prompt_required
                                                           else "") + " and with reference_audios")
    if prompt is None and framed:
        notes.append("image→video without a prompt: the API may accept it and then fail the job; "
                     "consider a short prompt")
    _prompt_notes(prompt, notes)
    n_images = (img is not None) + len(refs) + (last is not None) + len(frames)
    notes.extend(_tag_notes(prompt, len(voices), n_images, spec_model))

    resolutions = rules.resolutions
    if refs or voices:  # any reference→video, images or voices, on every model
        cap = _RES_ORDER[rules.reference_max_resolution]
        resolutions = tuple(r for r in resolutions if _RES_ORDER[r] <= cap)
    with_refs = " with " + " and ".join(n for n, v in (("reference_images", refs), ("reference_audios", voices))
                                        if v) if refs or voices else ""
    resolution = check_choice(DEFAULT_RESOLUTION if resolution is None else resolution, "resolution",
                              resolutions, f"for {spec_model.name}{with_refs} (reference→video is capped at "
                              f"{rules.reference_max_resolution} on every model)" if with_refs
                              else f"for {spec_model.name}")
    if aspect_ratio is not None:
        check_choice(aspect_ratio, "aspect_ratio", rules.aspect_ratios, f"for {spec_model.name}")

    body = _common_body(spec_model.name, generate_audio, user)
    if prompt is not None:
        body["prompt"] = prompt
    body["duration"] = duration
    body["resolution"] = resolution
    if aspect_ratio is not None:
        body["aspect_ratio"] = aspect_ratio
    if img is not None:
        body["image"] = img.payload
    if refs:
        body["reference_images"] = [r.payload for r in refs]
    if last is not None:
        body["last_frame"] = last.payload
    if frames:
        body["keyframes"] = [{"image": ref.payload, "timestamp_s": when} for ref, when in frames]
    if voices:
        body["reference_audios"] = [{"voice_id": v} for v in voices]
    check_sendable(body)
    params = {
        "prompt": prompt, "duration": duration, "resolution": resolution,
        # Image→video keeps the image's ratio unless one is given.
        "aspect_ratio": aspect_ratio or (None if img is not None else "16:9"),
        "image": img.label if img is not None else None,
        "reference_images": [r.label for r in refs] or None,
        "generate_audio": generate_audio,
        "last_frame": last.label if last is not None else None,
        "keyframes": [{"image": ref.label, "timestamp_s": when} for ref, when in frames] or None,
        "reference_audios": voices or None,
        "model_family": spec_model.family,
    }
    # Every input image is billed (first frame, each reference, each keyframe, a last frame); voices are not.
    cost = pricing.estimate("generate", model=spec_model.name, duration=duration, resolution=resolution,
                            n_images=n_images)
    _warn(notes, _warn_now)
    return JobSpec("generate", spec_model.name, body, params, cost, warnings=notes, family=spec_model.family)


# -- edit and extend -----------------------------------------------------------------------------------
def _check_video(video: VideoRef) -> None:
    allowed = ("an earlier run, its request id, an http(s) URL of an MP4, a local MP4 (path or bytes), "
               "a data:video/mp4;base64 URI, or {'file_id': ...}")
    if video.file_id is not None:
        check_text(video.file_id, "video", allowed)
        if not _TOKEN.fullmatch(video.file_id) or len(video.file_id) > 256:
            raise ValidationError("video", {"file_id": video.file_id}, allowed)
        return
    if not isinstance(video.url, str) or not video.url.startswith(("http://", "https://", "data:video/mp4;base64,")):
        raise ValidationError("video", video.url, allowed)
    check_text(video.url, "video", allowed)
    if video.url.startswith(("http://", "https://")):
        media.check_url(video.url, "video")


def _no_audio_or_user(kind: str, generate_audio: Any, user: Any) -> None:
    body = "edit" if kind == "edit" else "extension"
    if generate_audio is not None:
        raise ValidationError("generate_audio", generate_audio, f"left out: the {body} body has no generate_audio "
                                                                "(the output keeps the input's sound)")
    if kind == "extend" and user is not None:
        raise ValidationError("user", user, "left out: the extension body has no user field")


def _video_params(video: VideoRef) -> str | None:
    return video.label or (f"file_id:{video.file_id}" if video.file_id else video.url)


def edit_spec(prompt: Any, video: Any, *, model: Any = DEFAULT_MODEL, generate_audio: Any = None,
              user: Any = None, duration: Any = None, resolution: Any = None, aspect_ratio: Any = None,
              _warn_now: bool = True, **unknown: Any) -> JobSpec:
    """Validate an edit of an existing video (output keeps its length, capped at 720p)."""
    _refuse_unknown("edit", unknown, "video, prompt, model, user")
    notes: list[str] = []
    spec_model = _model(model, "edit", notes)
    for name, value in (("duration", duration), ("resolution", resolution), ("aspect_ratio", aspect_ratio)):
        if value is not None:
            raise ValidationError(name, value, "not settable for an edit: the output keeps the input's "
                                               "duration, resolution (capped at 720p) and shape")
    _no_audio_or_user("edit", generate_audio, user)
    prompt = check_prompt(prompt, required=True, why="an edit says what to change")
    _prompt_notes(prompt, notes)
    video = _video(video)
    _check_video(video)
    if video.duration is not None and video.duration > EDIT_MAX_INPUT_S + 1e-6:
        raise ValidationError("video", f"a {video.duration:g} s video",
                              f"at most {EDIT_MAX_INPUT_S} s long for an edit")
    seconds = video.duration if video.duration is not None else EDIT_MAX_INPUT_S
    resolution = _cap_resolution(video.resolution, EDIT_EXTEND_MAX_RESOLUTION)
    body = _common_body(spec_model.name, None, user)
    body.update(prompt=prompt, video=video.payload)
    check_sendable(body)
    params = {"prompt": prompt, "duration": video.duration, "resolution": resolution,
              "aspect_ratio": None, "input_video": _video_params(video), "generate_audio": None,
              "model_family": spec_model.family}
    cost = pricing.estimate("edit", model=spec_model.name, duration=seconds, resolution=resolution,
                            input_duration=seconds, input_duration_known=video.duration is not None)
    _warn(notes, _warn_now)
    return JobSpec("edit", spec_model.name, body, params, cost, parent_run_id=video.parent_run_id, warnings=notes,
                   family=spec_model.family)


def extend_spec(prompt: Any, video: Any, *, duration: Any = None, model: Any = DEFAULT_MODEL,
                generate_audio: Any = None, user: Any = None, _warn_now: bool = True, **unknown: Any) -> JobSpec:
    """Validate an extension: ``duration`` is the length of the added part only."""
    _refuse_unknown("extend", unknown, "video, prompt, duration, model")
    notes: list[str] = []
    spec_model = _model(model, "extend", notes)
    _no_audio_or_user("extend", generate_audio, user)
    prompt = check_prompt(prompt, required=True, why="an extension says what happens next")
    _prompt_notes(prompt, notes)
    video = _video(video)
    _check_video(video)
    added = check_duration(EXTEND_DEFAULT_DURATION if duration is None else duration,
                           "duration", *EXTEND_DURATION_RANGE)
    if video.duration is not None:
        lo, hi = EXTEND_INPUT_RANGE
        if not lo <= video.duration <= hi:
            raise ValidationError("video", f"a {video.duration:g} s video", f"{lo:g} to {hi:g} s long to extend")
        if video.duration > EXTEND_DOCUMENTED_MAX_INPUT_S:
            notes.append("xAI's docs cap extension inputs at 15 s (the spec allows 30 s): the job may be refused")
    if added < 2:
        notes.append("xAI's docs say an extension adds at least 2 s (the spec allows 1 s)")
    resolution = _cap_resolution(video.resolution, EDIT_EXTEND_MAX_RESOLUTION)
    body: dict[str, Any] = {"model": spec_model.name, "prompt": prompt, "video": video.payload, "duration": added}
    check_sendable(body)
    total = added + video.duration if video.duration is not None else None
    params = {"prompt": prompt, "duration": total, "added_duration": added, "resolution": resolution,
              "aspect_ratio": None, "input_video": _video_params(video), "generate_audio": None,
              "model_family": spec_model.family}
    input_s = video.duration if video.duration is not None else EXTEND_DOCUMENTED_MAX_INPUT_S
    cost = pricing.estimate("extend", model=spec_model.name, duration=added, resolution=resolution,
                            input_duration=input_s, input_duration_known=video.duration is not None)
    _warn(notes, _warn_now)
    return JobSpec("extend", spec_model.name, body, params, cost, parent_run_id=video.parent_run_id, warnings=notes,
                   family=spec_model.family)


# -- frames ---------------------------------------------------------------------------------------
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


def nearest_aspect_ratio(width: int, height: int, allowed: tuple[str, ...] = ASPECT_RATIOS) -> str:
    """The allowed aspect ratio closest to an image's shape (image→video keeps the image's ratio)."""
    target = math.log(width / height)
    return min(allowed, key=lambda r: abs(math.log(int(r.split(":")[0]) / int(r.split(":")[1])) - target))
