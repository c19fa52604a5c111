"""The sync facade and the async core offer the same API and behave alike."""

import inspect

import pytest

from grok_nb import AsyncClient, Client, JobHandle, Run

JOB_METHODS = ("generate", "edit", "extend", "get")


def test_every_public_async_method_has_a_sync_twin():
    public = {n for n, v in vars(AsyncClient).items() if not n.startswith("_") and callable(v)} - {"aclose"}
    for name in public:
        assert hasattr(Client, name) or name in ("history", "estimate_cost"), name
    for name in JOB_METHODS:
        assert inspect.iscoroutinefunction(getattr(AsyncClient, name))
        assert not inspect.iscoroutinefunction(getattr(Client, name))


@pytest.mark.anyio
@pytest.mark.slow
async def test_async_and_sync_give_the_same_runs(aclient, client):
    arun = await aclient.generate("parity", duration=1)
    srun = client.generate("parity", duration=1)
    for run in (arun, srun):
        assert isinstance(run, Run) and run.ok and run.cost_usd == pytest.approx(0.05)
    assert (arun.kind, arun.duration, arun.resolution, arun.status) == \
        (srun.kind, srun.duration, srun.resolution, srun.status)

    ahandle = await aclient.generate("parity", duration=1, wait=False)
    shandle = client.generate("parity", duration=1, wait=False)
    assert isinstance(ahandle, JobHandle) and isinstance(shandle, JobHandle)
    assert (await ahandle).ok and (await shandle).ok  # a sync handle is awaitable from another loop too
    assert shandle.result().ok

    assert await aclient.estimate_cost("p", duration=3) == client.estimate_cost("p", duration=3)
    a_edit = await aclient.edit(arun, "parity edit")
    s_edit = client.edit(srun, "parity edit")
    assert a_edit.ok and s_edit.ok and a_edit.duration == s_edit.duration


@pytest.mark.anyio
@pytest.mark.slow
async def test_async_handle_result_blocks_inside_its_own_loop(aclient):
    # What a notebook cell does with AsyncClient: block on the loop that runs the job.
    handle = await aclient.generate("blocking in loop", duration=1, wait=False)
    assert handle.result(timeout=60).ok


#: Names only one side has: how each is closed.
ONLY_ASYNC = {"aclose"}
ONLY_SYNC = {"close"}
#: Return types that differ by design: a builder's blocking twin.
SYNC_TWINS = {"BatchJob": "SyncBatch"}


def _public(cls: type) -> dict[str, object]:
    names = {n: v for n, v in vars(cls).items() if not n.startswith("_")}
    for n in getattr(cls, "__annotations__", {}):  # instance attributes the class declares
        if not n.startswith("_"):
            names.setdefault(n, None)
    return names


def test_client_is_written_out_and_equal_to_the_async_core():
    a, s = _public(AsyncClient), _public(Client)
    assert set(a) - ONLY_ASYNC == set(s) - ONLY_SYNC
    assert "__getattr__" not in vars(Client)  # every attribute is written out: editors, help() and mypy see it
    for name in sorted(set(a) - ONLY_ASYNC):
        av, sv = a[name], s[name]
        if av is None or isinstance(av, property):  # an attribute or property of the core: a property here
            assert isinstance(sv, property), name
            if isinstance(av, property):
                assert sv.__doc__ == av.__doc__, name
            continue
        assert callable(av) and callable(sv), name
        assert sv.__doc__ == av.__doc__, name
        asig, ssig = inspect.signature(av), inspect.signature(sv)
        assert list(asig.parameters.values()) == list(ssig.parameters.values()), name
        assert SYNC_TWINS.get(asig.return_annotation, asig.return_annotation) == ssig.return_annotation, name
        coroutines = JOB_METHODS + ("resume", "start_many", "models", "upload", "start_batch", "history",
                                    "estimate_cost", "waiting", "judge", "judge_many", "judge_pair", "judgements",
                                    "vote", "delete_vote", "votes", "ranking")
        assert inspect.iscoroutinefunction(av) == (name in coroutines), name
        assert not inspect.iscoroutinefunction(sv), name
    init_a, init_s = inspect.signature(AsyncClient.__init__), inspect.signature(Client.__init__)
    assert list(init_a.parameters.values()) == list(init_s.parameters.values())
    assert Client.__init__.__doc__ == AsyncClient.__init__.__doc__


def test_the_generated_facade_is_up_to_date():
    """Client, SyncBatch and the batch builder's methods are written from the async core: regenerating changes nothing."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, str(root / "scripts" / "make_sync.py"), "--check"], capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_batch_faces_take_the_clients_arguments():
    from grok_nb.runtime.batch import BatchJob
    from grok_nb.sync_client import SyncBatch

    for name in ("generate", "edit", "extend"):
        client = dict(inspect.signature(getattr(AsyncClient, name)).parameters)
        for drop in ("wait", "on_update"):
            client.pop(drop)
        for face in (BatchJob, SyncBatch):
            assert dict(inspect.signature(getattr(face, name)).parameters) == client, (face, name)
    assert {n for n in vars(SyncBatch) if not n.startswith("_")} >= {
        "submit", "refresh", "cancel", "progress", "estimate_usd", "batch_id", "name", "runs", "state"}


def test_the_sync_client_shows_the_core_attributes(client):
    for name in ("home", "budget", "tags", "policy", "cache_dir", "store", "limiter", "base_url", "backend",
                 "simulated", "scheduler", "budget_usd", "spent_usd", "remaining_usd"):
        assert getattr(client, name) is getattr(client._async, name) or \
            getattr(client, name) == getattr(client._async, name), name
    with pytest.raises(AttributeError):
        client.no_such_thing  # noqa: B018


def test_validation_errors_surface_synchronously_in_both(client):
    import grok_nb

    with pytest.raises(grok_nb.ValidationError):
        client.generate("x", duration=99, wait=False)
