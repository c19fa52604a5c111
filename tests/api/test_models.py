"""Each model's published rules, aliases, date pins, and names grok_nb does not know (pure)."""

import warnings

import pytest

from grok_nb import ValidationError
from grok_nb.api import models
from grok_nb.api.validation import ImageRef, VideoRef, edit_spec, extend_spec, generate_spec

IMG = ImageRef({"url": "https://example.com/a.png"}, "https://example.com/a.png")
VID = VideoRef("https://vidgen.x.ai/v.mp4", duration=6.0, resolution="480p")
V15, LITE, V1 = "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite", "grok-imagine-video"


@pytest.mark.parametrize("name,family,pinned", [
    (V1, V1, None), (V15, V15, None), (LITE, LITE, None),
    ("grok-imagine-video-1.5-preview", V15, None),
    ("grok-imagine-video-1.5-2026-05-30", V15, "2026-05-30"),
    ("grok-imagine-video-1.5-lite-2026-10-01", LITE, "2026-10-01"),
    ("grok-imagine-video-2026-01-15", V1, "2026-01-15"),
    ("grok-imagine-video-2", None, None), ("sora-2", None, None),
])
def test_names_resolve_to_families(name, family, pinned):
    model = models.resolve(name)
    assert (model.name, model.family, model.pinned, model.known) == (name, family, pinned, family is not None)


def test_no_closed_list_one_warning_and_the_name_is_sent_as_given():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = generate_spec("a cat says <AUDIO_0>", model="grok-imagine-video-2", resolution="720p",
                             aspect_ratio="21:9", last_frame=IMG, keyframes=[{"image": IMG, "timestamp_s": 2}],
                             reference_audios=["v1"], image=IMG, reference_images=[IMG])
    assert len(caught) == 1 and "does not know model 'grok-imagine-video-2'" in str(caught[0].message)
    assert spec.body["model"] == "grok-imagine-video-2" and spec.family is None
    assert not spec.estimate.exact and "price unknown" in str(spec.estimate)
    # general limits still hold for unknown names
    for bad in (dict(duration=16), dict(resolution="4k"), dict(aspect_ratio="7:3"),
                dict(reference_images=[IMG] * 8), dict(reference_images=[IMG], resolution="1080p"),
                dict(reference_audios=["eve"], resolution="1080p")):
        with pytest.raises(ValidationError):
            generate_spec("a cat", model="grok-imagine-video-2", **bad)


def test_date_pinned_names_use_their_family_rules_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spec = generate_spec("a", model="grok-imagine-video-1.5-2026-05-30", resolution="1080p", aspect_ratio="5:2")
    assert spec.body["model"] == "grok-imagine-video-1.5-2026-05-30" and spec.family == V15
    assert spec.estimate.usd == pytest.approx(8 * 0.25)


def test_grok_imagine_video_rules():
    rules = models.MODELS[V1]
    assert rules.resolutions == ("480p", "720p") and "21:9" not in rules.aspect_ratios
    with pytest.raises(ValidationError, match="not together with image"):
        generate_spec("x", image=IMG, reference_images=[IMG])
    with pytest.raises(ValidationError, match="prompt"):
        generate_spec(None, reference_images=[IMG])
    with pytest.raises(ValidationError, match="1 to 10"):
        generate_spec("x", reference_images=[IMG], duration=12)
    for arg, value in (("last_frame", IMG), ("keyframes", [{"image": IMG, "timestamp_s": 1}]),
                       ("reference_audios", ["voice-1"])):
        with pytest.raises(ValidationError, match="not an input of grok-imagine-video") as info:
            generate_spec("x", **{arg: value})
        assert info.value.field == arg
    for ratio in ("21:9", "5:2"):
        with pytest.raises(ValidationError, match="aspect_ratio"):
            generate_spec("x", aspect_ratio=ratio)
    with pytest.raises(ValidationError, match="resolution"):
        generate_spec("x", resolution="1080p")


@pytest.mark.parametrize("model", [V15])
def test_grok_imagine_video_15_rules(model):
    both = generate_spec("x", model=model, image=IMG, reference_images=[IMG] * 7)
    assert both.body["image"] == IMG.payload and len(both.body["reference_images"]) == 7
    silent = generate_spec(None, model=model, reference_images=[IMG])  # no prompt needed with references
    assert "prompt" not in silent.body
    assert generate_spec("x", model=model, reference_images=[IMG], duration=15).body["duration"] == 15
    with pytest.raises(ValidationError, match="resolution"):  # reference→video stays at 720p at most
        generate_spec("x", model=model, reference_images=[IMG], resolution="1080p")
    for ratio in ("21:9", "5:2"):
        assert generate_spec("x", model=model, aspect_ratio=ratio).body["aspect_ratio"] == ratio
    assert generate_spec("x", model=model, image=IMG, resolution="1080p").body["resolution"] == "1080p"


def test_lite_does_text_and_image_to_video_only():
    rules = models.MODELS[LITE]
    assert rules.documented and rules.operations == ("generate",)
    for arg, value in (("reference_images", [IMG]), ("reference_audios", ["eve"]), ("last_frame", IMG),
                       ("keyframes", [{"image": IMG, "timestamp_s": 1}])):
        with pytest.raises(ValidationError, match="not an input of grok-imagine-video-1.5-lite") as info:
            generate_spec("x", model=LITE, **{arg: value})
        assert info.value.field == arg and "text→video and image→video only" in str(info.value)
        assert "grok-imagine-video-1.5 take" in str(info.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for kwargs in (dict(resolution="1080p"), dict(image=IMG, resolution="1080p", aspect_ratio="21:9")):
            assert generate_spec("x", model=LITE, **kwargs).body["resolution"] == "1080p"
    assert generate_spec("x", model="grok-imagine-video-1.5-lite-2026-10-01").family == LITE
    with pytest.raises(ValidationError, match="not an input"):
        generate_spec("x", model="grok-imagine-video-1.5-lite-2026-10-01", reference_images=[IMG])


@pytest.mark.parametrize("model", [V15, LITE, "grok-imagine-video-1.5-preview", "grok-imagine-video-1.5-2026-05-30"])
def test_edits_and_extensions_on_the_15_models_are_refused_before_sending(model):
    for builder, noun, kwargs in ((edit_spec, "edits", {}), (extend_spec, "extensions", dict(duration=3))):
        with pytest.raises(ValidationError, match=f"documents {noun} for grok-imagine-video only") as info:
            builder("night", VID, model=model, **kwargs)
        assert info.value.field == "model" and info.value.value == model
        assert "failed_precondition" in str(info.value)


def test_edits_with_an_unknown_model_go_out_with_a_warning():
    with pytest.warns(UserWarning, match="does not know model 'grok-imagine-video-2'"):
        spec = edit_spec("night", VID, model="grok-imagine-video-2")
    assert spec.body["model"] == "grok-imagine-video-2"
    with pytest.warns(UserWarning, match="does not know model"):
        spec = extend_spec("more", VID, model="grok-imagine-video-2", duration=3)
    assert spec.body["model"] == "grok-imagine-video-2"


@pytest.mark.parametrize("name", ["grok-2", "grok-4", "grok-4-0709", "grok-3-mini", "grok-2-image", "grok-code-fast-1",
                                  "grok-imagine-image", "Grok-Beta"])
def test_xai_chat_and_image_models_are_refused_before_sending(name):
    with pytest.raises(ValidationError) as info:
        generate_spec("a cat", model=name)
    assert info.value.field == "model" and info.value.value == name
    text = str(info.value)
    assert "a video model such as grok-imagine-video" in text and "client.models()" in text and ".." not in text


def test_allowed_values_are_written_down_for_help():
    text = models.allowed_values()
    for needed in ("duration 1-15 s (default 8)", "480p (default)", "1080p", "16:9", "21:9", "<AUDIO_0>", "720p",
                   V1, V15, LITE, "4,096"):
        assert needed in text, needed
    lite_line = next(line for line in text.splitlines() if line.strip().startswith(LITE + ":"))
    assert "reference_images" not in lite_line and "1080p" in lite_line
    assert "8.7 s" in models.allowed_values("edit") and "grok-imagine-video only" in models.allowed_values("edit")
    assert "1-10 s (default 6" in models.allowed_values("extend")


def test_edits_on_grok_imagine_video_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        edit_spec("night", VID)
        extend_spec("more", VID, duration=3)


@pytest.mark.parametrize("body,ids,families", [
    ({"models": [{"id": V1}, {"id": V15, "aliases": ["grok-imagine-video-1.5-preview"]}]}, [V1, V15], [V1, V15]),
    ({"data": [{"id": "grok-imagine-video-1.5-2026-05-30", "aliases": [V15]}, {"id": "future-model"}]},
     ["grok-imagine-video-1.5-2026-05-30", "future-model"], [V15, None]),
    ([V1, {"name": LITE}, {"no": "id"}, 7], [V1, LITE], [V1, LITE]),
    ({"id": V15, "object": "model"}, [V15], [V15]),
    ("not json", [], []), (None, [], []), ({"models": "x"}, [], []),
])
def test_parse_models_listing_is_lenient(body, ids, families):
    listing = models.parse_models_listing(body)
    assert [m.id for m in listing] == ids and [m.family for m in listing] == families
    assert all(m.rules is (models.MODELS[m.family] if m.family else models.GENERAL) for m in listing)


@pytest.mark.parametrize("name", ["grok-imagine-2", "grok-5-video", "grok-imagine-video-2"])
def test_unknown_names_that_may_be_video_models_still_go_out(name):
    with pytest.warns(UserWarning, match="does not know model"):
        assert generate_spec("a cat", model=name).body["model"] == name
