"""Pure validation: every rule of the contract, checked before anything is sent."""

import pytest

from grok_nb import ValidationError
from grok_nb.api.validation import (
    ImageRef,
    VideoRef,
    check_kind,
    check_request_id,
    check_sendable,
    check_tags,
    edit_spec,
    extend_spec,
    frame_size,
    generate_spec,
    nearest_aspect_ratio,
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


@pytest.mark.parametrize("value,sent", [(1, 1), (15, 15), (6.0, 6)])
def test_duration_accepts_whole_seconds_like_the_api(value, sent):
    assert generate_spec("a cat", duration=value).body["duration"] == sent


def test_a_duration_written_as_text_is_refused_saying_how_to_write_it():
    with pytest.raises(ValidationError) as info:
        generate_spec("a cat", duration="6")
    assert str(info.value) == ("duration='6' is not allowed: whole seconds from 1 to 15, given as a number "
                               "(duration=6, not duration='6')")


def test_resolutions_depend_on_the_model():
    with pytest.raises(ValidationError, match="1080p.*480p, 720p"):
        generate_spec("a cat", resolution="1080p")
    spec = generate_spec("a cat", resolution="1080p", model="grok-imagine-video-1.5-preview")
    assert spec.model == "grok-imagine-video-1.5-preview" == spec.body["model"]  # sent as given
    assert spec.family == "grok-imagine-video-1.5"
    assert spec.estimate.exact  # 1080p is on xAI's pricing page of 2026-09-29


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


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), "1e400", 10**400, -10**400, "nan",
                                   "inf", "9" * 50, 1e300, complex(1, 1), b"8", None.__class__])
def test_durations_that_used_to_crash(value):
    with pytest.raises(ValidationError) as info:
        generate_spec("a cat", duration=value)
    assert info.value.field == "duration"
    with pytest.raises(ValidationError):
        extend_spec("more", VID, duration=value)


def test_numpy_and_fraction_durations_are_numbers():
    import fractions

    import numpy as np

    assert generate_spec("a cat", duration=np.int64(5)).body["duration"] == 5
    assert generate_spec("a cat", duration=np.float32(4.0)).body["duration"] == 4
    assert generate_spec("a cat", duration=fractions.Fraction(6, 1)).body["duration"] == 6


@pytest.mark.parametrize("field", ["prompt", "user"])
def test_lone_surrogates_are_refused_before_sending(field):
    kwargs = {"prompt": "a cat", field: "bad \ud83d text"}
    with pytest.raises(ValidationError, match="UTF-8") as info:
        generate_spec(**kwargs)
    assert info.value.field == field
    with pytest.raises(ValidationError, match="UTF-8"):
        edit_spec("bad \udc80", VID)


def test_arguments_no_builder_takes_are_named():
    with pytest.raises(ValidationError, match="not an argument of generate") as info:
        generate_spec("a cat", durations=5)
    assert info.value.field == "durations"
    with pytest.raises(ValidationError, match="not an argument of extend"):
        extend_spec("more", VID, resolution="720p")


@pytest.mark.parametrize("value,tags", [(None, []), ("exp1", ["exp1"]), (["a", "b"], ["a", "b"]), (("a",), ["a"]),
                                        ([], [])])
def test_check_tags(value, tags):
    assert check_tags(value) == tags


@pytest.mark.parametrize("value", [5, [""], ["  "], [None], ["a\nb"], ["x" * 201], {"a": 1}, b"exp", ["\ud800"],
                                   "", [["nested"]]])
def test_check_tags_refuses(value):
    with pytest.raises(ValidationError) as info:
        check_tags(value)
    assert info.value.field == "tags"


@pytest.mark.parametrize("value", ["3f2a9c1e-7b1d-4c0e-9a51-0f6a2b3c4d5e", "req_123", "a.b", "v1.2-x", "A"])
def test_check_request_id_accepts_what_ids_look_like(value):
    assert check_request_id(value) == value
    assert check_request_id(f"  {value}\n") == value  # pasted with whitespace around


@pytest.mark.parametrize("value", ["", " ", "..", ".", "a..b", ".a", "a.", "?x=1", "#frag", "\x00", "a/b", "/",
                                   "a b", "a\tb", "%2e%2e", "x" * 129, None, 5, b"abc", ["a"], "\ud800", "é"])
def test_check_request_id_refuses_what_changes_the_path(value):
    with pytest.raises(ValidationError) as info:
        check_request_id(value)
    assert info.value.field == "request_id"


@pytest.mark.parametrize("value", [["generate"], None, "remix", 1, {"generate": 1}])
def test_check_kind(value):
    with pytest.raises(ValidationError) as info:
        check_kind(value)
    assert info.value.field == "kind"
    assert check_kind("edit") == "edit"


def test_check_sendable_names_the_path():
    with pytest.raises(ValidationError) as info:
        check_sendable({"a": [{"b": float("nan")}]})
    assert info.value.field == "a[0].b"
    with pytest.raises(ValidationError) as info:
        check_sendable({"x": object()})
    assert info.value.field == "x"


# -- the contract's modules: one definition each, no cycle -----------------------------------------
def _api_imports():
    """For each grok_nb.api module: the api modules it imports at module level, and any import inside a function."""
    import ast
    from pathlib import Path

    import grok_nb.api

    graph, nested = {}, {}
    for path in Path(grok_nb.api.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        top = set()
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                top |= {node.module} if node.module else {a.name for a in node.names}
        graph[path.stem] = top
        nested[path.stem] = [(n.module or n.names[0].name) if isinstance(n, ast.ImportFrom) else n.names[0].name
                             for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
                             for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
    return graph, nested


@pytest.mark.slow
def test_api_modules_import_each_other_without_a_cycle():
    graph, nested = _api_imports()
    assert "refs" in graph["media"] and "refs" in graph["validation"] and "validation" not in graph["media"]

    def reach(start, seen):
        for nxt in graph.get(start, ()):
            if nxt not in seen:
                seen.add(nxt)
                reach(nxt, seen)
        return seen

    for module in graph:
        assert module not in reach(module, set()), f"api.{module} imports itself through a cycle"
    # Only heavy dependencies are imported inside functions (PIL, PyAV, NumPy).
    assert {m for names in nested.values() for m in names} <= {"PIL", "av", "numpy"}, nested


def test_one_is_mp4_for_bytes_and_paths(tmp_path):
    from grok_nb.api import probe

    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00"
    assert probe.is_mp4(head) and not probe.is_mp4(b"\x00\x00\x00\x18moov") and not probe.is_mp4(b"")
    (tmp_path / "a.mp4").write_bytes(head)
    (tmp_path / "b.mp4").write_bytes(b"<html>")
    assert probe.is_mp4(tmp_path / "a.mp4") and probe.is_mp4(str(tmp_path / "a.mp4"))
    assert not probe.is_mp4(tmp_path / "b.mp4") and not probe.is_mp4(tmp_path / "missing.mp4")
    assert not probe.is_mp4(tmp_path)  # a directory: False, not IsADirectoryError


def test_one_latency_model_for_the_planner_and_the_simulator():
    from grok_nb.api import latency
    from grok_nb.jobs import pollplan
    from grok_nb.simulator import real_latency_s

    assert pollplan.documented_prior is latency.documented_prior and pollplan.LatencyPrior is latency.LatencyPrior
    lite = "grok-imagine-video-1.5-lite"
    for kind, seconds, res, model in [("generate", 6, "480p", None), ("generate", 15, "720p", None),
                                      ("edit", 6, "480p", None), ("generate", 6, "1080p", lite)]:
        typical = latency.typical_latency_s(kind, seconds, res, model=model)
        assert real_latency_s(kind, seconds, res, model=model) == typical
        assert latency.documented_prior(kind, seconds, res, model=model).typical == typical
    assert latency.documented_prior("generate", 6, "480p", speed=10).typical == \
        latency.typical_latency_s("generate", 6, "480p") / 10


# -- careless and hostile inputs ---------------------------------------------------------------------
class _Hostile:
    def __repr__(self):
        raise RuntimeError("no repr for you")


class _Huge:
    def __repr__(self):
        return "x" * 10_000_000


@pytest.mark.parametrize("value", [_Hostile(), _Huge(), "y" * 5_000_000, b"z" * 5_000_000,
                                   "key xai-ABCDEF0123456789abcdef0123456789 inside", ["xai-SECRETsecret0123456789"]])
@pytest.mark.slow
def test_a_validation_error_shows_any_value_safely(value):
    error = ValidationError("image", value, "a URL")
    for text in (str(error), repr(error)):
        assert text.startswith(("image=", "ValidationError(")) and len(text) < 300
        assert "SECRET" not in text and "ABCDEF0123456789" not in text
    assert error.value is value  # kept as given, for code that inspects it
    assert "<_Hostile object>" in str(ValidationError("image", _Hostile(), "a URL"))


def test_a_long_file_name_that_does_not_exist_is_not_called_base64():
    name = "holiday_photos_" * 20 + "fox"  # 303 characters, only base64 letters, no such file
    with pytest.raises(ValidationError, match="no file has this name") as info:
        generate_spec("x", image=name)
    assert info.value.field == "image"
    path = "/data/" + "very_long_folder_name/" * 12 + "fox.png"
    with pytest.raises(ValidationError, match="no such file"):
        generate_spec("x", image=path)


def test_a_404_reads_well_and_hints_at_what_was_missing():
    from grok_nb.errors import error_from_response

    model = str(error_from_response(404, {"code": "not-found", "error": "The model grok-2 does not exist or your "
                                                                         "team does not have access to it."}))
    assert ".." not in model and "it. Check the model name: client.models()" in model and "request id" not in model
    job = str(error_from_response(404, {"code": "not-found", "error": "No video request with id 3f2a."}))
    assert ".." not in job and "Check the request id" in job
