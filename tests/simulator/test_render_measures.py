"""The simulator's pictures mean something to ``grok_nb.measure``: words of the prompt change what is rendered.

Rendered small (320×180, 2 s) so each clip takes a tenth of a second, then measured as any download is.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from grok_nb import measure
from grok_nb.simulator import render as R

W, H = 320, 180


def _render(tmp_path, prompt, *, take="", seconds=2.0, audio=False, name=None):
    out = tmp_path / f"{name or abs(hash((prompt, take, audio)))}.mp4"
    R.render(R.RenderSpec("generate", prompt, W, H, seconds, generate_audio=audio, take=take), str(out))
    return out


def _frames(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24").astype(int) for f in c.decode(video=0)])


def test_words_set_the_look():
    assert R.look_for("a dark night street") == R.Look(light=R.DARK_LIGHT, pace=1.0, cut=False)
    assert R.look_for("A SUNNY beach") == R.Look(light=R.BRIGHT_LIGHT, pace=1.0, cut=False)
    assert R.look_for("a storm, running horses").pace == R.FAST_PACE
    assert R.look_for("a still, calm lake").pace == R.CALM_PACE
    assert R.look_for("a fox, then cut to a city").cut and R.look_for("A fox. Hard cut: a city").cut
    assert R.look_for("a fox") == R.Look(light=1.0, pace=1.0, cut=False)
    # Whole words only, and words of both kinds cancel out.
    assert R.look_for("darkroom stormtrooper stillness cutlery") == R.Look(1.0, 1.0, False)
    assert R.look_for("a bright night").light == 1.0 and R.look_for("a calm run").pace == 1.0
    # The pace reaches the motion: three times as fast, two more shapes; calm is nearly still.
    base, fast, calm = R.motion_for("horses"), R.motion_for("horses running"), R.motion_for("a still pond")
    assert fast.count >= 5 and fast.speed >= 3 * 0.12 and calm.speed <= 0.15 * 0.4 and base.light == 1.0
    assert R.motion_for("horses at night").light == R.DARK_LIGHT


def test_a_night_street_is_darker_than_a_sunny_beach(tmp_path):
    night = measure(_render(tmp_path, "a dark night street"))
    sunny = measure(_render(tmp_path, "a sunny beach"))
    plain = measure(_render(tmp_path, "a street"))
    assert night.brightness < 0.6 * plain.brightness and night.brightness < 0.5 * sunny.brightness
    assert night.black < 1.0  # dark, not black: the band and the shapes still show


def test_a_storm_moves_more_than_a_calm_lake(tmp_path):
    storm = measure(_render(tmp_path, "a storm, running horses"))
    calm = measure(_render(tmp_path, "a still, calm lake"))
    assert storm.motion > 2.5 * calm.motion
    assert storm.cuts == 0 and calm.cuts == 0 and storm.frozen == 0.0


@pytest.mark.parametrize("prompt", ["a fox in the snow, then cut to a city street", "a dark cave. Hard cut to noon"])
def test_a_prompt_asking_for_a_cut_has_one(tmp_path, prompt):
    assert measure(_render(tmp_path, prompt)).cuts == 1
    assert measure(_render(tmp_path, prompt.split(",")[0].split(".")[0])).cuts == 0


def test_image_to_video_and_an_extension_have_no_cut(tmp_path):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (640, 360), (20, 160, 220)).save(buf, "PNG")
    i2v = tmp_path / "i2v.mp4"  # frame 0 is the bare image, the band comes with frame 1
    R.render(R.RenderSpec("generate", "waves roll in", W, H, 1.0, image=buf.getvalue()), str(i2v))
    assert measure(i2v).cuts == 0
    base = _render(tmp_path, "a fox", seconds=1.0, name="base")
    ext = tmp_path / "ext.mp4"  # the input, then new frames moving on from its last one (a new caption)
    R.render(R.RenderSpec("extend", "it runs away", W, H, 1.0, input_video=str(base)), str(ext))
    assert measure(ext).cuts == 0


def test_generate_audio_false_gives_no_audio_track(tmp_path):
    silent = measure(_render(tmp_path, "a fox", audio=False))
    assert silent.audio_codec is None and silent.loudness_dbfs is None and silent.silence is None
    sound = measure(_render(tmp_path, "a fox", audio=True))
    assert sound.audio_codec == "aac" and -30 < sound.loudness_dbfs < -10 and sound.silence < 0.1


def test_two_takes_differ_a_little_and_much_less_than_two_prompts(tmp_path):
    prompt = "a paper boat drifting down a gutter"
    first, second = (_render(tmp_path, prompt, take=t, seconds=0.75) for t in ("take-1", "take-2"))
    other = _render(tmp_path, "a lighthouse in fog", take="take-1", seconds=0.75)
    a, b, c = _frames(first), _frames(second), _frames(other)
    takes, prompts = np.abs(a - b).mean(), np.abs(a - c).mean()
    assert 1 < takes < prompts / 3
    ma, mb = measure(first), measure(second)
    assert ma.brightness == pytest.approx(mb.brightness, abs=0.03)
    assert ma.colourfulness == pytest.approx(mb.colourfulness, rel=0.15)
    assert ma.motion == pytest.approx(mb.motion, rel=0.35)
    # One take is one video: the same request renders the same frames.
    assert np.abs(_frames(_render(tmp_path, prompt, take="take-1", seconds=0.75, name="again")) - a).mean() < 1
    assert R.Take.of("") == R.Take() and R.Take.of("take-1") == R.Take.of("take-1") != R.Take.of("take-2")


def test_the_prompt_is_written_high_in_the_frame_clear_of_a_players_controls():
    for w, h in ((848, 480), (480, 848), (480, 480), (1280, 720)):
        lay = R.Layout(w, h)
        overlay = R.Overlay(w, h, kind="generate", model="grok-imagine-video", prompt="a long prompt " * 12,
                            total_seconds=2.0)
        drawn = overlay.apply(np.zeros((h, w, 3), np.uint8), 1.0).max(axis=2)
        assert not drawn[lay.top_h:].any()  # nothing below the band: the bottom is the player's
        assert lay.top_h < 0.45 * h
        text = drawn[lay.head_h:lay.top_h] > 200  # the prompt's lines, under the parameters
        assert text.sum() > 1000
        rows = np.flatnonzero(drawn.any(axis=1) & (drawn > 200).any(axis=1))
        assert rows.max() < 0.45 * h  # JupyterLab's controls cover the bottom ~40 px of even a small tile
