"""What a downloaded video shows and sounds like, measured on the CPU from its MP4 (PyAV and NumPy).

``measure(path)`` reads a local MP4 once and returns ``Measures``: the picture (brightness,
contrast, colourfulness, sharpness), its change over time (motion, flicker, cuts, frozen and
black stretches), the sound (loudness, peak, silence) and the truth about the file (length,
frame size, frame rate, codecs). ``mismatches`` says where that truth differs from what was asked.

How it stays cheap: frames that no other frame refers to are not decoded (``skip_frame =
"NONREF"``; a stream without B-frames has none), H.264's deblocking filter is skipped
(``skip_loop_filter``: pixels move by about 1/255; on a 720p x264 clip, motion by 2.5 % and the
other measures by under 1 %), and no frame is converted at full size. Every decoded frame is
scaled down to a small grey *signature* (short side ``SIGNATURE_SHORT`` px, area average) by one
reused swscale context (PyAV's ``frame.reformat`` would build a new one per frame); one frame a
second is also scaled to the *working size* (short side ``WORK_SHORT`` px, grey and RGB) for the
measures of a still picture. Audio is decoded whole. The whole costs less CPU than decoding every frame to RGB
(``benchmarks/bench_measure.py``). Reading a file never changes it; a file that is not a whole
MP4 raises ``MeasureError`` naming it, within a bounded amount of work.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from ..errors import MeasureError
from .models import WIDE_ASPECT_RATIOS
from .probe import is_mp4, mp4_problem, stream_info
from .validation import nearest_aspect_ratio

if TYPE_CHECKING:
    import av
    import numpy as np
    from numpy.typing import NDArray

#: The short side, in pixels, of the grey signature every decoded frame is reduced to (area average).
SIGNATURE_SHORT = 72
#: The short side, in pixels, at which brightness, contrast, colourfulness and sharpness are measured.
WORK_SHORT = 180
#: Signatures compared for ``motion``, per second of video.
MOTION_RATE = 8.0
#: Frames measured as still pictures, per second of video.
STILL_RATE = 1.0
#: Frames further apart than this (seconds) are not compared for ``flicker``.
FLICKER_GAP_S = 0.2
#: A near-black frame: at least ``BLACK_SHARE`` of its pixels darker than ``BLACK_LUMA`` (ffmpeg blackdetect's
#: defaults, pix_th=0.10 and pic_th=0.98).
BLACK_LUMA, BLACK_SHARE = 0.10, 0.98
#: Two frames are the same picture when their signatures differ by less than this on average and nowhere by
#: more than ``FROZEN_MAX`` (luma, 0-1): no more than compression noise, and nothing moving, however small.
FROZEN_MEAN, FROZEN_MAX = 0.5 / 255, 8 / 255
#: A hard cut: the signatures of two neighbouring frames differ by at least ``CUT_MIN`` (mean, luma 0-1), by
#: ``CUT_RATIO`` times the change usual around it, and at ``CUT_SHARE`` of their pixels by more than
#: ``CUT_PIXEL``; the pictures on both sides last two frames or more.
CUT_MIN, CUT_RATIO, CUT_WINDOW, CUT_SHARE, CUT_PIXEL = 0.05, 3.0, 6, 0.4, 10 / 255
#: Audio is cut into windows of this many seconds for ``silence``; a window is silent below ``SILENCE_DBFS``
#: (ffmpeg silencedetect's default noise floor).
SILENCE_WINDOW_S, SILENCE_DBFS = 0.05, -60.0
#: The level reported for digital silence (a log of zero has none).
FLOOR_DBFS = -120.0
#: Bounds on the work: a file whose frames outnumber its header by far, or that takes this long, is damaged.
DEADLINE_S = 60.0


@dataclass(frozen=True)
class Measures:
    """What one video shows and sounds like; ``None`` where a measure does not apply: the audio fields without
    an audio track, motion, flicker, cuts and frozen for a clip of a single frame."""

    brightness: float | None = None
    """Mean luma, 0 (black) to 1 (white): the luma plane mapped to full range (as swscale makes grey from it)
    at the working size, averaged over still frames sampled ``STILL_RATE`` times a second."""
    contrast: float | None = None
    """RMS contrast, 0-1: the standard deviation of luma (0-1) within a frame, averaged over the still frames
    (Peli 1990, "Contrast in complex images"). 0 for a flat picture, 0.5 for half black, half white."""
    colourfulness: float | None = None
    """Hasler and Süsstrunk's colourfulness (2003, "Measuring colourfulness in natural images"), on RGB 0-255:
    ``M = σ_rgyb + 0.3 μ_rgyb`` with ``rg = R - G`` and ``yb = (R + G) / 2 - B``, at the working size, averaged
    over the still frames. Their scale: 0 not colourful (grey), 15 slightly, 33 moderately, 45 averagely,
    59 quite, 82 highly, 109 extremely colourful."""
    sharpness: float | None = None
    """Variance of the Laplacian (Pech-Pacheco et al. 2000) of luma on 0-255, at the fixed working size (short
    side ``WORK_SHORT`` px, scaled up or down), averaged over the still frames. Higher is sharper; comparable
    between videos of any resolution, not with figures taken at another size."""
    motion: float | None = None
    """Mean absolute difference of luma (0-1) between signatures sampled ``MOTION_RATE`` times a second (the
    first decoded frame at or after each step): 0 for a still picture, larger for faster or larger movement."""
    flicker: float | None = None
    """Temporal flicker (after VBench's temporal-flickering idea; higher is more flicker), luma 0-1: over every
    three neighbouring decoded frames no more than ``FLICKER_GAP_S`` apart, the part of the change that reverses
    direction (per signature pixel, the smaller of the two changes when they have opposite signs), averaged.
    Steady motion and fades score about 0; frames alternating between two brightnesses score their difference."""
    cuts: int | None = None
    """Number of hard scene cuts: neighbouring frames whose signatures differ by at least ``CUT_MIN`` (mean luma,
    0-1), by ``CUT_RATIO`` times the median change of the ``CUT_WINDOW`` frame pairs on each side, and in at least
    ``CUT_SHARE`` (40 %) of their pixels by more than 10/255, where the pictures before and after each last two
    decoded frames or more (a one-frame flash is not a cut, nor is a caption or a small object changing)."""
    frozen: float | None = None
    """Share of the clip's time (0-1) between decoded frames that show the same picture (signatures differing by
    less than ``FROZEN_MEAN`` on average and ``FROZEN_MAX`` anywhere)."""
    black: float | None = None
    """Share of decoded frames (0-1) that are near-black: at least 98 % of the signature's pixels below luma 0.10
    (ffmpeg blackdetect's defaults)."""
    loudness_dbfs: float | None = None
    """RMS level of the whole audio track over all channels, in dBFS, where a square wave at full scale is
    0 dBFS (so a full-scale sine is -3.0 dBFS); digital silence reads ``FLOOR_DBFS`` (-120). None without audio."""
    peak_dbfs: float | None = None
    """Sample peak of the audio track, in dBFS (1.0 = 0 dBFS; not oversampled, so not a true peak);
    ``FLOOR_DBFS`` for digital silence. None without audio."""
    silence: float | None = None
    """Share of the audio track (0-1) in 50 ms windows whose RMS is below -60 dBFS (ffmpeg silencedetect's
    default noise floor). None without audio."""
    duration_s: float | None = None
    """Length of the video stream in seconds (its frames over its frame rate, as ``probe`` reads it)."""
    width: int | None = None
    """Frame width in pixels, as stored."""
    height: int | None = None
    """Frame height in pixels, as stored."""
    fps: float | None = None
    """Average frame rate of the video stream, frames per second."""
    video_codec: str | None = None
    """Video codec name as FFmpeg calls it, e.g. ``h264``."""
    audio_codec: str | None = None
    """Audio codec name as FFmpeg calls it, e.g. ``aac``; None without an audio track."""

    def as_columns(self) -> dict[str, Any]:
        """The measures as history columns: ``{"m_brightness": ..., "m_duration_s": ..., ...}``."""
        return {f"m_{name}": value for name, value in asdict(self).items()}

    @classmethod
    def from_columns(cls, row: Mapping[str, Any]) -> Measures:
        """The measures held in a history row (a dict or a pandas row); absent, NULL or NaN columns read None."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            value = row.get(f"m_{f.name}") if hasattr(row, "get") else None
            values[f.name] = _plain(value, _COLUMN_TYPES[f.name])
        return cls(**values)

    @property
    def has_audio(self) -> bool:
        """True when the file has an audio track."""
        return self.audio_codec is not None


#: The measure fields, in order (each is the column ``m_<field>`` of ``Measures.as_columns``).
MEASURE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Measures))
_COLUMN_TYPES: dict[str, type] = {
    **{name: float for name in MEASURE_FIELDS}, "cuts": int, "width": int, "height": int,
    "video_codec": str, "audio_codec": str,
}
#: Each history column of the measures and its Python type (float, int or str), for a table's schema.
MEASURE_COLUMNS: dict[str, type] = {f"m_{name}": _COLUMN_TYPES[name] for name in MEASURE_FIELDS}


def _plain(value: Any, kind: type) -> Any:
    """A column's value as a plain Python value of its type; None for NULL, NaN, pandas' NA or NaT."""
    if value is None:
        return None
    try:
        if value != value:  # NaN (float or numpy) is the one value not equal to itself
            return None
    except (TypeError, ValueError):  # pandas.NA refuses to be a bool
        return None
    if kind is str:
        return str(value)
    try:
        return int(value) if kind is int else float(value)
    except (TypeError, ValueError):
        return None


# -- what the file should have been ---------------------------------------------------------------------
#: How far a measured length may be from the one asked for, in seconds.
DURATION_TOLERANCE_S = 0.5
#: How far a frame's short side and its aspect ratio may be from what was asked, as a share.
SIZE_TOLERANCE = 0.02
RATIO_TOLERANCE = 0.03


def mismatches(measures: Measures, asked: Mapping[str, Any], *,
               duration_tolerance_s: float = DURATION_TOLERANCE_S) -> dict[str, tuple[Any, Any]]:
    """Where the file differs from what was asked: ``{field: (asked, got)}``, empty when it is what was asked.

    ``asked`` uses the request's field names: ``duration`` (or ``seconds``; the whole output's length, so an
    extension's input plus its added part), ``resolution`` (``"720p"``: the short side), ``aspect_ratio``
    (``"16:9"``) and ``generate_audio`` (True: an audio track is expected). Fields absent or None are not
    checked, nor are those the file's measures do not know. Lengths agree within ``duration_tolerance_s``, the
    short side within 2 % and the aspect ratio within 3 %.
    """
    out: dict[str, tuple[Any, Any]] = {}
    duration = asked.get("duration")
    if duration is None:
        duration = asked.get("seconds")
    if duration is not None and measures.duration_s is not None:
        try:
            wanted = float(duration)
        except (TypeError, ValueError):
            wanted = math.nan
        if not abs(measures.duration_s - wanted) <= duration_tolerance_s:
            out["duration"] = (duration, round(measures.duration_s, 2))
    w, h = measures.width, measures.height
    resolution = asked.get("resolution")
    if resolution is not None and w and h:
        short = min(w, h)
        try:
            wanted_short = float(str(resolution).lower().rstrip("p"))
        except ValueError:
            wanted_short = math.nan
        if not abs(short - wanted_short) <= SIZE_TOLERANCE * wanted_short:
            out["resolution"] = (resolution, f"{short}p")
    ratio = asked.get("aspect_ratio")
    if ratio is not None and w and h:
        try:
            a, b = (float(x) for x in str(ratio).split(":"))
            wanted_ratio = a / b
        except (ValueError, ZeroDivisionError):
            wanted_ratio = math.nan
        if not abs(math.log(w / h) - math.log(wanted_ratio if wanted_ratio > 0 else math.nan)) <= \
                math.log1p(RATIO_TOLERANCE):
            out["aspect_ratio"] = (ratio, _ratio_label(w, h))
    audio = asked.get("generate_audio")
    if audio is not None and measures.video_codec is not None and bool(audio) != measures.has_audio:
        out["generate_audio"] = (audio, measures.has_audio)
    return out


def _ratio_label(width: int, height: int) -> str:
    """``16:9`` when the frame is within 3 % of a known aspect ratio, else ``848×480``."""
    label = nearest_aspect_ratio(width, height, WIDE_ASPECT_RATIOS)
    a, b = (int(x) for x in label.split(":"))
    return label if abs(math.log(width / height) - math.log(a / b)) <= math.log1p(RATIO_TOLERANCE) \
        else f"{width}×{height}"


# -- measuring ------------------------------------------------------------------------------------------
def measure(path: str | Path) -> Measures:
    """Measure the local MP4 at ``path`` (read only); ``MeasureError`` names the file when it is not a whole one."""
    name = str(path)
    # Missing, empty, not an MP4, cut short: the size and the box walk, before any decoding.
    problem = mp4_problem(path, decode=False)
    if problem is not None:
        raise MeasureError(name, _not_mp4(path) or problem)
    import av  # PyAV: heavy, only loaded when a video is measured

    try:
        return _decode(name)
    except (av.error.FFmpegError, OSError) as exc:  # PyAV's errors for every kind of damage
        raise MeasureError(name, f"PyAV cannot decode it ({_brief(exc)})") from None


#: What a file that is not an MP4 often is instead, by its first bytes.
_SIGNATURES = ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"), (b"GIF8", "a GIF image"),
               (b"RIFF", "a RIFF file (WebP, WAV or AVI)"), (b"\x1aE\xdf\xa3", "a Matroska/WebM video"),
               (b"<", "text: HTML or XML, perhaps an error page"), (b"{", "text: JSON, perhaps an error answer"))


def _not_mp4(path: str | Path) -> str | None:
    """"it is not an MP4 ..." for a non-empty file that does not start like one (None otherwise)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if not head or is_mp4(head):
        return None
    kind = next((what for start, what in _SIGNATURES if head.lstrip().startswith(start)), None)
    return f"it is not an MP4 ({kind}; an MP4 starts with an 'ftyp' box)" if kind else \
        "it is not an MP4 (it does not start with an 'ftyp' box)"


def _brief(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"


def _scaled(width: int, height: int, short: int) -> tuple[int, int]:
    """A frame size whose short side is ``short`` px, the long side in the frame's proportion."""
    scale = short / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


class _Picture:
    """Collects each decoded frame's signature (and a few still frames' measures); the temporal measures are
    computed over all signatures at once, in blocks of frames, by NumPy."""

    def __init__(self, width: int, height: int):
        import av  # PyAV: heavy, only loaded when a video is measured
        import numpy as np  # NumPy, likewise

        self.np = np
        # One swscale context per output size: PyAV's frame.reformat makes a new one for every frame.
        make = av.video.reformatter.VideoReformatter
        self._sig_fmt, self._gray_fmt, self._rgb_fmt = make(), make(), make()
        self.sig_size = _scaled(width, height, SIGNATURE_SHORT)
        self.work_size = _scaled(width, height, WORK_SHORT)
        self.times: list[float] = []
        self.sigs: list[NDArray[np.uint8]] = []
        self.stills: list[tuple[float, float, float, float]] = []
        self._next_still = 0.5 / STILL_RATE
        self._last_frame: av.VideoFrame | None = None

    @property
    def frames(self) -> int:
        return len(self.times)

    def add(self, frame: av.VideoFrame, t: float) -> None:
        sw, sh = self.sig_size
        sig = self._sig_fmt.reformat(frame, sw, sh, "gray", interpolation="AREA").to_ndarray()
        self.sigs.append(cast("NDArray[np.uint8]", sig))  # gray is one byte a pixel
        self.times.append(t)
        if t >= self._next_still - 1e-6:
            self._still(frame)
            self._next_still = (math.floor(t * STILL_RATE - 0.5 + 1e-6) + 1.5) / STILL_RATE
        elif not self.stills:
            self._last_frame = frame  # measured as a still if the clip ends before the first still step

    def _still(self, frame: av.VideoFrame) -> None:
        np = self.np
        ww, wh = self.work_size
        gray = self._gray_fmt.reformat(frame, ww, wh, "gray", interpolation="AREA").to_ndarray().astype(np.float32)
        rgb = self._rgb_fmt.reformat(frame, ww, wh, "rgb24", interpolation="AREA").to_ndarray().astype(np.float32)
        if gray.shape[0] >= 3 and gray.shape[1] >= 3:
            lap = (gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1]) - 4 * gray[1:-1, 1:-1]
            sharp = float(lap.var())
        else:
            sharp = 0.0
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        colour = math.hypot(float(rg.std()), float(yb.std())) + 0.3 * math.hypot(float(rg.mean()), float(yb.mean()))
        self.stills.append((float(gray.mean()) / 255, float(gray.std()) / 255, colour, sharp))

    def result(self) -> dict[str, Any]:
        np = self.np
        if not self.stills and self._last_frame is not None:
            self._still(self._last_frame)
        means = np.array(self.stills, dtype=np.float64).reshape(-1, 4).mean(axis=0)
        out: dict[str, Any] = {"brightness": _round(means[0]), "contrast": _round(means[1]),
                               "colourfulness": _round(means[2]), "sharpness": _round(means[3])}
        sigs = np.stack(self.sigs)  # (frames, h, w) uint8
        pixels = sigs.shape[1] * sigs.shape[2]
        dark = np.count_nonzero(sigs < BLACK_LUMA * 255, axis=(1, 2)) >= BLACK_SHARE * pixels
        out["black"] = _round(float(dark.mean()))
        if len(sigs) < 2:
            return {**out, "motion": None, "flicker": None, "cuts": None, "frozen": None}
        times = np.asarray(self.times)
        gaps = np.diff(times)
        changes, peaks, holds, reversals, moved = self._steps(sigs)
        still = (changes < FROZEN_MEAN * 255) & (peaks <= FROZEN_MAX * 255)
        span = float(gaps.sum())
        out["frozen"] = _round(float(gaps[still].sum()) / span) if span > 0 else _round(float(still.mean()))
        near = (gaps[:-1] <= FLICKER_GAP_S) & (gaps[1:] <= FLICKER_GAP_S)
        out["flicker"] = _round(float(reversals[near].mean()) / 255) if near.any() else 0.0
        picks = np.asarray(self._motion_picks())
        if len(picks) < 2:  # shorter than a step: the first frame against the last
            picks = np.asarray([0, len(sigs) - 1])
        if len(picks) >= 2:
            before, after = sigs[picks[:-1]], sigs[picks[1:]]
            apart = (np.maximum(before, after) - np.minimum(before, after)).mean(dtype=np.float64)
            out["motion"] = _round(float(apart) / 255)
        else:
            out["motion"] = 0.0
        out["cuts"] = _cuts(changes / 255, holds / 255, moved)
        return out

    def _steps(self, sigs: NDArray[np.uint8]) -> tuple[NDArray[np.float64], ...]:
        """Per pair of neighbouring frames: mean and largest |Δ| and the share of pixels changed by more than
        ``CUT_PIXEL``; per three frames: |Δ| from the first to the third, and the mean reversing change (luma
        0-255). In blocks of frames, on bytes: memory stays small."""
        np = self.np
        pixels = sigs.shape[1] * sigs.shape[2]
        flat = sigs.reshape(len(sigs), pixels)
        changes, peaks, holds, reversals, moved = [], [], [], [], []
        block = 128
        for start in range(0, len(flat) - 1, block):
            part = flat[start:start + block + 2]
            a, b = part[:-1], part[1:]
            size = np.maximum(a, b) - np.minimum(a, b)  # |Δ| without leaving uint8
            up = b > a
            n = min(block, len(flat) - 1 - start)  # the pairs that begin in this block
            changes.append(size[:n].sum(axis=1, dtype=np.uint32) / pixels)
            peaks.append(size[:n].max(axis=1))
            moved.append(np.count_nonzero(size[:n] > CUT_PIXEL * 255, axis=1) / pixels)
            m = min(n, len(part) - 2)
            if m > 0:
                c = part[2:2 + m]
                holds.append((np.maximum(part[:m], c) - np.minimum(part[:m], c)).sum(axis=1, dtype=np.uint32) / pixels)
                back = np.minimum(size[:m], size[1:1 + m])
                # A change that reverses: up then down, or down then up (no change either way leaves back at 0).
                back[up[:m] == up[1:1 + m]] = 0
                reversals.append(back.sum(axis=1, dtype=np.uint32) / pixels)
        return tuple(np.concatenate(x) if x else np.zeros(0) for x in (changes, peaks, holds, reversals, moved))

    def _motion_picks(self) -> list[int]:
        """The frames compared for motion: the first at or after each step of 1 / ``MOTION_RATE`` seconds."""
        picks, due = [], 0.0
        for i, t in enumerate(self.times):
            if t >= due - 1e-6:
                picks.append(i)
                due = (math.floor(t * MOTION_RATE + 1e-6) + 1) / MOTION_RATE
        return picks


def _cuts(changes: Any, holds: Any, moved: Any) -> int:
    """Hard cuts among the changes between neighbouring frames (mean luma 0-1, and the share of pixels that
    moved); ``holds[j]`` compares frame j with frame j + 2."""
    import numpy as np  # NumPy: heavy, only loaded when a video is measured

    cuts = 0
    # Change i is between frames i and i + 1: the first and the last change have a one-frame picture on one side.
    for i in np.flatnonzero(changes >= CUT_MIN):
        if not 1 <= i < len(holds) or moved[i] < CUT_SHARE:
            continue
        change = float(changes[i])
        around = np.concatenate([changes[max(0, i - CUT_WINDOW):i], changes[i + 1:i + 1 + CUT_WINDOW]])
        if change < CUT_RATIO * max(float(np.median(around)), 1 / 255):
            continue
        if change < float(changes[max(0, i - 2):i + 3].max()):  # a cut spread over two frames counts once
            continue
        # Across this change and the next, the new picture holds; across the previous one and this, the old
        # picture was not a one-frame flash coming back.
        if holds[i] < 0.5 * change or holds[i - 1] < 0.5 * change:
            continue
        cuts += 1
    return cuts


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(float(value), digits)


class _Sound:
    """Collects the decoded audio (float, -1 to 1) and works out its level, peak and silent share at the end."""

    def __init__(self) -> None:
        import numpy as np  # NumPy: heavy, only loaded when a video is measured

        self.np = np
        self.channels: list[list[NDArray[np.float32]]] = []  # per channel, its samples frame by frame
        self.rate = 0
        self._resampler: av.AudioResampler | None = None

    def add(self, frame: av.AudioFrame) -> None:
        if frame.format.name != "fltp":  # AAC decodes to planar float; anything else is converted to it
            import av as _av  # PyAV: already loaded by the caller

            if self._resampler is None:
                self._resampler = _av.AudioResampler(format="fltp")
            parts = self._resampler.resample(frame)
        else:
            parts = [frame]
        np = self.np
        for part in parts:
            if part.samples:
                self.rate = self.rate or part.sample_rate
                # Each plane holds one channel (padded beyond ``samples``): read in place, joined at the end.
                planes = [np.frombuffer(plane, np.float32, part.samples) for plane in part.planes]
                if len(planes) != len(self.channels):
                    if self.channels:  # the layout changed mid-track: carry on with its mix
                        planes = [sum(planes[1:], planes[0]) / len(planes)] * len(self.channels)
                    else:
                        self.channels = [[] for _ in planes]
                for kept, plane in zip(self.channels, planes, strict=True):
                    kept.append(plane)

    def result(self) -> dict[str, Any]:
        np = self.np
        if not self.channels:
            return {"loudness_dbfs": FLOOR_DBFS, "peak_dbfs": FLOOR_DBFS, "silence": 1.0}
        samples = np.stack([np.concatenate(kept) for kept in self.channels])
        peak = float(np.abs(samples).max())
        power = np.square(samples).mean(axis=0)  # per sample, over the channels
        window = max(1, int(round(SILENCE_WINDOW_S * (self.rate or 48_000))))
        whole = len(power) // window * window
        windows = power[:whole].reshape(-1, window).mean(axis=1)
        if whole < len(power):
            windows = np.append(windows, power[whole:].mean())
        floor = 10 ** (SILENCE_DBFS / 10)  # windows compared in power: -60 dBFS RMS is 1e-6
        return {"loudness_dbfs": _dbfs(float(power.mean(dtype=np.float64)), power=True), "peak_dbfs": _dbfs(peak),
                "silence": _round(float((windows < floor).mean()))}


def _dbfs(value: float, power: bool = False) -> float:
    if value <= 0:
        return FLOOR_DBFS
    return round(max(FLOOR_DBFS, (10 if power else 20) * math.log10(value)), 3)


def _decode(name: str) -> Measures:
    """One pass over the file: video and audio packets decoded as they come, the work bounded in frames and time."""
    import av  # PyAV: heavy, only loaded when a video is measured

    started = time.monotonic()
    with av.open(name, "r", metadata_errors="replace") as container:  # damaged tags are not our concern
        if not container.streams.video:
            raise MeasureError(name, "it has no video stream")
        for kind, streams in (("video", container.streams.video), ("audio", container.streams.audio)):
            if streams and streams[0].codec_context is None:
                raise MeasureError(name, f"its {kind} stream's codec cannot be read (damaged)")
        info = stream_info(container)
        fps = info.fps or 24.0
        # A damaged file may decode into frames without end: allow its header's count and a margin.
        expected = max(info.frames, info.duration * fps) or 120 * fps
        max_frames = int(expected * 1.25) + 48
        video = container.streams.video[0]
        # Frames no other frame refers to are not decoded (B-frames: with x264's defaults, a third of the work),
        # nor is the deblocking filter run (a fifth of what is left; the picture differs by about 1/255).
        video.codec_context.skip_frame = "NONREF"
        video.codec_context.options = {"skip_loop_filter": "all"}
        audio = container.streams.audio[0] if container.streams.audio else None
        picture = _Picture(info.width, info.height)
        sound = _Sound() if audio is not None else None
        start: float | None = None
        for n, packet in enumerate(container.demux(*([video] if audio is None else [video, audio]))):
            if n % 64 == 0 and time.monotonic() - started > DEADLINE_S:
                raise MeasureError(name, f"measuring it took over {DEADLINE_S:.0f} s (damaged, or far larger than "
                                         "a video of this API)")
            if sound is not None and packet.stream is audio:
                for frame in packet.decode():
                    if isinstance(frame, av.AudioFrame):
                        sound.add(frame)
                continue
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame):
                    continue
                if picture.frames >= max_frames:
                    raise MeasureError(name, f"it decodes into more than {max_frames} frames where its header "
                                             f"says {info.frames} (damaged)")
                t = frame.time if frame.time is not None else picture.frames / fps
                if start is None:
                    start = t
                picture.add(frame, max(0.0, t - start))
    if picture.frames == 0:
        raise MeasureError(name, "its video stream has no frame that decodes")
    decoded_to = picture.times[-1] + 1 / fps
    duration = info.duration if info.frames else decoded_to
    if decoded_to < duration - max(0.5, 4 / fps):
        raise MeasureError(name, f"its video decodes only to {decoded_to:.2f} s of {duration:.2f} s "
                                 "(cut short or damaged)")
    sound_measures = sound.result() if sound is not None else \
        {"loudness_dbfs": None, "peak_dbfs": None, "silence": None}
    return Measures(**picture.result(), **sound_measures, duration_s=round(duration, 3), width=info.width,
                    height=info.height, fps=round(fps, 3), video_codec=info.video_codec,
                    audio_codec=info.audio_codec)
