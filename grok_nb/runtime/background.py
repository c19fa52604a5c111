"""Work kept off the loop that polls: history writes (batched) and view updates (coalesced), each on one thread.

The loop only hands over snapshots. A job's newer snapshot replaces an older one still waiting,
so a slow disk or a slow widget costs writes or redraws, never polling time. A caller that
must know a write is on disk (the new row, the request id) waits for the returned future.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections.abc import Callable, Hashable
from typing import Any, Protocol

log = logging.getLogger("grok_nb")


class Coalescer:
    """A daemon thread that processes posted items in batches; an item replaces a waiting one with its key."""

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._items: dict[Hashable, tuple[Any, list[concurrent.futures.Future[None]]]] = {}
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def post(self, key: Hashable, item: Any) -> concurrent.futures.Future[None]:
        """Queue ``item`` (replacing a waiting one with the same key); the future resolves once it is processed."""
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("this client is closed")
            _old, futures = self._items.pop(key, (None, []))
            futures.append(future)
            self._items[key] = (item, futures)
            self._cond.notify()
        return future

    def process(self, items: list[Any]) -> list[BaseException | None]:  # pragma: no cover - overridden
        """Handle one batch, in the order the keys were first posted; returns each item's error, or None."""
        raise NotImplementedError

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items and self._closed:
                    return
                batch, self._items = self._items, {}
                self._busy = True
            entries = list(batch.values())
            try:
                errors = self.process([item for item, _ in entries])
            except BaseException as exc:  # reported to whoever waits; the thread goes on
                errors = [exc] * len(entries)
            for (_item, futures), error in zip(entries, errors, strict=True):
                if error is not None:
                    log.error("grok_nb: %s failed: %s", self._thread.name, error)
                for future in futures:
                    if future.cancelled():  # its waiter went away; the write still happened
                        continue
                    if error is None:
                        future.set_result(None)
                    else:
                        future.set_exception(error)
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def flush(self, timeout: float | None = 10.0) -> bool:
        """Wait until everything posted so far is processed; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._items and not self._busy, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Process what is waiting, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)


class HistoryStore(Protocol):
    """What the runtime needs of the run history (``history.store.RunStore``, on SQLite or PostgreSQL)."""

    def apply(self, batch: Any) -> None:
        """Write a batch of inserts, updates and exchanges in one transaction."""

    def update(self, run_id: str, /, **fields: Any) -> None:
        """Write some columns of one run."""

    def keep(self, ids: list[tuple[str, str]], exc: BaseException) -> Exception:
        """Journal (run id, request id) pairs the history could not take; the error says where they are."""

    def remember_file(self, *, file_id: str, base_url: str, sha256: str, size: int, filename: str | None,
                      expires_at: str | None) -> None:
        """Keep an upload's id by the hash of its bytes."""

    def find_files(self, sha256: str, base_url: str) -> list[dict[str, Any]]:
        """Earlier uploads of the same bytes to the same server."""

    def forget_file(self, file_id: str, base_url: str) -> None:
        """An upload the server no longer has."""


class HistoryWriter(Coalescer):
    """Writes run rows and HTTP exchanges to the store, each batch in one transaction."""

    def __init__(self, store: HistoryStore):
        self.store = store
        self._exchange_key = 0
        super().__init__("grok-nb-history")

    def insert(self, row: dict[str, Any]) -> concurrent.futures.Future[None]:
        """A new run row."""
        return self.post(("insert", row["run_id"]), ("insert", row))

    def update(self, run_id: str, row: dict[str, Any]) -> concurrent.futures.Future[None]:
        """A run's latest columns (a newer snapshot replaces one still waiting)."""
        return self.post(("update", run_id), ("update", (run_id, row)))

    def record_request_id(self, run_id: str, request_id: str) -> concurrent.futures.Future[None]:
        """A submit's request id: the future resolves once it is committed (or raises, the id kept in the journal)."""
        return self.post(("request_id", run_id), ("request_id", (run_id, request_id)))

    def exchange(self, run_id: str | None, entry: dict[str, Any]) -> concurrent.futures.Future[None]:
        """One HTTP exchange for the run's log."""
        self._exchange_key += 1
        return self.post(("exchange", self._exchange_key), ("exchange", (run_id, entry)))

    def process(self, items: list[Any]) -> list[BaseException | None]:
        try:
            self._write(items)
            return [None] * len(items)
        except Exception:
            # One bad row must not cost the others: write them one by one, and report only the bad ones.
            errors: list[BaseException | None] = []
            for item in items:
                try:
                    self._write([item])
                    errors.append(None)
                except Exception as exc:
                    errors.append(self._kept(item, exc))
            return errors

    def _kept(self, item: Any, exc: Exception) -> Exception:
        """A paid id that could not be written goes to the journal, whatever failed (the store keeps its own)."""
        op, data = item
        if op != "request_id" or getattr(exc, "request_id", None) == data[1]:
            return exc
        return self.store.keep([data], exc)

    def _write(self, items: list[Any]) -> None:
        # New rows first, then updates, then the exchange log, in one transaction.
        order = {"insert": 0, "request_id": 1, "update": 2, "exchange": 3}
        batch = []
        for op, data in sorted(items, key=lambda item: order[item[0]]):
            if op == "insert":
                batch.append(("insert", data))
            elif op == "update":
                run_id, fields = data
                batch.append(("update", {**fields, "run_id": run_id}))
            elif op == "request_id":
                run_id, request_id = data
                batch.append(("update", {"run_id": run_id, "request_id": request_id, "status": "pending"}))
            else:
                run_id, entry = data
                batch.append(("add_exchange", {**entry, "run_id": run_id}))
        self.store.apply(batch)


class ViewDispatcher(Coalescer):
    """Calls views' update callbacks with a run's latest state; a broken view never stops a job."""

    def __init__(self) -> None:
        super().__init__("grok-nb-views")

    def notify(self, callback: Callable[[Any], Any], run: Any) -> None:
        """Call ``callback(run)`` soon, on the view thread (only the newest call per callback and run)."""
        self.post((id(callback), run.run_id), (callback, run))

    def process(self, items: list[Any]) -> list[BaseException | None]:
        for callback, run in items:
            try:
                callback(run)
            except Exception:
                log.exception("grok_nb: an on_update callback failed")
        return [None] * len(items)
