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
async def test_async_and_sync_give_the_same_runs(aclient, client):
    arun = await aclient.generate("parity", duration=1)
    srun = client.generate("parity", duration=1)
    for run in (arun, srun):
        assert isinstance(run, Run) and run.ok and run.cost_usd == pytest.approx(0.05)
    assert (arun.kind, arun.duration, arun.resolution, arun.status) == (srun.kind, srun.duration, srun.resolution, srun.status)

    ahandle = await aclient.generate("parity", duration=1, wait=False)
    shandle = client.generate("parity", duration=1, wait=False)
    assert isinstance(ahandle, JobHandle) and isinstance(shandle, JobHandle)
    assert (await ahandle).ok and (await shandle).ok  # a sync handle is awaitable from another loop too
    assert shandle.result().ok

    assert aclient.estimate_cost("p", duration=3) == client.estimate_cost("p", duration=3)
    a_edit = await aclient.edit(arun, "parity edit")
    s_edit = client.edit(srun, "parity edit")
    assert a_edit.ok and s_edit.ok and a_edit.duration == s_edit.duration


@pytest.mark.anyio
async def test_async_handle_result_blocks_inside_its_own_loop(aclient):
    # What a notebook cell does with AsyncClient: block on the loop that runs the job.
    handle = await aclient.generate("blocking in loop", duration=1, wait=False)
    assert handle.result(timeout=60).ok


def test_validation_errors_surface_synchronously_in_both(client):
    import grok_nb

    with pytest.raises(grok_nb.ValidationError):
        client.generate("x", duration=99, wait=False)
