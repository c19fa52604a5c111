"""Batches: many jobs sent as one batch, outside the key's rate limit, followed until every result is in.

``client.batch(name=...)`` gives a builder: ``generate``/``edit``/``extend`` take the client's
arguments and are validated at once (no I/O); ``submit()`` (or leaving its ``with`` block)
uploads large inputs, reserves the whole estimate in the budget, creates the batch, records one
history row per request (``batch_id`` set, ``batch_request_id`` = the run id) and adds the
requests in calls of the service's size. A follower task then reads the batch's counters, reads
results page by page as they arrive (in no fixed order: matched by ``batch_request_id``) and
downloads each video at once, because batch result URLs live one hour.

Each request is a job of the client's engine like any other: every call goes through the one
request path (``sender.py``: the retry rule, redacted exchanges; batch calls take no slot of the
key's rate limit), every video through the one download (checked as a whole MP4), every request
ends in the engine's one conclusion (cost, latency on the monotonic clock, the history, the views).

The follower always ends: a page token seen before ends a pass over the results; a batch past its
expiry or cancelled ends its requests still without a result (``expired``, ``cancelled``); a request
added by a call that got no answer is never added again, and it is ``uncertain`` only once the
request listing (asked again while it fails) and a full read of the results both say it is not there.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from ..api import batch as contract
from ..api.batch import BatchResult, BatchState, parse_batch, parse_request_states, parse_results
from ..api.validation import JobSpec
from ..errors import (
    APIError,
    BatchWaitTimeout,
    GrokError,
    JobCancelledError,
    JobError,
    JobExpiredError,
    JobFailedError,
    ModeratedError,
    NotFoundError,
    NoVideoError,
    ValidationError,
    error_from_response,
)
from ..history.owners import owner_alive
from ..history.rows import run_of
from ..jobs.results import LAST_LOOK_S, JobHandle, Run
from ..jobs.status import Status
from .batch_requests import BatchRequests
from .sender import Reading, Reply, problem_of
from .transport import Answer

if TYPE_CHECKING:  # the engine imports nothing of batches; a batch drives the engine's jobs
    from .engine import Engine, Job
    from .files import Uploads

log = logging.getLogger("grok_nb")

#: How often a batch's counters are read: 5 % of the time waited, between these (real seconds, scaled for a simulator).
POLL_MIN_S, POLL_MAX_S, POLL_SHARE = 5.0, 300.0, 0.05
#: Results read per page.
PAGE_SIZE = 100
#: How often the counters are read again when all results are in but the counters still show some pending.
COUNTER_READS = 3
#: A batch read that began this recently (seconds) is the "one more look" of every run of the batch asked after it.
SHARED_LOOK_S = 2.0
#: How long past a batch's cancel or expiry time its requests without a result are still waited for (real seconds,
#: scaled for a simulator): a request that was running when the batch was cancelled may still finish.
END_GRACE_S = 600.0
#: How long results URLs of a batch live, as errors say it.
RESULT_LIFETIME = "1 hour (batch results)"
CANCELLED_NOTE = "cancelled with its batch before it ran; nothing was billed for it"
UNCERTAIN_NOTE = ("The call adding this request to batch {batch_id} got no answer, and neither the batch's request "
                  "listing nor its results show it. It was not added again, to avoid paying twice; check the batch "
                  "in the xAI console before sending it again.")
ENDED_NOTES = {
    "cancelled": ("batch {batch_id} was cancelled at {when} and no result came for this request: it did not run, "
                  "and nothing was billed for it"),
    "expired": ("batch {batch_id} expired at {when} with no result for this request: it may never have run, and "
                "then it was not billed; its estimate (${usd:.2f}) stays counted against the budget until the xAI "
                "console says otherwise"),
}

SpecFor = Callable[..., JobSpec]
Listener = Callable[[Run], Any]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _read(answer: Answer, doing: str, secret: str | None) -> Reading:
    """A batch call's answer: its body when usable, else the problem and an error saying what was being done."""
    problem = problem_of(answer)
    summary = f"{doing}: {answer.status_code}" if answer.status_code is not None else f"{doing}: {answer.problem}"
    if problem is None:
        return Reading(answer.body, None, None, summary)
    if answer.status_code is None or answer.status_code < 400:
        return Reading(None, problem, APIError(f"no usable answer while {doing} ({answer.problem})",
                                               status_code=answer.status_code or 0), summary)
    return Reading(None, problem, error_from_response(answer.status_code, answer.body, headers=answer.headers,
                                                      secret=secret), summary)


class BatchJob(BatchRequests):
    """One batch: a builder before ``submit()``, then a follower of its results (async core)."""

    def __init__(self, engine: Engine, *, name: str | None = None, spec_for: SpecFor | None = None,
                 uploads: Uploads | None = None, backend: str = "xai", tags: Sequence[str] = (), speed: float = 1.0,
                 on_update: Listener | None = None, on_progress: Callable[[BatchState], Any] | None = None,
                 takes: int = 1):
        self.name = contract.check_name(name if name is not None else f"grok_nb-{_now():%Y%m%d-%H%M%S}")
        self.engine = engine
        self._spec_for = spec_for
        self._uploads = uploads
        self.backend = backend
        self.tags = list(tags)
        self.speed = max(1e-9, speed)
        self.takes = takes  # each request is made this many times (run.take 1, 2, ...)
        self.listeners: list[Listener] = [on_update] if on_update else []
        self.progress_listeners: list[Callable[[BatchState], Any]] = [on_progress] if on_progress else []
        self._run_listeners: dict[str, list[Listener]] = {}
        self.batch_id: str | None = None
        self.state: BatchState | None = None
        self.runs: list[Run] = []
        self._specs: dict[str, JobSpec] = {}
        self._jobs: dict[str, Job] = {}
        self._unconfirmed: set[str] = set()  # added by a call that got no answer: the listing or a result decides
        self._listing_failed_since: float | None = None
        self._downloads: set[asyncio.Task[Run]] = set()
        self._token: str | None = None
        self._task: asyncio.Task[list[Run]] | None = None
        self._items: list[dict[str, Any]] = []
        self._submitted = False  # its money is held: no more requests
        self._sending = False  # its batch is being made (or was)
        # The follower's passes (a read of the batch and its new results), for a caller's last look.
        self._passes_started = self._passes_ended = 0
        self._last_pass_began = float("-inf")
        self._pass_ended = asyncio.Event()
        self._wake = asyncio.Event()

    # -- the builder (validation only, nothing sent; generate/edit/extend are BatchRequests') ---------
    def _add(self, kind: str, arguments: dict[str, Any]) -> Run:
        if self._submitted:
            raise ValidationError("batch", self.name, "a batch not yet submitted: start a new client.batch() "
                                                      "for more requests")
        if self._spec_for is None:
            raise ValidationError("batch", self.batch_id, "a new batch: a resumed one takes no more requests")
        tags = arguments.pop("tags", ())
        spec = self._spec_for(kind, **arguments)
        runs = [Run(run_id=uuid.uuid4().hex, kind=spec.kind, model=spec.model, prompt=spec.params.get("prompt"),
                    params=spec.params, backend=self.backend, estimate=spec.estimate,
                    parent_run_id=spec.parent_run_id, tags=[*self.tags, *tags], duration=spec.params.get("duration"),
                    take=take) for take in range(1, self.takes + 1)]
        for run in runs:
            self.runs.append(run)
            self._specs[run.run_id] = spec
        return runs[0]

    @property
    def estimate_usd(self) -> float:
        """The estimated total of the requests added (billed at standard prices: no batch discount for video)."""
        return sum(r.estimate.usd for r in self.runs if r.estimate is not None)

    # -- the one request path -------------------------------------------------------------------------
    async def _call(self, method: str, path: str, doing: str, body: Any = None) -> Reply:
        """One batch call, outside the key's rate limit, under the retry rule every request follows."""
        return await self.engine.sender.send(
            self.engine.unattached, method, path, functools.partial(_read, doing=doing, secret=self.engine.secret),
            started=time.monotonic(), body=body)

    def _job(self, run: Run) -> Job:
        job = self._jobs.get(run.run_id)
        if job is None:
            job = self._jobs[run.run_id] = self.engine.job(run)
        return job

    # -- sending --------------------------------------------------------------------------------------
    def reserve(self) -> None:
        """Hold the whole batch's estimate in the budget, or raise BudgetExceeded and hold nothing; sends nothing."""
        if self._submitted:
            return
        if not self.runs:
            raise ValidationError("batch", self.name, "at least one b.generate(), b.edit() or b.extend() "
                                                      "before it is submitted")
        reservations = self.engine.budget.reserve([r.estimate.usd if r.estimate else 0.0 for r in self.runs])
        self._submitted = True
        for run, reservation in zip(self.runs, reservations, strict=True):
            self._job(run).reservation = reservation

    async def submit(self) -> BatchJob:
        """Upload large inputs, reserve the budget, create the batch, record the rows, add the requests."""
        if self._sending:
            return self
        self.reserve()  # the whole batch fits the budget or nothing is sent (not even an upload)
        self._sending = True
        try:
            await self._create()
        except BaseException:
            for job in self._jobs.values():
                if job.reservation is not None:
                    self.engine.budget.release(job.reservation)
                    job.reservation = None
            self._submitted = self._sending = False  # nothing was sent: it can be fixed and submitted again
            raise
        await self._add_requests()
        return self

    async def send_in_background(self) -> None:
        """``submit()`` for a caller that has already returned (``start_batch``): a batch that cannot be made ends
        its runs refused (nothing was sent), with the reason."""
        try:
            await self.submit()
        except GrokError as exc:
            for run in self.runs:
                if not run.status.final:
                    await self.engine.conclude(self._job(run), Status.REJECTED, exc, timed=False)

    async def _create(self) -> None:
        """Upload large inputs and create the batch (nothing billed yet)."""
        if self._uploads is not None:
            for run in self.runs:
                self._specs[run.run_id] = await self._uploads.externalize(self._specs[run.run_id])
        self._items = [contract.request_item(run.run_id, self._specs[run.run_id].kind, self._specs[run.run_id].body)
                       for run in self.runs]
        contract.split_requests(self._items)  # an oversized request is refused before the batch is made
        reply = await self._call("POST", contract.BATCHES_PATH, "creating the batch", {"name": self.name})
        if reply.outcome != "ok":
            assert reply.error is not None
            raise reply.error
        try:
            self.state = parse_batch(reply.value)
        except ValueError as exc:
            raise APIError(f"the batch was created but its answer is not usable ({exc})",
                           status_code=reply.answer.status_code or 0 if reply.answer else 0) from None

    async def _add_requests(self) -> None:
        """Record every row, then add the requests in calls of the service's size; then follow the batch."""
        assert self.state is not None
        self.batch_id = self.state.batch_id
        for run in self.runs:
            run.batch_id = self.batch_id
            self._listen(self._jobs[run.run_id])
        # Every row (with its batch id) is on disk before a request is added.
        await self.engine.record([self._jobs[r.run_id] for r in self.runs])
        by_id = {run.run_id: run for run in self.runs}
        for call in contract.split_requests(self._items):
            runs = [by_id[item["batch_request_id"]] for item in call]
            for run in runs:
                run.submitted_at = _now()
                self._jobs[run.run_id].accepted_at = time.monotonic()  # its latency counts from the call
            await asyncio.gather(*(self.engine.save(self._jobs[r.run_id]) for r in runs))
            path = f"{contract.BATCHES_PATH}/{self.batch_id}/requests"
            reply = await self._call("POST", path, "adding requests", {"batch_requests": call})
            if reply.outcome == "ok":
                await self._accepted(runs)
            elif reply.outcome == "uncertain":
                # They may have arrived: never added again; the listing says (or, while it cannot, their results).
                self._unconfirmed.update(r.run_id for r in runs)
                await self._reconcile()
            else:
                for run in runs:
                    await self.engine.conclude(self._jobs[run.run_id], Status.REJECTED, reply.error, timed=False)
        self._follow()

    def _listen(self, job: Job) -> None:
        for listener in [*self.listeners, *self._run_listeners.get(job.run.run_id, [])]:
            if listener not in job.listeners:
                job.listeners.append(listener)

    async def _accepted(self, runs: Sequence[Run]) -> None:
        """The service has these requests: they are pending, and their latency counts from now."""
        now = time.monotonic()
        for run in runs:
            self._unconfirmed.discard(run.run_id)
            job = self._jobs[run.run_id]
            if run.status is Status.SUBMITTING:
                run.status = Status.PENDING
                job.accepted_at = job.accepted_at if job.accepted_at is not None else now
        await asyncio.gather(*(self.engine.save(self._jobs[r.run_id]) for r in runs))

    async def _reconcile(self) -> bool:
        """Ask the request listing about the requests whose adding call got no answer; False when it cannot say."""
        reply = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}/requests", "listing requests")
        if reply.outcome != "ok":
            if self._listing_failed_since is None:
                self._listing_failed_since = time.monotonic()
            return False
        self._listing_failed_since = None
        listed = parse_request_states(reply.value)
        await self._accepted([self._jobs[rid].run for rid in list(self._unconfirmed) if rid in listed])
        return True

    # -- following --------------------------------------------------------------------------------
    def _follow(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run_follower(),
                                                               name=f"grok-nb-batch-{self.batch_id}")
            self._task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _open(self) -> list[Run]:
        return [r for r in self.runs if not r.status.final]

    def _waiting_for_result(self) -> list[Run]:
        """Runs still waiting for their result (not those whose video is downloading)."""
        return [r for r in self.runs if self._waits_for_result(r)]

    def _waits_for_result(self, run: Run) -> bool:
        """True while ``run`` has no result yet (no final status, no video URL, no deadline reached)."""
        waiting = run.status in (Status.SUBMITTING, Status.PENDING) and run.url is None
        return waiting and not self._jobs[run.run_id].timed

    async def _run_follower(self) -> list[Run]:
        started = time.monotonic()
        seen = -1
        try:
            for run in self.runs:  # resumed: a download that failed is tried again while its URL may live
                if run.status is Status.DOWNLOAD_FAILED and run.url:
                    self._download(self._jobs[run.run_id])
            while self._waiting_for_result():
                self._passes_started += 1
                began = time.monotonic()
                state = await self._read_state()
                if state is None:
                    if self._state_gone:
                        for run in self._waiting_for_result():
                            await self.engine.conclude(self._jobs[run.run_id], Status.FAILED, self._gone_error)
                        break
                    failure = self._state_failure
                    if failure is not None and (failure.outcome in ("fatal", "unreadable") or (
                            time.monotonic() - self._failing_since > self.engine.policy.deadline)):
                        # As a single job's wait does: say why, stop following, keep every request resumable.
                        await self._stop_following(failure)
                        break
                else:
                    if self._unconfirmed:
                        await self._reconcile()
                    if state.finished != seen or state.done:  # results are read when there are new ones
                        seen = state.finished
                        await self._read_results()
                    ended = self._ended(state)
                    if (state.done or ended) and self._waiting_for_result():
                        await self._read_results(from_start=True)  # once more from the start: nothing is skipped
                        await self._settle_unanswered(ended)
                    elif self._unconfirmed and not state.num_requests and self._listing_failed_since is None:
                        # The listing answered and shows none of them, and the batch holds nothing: read the results
                        # once more, then they are uncertain.
                        await self._read_results(from_start=True)
                        await self._settle_unanswered(None, only_unconfirmed=True)
                    elif self._unconfirmed and self._listing_failed_since is not None and \
                            time.monotonic() - self._listing_failed_since > self.engine.policy.deadline:
                        await self._read_results(from_start=True)
                        await self._settle_unanswered(None, only_unconfirmed=True)
                self._passes_ended, self._last_pass_began = self._passes_started, began
                self._pass_ended.set()  # a last look waiting for this pass sees it
                self._pass_ended = asyncio.Event()
                if not self._waiting_for_result():
                    break
                waited = time.monotonic() - started
                pause = min(POLL_MAX_S, max(POLL_MIN_S, POLL_SHARE * waited * self.speed)) / self.speed
                await woken(self._wake, pause)  # a last look cuts the pause short
                self._wake.clear()
            for reading in range(COUNTER_READS):
                if self.state is None or self.state.done or not self.state.num_requests:
                    break  # nothing to bring into agreement (no counters, all ended, or nothing in the batch)
                if reading:
                    await asyncio.sleep(POLL_MIN_S / self.speed)
                # The last results came in after the counters were read (and counters may lag the
                # results): read them again, so that the batch's progress agrees with its runs.
                if await self._read_state() is None:  # gone (404) or failing: nothing more to learn
                    break
            while self._downloads:
                await asyncio.gather(*list(self._downloads), return_exceptions=True)
        except asyncio.CancelledError:
            # The client closed: rows stay pending in the history; client.resume() picks the batch up again.
            for task in list(self._downloads):
                task.cancel()
            raise
        return list(self.runs)

    _state_gone = False
    _gone_error: GrokError | None = None
    _state_failure: Reply | None = None  # how the last read of the batch failed (None: it did not)
    _failing_since = 0.0

    async def _stop_following(self, failure: Reply) -> None:
        """The batch cannot be read (an answer that will not change by waiting, or none for a whole deadline): stop
        following it, as a single job's wait stops; every request stays resumable with ``client.resume()``."""
        why = failure.error or APIError(f"batch {self.batch_id} could not be read ({failure.outcome})", status_code=0)
        for run in self._waiting_for_result():
            run.error = JobError(f"stopped following batch {self.batch_id}: {why}. It goes on at the server: "
                                 "client.resume() follows it again", request_id=None, run=run)
            await self.engine.stop(self._jobs[run.run_id], "the batch could not be read")

    async def _read_state(self) -> BatchState | None:
        """Read the batch's counters and pass them to the progress listeners; None when they could not be read
        (``_state_failure`` says how, ``_failing_since`` since when)."""
        reply = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}", "reading the batch")
        if reply.outcome == "ok":
            try:
                self.state = parse_batch(reply.value)
            except ValueError as exc:
                reply = Reply(reply.answer, outcome="unreadable", error=APIError(
                    f"the batch's answer cannot be read ({exc})", status_code=reply.answer.status_code or 0
                    if reply.answer else 0))
        if reply.outcome != "ok":
            if isinstance(reply.error, NotFoundError):
                self._state_gone, self._gone_error = True, reply.error
            if self._state_failure is None:
                self._failing_since = time.monotonic()
            self._state_failure = reply
            return None
        self._state_failure = None
        for listener in self.progress_listeners:  # on the view thread, newest counters only
            self.engine.views.post((id(listener), "batch"), (listener, self.state))
        return self.state

    def _ended(self, state: BatchState) -> tuple[str, float] | None:
        """How the batch ended ("cancelled"/"expired", when) once that is long enough ago, else None."""
        ended = state.ended_by()
        if ended is None:
            return None
        how, when = ended
        return ended if time.time() > when + END_GRACE_S / self.speed else None

    async def _settle_unanswered(self, ended: tuple[str, float] | None, *, only_unconfirmed: bool = False) -> None:
        """The batch is done or over and its results were read in full: each request still without one ends."""
        for run in self._waiting_for_result():
            job = self._jobs[run.run_id]
            if run.run_id in self._unconfirmed:
                self._unconfirmed.discard(run.run_id)
                error: GrokError = JobError(UNCERTAIN_NOTE.format(batch_id=self.batch_id), request_id=None)
                await self.engine.conclude(job, Status.UNCERTAIN, error, timed=False)
            elif only_unconfirmed:
                continue
            elif ended is not None:
                how, when = ended
                at = datetime.fromtimestamp(when, timezone.utc).isoformat(timespec="seconds")
                note = ENDED_NOTES[how].format(batch_id=self.batch_id, when=at,
                                               usd=run.estimate.usd if run.estimate else 0.0)
                status, cls = (Status.CANCELLED, JobCancelledError) if how == "cancelled" else \
                    (Status.EXPIRED, JobError)
                await self.engine.conclude(job, status, cls(note, request_id=None), timed=False)
            else:
                await self.engine.conclude(job, Status.FAILED, JobFailedError(
                    "no_result", f"batch {self.batch_id} ended without a result for this request", request_id=None))

    async def _read_results(self, *, from_start: bool = False) -> None:
        """Read result pages until no more, an empty page, or a page token seen before in this pass."""
        if from_start:
            self._token = None
        wanted = {r.run_id: r for r in self._waiting_for_result()}
        tokens: set[str] = set()
        while wanted:
            query = f"?limit={PAGE_SIZE}" + (f"&pagination_token={self._token}" if self._token else "")
            reply = await self._call("GET", f"{contract.BATCHES_PATH}/{self.batch_id}/results{query}",
                                     "reading results")
            if reply.outcome != "ok":
                return
            page, token = parse_results(reply.value)
            arrived = [wanted[r.batch_request_id] for r in page if r.batch_request_id in wanted]
            if arrived and self._unconfirmed:
                await self._accepted([r for r in arrived if r.run_id in self._unconfirmed])
            for result in page:
                run = wanted.pop(result.batch_request_id, None)
                if run is not None:
                    await self._apply(self._jobs[run.run_id], result)
            if token is None or token in tokens:
                # No more pages (or they came round again): start from the beginning next time.
                self._token = None
                return
            tokens.add(token)
            if not page:
                self._token = token  # nothing new yet: continue from here next time
                return
            self._token = token

    async def _apply(self, job: Job, result: BatchResult) -> None:
        run = job.run
        run.receive(progress=100, cost_usd=result.cost_usd, duration=result.duration, model=result.model,
                 url=result.url if result.ok else None)
        self.engine.mark_finished(job)
        if result.ok and result.url:
            self._download(job)
        elif result.moderated:
            await self.engine.conclude(job, Status.MODERATED, ModeratedError(request_id=None))
        elif result.cancelled:
            await self.engine.conclude(job, Status.CANCELLED, JobCancelledError(
                f"{CANCELLED_NOTE} ({result.error_message})", request_id=None))
        elif result.error_code == "no_video":
            await self.engine.conclude(job, Status.FAILED, NoVideoError(result.error_message, request_id=None))
        elif result.error_code == "deadline_exceeded":
            await self.engine.conclude(job, Status.EXPIRED, JobExpiredError(request_id=None))
        else:
            await self.engine.conclude(job, Status.FAILED, JobFailedError(result.error_code, result.error_message,
                                                                          request_id=None))

    def _download(self, job: Job) -> None:
        """Fetch one result at once (its URL lives one hour), through the client's one download path."""
        task = asyncio.get_running_loop().create_task(self.engine.deliver(job, lifetime=RESULT_LIFETIME))
        self._downloads.add(task)
        task.add_done_callback(self._downloads.discard)

    def listen(self, run: Run, listener: Listener) -> None:
        """Call ``listener(run)`` (on the view thread) whenever this one run changes."""
        self._run_listeners.setdefault(run.run_id, []).append(listener)
        job = self._jobs.get(run.run_id)
        if job is not None and listener not in job.listeners:
            job.listeners.append(listener)

    # -- what users call --------------------------------------------------------------------------
    async def wait(self, timeout: float | None = None) -> list[Run]:
        """Every run of the batch once all are finished (in the order they were added).

        ``timeout`` seconds at most: then the batch is read once more, and runs done at the server are returned
        done (after their downloads); else :class:`~grok_nb.errors.BatchWaitTimeout` (the batch goes on).
        """
        if not self._submitted:
            await self.submit()
        if self._task is None:
            return list(self.runs)
        try:
            return await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except asyncio.TimeoutError:
            if await self._last_look():
                return await asyncio.shield(self._task)
            raise BatchWaitTimeout(timeout or 0.0, batch_id=self.batch_id, running=len(self._waiting_for_result()),
                                   total=len(self.runs)) from None

    async def _last_look(self, fresh_s: float = 0.0) -> bool:
        """Read the batch once more, now (its caller's time is up; at most ``LAST_LOOK_S`` for that pass): True
        when no run waits for its result any more (what remains is downloading). A pass that began less than
        ``fresh_s`` ago and has ended serves instead (the handles of one grid, asked in turn, share one)."""
        assert self._task is not None
        if fresh_s > 0 and self._passes_ended == self._passes_started and \
                time.monotonic() - self._last_pass_began < fresh_s:
            return not self._waiting_for_result() or self._task.done()
        target = self._passes_started + 1  # a pass that begins from now on
        self._wake.set()
        deadline = time.monotonic() + LAST_LOOK_S
        while self._passes_ended < target and self._waiting_for_result() and not self._task.done():
            ended = self._pass_ended
            try:
                await asyncio.wait_for(ended.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                return False
        return not self._waiting_for_result() or self._task.done()

    async def refresh(self) -> BatchState | None:
        """Read the batch's counters now."""
        if self.batch_id is None:
            return None
        await self._read_state()
        return self.state

    async def cancel(self) -> BatchState | None:
        """Cancel what has not run yet (not billed); finished results are still read and downloaded."""
        if self.batch_id is None:
            self._submitted = self._sending = True  # nothing was sent: nothing to cancel, nothing more to add
            for run in self.runs:
                run.status, run.error = Status.CANCELLED, JobCancelledError(
                    "cancelled before its batch was sent; nothing was billed", request_id=None, run=run)
            return None
        reply = await self._call("POST", f"{contract.BATCHES_PATH}/{self.batch_id}:cancel", "cancelling the batch")
        if reply.outcome != "ok":
            assert reply.error is not None
            raise reply.error
        try:
            self.state = parse_batch(reply.value)
        except ValueError:
            pass
        self._follow()
        return self.state

    def handle(self, run: Run) -> JobHandle:
        """A handle that waits for one run of the batch (what ``client.resume()`` returns); its
        ``result(timeout)`` reads the batch once more before it gives up."""
        loop = asyncio.get_running_loop()
        ended = self._job(run).ended()
        return JobHandle(run, loop.create_task(_wait_for(ended)), loop, look=functools.partial(self._look_at, run))

    async def _look_at(self, run: Run) -> bool:
        """One more read of the batch for ``run``, whose waiter's time is up: True when it is over (at the server,
        or for this process: no longer followed)."""
        if self._task is None:
            return False  # the batch is still being made: nothing to read yet
        if self._task.done() or not self._waits_for_result(run):
            return True
        await self._last_look(fresh_s=SHARED_LOOK_S)
        return not self._waits_for_result(run)

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
        for _ in range(3):  # a cancellation lost in a wait somewhere below is asked for again, briefly
            if self._task is None or self._task.done():
                break
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=1.0)

    async def __aenter__(self) -> BatchJob:
        return self

    async def __aexit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            await self.submit()

    # -- resuming ---------------------------------------------------------------------------------
    @classmethod
    async def attach(cls, engine: Engine, batch_id: str, rows: Sequence[dict[str, Any]], *, backend: str,
                     speed: float = 1.0) -> BatchJob:
        """Follow an existing batch again (after a restart) from its history rows; creates nothing."""
        batch = cls(engine, name=f"resumed {batch_id}"[: contract.MAX_NAME_LENGTH], backend=backend, speed=speed)
        batch.batch_id, batch._submitted, batch._sending = batch_id, True, True
        batch.runs = [run_of(row) for row in rows]
        for run in batch.runs:
            job = batch._job(run)
            engine.resumed(job)
            engine.jobs[run.run_id] = job
            await asyncio.to_thread(engine.store.update, run.run_id, owner=engine.owner)
            if run.status is Status.SUBMITTING:  # cut off while being added: the listing or results say which arrived
                batch._unconfirmed.add(run.run_id)
        batch._follow()
        return batch


async def woken(event: asyncio.Event, timeout: float) -> bool:
    """Wait until ``event`` is set or ``timeout`` seconds pass; True when it was set.

    Not ``asyncio.wait_for(event.wait(), timeout)``: before Python 3.12 that swallows a cancellation arriving as the
    event is set or the time is up, and a batch follower then ran on after its client closed, holding ``close()`` up.
    """
    if event.is_set():
        return True
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter}, timeout=max(0.0, timeout))
    finally:
        waiter.cancel()
    return bool(done)


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
