"""The simulator plays the live service's answers beyond the spec, and the per-model rules (over loopback)."""

import time

import httpx
import pytest

import grok_nb
from grok_nb.api import models
from grok_nb.api.probe import probe
from grok_nb.api.responses import parse_job_status, parse_poll_error
from grok_nb.simulator import real_latency_s

AUTH = {"Authorization": "Bearer any-key"}


def _submit(sim, body, kind="generations"):
    answer = httpx.post(f"{sim.url}/v1/videos/{kind}", json=body, headers=AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()["request_id"]


def _final(sim, rid, timeout=30):
    """Poll until the answer is no longer pending; returns every answer seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH)
        seen.append(answer)
        status = parse_poll_error(answer.status_code, answer.json()) if answer.status_code >= 400 else \
            parse_job_status(answer.json() if answer.content else "")
        if status is not None and status.terminal:
            return seen
        time.sleep(0.02)
    raise AssertionError("job did not finish")


@pytest.mark.parametrize("how", ["switch", "marker"])
def test_moderation_as_a_poll_time_400_with_usage(sim, how):
    prompt = "a moderated clip" + (" [sim:moderate=http400]" if how == "marker" else "")
    if how == "switch":
        sim.config.update(moderation_as_http_400=True, moderation_rate=1.0)
    last = _final(sim, _submit(sim, {"prompt": prompt, "duration": 2}))[-1]
    assert last.status_code == 400
    body = last.json()
    assert body["code"] == "imagine:content-moderated"
    assert body["error"] == "Generated video rejected by content moderation."
    status = parse_poll_error(400, body)
    assert status.outcome == "moderated" and status.cost_usd == pytest.approx(2 * 0.05)


@pytest.mark.parametrize("how", ["switch", "marker"])
def test_done_without_status(sim, how, tmp_path):
    if how == "switch":
        sim.config.update(done_without_status=True)
    last = _final(sim, _submit(sim, {"prompt": "no status" + (" [sim:done=no_status]" if how == "marker" else ""),
                                     "duration": 1}))[-1]
    body = last.json()
    assert "status" not in body and "progress" not in body and body["video"]["url"]
    status = parse_job_status(body)
    assert status.outcome == "done"
    (tmp_path / "v.mp4").write_bytes(httpx.get(status.url, timeout=60).content)
    assert probe(tmp_path / "v.mp4").duration == pytest.approx(1.0)


@pytest.mark.parametrize("how", ["switch", "marker"])
def test_done_without_url(sim, how):
    if how == "switch":
        sim.config.update(done_without_url=True)
    last = _final(sim, _submit(sim, {"prompt": "no url" + (" [sim:done=no_url]" if how == "marker" else ""),
                                     "duration": 1}))[-1]
    body = last.json()
    assert body["status"] == "done" and "url" not in body["video"] and body["usage"]["cost_in_usd_ticks"]
    status = parse_job_status(body)
    assert status.outcome == "no_video" and "no video.url" in status.message


def test_nested_response_shape(sim):
    last = _final(sim, _submit(sim, {"prompt": "nested [sim:done=nested]", "duration": 1}))[-1]
    body = last.json()
    assert "video" not in body and body["response"]["video"]["url"]
    status = parse_job_status(body)
    assert status.outcome == "done" and httpx.get(status.url).status_code == 200


@pytest.mark.parametrize("how", ["switch", "marker"])
@pytest.mark.slow
def test_pending_as_202_with_an_empty_body(sim, how):
    if how == "switch":
        sim.config.update(pending_empty_body=True)
    # [sim:slow]: the job stays pending for a few polls, however quickly its (small) clip renders
    answers = _final(sim, _submit(sim, {"prompt": "empty 202 [sim:slow]" + (" [sim:pending=empty]" if how == "marker"
                                                                            else ""), "duration": 1}))
    pending = answers[:-1]
    assert pending and all(a.status_code == 202 and a.content == b"" for a in pending)
    assert all(parse_job_status("").outcome == "running" for _ in pending)
    assert answers[-1].json()["status"] == "done"


def test_switches_are_in_the_admin_endpoint(sim):
    answer = httpx.patch(f"{sim.url}/_simulator/config", json={"done_without_status": True, "pending_empty_body": True})
    config = answer.json()["config"]
    assert config["done_without_status"] and config["pending_empty_body"] and not config["moderation_as_http_400"]


def test_models_endpoint_lists_grok_nb_models(sim):
    listing = httpx.get(f"{sim.url}/v1/video-generation-models", headers=AUTH).json()
    parsed = models.parse_models_listing(listing)
    assert {m.id for m in parsed} == set(models.MODELS) and all(m.known for m in parsed)
    one = httpx.get(f"{sim.url}/v1/video-generation-models/grok-imagine-video-1.5-2026-05-30", headers=AUTH)
    assert one.json()["id"] == "grok-imagine-video-1.5"


@pytest.mark.parametrize("body,kind,status,words", [
    ({"prompt": "x", "model": "grok-imagine-video-9"}, "generations", 404, "does not exist"),
    ({"prompt": "x", "image": {"url": "https://e/a.png"}, "reference_images": [{"url": "https://e/b.png"}]},
     "generations", 400, "not together with image"),
    ({"prompt": "x", "last_frame": {"url": "https://e/a.png"}}, "generations", 400, "last_frame"),
    ({"prompt": "x", "keyframes": [{"image": {"url": "https://e/a.png"}, "timestamp_s": 1}]}, "generations", 400,
     "keyframes"),
    ({"prompt": "x", "aspect_ratio": "21:9"}, "generations", 400, "aspect_ratio"),
    ({"prompt": "x", "resolution": "1080p"}, "generations", 400, "resolution"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5", "reference_images": [{"url": "https://e/b.png"}],
      "resolution": "1080p"}, "generations", 400, "resolution"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5",
      "keyframes": [{"image": {"url": "https://e/a.png"}, "timestamp_s": t} for t in (1, 2, 3, 4, 5)]},
     "generations", 400, "at most 4"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5",
      "keyframes": [{"image": {"url": "https://e/a.png"}, "timestamp_s": 9}]}, "generations", 400, "timestamp_s"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5", "reference_audios": [{"voice_id": "a"}],
      "resolution": "1080p"}, "generations", 400, "resolution"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5-lite", "reference_images": [{"url": "https://e/b.png"}]},
     "generations", 400, "reference_images"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5",
      "keyframes": [{"image": {"url": "https://e/a.png"}, "timestamp_s": t} for t in (1, 1.1)]},
     "generations", 400, "1/3-s slot"),
    ({"prompt": "x", "image": {"url": "http://"}}, "generations", 400, "host"),
    ({"prompt": "x", "model": "grok-imagine-video-1.5", "reference_audios": [{"voice_id": v} for v in "abcd"]},
     "generations", 400, "at most 3"),
    ({"prompt": "x", "video": {"url": "https://e/v.mp4"}, "generate_audio": False}, "edits", 400, "generate_audio"),
    ({"prompt": "x", "video": {"url": "https://e/v.mp4"}, "user": "u"}, "extensions", 400, "user"),
    ({"prompt": "x", "video": {"url": "https://e/v.mp4"}, "generate_audio": True}, "extensions", 400,
     "generate_audio"),
])
def test_the_simulator_refuses_what_the_service_refuses(sim, body, kind, status, words):
    answer = httpx.post(f"{sim.url}/v1/videos/{kind}", json=body, headers=AUTH)
    assert answer.status_code == status and words in answer.json()["error"]


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_15_inputs_are_accepted_and_rendered(sim, tmp_path):
    import base64

    from tests.client.test_client_simulator import _image

    uri = "data:image/png;base64," + base64.b64encode(_image((320, 240))).decode()
    body = {"model": "grok-imagine-video-1.5", "image": {"url": uri}, "reference_images": [{"url": uri}],
            "last_frame": {"url": uri}, "keyframes": [{"image": {"url": uri}, "timestamp_s": 1}],
            "reference_audios": [{"voice_id": "v-1"}], "prompt": "<AUDIO_0> speaks", "duration": 2,
            "aspect_ratio": "21:9"}
    done = _final(sim, _submit(sim, body))[-1].json()
    assert done["status"] == "done"
    (tmp_path / "v.mp4").write_bytes(httpx.get(done["video"]["url"], timeout=60).content)
    info = probe(tmp_path / "v.mp4")
    assert (info.width, info.height) == (1120, 480)  # 21:9 at 480p
    # 2 s at 480p + 4 input images at 1.5's rates
    assert done["usage"]["cost_in_usd_ticks"] == round((2 * 0.08 + 4 * 0.01) * 1e10)
    silent = _final(sim, _submit(sim, {"model": "grok-imagine-video-1.5", "reference_images": [{"url": uri}],
                                       "duration": 1}))[-1].json()
    assert silent["status"] == "done"  # no prompt needed with references on 1.5


@pytest.mark.parametrize("model,resolution,per_s", [
    ("grok-imagine-video-1.5", "1080p", 0.25), ("grok-imagine-video-1.5-lite", "480p", 0.02),
    ("grok-imagine-video-1.5-2026-05-30", "720p", 0.14),
])
def test_billing_follows_the_price_table(sim, model, resolution, per_s):
    done = _final(sim, _submit(sim, {"model": model, "prompt": "bill me", "duration": 1,
                                     "resolution": resolution}))[-1].json()
    assert done["usage"]["cost_in_usd_ticks"] == round(per_s * 1e10)


@pytest.mark.slow
def test_edits_on_models_without_them_fail_with_failed_precondition(sim, client):
    base = client.generate("base clip", duration=2)
    rid = _submit(sim, {"model": "grok-imagine-video-1.5", "prompt": "night", "video": {"url": base.url}}, "edits")
    last = _final(sim, rid)[-1].json()
    assert last["status"] == "failed" and last["error"]["code"] == "failed_precondition"


def test_latency_follows_model_and_resolution():
    assert real_latency_s("generate", 6, "1080p") > real_latency_s("generate", 6, "720p")
    assert real_latency_s("generate", 6, "720p", model="grok-imagine-video-1.5-lite") < \
        real_latency_s("generate", 6, "720p", model="grok-imagine-video-1.5")


# -- the client against the variants -------------------------------------------------------------
@pytest.mark.parametrize("knobs", [dict(done_without_status=True), dict(nested_response=True),
                                   dict(pending_empty_body=True)])
@pytest.mark.slow
def test_client_finishes_on_variants_parsing_alone_handles(client, sim, knobs):
    sim.config.update(**knobs)
    run = client.generate("variant end to end", duration=1)
    assert run.ok and probe(run.path).duration == pytest.approx(1.0)
    assert client.store.find(run.request_id)["status"] == "done"


def test_unknown_model_is_sent_with_one_warning_and_the_server_answer_is_a_grok_nb_error(client, sim):
    with pytest.warns(UserWarning, match="does not know model 'grok-imagine-video-9'") as caught:
        with pytest.raises(grok_nb.NotFoundError, match="does not exist"):
            client.generate("x", model="grok-imagine-video-9", duration=1)
    assert len(caught) == 1


@pytest.mark.slow
def test_client_records_poll_time_400_moderation_with_its_cost(client, sim):
    run = client.generate("moderated [sim:moderate=http400]", duration=1)
    assert run.status == "moderated" and run.cost_actual_usd == pytest.approx(0.05)
    assert client.store.find(run.request_id)["status"] == "moderated"


@pytest.mark.slow
def test_client_explains_done_without_url(client, sim):
    run = client.generate("no url [sim:done=no_url]", duration=1)
    assert isinstance(run.error, grok_nb.NoVideoError) and run.request_id in str(run.error)
    assert client.store.find(run.request_id)["status"] != "pending"
