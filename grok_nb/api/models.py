"""The video models: their published rules, aliases, date-pinned names, and names grok_nb does not know (pure).

There is no closed list. A name grok_nb does not know is checked against general limits
(the union of what any known model accepts), sent with one warning, and the server
decides. Rules below follow xAI's docs as of late 2026 (``shared/xai-video-api.md``).
"""

from __future__ import annotations

import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from ..errors import ValidationError

DEFAULT_MODEL = "grok-imagine-video"
OPERATIONS = ("generate", "edit", "extend")
RESOLUTIONS = ("480p", "720p", "1080p")
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
WIDE_ASPECT_RATIOS = ASPECT_RATIOS + ("21:9", "5:2")
#: Names are sent as given; this only keeps out what cannot be a model id (spaces, slashes, control characters).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_PINNED = re.compile(r"(?P<base>.+)-(?P<date>\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class ModelRules:
    """What one model accepts, as its docs publish it (``documented=False``: assumed from a sibling)."""

    family: str
    operations: tuple[str, ...]  # operations its docs document; the others are refused before anything is sent
    resolutions: tuple[str, ...]  # text→video and image→video
    aspect_ratios: tuple[str, ...]
    duration_range: tuple[int, int] = (1, 15)
    max_reference_images: int = 7
    reference_max_duration: int = 10
    reference_max_resolution: str = "720p"
    image_with_references: bool = False  # False: image + reference_images is a 400
    reference_prompt_required: bool = True
    last_frame: bool = False
    max_keyframes: int = 0
    max_reference_audios: int = 0
    known: bool = True
    documented: bool = True
    source: str = ""


GROK_IMAGINE_VIDEO = ModelRules(
    family="grok-imagine-video", operations=OPERATIONS, resolutions=("480p", "720p"), aspect_ratios=ASPECT_RATIOS,
    source="docs.x.ai video generation, reference-to-video, video extension (late 2026)",
)
GROK_IMAGINE_VIDEO_15 = ModelRules(
    family="grok-imagine-video-1.5", operations=("generate",), resolutions=RESOLUTIONS,
    aspect_ratios=WIDE_ASPECT_RATIOS,
    # Only grok-imagine-video's reference→video is documented as capped at 10 s; 1.5 keeps the general range.
    reference_max_duration=15, image_with_references=True, reference_prompt_required=False, last_frame=True,
    max_keyframes=4, max_reference_audios=3,
    source="docs.x.ai model differences (late 2026)",
)
GROK_IMAGINE_VIDEO_15_LITE = replace(
    GROK_IMAGINE_VIDEO_15, family="grok-imagine-video-1.5-lite",
    # text→video and image→video only: no references, voices, last frame or keyframes; 1080p is upscaled from 720p.
    max_reference_images=0, last_frame=False, max_keyframes=0, max_reference_audios=0,
    source="docs.x.ai model differences (late 2026); released about 2026-09-30",
)
#: The limits for a name grok_nb does not know: whatever any known model accepts. Reference→video (images
#: or voices) is capped at 720p on every model, so here too.
GENERAL = ModelRules(
    family="", operations=OPERATIONS, resolutions=RESOLUTIONS, aspect_ratios=WIDE_ASPECT_RATIOS,
    reference_max_duration=15, image_with_references=True,
    reference_prompt_required=False, last_frame=True, max_keyframes=4, max_reference_audios=3, known=False,
    documented=False, source="general limits for a model grok_nb does not know",
)

MODELS: dict[str, ModelRules] = {r.family: r for r in (GROK_IMAGINE_VIDEO, GROK_IMAGINE_VIDEO_15,
                                                        GROK_IMAGINE_VIDEO_15_LITE)}
ALIASES: dict[str, str] = {"grok-imagine-video-1.5-preview": "grok-imagine-video-1.5"}
#: Date-pinned snapshots seen in xAI's docs (the service lists the current ones).
PINNED: dict[str, str] = {"grok-imagine-video-1.5-2026-05-30": "grok-imagine-video-1.5"}
#: xAI's chat, code and image model families (grok-2, grok-4-0709, grok-beta, grok-code-fast-1, grok-2-image,
#: grok-imagine-image): not video models, and a 404 from the service. Other unknown names (grok-imagine-2...)
#: still go out with a warning.
_NOT_VIDEO = re.compile(r"grok-(?:\d|beta|vision|code|imagine-image)(?!.*video)[A-Za-z0-9._:-]*", re.IGNORECASE)


@dataclass(frozen=True)
class Model:
    """A model name as given (and sent), with the family and rules it resolves to."""

    name: str
    rules: ModelRules
    pinned: str | None = None  # the date of a date-pinned name

    @property
    def family(self) -> str | None:
        """The known family (``grok-imagine-video-1.5`` for ``grok-imagine-video-1.5-2026-05-30``), or None."""
        return self.rules.family or None

    @property
    def known(self) -> bool:
        """False for a name grok_nb does not know (general limits apply)."""
        return self.rules.known


def family_of(name: Any) -> str | None:
    """The known family a name belongs to (aliases and date pins resolved), or None."""
    if not isinstance(name, str):
        return None
    name = ALIASES.get(name, PINNED.get(name, name))
    if name in MODELS:
        return str(name)
    pinned = _PINNED.fullmatch(name)
    if pinned:
        base = ALIASES.get(pinned["base"], pinned["base"])
        return base if base in MODELS else None
    return None


def check_name(value: Any, field_name: str = "model") -> str:
    """A string shaped like a model id (any id: the server judges names grok_nb does not know)."""
    allowed = "a model name such as " + ", ".join(MODELS) + " (letters, digits, '.', '-', '_', ':'; up to 128)"
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(field_name, value, allowed)
    return value


def resolve(value: Any = None) -> Model:
    """The model for a name (None means the default); raises ValidationError for impossible names.

    Impossible: not shaped like a model id, or one of xAI's chat, code or image models
    (``grok-2``, ``grok-4``, ``grok-2-image``...): those are not video models.
    """
    name = DEFAULT_MODEL if value is None else check_name(value)
    if _NOT_VIDEO.fullmatch(name):
        raise ValidationError("model", name, f"a video model such as {', '.join(MODELS)}; {name} is one of xAI's "
                                             "chat, code or image models (client.models() lists the video models "
                                             "your key can use)")
    family = family_of(name)
    pinned = _PINNED.fullmatch(name)
    return Model(name, MODELS[family] if family else GENERAL, pinned["date"] if pinned and family else None)


def unknown_model_note(name: str) -> str:
    """The one-line warning for a model name grok_nb does not know."""
    return (f"grok_nb does not know model {name!r}; checking general limits only and sending it as given "
            f"(the server decides). Known: {', '.join(MODELS)}; client.models() lists what your key can use")


def documented_for(operation: str) -> list[str]:
    """The known families whose docs document ``operation`` (generate, edit, extend)."""
    return [m for m, r in MODELS.items() if operation in r.operations]


def check_operation(model: Model, operation: str) -> None:
    """Refuse an operation a known model's docs leave out (the service answers failed_precondition, billed or not).

    A name grok_nb does not know is not refused here: it goes out with the unknown-model warning.
    """
    if not model.known or operation in model.rules.operations:
        return
    noun = {"edit": "edits", "extend": "extensions"}.get(operation, operation)
    takers = documented_for(operation)
    raise ValidationError("model", model.name, f"{' or '.join(takers)} (xAI documents {noun} for "
                                               f"{' and '.join(takers)} only; {model.name} answers "
                                               "failed_precondition)")


def allowed_values(operation: str = "generate") -> str:
    """What each argument of ``operation`` may be, per model (for docstrings, ``help()`` and Shift-Tab)."""
    if operation != "generate":
        noun = "edit" if operation == "edit" else "extension"
        where = ", ".join(documented_for(operation))
        if operation == "edit":
            return _wrap(f"Allowed values ({noun}s: {where} only): the input video is an MP4 of at most 8.7 s; the "
                         "output keeps its length and resolution (capped at 720p); no duration, resolution or "
                         "aspect_ratio.")
        return _wrap(f"Allowed values ({noun}s: {where} only): duration is the added part, 1-10 s (default 6; the "
                     "docs say 2-10 s); the input video is 2-30 s (the docs say 2-15 s); the output is capped at 720p.")
    lines = ["Allowed values: duration 1-15 s (default 8); resolution 480p (default), 720p, 1080p where the model "
             "has it; aspect_ratio default 16:9 (image→video follows the image); prompt up to 4,096 characters "
             "advised (a warning above); up to 7 reference_images; any reference→video (reference images or "
             "voices) at most 720p. Voices are tagged <AUDIO_0>, <AUDIO_1>... in the prompt (zero-based).", "",
             "Per model:"]
    for name, rules in MODELS.items():
        inputs = ["text→video", "image→video"]
        if rules.max_reference_images:
            inputs.append(f"reference_images (≤{rules.max_reference_images}, ≤{rules.reference_max_duration} s"
                          + (", prompt required" if rules.reference_prompt_required else "")
                          + ("" if rules.image_with_references else ", not with image=") + ")")
        if rules.last_frame:
            inputs.append("last_frame")
        if rules.max_keyframes:
            inputs.append(f"keyframes (≤{rules.max_keyframes}, 0 < timestamp_s < duration, 1/3-s grid)")
        if rules.max_reference_audios:
            inputs.append(f"reference_audios (≤{rules.max_reference_audios} voices)")
        lines.append(f"  {name}: {', '.join(rules.resolutions)}; aspect_ratio {' '.join(rules.aspect_ratios)}; "
                     f"{'; '.join(inputs)}; operations: {', '.join(rules.operations)}.")
    lines.append("  Other names are sent with a warning and checked against these limits combined.")
    return "\n".join(_wrap(line) for line in lines)


def _wrap(line: str, width: int = 100) -> str:
    indent = " " * (len(line) - len(line.lstrip()))
    return textwrap.fill(line, width, subsequent_indent=indent + ("    " if indent else "")) if line else line


_F = TypeVar("_F", bound=Callable[..., Any])


def with_allowed_values(operation: str) -> Callable[[_F], _F]:
    """A decorator adding :func:`allowed_values` to a method's docstring (what ``help()`` and Shift-Tab show)."""

    def decorate(func: _F) -> _F:
        doc = inspect.cleandoc(func.__doc__ or "")
        func.__doc__ = f"{doc}\n\n{allowed_values(operation)}"
        return func

    return decorate


def served_names() -> dict[str, str]:
    """Every name a service with grok_nb's known models answers to, mapped to its family (for the simulator)."""
    names = {m: m for m in MODELS}
    names.update(ALIASES)
    names.update(PINNED)
    return names


@dataclass(frozen=True)
class ModelInfo:
    """One entry of ``GET /v1/video-generation-models``, normalised."""

    id: str
    aliases: tuple[str, ...] = ()
    family: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def known(self) -> bool:
        """True when grok_nb knows this model's rules."""
        return self.family is not None

    @property
    def rules(self) -> ModelRules:
        """The rules grok_nb applies to it (general limits when unknown)."""
        return MODELS[self.family] if self.family else GENERAL


def parse_models_listing(body: Any) -> list[ModelInfo]:
    """Normalise ``GET /v1/video-generation-models``'s answer: ``{"models": [...]}``, ``{"data": [...]}`` or a list."""
    entries: Any = body
    if isinstance(body, dict):
        entries = body.get("models", body.get("data", [body] if "id" in body else []))
    if not isinstance(entries, list):
        return []
    listing: list[ModelInfo] = []
    for entry in entries:
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("id") or entry.get("name"), str):
            continue  # lenient: an entry without an id is skipped, not fatal
        model_id = str(entry.get("id") or entry.get("name"))
        raw_aliases = entry.get("aliases")
        aliases = tuple(a for a in raw_aliases if isinstance(a, str)) if isinstance(raw_aliases, list) else ()
        family = family_of(model_id) or next((f for f in map(family_of, aliases) if f), None)
        listing.append(ModelInfo(model_id, aliases, family, entry))
    return listing
