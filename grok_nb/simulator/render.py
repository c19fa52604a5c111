"""Real, playable MP4s for the simulator (PyAV: H.264 yuv420p, 24 fps, AAC stereo).

Runs in worker processes, so the server keeps answering while a video encodes. Every
picture is derived from the request: its prompt and its take (the simulator passes the
job's request id), so the same request always renders the same video. Frames are
streamed to the encoder, so memory stays flat however long the clip.

Every frame after an input image says what it is: a "SIMULATED" label, the job's
parameters, a seconds counter and the prompt are drawn once per clip (Pillow) in one band
along the top (the bottom is left to a player's controls) and blended onto each frame
with integer numpy arithmetic; the motion (shapes, paths, directions, speeds) is derived
from a hash of the prompt, so three prompts side by side never look alike.

What the prompt and the parameters change, so that ``grok_nb.measure`` finds it offline
(every word matched whole, in any case; ``look_for`` and ``motion_for`` are pure):

- Light: a dark word (``DARK_WORDS``: "night", "dark", "midnight", "moonlit"...) multiplies
  the scene's and the shapes' colours by 0.3; a bright one (``BRIGHT_WORDS``: "sunny",
  "bright", "daylight"...) moves the scene 35 % of the way to white. Both kinds: neither.
- Pace: a fast word (``FAST_WORDS``: "storm", "running", "race", "chase", "fast"...)
  multiplies the shapes' speed and spin by 3 and adds two shapes; a calm one
  (``CALM_WORDS``: "still", "calm", "quiet", "serene", "slow"...) multiplies them by 0.15
  and the camera's drift too. Both kinds: neither.
- Cuts: "cut to", "cuts to", "then cut", "hard cut", "jump cut" or "smash cut" makes a hard
  cut halfway through a text→video clip, to a second scene with the opposite hues and
  lightness, other scenery and other shapes.
- ``generate_audio: false``: the MP4 has no audio track at all (``measure`` then reports
  its audio fields as None); otherwise a soft chord chosen by the prompt.
- Takes: two jobs of one prompt are two takes (``Take``): the same scene and shapes, the
  shapes 0.1-0.4 s further along their paths, the palette's red, green and blue each within
  3 % and the camera's start within 5 % of the spare canvas. Two takes differ a little;
  two prompts differ entirely. ``RenderSpec.take == ""`` is the prompt's own video.
"""
from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import av
import httpx
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..api.probe import probe
from ..api.validation import nearest_aspect_ratio
from .clips import FPS, SAMPLE_RATE, clip_seconds

_X264_OPTIONS = {"preset": "ultrafast", "crf": "28", "tune": "fastdecode"}
MARK = "SIMULATED"
#: The label's colours: black on amber, like a warning sticker, whatever the picture behind it.
MARK_FG, MARK_BG = (0, 0, 0), (255, 196, 0)
#: The band is opaque: it hides what an edit or extension inherited, and where one part of a clip hands over to
#: the next only the text changes, not the picture showing through (which measures would count as a cut).
_BAND_RGBA = (12, 12, 16, 255)
_COUNTER_CHARS = "0123456789. /s"


@dataclass
class RenderSpec:
    """Everything a render needs, as plain data (it crosses a process boundary)."""

    kind: str  # generate, edit, extend
    prompt: str
    width: int
    height: int
    seconds: float  # new material: the whole clip (generate), or the added part (extend)
    generate_audio: bool = True
    image: bytes | None = None
    reference_images: list[bytes] = field(default_factory=list)
    input_video: str | None = None  # a local path (edit, extend)
    model: str = ""  # shown in the frames only
    take: str = ""  # which take of the prompt (the simulator passes the job's request id); "" its own video


def _seed(text: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


def _palette(rng: np.random.Generator, n: int = 3) -> np.ndarray:
    hues = (rng.random() + np.arange(n) / n) % 1.0
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.65, 0.9)] for h in hues], dtype=np.float32)


@lru_cache(maxsize=32)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans where the system has it (wide Unicode coverage), else Pillow's bundled font."""
    names = (("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf") if bold
             else ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"))
    for name in names:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def aspect_label(width: int, height: int) -> str:
    """The allowed aspect ratio nearest a frame's shape, e.g. ``16:9``."""
    return nearest_aspect_ratio(width, height)


def resolution_label(width: int, height: int) -> str:
    """``480p`` or ``720p`` (the short side), as the service names it."""
    return f"{min(width, height)}p"


# -- overlays: drawn once per clip, blended per frame ------------------------------------------------
class _Layer:
    """A pre-rendered RGBA patch at (x, y), blended with integer arithmetic and no per-frame allocation.

    Kept as colour × alpha and inverse alpha, both scaled by 256/255 so that the division is a
    shift: ``out = (frame × inv + pre) >> 8`` stays within uint16 for every input.
    """

    __slots__ = ("x", "y", "pre", "inv", "_acc")

    def __init__(self, rgba: np.ndarray, x: int, y: int):
        rgba = rgba.astype(np.uint32)
        alpha = rgba[..., 3:4]
        self.x, self.y = x, y
        # Rounded, plus half a step for the final shift: at most 255 × 256 + 255, within uint16.
        self.pre = ((rgba[..., :3] * alpha * 512 + 255) // 510 + 127).astype(np.uint16)
        self.inv = np.repeat(((255 - alpha) * 512 + 255) // 510, 3, axis=2).astype(np.uint16)
        self._acc = np.empty(self.pre.shape, np.uint16)  # scratch: no large temporaries per frame

    @classmethod
    def of(cls, image: Image.Image, x: int, y: int) -> _Layer:
        return cls(np.asarray(image.convert("RGBA")), x, y)

    def blend(self, frame: np.ndarray) -> None:
        """Composite onto ``frame`` (uint8 RGB, changed in place), clipped to its edges."""
        h, w = self.pre.shape[:2]
        x0, y0 = max(0, self.x), max(0, self.y)
        x1, y1 = min(frame.shape[1], self.x + w), min(frame.shape[0], self.y + h)
        if x1 <= x0 or y1 <= y0:
            return
        sy, sx = slice(y0 - self.y, y1 - self.y), slice(x0 - self.x, x1 - self.x)
        region, acc = frame[y0:y1, x0:x1], self._acc[sy, sx]
        np.multiply(region, self.inv[sy, sx], out=acc)
        acc += self.pre[sy, sx]
        acc >>= 8
        region[...] = acc


@dataclass(frozen=True)
class Layout:
    """Where the overlay goes in a frame of ``width`` × ``height`` (pure: no drawing).

    One band along the top: the "SIMULATED" label and the seconds counter, the parameters, then
    the prompt, up to ``prompt_lines`` lines. Nothing is written along the bottom, where a
    player's controls sit (JupyterLab's cover about 40 CSS pixels, a fifth of a small tile).
    """

    width: int
    height: int

    @property
    def unit(self) -> int:
        """The base text size: legible at 480p, scaled with the short side."""
        return max(12, round(min(self.width, self.height) / 20))

    @property
    def pad(self) -> int:
        return max(4, self.unit // 2)

    @property
    def row_h(self) -> int:
        """The label's row."""
        return round(self.unit * 1.4)

    @property
    def params_h(self) -> int:
        return round(self.unit * 1.05)

    @property
    def head_h(self) -> int:
        """The label's row and the parameters' line."""
        return self.row_h + self.params_h + self.pad // 2

    @property
    def prompt_size(self) -> int:
        return self.unit

    @property
    def line_h(self) -> int:
        return round(self.prompt_size * 1.25)

    @property
    def prompt_lines(self) -> int:
        return 4 if self.height > self.width else 3

    def prompt_h(self, lines: int | None = None) -> int:
        """The prompt's part of the band for ``lines`` lines (all of them by default)."""
        return (lines or self.prompt_lines) * self.line_h + self.pad

    def band_h(self, lines: int | None = None) -> int:
        """The whole top band with ``lines`` lines of prompt (all of them by default)."""
        return self.head_h + self.prompt_h(lines)

    @property
    def top_h(self) -> int:
        """The top band at its tallest: the picture below it is never written on."""
        return self.band_h()


def _wrap(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: float, lines: int) -> list[str]:
    """Greedy word wrap by measured width; the last line ends in an ellipsis when text is left over."""
    words, out, line = text.split(), [], ""
    for word in words:
        while font.getlength(word) > width and len(word) > 1:  # a word wider than the line is split
            cut = len(word)
            while cut > 1 and font.getlength(word[:cut]) > width:
                cut -= 1
            if line:
                out.append(line)
                line = ""
            out.append(word[:cut])
            word = word[cut:]
        candidate = f"{line} {word}".strip()
        if font.getlength(candidate) <= width:
            line = candidate
        else:
            out.append(line)
            line = word
    if line:
        out.append(line)
    if len(out) > lines:
        last = out[lines - 1]
        while last and font.getlength(last + " …") > width:
            last = last[:-1]
        out = out[:lines - 1] + [last.rstrip() + " …"]
    return out or [""]


def parameters_text(kind: str, model: str, width: int, height: int, seconds: float) -> str:
    """The parameters line drawn into every frame, e.g. ``generate · grok-imagine-video · 720p · 6 s · 16:9``."""
    parts = [kind, model or "grok-imagine-video", resolution_label(width, height), f"{seconds:g} s",
             aspect_label(width, height)]
    return " · ".join(parts)


def mark_box(width: int, height: int) -> tuple[int, int, int, int]:
    """The (x0, y0, x1, y1) of the opaque "SIMULATED" label in a frame of this size."""
    lay = Layout(width, height)
    text_w = math.ceil(_font(lay.unit, bold=True).getlength(MARK))
    return lay.pad, lay.pad // 2, lay.pad + text_w + lay.unit, lay.row_h - lay.pad // 4


def mark_image(width: int, height: int) -> np.ndarray:
    """The label's exact pixels (RGB), as every overlaid frame carries them at ``mark_box``."""
    lay = Layout(width, height)
    x0, y0, x1, y1 = mark_box(width, height)
    label = Image.new("RGB", (x1 - x0, y1 - y0), MARK_BG)
    ImageDraw.Draw(label).text(((x1 - x0) / 2, (y1 - y0) / 2), MARK, font=_font(lay.unit, bold=True),
                               fill=MARK_FG, anchor="mm")
    return np.asarray(label)


def _fitting_font(text: str, size: int, room: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The largest font from ``size`` down to 60 % of it in which ``text`` fits ``room`` pixels."""
    font = _font(size)
    for smaller in range(size, max(8, round(size * 0.6)) - 1, -1):
        font = _font(smaller)
        if font.getlength(text) <= room:
            break
    return font


class Overlay:
    """The clip's overlay: the label, the parameters, the prompt and a seconds counter; drawn once.

    ``full_band`` keeps the band at its full height, so that it covers the band an edited or
    extended input already carries, whatever the length of either prompt.
    """

    def __init__(self, width: int, height: int, *, kind: str, model: str, prompt: str, total_seconds: float,
                 prompt_prefix: str = "", full_band: bool = False):
        self.layout = lay = Layout(width, height)
        self.total = total_seconds
        self.width = width
        font = _font(lay.prompt_size)
        lines = _wrap(prompt_prefix + (f"“{prompt}”" if prompt else "(no prompt)"), font, width - 2 * lay.pad,
                      lay.prompt_lines)
        self.band_h = band_h = lay.band_h(None if full_band else len(lines))
        top = Image.new("RGBA", (width, band_h), _BAND_RGBA)
        draw = ImageDraw.Draw(top)
        x0, y0, x1, y1 = mark_box(width, height)
        top.paste(Image.fromarray(mark_image(width, height)).convert("RGBA"), (x0, y0))
        params = parameters_text(kind, model, width, height, total_seconds)
        small = _fitting_font(params, round(lay.unit * 0.8), width - 2 * lay.pad)
        draw.text((lay.pad, lay.row_h + lay.params_h / 2), _wrap(params, small, width - 2 * lay.pad, 1)[0],
                  font=small, fill=(235, 235, 235, 255), anchor="lm")
        # The prompt under the parameters, high in the frame: readable while a player shows its controls.
        first = lay.head_h + lay.line_h / 2
        for i, line in enumerate(lines):
            draw.text((lay.pad, first + i * lay.line_h), line, font=font, fill=(255, 255, 255, 255), anchor="lm")
        self._top = _Layer.of(top, 0, 0)
        # The counter sits at the right end of the label's row, composed per frame from pre-drawn glyphs.
        counter_font = _font(round(lay.unit * 0.85))
        self._glyphs = self._glyph_atlas(counter_font)
        self._counter_y = round((y0 + y1) / 2 - next(iter(self._glyphs.values())).shape[0] / 2)
        self._counter_right = width - lay.pad
        self._bar_y = band_h - max(2, lay.unit // 8)
        self._counters: dict[str, _Layer] = {}
        # Every tenth of a second composed from the glyphs now, not mid-clip: small arrays made between
        # frame-sized ones pin glibc's heap, and a worker's memory then grows by hundreds of MiB.
        for tenth in range(int(total_seconds * 10) + 2):
            self._counter_layer(self.counter(tenth / 10))

    @staticmethod
    def _glyph_atlas(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> dict[str, np.ndarray]:
        """Each counter character as RGBA, all the same height (a tabular width for digits)."""
        digit_w = max(math.ceil(font.getlength(d)) for d in "0123456789")
        ascent, descent = font.getmetrics() if hasattr(font, "getmetrics") else (getattr(font, "size", 10), 0)
        h = ascent + descent
        atlas = {}
        for ch in _COUNTER_CHARS:
            w = digit_w if ch.isdigit() else max(1, math.ceil(font.getlength(ch)))
            img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
            ImageDraw.Draw(img).text((w / 2, 0), ch, font=font, fill=(255, 224, 130, 255), anchor="ma")
            atlas[ch] = np.asarray(img)
        return atlas

    def _counter_layer(self, label: str) -> _Layer:
        layer = self._counters.get(label)
        if layer is None:
            text = np.concatenate([self._glyphs[c] for c in label], axis=1)
            layer = self._counters[label] = _Layer(text, self._counter_right - text.shape[1], self._counter_y)
        return layer

    def counter(self, t: float) -> str:
        """The counter's text at ``t`` seconds into the clip."""
        return f"{t:4.1f} / {self.total:.1f} s"

    def apply(self, frame: np.ndarray, t: float) -> np.ndarray:
        """Draw the overlay at ``t`` seconds onto ``frame`` (in place) and return it."""
        self._top.blend(frame)
        self._counter_layer(self.counter(t)).blend(frame)
        # A thin time bar along the band's lower edge: progress is visible without reading.
        done = int(self.width * min(1.0, t / max(self.total, 1e-9)))
        frame[self._bar_y:self.band_h, :done] = MARK_BG
        return frame


# -- motion: derived from the prompt -------------------------------------------------------------------
SHAPES = ("circle", "square", "triangle", "diamond", "star", "ring")
PATHS = ("bounce", "orbit", "lissajous", "wave", "rain", "spiral")


@dataclass(frozen=True)
class Motion:
    """How a prompt's shapes move: which shape, along which path, which way, how fast."""

    shape: str
    path: str
    count: int
    speed: float  # path cycles (or screen crossings) per second
    direction: float  # radians: the heading of straight paths, the start angle of round ones
    clockwise: bool
    spin: float  # turns per second of each shape
    pan: tuple[float, float]  # the camera's drift over the background, in (-1..1, -1..1)
    hue: float
    light: float = 1.0  # the shapes' brightness: below 1 at night


def motion_for(prompt: str) -> Motion:
    """The motion a prompt draws: a pure function of its hash (same prompt, same motion), at its words' pace."""
    rng = _seed("motion:" + prompt)
    angle = float(rng.uniform(0, 2 * math.pi))
    look = look_for(prompt)
    drift = min(1.0, look.pace)  # the camera drifts less over a calm scene; it already crosses it once
    return Motion(shape=SHAPES[int(rng.integers(len(SHAPES)))], path=PATHS[int(rng.integers(len(PATHS)))],
                  count=int(rng.integers(3, 8)) + (2 if look.pace > 1 else 0),
                  speed=float(rng.uniform(0.12, 0.4)) * look.pace, direction=angle,
                  clockwise=bool(rng.integers(2)), spin=float(rng.uniform(-0.5, 0.5)) * look.pace,
                  pan=(drift * math.cos(angle + 1.0), drift * math.sin(angle + 1.0)), hue=float(rng.random()),
                  light=min(1.0, look.light))


# -- what the prompt's words ask for -------------------------------------------------------------------
#: Words that darken the scene (matched whole, in any case).
DARK_WORDS = frozenset({"night", "nighttime", "dark", "darkness", "midnight", "moonlit", "moonlight", "gloomy",
                        "shadowy", "unlit"})
#: Words that brighten it.
BRIGHT_WORDS = frozenset({"sunny", "sunlit", "sunshine", "bright", "daylight", "noon", "midday", "dazzling"})
#: Words that speed up the shapes (and add two) and the camera's drift.
FAST_WORDS = frozenset({"storm", "stormy", "hurricane", "running", "run", "runs", "race", "racing", "chase",
                        "chasing", "gallop", "galloping", "fast", "rushing", "sprint", "sprinting", "frantic",
                        "explosion", "stampede"})
#: Words that slow them almost to a stop.
CALM_WORDS = frozenset({"still", "calm", "quiet", "serene", "slow", "slowly", "peaceful", "tranquil",
                        "motionless", "static", "gentle"})
#: Phrases that ask for a hard cut.
CUT_PHRASES = re.compile(r"\b(cut to|cuts to|then cut|hard cut|jump cut|smash cut)\b", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+")
#: What each kind of word does: the scene's light (dark, bright) and the shapes' pace (fast, calm).
DARK_LIGHT, BRIGHT_LIGHT, FAST_PACE, CALM_PACE = 0.3, 1.35, 3.0, 0.15


@dataclass(frozen=True)
class Look:
    """What a prompt's words ask of the picture (pure: a function of the prompt's words)."""

    light: float  # 1 as drawn; below 1 darker (× the colours), above 1 lighter (toward white by light − 1)
    pace: float  # × the shapes' speed and spin; the camera drifts × min(1, pace)
    cut: bool  # a hard cut halfway: a second scene with the opposite colours and its own shapes


def look_for(prompt: str) -> Look:
    """The look a prompt's words ask for: words of both kinds (dark and bright, fast and calm) cancel out."""
    words = set(_WORD.findall((prompt or "").lower()))
    dark, bright = bool(words & DARK_WORDS), bool(words & BRIGHT_WORDS)
    fast, calm = bool(words & FAST_WORDS), bool(words & CALM_WORDS)
    light = DARK_LIGHT if dark and not bright else BRIGHT_LIGHT if bright and not dark else 1.0
    pace = FAST_PACE if fast and not calm else CALM_PACE if calm and not fast else 1.0
    return Look(light=light, pace=pace, cut=bool(CUT_PHRASES.search(prompt or "")))


def _lit(image: np.ndarray, light: float) -> np.ndarray:
    """``image`` (uint8 RGB) in the look's light: scaled down below 1, moved toward white above it."""
    if light == 1.0:
        return image
    img = image.astype(np.float32)
    img = img * light if light < 1 else img + (255 - img) * (light - 1)
    return np.clip(img, 0, 255).astype(np.uint8)


def _tri(x: float) -> float:
    """A triangle wave in [0, 1] with period 1 (bouncing between two walls)."""
    x %= 1.0
    return 2 * x if x < 0.5 else 2 - 2 * x


def positions(motion: Motion, t: float, box: tuple[float, float, float, float]) -> list[tuple[float, float]]:
    """Each shape's centre at ``t`` seconds, inside ``box`` = (x0, y0, x1, y1) (pure)."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    sign = -1.0 if motion.clockwise else 1.0
    out = []
    for k in range(motion.count):
        f = k / motion.count
        u = motion.speed * t
        if motion.path == "bounce":
            dx, dy = math.cos(motion.direction + k), math.sin(motion.direction + k)
            x, y = x0 + (x1 - x0) * _tri(f * 0.7 + u * dx), y0 + (y1 - y0) * _tri(f * 0.3 + u * dy * 1.3)
        elif motion.path == "orbit":
            a = motion.direction + 2 * math.pi * (f + sign * u)
            r = 0.45 + 0.5 * (k % 2)
            x, y = cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)
        elif motion.path == "lissajous":
            a = 2 * math.pi * (u + f)
            x, y = cx + rx * 0.85 * math.sin(3 * a + motion.direction), cy + ry * 0.85 * math.sin(2 * a * sign)
        elif motion.path == "wave":
            head = 1.0 if math.cos(motion.direction) >= 0 else -1.0
            s = (f + head * u) % 1.0
            x = x0 - rx * 0.2 + (x1 - x0 + rx * 0.4) * s
            y = cy + ry * 0.6 * math.sin(2 * math.pi * (s * 2 + f))
        elif motion.path == "rain":
            head = 1.0 if math.sin(motion.direction) >= 0 else -1.0
            s = (f * 1.7 + head * u * (1 + 0.3 * (k % 3))) % 1.0
            x, y = x0 + (x1 - x0) * (f + 0.5 / motion.count), y0 - ry * 0.2 + (y1 - y0 + ry * 0.4) * s
        else:  # spiral
            a = motion.direction + 2 * math.pi * (f + sign * u * 1.5)
            r = 0.15 + 0.8 * _tri(u * 0.5 + f / 2)
            x, y = cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)
        out.append((x, y))
    return out


def _shape_image(shape: str, size: int, colour: tuple[int, int, int], angle: float,
                 outline: int = 255) -> Image.Image:
    """One shape, outlined (grey level ``outline``) so it reads on any background, drawn at 4× and scaled down."""
    big = size * 4
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    c, r, line = big / 2, big * 0.42, max(4, big // 14)
    fill, outline_rgba = colour + (255,), (outline, outline, outline, 235)

    def poly(n: int, inner: float | None = None) -> list[tuple[float, float]]:
        pts = []
        for i in range(n * (2 if inner else 1)):
            rad = r if not inner or i % 2 == 0 else r * inner
            a = angle + math.pi * 2 * i / (n * (2 if inner else 1)) - math.pi / 2
            pts.append((c + rad * math.cos(a), c + rad * math.sin(a)))
        return pts

    if shape == "circle":
        draw.ellipse((c - r, c - r, c + r, c + r), fill=fill, outline=outline_rgba, width=line)
    elif shape == "ring":
        draw.ellipse((c - r, c - r, c + r, c + r), outline=fill, width=line * 3)
        draw.ellipse((c - r, c - r, c + r, c + r), outline=outline_rgba, width=line // 2)
    else:
        pts = {"square": lambda: poly(4), "triangle": lambda: poly(3), "diamond": lambda: poly(4),
               "star": lambda: poly(5, 0.45)}[shape]()
        if shape == "square":  # a square sits flat; a diamond stands on its corner
            pts = [(c + (x - c) * math.cos(math.pi / 4) - (y - c) * math.sin(math.pi / 4),
                    c + (x - c) * math.sin(math.pi / 4) + (y - c) * math.cos(math.pi / 4)) for x, y in pts]
        draw.polygon(pts, fill=fill, outline=outline_rgba, width=line)
    return img.reduce(4)


class Sprites:
    """The prompt's moving shapes, pre-drawn (with a few rotation steps) and placed per frame."""

    STEPS = 12  # rotation steps per period of the shape's symmetry
    #: The turn after which each shape looks the same again.
    PERIOD = {"square": 0.25, "diamond": 0.5, "triangle": 1 / 3, "star": 0.2}

    def __init__(self, motion: Motion, width: int, height: int, offset: float = 0.0):
        lay = Layout(width, height)
        self.motion = motion
        self.offset = offset  # seconds the shapes are ahead on their paths (a take of the same prompt)
        self.box = (0.08 * width, lay.top_h + 0.05 * height, 0.92 * width, 0.95 * height)
        base = min(width, height)
        symmetric = motion.shape in ("circle", "ring")
        self._frames: list[list[_Layer]] = []
        for k in range(motion.count):
            size = max(10, round(base * (0.09 + 0.05 * ((k * 7) % 3))))
            rgb = colorsys.hsv_to_rgb((motion.hue + k / (motion.count * 3)) % 1.0, 0.85, motion.light)
            colour = (int(255 * rgb[0]), int(255 * rgb[1]), int(255 * rgb[2]))
            steps = 1 if symmetric or motion.spin == 0 else self.STEPS
            period = self.PERIOD.get(motion.shape, 1.0)
            self._frames.append([_Layer.of(_shape_image(motion.shape, size, colour, 2 * math.pi * period * s / steps,
                                                        outline=round(255 * motion.light)), 0, 0)
                                 for s in range(steps)])
        self._period = self.PERIOD.get(motion.shape, 1.0)

    def apply(self, frame: np.ndarray, t: float) -> np.ndarray:
        """Draw every shape where the motion puts it at ``t`` seconds (plus the take's offset)."""
        t += self.offset
        for k, (x, y) in enumerate(positions(self.motion, t, self.box)):
            steps = self._frames[k]
            layer = steps[int(round(self.motion.spin * t / self._period * self.STEPS)) % len(steps)]
            size = layer.pre.shape[0]
            layer.x, layer.y = int(x) - size // 2, int(y) - size // 2
            layer.blend(frame)
        return frame


# -- the kinds of clip ---------------------------------------------------------------------------------
def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The whole image inside the frame, over a blurred, zoomed copy of itself."""
    image = image.convert("RGB")
    scale = min(width / image.width, height / image.height)
    inner_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    inner = image.resize(inner_size, Image.Resampling.LANCZOS)
    cover = max(width / image.width, height / image.height)
    size = (max(width, round(image.width * cover)), max(height, round(image.height * cover)))
    back = image.resize(size, Image.Resampling.BILINEAR)
    left, top = (back.width - width) // 2, (back.height - height) // 2
    canvas = back.crop((left, top, left + width, top + height)).filter(ImageFilter.GaussianBlur(12))
    canvas.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2))
    return canvas


def _ken_burns(still: Image.Image, n: int, zoom_to: float = 1.18, drift: tuple[float, float] = (0.04, 0.02),
               start: int = 0, total: int | None = None) -> Iterator[np.ndarray]:
    """Frames of a slow zoom and pan over a still: frame ``start`` of ``total`` is the still when start is 0."""
    total = total or n
    w, h = still.size
    for i in range(start, start + n):
        t = i / max(1, total - 1)
        z = 1 + (zoom_to - 1) * t
        cw, ch = w / z, h / z
        cx = w / 2 + drift[0] * w * t
        cy = h / 2 + drift[1] * h * t
        x0 = min(max(0.0, cx - cw / 2), w - cw)
        y0 = min(max(0.0, cy - ch / 2), h - ch)
        yield np.array(still.resize((w, h), Image.Resampling.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))


def _background(spec: RenderSpec, colours: np.ndarray, rng: np.random.Generator, cw: int, ch: int) -> np.ndarray:
    """The scene behind the shapes: a gradient, soft scenery, reference thumbnails, a faint watermark."""
    h, q = spec.height, 4  # the soft part is drawn at a quarter of the size, then scaled up
    sw, sh = max(1, cw // q), max(1, ch // q)
    grad = np.linspace(0, 1, sh, dtype=np.float32)[:, None, None]
    img = Image.fromarray(np.repeat(colours[0] * (1 - grad) + colours[1] * grad, sw, axis=1).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(10):  # scenery placed by the prompt's hash, kept soft so the shapes stand out
        x, y = rng.random() * sw, rng.random() * sh
        r = (0.04 + rng.random() * 0.14) * h / q
        col = colours[int(rng.integers(0, len(colours)))] * (0.55 + rng.random() * 0.3)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(min(255, int(c)) for c in col))
    img = img.filter(ImageFilter.GaussianBlur(max(1, h // 240))).resize((cw, ch), Image.Resampling.BILINEAR)
    for i, ref in enumerate(spec.reference_images[:7]):  # show what guided the style
        thumb = Image.open(io.BytesIO(ref)).convert("RGB")
        thumb.thumbnail((h // 6, h // 6))
        img.paste(thumb, (int(cw * 0.15) + i * (h // 6 + 6), int(ch * 0.3)))
    # A faint, tiled watermark: even a cropped thumbnail of a simulated clip says what it is.
    mark = Image.new("RGBA", img.size, (0, 0, 0, 0))
    font = _font(max(14, min(spec.width, h) // 8), bold=True)
    mdraw = ImageDraw.Draw(mark)
    step_x, step_y = int(font.getlength(MARK) * 1.5), int(min(spec.width, h) / 2.6)
    for row, y in enumerate(range(0, ch, step_y)):
        for x in range(-(row % 2) * step_x // 2, cw, step_x):
            mdraw.text((x, y), MARK, font=font, fill=(255, 255, 255, 34))
    img = Image.alpha_composite(img.convert("RGBA"), mark).convert("RGB")
    return np.asarray(img)


def _opposite(colours: np.ndarray) -> np.ndarray:
    """A palette unlike ``colours`` (RGB rows): each hue turned half-way round, a light palette made dark and a
    dark one light, so that a cut between them changes every part of the picture."""
    light = float(colours.mean()) >= 110
    out = []
    for r, g, b in colours / 255:
        hue, sat, _ = colorsys.rgb_to_hsv(float(r), float(g), float(b))
        out.append(colorsys.hsv_to_rgb((hue + 0.5) % 1.0, max(sat, 0.5), 0.25 if light else 1.0))
    rgb = np.array(out, dtype=np.float32) * 255
    return rgb if light else rgb + (255 - rgb) * 0.45


@dataclass(frozen=True)
class Take:
    """How one take of a prompt differs from another: a little (the service's takes differ too)."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)  # × the palette's red, green, blue
    offset: float = 0.0  # seconds the shapes are ahead on their paths
    nudge: tuple[float, float] = (0.0, 0.0)  # the camera's start, as a share of the spare canvas

    @classmethod
    def of(cls, take: str) -> Take:
        """The take named ``take`` (a job's request id); the empty name is the prompt's own video."""
        if not take:
            return cls()
        rng = _seed("take:" + take)
        gains = rng.uniform(0.97, 1.03, 3)
        return cls(gains=(float(gains[0]), float(gains[1]), float(gains[2])), offset=float(rng.uniform(0.1, 0.4)),
                   nudge=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))))


def _scene_frames(spec: RenderSpec, n: int) -> Iterator[np.ndarray]:
    """Text→video: a scene from the prompt, a camera drifting over it, the prompt's shapes moving.

    The prompt's words set the look (``look_for``): its light, its pace, a hard cut halfway to a
    second scene. The take moves the shapes along their paths and shifts the colours a little.
    """
    w, h = spec.width, spec.height
    rng = _seed(spec.prompt)
    look, take = look_for(spec.prompt), Take.of(spec.take)
    colours = _palette(rng)
    if spec.reference_images:  # style guidance: the palette comes from the references
        colours = np.array([np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((8, 8))).reshape(-1, 3).mean(0)
                            for b in spec.reference_images[:3]], dtype=np.float32)
        while len(colours) < 3:
            colours = np.vstack([colours, colours[-1] * 0.6])
    colours = np.clip(colours * np.asarray(take.gains, dtype=np.float32), 0, 255)
    cw, ch = int(w * 1.3), int(h * 1.3)
    motion = motion_for(spec.prompt)
    scenes = [(_lit(_background(spec, colours, rng, cw, ch), look.light), Sprites(motion, w, h, take.offset),
               motion.pan)]
    cut_at = n
    if look.cut and n >= 2:
        # After the cut: the opposite hues and lightness, the gradient upside down, other scenery and shapes.
        second = "cut:" + spec.prompt
        motion = motion_for(second)
        scenes.append((_lit(_background(spec, _opposite(colours)[::-1], _seed(second), cw, ch), look.light),
                       Sprites(motion, w, h, take.offset), motion.pan))
        cut_at = n // 2
    overlay = Overlay(w, h, kind="generate", model=spec.model, prompt=spec.prompt, total_seconds=n / FPS)
    nx, ny = take.nudge
    for i in range(n):
        t = i / FPS
        canvas, sprites, (px, py) = scenes[0] if i < cut_at else scenes[1]
        s = i / max(1, n - 1)  # the camera crosses the spare canvas once, in the prompt's direction
        x0 = int((cw - w) * min(1.0, max(0.0, 0.5 + nx + 0.5 * px * (2 * s - 1))))
        y0 = int((ch - h) * min(1.0, max(0.0, 0.5 + ny + 0.5 * py * (2 * s - 1))))
        frame = canvas[y0:y0 + h, x0:x0 + w].copy()
        sprites.apply(frame, t)
        yield overlay.apply(frame, t)


def _input_frames(path: str, width: int, height: int) -> Iterator[np.ndarray]:
    with av.open(path) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(width=width, height=height, format="rgb24")


def _tint(prompt: str) -> np.ndarray:
    """The edit's recolouring: a hue turn of 60–300° (about the grey axis) chosen by the prompt."""
    angle = math.radians(float(_seed("edit:" + prompt).uniform(60, 300)))
    cos, sin, third = math.cos(angle), math.sin(angle), 1 / 3
    root = math.sqrt(third)
    a, b, c = cos + (1 - cos) * third, third * (1 - cos) - root * sin, third * (1 - cos) + root * sin
    return np.array([[a, b, c], [c, a, b], [b, c, a]], dtype=np.float32)


def _edit_frames(spec: RenderSpec, input_seconds: float) -> Iterator[np.ndarray]:
    """An edit: the input's frames recoloured by the prompt, with the edit's own shapes and overlay."""
    mix = _tint(spec.prompt).T.copy()
    overlay = Overlay(spec.width, spec.height, kind="edit", model=spec.model, prompt=spec.prompt,
                      total_seconds=input_seconds, prompt_prefix="edit: ", full_band=True)
    motion = motion_for(spec.prompt)
    sprites = Sprites(replace(motion, count=min(motion.count, 3)), spec.width, spec.height)
    for i, frame in enumerate(_input_frames(spec.input_video, spec.width, spec.height)):  # type: ignore[arg-type]
        out = np.clip(frame.astype(np.float32) @ mix, 0, 255).astype(np.uint8)
        t = i / FPS
        sprites.apply(out, t)
        yield overlay.apply(out, t)


def _extend_frames(spec: RenderSpec, n_new: int) -> Iterator[np.ndarray]:
    """An extension: the input unchanged, then new frames moving on from its last frame."""
    last = None
    count = 0
    for frame in _input_frames(spec.input_video, spec.width, spec.height):  # type: ignore[arg-type]
        last = frame
        count += 1
        yield frame
    if last is None:
        raise ValueError("the input video has no frames")
    motion = motion_for("extend:" + spec.prompt)
    overlay = Overlay(spec.width, spec.height, kind="extend", model=spec.model, prompt=spec.prompt,
                      total_seconds=(count + n_new) / FPS, prompt_prefix="next: ", full_band=True)
    sprites = Sprites(replace(motion, count=min(motion.count, 4)), spec.width, spec.height)
    drift = (0.05 * motion.pan[0], 0.03 * motion.pan[1])
    # Start the motion at its second step, so no frame repeats the input's last one.
    for i, frame in enumerate(_ken_burns(Image.fromarray(last), n_new, zoom_to=1.2, drift=drift, start=1,
                                         total=n_new + 1)):
        t = (count + i) / FPS
        sprites.apply(frame, t - count / FPS)
        yield overlay.apply(frame, t)


def _image_frames(spec: RenderSpec, n: int) -> Iterator[np.ndarray]:
    """Image→video: frame 0 is the image fitted to the frame, then the camera moves in the prompt's direction."""
    still = _fit(Image.open(io.BytesIO(spec.image)), spec.width, spec.height)  # type: ignore[arg-type]
    motion = motion_for(spec.prompt)
    overlay = Overlay(spec.width, spec.height, kind="image→video", model=spec.model, prompt=spec.prompt,
                      total_seconds=n / FPS)
    zoom = 1.12 + 0.12 * motion.speed / 0.4
    drift = (0.05 * motion.pan[0], 0.03 * motion.pan[1])
    for i, frame in enumerate(_ken_burns(still, n, zoom_to=zoom, drift=drift)):
        # Frame 0 is the image itself, as the service promises; every later frame says what it is.
        yield frame if i == 0 else overlay.apply(frame, i / FPS)
def _audio(prompt: str, seconds: float) -> np.ndarray:
    """A soft chord chosen by the prompt, stereo float32 (2, samples)."""
    rng = _seed("audio:" + prompt)
    n = int(round(seconds * SAMPLE_RATE))
    t = np.arange(n, dtype=np.float32) / SAMPLE_RATE
    base = 110 * 2 ** (rng.integers(0, 24) / 12)
    sig = sum(np.sin(2 * np.pi * base * ratio * t) for ratio in (1, 1.25, 1.5)) / 3
    env = np.minimum(1, np.minimum(t / 0.3, (seconds - t) / 0.3 + 1e-3)).clip(0, 1)
    left = (0.25 * sig * env).astype(np.float32)
    right = (0.25 * np.roll(sig, 240) * env).astype(np.float32)
    return np.stack([left, right])


def render(spec: RenderSpec, out_path: str) -> dict[str, Any]:
    """Render ``spec`` to ``out_path`` (atomically) and return its width, height and seconds."""
    n_new = int(round(clip_seconds(spec.seconds) * FPS))
    if spec.kind == "edit":
        frames = _edit_frames(spec, probe(spec.input_video).duration)  # type: ignore[arg-type]
    elif spec.kind == "extend":
        frames = _extend_frames(spec, n_new)
    elif spec.image is not None:
        frames = _image_frames(spec, n_new)
    else:
        frames = _scene_frames(spec, n_new)
    tmp = f"{out_path}.{os.getpid()}.part"
    count = 0
    with av.open(tmp, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS, options=_X264_OPTIONS)
        video.width, video.height, video.pix_fmt = spec.width, spec.height, "yuv420p"
        # Every stream must exist before the first packet is muxed; audio is encoded after the
        # video, when the real frame count (and so its length) is known.
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="stereo") if spec.generate_audio else None
        for count, array in enumerate(frames, start=1):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = count - 1
            container.mux(video.encode(frame))
        container.mux(video.encode())
        seconds = count / FPS
        if audio is not None:
            samples = _audio(spec.prompt, seconds)
            step = SAMPLE_RATE // 10
            for start in range(0, samples.shape[1], step):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + step]),
                                                   format="fltp", layout="stereo")
                chunk.sample_rate, chunk.pts = SAMPLE_RATE, start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode())
    Path(tmp).replace(out_path)
    return {"width": spec.width, "height": spec.height, "seconds": seconds}


class RenderRefused(Exception):
    """The job cannot be rendered: it fails with this API error code and message."""

    def __init__(self, code: str, message: str):
        self.code, self.message = code, message
        super().__init__(f"{code}: {message}")


def _fetch(url: str, media_dir: str, what: str) -> bytes:
    """Bytes behind a data URI, this simulator's own media URL, or any reachable http(s) URL."""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2], validate=True)
        except ValueError:
            raise RenderRefused("invalid_argument", f"the {what} data URI is not valid base64") from None
    name = Path(urlsplit(url).path).name
    local = Path(media_dir) / name
    if urlsplit(url).path.startswith("/media/") and local.is_file():
        return local.read_bytes()
    try:
        answer = httpx.get(url, timeout=10.0, follow_redirects=True)
        answer.raise_for_status()
        return answer.content
    except Exception as exc:  # any failure to fetch is the caller's problem, not a crash
        raise RenderRefused("failed_precondition", f"could not fetch the {what} at {url[:80]}: {exc}") from None


def execute(job: dict[str, Any]) -> dict[str, Any]:
    """Worker-process entry: fetch inputs, check them, render; raises RenderRefused on bad input."""
    media_dir, out_path = job["media_dir"], job["out_path"]
    kind = job["kind"]
    spec = RenderSpec(kind=kind, prompt=job.get("prompt") or "", width=job["width"], height=job["height"],
                      seconds=job["seconds"], generate_audio=job.get("generate_audio", True),
                      model=job.get("model") or "", take=job.get("take") or "")
    if job.get("image_url"):
        spec.image = _fetch(job["image_url"], media_dir, "image")
    spec.reference_images = [_fetch(u, media_dir, "reference image") for u in job.get("reference_urls", [])]
    for blob in ([spec.image] if spec.image else []) + spec.reference_images:
        try:
            Image.open(io.BytesIO(blob)).verify()
        except Exception:
            raise RenderRefused("invalid_argument", "an input image could not be decoded") from None
    if kind in ("edit", "extend"):
        data = _fetch(job["video_url"], media_dir, "video")
        local = Path(out_path).with_suffix(".input.mp4")
        local.write_bytes(data)
        spec.input_video = str(local)
        try:
            info = probe(local)
            in_w, in_h, in_seconds = info.width, info.height, info.duration
        except Exception:
            raise RenderRefused("invalid_argument", "the input video is not a readable MP4") from None
        lo, hi = job["input_range"]
        if not lo <= in_seconds <= hi + 1e-6:
            raise RenderRefused("invalid_argument",
                                f"the input video is {in_seconds:.1f} s; it must be {lo:g} to {hi:g} s for {kind}")
        # Output keeps the input's shape, its short side capped at 720.
        scale = min(1.0, 720 / min(in_w, in_h))
        spec.width, spec.height = (int(round(in_w * scale / 2)) * 2, int(round(in_h * scale / 2)) * 2)
        try:
            return {**render(spec, out_path), "input_seconds": in_seconds}
        finally:
            local.unlink(missing_ok=True)
    return render(spec, out_path)

