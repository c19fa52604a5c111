"""Frames sampled from a local MP4 for a judge: the right frame at each time, scaled, JPEG; bad files named."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from grok_nb.api.frames import Frame, sample_frames, sample_times
from grok_nb.errors import MeasureError, ValidationError
from tests._clips import grey_ramp, write_clip

FPS, FRAMES = 12, 24  # 2 s; a keyframe every 6 frames; grey levels 10 apart


@pytest.fixture(scope="module")
def ramp(tmp_path_factory):
    return write_clip(tmp_path_factory.mktemp("clips") / "ramp.mp4", grey_ramp(FRAMES), frames=FRAMES, fps=FPS,
                      gop=6)


def index_of(frame: Frame) -> int:
    """Which frame of the ramp a sampled JPEG shows: the nearest grey level."""
    level = np.asarray(Image.open(io.BytesIO(frame.jpeg)).convert("L"), dtype=float).mean()
    levels = np.array([grey_ramp(FRAMES)(i)[0, 0, 0] for i in range(FRAMES)], dtype=float)
    return int(np.argmin(np.abs(levels - level)))


@pytest.mark.parametrize("n", [1, 5, 6])
def test_frames_are_taken_evenly_at_the_middle_of_each_slice(ramp, n):
    frames = sample_frames(ramp, n=n, width=80)
    duration = FRAMES / FPS
    assert [f.t_s for f in frames] == pytest.approx(sample_times(duration, n))
    assert sample_times(duration, n) == pytest.approx([duration * (i + 0.5) / n for i in range(n)])
    # the frame showing at each time (most between keyframes: decoded forward from the one before)
    assert [index_of(f) for f in frames] == [int(f.t_s * FPS + 1e-6) for f in frames]


def test_frames_are_scaled_jpegs(ramp):
    frames = sample_frames(ramp, n=3, width=64)
    for f in frames:
        assert f.jpeg[:3] == b"\xff\xd8\xff"
        with Image.open(io.BytesIO(f.jpeg)) as im:
            assert im.format == "JPEG" and im.size == (f.width, f.height) == (64, 38)  # 160×96 kept in proportion
    assert "bytes" in repr(frames[0]) and "\\x" not in repr(frames[0])


def test_default_is_six_frames_of_384_px(ramp):
    frames = sample_frames(ramp)
    assert len(frames) == 6 and {f.width for f in frames} == {384}


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "gone.mp4"
    with pytest.raises(MeasureError) as err:
        sample_frames(missing)
    assert err.value.path == str(missing) and str(missing) in str(err.value) and "no file" in str(err.value)
    with pytest.raises(MeasureError, match="no file"):
        sample_frames(tmp_path)  # a folder is no MP4 either


@pytest.mark.parametrize("content", [b"", b"hello, not a video", "truncated"])
def test_a_damaged_file_is_named(ramp, tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(ramp.read_bytes()[:3000] if content == "truncated" else content)
    with pytest.raises(MeasureError) as err:
        sample_frames(bad)
    assert err.value.path == str(bad) and str(bad) in str(err.value)


@pytest.mark.parametrize(("kw", "field"), [({"n": 0}, "n"), ({"n": 2.5}, "n"), ({"n": True}, "n"),
                                           ({"width": 8}, "width"), ({"width": "384"}, "width")])
def test_bad_sampling_is_refused_by_name(ramp, kw, field):
    with pytest.raises(ValidationError) as err:
        sample_frames(ramp, **kw)
    assert err.value.field == field


def test_a_path_must_be_a_path():
    with pytest.raises(ValidationError, match="path"):
        sample_frames(b"\x00\x00\x00\x18ftypmp42")  # bytes are not a path
