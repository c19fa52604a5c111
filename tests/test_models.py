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
        spec = generate_spec("a cat says <AUDIO_1>", model="grok-imagine-video-2", resolution="1080p", aspect_ratio="21:9",
                             last_frame=IMG, keyframes=[{"image": IMG, "timestamp_s": 2}],
                             reference_audios=["v1"], image=IMG, reference_images=[IMG])
    assert len(caught) == 1 and "does not know model 'grok-imagine-video-2'" in str(caught[0].message)
    assert spec.body["model"] == "grok-imagine-video-2" and spec.family is None
    assert not spec.estimate.exact and "price unknown" in str(spec.estimate)
    # general limits still hold for unknown names
    for bad in (dict(duration=16), dict(resolution="4k"), dict(aspect_ratio="7:3"),
                dict(reference_images=[IMG] * 8)):
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


@pytest.mark.parametrize("model", [V15, LITE])
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


def test_lite_rules_are_marked_as_assumed():
    assert models.MODELS[LITE].documented is False and "assumed" in models.MODELS[LITE].source
    assert models.MODELS[V15].documented and models.MODELS[V1].documented


@pytest.mark.parametrize("model", [V15, LITE])
def test_edits_and_extensions_on_other_models_warn_but_are_sent(model):
    with pytest.warns(UserWarning, match="documents edits for grok-imagine-video only"):
        spec = edit_spec("night", VID, model=model)
    assert spec.body["model"] == model
    with pytest.warns(UserWarning, match="documents extensions for grok-imagine-video only"):
        extend_spec("more", VID, model=model, duration=3)


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
