"""The 1.5 inputs and the edit/extension bodies exactly as validation builds them (what would be sent)."""

import base64
import io
import warnings

import av
import numpy as np
import pytest
from PIL import Image

from grok_nb import ValidationError
from grok_nb.api import media
from grok_nb.api.validation import ImageRef, VideoRef, edit_spec, extend_spec, generate_spec

V15, LITE = "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite"
A = ImageRef({"url": "https://example.com/a.png"}, "https://example.com/a.png")
B = ImageRef({"url": "https://example.com/b.png"}, "https://example.com/b.png")
VID = VideoRef("https://vidgen.x.ai/v.mp4", duration=6.0, resolution="480p")


def _png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def mp4() -> bytes:
    """A real 2 s 64×64 H.264 MP4."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(48):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 5, np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return buf.getvalue()


def test_image_and_references_together_on_15_pin_the_first_frame():
    spec = generate_spec("a dance", model=V15, image=A, reference_images=[B, B], duration=12, resolution="720p")
    assert spec.body == {"model": V15, "prompt": "a dance", "duration": 12, "resolution": "720p",
                         "image": A.payload, "reference_images": [B.payload, B.payload]}
    assert spec.estimate.usd == pytest.approx(12 * 0.14 + 3 * 0.01) and spec.estimate.exact


def test_references_without_prompt_on_15():
    spec = generate_spec(None, model=V15, reference_images=[A])
    assert spec.body == {"model": V15, "duration": 8, "resolution": "480p", "reference_images": [A.payload]}


def test_last_frame_and_keyframes_body():
    spec = generate_spec("a flower opens", model=V15, image=A, last_frame=B, duration=10, aspect_ratio="21:9",
                         keyframes=[{"image": A, "timestamp_s": 2}, {"image": B, "timestamp_s": "4.5"},
                                    {"image": A, "timestamp_s": 9.6}])
    assert spec.body["last_frame"] == B.payload and spec.body["aspect_ratio"] == "21:9"
    assert spec.body["keyframes"] == [{"image": A.payload, "timestamp_s": 2}, {"image": B.payload, "timestamp_s": 4.5},
                                      {"image": A.payload, "timestamp_s": 9.6}]
    assert spec.params["keyframes"][1] == {"image": B.label, "timestamp_s": 4.5}
    assert spec.params["last_frame"] == B.label
    # 10 s at 480p + 5 input images (first frame, 3 keyframes, last frame), all at the published image price
    assert spec.estimate.usd == pytest.approx(10 * 0.08 + 5 * 0.01) and spec.estimate.exact
    # 4.5 s and 9.6 s are off the 1/3-s grid: sent as given, with a note of where the service puts them
    assert any("4.5 s is snapped" in n and "4.667" in n for n in spec.warnings)
    assert any("9.6 s is snapped" in n and "9.667" in n for n in spec.warnings)


def test_local_images_work_in_every_new_slot():
    data = _png()
    spec = generate_spec("x", model=V15, last_frame=data,
                         keyframes=[{"image": base64.b64encode(data).decode(), "timestamp_s": 1}])
    assert spec.body["last_frame"]["url"].startswith("data:image/png;base64,")
    assert spec.body["keyframes"][0]["image"]["url"].startswith("data:image/png;base64,")
    assert spec.params["last_frame"].startswith("sha256:")


@pytest.mark.parametrize("keyframes,field,message", [
    ([{"image": A, "timestamp_s": t} for t in (1, 2, 3, 4, 5)], "keyframes", "at most 4"),
    ([{"image": A, "timestamp_s": 9}], "keyframes[0].timestamp_s", "0 to 8"),
    ([{"image": A, "timestamp_s": -1}], "keyframes[0].timestamp_s", "0 to 8"),
    ([{"image": A, "timestamp_s": float("nan")}], "keyframes[0].timestamp_s", "0 to 8"),
    # strictly inside the clip: neither end, nor a time that snaps to an end on the 1/3-s grid
    ([{"image": A, "timestamp_s": 0}], "keyframes[0].timestamp_s", "strictly inside"),
    ([{"image": A, "timestamp_s": 8}], "keyframes[0].timestamp_s", "strictly inside"),
    ([{"image": A, "timestamp_s": 0.1}], "keyframes[0].timestamp_s", "snaps to 0 s"),
    ([{"image": A, "timestamp_s": 7.9}], "keyframes[0].timestamp_s", "snaps to 8 s"),
    # at most one per 1/3-s slot
    ([{"image": A, "timestamp_s": 3}, {"image": B, "timestamp_s": 3}], "keyframes[1].timestamp_s", "1/3-s slot"),
    ([{"image": A, "timestamp_s": 1}, {"image": B, "timestamp_s": 1.1}], "keyframes[1].timestamp_s",
     r"keyframes\[0\] is in the same slot"),
    ([{"image": A, "timestamp_s": 5}, {"image": B, "timestamp_s": 2}], "keyframes[1].timestamp_s", "increasing"),
    ([{"image": A}], "keyframes[0]", "timestamp_s"),
    ([{"image": A, "timestamp_s": 1, "weight": 2}], "keyframes[0]", "timestamp_s"),
    ([A], "keyframes[0]", "timestamp_s"),
    ({"image": A, "timestamp_s": 1}, "keyframes", "a list"),
    ([{"image": 5, "timestamp_s": 1}], "keyframes[0].image", "URL"),
])
def test_keyframe_rules(keyframes, field, message):
    with pytest.raises(ValidationError, match=message) as info:
        generate_spec("x", model=V15, keyframes=keyframes)
    assert info.value.field == field


def _quiet(*args, **kwargs):
    """generate_spec with every warning recorded rather than shown: (spec, warning texts)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = generate_spec(*args, **kwargs)
    return spec, [str(w.message) for w in caught]


def test_reference_audios_body_and_zero_based_tags():
    spec, said = _quiet("<AUDIO_0> greets <AUDIO_1>", model=V15, reference_audios=["v-1", {"voice_id": "v-2"}])
    assert spec.body["reference_audios"] == [{"voice_id": "v-1"}, {"voice_id": "v-2"}]
    assert spec.body["prompt"] == "<AUDIO_0> greets <AUDIO_1>" and said == []
    assert spec.estimate.exact  # audio is not billed apart
    # a prompt need not tag every voice, nor any: sent as written, no warning
    for prompt in ("<AUDIO_0> only", "<AUDIO_1> only", "no tags at all"):
        spec, said = _quiet(prompt, model=V15, reference_audios=["v-1", "v-2"])
        assert spec.body["prompt"] == prompt and said == []
    # a tag that names no voice is sent as written, with one warning naming the tags there are
    spec, said = _quiet("<AUDIO_0> <AUDIO_1> <AUDIO_2>", model=V15, reference_audios=["v-1", "v-2"])
    assert spec.body["prompt"] == "<AUDIO_0> <AUDIO_1> <AUDIO_2>"
    assert len(said) == 1 and "<AUDIO_2> names no voice" in said[0] and "<AUDIO_0> to <AUDIO_1>" in said[0]
    spec, said = _quiet("<AUDIO_0> sings", model=V15)
    assert spec.body["prompt"] == "<AUDIO_0> sings" and len(said) == 1 and "names no voice" in said[0]
    with pytest.raises(ValidationError, match="at most 3"):
        generate_spec("<AUDIO_0>", model=V15, reference_audios=["a", "b", "c", "d"])
    with pytest.raises(ValidationError, match="prompt"):
        generate_spec(None, model=V15, image=A, reference_audios=["v"])
    for bad in ("v", [""], ["has space"], [{"voice_id": 3}], [{"voice": "v"}], ["\ud800"]):
        with pytest.raises(ValidationError) as info:
            generate_spec("<AUDIO_0>", model=V15, reference_audios=bad)
        assert info.value.field.startswith("reference_audios")
    # on grok-imagine-video, "<AUDIO_0>" is just text
    spec, said = _quiet("a sign reading <AUDIO_0>")
    assert spec.body["prompt"] == "a sign reading <AUDIO_0>" and said == []


def test_image_tags_are_never_refused_and_warned_only_when_they_name_no_input():
    for prompt in ("<IMAGE_0> dances with <IMAGE_1>", "<IMAGE_1> and <IMAGE_2>"):  # zero- or one-based
        spec, said = _quiet(prompt, model=V15, image=A, reference_images=[B])
        assert spec.body["prompt"] == prompt and said == []
    spec, said = _quiet("<IMAGE_5> waves", model=V15, image=A, reference_images=[B])
    assert spec.body["prompt"] == "<IMAGE_5> waves" and len(said) == 1 and "<IMAGE_5> names no input" in said[0]


def test_voices_cap_reference_to_video_at_720p():
    with pytest.raises(ValidationError, match="reference_audios.*capped at 720p") as info:
        generate_spec("<AUDIO_0> sings", model=V15, reference_audios=["eve"], resolution="1080p")
    assert info.value.field == "resolution" and info.value.value == "1080p"
    assert generate_spec("x", model=V15, reference_audios=["eve"], resolution="720p").body["resolution"] == "720p"


def test_long_prompts_are_sent_with_a_warning_not_refused():
    long = "a fox " * 700  # 4,200 characters
    spec, said = _quiet(long)
    assert spec.body["prompt"] == long and len(said) == 1 and "4,200 characters" in said[0] and "4,096" in said[0]
    assert _quiet("a" * 4096)[1] == []
    with pytest.warns(UserWarning, match="4,096"):
        edit_spec(long, VID)
    with pytest.warns(UserWarning, match="4,096"):
        extend_spec(long, VID, duration=2)


@pytest.mark.parametrize("model,resolution,per_s,image", [
    (V15, "1080p", 0.25, 0.01), (LITE, "480p", 0.02, 0.01), (LITE, "720p", 0.03, 0.01),
    (LITE, "1080p", 0.14, 0.01), (V15, "720p", 0.14, 0.01), ("grok-imagine-video", "720p", 0.07, 0.002),
])
def test_estimates_per_model_and_resolution(model, resolution, per_s, image):
    spec = generate_spec("x", model=model, resolution=resolution, duration=10)
    assert spec.estimate.usd == pytest.approx(10 * per_s) and spec.estimate.exact  # the 2026-09-29 page
    spec = generate_spec("x", model=model, resolution=resolution, duration=10, image=A)
    assert spec.estimate.usd == pytest.approx(10 * per_s + image) and spec.estimate.exact


def test_edit_and_extension_bodies_only_carry_their_fields():
    edit = edit_spec("night", VID, user="u-7")
    assert edit.body == {"model": "grok-imagine-video", "prompt": "night", "video": {"url": VID.url}, "user": "u-7"}
    ext = extend_spec("more", VID, duration=3)
    assert ext.body == {"model": "grok-imagine-video", "prompt": "more", "video": {"url": VID.url}, "duration": 3}
    for builder, kwargs, field in [(edit_spec, dict(generate_audio=False), "generate_audio"),
                                   (extend_spec, dict(generate_audio=True), "generate_audio"),
                                   (extend_spec, dict(user="u-7"), "user")]:
        with pytest.raises(ValidationError, match="left out") as info:
            builder("x", VID, **kwargs)
        assert info.value.field == field


def test_input_video_as_bytes_path_data_uri_and_file_id(mp4, tmp_path):
    path = tmp_path / "clip.mp4"
    path.write_bytes(mp4)
    uri = "data:video/mp4;base64," + base64.b64encode(mp4).decode()
    for value in (mp4, path, str(path), uri, {"url": uri}):
        ref = media.video_ref(value)
        assert ref.url == uri and ref.duration == pytest.approx(2.0) and ref.resolution == "480p"
        spec = edit_spec("night", value)
        assert spec.body["video"] == {"url": uri}
        assert spec.params["input_video"].startswith("sha256:") and "base64" not in spec.params["input_video"]
        assert spec.estimate.exact and spec.estimate.usd == pytest.approx(2 * 0.05 + 2 * 0.01)
    by_id = extend_spec("more", {"file_id": "file-abc"}, duration=2)
    assert by_id.body["video"] == {"file_id": "file-abc"} and by_id.params["input_video"] == "file_id:file-abc"
    assert media.looks_like_local_video(str(path)) and media.looks_like_local_video(mp4)
    assert not media.looks_like_local_video("3f2a9c1e-0000-4000-8000-000000000000")


@pytest.mark.parametrize("value,message", [
    (b"", "non-empty"), (b"\x00" * 64, "ftyp"), (_png(), "ftyp"),
    ("data:video/webm;base64,AAAA", "video/mp4"), ("data:video/mp4;base64,@@", "valid base64"),
    ({"file_id": "has space"}, "file id"), ({"nothing": 1}, "file_id"), (3.5, "MP4"),
    ("x" * 5000, "MP4"), ("/no/such/video.mp4", "no such file"), ("\ud800.mp4", "UTF-8"),
])
def test_bad_input_videos(value, message):
    with pytest.raises(ValidationError, match=message) as info:
        edit_spec("night", value)
    assert info.value.field == "video"


def test_oversized_inline_video_is_refused(monkeypatch, mp4):
    monkeypatch.setattr(media, "MAX_VIDEO_BYTES", len(mp4) - 1)
    with pytest.raises(ValidationError, match="URL or file_id"):
        media.video_ref(mp4)


def test_a_too_long_local_video_is_refused_for_an_edit(tmp_path):
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=2)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for i in range(20):  # 10 s at 2 fps
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    with pytest.raises(ValidationError, match="8.7"):
        edit_spec("night", buf.getvalue())
