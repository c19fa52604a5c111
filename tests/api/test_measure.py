"""Measuring a video: synthetic MP4s of known content (made here with PyAV) read back as known measures.

Each clip is small (256×144, whose signature is exactly half its size) and short, so the truth can be
worked out from the frames that were encoded; every measure is checked against that truth within a
stated tolerance, and ranks the clips in the right order. Damaged files raise MeasureError naming them.
"""

from __future__ import annotations

import hashlib
import math
import os

import av
import numpy as np
import pytest
from PIL import Image, ImageFilter

import grok_nb
from grok_nb import MeasureError, Measures, measure
from grok_nb.api.measure import MEASURE_COLUMNS, MEASURE_FIELDS, mismatches

W, H, FPS = 256, 144, 24
RATE = 48_000
FAST = {"preset": "ultrafast", "crf": "12"}


def write_mp4(path, frames, audio=None, *, options=None, fps=FPS, movflags=None):
    """Encode RGB frames (and stereo float audio, (2, samples)) as H.264/AAC; returns the path."""
    container_options = {"movflags": movflags} if movflags else {}
    with av.open(str(path), "w", format="mp4", options=container_options) as c:
        v = c.add_stream("libx264", rate=fps, options=options or FAST)
        v.width, v.height, v.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        a = c.add_stream("aac", rate=RATE, layout="stereo") if audio is not None else None
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            frame.pts = i
            c.mux(v.encode(frame))
        c.mux(v.encode())
        if a is not None:
            for start in range(0, audio.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:start + 1024]), format="fltp",
                                                   layout="stereo")
                chunk.sample_rate, chunk.pts = RATE, start
                c.mux(a.encode(chunk))
            c.mux(a.encode())
    return path


def flat(value, n=48):
    return [np.full((H, W, 3), value, np.uint8)] * n


def blocks(seed, cols=16, rows=9, size=16):
    """A picture of random coloured blocks (16 px): sharp edges, every colour."""
    rng = np.random.default_rng(seed)
    return np.repeat(np.repeat(rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8), size, 0), size, 1)


def _captioned(picture):
    out = picture.copy()
    out[H // 2:, W // 2:] = 255
    return out


def moving_square(speed, n=36, side=32):
    """A white square moving right at ``speed`` px/s over black."""
    out = []
    for i in range(n):
        frame = np.zeros((H, W, 3), np.uint8)
        x = int(round(16 + speed * i / FPS))
        frame[56:56 + side, x:x + side] = 255
        out.append(frame)
    return out


def square_motion_truth(speed, side=32):
    """The definition worked out: frames 1/8 s apart differ in two strips of (speed/8) × side pixels."""
    d = min(speed / 8, side)
    return 2 * d * side / (W * H)


def tone(dbfs_peak, seconds=2.0, freq=440.0):
    t = np.arange(int(RATE * seconds)) / RATE
    wave = (10 ** (dbfs_peak / 20) * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([wave, wave])


def hasler(rgb):
    rgb = rgb.astype(float)
    rg, yb = rgb[..., 0] - rgb[..., 1], 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Every synthetic clip, written once and measured once."""
    d = tmp_path_factory.mktemp("clips")
    half = np.zeros((H, W, 3), np.uint8)
    half[:, W // 2:] = 255
    bars = np.zeros((H, W, 3), np.uint8)
    for i, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
                                (0, 255, 255), (255, 128, 0), (128, 0, 255)]):
        bars[:, i * 32:(i + 1) * 32] = colour
    grey_bars = np.repeat(bars.astype(float) @ [0.299, 0.587, 0.114], 3).reshape(H, W, 3).astype(np.uint8)
    checker = ((np.indices((H, W)) // 4).sum(axis=0) % 2 * 255).astype(np.uint8)
    checker = np.repeat(checker[..., None], 3, axis=2)
    blurred = np.asarray(Image.fromarray(checker).filter(ImageFilter.GaussianBlur(3)))
    smooth = np.linspace(0, 255, W)[None, :, None].repeat(H, 0).repeat(3, 2).astype(np.uint8)
    a, b = blocks(1), blocks(2)
    wide = blocks(3, cols=40)
    made = {
        "black": flat(0), "white": flat(255), "grey": flat(128), "half": [half] * 48,
        "bars": [bars] * 24, "grey_bars": [grey_bars] * 24, "checker": [checker] * 24, "blurred": [blurred] * 24, "smooth": [smooth] * 24,
        "still": [a] * 48,
        "slow": moving_square(32), "medium": moving_square(64), "fast": moving_square(128),
        "cut": [a] * 24 + [b] * 24,
        "pan": [wide[:, 4 * i:4 * i + W] for i in range(60)],
        "flash": [a] * 24 + [flat(255, 1)[0]] + [a] * 23,
        "title": [b] + [a] * 35,  # one frame of something else, then the scene
        "caption": [a] * 18 + [_captioned(a)] * 18,  # a quarter of the picture changes at once

        "alternating": [np.full((H, W, 3), 102 if i % 2 else 153, np.uint8) for i in range(48)],
        "fade": [np.full((H, W, 3), round(51 + 153 * i / 47), np.uint8) for i in range(48)],
    }
    paths = {name: write_mp4(d / f"{name}.mp4", frames) for name, frames in made.items()}
    paths["tone"] = write_mp4(d / "tone.mp4", flat(128), tone(-12.0))
    paths["quiet"] = write_mp4(d / "quiet.mp4", flat(128), tone(-40.0))
    paths["silent"] = write_mp4(d / "silent.mp4", flat(128), np.zeros((2, 2 * RATE), np.float32))
    # B-frames (x264's defaults): the frames nothing refers to are skipped, the measures must not change much.
    paths["medium_b"] = write_mp4(d / "medium_b.mp4", moving_square(64),
                                  options={"preset": "medium", "crf": "12", "bframes": "3"})
    measured = {name: measure(path) for name, path in paths.items()}
    return {"paths": paths, "m": measured, "frames": made}


def test_flat_pictures_read_their_brightness_and_no_contrast_colour_or_detail(clips):
    m = clips["m"]
    for name, truth in (("black", 0.0), ("grey", 128 / 255), ("white", 1.0)):
        assert m[name].brightness == pytest.approx(truth, abs=0.01), name  # within 1 % of full scale
        assert m[name].contrast < 0.005 and m[name].colourfulness < 1 and m[name].sharpness < 1, name
    assert m["black"].brightness < m["grey"].brightness < m["white"].brightness
    assert m["black"].black == 1.0 and m["grey"].black == 0.0 and m["white"].black == 0.0
    # Half black, half white: RMS contrast is the standard deviation of {0, 1} in equal parts, 0.5.
    assert m["half"].contrast == pytest.approx(0.5, abs=0.01) and m["half"].brightness == pytest.approx(0.5, abs=0.01)
    assert m["half"].contrast > m["grey"].contrast


def test_a_static_picture_is_frozen_and_does_not_move_or_flicker(clips):
    still = clips["m"]["still"]
    assert still.frozen == pytest.approx(1.0, abs=0.01)
    assert still.motion < 0.001 and still.flicker < 0.001 and still.cuts == 0
    assert clips["m"]["slow"].frozen == 0.0  # a square that moves every frame is never frozen


def test_motion_is_the_mean_difference_of_frames_an_eighth_of_a_second_apart(clips):
    m = clips["m"]
    for name, speed in (("slow", 32), ("medium", 64), ("fast", 128)):
        assert m[name].motion == pytest.approx(square_motion_truth(speed), rel=0.1), name
    assert m["still"].motion < m["slow"].motion < m["medium"].motion < m["fast"].motion
    # With B-frames skipped the same motion reads the same, within 10 %.
    assert m["medium_b"].motion == pytest.approx(m["medium"].motion, rel=0.1)
    assert m["medium_b"].duration_s == pytest.approx(1.5, abs=0.05) and m["medium_b"].cuts == 0


def test_a_hard_cut_counts_once_and_a_pan_or_a_flash_is_no_cut(clips):
    m = clips["m"]
    assert m["cut"].cuts == 1
    assert m["pan"].cuts == 0 and m["pan"].motion > m["cut"].motion  # a fast pan moves more than it cuts
    assert m["flash"].cuts == 0  # one white frame and back: the picture did not change for good
    assert m["title"].cuts == 0  # a one-frame picture at the start is no shot
    assert m["caption"].cuts == 0 and m["caption"].motion > 0  # a caption or a sign is not a new scene
    assert m["still"].cuts == 0 and m["fade"].cuts == 0 and m["alternating"].cuts == 0


def test_flicker_is_change_that_reverses_not_steady_change(clips):
    m = clips["m"]
    # Frames alternating between 0.4 and 0.6: every change reverses, by 0.2.
    assert m["alternating"].flicker == pytest.approx(0.2, abs=0.01)
    # A steady fade from 0.2 to 0.8 changes every frame and never goes back.
    assert m["fade"].flicker < 0.002 and m["fade"].motion > 0.02
    assert m["pan"].flicker < 0.002  # steady motion is not flicker either
    assert m["alternating"].flicker > m["flash"].flicker > m["fade"].flicker


def test_colourfulness_follows_hasler_and_susstrunk(clips):
    m, frames = clips["m"], clips["frames"]
    truth = hasler(frames["bars"][0])
    assert m["bars"].colourfulness == pytest.approx(truth, rel=0.1)  # chroma is stored at half resolution
    assert m["grey_bars"].colourfulness < 3 and m["grey"].colourfulness < 1
    assert m["bars"].colourfulness > 100  # "extremely colourful" on their scale
    assert m["bars"].colourfulness > m["still"].colourfulness > m["grey_bars"].colourfulness


def laplacian_variance(gray):
    g = gray.astype(float)
    return float((g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]).var())


def test_sharpness_is_the_variance_of_the_laplacian_at_the_working_size(tmp_path):
    # At exactly the working size (short side 180) nothing is scaled: the truth is the source frame's.
    rng = np.random.default_rng(5)
    noise = np.repeat(rng.integers(0, 256, (180, 320, 1), dtype=np.uint8), 3, axis=2)
    soft = np.asarray(Image.fromarray(noise).filter(ImageFilter.GaussianBlur(1.5)))
    sharp_m = measure(write_mp4(tmp_path / "noise.mp4", [noise] * 12))
    soft_m = measure(write_mp4(tmp_path / "soft.mp4", [soft] * 12))
    assert sharp_m.sharpness == pytest.approx(laplacian_variance(noise[..., 0]), rel=0.15)
    assert soft_m.sharpness == pytest.approx(laplacian_variance(soft[..., 0]), rel=0.15)
    assert sharp_m.sharpness > 20 * soft_m.sharpness


def test_sharpness_ranks_sharp_pictures_above_blurred_ones(clips):
    m = clips["m"]
    assert m["checker"].sharpness > 100 * m["blurred"].sharpness
    assert m["checker"].sharpness > 10 * m["still"].sharpness > 10 * m["smooth"].sharpness
    assert m["smooth"].sharpness < 1 and m["grey"].sharpness < 1


def test_a_tone_reads_its_level_and_peak(clips):
    loud, quiet = clips["m"]["tone"], clips["m"]["quiet"]
    # A sine with its peak at -12 dBFS: RMS 3.01 dB lower, -15.0 dBFS. AAC keeps both within 1 dB.
    assert loud.peak_dbfs == pytest.approx(-12.0, abs=1.0)
    assert loud.loudness_dbfs == pytest.approx(-15.0, abs=1.0)
    assert loud.silence < 0.05  # the encoder's priming at the start, at most
    assert quiet.loudness_dbfs == pytest.approx(-43.0, abs=1.0) and quiet.silence < 0.05
    assert loud.loudness_dbfs > quiet.loudness_dbfs > clips["m"]["silent"].loudness_dbfs
    assert loud.audio_codec == "aac" and loud.has_audio


def test_a_silent_track_is_silent_and_no_track_has_no_audio_measures(clips):
    silent = clips["m"]["silent"]
    assert silent.silence == 1.0 and silent.loudness_dbfs < -90 and silent.peak_dbfs < -90
    none = clips["m"]["grey"]
    assert (none.loudness_dbfs, none.peak_dbfs, none.silence, none.audio_codec) == (None, None, None, None)
    assert not none.has_audio


def test_the_truth_about_the_file(clips):
    m = clips["m"]["grey"]
    assert (m.width, m.height, m.fps, m.video_codec) == (W, H, 24.0, "h264")
    assert m.duration_s == pytest.approx(2.0, abs=0.01)
    assert clips["m"]["pan"].duration_s == pytest.approx(2.5, abs=0.01)


def test_measuring_leaves_the_file_byte_identical(clips):
    path = clips["paths"]["tone"]
    before, mtime = hashlib.sha256(path.read_bytes()).hexdigest(), os.stat(path).st_mtime_ns
    measure(path)
    measure(str(path))
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before and os.stat(path).st_mtime_ns == mtime


# -- damaged files ----------------------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    return write_mp4(tmp_path / "good.mp4", moving_square(64), tone(-20.0, seconds=1.5))


def _fails(path, *words):
    with pytest.raises(MeasureError) as caught:
        measure(path)
    text = str(caught.value)
    assert str(path) in text and caught.value.path == str(path)
    for word in words:
        assert word in text
    return text


@pytest.mark.timeout(20)
def test_a_truncated_mp4_names_the_file(good, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[:good.stat().st_size // 2])
    _fails(cut, "truncated")


@pytest.mark.timeout(20)
def test_an_mp4_cut_short_whose_first_part_decodes_names_the_file(tmp_path):
    # The index first (faststart): the frames before the cut still decode, and the file is still refused.
    whole = write_mp4(tmp_path / "whole.mp4", moving_square(64), movflags="faststart")
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[:int(len(data) * 0.6)])
    with av.open(str(cut)) as c:  # PyAV alone reads some of it
        assert next(c.decode(video=0)) is not None
    _fails(cut, "truncated")


@pytest.mark.timeout(20)
def test_a_jpeg_named_mp4_an_empty_file_and_a_missing_one_name_the_file(tmp_path):
    jpeg = tmp_path / "photo.mp4"
    Image.new("RGB", (64, 48), (200, 30, 30)).save(jpeg, "JPEG")
    _fails(jpeg, "not an MP4 (a JPEG image")
    page = tmp_path / "page.mp4"
    page.write_text("<html><body>403 Forbidden</body></html>")
    _fails(page, "not an MP4 (text: HTML")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    _fails(empty, "no 'ftyp', 'moov', 'mdat' box")
    _fails(tmp_path / "nowhere.mp4", "cannot be read")


@pytest.mark.timeout(60)
def test_damage_anywhere_is_measured_or_refused_never_a_crash(good, tmp_path):
    """Spans overwritten, bytes flipped, cuts at any byte: every outcome is Measures or a MeasureError naming the
    file (a damaged tag, a codec that cannot be read, an undecodable packet, frames missing at the end...)."""
    data = good.read_bytes()
    rng = np.random.default_rng(7)
    path = tmp_path / "damaged.mp4"
    outcomes = set()
    for k in range(90):
        bad = bytearray(data)
        if k % 3 == 0:
            at, n = int(rng.integers(0, len(bad) - 100)), int(rng.integers(1, 3000))
            bad[at:at + n] = rng.integers(0, 256, len(bad[at:at + n]), dtype=np.uint8).tobytes()
        elif k % 3 == 1:
            for at in rng.integers(0, len(bad), 20):
                bad[int(at)] = int(rng.integers(0, 256))
        else:
            bad = bad[:int(rng.integers(0, len(bad)))]
        path.write_bytes(bytes(bad))
        try:
            m = measure(path)
        except MeasureError as exc:
            assert str(path) in str(exc) and exc.problem
            outcomes.add("refused")
        else:
            assert isinstance(m, Measures) and m.width == W
            outcomes.add("measured")
    assert "refused" in outcomes


def test_measure_error_is_a_grok_error_and_exported():
    assert issubclass(MeasureError, grok_nb.GrokError)
    assert grok_nb.measure is measure and grok_nb.Measures is Measures
    assert {"measure", "Measures", "MeasureError"} <= set(grok_nb.__all__)


# -- columns and mismatches -------------------------------------------------------------------------------
def test_measures_become_history_columns_and_back(clips):
    m = clips["m"]["tone"]
    columns = m.as_columns()
    assert list(columns) == [f"m_{f}" for f in MEASURE_FIELDS] == list(MEASURE_COLUMNS)
    assert columns["m_brightness"] == m.brightness and columns["m_duration_s"] == m.duration_s
    assert Measures.from_columns(columns) == m
    assert MEASURE_COLUMNS["m_cuts"] is int and MEASURE_COLUMNS["m_video_codec"] is str
    assert MEASURE_COLUMNS["m_motion"] is float


def test_from_columns_reads_a_pandas_row_with_nan_and_missing_columns(clips):
    import pandas as pd

    m = clips["m"]["grey"]  # no audio: its audio columns are None
    frame = pd.DataFrame([{**m.as_columns(), "prompt": "x"}, {"prompt": "y"}])
    assert Measures.from_columns(frame.iloc[0]) == m  # NaN (pandas' NULL) reads None, floats of ints read int
    assert isinstance(Measures.from_columns(frame.iloc[0]).width, int)
    assert Measures.from_columns(frame.iloc[1]) == Measures()
    assert Measures.from_columns({}) == Measures() and Measures.from_columns({"m_cuts": pd.NA}).cuts is None


def test_mismatches_says_where_the_file_differs_from_what_was_asked():
    m = Measures(duration_s=6.04, width=1280, height=720, video_codec="h264", audio_codec="aac")
    asked = {"duration": 6, "resolution": "720p", "aspect_ratio": "16:9", "generate_audio": True}
    assert mismatches(m, asked) == {}
    assert mismatches(m, {"duration": 8, "resolution": "480p", "aspect_ratio": "9:16", "generate_audio": False}) == {
        "duration": (8, 6.04), "resolution": ("480p", "720p"), "aspect_ratio": ("9:16", "16:9"),
        "generate_audio": (False, True)}
    assert mismatches(m, {"duration": 6.3}) == {} and mismatches(m, {"duration": 6.6}) == {"duration": (6.6, 6.04)}
    assert mismatches(m, {"seconds": 6, "duration": None}) == {}  # absent or None: not checked
    assert mismatches(m, {"duration": 10}, duration_tolerance_s=5) == {}
    # 480p 16:9 as the service renders it (848×480) is 16:9; a portrait frame is 9:16; an odd shape is shown as is.
    assert mismatches(Measures(width=848, height=480), {"resolution": "480p", "aspect_ratio": "16:9"}) == {}
    assert mismatches(Measures(width=480, height=848), {"resolution": "480p", "aspect_ratio": "9:16"}) == {}
    assert mismatches(Measures(width=800, height=480), {"aspect_ratio": "16:9"}) == {"aspect_ratio": ("16:9", "800×480")}
    silent = Measures(duration_s=6.0, width=1280, height=720, video_codec="h264")
    assert mismatches(silent, {"generate_audio": True}) == {"generate_audio": (True, False)}
    assert mismatches(silent, {"generate_audio": False}) == {}
    assert mismatches(Measures(), asked) == {}  # nothing measured: nothing to compare
    assert mismatches(m, {"resolution": "big", "aspect_ratio": "wide", "duration": "long"}) == {
        "resolution": ("big", "720p"), "aspect_ratio": ("wide", "16:9"), "duration": ("long", 6.04)}
