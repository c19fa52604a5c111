"""The client against the simulator over real loopback HTTP: every endpoint, status and error path."""

from __future__ import annotations

import io
import logging
import time
import uuid

import httpx
import numpy as np
import pytest
from PIL import Image

import grok_nb
from grok_nb import Client
from grok_nb.api.probe import probe
from tests.conftest import FAST, SPEED, TEST_KEY, count


def _image(size=(640, 480), colour=(20, 160, 220)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_text_to_video_end_to_end(client, sim):
    run = client.generate("A lighthouse in a storm", duration=2, resolution="720p", aspect_ratio="9:16")
    assert run.ok and run.status == "done" and run.progress == 100
    info = probe(run.path)
    assert (info.video_codec, info.width, info.height, info.pix_fmt, info.audio_codec) == ("h264", 720, 1280, "yuv420p", "aac")
    assert info.duration == pytest.approx(2.0) and info.fps == 24
    assert run.cost_basis == "actual" and run.cost_usd == pytest.approx(2 * 0.07)
    assert run.latency_s > 0 and run.polls >= 1 and run.request_id
    row = client.store.find(run.request_id)
    assert row["status"] == "done" and row["local_path"] == str(run.path) and row["backend"] == "simulator"
    assert row["cost_estimated_usd"] == pytest.approx(0.14) and row["poll_count"] == run.polls
    assert [e["method"] for e in client.store.exchanges(run.run_id)][0] == "POST"
    assert "<video" in run._repr_html_() and "controls" in run._repr_html_()


@pytest.mark.slow
def test_two_takes_of_a_prompt_look_alike_and_no_audio_when_asked(client):
    a = client.generate("determinism", duration=1, generate_audio=False)
    b = client.generate("determinism", duration=1, generate_audio=False)
    assert probe(a.path).audio_codec is None
    frames = []
    import av
    for run in (a, b):
        with av.open(str(run.path)) as c:
            frames.append(next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int))
    # Two jobs are two takes: the same scene, its shapes a little further on their paths, the colours shifted
    # by a few percent (another prompt differs by about 40).
    assert 0 < np.abs(frames[0] - frames[1]).mean() < 12


@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_image_to_video_starts_on_the_image(client, tmp_path):
    path = tmp_path / "blue.png"
    path.write_bytes(_image())
    run = client.generate("waves", image=path, duration=2)
    info = probe(run.path)
    assert (info.width, info.height) == (640, 480)  # the image's 4:3 kept
    import av
    with av.open(str(run.path)) as c:
        decoded = c.decode(video=0)
        first = next(decoded).to_ndarray(format="rgb24").astype(int)
        later = [f.to_ndarray(format="rgb24").astype(int) for _, f in zip(range(30), decoded, strict=False)][-1]
    assert np.abs(first - np.array([20, 160, 220])).mean() < 6  # frame 0 is the image
    assert run.params["image"].startswith("sha256:")
    assert client.store.find(run.request_id)["image"].startswith("sha256:")
    assert later.std() >= 0  # decodes past the first frame


def test_reference_images_and_models_endpoint(client, sim):
    run = client.generate("in this style", reference_images=[_image(colour=(250, 0, 0)), _image(colour=(0, 0, 250))],
                          duration=1)
    assert run.ok and len(run.params["reference_images"]) == 2
    assert run.cost_usd == pytest.approx(0.05 + 2 * 0.002)
    models = httpx.get(f"{sim.url}/v1/video-generation-models", headers={"Authorization": "Bearer k"}).json()
    assert {m["id"] for m in models["models"]} == {"grok-imagine-video", "grok-imagine-video-1.5",
                                                   "grok-imagine-video-1.5-lite"}


@pytest.mark.slow
def test_edit_and_extend_chain_by_run_request_id_and_url(client):
    base = client.generate("a red ball", duration=2)
    edit = client.edit(base, "make it blue")
    assert edit.ok and probe(edit.path).duration == pytest.approx(2.0) and edit.parent_run_id == base.run_id
    ext = client.extend(base.request_id, "it bounces away", duration=2)
    assert ext.ok and probe(ext.path).duration == pytest.approx(4.0) and ext.parent_run_id == base.run_id
    again = client.extend(ext.url, "and rolls", duration=1)
    assert again.ok and probe(again.path).duration == pytest.approx(5.0)
    assert ext.cost_usd == pytest.approx(2 * 0.05 + 2 * 0.01)  # 2 s added at 480p + the 2 s input at $0.01/s


@pytest.mark.slow
def test_edit_of_a_too_long_video_is_refused_before_sending(client, sim):
    long = client.generate("long", duration=9)
    before = len(sim.simulator.requests)
    with pytest.raises(grok_nb.ValidationError, match="8.7"):
        client.edit(long, "shorter")
    assert len(sim.simulator.requests) == before


@pytest.mark.parametrize("video", ["nope.mp4", "clips/nope.MOV", "./missing"])
def test_an_edit_of_a_file_that_is_not_there_says_so_and_what_is_accepted(client, sim, video, tmp_path,
                                                                            monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(grok_nb.ValidationError) as info:
        client.edit(video, "Make it night")
    text = str(info.value)
    assert f"no such file: {tmp_path}" in text and "a local MP4 that exists" in text and "request id" in text, text
    assert len(sim.simulator.requests) == 0


@pytest.mark.parametrize("kwargs", [
    dict(prompt="x", duration=0), dict(prompt="x", resolution="4k"), dict(prompt="x", aspect_ratio="21:9"),
    dict(prompt="", duration=5), dict(prompt="x", reference_images=[b"\x89PNG"] * 8),
    dict(prompt="x", image="/missing.png"), dict(prompt="x", model="no such/model"),
])
def test_invalid_input_sends_nothing(client, sim, kwargs):
    with pytest.raises(grok_nb.ValidationError):
        client.generate(**kwargs)
    assert len(sim.simulator.requests) == 0
    assert client.history().empty


@pytest.mark.parametrize("knobs", [
    dict(pending_status="processing"), dict(pending_http_status=202), dict(omit_progress=True),
    dict(pending_status="queued_for_gpu", pending_http_status=202, omit_progress=True),
])
def test_pending_variants_are_still_running(client, sim, knobs, caplog):
    sim.config.update(**knobs)
    with caplog.at_level(logging.WARNING, logger="grok_nb"):
        run = client.generate("variants", duration=1)
    assert run.ok
    if knobs.get("pending_status", "pending") != "pending":
        assert any("treating it as still running" in r.message for r in caplog.records)


def test_moderated_result_is_its_own_outcome(client, sim):
    sim.config.moderation_rate = 1.0
    run = client.generate("anything", duration=1)
    assert run.status == "moderated" and run.path is None and not run.ok
    assert isinstance(run.error, grok_nb.ModeratedError) and run.error.request_id == run.request_id
    with pytest.raises(grok_nb.ModeratedError):
        run.raise_for_status()
    assert client.store.find(run.request_id)["status"] == "moderated"


@pytest.mark.parametrize("code", ["internal_error", "invalid_argument", "service_unavailable"])
@pytest.mark.slow
def test_failed_job_carries_code_message_and_request_id(client, sim, code):
    run = client.generate(f"please [sim:fail={code}]", duration=1)
    assert run.status == "failed" and isinstance(run.error, grok_nb.JobFailedError)
    assert run.error.code == code and run.request_id in str(run.error)
    row = client.store.find(run.request_id)
    assert row["error_code"] == code and row["status"] == "failed"


@pytest.mark.slow
def test_expired_job(client, sim):
    sim.config.url_lifetime_s = 0.0
    run = client.generate("short-lived", duration=1)
    # The URL can expire between the poll and the download: either way nothing crashes.
    assert run.status in ("expired", "done")
    assert isinstance(run.error, (grok_nb.JobExpiredError, grok_nb.DownloadError))
    again = client.get(run.request_id)
    assert again.status in ("expired", "done") and not again.ok


@pytest.mark.parametrize("shape", ["flat", "legacy", "nested"])
@pytest.mark.slow
def test_error_shapes_and_auth(sim, shape):
    sim.config.update(error_shape=shape, api_key="xai-the-right-key-123")
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as wrong:
        with pytest.raises(grok_nb.AuthenticationError) as info:
            wrong.generate("x", duration=1)
    text = str(info.value)
    assert TEST_KEY not in text and "XAI_API_KEY" in text
    sim.config.api_key = None
    with Client(base_url=sim.url, policy=FAST, rate_limit=SPEED) as keyless:  # no key at all: 401
        with pytest.raises(grok_nb.AuthenticationError, match="XAI_API_KEY"):
            keyless.generate("x", duration=1)
        assert keyless.history()["status"].tolist() == ["rejected", "rejected"]  # wrong key, then no key


def test_bad_request_from_the_server_maps_and_is_not_retried(client, sim):
    # A file_id passes the client's checks; this server never saw that file and answers 400.
    with pytest.raises(grok_nb.BadRequestError, match="file-123 not found") as info:
        client.generate("x", image={"file_id": "file-123"}, duration=1)
    assert info.value.status_code == 400
    assert count(sim, "POST", "/v1/videos/generations") == 1
    assert client.history()["status"].tolist() == ["rejected"]


@pytest.mark.parametrize("retry_after", [True, False])
@pytest.mark.slow
def test_429_bursts_are_retried_without_duplicate_submits(client, sim, retry_after):
    sim.config.update(burst_429=3, retry_after_header=retry_after)
    prompt = f"busy {uuid.uuid4()}"
    run = client.generate(prompt, duration=1)
    assert run.ok
    posts = [r for r in sim.simulator.requests if r[0] == "POST"]
    assert [s for _, _, s in posts] == [429, 429, 429, 200]
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1


def test_429_during_polls_and_5xx_are_retried(client, sim):
    handle = client.generate("flaky [sim:slow]", duration=1, wait=False)  # polled a dozen times or more
    while handle.request_id is None:  # faults start once the submit was accepted (a 5xx submit is never resent)
        time.sleep(0.005)
    sim.config.update(server_error_rate=0.4)
    run = handle.result(timeout=60)
    sim.config.update(server_error_rate=0.0)
    assert run.ok
    assert any(s >= 500 for _, _, s in sim.simulator.requests)


def test_out_of_credits_is_not_retried(client, sim):
    sim.config.update(credits_usd=0.0)
    with pytest.raises(grok_nb.RateLimitError) as info:
        client.generate("broke", duration=1)
    assert info.value.out_of_credits and count(sim, "POST", "/v1/videos/") == 1


@pytest.mark.slow
def test_submit_read_timeout_is_recorded_uncertain_and_never_resent(sim):
    sim.config.submit_delay_s = 1.5
    prompt = f"slow submit {uuid.uuid4()}"
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED,
                timeout=httpx.Timeout(0.4)) as impatient:
        with pytest.raises(grok_nb.SubmitUncertainError) as info:
            impatient.generate(prompt, duration=1)
        row = impatient.store.get(info.value.run_id)
    assert row["status"] == "uncertain" and row["prompt"] == prompt and row["submitted_at"]
    time.sleep(1.3)  # let the server finish answering the abandoned request before counting
    assert count(sim, "POST", "/v1/videos/") == 1
    assert len(sim.simulator.jobs_by_prompt(prompt)) == 1  # the job exists once, not twice


@pytest.mark.slow
def test_deadline_keeps_the_job_and_get_resumes_it(sim):
    with Client(api_key=TEST_KEY, base_url=sim.url, rate_limit=SPEED,
                policy=FAST.__class__(**{**FAST.__dict__, "deadline": 0.3})) as hasty:
        with pytest.raises(grok_nb.DeadlineExceeded) as info:
            hasty.generate("take your time [sim:slow]", duration=2)
        rid = info.value.request_id
        assert rid and rid in str(info.value) and "client.get" in str(info.value)
        assert hasty.store.find(rid)["status"] == "pending"
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as patient:
        run = patient.get(rid)
    assert run.ok and run.request_id == rid


@pytest.mark.slow
def test_get_a_job_started_in_another_process(sim, tmp_path):
    import subprocess
    import sys
    code = ("import httpx,sys; r=httpx.post(sys.argv[1]+'/v1/videos/generations', headers={'Authorization':'Bearer k'},"
            " json={'prompt':'elsewhere','duration':1}); print(r.json()['request_id'])")
    rid = subprocess.run([sys.executable, "-c", code, sim.url], capture_output=True, text=True, check=True).stdout.strip()
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as c:
        run = c.get(rid)
        assert run.ok and run.kind == "unknown" and probe(run.path).duration == pytest.approx(1.0)
        with pytest.raises(grok_nb.NotFoundError):
            c.get("00000000-0000-0000-0000-000000000000")


@pytest.mark.slow
def test_handles_run_concurrently_under_one_shared_rate_limit(sim):
    sim.config.update(rate_limit=20.0 / SPEED)  # the server allows 20 requests/s
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=20.0) as c:
        handles = [c.generate(f"job {i}", duration=1, wait=False) for i in range(6)]
        runs = [h.result(timeout=120) for h in handles]
    assert all(r.ok for r in runs)
    assert not any(s == 429 for _, _, s in sim.simulator.requests)  # many jobs never trip the limit


@pytest.mark.slow
def test_download_verifies_and_is_cached(client, sim):
    run = client.generate("cache me", duration=1)
    assert run.path.parent == client.cache_dir and not list(client.cache_dir.glob("*.part"))
    gets = count(sim, "GET", "/media/")
    assert client.get(run.request_id).path == run.path
    assert count(sim, "GET", "/media/") == gets  # already on disk: no second download


def test_secret_never_leaks(sim, caplog, capsys):
    sim.config.api_key = "xai-a-different-key-0000"
    with caplog.at_level(logging.DEBUG):
        with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as c:
            text = repr(c)
            with pytest.raises(grok_nb.GrokError) as info:
                c.generate("x", duration=1)
            exported = c.history().to_csv()
            rows = str(c.store.rows()) + str(c.store.exchanges(c.store.rows()[0]["run_id"]))
    out = capsys.readouterr()
    for blob in (text, str(info.value), repr(info.value), exported, rows, caplog.text, out.out, out.err):
        assert TEST_KEY not in blob and "TESTKEY" not in blob


@pytest.mark.slow
def test_embedded_simulator_is_the_default_and_says_so(capsys):
    with Client(quiet=False) as c:
        assert c.simulated and c.backend == "simulator"
        assert "SIMULATED" in capsys.readouterr().out
        run = c.generate("default backend", duration=1)
    assert run.ok and run.backend == "simulator"
    # The suite sets GROK_NB_SIMULATOR_SCALE=0.25 (conftest): the embedded simulator draws 480p 16:9 at a quarter.
    assert (probe(run.path).width, probe(run.path).height) == (212, 120)


@pytest.mark.slow
def test_ctrl_c_stops_waiting_prints_the_request_id_and_the_job_resumes(client, capsys):
    import os
    import signal
    import threading

    handle = client.generate("interrupt me [sim:slow]", duration=10, wait=False)  # ~5 s: Ctrl+C comes first
    while handle.request_id is None:
        time.sleep(0.005)
    threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
    with pytest.raises(KeyboardInterrupt):
        handle.result()
    rid = handle.request_id
    assert rid in capsys.readouterr().out
    deadline = time.monotonic() + 5
    while not handle.run.stopped and time.monotonic() < deadline:
        time.sleep(0.01)
    assert handle.run.stopped and client.store.find(rid)["status"] == "pending"
    assert "client.get" in client.store.find(rid)["error_message"]
    run = client.get(rid)  # resumable, by request id
    assert run.ok and run.request_id == rid
