"""Real, playable MP4s for the simulator (PyAV: H.264 yuv420p, 24 fps, AAC stereo).

Runs in worker processes, so the server keeps answering while a video encodes. Every
picture is derived from the request (same prompt, same video), and frames are streamed
to the encoder, so memory stays flat however long the clip.
"""

from __future__ import annotations

import hashlib
import io
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..probe import probe

FPS = 24
SAMPLE_RATE = 48_000
_X264_OPTIONS = {"preset": "ultrafast", "crf": "28", "tune": "fastdecode"}


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


def _seed(text: str) -> np.random.Generator:
    return np.random.default_rng(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little"))


def _palette(rng: np.random.Generator, n: int = 3) -> np.ndarray:
    hues = (rng.random() + np.arange(n) / n) % 1.0
    import colorsys

    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb(h, 0.65, 0.9)] for h in hues], dtype=np.float32)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _caption(text: str, width: int, height: int, *, top: bool = False, tag: str = "grok_nb simulator") -> tuple[np.ndarray, np.ndarray, int]:
    """A translucent text band: (rgb, alpha, y) to blend onto frames."""
    size = max(14, height // 22)
    font = _font(size)
    chars = max(10, int(width / (size * 0.55)))
    lines = textwrap.wrap(text, chars)[:3] or [""]
    band_h = (len(lines) + 1) * int(size * 1.3) + size // 2
    band = Image.new("RGBA", (width, band_h), (0, 0, 0, 150))
    draw = ImageDraw.Draw(band)
    small = _font(max(10, size * 2 // 3))
    draw.text((size // 2, size // 5), tag, font=small, fill=(255, 210, 80, 255))
    for i, line in enumerate(lines):
        draw.text((size // 2, int(size * 1.3) * i + int(size * 1.0)), line, font=font, fill=(255, 255, 255, 255))
    arr = np.asarray(band, dtype=np.float32)
    y = 0 if top else height - band_h
    return arr[..., :3], arr[..., 3:] / 255.0, y


def _blend(frame: np.ndarray, cap: tuple[np.ndarray, np.ndarray, int]) -> np.ndarray:
    rgb, alpha, y = cap
    h = min(rgb.shape[0], frame.shape[0] - y)
    region = frame[y:y + h].astype(np.float32)
    frame[y:y + h] = (region * (1 - alpha[:h]) + rgb[:h] * alpha[:h]).astype(np.uint8)
    return frame


def _fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """The whole image inside the frame, over a blurred, zoomed copy of itself."""
    image = image.convert("RGB")
    scale = min(width / image.width, height / image.height)
    inner = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.LANCZOS)
    cover = max(width / image.width, height / image.height)
    back = image.resize((max(width, round(image.width * cover)), max(height, round(image.height * cover))), Image.BILINEAR)
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
        yield np.asarray(still.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch)))


def _scene_frames(spec: RenderSpec, n: int) -> Iterator[np.ndarray]:
    """Text→video: a scene drawn from the prompt, a camera panning over it, a moving light."""
    w, h = spec.width, spec.height
    rng = _seed(spec.prompt)
    colours = _palette(rng)
    if spec.reference_images:  # style guidance: the palette comes from the references
        colours = np.array([np.asarray(Image.open(io.BytesIO(b)).convert("RGB").resize((8, 8))).reshape(-1, 3).mean(0)
                            for b in spec.reference_images[:3]], dtype=np.float32)
        while len(colours) < 3:
            colours = np.vstack([colours, colours[-1] * 0.6])
    cw, ch = int(w * 1.35), int(h * 1.35)
    grad = np.linspace(0, 1, ch, dtype=np.float32)[:, None, None]
    canvas = colours[0] * (1 - grad) + colours[1] * grad
    canvas = np.repeat(canvas, cw, axis=1)
    img = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(14):  # the "scenery": shapes placed by the prompt's hash
        x, y = rng.random() * cw, rng.random() * ch
        r = (0.04 + rng.random() * 0.16) * h
        col = tuple(int(c) for c in colours[int(rng.integers(0, len(colours)))] * (0.5 + rng.random() * 0.7))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=tuple(min(255, c) for c in col))
    for i, ref in enumerate(spec.reference_images[:7]):  # show what guided the style
        thumb = Image.open(io.BytesIO(ref)).convert("RGB")
        thumb.thumbnail((h // 6, h // 6))
        img.paste(thumb, (int(cw * 0.15) + i * (h // 6 + 6), int(ch * 0.15)))
    canvas = np.asarray(img.filter(ImageFilter.GaussianBlur(2)))
    sprite_r = max(8, h // 12)
    yy, xx = np.mgrid[-sprite_r:sprite_r, -sprite_r:sprite_r]
    sprite_a = np.clip(1.0 - np.sqrt(xx ** 2 + yy ** 2) / sprite_r, 0, 1)[..., None].astype(np.float32)
    light = np.array([255, 250, 220], dtype=np.float32)
    cap = _caption(spec.prompt, w, h)
    phase = rng.random() * 6.28
    for i in range(n):
        t = i / max(1, n - 1)
        x0 = int((cw - w) * t)
        y0 = int((ch - h) * (0.5 + 0.5 * np.sin(phase + 2 * t)))
        frame = canvas[y0:y0 + h, x0:x0 + w].copy()
        sx = int(w / 2 + w * 0.35 * np.sin(phase + 5 * t)) - sprite_r
        sy = int(h * 0.4 + h * 0.2 * np.cos(phase + 7 * t)) - sprite_r
        sx, sy = min(max(0, sx), w - 2 * sprite_r), min(max(0, sy), h - 2 * sprite_r)
        region = frame[sy:sy + 2 * sprite_r, sx:sx + 2 * sprite_r].astype(np.float32)
        frame[sy:sy + 2 * sprite_r, sx:sx + 2 * sprite_r] = (region * (1 - sprite_a) + light * sprite_a).astype(np.uint8)
        yield _blend(frame, cap)


def _input_frames(path: str, width: int, height: int) -> Iterator[np.ndarray]:
    with av.open(path) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(width=width, height=height, format="rgb24")


def _tint(prompt: str) -> np.ndarray:
    rng = _seed("edit:" + prompt)
    mix = np.eye(3, dtype=np.float32) * 0.6 + rng.random((3, 3)).astype(np.float32) * 0.3
    return mix / mix.sum(axis=1, keepdims=True) * 1.1


def _edit_frames(spec: RenderSpec) -> Iterator[np.ndarray]:
    """An edit: the input's frames, recoloured by the prompt, with the edit written on them."""
    mix = _tint(spec.prompt)
    cap = _caption("edit: " + spec.prompt, spec.width, spec.height, top=True)
    for frame in _input_frames(spec.input_video, spec.width, spec.height):  # type: ignore[arg-type]
        out = np.clip(frame.astype(np.float32) @ mix.T, 0, 255).astype(np.uint8)
        yield _blend(out, cap)


def _extend_frames(spec: RenderSpec, n_new: int) -> Iterator[np.ndarray]:
    """An extension: the input unchanged, then new frames moving on from its last frame."""
    last = None
    for frame in _input_frames(spec.input_video, spec.width, spec.height):  # type: ignore[arg-type]
        last = frame
        yield frame
    if last is None:
        raise ValueError("the input video has no frames")
    still = Image.fromarray(last)
    cap = _caption("next: " + spec.prompt, spec.width, spec.height)
    rng = _seed("extend:" + spec.prompt)
    drift = (float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.03, 0.03)))
    # Start the motion at its second step, so no frame repeats the input's last one.
    for i, frame in enumerate(_ken_burns(still, n_new, zoom_to=1.25, drift=drift, start=1, total=n_new + 1)):
        fade = min(1.0, (i + 1) / FPS)  # the caption fades in over the first second
        rgb, alpha, y = cap
        yield _blend(frame.copy(), (rgb, alpha * fade, y))


def _image_frames(spec: RenderSpec, n: int) -> Iterator[np.ndarray]:
    """Image→video: frame 0 is the image fitted to the frame, then the camera moves in."""
    still = _fit(Image.open(io.BytesIO(spec.image)), spec.width, spec.height)  # type: ignore[arg-type]
    cap = _caption(spec.prompt, spec.width, spec.height) if spec.prompt else None
    for i, frame in enumerate(_ken_burns(still, n)):
        if i == 0 or cap is None:
            yield frame
        else:
            rgb, alpha, y = cap
            yield _blend(frame.copy(), (rgb, alpha * min(1.0, i / FPS), y))


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


def render(spec: RenderSpec, out_path: str) -> dict:
    """Render ``spec`` to ``out_path`` (atomically) and return its width, height and seconds."""
    n_new = max(1, int(round(spec.seconds * FPS)))
    if spec.kind == "edit":
        frames = _edit_frames(spec)
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
    import base64
    from urllib.parse import urlsplit

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
        import httpx

        answer = httpx.get(url, timeout=10.0, follow_redirects=True)
        answer.raise_for_status()
        return answer.content
    except Exception as exc:  # any failure to fetch is the caller's problem, not a crash
        raise RenderRefused("failed_precondition", f"could not fetch the {what} at {url[:80]}: {exc}") from None


def execute(job: dict) -> dict:
    """Worker-process entry: fetch inputs, check them, render; raises RenderRefused on bad input."""
    media_dir, out_path = job["media_dir"], job["out_path"]
    kind = job["kind"]
    spec = RenderSpec(kind=kind, prompt=job.get("prompt") or "", width=job["width"], height=job["height"],
                      seconds=job["seconds"], generate_audio=job.get("generate_audio", True))
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

