"""The new models and 1.5 inputs end to end: the client's request body as sent, its estimate, its history row."""

from __future__ import annotations

import json

import httpx
import pytest

import grok_nb
from grok_nb.api.probe import probe
from tests.conftest import FAST, SPEED, TEST_KEY

from .test_client_simulator import _image

V15 = "grok-imagine-video-1.5"


class Recording(httpx.AsyncHTTPTransport):
    """The real transport, keeping every submitted JSON body."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[dict] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.bodies.append(json.loads(request.content))
        return await super().handle_async_request(request)


@pytest.fixture
def recorded(sim):
    transport = Recording()
    client = grok_nb.Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, transport=transport)
    yield client, transport
    client.close()


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_image_with_references_on_15_at_21_9(recorded, tmp_path):
    client, transport = recorded
    path = tmp_path / "first.png"
    path.write_bytes(_image((320, 240)))
    run = client.generate("a slow pan", model=V15, image=path, reference_images=[_image(colour=(200, 10, 10))],
                          aspect_ratio="21:9", duration=2)
    body = transport.bodies[-1]
    assert set(body) == {"model", "prompt", "duration", "resolution", "aspect_ratio", "image", "reference_images"}
    assert body["model"] == V15 and body["aspect_ratio"] == "21:9" and body["image"]["url"].startswith("data:image/png")
    assert run.ok and (probe(run.path).width, probe(run.path).height) == (1120, 480)
    assert run.estimate.usd == pytest.approx(2 * 0.08 + 2 * 0.01) and run.cost_usd == pytest.approx(run.estimate.usd)
    row = client.store.find(run.request_id)
    assert row["model"] == V15 and row["aspect_ratio"] == "21:9" and row["image"].startswith("sha256:")
    assert row["cost_estimated_usd"] == pytest.approx(0.18)


def test_references_without_a_prompt_on_15(recorded):
    client, transport = recorded
    run = client.generate(None, model=V15, reference_images=[_image()], duration=1)
    assert "prompt" not in transport.bodies[-1] and run.ok


@pytest.mark.parametrize("model,resolution,per_s", [
    (V15, "1080p", 0.25), ("grok-imagine-video-1.5-lite", "720p", 0.03),
    ("grok-imagine-video-1.5-2026-05-30", "480p", 0.08),
])
@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_new_models_and_1080p_are_sent_as_given_and_billed_by_the_table(recorded, model, resolution, per_s):
    client, transport = recorded
    estimate = client.estimate_cost("a lake", model=model, resolution=resolution, duration=1)
    run = client.generate("a lake", model=model, resolution=resolution, duration=1)
    assert transport.bodies[-1]["model"] == model and transport.bodies[-1]["resolution"] == resolution
    assert estimate.usd == pytest.approx(per_s) and run.cost_actual_usd == pytest.approx(per_s)
    assert estimate.exact  # every figure is on xAI's pricing page of 2026-09-29
    assert client.store.find(run.request_id)["model"] == model
    if resolution == "1080p":
        assert probe(run.path).height == 1080


@pytest.mark.slow
def test_an_edit_on_15_is_refused_before_sending_and_an_unknown_model_goes_out(recorded):
    client, transport = recorded
    base = client.generate("a boat", duration=2)
    sent = len(transport.bodies)
    with pytest.raises(grok_nb.ValidationError, match="edits for grok-imagine-video only") as info:
        client.edit(base, "make it night", model=V15)
    assert info.value.field == "model" and len(transport.bodies) == sent
    with pytest.warns(UserWarning, match="does not know model"):
        with pytest.raises(grok_nb.NotFoundError):
            client.edit(base, "make it night", model="grok-imagine-video-9")
    assert transport.bodies[-1] == {"model": "grok-imagine-video-9", "prompt": "make it night",
                                    "video": {"url": base.url}}


def test_the_1_5_only_inputs_through_estimate_cost(recorded, tmp_path):
    client, _ = recorded
    estimate = client.estimate_cost("<AUDIO_0> sings", model=V15, last_frame=_image(),
                                    keyframes=[{"image": _image(), "timestamp_s": 3}], reference_audios=["voice-1"])
    assert estimate.usd == pytest.approx(8 * 0.08 + 2 * 0.01) and estimate.exact  # images billed, voices not


@pytest.mark.slow
def test_the_1_5_only_inputs_are_sent(recorded):
    client, transport = recorded
    run = client.generate("<AUDIO_0> sings", model=V15, last_frame=_image(), duration=2,
                          keyframes=[{"image": _image(), "timestamp_s": 1}], reference_audios=["voice-1"])
    body = transport.bodies[-1]
    assert body["reference_audios"] == [{"voice_id": "voice-1"}] and body["keyframes"][0]["timestamp_s"] == 1
    assert run.ok


@pytest.mark.slow
def test_an_edit_of_a_local_mp4(recorded, tmp_path):
    client, transport = recorded
    base = client.generate("a local clip", duration=2)
    run = client.edit(base.path, "make it night")
    assert transport.bodies[-1]["video"]["url"].startswith("data:video/mp4;base64,") and run.ok
