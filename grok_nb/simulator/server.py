"""Run the simulator: in a background thread on a free loopback port, or in the foreground (CLI)."""

from __future__ import annotations

import atexit
import secrets
import shutil
import socket
import threading
import time
from typing import Any

import uvicorn

from .app import create_app
from .state import Simulator, SimulatorConfig


class SimulatorServer:
    """A simulator served by uvicorn on loopback, in a daemon thread."""

    def __init__(self, config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.simulator = Simulator(config)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this: without it, Nagle + delayed ACK add ~40 ms to every answer.
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(uvicorn.Config(create_app(self.simulator), log_level="warning",
                                                     access_log=False, lifespan="off", timeout_keep_alive=30))
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL clients use, e.g. ``http://127.0.0.1:51234``."""
        return f"http://{self.host}:{self.port}"

    @property
    def config(self) -> SimulatorConfig:
        """The live knobs (changes apply to the next request)."""
        return self.simulator.config

    def start(self, timeout: float = 30.0) -> "SimulatorServer":
        """Serve in a daemon thread; returns once the port accepts connections."""
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name=f"grok-nb-simulator-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the grok_nb simulator did not start on {self.url}")
            time.sleep(0.01)
        self.simulator.pool  # start the render workers now, not on the first job
        return self

    def stop(self) -> None:
        """Stop serving, stop the render workers, delete the rendered media."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.simulator.close()
        self._sock.close()
        shutil.rmtree(self.simulator.media_dir, ignore_errors=True)

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


_embedded: SimulatorServer | None = None
_embedded_key: str | None = None
_embedded_lock = threading.Lock()


def embedded(speed: float | None = None) -> tuple[SimulatorServer, str]:
    """The process-wide embedded simulator and the key it accepts, started on first use."""
    global _embedded, _embedded_key
    with _embedded_lock:
        if _embedded is None:
            _embedded_key = "sim-" + secrets.token_hex(12)
            config = SimulatorConfig(api_key=_embedded_key)
            if speed is not None:
                config.speed = speed
            _embedded = SimulatorServer(config).start()
            atexit.register(_embedded.stop)
        assert _embedded_key is not None
        return _embedded, _embedded_key


def serve(host: str = "127.0.0.1", port: int = 8000, config: SimulatorConfig | None = None) -> None:
    """Serve in the foreground until Ctrl+C (the ``grok-nb simulator`` command)."""
    server = SimulatorServer(config, host=host, port=port)
    server.start()
    print(f"grok_nb simulator of the xAI video API on {server.url} (speed ×{server.config.speed:g}; "
          f"media in {server.simulator.media_dir})", flush=True)
    print(f"  export GROK_NB_BASE_URL={server.url} XAI_API_KEY=anything-non-empty", flush=True)
    try:
        while server._thread is not None and server._thread.is_alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
