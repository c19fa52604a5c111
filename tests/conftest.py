"""Shared fixtures: every test is kept away from the user's real history and key."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from grok_nb.jobs.policy import PollPolicy
from grok_nb.simulator import SimulatorConfig, SimulatorServer

TEST_KEY = "xai-TESTKEYabcdef0123456789SECRET"
#: Fast timings for a simulator running at SPEED: tests take seconds, not minutes.
SPEED = 300.0
#: How large the suite's simulators draw their clips (of the resolution asked for).
RENDER_SCALE = 0.25
FAST = PollPolicy(interval=0.02, max_interval=0.05, retry_base=0.02, retry_max=0.2, deadline=60.0)


def pytest_configure(config):
    """Before any fixture: session and module fixtures (JupyterLab, kernels) never touch the user's real home or key."""
    import os
    import sys
    import tempfile

    # Bytecode caches on, even where the machine turns them off for everything (PYTHONDONTWRITEBYTECODE=1): every
    # xdist worker, kernel and child interpreter then reuses one compile of grok_nb and of each test module.
    sys.dont_write_bytecode = False
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    os.environ["GROK_NB_HOME"] = tempfile.mkdtemp(prefix="grok-nb-test-home-")
    os.environ["GROK_NB_SHARED_URL"] = "local"
    # Every simulator of the suite (kernels', JupyterLab's and subprocesses' too) draws small clips: the suite tests
    # the API, the client and the views, not the renderer's pixel count. Tests of true frame sizes set 1.0.
    os.environ["GROK_NB_SIMULATOR_SCALE"] = str(RENDER_SCALE)
    for name in ("XAI_API_KEY", "GROK_NB_BASE_URL", "GROK_NB_HISTORY_URL"):
        os.environ.pop(name, None)
    # The Ctrl+C tests need Ctrl+C: a suite started in the background by a non-interactive shell (`cmd &`) gets
    # SIGINT ignored, and every worker and child process would inherit that. Each process of the suite restores it.
    import signal

    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    """A fresh GROK_NB_HOME per test, and no real key or base URL from the environment."""
    home = tmp_path / "grok_home"
    monkeypatch.setenv("GROK_NB_HOME", str(home))
    monkeypatch.delenv("XAI_API_KEY", raising=False)
    monkeypatch.delenv("GROK_NB_BASE_URL", raising=False)
    monkeypatch.delenv("GROK_NB_HISTORY_URL", raising=False)
    # One in-process limiter per client unless a test is about sharing the key's budget (test_shared_limit.py).
    monkeypatch.setenv("GROK_NB_SHARED_URL", "local")
    return home


@pytest.fixture(scope="session")
def sim_server():
    """One simulator on a free loopback port for the whole session.

    At SPEED a job's modelled latency is a few tens of milliseconds, shorter than its render: done only
    once rendered keeps each job pending for a few polls, which the client's tests are about. Notebooks
    and browser tests run the default (done at the modelled latency; test_simulator_latency.py tests it).
    """
    server = SimulatorServer(SimulatorConfig(speed=SPEED, seed=7, render_scale=RENDER_SCALE,
                                             done_at_latency=False)).start()
    yield server
    server.stop()


@pytest.fixture
def sim(sim_server):
    """The session simulator with default knobs; whatever a test changes is put back after it."""
    saved = dataclasses.replace(sim_server.config)
    sim_server.simulator.requests.clear()
    yield sim_server
    for f in dataclasses.fields(saved):
        setattr(sim_server.config, f.name, getattr(saved, f.name))


@pytest.fixture
def full_size(sim):
    """This test checks the frames' true sizes: the session simulator draws at the resolution asked for."""
    sim.config.render_scale = 1.0
    return sim


def history_rows(home: Path) -> list[dict]:
    """Every row of the runs table under ``home``, oldest first, read with plain sqlite3 (as a user's tool would)."""
    conn = sqlite3.connect(home / "history.sqlite")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY created_at")]
    finally:
        conn.close()


def count(sim_server, method: str, path_prefix: str) -> int:
    """How many requests the simulator saw for a method and path prefix."""
    return sum(1 for m, p, _ in list(sim_server.simulator.requests) if m == method and p.startswith(path_prefix))


def release_batches(sim_server, *batch_ids: str) -> None:
    """Make every pending request of these simulator batches ready now (tests hold them with a huge turnaround
    while a client is alive, then let them finish: no race against a slow machine)."""
    from grok_nb.simulator.batch import batch_book

    book = batch_book(sim_server.simulator)
    for batch_id in batch_ids:
        for request in list(book.batches[batch_id].requests.values()):
            request.ready_after = 0.0


def until_batches_done_at_server(sim_server, *batch_ids: str, timeout: float = 60.0) -> None:
    """Wait until every request of these simulator batches is ready to read (rendered and past its turnaround),
    reading the simulator's own book: no HTTP request a test counts."""
    import time

    from grok_nb.simulator.batch import batch_book

    book = batch_book(sim_server.simulator)
    deadline = time.monotonic() + timeout
    while True:
        batches = [book.batches[batch_id] for batch_id in batch_ids]
        for batch in batches:
            book.sweep(batch)
        if all(r.state != "pending" for b in batches for r in list(b.requests.values())):
            return
        assert time.monotonic() < deadline, "the simulator's batches did not finish in time"
        time.sleep(0.02)


@pytest.fixture
def client(sim):
    """A blocking client on the simulator, with test timings."""
    from grok_nb import Client

    c = Client(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED)
    yield c
    c.close()


@pytest.fixture
async def aclient(sim):
    """An async client on the simulator, with test timings."""
    from grok_nb import AsyncClient

    c = AsyncClient(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED)
    yield c
    await c.aclose()


@pytest.fixture
def studio(sim):
    """A notebook Studio on the simulator, with test timings."""
    import grok_nb

    s = grok_nb.Studio(api_key=TEST_KEY, base_url=sim.url, policy=FAST, rate_limit=SPEED)
    yield s
    s.client.close()


@pytest.fixture
def anyio_backend():
    return "asyncio"


def _weight(item) -> int:
    """Long poles first: browser modules, then tests that start processes, then the rest (a shorter tail)."""
    if item.get_closest_marker("browser"):
        return 0
    return 1 if item.get_closest_marker("slow") or item.get_closest_marker("kernel") else 2


@pytest.hookimpl(tryfirst=True)  # before -m selects on the marks added here
def pytest_collection_modifyitems(config, items):
    """Browser, kernel and database-server tests are slow too (the quick loop is ``pytest -m "not slow"``); long
    poles run first."""
    for item in items:
        if item.get_closest_marker("browser") or item.get_closest_marker("kernel"):
            item.add_marker(pytest.mark.slow)
        # A real PostgreSQL or Redis server is a process of its own: out of the quick loop (the whole suite runs them).
        params = getattr(getattr(item, "callspec", None), "params", {})
        if {"postgres_server", "redis_server"} & set(getattr(item, "fixturenames", ())) or \
                {"postgresql", "redis"} & {v for v in params.values() if isinstance(v, str)}:
            item.add_marker(pytest.mark.slow)
    items.sort(key=_weight)  # stable: the same order on every xdist worker


#: Modules whose module-scoped fixture is expensive and shared by several tests: split across workers, each worker
#: would build it again (test_cli's demo, nine full-size clips, ran twice: 35-40 s each on a loaded machine;
#: test_layout's import graph, parsed on three workers: 1-3 s each).
KEEP_WHOLE = {"test_cli.py", "test_layout.py"}


def pytest_xdist_make_scheduler(config, log):
    """Under pytest-xdist (``-n``), a browser module stays whole on one worker (its JupyterLab and chromium are
    module-scoped), and so does each module of ``KEEP_WHOLE``; every other test is a unit of its own, handed to
    whichever worker is free.

    (``--dist loadgroup`` cannot do this with pytest 9.2: xdist 3.8 renames ``item._nodeid``, which pytest no longer
    reads.) Modules run side by side on different workers, each with its own JupyterLab.
    """
    from xdist.scheduler import LoadScopeScheduling

    class BrowserModulesWhole(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = module.rsplit("/", 1)[-1]
            return module if name.startswith("test_browser") or name in KEEP_WHOLE else nodeid

    config.option.loadscopereorder = False  # keep the collection's order: long poles first
    return BrowserModulesWhole(config, log)


_SESSION_STARTED: list[float] = []


def pytest_sessionstart(session):
    import time

    _SESSION_STARTED.append(time.monotonic())


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    """What the run cost the machine: CPU seconds of pytest and every process it waited for (xdist workers,
    chromium, kernels, JupyterLab, render workers, servers). Divided by the cores, the least wall time it allows."""
    import os
    import resource
    import time

    if hasattr(config, "workerinput"):  # an xdist worker: the controller reports for all of them
        return
    used = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in used)
    cores = os.cpu_count() or 1
    wall = time.monotonic() - _SESSION_STARTED[0]
    terminalreporter.write_line(f"suite: {wall:.0f} s wall; {cpu:.0f} CPU-s in pytest and the processes it waited "
                                f"for, so at least {cpu / cores:.0f} s on {cores} cores")
