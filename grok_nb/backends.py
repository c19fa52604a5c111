"""Which server a client talks to: the real API, a given base URL, or the embedded simulator.

The one place that starts the simulator: nothing under api/, jobs/, runtime/ or history/ knows it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .errors import ValidationError
from .settings import DEFAULT_BASE_URL, backend_name, resolve_api_key, resolve_base_url, simulator_render_scale

SIMULATED_NOTICE = (
    "grok_nb: no XAI_API_KEY is set, so videos are SIMULATED by grok_nb's embedded simulator at {url} "
    "(nothing is sent to xAI, nothing is billed). For real videos, set XAI_API_KEY or pass api_key=..."
)


@dataclass(frozen=True)
class Backend:
    """Where requests go, with which key, and how fast that server's clock runs."""

    base_url: str
    api_key: str | None
    name: str  # "xai" or "simulator"
    speed: float = 1.0  # the simulator's time factor; 1 for the real service
    embedded: bool = False  # this process's own simulator (its key is random, so nothing is shared on it)

    def __repr__(self) -> str:  # never show the key
        key = "set" if self.api_key else "none"
        return f"Backend(base_url={self.base_url!r}, name={self.name!r}, speed={self.speed:g}, api_key={key})"


def resolve_backend(api_key: str | None = None, base_url: str | None = None, *,
                    simulator_speed: float | None = None, quiet: bool = False) -> Backend:
    """Argument → environment → default; with neither a key nor a base URL, start the simulator.

    ``simulator_speed`` is the embedded simulator's time factor; with a base URL that is not xAI's it
    says how much faster than real time that server's clock runs, so the client's timings follow it.
    Left out, a grok_nb simulator at that URL (a class's shared ``grok-nb simulator``) is asked.
    """
    if simulator_speed is not None and (isinstance(simulator_speed, bool)
                                        or not isinstance(simulator_speed, (int, float))
                                        or not 0 < simulator_speed < float("inf")):
        raise ValidationError("simulator_speed", simulator_speed, "a positive number (1 is real time)")
    key, url = resolve_api_key(api_key), resolve_base_url(base_url)
    if key is None and url is None:
        # The simulator pulls in PyAV, NumPy, Pillow and uvicorn: loaded only when no key or base URL is given.
        from .simulator import embedded

        server, sim_key = embedded(simulator_speed, simulator_render_scale())
        if not quiet:
            print(SIMULATED_NOTICE.format(url=server.url), flush=True)
        return Backend(server.url, sim_key, "simulator", server.config.speed, embedded=True)
    url = url or DEFAULT_BASE_URL
    name = backend_name(url, simulated=False)
    if name == "xai":
        return Backend(url, key, name, 1.0)
    speed = float(simulator_speed) if simulator_speed else _simulator_speed(url)
    return Backend(url, key, name, speed)


def _simulator_speed(url: str) -> float:
    """How fast a grok_nb simulator at ``url`` runs (its root says; no key is sent); 1 for anything else."""
    try:
        answer = httpx.get(url + "/", timeout=2.0)
        speed = answer.json().get("speed") if answer.headers.get("x-grok-nb-simulator") else None
    except (httpx.HTTPError, ValueError, AttributeError):
        return 1.0
    return float(speed) if isinstance(speed, (int, float)) and not isinstance(speed, bool) and 0 < speed < 1e6 else 1.0
