"""Batches: many jobs sent as one batch, outside the key's rate limit, followed until every result is in.

``client.batch(name=...)`` gives a builder: ``generate``/``edit``/``extend`` take the client's
arguments and are validated at once (no I/O); ``submit()`` (or leaving its ``with`` block)
uploads large inputs, reserves the whole estimate in the budget, creates the batch, records one
history row per request (``batch_id`` set, ``batch_request_id`` = the run id) and adds the
requests in calls of the service's size. A follower task then reads the batch's counters, reads
results page by page as they arrive (in no fixed order: matched by ``batch_request_id``) and
downloads each video at once, because batch result URLs live one hour.

A request added by a call that got no answer is never re-added: the batch's request listing
says whether it arrived; if it did not, the row is ``uncertain``, like a single submit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from ..api import batch as contract
from ..api.batch import BatchResult, BatchState, parse_batch, parse_request_states, parse_results
from ..api.validation import JobSpec
from ..errors import (
    APIError,
    DownloadError,
    GrokError,
    JobError,
    JobFailedError,
    ModeratedError,
    NoVideoError,
    ValidationError,
    error_from_response,
    parse_retry_after,
)
from ..history.owners import owner_alive
from ..jobs.budget import Reservation
from ..jobs.lifecycle import Status, count_cost
from ..jobs.results import JobHandle, Run
from .transport import Answer, is_mp4

log = logging.getLogger("grok_nb")

#: How often a batch's counters are read: 5 % of the time waited, between these (real seconds, scaled for a simulator).
POLL_MIN_S, POLL_MAX_S, POLL_SHARE = 5.0, 300.0, 0.05
#: Results read per page.
PAGE_SIZE = 100
#: How often the counters are read again when all results are in but the counters still show some pending.
COUNTER_READS = 3
#: Downloads at once per batch.
DOWNLOADS_AT_ONCE = 4
#: Attempts for a batch call refused with 429 or 5xx, or never sent (these never started a job).
CALL_ATTEMPTS = 5
CANCELLED_NOTE = "cancelled with its batch before it ran; nothing was billed"
UNCERTAIN_NOTE = ("The call adding this request to batch {batch_id} got no answer, and the batch's request listing "
                  "does not show it. It was not added again, to avoid paying twice; check the batch in the xAI "
                  "console before sending it again.")

SpecFor = Callable[..., JobSpec]
Listener = Callable[[Run], Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


class BatchJob:
    """One batch: a builder before ``submit()``, then a follower of its results (async core)."""

    def __init__(self, engine: Any, *, name: str | None = None, spec_for: SpecFor | None = None,
                 uploads: Any = None, backend: str = "xai", tags: Sequence[str] = (), speed: float = 1.0,
                 on_update: Listener | None = None, on_progress: Callable[[BatchState], Any] | None = None):
        self.name = contract.check_name(name if name is not None else f"grok_nb-{_now():%Y%m%d-%H%M%S}")
        self.engine = engine
        self._spec_for = spec_for
        self._uploads = uploads
        self.backend = backend
        self.tags = list(tags)
        self.speed = max(1e-9, speed)
        self.listeners: list[Listener] = [on_update] if on_update else []
        self.progress_listeners: list[Callable[[BatchState], Any]] = [on_progress] if on_progress else []
        self._run_listeners: dict[str, list[Listener]] = {}
        self.batch_id: str | None = None
        self.state: BatchState | None = None
        self.runs: list[Run] = []
        self._specs: dict[str, JobSpec] = {}
        self._reservations: dict[str, Reservation] = {}
        self._waiters: dict[str, asyncio.Future[Run]] = {}
        self._downloads: set[asyncio.Task[None]] = set()
        self._token: str | None = None
        self._task: asyncio.Task[list[Run]] | None = None
        self._submitted = False
        self._cancelled = False

    # -- the builder (validation only, nothing sent) ------------------------------------------------
    def generate(self, *args: Any, **kwargs: Any) -> Run:
        """Add a generation; the arguments and checks of ``client.generate``."""
        return self._add("generate", args, kwargs)

    def edit(self, *args: Any, **kwargs: Any) -> Run:
        """Add an edit; the arguments and checks of ``client.edit``."""
        return self._add("edit", args, kwargs)

    def extend(self, *args: Any, **kwargs: Any) -> Run:
        """Add an extension; the arguments and checks of ``client.extend``."""
        return self._add("extend", args, kwargs)

    def _add(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Run:
        if self._submitted:
            raise ValidationError("batch", self.name, "a batch not yet submitted: start a new client.batch() "
                                                      "for more requests")
        if self._spec_for is None:
            raise ValidationError("batch", self.batch_id, "a new batch: a resumed one takes no more requests")
        for name in ("wait", "on_update"):
            if name in kwargs:
                raise ValidationError(name, kwargs[name], "not an argument of a batch request (b.wait() waits)")
        tags = kwargs.pop("tags", ())
        spec = self._spec_for(kind, *args, **kwargs)
        run = Run(run_id=uuid.uuid4().hex, kind=spec.kind, model=spec.model, prompt=spec.params.get("prompt"),
                  params=spec.params, backend=self.backend, estimate=spec.estimate, parent_run_id=spec.parent_run_id,
                  tags=[*self.tags, *tags], duration=spec.params.get("duration"))
        self.runs.append(run)
        self._specs[run.run_id] = spec
        return run

    @property
    def estimate_usd(self) -> float:
        """The estimated total of the requests added (billed at standard prices: no batch discount for video)."""
        return sum(r.estimate.usd for r in self.runs if r.estimate is not None)

    # -- sending --------------------------------------------------------------------------------------
    async def submit(self) -> BatchJob:
        """Upload large inputs, reserve the budget, create the batch, record the rows, add the requests."""
        if self._submitted:
            return self
        if not self.runs:
            raise ValidationError("batch", self.name, "at least one b.generate(), b.edit() or b.extend() "
                                                      "before it is submitted")
        # The whole batch fits the budget or nothing is sent (not even an upload).
        reservations = self.engine.budget.reserve([r.estimate.usd if r.estimate else 0.0 for r in self.runs])
        self._submitted = True
        self._reservations = {run.run_id: res for run, res in zip(self.runs, reservations, strict=True)}
        try:
            if self._uploads is not None:
                for run in self.runs:
                    self._specs[run.run_id] = await self._uploads.externalize(self._specs[run.run_id])
            items = [contract.request_item(run.run_id, self._specs[run.run_id].kind, self._specs[run.run_id].body)
                     for run in self.runs]
            calls = contract.split_requests(items)  # an oversized request is refused before the batch is made
            answer = await self._call("POST", contract.BATCHES_PATH, {"name": self.name})
            if not answer.ok:
                raise self._error(answer, "creating the batch")
            try:
                self.state = parse_batch(answer.body)
            except ValueError as exc:
                raise APIError(f"the batch was created but its answer is not usable ({exc})",
                               status_code=answer.status_code or 0) from None
        except BaseException:
            for reservation in self._reservations.values():
                self.engine.budget.release(reservation)
            self._reservations.clear()
            self._submitted = False  # nothing was sent: it can be fixed and submitted again
            raise
        self.batch_id = self.state.batch_id
        loop = asyncio.get_running_loop()
        for run in self.runs:
            run.batch_id = self.batch_id
            self._waiters[run.run_id] = loop.create_future()
        # Every row (with its batch id) is on disk before a request is added.
        await asyncio.gather(*(asyncio.wrap_future(self.engine.writer.insert(self._row(run))) for run in self.runs))
        by_id = {run.run_id: run for run in self.runs}
        for call in calls:
            ids = [item["batch_request_id"] for item in call]
            answer = await self._call("POST", f"{contract.BATCHES_PATH}/{self.batch_id}/requests",
                                      {"batch_requests": call})
            if answer.ok:
                await self._mark_sent([by_id[i] for i in ids])
            elif answer.status_code is None or answer.status_code >= 500:
                await self._reconcile([by_id[i] for i in ids])
            else:
                error = self._error(answer, "adding requests")
                for i in ids:
                    await self._conclude(by_id[i], Status.REJECTED, error)
        self._follow()
        return self

    async def _mark_sent(self, runs: Sequence[Run]) -> None:
        now = _now()
        for run in runs:
            run.status, run.submitted_at = Status.PENDING, now
        await asyncio.gather(*(asyncio.wrap_future(self.engine.writer.update(r.run_id, self._row(r))) for r in runs))
        self._notify(*runs)

    async def _reconcile(self, runs: Sequence[Run]) -> None:
        """Runs whose adding call got no answer: the batch's listing says whether they arrived."""
        answer = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}/requests")
        listed = parse_request_states(answer.body) if answer.ok else {}
        arrived = [r for r in runs if r.run_id in listed]
        await self._mark_sent(arrived)
        for run in runs:
            if run.run_id not in listed:
                error = JobError(UNCERTAIN_NOTE.format(batch_id=self.batch_id), request_id=None, run=run)
                await self._conclude(run, Status.UNCERTAIN, error)

    async def _call(self, method: str, path: str, body: Any = None) -> Answer:
        """One batch API call (outside the key's rate limit); 429/5xx/never-sent retried, and logged."""
        for attempt in range(CALL_ATTEMPTS):
            answer: Answer = await self.engine.api.request(method, path, body)
            self.engine.writer.exchange(None, {
                "at": _now().isoformat(), "method": method, "path": path, "status": answer.status_code,
                "elapsed_ms": answer.elapsed_ms, "summary": f"batch {self.batch_id or self.name}"})
            # A POST that may have arrived (no answer, 5xx) is never resent: the caller reconciles.
            may_have_arrived = method == "POST" and not answer.never_sent and (
                answer.status_code is None or answer.status_code >= 500)
            again = answer.never_sent or answer.status_code == 429 or (
                method == "GET" and (answer.status_code is None or answer.status_code >= 500))
            if answer.ok or may_have_arrived or not again or attempt == CALL_ATTEMPTS - 1:
                return answer
            wait = parse_retry_after(answer.headers.get("retry-after")) if answer.headers is not None else None
            await asyncio.sleep(min(30.0 / self.speed, wait if wait is not None else 0.5 * 2**attempt / self.speed))
        raise AssertionError("unreachable")

    def _error(self, answer: Answer, doing: str) -> GrokError:
        if answer.status_code is None:
            return APIError(f"no answer while {doing} ({answer.problem})", status_code=0)
        return error_from_response(answer.status_code, answer.body, headers=answer.headers,
                                   secret=getattr(self.engine, "secret", None))

    # -- following --------------------------------------------------------------------------------
    def _follow(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run_follower(),
                                                               name=f"grok-nb-batch-{self.batch_id}")
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _open(self) -> list[Run]:
        return [r for r in self.runs if not r.status.final]

    async def _run_follower(self) -> list[Run]:
        started = time.monotonic()
        seen = -1
        try:
            for run in self.runs:  # resumed: a download that failed is tried again while its URL may live
                if run.status is Status.DOWNLOAD_FAILED and run.url:
                    self._start_download(run, run.url)
            while self._open():
                answer = await self._read_state()
                if answer.ok:
                    assert self.state is not None
                    if self.state.finished != seen or self.state.done:  # results are read when there are new ones
                        seen = self.state.finished
                        await self._read_results()
                    if self.state.done and self._pending_results():
                        self._token = None
                        await self._read_results()  # once more from the start: nothing is skipped
                        for run in self._pending_results():
                            await self._conclude(run, Status.FAILED, JobFailedError(
                                "no_result", f"batch {self.batch_id} ended without a result for this request",
                                request_id=None, run=run))
                elif answer.status_code == 404:
                    for run in self._pending_results():
                        await self._conclude(run, Status.FAILED, self._error(answer, "reading the batch"))
                if not self._pending_results():
                    break
                waited = time.monotonic() - started
                await asyncio.sleep(min(POLL_MAX_S, max(POLL_MIN_S, POLL_SHARE * waited * self.speed)) / self.speed)
            for attempt in range(COUNTER_READS):
                if self.state is None or self.state.done:
                    break
                if attempt:
                    await asyncio.sleep(POLL_MIN_S / self.speed)
                # The last results came in after the counters were read (and counters may lag the
                # results): read them again, so that the batch's progress agrees with its runs.
                if not (await self._read_state()).ok:  # gone (404) or failing: nothing more to learn
                    break
            if self._downloads:
                await asyncio.gather(*list(self._downloads), return_exceptions=True)
        except asyncio.CancelledError:
            # The client closed: rows stay pending in the history; client.resume() picks the batch up again.
            for task in list(self._downloads):
                task.cancel()
            raise
        return list(self.runs)

    async def _read_state(self) -> Answer:
        """Read the batch's counters and pass them to the progress listeners."""
        answer = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}")
        if answer.ok:
            self.state = parse_batch(answer.body)
            for listener in self.progress_listeners:  # on the view thread, newest counters only
                self.engine.views.post((id(listener), "batch"), (listener, self.state))
        return answer

    def _pending_results(self) -> list[Run]:
        """Runs still waiting for their result (not those whose video is downloading)."""
        return [r for r in self.runs if r.status in (Status.SUBMITTING, Status.PENDING) and r.url is None]

    async def _read_results(self) -> None:
        wanted = {r.run_id: r for r in self._pending_results()}
        while wanted:
            query = f"?limit={PAGE_SIZE}" + (f"&pagination_token={self._token}" if self._token else "")
            answer = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}/results{query}")
            if not answer.ok:
                return
            page, token = parse_results(answer.body)
            for result in page:
                run = wanted.pop(result.batch_request_id, None)
                if run is not None:
                    await self._apply(run, result)
            if token is None:
                # No more pages: start from the beginning next time unless everything has been read.
                self._token = None
                return
            if not page:
                self._token = token  # nothing new yet: continue from here next time
                return
            self._token = token

    async def _apply(self, run: Run, result: BatchResult) -> None:
        run.take(progress=100, cost_usd=result.cost_usd, duration=result.duration, model=result.model,
                 url=result.url if result.ok else None)
        if result.ok and result.url:
            self._start_download(run, result.url)
        elif result.moderated:
            await self._conclude(run, Status.MODERATED, ModeratedError(request_id=None, run=run))
        elif result.cancelled:
            await self._conclude(run, Status.REJECTED, JobError(f"{CANCELLED_NOTE} ({result.error_message})",
                                                                request_id=None, run=run))
        elif result.error_code == "no_video":
            await self._conclude(run, Status.FAILED, NoVideoError(result.error_message, request_id=None, run=run))
        else:
            await self._conclude(run, Status.FAILED, JobFailedError(result.error_code, result.error_message,
                                                                    request_id=None, run=run))

    def _start_download(self, run: Run, url: str) -> None:
        task = asyncio.get_running_loop().create_task(self._download(run, url))
        self._downloads.add(task)
        task.add_done_callback(self._downloads.discard)

    @property
    def _slots(self) -> asyncio.Semaphore:
        if not hasattr(self, "_semaphore"):
            self._semaphore = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        return self._semaphore

    async def _download(self, run: Run, url: str) -> None:
        """Fetch one result at once (its URL lives one hour): done, or download_failed while the URL may live."""
        dest = self.engine.cache_dir / f"batch-{run.run_id}.mp4"
        part = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
        error: GrokError | None = None
        async with self._slots:
            try:
                for attempt in range(CALL_ATTEMPTS):
                    try:
                        answer = await self.engine.api.download(url, part)
                    except OSError as exc:
                        error = DownloadError(f"could not write the video to {self.engine.cache_dir} "
                                              f"({exc.strerror or exc}); batch result URLs live 1 hour: free some "
                                              "space and call client.resume() soon", request_id=None, run=run)
                        break
                    self.engine.writer.exchange(run.run_id, {
                        "at": _now().isoformat(), "method": "GET", "path": url.split("?")[0][-200:],
                        "status": answer.status_code, "elapsed_ms": answer.elapsed_ms,
                        "summary": f"{answer.body} bytes" if answer.ok else str(answer.problem or answer.status_code)})
                    if answer.ok and is_mp4(part):
                        os.replace(part, dest)
                        run.path, error = dest, None
                        break
                    gone = answer.status_code in (401, 403, 404, 410)
                    error = DownloadError(
                        "the batch result's URL has expired (they live 1 hour); run the request again" if gone
                        else f"could not download the video ({answer.problem or answer.status_code}); "
                             "client.resume() tries again while its URL lives (1 hour)", request_id=None, run=run)
                    if gone:
                        break
                    await asyncio.sleep(0.5 * 2**attempt / self.speed)
            finally:
                part.unlink(missing_ok=True)
        await self._conclude(run, Status.DONE if error is None else Status.DOWNLOAD_FAILED, error)

    async def _conclude(self, run: Run, status: Status, error: GrokError | None) -> None:
        run.status, run.error, run.stopped = status, error, False
        if status.final:
            run.finished_at = _now()
            if run.submitted_at is not None:
                run.latency_s = round((run.finished_at - run.submitted_at).total_seconds(), 3)
            # The same rule as single jobs: a server's figure counts only when it can be right.
            estimate = run.estimate.usd if run.estimate else 0.0
            counted = count_cost(status, estimate, run.cost_actual_usd, run.cost_reported)
            run.cost_budget_usd, run.cost_budget_basis = counted.usd, counted.basis
            reservation = self._reservations.pop(run.run_id, None)
            if reservation is not None:
                self.engine.budget.settle(reservation, counted.usd)
        await asyncio.shield(asyncio.wrap_future(self.engine.writer.update(run.run_id, self._row(run))))
        self._notify(run)
        if status.final and (self.listeners or self._run_listeners.get(run.run_id)):
            # Whoever waits on the run sees its views already showing how it ended (as the engine does).
            await asyncio.shield(asyncio.to_thread(self.engine.views.flush, 5.0))
        waiter = self._waiters.get(run.run_id)
        if status.final and waiter is not None and not waiter.done():
            waiter.set_result(run)

    def _row(self, run: Run) -> dict[str, Any]:
        return run.to_row(self.engine.base_url)

    def listen(self, run: Run, listener: Listener) -> None:
        """Call ``listener(run)`` (on the view thread) whenever this one run changes."""
        self._run_listeners.setdefault(run.run_id, []).append(listener)

    def _notify(self, *runs: Run) -> None:
        for run in runs:
            for listener in [*self.listeners, *self._run_listeners.get(run.run_id, [])]:
                self.engine.views.notify(listener, run)

    # -- what users call --------------------------------------------------------------------------
    async def wait(self, timeout: float | None = None) -> list[Run]:
        """Every run of the batch once all are finished (in the order they were added)."""
        if not self._submitted:
            await self.submit()
        if self._task is None:
            return list(self.runs)
        return await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def refresh(self) -> BatchState | None:
        """Read the batch's counters now."""
        if self.batch_id is None:
            return None
        await self._read_state()
        return self.state

    async def cancel(self) -> BatchState | None:
        """Cancel what has not run yet (not billed); finished results are still read and downloaded."""
        if self.batch_id is None:
            self._submitted = True  # nothing was sent: nothing to cancel, nothing more to add
            for run in self.runs:
                await self._conclude_unsent(run)
            return None
        answer = await self._call("POST", f"{contract.BATCHES_PATH}/{self.batch_id}:cancel")
        if not answer.ok:
            raise self._error(answer, "cancelling the batch")
        self._cancelled = True
        self.state = parse_batch(answer.body)
        self._follow()
        return self.state

    async def _conclude_unsent(self, run: Run) -> None:
        run.status, run.error = Status.REJECTED, JobError(CANCELLED_NOTE, request_id=None, run=run)

    def handle(self, run: Run) -> JobHandle:
        """A handle that waits for one run of the batch (what ``client.resume()`` returns)."""
        loop = asyncio.get_running_loop()
        waiter = self._waiters.setdefault(run.run_id, loop.create_future())
        if run.status.final and not waiter.done():
            waiter.set_result(run)
        return JobHandle(run, loop.create_task(_wait_for(waiter)), loop)

    @property
    def progress(self) -> dict[str, Any]:
        """Where the batch stands: counters from the server, and the runs' own statuses here."""
        state = self.state
        statuses: dict[str, int] = {}
        for run in self.runs:
            statuses[run.status.value] = statuses.get(run.status.value, 0) + 1
        return {"batch_id": self.batch_id, "name": self.name, "requests": len(self.runs),
                "num_pending": state.num_pending if state else None,
                "num_success": state.num_success if state else None,
                "num_error": state.num_error if state else None,
                "num_cancelled": state.num_cancelled if state else None,
                "statuses": statuses, "estimate_usd": round(self.estimate_usd, 6)}

    def __repr__(self) -> str:
        done = sum(1 for r in self.runs if r.status.final)
        return (f"<Batch {self.name!r} id={self.batch_id} {done}/{len(self.runs)} finished "
                f"est=${self.estimate_usd:.2f}>")

    async def aclose(self) -> None:
        """Stop following (the batch goes on at the server; client.resume() picks it up)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def __aenter__(self) -> BatchJob:
        return self

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            await self.submit()

    # -- resuming ---------------------------------------------------------------------------------
    @classmethod
    async def attach(cls, engine: Any, batch_id: str, rows: Sequence[dict[str, Any]], *, backend: str,
                     speed: float = 1.0) -> BatchJob:
        """Follow an existing batch again (after a restart) from its history rows; creates nothing."""
        job = cls(engine, name=f"resumed {batch_id}"[: contract.MAX_NAME_LENGTH], backend=backend, speed=speed)
        job.batch_id, job._submitted = batch_id, True
        job.runs = [Run.from_row(row) for row in rows]
        loop = asyncio.get_running_loop()
        for run in job.runs:
            run.error = None
            job._waiters[run.run_id] = loop.create_future()
            await asyncio.to_thread(engine.store.update, run.run_id, owner=engine.owner)
        submitting = [r for r in job.runs if r.status is Status.SUBMITTING]
        if submitting:  # cut off while being added: the listing says which arrived; none is added again
            await job._reconcile(submitting)
        job._follow()
        return job


async def _wait_for(waiter: asyncio.Future[Run]) -> Run:
    return await asyncio.shield(waiter)


def resumable_batches(rows: Sequence[dict[str, Any]], me: str, followed: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Unfinished batch rows by batch id, leaving batches this client follows and rows another live process owns."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        batch_id = row.get("batch_id")
        if not batch_id or batch_id in followed:
            continue
        owner = row.get("owner")
        if owner and owner != me and owner_alive(owner):
            continue  # another notebook follows it
        groups.setdefault(batch_id, []).append(row)
    return groups


class SyncBatch:
    """The blocking face of a :class:`BatchJob`: ``with client.batch(name=...) as b: ...``, then ``b.wait()``."""

    def __init__(self, job: BatchJob, call: Callable[..., Any]):
        self._job = job
        self._call = call

    def generate(self, *args: Any, **kwargs: Any) -> Run:
        """Add a generation; the arguments and checks of ``client.generate``."""
        return self._job.generate(*args, **kwargs)

    def edit(self, *args: Any, **kwargs: Any) -> Run:
        """Add an edit; the arguments and checks of ``client.edit``."""
        return self._job.edit(*args, **kwargs)

    def extend(self, *args: Any, **kwargs: Any) -> Run:
        """Add an extension; the arguments and checks of ``client.extend``."""
        return self._job.extend(*args, **kwargs)

    def submit(self) -> SyncBatch:
        """Create the batch and add its requests (returns once they are added, not when they are done)."""
        self._call(self._job.submit)
        return self

    def wait(self, timeout: float | None = None) -> list[Run]:
        """Every run once all are finished (Ctrl+C stops waiting; the batch goes on: client.resume())."""
        try:
            return self._call(lambda: self._job.wait(timeout))  # type: ignore[no-any-return]
        except KeyboardInterrupt:
            print(f"grok_nb: stopped waiting for batch {self.batch_id}; it goes on at the server and this client "
                  "keeps reading its results. b.wait() again, or client.resume() in a new kernel.", flush=True)
            raise

    def cancel(self) -> BatchState | None:
        """Cancel what has not run yet."""
        return self._call(self._job.cancel)  # type: ignore[no-any-return]

    def refresh(self) -> BatchState | None:
        """Read the batch's counters now."""
        return self._call(self._job.refresh)  # type: ignore[no-any-return]

    @property
    def batch_id(self) -> str | None:
        """The service's id of the batch, once created."""
        return self._job.batch_id

    @property
    def name(self) -> str:
        """The batch's name."""
        return self._job.name

    @property
    def runs(self) -> list[Run]:
        """The runs, in the order they were added (live: they fill in as results arrive)."""
        return self._job.runs

    @property
    def state(self) -> BatchState | None:
        """The last counters read from the server."""
        return self._job.state

    @property
    def progress(self) -> dict[str, Any]:
        """Where the batch stands (see :attr:`BatchJob.progress`)."""
        return self._job.progress

    @property
    def estimate_usd(self) -> float:
        """The estimated total (standard prices)."""
        return self._job.estimate_usd

    def __repr__(self) -> str:
        return repr(self._job)

    def __enter__(self) -> SyncBatch:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.submit()

