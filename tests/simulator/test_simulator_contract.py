"""The simulator speaks the published contract to any HTTP client (plain httpx here, as curl would)."""

import time

import httpx
import pytest

from grok_nb.api.probe import probe
from grok_nb.simulator import real_latency_s

AUTH = {"Authorization": "Bearer any-key"}


def _wait(sim, rid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH)
        if answer.json().get("status") not in ("pending", "processing"):
            return answer
        time.sleep(0.02)
    raise AssertionError("job did not finish")


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_flow_with_aliases_and_range_requests(sim, tmp_path):
    body = {"model": "grok-imagine-video", "prompt": "alias flow", "seconds": "2", "aspect_ratio": "1:1"}
    rid = httpx.post(f"{sim.url}/v1/videos/generations", json=body, headers=AUTH).json()["request_id"]
    done = _wait(sim, rid).json()
    assert done["status"] == "done" and done["progress"] == 100 and done["video"]["respect_moderation"] is True
    assert done["usage"]["cost_in_usd_ticks"] == 2 * 500_000_000
    url = done["video"]["url"]
    part = httpx.get(url, headers={"Range": "bytes=0-1023"}, timeout=60)
    assert part.status_code == 206 and len(part.content) == 1024
    assert part.headers["content-range"].startswith("bytes 0-1023/")
    whole = httpx.get(url, timeout=60)
    path = tmp_path / "v.mp4"
    path.write_bytes(whole.content)
    info = probe(path)
    assert (info.width, info.height, info.duration) == (480, 480, 2.0)


@pytest.mark.slow
def test_errors_as_published(sim):
    post = lambda body, **kw: httpx.post(f"{sim.url}/v1/videos/generations", json=body, **kw)  # noqa: E731
    assert post({"prompt": "x"}).status_code == 401
    assert post({"prompt": "x", "duration": 30}, headers=AUTH).status_code == 400
    both = post({"prompt": "x", "image": {"url": "https://e/a.png"}, "reference_images": [{"url": "https://e/b.png"}]},
                headers=AUTH)
    assert both.status_code == 400 and "image" in both.json()["error"]
    assert httpx.post(f"{sim.url}/v1/videos/generations", content=b"", headers=AUTH).status_code == 415
    assert httpx.post(f"{sim.url}/v1/videos/generations", content=b"{nope", headers=AUTH).status_code == 422
    assert httpx.get(f"{sim.url}/v1/videos/no-such-id", headers=AUTH).status_code == 404
    assert httpx.delete(f"{sim.url}/v1/videos/x", headers=AUTH).status_code == 405
    assert post({"prompt": "x", "model": "nope"}, headers=AUTH).status_code == 404


def test_rate_limit_answers_429_with_retry_after(sim):
    # One request per 20 s of real time: three in a row meet the limit however loaded the machine is.
    sim.config.update(rate_limit=0.05 / sim.config.speed)
    with httpx.Client(base_url=sim.url, headers=AUTH) as http:
        codes = [http.get("/v1/video-generation-models") for _ in range(3)]
    limited = [r for r in codes if r.status_code == 429]
    assert limited and float(limited[0].headers["retry-after"]) > 0
    assert limited[0].json()["code"] == "resource-exhausted"


@pytest.mark.slow
def test_polls_stay_fast_while_a_long_video_renders(sim):
    # ~70 s at speed 5, while rendering 15 s of 720p keeps a worker busy for seconds
    sim.config.update(speed=5.0, enforce_rate_limit=False)
    rid = httpx.post(f"{sim.url}/v1/videos/generations", headers=AUTH,
                     json={"prompt": "long render", "duration": 15, "resolution": "720p"}).json()["request_id"]
    answers = [httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH, timeout=2.0) for _ in range(10)]
    assert all(a.status_code == 202 and a.json()["status"] == "pending" for a in answers)  # 202 by default
    progress = [a.json()["progress"] for a in answers]
    assert progress == sorted(progress)


@pytest.mark.slow
def test_media_urls_expire(sim):
    sim.config.update(url_lifetime_s=600.0)  # 600 simulated seconds = 2 s at speed 300
    rid = httpx.post(f"{sim.url}/v1/videos/generations", json={"prompt": "expire", "duration": 1},
                     headers=AUTH).json()["request_id"]
    url = _wait(sim, rid).json()["video"]["url"]
    assert httpx.get(url, timeout=60).status_code == 200
    time.sleep(2.2)
    assert httpx.get(url).status_code == 403
    assert httpx.get(f"{sim.url}/v1/videos/{rid}", headers=AUTH).json()["status"] == "expired"


def test_admin_endpoint_changes_knobs_across_processes(sim):
    answer = httpx.patch(f"{sim.url}/_simulator/config", json={"pending_status": "processing"})
    assert answer.json()["config"]["pending_status"] == "processing" and sim.config.pending_status == "processing"
    assert httpx.patch(f"{sim.url}/_simulator/config", json={"nope": 1}).status_code == 400


def test_latency_model_follows_the_documented_figures():
    assert 10 <= real_latency_s("generate", 1, "480p") <= 30
    assert 60 <= real_latency_s("generate", 6, "480p") <= 180
    assert 240 <= real_latency_s("generate", 15, "720p") <= 480
    assert 60 <= real_latency_s("edit", 6, "480p") <= 100
    assert real_latency_s("generate", 6, "720p") > real_latency_s("generate", 6, "480p")


@pytest.mark.parametrize("ratio,size", [("16:9", (848, 480)), ("9:16", (480, 848)), ("3:2", (720, 480))])
@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_sizes_per_aspect_ratio(sim, tmp_path, ratio, size):
    rid = httpx.post(f"{sim.url}/v1/videos/generations", headers=AUTH,
                     json={"prompt": f"size {ratio}", "duration": 1, "aspect_ratio": ratio}).json()["request_id"]
    url = _wait(sim, rid).json()["video"]["url"]
    (tmp_path / "v.mp4").write_bytes(httpx.get(url, timeout=60).content)
    info = probe(tmp_path / "v.mp4")
    assert (info.width, info.height) == size and info.audio_codec == "aac"
