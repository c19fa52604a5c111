"""Pure validation: every rule of the contract, checked before anything is sent."""

import pytest

from grok_nb import ValidationError
from grok_nb.validation import (
    VideoRef, ImageRef, edit_spec, extend_spec, frame_size, generate_spec, nearest_aspect_ratio,
)

IMG = ImageRef({"url": "https://example.com/a.png"}, "https://example.com/a.png")
VID = VideoRef("https://vidgen.x.ai/v.mp4", duration=6.0, resolution="480p")


def test_defaults_are_sent_explicitly():
    spec = generate_spec("a cat")
    assert spec.body == {"model": "grok-imagine-video", "prompt": "a cat", "duration": 8, "resolution": "480p"}
    assert spec.endpoint == "/v1/videos/generations"


@pytest.mark.parametrize("value", [0, 16, 2.5, "x", True, [1], -1, "16"])
def test_duration_range_names_field_value_and_range(value):
    with pytest.raises(ValidationError) as info:
        generate_spec("a cat", duration=value)
    assert info.value.field == "duration"
    assert "1 to 15" in str(info.value) and repr(value) in str(info.value)


@pytest.mark.parametrize("value,sent", [(1, 1), (15, 15), ("8", 8), (6.0, 6)])
def test_duration_accepts_whole_seconds_like_the_api(value, sent):
    assert generate_spec("a cat", duration=value).body["duration"] == sent


def test_resolutions_depend_on_the_model():
    with pytest.raises(ValidationError, match="1080p.*480p, 720p"):
        generate_spec("a cat", resolution="1080p")
    spec = generate_spec("a cat", resolution="1080p", model="grok-imagine-video-1.5-preview")
    assert spec.model == "grok-imagine-video-1.5-preview" == spec.body["model"]  # sent as given
    assert spec.family == "grok-imagine-video-1.5"
    assert not spec.estimate.exact  # the 1080p price is an unofficial quote


def test_impossible_model_names_and_aspect_ratios_are_refused():
    for name in ("grok 2", "", "../x", "a" * 200, 7, None.__class__):
        with pytest.raises(ValidationError) as info:
            generate_spec("a cat", model=name)
        assert info.value.field == "model"
    with pytest.raises(ValidationError, match="aspect_ratio='5:4'.*16:9"):
        generate_spec("a cat", aspect_ratio="5:4")


def test_prompt_rules():
    with pytest.raises(ValidationError, match="prompt"):
        generate_spec("   ")
    with pytest.warns(UserWarning, match="without a prompt"):
        spec = generate_spec(None, image=IMG)
    assert "prompt" not in spec.body and spec.body["image"] == IMG.payload
    with pytest.raises(ValidationError, match="prompt"):
        edit_spec("", VID)
    with pytest.raises(ValidationError, match="prompt"):
        extend_spec(None, VID)


def test_reference_images_rules():
    refs = [IMG] * 7
    spec = generate_spec("style", reference_images=refs, duration=10, resolution="720p")
    assert len(spec.body["reference_images"]) == 7
    with pytest.raises(ValidationError, match="at most 7"):
        generate_spec("style", reference_images=[IMG] * 8)
    with pytest.raises(ValidationError, match="not together with image"):
        generate_spec("style", image=IMG, reference_images=[IMG])  # grok-imagine-video answers 400
    with pytest.raises(ValidationError, match="1 to 10"):
        generate_spec("style", reference_images=[IMG], duration=11)
    with pytest.raises(ValidationError, match="resolution"):
        generate_spec("style", reference_images=[IMG], resolution="1080p", model="grok-imagine-video-1.5")
    with pytest.raises(ValidationError, match="prompt"):
        generate_spec(None, reference_images=[IMG])


def test_edit_rules():
    spec = edit_spec("night", VID)
    assert spec.body == {"model": "grok-imagine-video", "prompt": "night", "video": {"url": VID.url}}
    assert edit_spec("night", VID, user="u1").body["user"] == "u1"
    with pytest.raises(ValidationError, match="8.7"):
        edit_spec("night", VideoRef(VID.url, duration=9.0))
    with pytest.raises(ValidationError, match="duration=5.*keeps the input"):
        edit_spec("night", VID, duration=5)
    with pytest.raises(ValidationError, match="video"):
        edit_spec("night", VideoRef("/local/file.mp4"))


def test_extend_rules_take_the_union_of_the_conflicting_sources():
    assert extend_spec("more", VID).body["duration"] == 6
    with pytest.warns(UserWarning, match="at least 2 s"):
        assert extend_spec("more", VID, duration=1).body["duration"] == 1
    with pytest.raises(ValidationError, match="1 to 10"):
        extend_spec("more", VID, duration=11)
    with pytest.warns(UserWarning, match="15 s"):
        extend_spec("more", VideoRef(VID.url, duration=20.0))
    with pytest.raises(ValidationError, match="2 to 30"):
        extend_spec("more", VideoRef(VID.url, duration=31.0))
    with pytest.raises(ValidationError, match="2 to 30"):
        extend_spec("more", VideoRef(VID.url, duration=1.0))


@pytest.mark.parametrize("res,ratio,size", [
    ("480p", "16:9", (848, 480)), ("720p", "16:9", (1280, 720)), ("480p", "9:16", (480, 848)),
    ("480p", "1:1", (480, 480)), ("720p", "4:3", (960, 720)), ("480p", "2:3", (480, 720)),
    ("1080p", "16:9", (1920, 1080)),
])
def test_frame_sizes(res, ratio, size):
    assert frame_size(res, ratio) == size
    assert all(v % 2 == 0 for v in size)


def test_nearest_aspect_ratio():
    assert nearest_aspect_ratio(768, 512) == "3:2"
    assert nearest_aspect_ratio(1080, 1920) == "9:16"
    assert nearest_aspect_ratio(500, 510) == "1:1"
