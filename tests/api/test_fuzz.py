"""Input that cannot crash the client: generated invalid inputs to every public entry point.

Each example changes one argument of an otherwise valid call to something invalid. Every
one must raise ValidationError naming that argument, and no request may reach the
transport. Runs derandomized (the same >1,000 examples each run); set
``HYPOTHESIS_PROFILE=explore`` to draw new ones.
"""

from __future__ import annotations

import base64
import math
import os
import re
from collections import Counter
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import grok_nb
from grok_nb import ValidationError
from grok_nb.api import models
from grok_nb.api.validation import MAX_TAKES, check_request_id
from grok_nb.notebook.compare import Grid

from .test_media import _png_declaring

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("explore", derandomize=False, database=None, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

V15, LITE = "grok-imagine-video-1.5", "grok-imagine-video-1.5-lite"
URL = "https://example.com/a.png"
VIDEO_URL = "https://example.com/v.mp4"
SENT: list[httpx.Request] = []
EXAMPLES: Counter = Counter()
FUZZ_TESTS = ("generate", "estimate_15", "estimate_kind", "edit", "extend", "grid", "request_id")


def _handler(request: httpx.Request) -> httpx.Response:
    SENT.append(request)
    # Refusals that end a job at once, so that a wrongly sent request cannot wait out a deadline.
    return httpx.Response(404 if request.method == "GET" else 400, json={"code": "fuzz", "error": "sent"})


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory):
    """A client whose every request lands in SENT (no network at all)."""
    client = grok_nb.Client(api_key="xai-test", base_url="http://127.0.0.1:9", transport=httpx.MockTransport(_handler),
                            home=tmp_path_factory.mktemp("fuzz-home"), rate_limit=1000.0)
    yield client
    client.close()


def _refused(call, field: str) -> None:
    """``call()`` raises ValidationError naming ``field`` (or an item of it) and sends nothing."""
    before = len(SENT)
    with pytest.raises(ValidationError) as info:
        call()
    got = info.value.field
    assert got == field or got.startswith((field + "[", field + ".")), f"{got!r} named instead of {field!r}"
    assert str(info.value).startswith(got + "=") and info.value.allowed
    assert len(SENT) == before, f"{len(SENT) - before} request(s) sent"


# -- strategies of invalid values ---------------------------------------------------------------------
def _parses_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


surrogate_text = st.builds(lambda a, s, b: a + s + b, st.text(max_size=8),
                           st.sampled_from(["\ud800", "\udbff", "\udc80", "\udfff"]),
                           st.text(max_size=8))
not_a_str = st.one_of(st.integers(), st.floats(), st.lists(st.integers(), max_size=2), st.binary(max_size=4),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2), st.just(object()))
weird_numbers = st.sampled_from([float("nan"), float("inf"), float("-inf"), "1e400", "-1e400", "nan", "inf",
                                 10**400, -10**400, True, False, 2.5, "2.5", 1e300, complex(2, 0)])


def bad_seconds(lo: int, hi: int) -> st.SearchStrategy:
    """Anything that is not whole seconds in [lo, hi]."""
    return st.one_of(
        weird_numbers,
        st.integers().filter(lambda n: not lo <= n <= hi),
        st.floats(allow_nan=True, allow_infinity=True).filter(
            lambda x: not (math.isfinite(x) and x.is_integer() and lo <= x <= hi)),
        st.text(max_size=12).filter(lambda s: not _parses_as_number(s)),
        st.integers(hi + 1, 10**6).map(str),
        st.lists(st.integers(lo, hi), max_size=2), st.binary(max_size=3), surrogate_text,
    )


bad_image = st.one_of(
    st.binary(max_size=64),
    st.binary(max_size=64).map(lambda b: b"\x89PNG\r\n\x1a\n" + b),
    st.binary(max_size=64).map(lambda b: b"\xff\xd8\xff" + b),
    st.binary(max_size=64).map(lambda b: b"RIFF\x00\x00\x00\x00WEBP" + b),
    st.tuples(st.integers(8193, 100_000), st.integers(1, 100_000)).map(lambda wh: _png_declaring(*wh)),
    st.tuples(st.integers(0, 15), st.integers(16, 100)).map(lambda wh: _png_declaring(*wh)),
    st.tuples(st.integers(0, 15), st.integers(0, 64)).map(lambda wh: Image.new("RGB", wh)),
    st.integers(4097, 12_000).map(lambda n: "A" * n),
    st.binary(min_size=200, max_size=400).map(lambda b: base64.b64encode(b"\x00" + b).decode()),
    st.text(max_size=40).map(lambda s: "/nonexistent-grok-nb/" + s),
    st.text(min_size=4097, max_size=4200),
    surrogate_text,
    st.sampled_from(["", "   ", "data:image/gif;base64,R0lGODlh", "data:image/png;base64,@@@", "data:text/plain,hi",
                     "https://example.com/a b.png", "http://", "https://", "http:///a.png", "https://:443/a.png",
                     str(Path(__file__)), str(Path(__file__).parent),
                     "~no_such_user_grok_nb/a.png", "a\x00b.png", {"url": 5}, {"file_id": ""}, {"file_id": "a b"},
                     {}]),
    st.integers(), st.floats(), st.lists(st.just(URL), max_size=2),
)
bad_model = st.one_of(
    st.text(max_size=30).filter(lambda s: not models._NAME.fullmatch(s)),
    st.sampled_from(["grok-2", "grok-3", "grok-4", "grok-4-0709", "grok-2-image", "grok-code-fast-1"]),
    st.integers(129, 400).map(lambda n: "g" * n), surrogate_text,
    not_a_str,
)
bad_prompt = st.one_of(surrogate_text, st.text(alphabet=" \t\n\r", max_size=4), st.none(), not_a_str)
bad_user = st.one_of(surrogate_text, not_a_str)
bad_flag = st.one_of(st.integers(), st.text(max_size=5), st.floats(), st.lists(st.booleans(), max_size=2))
bad_resolution = st.one_of(st.text(max_size=8).filter(lambda s: s not in ("480p", "720p")), not_a_str)
bad_aspect = st.one_of(st.text(max_size=8).filter(lambda s: s not in models.ASPECT_RATIOS),
                       st.sampled_from(["21:9", "5:2"]),
                       not_a_str)
bad_references = st.one_of(
    st.integers(8, 12).map(lambda n: [URL] * n),
    st.one_of(st.text(max_size=10), st.integers(), st.dictionaries(st.text(max_size=2), st.integers(), max_size=1)),
    st.tuples(st.integers(0, 2), bad_image).map(lambda t: [URL] * t[0] + [t[1]]),
)

generate_cases = st.one_of(
    st.tuples(st.just("duration"), bad_seconds(1, 15)),
    st.tuples(st.just("resolution"), bad_resolution),
    st.tuples(st.just("aspect_ratio"), bad_aspect),
    st.tuples(st.just("prompt"), bad_prompt),
    st.tuples(st.just("user"), bad_user),
    st.tuples(st.just("generate_audio"), bad_flag),
    st.tuples(st.just("image"), bad_image),
    st.tuples(st.just("reference_images"), bad_references),
    st.tuples(st.just("model"), bad_model),
)


@settings(max_examples=350)
@given(case=generate_cases)
@pytest.mark.slow
def test_generate_refuses_bad_input_before_sending(fuzz_client, case):
    field, value = case
    _refused(lambda: fuzz_client.generate(**{"prompt": "a fox", "duration": 2, field: value}), field)
    EXAMPLES["generate"] += 1


def _keyframes_cases() -> st.SearchStrategy:
    frame = lambda t: {"image": URL, "timestamp_s": t}  # noqa: E731
    bad_times = st.one_of(
        st.sampled_from([float("nan"), float("inf"), float("-inf"), "1e400", "nan", 10**400, -10**400, True, 1e300,
                         complex(1, 0), "8.5", None, [1]]),
        st.integers(9, 10**6), st.integers(max_value=-1), st.floats(min_value=8.001, allow_infinity=True),
        st.text(max_size=6).filter(lambda s: not _parses_as_number(s)))
    return st.one_of(
        st.integers(5, 8).map(lambda n: [frame(i) for i in range(n)]),
        bad_times.map(lambda t: [frame(t)]),
        st.integers(0, 8).map(lambda t: [frame(t), frame(t)]),
        st.tuples(st.integers(1, 8), st.integers(0, 8)).filter(lambda ab: ab[1] <= ab[0]).map(
            lambda ab: [frame(ab[0]), frame(ab[1])]),
        bad_image.map(lambda image: [{"image": image, "timestamp_s": 1}]),
        st.one_of(st.text(max_size=5), st.integers(), st.just({"image": URL, "timestamp_s": 1})),
        st.sampled_from([[{"image": URL}], [{"timestamp_s": 1}], [URL], [{"image": URL, "timestamp_s": 1, "x": 0}]]),
    )


bad_voices = st.one_of(
    st.integers(4, 6).map(lambda n: [f"v{i}" for i in range(n)]),
    st.one_of(st.text(max_size=5), st.integers(), st.none().map(lambda _: {"voice_id": "v"})),
    st.one_of(surrogate_text, st.just(""), st.text(min_size=1, max_size=5).map(lambda s: "v " + s), st.integers(),
              st.just({"voice": "v"}), st.just({"voice_id": 5}), st.integers(257, 300).map(lambda n: "v" * n)).map(
        lambda v: [v]),
)
estimate_15_cases = st.one_of(
    st.tuples(st.just("keyframes"), _keyframes_cases()).map(lambda c: (c[0], {c[0]: c[1]})),
    st.tuples(st.just("last_frame"), bad_image).map(lambda c: (c[0], {c[0]: c[1]})),
    st.tuples(st.just("reference_audios"), bad_voices).map(lambda c: (c[0], {c[0]: c[1]})),
    # Any reference→video, voices too, is capped at 720p
    st.integers(1, 3).map(lambda n: ("resolution", {"reference_audios": [f"v{i}" for i in range(n)],
                                                    "resolution": "1080p"})),
    # Two keyframes in one 1/3-s slot
    st.tuples(st.integers(1, 20), st.floats(0, 0.16)).map(lambda c: ("keyframes", {"keyframes": [
        {"image": URL, "timestamp_s": c[0] / 3}, {"image": URL, "timestamp_s": c[0] / 3 + c[1]}]})),
    # grok-imagine-video-1.5-lite does text→video and image→video only
    st.sampled_from(["last_frame", "keyframes", "reference_audios", "reference_images"]).map(lambda name: (name, {
        "model": LITE, name: {"last_frame": URL, "keyframes": [{"image": URL, "timestamp_s": 1}],
                              "reference_audios": ["v1"], "reference_images": [URL]}[name]})),
    st.sampled_from(["last_frame", "keyframes", "reference_audios"]).map(lambda name: (name, {
        "model": "grok-imagine-video", name: {"last_frame": URL, "keyframes": [{"image": URL, "timestamp_s": 1}],
                                              "reference_audios": ["v1"]}[name]})),
    st.tuples(st.just("resolution"), st.just({"reference_images": [URL], "resolution": "1080p"})),
    st.tuples(st.just("duration"), bad_seconds(1, 15)).map(lambda c: (c[0], {c[0]: c[1]})),
    st.tuples(st.just("aspect_ratio"), st.text(max_size=6).filter(lambda s: s not in models.WIDE_ASPECT_RATIOS)).map(
        lambda c: (c[0], {c[0]: c[1]})),
    st.text(min_size=1, max_size=12).filter(lambda s: s.isidentifier() and not s.startswith("_") and s not in (
        "self",
        "prompt", "image", "reference_images", "last_frame", "keyframes", "reference_audios", "duration", "resolution",
        "aspect_ratio", "model", "generate_audio", "user", "kind")).map(lambda name: (name, {name: 1})),
)


@settings(max_examples=250)
@given(case=estimate_15_cases)
@pytest.mark.slow
def test_estimate_cost_refuses_bad_15_inputs(fuzz_client, case):
    field, changes = case
    _refused(lambda: fuzz_client.estimate_cost(**{"prompt": "a fox", "model": V15, **changes}), field)
    EXAMPLES["estimate_15"] += 1


@settings(max_examples=60)
@given(kind=st.one_of(st.text(max_size=10).filter(lambda s: s not in ("generate", "edit", "extend")),
                      st.integers(), st.none(), st.floats(), st.booleans()))
@pytest.mark.slow
def test_estimate_cost_refuses_bad_kinds(fuzz_client, kind):
    _refused(lambda: fuzz_client.estimate_cost("a fox", kind=kind), "kind")
    EXAMPLES["estimate_kind"] += 1


bad_video = st.one_of(
    st.binary(max_size=32), st.integers(), st.floats(), st.none(), st.lists(st.just(VIDEO_URL), max_size=2),
    st.text(max_size=30).filter(lambda s: not s.startswith(("http://", "https://"))),
    st.sampled_from(["", "  ", "ftp://example.com/v.mp4", "a" * 5000, "http://", "https:///v.mp4"]),
)
edit_cases = st.one_of(
    st.tuples(st.just("video"), bad_video),
    st.tuples(st.just("prompt"), bad_prompt),
    st.tuples(st.just("user"), bad_user),
    st.tuples(st.just("model"), st.one_of(bad_model, st.sampled_from([V15, LITE]))),  # edits: grok-imagine-video only
    st.tuples(st.just("generate_audio"), st.one_of(st.booleans(), bad_flag)),
    st.tuples(st.sampled_from(["duration", "resolution", "aspect_ratio"]),
              st.one_of(st.integers(), st.text(max_size=5))),
)


@settings(max_examples=180)
@given(case=edit_cases)
@pytest.mark.slow
def test_edit_refuses_bad_input_before_sending(fuzz_client, case):
    field, value = case
    args = {"video": VIDEO_URL, "prompt": "make it night", field: value}
    _refused(lambda: fuzz_client.edit(args.pop("video"), args.pop("prompt"), **args), field)
    EXAMPLES["edit"] += 1


extend_cases = st.one_of(
    st.tuples(st.just("video"), bad_video),
    st.tuples(st.just("prompt"), bad_prompt),
    st.tuples(st.just("duration"), bad_seconds(1, 10)),
    st.tuples(st.just("model"), st.one_of(bad_model, st.sampled_from([V15, LITE]))),
    st.tuples(st.just("user"), st.one_of(st.text(max_size=5), bad_user)),  # the extension body has no user
    st.tuples(st.just("generate_audio"), st.one_of(st.booleans(), bad_flag)),
)


@settings(max_examples=180)
@given(case=extend_cases)
@pytest.mark.slow
def test_extend_refuses_bad_input_before_sending(fuzz_client, case):
    field, value = case
    args = {"video": VIDEO_URL, "prompt": "it flies away", field: value}
    _refused(lambda: fuzz_client.extend(args.pop("video"), args.pop("prompt"), **args), field)
    EXAMPLES["extend"] += 1


grid_cases = st.one_of(
    st.tuples(st.sampled_from(["prompt", "duration", "resolution", "aspect_ratio", "model", "image"]),
              st.integers(0, 2)).flatmap(lambda c: st.tuples(st.just(c[0]), {
                  "prompt": bad_prompt, "duration": bad_seconds(1, 15), "resolution": bad_resolution,
                  "aspect_ratio": bad_aspect, "model": bad_model, "image": bad_image}[c[0]], st.just(c[1]))).map(
        lambda c: (c[0], {c[0]: [{"prompt": "a fox", "duration": 2, "resolution": "480p", "aspect_ratio": "16:9",
                                  "model": "grok-imagine-video", "image": URL}[c[0]]] * c[2] + [c[1]]}, 1)),
    st.sampled_from(["prompt", "duration", "resolution", "model"]).map(lambda name: (name, {name: []}, 1)),
    st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_TAKES + 1), st.booleans(), st.floats(),
              st.text(max_size=3)).map(lambda r: ("takes", {}, r)),
)


@settings(max_examples=150)
@given(case=grid_cases)
@pytest.mark.slow
def test_grid_planning_refuses_bad_axes_before_sending(fuzz_client, case):
    field, axes, takes = case
    _refused(lambda: Grid(fuzz_client, {"prompt": ["a fox", "a boat"], "duration": 2, **axes}, takes=takes), field)
    EXAMPLES["grid"] += 1


bad_request_ids = st.one_of(
    st.text(max_size=20).filter(lambda s: not re.fullmatch(r"\s*[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\s*", s)),
    st.sampled_from(["", "..", ".", "?x=1", "#frag", "\x00", "/", "a/b", "a b", "..%2f", "a..b", "x" * 129]),
    surrogate_text, not_a_str, st.none(),
)


@settings(max_examples=150)
@given(value=bad_request_ids)
@pytest.mark.slow
def test_check_request_id_refuses_what_would_change_the_path(value):
    _refused(lambda: check_request_id(value), "request_id")
    EXAMPLES["request_id"] += 1


def test_over_a_thousand_invalid_inputs_per_run():
    if set(FUZZ_TESTS) - set(EXAMPLES):
        pytest.skip("only part of the fuzz suite ran")
    print("fuzz examples:", dict(EXAMPLES), "total", sum(EXAMPLES.values()))
    assert sum(EXAMPLES.values()) >= 1000, dict(EXAMPLES)
    assert SENT == []


# -- found by the fuzz in the client and the grid ----------------------------------------------------------

@pytest.mark.parametrize("request_id", [
    v for v in ("..", "?x=1", "#frag", "\x00", "a\ud800", "a b")
])
def test_get_refuses_ids_that_change_the_path(fuzz_client, request_id):
    _refused(lambda: fuzz_client.get(request_id), "request_id")


@pytest.mark.parametrize("tags", [
    v for v in (5, [""], ["a\ud800"], [3])
])
def test_bad_tags_are_refused(fuzz_client, tags):
    _refused(lambda: fuzz_client.generate("a fox", duration=2, tags=tags), "tags")


def test_tags_none_and_a_single_string(fuzz_client):
    for tags, stored in ((None, []), ("exp1", ["exp1"])):
        handle = fuzz_client.generate("a fox", duration=2, tags=tags, wait=False)
        assert handle.run.tags == stored
        with pytest.raises(grok_nb.GrokError):  # the mock refuses it; wait so the next test counts only its own
            handle.result(timeout=30)


def test_estimate_cost_with_an_unhashable_kind(fuzz_client):
    _refused(lambda: fuzz_client.estimate_cost("a fox", kind=["generate"]), "kind")


def test_edit_of_a_surrogate_request_id(fuzz_client):
    _refused(lambda: fuzz_client.edit("a\ud800b", "make it night"), "video")


def test_grid_with_tags_none(fuzz_client):
    grid = Grid(fuzz_client, {"prompt": ["a fox", "a boat"], "duration": 2}, tags=None)
    assert grid.tags == []
