"""The simulator's pictures: every clip says SIMULATED, shows its prompt and parameters, and moves by prompt.

Pixel checks on decoded frames (no OCR): the label is drawn opaque, so the decoded frame must
match its known pixels; the prompt and the motion must change what the frames show.
"""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from grok_nb.api.probe import probe
from grok_nb.api.validation import frame_size
from grok_nb.simulator import render as R

PROMPTS = (
    "A red fox trotting through fresh snow in a birch forest at dawn",
    "A paper boat drifting down a rain-soaked city gutter, neon reflections",
    "Time-lapse of clouds rolling over a mountain ridge at sunset",
)


def _frames(path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)]


def _render(tmp_path, name, prompt, resolution="480p", ratio="16:9", seconds=0.5, audio=False, **kw):
    w, h = frame_size(resolution, ratio)
    out = tmp_path / f"{name}.mp4"
    R.render(R.RenderSpec("generate", prompt, w, h, seconds, model="grok-imagine-video", generate_audio=audio, **kw),
             str(out))
    return out


def _mark_error(frame: np.ndarray) -> float:
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = R.mark_box(w, h)
    return float(np.abs(frame[y0:y1, x0:x1] - R.mark_image(w, h).astype(int)).mean())


def _middle(frame: np.ndarray) -> np.ndarray:
    """The picture below the band."""
    lay = R.Layout(frame.shape[1], frame.shape[0])
    return frame[lay.top_h:]


@pytest.mark.parametrize("resolution,ratio", [("480p", "16:9"), ("720p", "16:9"), ("480p", "9:16"), ("720p", "9:16")])
@pytest.mark.slow
def test_every_frame_carries_the_simulated_label(tmp_path, resolution, ratio):
    path = _render(tmp_path, "clip", PROMPTS[0], resolution, ratio, audio=resolution == "480p")
    frames = _frames(path)
    assert (frames[0].shape[1], frames[0].shape[0]) == frame_size(resolution, ratio)
    for frame in (frames[0], frames[len(frames) // 2], frames[-1]):
        assert _mark_error(frame) < 12  # the opaque amber label with black text, up to H.264's loss
    assert probe(path).audio_codec == ("aac" if resolution == "480p" else None)


def test_a_frame_without_the_label_fails_the_check(tmp_path):
    plain = np.full((480, 848, 3), 128)
    assert _mark_error(plain) > 40


@pytest.mark.slow
def test_prompts_draw_different_pictures_and_motion(tmp_path):
    motions = [R.motion_for(p) for p in PROMPTS]
    assert len({(m.shape, m.path, round(m.speed, 3), round(m.direction, 3)) for m in motions}) == 3
    clips = [_frames(_render(tmp_path, f"p{i}", p)) for i, p in enumerate(PROMPTS)]
    lay = R.Layout(848, 480)
    for i in range(3):
        for j in range(i + 1, 3):
            # Different prompt text in the band, different scene and shapes below it.
            text_i, text_j = clips[i][6][lay.head_h:lay.top_h], clips[j][6][lay.head_h:lay.top_h]
            assert np.abs(text_i - text_j).mean() > 3
            assert np.abs(_middle(clips[i][6]) - _middle(clips[j][6])).mean() > 10
    for clip in clips:  # things move: the middle changes within half a second
        assert np.abs(_middle(clip[0]) - _middle(clip[-1])).mean() > 2
    again = _frames(_render(tmp_path, "again", PROMPTS[1]))
    assert np.abs(again[6] - clips[1][6]).mean() < 2  # same prompt, same video


@pytest.mark.slow
def test_the_prompt_and_parameters_are_drawn_as_the_overlay_draws_them(tmp_path):
    frames = _frames(_render(tmp_path, "clip", PROMPTS[2], seconds=1.5))
    w, h = 848, 480
    overlay = R.Overlay(w, h, kind="generate", model="grok-imagine-video", prompt=PROMPTS[2], total_seconds=1.5)
    t = 30 / R.FPS
    expected = overlay.apply(np.zeros((h, w, 3), np.uint8), t).astype(int)
    blank = R.Overlay(w, h, kind="generate", model="grok-imagine-video", prompt="other words", total_seconds=1.5)
    other = blank.apply(np.zeros((h, w, 3), np.uint8), t).astype(int)
    # Text pixels: bright where the overlay writes, over the dark band.
    text = expected.max(axis=2) > 200
    assert text.sum() > 2000
    assert frames[30][text].mean() > 170
    assert (expected != other).any(axis=2).sum() > 1000  # another prompt writes other pixels
    assert overlay.counter(t) == " 1.2 / 1.5 s"
    assert R.parameters_text("generate", "grok-imagine-video", w, h, 2.0) == \
        "generate · grok-imagine-video · 480p · 2 s · 16:9"


def test_image_to_video_starts_on_the_image_then_says_simulated(tmp_path):
    image = Image.new("RGB", (640, 480), (20, 160, 220))
    import io
    buf = io.BytesIO()
    image.save(buf, "PNG")
    frames = _frames(_render(tmp_path, "i2v", "waves", "480p", "4:3", image=buf.getvalue()))
    assert np.abs(frames[0] - np.array([20, 160, 220])).mean() < 6
    assert _mark_error(frames[6]) < 12


@pytest.mark.slow
def test_edit_changes_its_input_and_extension_continues_it(tmp_path):
    base = _render(tmp_path, "base", PROMPTS[0], seconds=1.0)
    w, h = 848, 480
    edit = tmp_path / "edit.mp4"
    R.render(R.RenderSpec("edit", "Make it night", w, h, 0.0, input_video=str(base)), str(edit))
    src, out = _frames(base), _frames(edit)
    assert len(out) == len(src)
    assert np.abs(_middle(out[12]) - _middle(src[12])).mean() > 20  # visibly recoloured
    assert _mark_error(out[12]) < 12 and probe(edit).audio_codec == "aac"
    ext = tmp_path / "ext.mp4"
    R.render(R.RenderSpec("extend", "It runs away", w, h, 0.5, input_video=str(base), generate_audio=False), str(ext))
    longer = _frames(ext)
    assert len(longer) == len(src) + R.FPS // 2
    assert np.abs(longer[len(src) - 1] - src[-1]).mean() < 3  # the input, unchanged
    # The first new frame moves on from the input's last one (same scene between the bands).
    assert np.abs(_middle(longer[len(src)]) - _middle(src[-1])).mean() < 40
    assert _mark_error(longer[len(src) + 5]) < 12


def test_layer_blend_matches_float_alpha_compositing():
    rng = np.random.default_rng(1)
    rgba = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    rgba[0, :, 3], rgba[1, :, 3] = 0, 255
    frame = rng.integers(0, 256, (60, 70, 3), dtype=np.uint8)
    expected = frame.astype(float).copy()
    a = rgba[..., 3:4] / 255.0
    expected[5:45, 10:60] = frame[5:45, 10:60] * (1 - a) + rgba[..., :3] * a
    R._Layer(rgba, 10, 5).blend(frame)
    assert np.abs(frame - expected).max() <= 1.0
    edge = np.zeros((30, 30, 3), np.uint8)
    R._Layer(rgba, -20, 20).blend(edge)  # partly outside the frame: clipped, no error
    assert edge[20:, :30].any()


def test_wrap_measures_lines_and_marks_what_is_cut():
    font = R._font(24)
    lines = R._wrap("word " * 200, font, 300, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 300 for line in lines)
    assert R._wrap("x" * 200, font, 100, 5)[0] and len(R._wrap("short", font, 300, 3)) == 1


def test_text_is_legible_at_480p():
    for ratio in ("16:9", "9:16", "1:1"):
        lay = R.Layout(*frame_size("480p", ratio))
        assert lay.prompt_size >= 24 and lay.top_h < 0.45 * lay.height
