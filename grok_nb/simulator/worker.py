"""Render workers: ``python -m grok_nb.simulator.worker`` processes fed one JSON job per line.

Plain subprocesses rather than multiprocessing: "spawn" would re-run the user's own
script in every worker, and "fork" is unsafe from a threaded notebook kernel.
"""

from __future__ import annotations

import concurrent.futures
import json
import queue
import subprocess
import sys
import threading
from typing import Any


class WorkerPool:
    """``size`` worker processes; ``submit(job)`` returns a Future of the render's result dict."""

    def __init__(self, size: int = 2):
        self.size = max(1, size)
        self._idle: queue.Queue[subprocess.Popen[str]] = queue.Queue()
        self._all: list[subprocess.Popen[str]] = []
        self._lock = threading.Lock()
        self._threads = concurrent.futures.ThreadPoolExecutor(self.size, thread_name_prefix="grok-nb-render")
        for _ in range(self.size):
            self._idle.put(self._spawn())

    def _spawn(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "grok_nb.simulator.worker"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        with self._lock:
            self._all.append(proc)
        return proc

    def _run(self, job: dict[str, Any]) -> dict[str, Any]:
        proc = self._idle.get()
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps(job) + "\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("render worker died")
            answer: dict[str, Any] = json.loads(line)
            return answer
        except (OSError, RuntimeError, ValueError) as exc:
            proc.kill()
            proc = self._spawn()
            return {"crashed": f"{type(exc).__name__}: {exc}"}
        finally:
            self._idle.put(proc)

    def submit(self, job: dict[str, Any]) -> concurrent.futures.Future[dict[str, Any]]:
        """Queue one render; the Future's value is the worker's answer dict."""
        return self._threads.submit(self._run, job)

    def shutdown(self) -> None:
        """Stop accepting work and end every worker process."""
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            for proc in self._all:
                if proc.poll() is None:
                    proc.kill()
            for proc in self._all:
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass


def main() -> None:
    """Serve jobs from stdin until it closes; answer each on one stdout line."""
    from . import render  # heavy: PyAV, NumPy, Pillow, loaded in the worker process only

    for line in sys.stdin:
        job: dict[str, Any] = json.loads(line)
        try:
            answer: dict[str, Any] = {"ok": render.execute(job)}
        except render.RenderRefused as exc:
            answer = {"refused": [exc.code, exc.message]}
        except Exception as exc:  # reported as the service's internal error, never a dead worker
            answer = {"crashed": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
