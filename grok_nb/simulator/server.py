"""Run the simulator: in a background thread on a free loopback port, or in the foreground (CLI)."""

from __future__ import annotations

import atexit
import secrets
import shutil
import threading
import time
from typing import Any

from ..loopback import BackgroundServer
from .app import create_app
from .state import Simulator, SimulatorConfig


class SimulatorServer:
    """A simulator served on loopback from a daemon thread."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.simulator = Simulator(config)
        self._server = BackgroundServer(create_app(self.simulator), host, port, name="grok-nb-simulator")
        self.host, self.port = self._server.host, self._server.port

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:51234``."""
        return self._server.url

    @property
    def config(self) -> SimulatorConfig:
        """The live knobs (changes apply to the next request)."""
        return self.simulator.config

    def start(self, timeout: float = 30.0) -> SimulatorServer:
        """Serve, and start the render workers now rather than on the first job."""
        self._server.start(timeout)
        self.simulator.pool  # noqa: B018  (the property starts the workers)
        return self

    def stop(self) -> None:
        """Stop serving, stop the render workers, delete the rendered media."""
        self._server.stop()
        self.simulator.close()
        shutil.rmtree(self.simulator.media_dir, ignore_errors=True)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_embedded: dict[float, tuple[SimulatorServer, str]] = {}
_embedded_lock = threading.Lock()


def embedded(speed: float | None = None, render_scale: float = 1.0) -> tuple[SimulatorServer, str]:
    """A process-wide embedded simulator for this speed and the key it accepts, started on first use.

    Each speed gets its own server, so every client runs at the speed it asked for. ``render_scale``
    draws the clips smaller than asked (fast tests); it applies when that
    speed's server starts, so ``embedded()`` alone finds the server a client of this process uses.
    """
    speed = SimulatorConfig.speed if speed is None else float(speed)
    with _embedded_lock:
        if speed not in _embedded:
            key = "sim-" + secrets.token_hex(12)
            server = SimulatorServer(SimulatorConfig(api_key=key, speed=speed, render_scale=render_scale)).start()
            atexit.register(server.stop)
            _embedded[speed] = (server, key)
        return _embedded[speed]


def serve(host: str = "127.0.0.1", port: int = 8000, config: SimulatorConfig | None = None) -> None:
    """Serve in the foreground until Ctrl+C (the ``grok-nb simulator`` command)."""
    server = SimulatorServer(config, host=host, port=port)
    server.start()
    print(f"grok_nb simulator of the xAI video API on {server.url} (speed ×{server.config.speed:g}; "
          f"media in {server.simulator.media_dir})", flush=True)
    print(f"  export GROK_NB_BASE_URL={server.url} XAI_API_KEY=anything-non-empty", flush=True)
    try:
        while server._server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
