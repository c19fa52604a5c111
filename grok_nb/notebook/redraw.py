"""Redraw a live view at most N times a second, from any thread, filed under the cell running now."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Callable
from typing import Any

from .throttle import Throttle

#: A view refreshes at most this often (Jupyter Server drops iopub past ~1000 msgs/s).
MAX_REFRESH_PER_S = 4.0


def in_current_cell(fn: Callable[[], Any]) -> None:
    """Run a view update in an empty context, so ipykernel files its messages under the cell running *now*.

    The job's task inherited the context of the cell that started it; that cell may have returned
    long ago, and front ends such as nbclient drop messages whose parent is not the running cell.
    """
    contextvars.Context().run(fn)


class Redraw:
    """Calls ``draw()`` now or after the throttle's interval; the last state offered is always drawn."""

    def __init__(self, draw: Callable[[], Any], max_rate: float = MAX_REFRESH_PER_S,
                 clock: Callable[[], float] = time.monotonic):
        self._draw = draw
        self._clock = clock
        self._throttle = Throttle(1.0 / max_rate)
        self._lock = threading.Lock()

    def request(self, force: bool = False) -> None:
        """Ask for a draw (``force``: now, e.g. for a final state)."""
        with self._lock:
            wait = self._throttle.offer(self._clock(), force=force)
        if wait is None:
            in_current_cell(self._draw)
        elif wait != float("inf"):
            self._later(wait)

    def _later(self, delay: float) -> None:
        try:  # on the client's loop thread: a loop timer; anywhere else: a thread timer
            asyncio.get_running_loop().call_later(delay, self._flush)
        except RuntimeError:
            timer = threading.Timer(delay, self._flush)
            timer.daemon = True
            timer.start()

    def _flush(self) -> None:
        with self._lock:
            due = self._throttle.flushed(self._clock())
        if due:
            in_current_cell(self._draw)
