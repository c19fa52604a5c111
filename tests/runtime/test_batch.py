"""Batches: the contract's shapes, the simulator's Batch endpoints, and client.batch() over real loopback HTTP."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import grok_nb
from grok_nb import Client
from grok_nb.api import batch as contract
from grok_nb.api.probe import probe
from grok_nb.simulator import SimulatorConfig, SimulatorServer
from grok_nb.simulator.batch import batch_book
from tests._proxy import FaultProxy
from tests.conftest import FAST, RENDER_SCALE, SPEED, TEST_KEY, count, release_batches

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}
# The session simulator answers from a thread of this process: on a loaded machine an answer (or a download that
# waits for its render) can take longer than httpx's default 5 s.
_get = functools.partial(httpx.get, timeout=60)
_post = functools.partial(httpx.post, timeout=60)


def _gen(rid: str, prompt: str = "a fox", **extra) -> dict:
    return {"batch_request_id": rid, "batch_request": {"video_generation": {"prompt": prompt, "duration": 1, **extra}}}


def _wait_done(url: str, batch_id: str, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        body = _get(f"{url}/v1/batches/{batch_id}", headers=AUTH).json()
        if body["state"]["num_pending"] == 0:
            return body
        time.sleep(0.1)
    raise AssertionError("the batch did not finish")


def _all_results(url: str, batch_id: str, limit: int) -> list[dict]:
    out, token = [], None
    for _ in range(100):
        query = f"?limit={limit}" + (f"&pagination_token={token}" if token else "")
        page = _get(f"{url}/v1/batches/{batch_id}/results{query}", headers=AUTH).json()
        out += page["results"]
        token = page["pagination_token"]
        if token is None:
            return out
    raise AssertionError("paging never ended")


# -- the pure contract ---------------------------------------------------------------------------
def test_split_requests_by_count_and_size():
    items = [contract.request_item(f"r{i}", "generate", {"prompt": "x" * 100}) for i in range(7)]
    assert [len(c) for c in contract.split_requests(items, max_count=3)] == [3, 3, 1]
    size = len(str(items[0]).encode())
    assert [len(c) for c in contract.split_requests(items, max_bytes=2 * size + 10)] == [2, 2, 2, 1]
    assert [i["batch_request_id"] for c in contract.split_requests(items, max_count=2) for i in c] == \
        [f"r{i}" for i in range(7)]
    with pytest.raises(grok_nb.ValidationError, match="upload large inputs"):
        contract.split_requests(items, max_bytes=50)


def test_request_item_uses_the_kind_key():
    assert contract.request_item("a", "edit", {"prompt": "p"})["batch_request"] == {"video_generation": {"prompt": "p"}}
    assert "video_extension" in contract.request_item("b", "extend", {"prompt": "p"})["batch_request"]
    with pytest.raises(grok_nb.ValidationError, match="kind"):
        contract.request_item("c", "upscale", {})


def test_parse_batch_done_means_nothing_pending():
    empty = contract.parse_batch({"batch_id": "b", "state": {"num_requests": 0, "num_pending": 0}})
    assert not empty.done  # nothing added yet is not done
    state = contract.parse_batch({"batch_id": "b", "name": "n", "state": {
        "num_requests": 4, "num_pending": 0, "num_success": 2, "num_error": 1, "num_cancelled": 1},
        "cost_breakdown": {"total_cost_usd_ticks": 5_000_000_000}})
    assert state.done and state.finished == 4 and state.fraction == 1.0 and state.cost_usd == pytest.approx(0.5)
    flat = contract.parse_batch({"id": "b2", "num_requests": "3", "num_pending": 2, "cost_breakdown": {
        "total_cost_usd_ticks": -5}})
    assert (flat.num_requests, flat.num_pending, flat.done, flat.cost_usd) == (3, 2, False, None)
    with pytest.raises(ValueError):
        contract.parse_batch({"state": {}})


def test_parse_results_is_lenient():
    video = {"video": {"url": "https://x/v.mp4", "duration": 4, "respect_moderation": True},
             "model": "grok-imagine-video", "usage": {"cost_in_usd_ticks": 2_000_000_000}}
    body = {"results": [
        {"batch_request_id": "gen", "batch_result": {"response": {"video_generation": video}}},
        {"batch_request_id": "ext", "batch_result": {"response": {"video_extension": video}}},
        {"batch_request_id": "mod", "batch_result": {"response": {"video_generation": {
            "video": {"url": "", "respect_moderation": False}}}}},
        {"batch_request_id": "bad", "batch_result": {"error": {"code": 3, "message": "duration too long"}}},
        {"batch_request_id": "gone", "batch_result": {"error": {"code": 1, "message": "cancelled"}}},
        {"batch_request_id": "blocked", "batch_result": {"error": {"code": 3, "message": "Rejected by moderation"}}},
        {"batch_request_id": "empty", "batch_result": {"response": {}}},
        {"no_id": True}, "junk"], "pagination_token": "t2"}
    results, token = contract.parse_results(body)
    by_id = {r.batch_request_id: r for r in results}
    assert token == "t2" and len(results) == 7
    assert by_id["gen"].ok and by_id["gen"].url == "https://x/v.mp4" and by_id["gen"].cost_usd == pytest.approx(0.2)
    assert by_id["ext"].ok and by_id["ext"].duration == 4
    assert by_id["mod"].moderated and not by_id["mod"].ok
    assert (by_id["bad"].error_code, by_id["bad"].error_message) == ("invalid_argument", "duration too long")
    assert by_id["gone"].cancelled and by_id["blocked"].moderated
    assert by_id["empty"].error_code == "no_video"
    assert contract.parse_results({"results": [], "pagination_token": ""}) == ([], None)
    assert contract.parse_results("oops") == ([], None)


# -- the simulator over loopback -----------------------------------------------------------------
@pytest.mark.slow
def test_simulator_batch_lifecycle_paged_results_in_no_fixed_order(sim):
    book = batch_book(sim.simulator)
    book.turnaround_s = 600.0  # 2 s at speed 300
    assert _post(sim.url + "/v1/batches", json={"name": "x"}).status_code == 401
    assert _post(sim.url + "/v1/batches", headers=AUTH, json={}).status_code == 400
    made = _post(sim.url + "/v1/batches", headers=AUTH, json={"name": "sweep"}).json()
    bid = made["batch_id"]
    assert made["state"]["num_requests"] == 0 and "create_time" in made and "expire_time" in made
    requests = [_gen(f"cell-{i}", f"prompt {i}") for i in range(6)] + [_gen("bad", duration=99)]
    assert _post(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH,
                      json={"batch_requests": requests}).json() == {}
    again = _post(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH, json={"batch_requests": [_gen("cell-0")]})
    assert again.status_code == 400 and "twice" in again.json()["error"]
    states = _get(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH).json()
    assert contract.parse_request_states(states)["bad"] == "failed"
    done = _wait_done(sim.url, bid)
    assert done["state"] == {"num_requests": 7, "num_pending": 0, "num_success": 6, "num_error": 1,
                             "num_cancelled": 0}
    assert done["cost_breakdown"]["total_cost_usd_ticks"] == 6 * 500_000_000
    results = _all_results(sim.url, bid, limit=2)
    ids = [r["batch_request_id"] for r in results]
    assert sorted(ids) == sorted(r["batch_request_id"] for r in requests)  # each once, over four pages
    assert ids != [r["batch_request_id"] for r in requests]  # not in the order they were added
    parsed = {r.batch_request_id: r for r in contract.parse_results({"results": results})[0]}
    assert parsed["bad"].error_code == "invalid_argument" and "duration" in parsed["bad"].error_message
    video = _get(parsed["cell-3"].url)
    assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    assert _get(f"{sim.url}/v1/batches/nope", headers=AUTH).status_code == 404
    assert bid in [b["batch_id"] for b in _get(sim.url + "/v1/batches", headers=AUTH).json()["batches"]]


@pytest.mark.slow
def test_simulator_cancel_and_limits(sim):
    batch_book(sim.simulator).turnaround_s = 1e7  # nothing finishes during this test
    bid = _post(sim.url + "/v1/batches", headers=AUTH, json={"name": "c"}).json()["batch_id"]
    too_many = [_gen(f"r{i}") for i in range(contract.MAX_REQUESTS_PER_CALL + 1)]
    answer = _post(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH, json={"batch_requests": too_many})
    assert answer.status_code == 400 and f"At most {contract.MAX_REQUESTS_PER_CALL}" in answer.json()["error"]
    _post(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH, json={"batch_requests": [_gen("a"), _gen("b")]})
    cancelled = _post(f"{sim.url}/v1/batches/{bid}:cancel", headers=AUTH).json()
    assert cancelled["state"]["num_cancelled"] == 2 and cancelled["state"]["num_pending"] == 0
    assert "cancel_time" in cancelled
    results = _all_results(sim.url, bid, limit=10)
    assert {r["batch_result"]["error"]["code"] for r in results} == {1}
    late = _post(f"{sim.url}/v1/batches/{bid}/requests", headers=AUTH, json={"batch_requests": [_gen("c")]})
    assert late.status_code == 400 and "cancelled" in late.json()["error"]
    assert cancelled["cost_breakdown"]["total_cost_usd_ticks"] == 0


@pytest.mark.slow
def test_batch_calls_do_not_touch_the_key_rate_limit(sim):
    sim.config.rate_limit = 0.001  # one request per 1,000 simulated seconds (bucket of 2)
    before = dict(sim.simulator.by_key.get(TEST_KEY, {}))
    bid = _post(sim.url + "/v1/batches", headers=AUTH, json={"name": "r"}).json()["batch_id"]
    statuses = [_get(f"{sim.url}/v1/batches/{bid}", headers=AUTH).status_code for _ in range(15)]
    assert statuses == [200] * 15
    assert dict(sim.simulator.by_key.get(TEST_KEY, {})) == before  # not counted against the key
    single = [_get(sim.url + "/v1/video-generation-models", headers=AUTH).status_code for _ in range(5)]
    assert 429 in single  # while single-job calls on that key are limited


@pytest.mark.slow
def test_simulator_batch_result_urls_live_one_hour():
    # One hour is five seconds: room for a loaded machine between the result and the first GET.
    with SimulatorServer(SimulatorConfig(speed=720.0, seed=3, render_scale=RENDER_SCALE)) as server:
        batch_book(server.simulator).turnaround_s = 600.0
        bid = _post(server.url + "/v1/batches", headers=AUTH, json={"name": "u"}).json()["batch_id"]
        _post(f"{server.url}/v1/batches/{bid}/requests", headers=AUTH, json={"batch_requests": [_gen("one")]})
        _wait_done(server.url, bid)
        (result,) = contract.parse_results(_get(f"{server.url}/v1/batches/{bid}/results",
                                                     headers=AUTH).json())[0]
        assert _get(result.url).status_code == 200
        time.sleep(5.2)
        assert _get(result.url).status_code == 403


# -- the client --------------------------------------------------------------------------------------
@pytest.mark.usefixtures("full_size")
@pytest.mark.slow
def test_batch_end_to_end_outside_the_rate_limit(client, sim):
    batch_book(sim.simulator).turnaround_s = 600.0
    source = client.generate("A red ball bouncing", duration=2)
    sim.simulator.requests.clear()
    with client.batch(name="sweep", tags=["night"]) as b:
        fox = b.generate("A fox in snow", duration=1, resolution="720p")
        boat = b.generate("A boat at dusk", duration=2)
        night = b.edit(source, "Make it night")
        longer = b.extend(source, "The ball rolls away", duration=2)
    assert b.batch_id and fox.batch_id == b.batch_id
    runs = b.wait(timeout=120)
    assert runs == [fox, boat, night, longer]
    assert all(r.status == "done" and r.ok for r in runs), [(r.status, r.error) for r in runs]
    assert probe(fox.path).height == 720 and probe(boat.path).duration == pytest.approx(2.0)
    assert probe(longer.path).duration == pytest.approx(4.0, abs=0.1)
    assert fox.cost_basis == "actual" and fox.cost_usd == pytest.approx(0.07)
    assert count(sim, "POST", "/v1/videos/") == 0 and count(sim, "GET", "/v1/videos/") == 0  # no single jobs
    assert count(sim, "POST", "/v1/batches") == 2  # create + one call adding all four
    rows = {r["run_id"]: r for r in client.store.rows()}
    assert {rows[r.run_id]["batch_id"] for r in runs} == {b.batch_id}
    assert rows[night.run_id]["status"] == "done" and rows[night.run_id]["local_path"] == str(night.path)
    assert rows[fox.run_id]["tags"] == ["night"] and rows[longer.run_id]["kind"] == "extend"
    assert b.progress["num_success"] == 4 and b.progress["statuses"] == {"done": 4}


def test_batch_requests_are_checked_like_the_clients_and_nothing_is_sent(client, sim):
    b = client.batch(name="checked")
    with pytest.raises(grok_nb.ValidationError, match="duration"):
        b.generate("A fox", duration=99)
    with pytest.raises(grok_nb.ValidationError, match="prompt"):
        b.edit("https://example.com/v.mp4", "")
    with pytest.raises(TypeError, match="wait"):  # the builder has the client's real signature, less wait
        b.generate("A fox", wait=False)
    with pytest.raises(grok_nb.ValidationError, match="at least one"):
        b.submit()
    with pytest.raises(grok_nb.ValidationError, match="name"):
        client.batch(name="")
    assert count(sim, "POST", "/v1/batches") == 0


def test_a_batch_over_budget_sends_nothing(sim):
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=0.2) as client:
        b = client.batch(name="dear")
        for i in range(3):
            b.generate(f"A fox {i}", duration=1)  # $0.05 each: fits
        b.generate("A long fox", duration=10, resolution="720p")  # $0.70: the batch does not fit
        with pytest.raises(grok_nb.BudgetExceeded):
            b.submit()
        assert count(sim, "POST", "/v1/batches") == 0 and client.remaining_usd == pytest.approx(0.2)


@pytest.mark.slow
def test_requests_are_split_to_the_services_limit(client, sim, monkeypatch):
    batch_book(sim.simulator).turnaround_s = 600.0
    monkeypatch.setattr(contract, "MAX_REQUESTS_PER_CALL", 2)
    with client.batch(name="split") as b:
        for i in range(5):
            b.generate(f"Split {i}", duration=1)
    assert count(sim, "POST", f"/v1/batches/{b.batch_id}/requests") == 3
    assert [r.status for r in b.wait(timeout=120)] == ["done"] * 5


@pytest.mark.slow
def test_failed_and_moderated_requests_in_a_batch(client, sim):
    batch_book(sim.simulator).turnaround_s = 600.0
    with client.batch(name="mixed") as b:
        ok = b.generate("A calm lake", duration=1)
        failed = b.generate("A storm [sim:fail=internal_error]", duration=1)
        moderated = b.generate("Something [sim:moderate]", duration=1)
    b.wait(timeout=120)
    assert ok.status == "done"
    assert failed.status == "failed" and isinstance(failed.error, grok_nb.JobFailedError)
    assert moderated.status == "moderated" and isinstance(moderated.error, grok_nb.ModeratedError)
    assert client.spent_usd == pytest.approx(0.10)  # the failed one is not billed


def test_cancel_cancels_what_has_not_run(client, sim):
    batch_book(sim.simulator).turnaround_s = 1e7
    with client.batch(name="cancel me") as b:
        runs = [b.generate(f"Never {i}", duration=1) for i in range(3)]
    state = b.cancel()
    assert state.num_cancelled == 3
    b.wait(timeout=60)
    assert [r.status for r in runs] == ["cancelled"] * 3 and "cancelled" in str(runs[0].error)
    assert isinstance(runs[0].error, grok_nb.JobCancelledError) and "nothing was billed" in str(runs[0].error)
    assert client.spent_usd == 0 and {r["status"] for r in client.store.rows()} == {"cancelled"}


@pytest.mark.slow
def test_resume_reattaches_an_unfinished_batch_without_creating_one(sim, isolated_home):
    batch_book(sim.simulator).turnaround_s = 1e7  # nothing is ready while the first client lives
    first = Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED)
    with first.batch(name="overnight") as b:
        for i in range(3):
            b.generate(f"Overnight {i}", duration=1)
    batch_id = b.batch_id
    first.close()  # the process goes away before the results are in
    rows = first.store.rows()
    assert {r["status"] for r in rows} == {"pending"} and {r["batch_id"] for r in rows} == {batch_id}
    release_batches(sim, batch_id)  # the results come in overnight, while nobody is watching
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as second:
        handles = second.resume()
        assert len(handles) == 3
        runs = [h.result(timeout=120) for h in handles]
        assert all(r.ok and r.batch_id == batch_id for r in runs)
        assert count(sim, "POST", "/v1/batches") == 2  # the first client's create and add; none since
        assert second.resume() == []


@pytest.mark.anyio
@pytest.mark.slow
async def test_async_batch(aclient, sim):
    batch_book(sim.simulator).turnaround_s = 600.0
    async with aclient.batch(name="async") as b:
        run = b.generate("A heron", duration=1)
    runs = await b.wait(timeout=120)
    assert runs == [run] and run.ok and b.state.done


@pytest.mark.parametrize("method", ["grid", "compare"])
@pytest.mark.slow
def test_a_comparison_grid_runs_as_one_batch(studio, sim, tmp_path, method):
    batch_book(sim.simulator).turnaround_s = 600.0
    sim.simulator.requests.clear()
    grid = getattr(studio, method)(prompt=["A fox", "A boat"], resolution=["480p", "720p"], duration=1, batch=True,
                                   display=False)
    assert grid.batch and "best effort" in grid.view.widget.message and "standard prices" in grid.view.widget.message
    table = grid.wait(timeout=120)
    assert list(table["status"]) == ["done"] * 4
    assert all(r.ok and r.batch_id for r in grid.runs) and len({r.batch_id for r in grid.runs}) == 1
    assert count(sim, "POST", "/v1/videos/") == 0 and count(sim, "POST", "/v1/batches") == 2
    tiles = grid.view.tiles()
    assert all(t["kind"] == "done" and t["src"] for t in tiles), tiles
    assert "best effort" in grid.view.static_html()  # a saved notebook says it too
    report = grid.to_html(tmp_path / "batch.html")
    assert report.read_text().count("data:video/mp4;base64,") == 4  # every video embedded
    grid.timeline()  # batch runs have no polls to draw, and that is no error


def _faulty_add(action: str):
    """A proxy decision: the first call adding requests to a batch meets ``action``; everything else passes."""
    hits = []

    def decide(method: str, path: str) -> str:
        if method == "POST" and path.endswith("/requests") and not hits:
            hits.append(path)
            return action
        return "forward"
    return decide


@pytest.mark.parametrize("action", ["reset", "502"])
@pytest.mark.slow
def test_an_add_call_without_an_answer_is_reconciled_never_resent(sim, action):
    batch_book(sim.simulator).turnaround_s = 600.0
    with FaultProxy(sim.url, _faulty_add(action)) as proxy, \
            Client(api_key=TEST_KEY, base_url=proxy.url, policy=FAST, rate_limit=SPEED) as client:
        with client.batch(name="flaky") as b:
            runs = [b.generate(f"Flaky {action} {i}", duration=1) for i in range(2)]
        assert count(sim, "POST", f"/v1/batches/{b.batch_id}/requests") == 1  # it arrived once, and only once
        assert count(sim, "GET", f"/v1/batches/{b.batch_id}/requests") == 1  # the listing said so
        b.wait(timeout=120)
        assert [r.status for r in runs] == ["done", "done"]


def test_an_add_call_that_never_arrived_leaves_uncertain_rows_and_resends_nothing(sim):
    with FaultProxy(sim.url, _faulty_add("drop")) as proxy, \
            Client(api_key=TEST_KEY, base_url=proxy.url, policy=FAST, rate_limit=SPEED, budget_usd=1.0) as client:
        with client.batch(name="lost") as b:
            run = b.generate("Lost on the way", duration=1)
        assert count(sim, "POST", f"/v1/batches/{b.batch_id}/requests") == 0
        assert b.wait(timeout=60) == [run]
        assert run.status == "uncertain" and "not added again" in str(run.error)
        assert client.store.get(run.run_id)["status"] == "uncertain"
        assert client.remaining_usd == pytest.approx(1.0 - 0.05)  # may have been billed: its estimate stays counted


@pytest.mark.slow
def test_a_refused_add_call_retried_after_429(sim):
    batch_book(sim.simulator).turnaround_s = 600.0
    with FaultProxy(sim.url, _faulty_add("429")) as proxy, \
            Client(api_key=TEST_KEY, base_url=proxy.url, policy=FAST, rate_limit=SPEED) as client:
        with client.batch(name="busy") as b:
            run = b.generate("Busy", duration=1)
        assert count(sim, "POST", f"/v1/batches/{b.batch_id}/requests") == 1
        b.wait(timeout=120)
        assert run.status == "done"


@pytest.mark.kernel
def test_the_batches_notebook_runs_in_a_kernel(tmp_path):
    """notebooks/04: a grid as one batch, a batch left overnight and resumed the next morning, an upload."""
    name = "04_batches_and_uploads.ipynb"
    shutil.copy(Path(__file__).resolve().parents[2] / "notebooks" / name, tmp_path / name)
    import nbformat  # here, not at the top: jsonschema's import takes 3 s, and every xdist worker collects every module
    from nbclient import NotebookClient

    nb = nbformat.read(tmp_path / name, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    text = "\n".join(out.get("text", "") if out.output_type == "stream" else json.dumps(out.get("data", {}))
                     for cell in nb.cells for out in cell.get("outputs", []))
    widgets = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    assert any("best effort" in str(m["state"].get("message", "")) for m in widgets.values())  # said on the grid
    assert "requests · estimated $0.20" in text, text[-3000:]
    assert text.count("batch_") >= 4 and "True" in text, text[-3000:]  # the resumed batch's rows; the same file id
    assert "error" not in [out.output_type for cell in nb.cells for out in cell.get("outputs", [])]


def test_a_batch_counts_against_the_budget_when_added(sim):
    batch_book(sim.simulator).turnaround_s = 1e7
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, budget_usd=1.0) as client:
        with client.batch(name="held") as b:
            b.generate("Held 1", duration=1)
            b.generate("Held 2", duration=1)
        assert client.remaining_usd == pytest.approx(0.9) and client.spent_usd == 0  # held while they run
        with pytest.raises(grok_nb.BudgetExceeded):
            client.generate("Too dear now", duration=15, resolution="720p")  # $1.05 > the $0.90 left
        b.cancel()
        b.wait(timeout=60)
        assert client.remaining_usd == pytest.approx(1.0) and client.spent_usd == 0  # cancelled: nothing billed


_OVERNIGHT = """
import sys
import grok_nb
client = grok_nb.Client(api_key=sys.argv[2], base_url=sys.argv[1], rate_limit=300)
with client.batch(name="overnight") as b:
    for i in range(3):
        b.generate(f"Overnight in a process {i}", duration=1)
print(b.batch_id, flush=True)
"""  # the process ends here: its client closes at exit, the batch goes on at the server


@pytest.mark.slow
def test_another_process_resumes_a_batch_left_by_one_that_exited(sim, isolated_home):
    batch_book(sim.simulator).turnaround_s = 1e7  # still running when the process is gone, however slow the machine
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GROK_NB_HOME": str(isolated_home), "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", _OVERNIGHT, sim.url, TEST_KEY], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    batch_id = done.stdout.strip().splitlines()[-1]
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED) as client:
        rows = client.store.rows()
        assert {r["batch_id"] for r in rows} == {batch_id} and {r["status"] for r in rows} == {"pending"}
        release_batches(sim, batch_id)
        runs = [h.result(timeout=120) for h in client.resume()]
        assert len(runs) == 3 and all(r.ok for r in runs)
        assert count(sim, "POST", "/v1/batches") == 2  # the other process's create and add; nothing since


def test_the_turnaround_is_set_over_http(sim):
    book = batch_book(sim.simulator)
    answer = httpx.patch(sim.url + "/_simulator/batch", json={"turnaround_s": 42})
    assert answer.json()["turnaround_s"] == 42 and book.turnaround_s == 42
    assert httpx.patch(sim.url + "/_simulator/batch", json={"speed": 1}).status_code == 400


class _StaleCounters(httpx.AsyncBaseTransport):
    """The batch's counters lag one read behind its results: the first answer saying all ended says one is pending."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lied = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        path = request.url.path
        if request.method != "GET" or not path.startswith("/v1/batches/") or path.endswith("/results"):
            return response
        await response.aread()
        body = json.loads(response.content)
        state = body.get("state", {})
        if not self.lied and state.get("num_requests") and state.get("num_pending") == 0:
            self.lied = True
            state["num_pending"], state["num_success"] = 1, state["num_success"] - 1
        return httpx.Response(response.status_code, json=body)


def test_the_batch_counters_are_read_again_when_the_last_result_arrives_before_them(sim):
    batch_book(sim.simulator).turnaround_s = 300.0
    transport = _StaleCounters()
    with Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED, transport=transport) as c:
        with c.batch(name="stale") as b:
            b.generate("A fox in snow", duration=1)
            b.generate("A boat at dusk", duration=1)
        runs = b.wait(timeout=120)
        assert transport.lied and all(r.status == "done" for r in runs)
        assert b.progress["num_success"] == 2 and b.progress["num_pending"] == 0, b.progress
