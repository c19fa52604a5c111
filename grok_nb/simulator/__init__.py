"""An embedded simulator of xAI's video API: a real HTTP server on loopback that renders real MP4s."""

from .server import SimulatorServer, embedded, serve
from .state import Simulator, SimulatorConfig, real_latency_s

__all__ = ["Simulator", "SimulatorConfig", "SimulatorServer", "embedded", "real_latency_s", "serve"]
