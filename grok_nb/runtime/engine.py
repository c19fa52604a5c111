"""The async driver of jobs: submit, wait, download, under one scheduler, one budget and one history writer.

It runs the lifecycle of ``jobs.py`` against the API (``transport.py``) and tells its
subscribers (the history writer, the views, the latency priors) what happened. It never
chooses a server (the entry points do) and never blocks the loop it polls on: store writes
and view updates go to their own threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api.measure import measure
from ..api.responses import JobStatus, parse_job_status, parse_poll_error
from ..errors import (
    APIError,
    ClientClosedError,
    ConnectionFailed,
    DeadlineExceeded,
    GrokError,
    JobError,
    JobExpiredError,
    JobFailedError,
    MeasureError,
    ModeratedError,
    NotFoundError,
    NoVideoError,
    RateLimitError,
    SubmitUncertainError,
    error_from_response,
    redact,
)
from ..history.owners import owner_alive, process_owner
from ..history.rows import row_of
from ..jobs.budget import Budget, Reservation
from ..jobs.lifecycle import (
    Created,
    Exchange,
    Finished,
    JobEvent,
    Progress,
    RequestIdKnown,
    Saved,
    Stopped,
    Submitted,
    after_download,
    after_poll,
    count_cost,
    submit_status,
)
from ..jobs.policy import HttpProblem, PollPolicy, Problem, Stop, SubmitOutcome, TransportProblem, Unreadable, Wait
from ..jobs.pollplan import Observation, PriorBook
from ..jobs.results import Run
from ..jobs.status import Status
from .background import HistoryStore, HistoryWriter, ViewDispatcher
from .ratelimit import Limiter
from .scheduler import POLL, SUBMIT, Scheduler
from .sender import Fetched, Reading, Sender, Unattached
from .transport import Answer, Api

log = logging.getLogger("grok_nb")

UpdateCallback = Callable[[Run], Any]
#: How long whoever waits for a job waits for its video's measures after it is done (measuring a 10-s 720p clip
#: takes a fraction of a second; a busy machine may take longer, and then the measures arrive after the wait).
MEASURE_WAIT_S = 10.0
#: A row left ``submitting`` by a process on another machine is taken as cut off after this long.
FOREIGN_SUBMIT_GRACE_S = 10 * 60.0
#: A job's first poll comes no later than this share of the time to its deadline.
FIRST_LOOK_SHARE = 0.5


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(eq=False)
class Job:
    """One job in this process: its run, its spec, its money, who listens. The one request path logs its exchanges
    and shows its waits through it (it is the ``Caller`` of ``sender.py``)."""

    run: Run
    engine: Engine
    endpoint: str | None = None
    body: dict[str, Any] | None = None
    #: Turns the body into what is sent, just before the submit (large inputs uploaded then, not before returning).
    prepare: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None
    reservation: Reservation | None = None
    listeners: list[UpdateCallback] = field(default_factory=list)
    submit_task: asyncio.Task[None] | None = None
    accepted_at: float | None = None  # monotonic time the server accepted it (midpoint of the POST)
    waiter_gone: bool = False  # whoever waited stopped during the submit
    polling: bool = False  # a wait loop is polling it now
    prior_key: tuple[Any, ...] = ()
    # Attached by a request id the history did not know: no row until the server shows it knows the id.
    unrecorded: bool = False
    held_exchanges: list[dict[str, Any]] = field(default_factory=list)
    timed: bool = False  # the server's end was seen and the latency measured
    # The wait's last look (a caller's timeout is up): asked for, woken, answered.
    look_wanted: bool = False
    wake: asyncio.Event | None = None
    answered: asyncio.Event | None = None
    ended_at_server: bool = False  # an answer said it is over (done, failed, ...): the wait ends with the run
    measuring: asyncio.Task[None] | None = None  # its video being measured (after done: it never delays it)
    _ended: asyncio.Future[Run] | None = None

    @property
    def request_id(self) -> str | None:
        """The job's request id, once the server accepted it."""
        return self.run.request_id

    async def exchanged(self, entry: dict[str, Any]) -> None:
        """One of its requests was answered: into the run's log and the history."""
        await self.engine.emit(self, Exchange(self.run, entry=entry))

    def waiting(self, note: str | None) -> None:
        """The key's shared budget keeps it waiting for other processes: its views say so."""
        self.run.waiting_note = note
        for callback in self.listeners:
            self.engine.views.notify(callback, self.run)

    def ended(self) -> asyncio.Future[Run]:
        """Resolves with the run once the job is over for this process (batches wait on this): a final status, or
        stopped (nobody follows it any more; it stays resumable)."""
        if self._ended is None:
            self._ended = asyncio.get_running_loop().create_future()
            if self.run.status.final or self.run.stopped:
                self._ended.set_result(self.run)
        return self._ended

    def end(self) -> None:
        """Hand the run to whoever waits on ``ended()``."""
        if self._ended is not None and not self._ended.done():
            self._ended.set_result(self.run)


class Engine:
    """Runs jobs for one client: ``start`` new ones, ``attach`` to known ones, and the services every driver of a
    job (the poll loop, the batch follower) shares: the one request path, events, the one conclusion, downloads."""

    def __init__(self, api: Api, *, store: HistoryStore, cache_dir: Path, policy: PollPolicy, limiter: Limiter,
                 budget: Budget, backend: str, base_url: str, speed: float = 1.0, secret: str | None = None):
        self.store = store
        self.cache_dir = cache_dir
        self.sender = Sender(api, Scheduler(limiter), policy, secret=secret)
        self.budget = budget
        self.backend, self.base_url, self.secret = backend, base_url, secret
        self.speed = speed
        self.priors = PriorBook(speed)
        self.writer = HistoryWriter(store)
        self.views = ViewDispatcher()
        #: The caller of requests that belong to no run (a batch's own calls, uploads, model listings).
        self.unattached = Unattached(self.writer)
        self.jobs: dict[str, Job] = {}  # run_id → job, while someone may still wait on it
        self.owner = process_owner()
        self.submit_slot = asyncio.Lock()
        self._measuring: set[asyncio.Task[None]] = set()

    @property
    def api(self) -> Api:
        """The HTTP transport."""
        return self.sender.api

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler that spends the key's request budget."""
        return self.sender.scheduler

    @property
    def policy(self) -> PollPolicy:
        """The timings of waiting."""
        return self.sender.policy

    # -- events ----------------------------------------------------------------------------------
    def _row(self, run: Run) -> dict[str, Any]:
        return row_of(run, self.base_url)

    async def emit(self, job: Job, event: JobEvent) -> None:
        """Tell the history, the views and the priors what happened; a durable event is on disk when this returns."""
        run = event.run
        future: concurrent.futures.Future[Any] | None = None
        if isinstance(event, Exchange):
            run.exchanges.append(event.entry)
            if job.unrecorded:
                job.held_exchanges.append(event.entry)
            else:
                self.writer.exchange(run.run_id, event.entry)
        elif isinstance(event, Created):
            future = self.writer.insert(self._row(run))  # the store adds who made it and which process owns it
            job.unrecorded = False
            for entry in job.held_exchanges:
                self.writer.exchange(run.run_id, entry)
            job.held_exchanges.clear()
        elif not job.unrecorded:
            future = self.writer.update(run.run_id, self._row(run))
        if isinstance(event, Finished) and run.status is Status.DONE:
            self._learned(job.prior_key, self.priors.learn, job.prior_key, run.latency_s)
        self.scheduler.limiter.jobs = len(self.jobs)  # other processes on the key see how busy this one is
        for callback in job.listeners:
            self.views.notify(callback, run)
        if event.durable and future is not None:
            # The row, the request id and every outcome are on disk before the job goes on
            # (shielded: a waiter cancelled meanwhile must not cancel the write).
            await asyncio.shield(asyncio.wrap_future(future))
        if isinstance(event, (Finished, Stopped)) and job.listeners:
            # Whoever waits on the job sees its views already showing how it ended.
            await asyncio.shield(asyncio.to_thread(self.views.flush, 5.0))

    # -- starting --------------------------------------------------------------------------------
    def job(self, run: Run, *, endpoint: str | None = None, body: dict[str, Any] | None = None,
            prepare: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
            reservation: Reservation | None = None, on_update: UpdateCallback | None = None) -> Job:
        """A job of this engine for ``run`` (nothing recorded or sent yet)."""
        return Job(run, self, endpoint, body, prepare, reservation, [on_update] if on_update else [],
                   prior_key=PriorBook.key(run.model, run.kind, run.resolution, run.params.get("duration")))

    async def record(self, jobs: Sequence[Job]) -> None:
        """Write every job's row (in as few transactions as the writer batches them) and wait until all are on
        disk; from then on the engine knows them. Their reservations are released if that fails."""
        try:
            await asyncio.gather(*(self.emit(job, Created(job.run)) for job in jobs))
        except BaseException:
            for job in jobs:
                if job.reservation is not None:
                    self.budget.release(job.reservation)
            raise
        for job in jobs:
            self.jobs[job.run.run_id] = job

    async def start(self, jobs: Sequence[Job]) -> list[Awaitable[Run]]:
        """Record the jobs' rows, start their submits (which no waiter can cancel), return their waits at once.

        Each submit waits its turn in the scheduler; the caller is not held while they go out.
        """
        await self.record(jobs)  # the rows exist before a byte is sent
        loop = asyncio.get_running_loop()
        for job in jobs:
            job.submit_task = loop.create_task(self._submit(job), name=f"grok-nb-submit-{job.run.run_id}")
            # Its error reaches whoever waits; when nobody does any more, the history holds it.
            job.submit_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return [self._run(job) for job in jobs]

    async def _run(self, job: Job) -> Run:
        assert job.submit_task is not None
        try:
            await asyncio.shield(job.submit_task)
        except asyncio.CancelledError:
            # Ctrl+C, stop_waiting() or a timeout during the POST: the POST goes on and its
            # request id reaches the history; only the waiting stops.
            job.waiter_gone = True
            if job.submit_task.done() and not job.submit_task.cancelled() and job.submit_task.exception() is None:
                if not job.run.stopped:
                    await self.stop(job, "stopped waiting")
            elif job.run.request_id is not None:
                # The POST is over and only its bookkeeping remains: let it finish, so that whoever
                # cancelled finds the job marked stopped.
                await asyncio.shield(asyncio.wait({job.submit_task}))
            raise
        return await self._wait(job)

    async def attach(self, run: Run, on_update: UpdateCallback | None, *, new: bool = False) -> Awaitable[Run]:
        """Wait for a job that already has a request id (resumed, or started elsewhere: ``new`` records its row
        once the server answers for it); the first poll goes at once."""
        job = self.jobs.get(run.run_id)
        if job is not None:
            if on_update is not None:
                job.listeners.append(on_update)
            return self.follow(job)
        job = self.job(run, on_update=on_update)
        self.resumed(job)
        self.jobs[run.run_id] = job
        if new:
            job.unrecorded = True  # its row is written once the server answers for the id (a 404 leaves none)
        else:
            await self.emit(job, Progress(run))
        return self._wait(job, at_once=True)

    @staticmethod
    def resumed(job: Job) -> None:
        """A job picked up again (by another process, or after a restart): its clock from its submit time on disk
        (only wall-clock times survive a restart), and no error or stop left from before."""
        run = job.run
        if run.submitted_at is not None:
            job.accepted_at = time.monotonic() - max(0.0, (_now() - run.submitted_at).total_seconds())
        run.stopped, run.error = False, None

    async def follow(self, job: Job) -> Run:
        """Wait again for a job of this process whose waiter went away (its submit may still be out)."""
        job.waiter_gone = False
        if job.submit_task is not None and not job.submit_task.done():
            try:
                await asyncio.shield(job.submit_task)
            except asyncio.CancelledError:
                job.waiter_gone = True
                raise
        if job.polling or job.run.status.final:
            while job.polling:
                await asyncio.sleep(0.05)
            return job.run
        job.run.stopped = False
        self.jobs[job.run.run_id] = job
        return await self._wait(job)

    async def settle_submits(self, timeout: float) -> None:
        """Closing: submits still waiting for their turn are not sent (their runs say so: nothing billed); POSTs in
        flight finish (their request ids must reach the history)."""
        tasks = [j.submit_task for j in self.jobs.values() if j.submit_task is not None and not j.submit_task.done()]
        for job in list(self.jobs.values()):
            if job.submit_task is not None and not job.submit_task.done() and job.run.submitted_at is None:
                job.submit_task.cancel()  # it has not left: it ends "rejected, not sent" (see _submit)
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    # -- submit ----------------------------------------------------------------------------------
    async def _submit(self, job: Job) -> None:
        run = job.run
        assert job.endpoint is not None and job.body is not None
        if job.prepare is not None:
            try:
                job.body = await job.prepare(job.body)
            except GrokError as exc:  # an input could not be uploaded: the video job was never sent
                await self.conclude(job, Status.REJECTED, exc)
                raise

        async def before() -> None:
            run.submitted_at = _now()
            await self.emit(job, Submitted(run))

        async def durable(reading: Reading) -> None:
            # On disk before anyone sees it, and before the next POST leaves (the slot is held until then).
            if reading.value is not None:
                request_id = str(reading.value)
                try:
                    await asyncio.shield(asyncio.wrap_future(self.writer.record_request_id(run.run_id, request_id)))
                except Exception:
                    run.request_id = request_id  # not on disk: kept in memory, in the error and in the journal
                    raise

        try:
            reply = await self.sender.send(job, "POST", job.endpoint, functools.partial(self._read_submit, run),
                                           started=time.monotonic(), body=job.body, turn=SUBMIT, before=before,
                                           slot=self.submit_slot, on_answer=durable)
        except asyncio.CancelledError:
            if run.submitted_at is None:  # the client closed before its turn came: nothing left this machine
                await asyncio.shield(self.conclude(job, Status.REJECTED, JobError(NOT_SENT_CLOSED, request_id=None),
                                                   timed=False))
            raise
        if reply.outcome == "ok":
            assert reply.answer is not None
            request_id = str(reply.value)
            # On disk before anything else happens, even before this process shows the id to anyone.
            await asyncio.shield(asyncio.wrap_future(self.writer.update(
                run.run_id, {**self._row(run), "request_id": request_id, "status": Status.PENDING.value})))
            run.request_id, run.status = request_id, Status.PENDING
            job.accepted_at = (reply.answer.sent_at + reply.answer.received_at) / 2
            await self.emit(job, RequestIdKnown(run))
            if job.waiter_gone:
                await self.stop(job, "stopped waiting")
            return
        error = reply.error
        assert error is not None
        await self.conclude(job, submit_status(reply.outcome), error, timed=False)
        raise error

    def _read_submit(self, run: Run, answer: Answer) -> Reading:
        outcome, request_id, error = self._classify_submit(run, answer)
        summary = f"request_id={request_id}" if request_id else str(getattr(error, "server_message", error))
        return Reading(request_id, outcome.problem(), error, summary)

    def _classify_submit(self, run: Run, answer: Answer) -> tuple[SubmitOutcome, str | None, GrokError | None]:
        if answer.never_sent:
            return SubmitOutcome(never_sent=True), None, ConnectionFailed(
                f"could not reach {self.base_url} ({answer.problem}); nothing was sent. "
                "Check the network, or GROK_NB_BASE_URL / base_url=...")
        if answer.status_code is None:
            return SubmitOutcome(maybe_sent=True), None, SubmitUncertainError(
                f"No answer to the submit ({answer.problem}).", run_id=run.run_id)
        if answer.status_code < 400:
            body = answer.body if isinstance(answer.body, dict) else {}
            rid = body.get("request_id") or body.get("id")
            if isinstance(rid, str) and rid.strip() and answer.problem is None:
                return SubmitOutcome(accepted=True), rid.strip(), None
            why = answer.problem or "without a request_id"
            return SubmitOutcome(maybe_sent=True), None, SubmitUncertainError(
                f"The server answered {answer.status_code} {why}.", run_id=run.run_id)
        error = error_from_response(answer.status_code, answer.body, headers=answer.headers, secret=self.secret)
        out_of_credits = isinstance(error, RateLimitError) and error.out_of_credits
        outcome = SubmitOutcome(status_code=answer.status_code, retry_after=error.retry_after,
                                out_of_credits=out_of_credits)
        if answer.status_code >= 500:
            return outcome, None, SubmitUncertainError(
                f"The server answered {answer.status_code} to the submit.", run_id=run.run_id)
        return outcome, None, error

    # -- wait --------------------------------------------------------------------------------------
    async def _wait(self, job: Job, *, at_once: bool = False) -> Run:
        run = job.run
        started = time.monotonic()
        deadline = started + self.policy.deadline
        if job.accepted_at is None:
            job.accepted_at = started
        accepted, key = job.accepted_at, job.prior_key
        observations: list[Observation] = []
        polls = 0
        warned: set[str] = set()
        rtt = 0.0
        # The last look leaves at the deadline and its answer may take ``lead`` more: a job done by then is returned
        # done. The first comes while there is time for more (a service far faster than documented is not first
        # polled at its deadline).
        lead = self._look_lead()

        def plan(now: float, seen: tuple[Observation, ...] = (), rtt: float = 0.0) -> Callable[[], float]:
            # Asked again when the poll comes due, and when finished jobs taught something meanwhile.
            def ask() -> float:
                at = accepted + float(self._learned(key, self.priors.plan, run.run_id, key, seen, self.policy,
                                                    now - accepted, delay=self._poll_delay(rtt)))
                if not seen:
                    at = min(at, started + FIRST_LOOK_SHARE * (deadline - started))
                return max(now, min(at, deadline))
            return ask

        replan: Callable[[], float] | None = None if at_once else plan(started)
        due = started if replan is None else replan()
        path = f"/v1/videos/{run.request_id}"

        async def count_poll() -> None:
            run.polls += 1

        async def show_progress() -> None:
            await self.emit(job, Progress(run))

        job.polling, job.look_wanted, job.ended_at_server = True, False, False
        job.wake, job.answered = asyncio.Event(), asyncio.Event()
        try:
            while True:
                due, replan = await self._until(job, due, replan)
                reply = await self.sender.send(job, "GET", path, functools.partial(self._read_poll, run),
                                              started=started, deadline=deadline + lead,
                                              turn=POLL, due=due, before=count_poll,
                                              after_problem=show_progress, replan=replan)
                polls += reply.attempts
                if reply.outcome != "ok":
                    self._answered(job, ended=False)
                    return await self._conclude(job, Stop(reply.outcome), None, None, reply.error, started)
                answer, observation = reply.answer, reply.value
                assert answer is not None and isinstance(observation, JobStatus)
                if job.unrecorded:  # the server knows the id: from now on the history does too
                    await self.emit(job, Created(run))
                rtt = answer.received_at - answer.sent_at
                self._apply(run, observation, warned)
                # Dated within half its round trip: a slow answer widens the estimate instead of contradicting it.
                observations.append(Observation((answer.sent_at + answer.received_at) / 2 - accepted,
                                                observation.progress, rtt / 2))
                now = time.monotonic()
                later = plan(now, tuple(observations), rtt)
                step, status = after_poll(self.policy, observation, elapsed=now - started, polls=polls,
                                          errors_in_a_row=0, planned=max(0.0, later() - now))
                if isinstance(step, Wait) and answer.sent_at >= deadline - 1e-6:
                    step = Stop("deadline")  # the last look found it still running: say so, keep the request id
                self._answered(job, ended=not isinstance(step, Wait) and step.outcome != "deadline")
                if isinstance(step, Wait):
                    await self.emit(job, Progress(run))
                    due, replan = now + step.delay, later
                    continue
                if step.outcome == "done":  # how its progress ran up to the end teaches the pace
                    self._learned(key, self.priors.learn_pace, key, observations)
                concluded = await self._conclude(job, step, status, observation, None, started)
                await self.measured(job)
                return concluded
        except asyncio.CancelledError:
            await asyncio.shield(self.stop(job, "stopped waiting"))
            raise
        except ClientClosedError as exc:
            exc.run, run.error = run, exc
            await asyncio.shield(self.stop(job, "the client was closed"))
            raise
        finally:
            job.polling = False
            self.priors.forget(run.run_id)
            self._answered(job, ended=job.ended_at_server)

    def _learned(self, key: Any, learn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call one of the prior book's methods; when what it knows of ``key``'s (model, kind) moved, the waits
        of that (model, kind) plan their next poll again (earlier too)."""
        before = self.priors.version(key)
        result = learn(*args, **kwargs)
        if self.priors.version(key) != before:
            for other in list(self.jobs.values()):
                if other.wake is not None and other.prior_key[:2] == key[:2]:
                    other.wake.set()
        return result

    async def _until(self, job: Job, due: float, replan: Callable[[], float] | None
                     ) -> tuple[float, Callable[[], float] | None]:
        """Sleep until the poll's ``due`` time: what finished jobs teach meanwhile may bring it forward, and a last
        look (``look``) sends it at once, as planned no more."""
        assert job.wake is not None
        version = self.priors.version(job.prior_key)
        while not job.look_wanted:
            left = due - time.monotonic()
            if left <= 0:
                return due, replan
            job.wake.clear()
            try:
                await asyncio.wait_for(job.wake.wait(), left)
            except asyncio.TimeoutError:
                return due, replan
            if replan is not None and self.priors.version(job.prior_key) != version:
                version = self.priors.version(job.prior_key)
                due = min(due, replan())
        return time.monotonic(), None

    @staticmethod
    def _answered(job: Job, *, ended: bool) -> None:
        """An answer came (or the wait is over): whoever asked for a look hears it."""
        job.ended_at_server = job.ended_at_server or ended
        job.look_wanted = False
        if job.answered is not None:
            job.answered.set()
            job.answered = asyncio.Event()

    async def look(self, run_id: str) -> bool:
        """Poll a waiting job once more, now (its caller's timeout is up); True when the answer said it is over at
        the server (done, failed, ...): its wait then ends with the run. False when it is still running."""
        job = self.jobs.get(run_id)
        if job is None:
            return True  # its wait is over already
        if not job.polling or job.answered is None or job.wake is None:
            return False  # its submit is still out, or nobody waits for it
        answered = job.answered
        job.look_wanted = True
        job.wake.set()
        await answered.wait()
        return job.ended_at_server

    def _look_lead(self) -> float:
        """How long a deadline's last look may take past it: a slot of the key's budget (at the pace kept after
        429s) and two shortest gaps."""
        return 2.0 * self.policy.interval + self.scheduler.gap()

    def _poll_delay(self, rtt: float) -> float:
        """From the moment a poll is due to the server's moment it answers for: half a slot and half a round trip."""
        return 0.5 * rtt + 0.5 * self.scheduler.gap()

    def _read_poll(self, run: Run, answer: Answer) -> Reading:
        observation, error = self._classify_poll(run, answer)
        summary = _poll_summary(observation, error, answer)
        if isinstance(observation, JobStatus):
            return Reading(observation, None, None, summary, job_status=observation.status)
        return Reading(None, observation, error, summary)

    def _classify_poll(self, run: Run, answer: Answer) -> tuple[JobStatus | Problem, APIError | None]:
        if answer.status_code is None:
            return TransportProblem(answer.problem or "", never_sent=answer.never_sent), None
        if answer.problem is not None:  # an answer too large to read: nothing to learn from it
            return self._unreadable(run, answer, answer.problem)
        if answer.status_code < 400:
            if answer.body is not None and not isinstance(answer.body, dict):  # empty is pending; else an object
                shown = redact(str(answer.body), self.secret).strip()
                shown = shown if len(shown) <= 120 else shown[:117] + "..."
                kind = "text" if isinstance(answer.body, str) else f"JSON {type(answer.body).__name__}"
                return self._unreadable(run, answer, f"{kind}, not a JSON object: {shown!r}")
            return parse_job_status(answer.body, self.secret), None
        # moderation sent as a 400, with its cost
        outcome = parse_poll_error(answer.status_code, answer.body, self.secret)
        if outcome is not None:
            return outcome, None
        error = error_from_response(answer.status_code, answer.body, headers=answer.headers,
                                    request_id=run.request_id, secret=self.secret)
        return HttpProblem(answer.status_code, error.retry_after), error

    def _unreadable(self, run: Run, answer: Answer, what: str) -> tuple[Unreadable, APIError]:
        assert answer.status_code is not None
        tries = self.policy.unreadable_retries + 1
        return Unreadable(answer.status_code, what), APIError(
            f"the answers to this job's polls could not be read ({what}); asked {tries} times. The job may still "
            f"be fine: resume it later with client.get({run.request_id!r})",
            status_code=answer.status_code, request_id=run.request_id)

    def _apply(self, run: Run, status: JobStatus, warned: set[str]) -> None:
        if not status.known_status and status.status not in warned:
            warned.add(status.status)
            log.warning("grok_nb: request %s has status %r, not one of xAI's documented statuses; "
                        "treating it as still running", run.request_id, status.status)
        run.receive(progress=status.progress, url=status.url, duration=status.duration, cost_usd=status.cost_usd,
                 cost_reported=status.cost_reported, model=status.model)

    async def _conclude(self, job: Job, step: Stop, status: Status | None, observation: JobStatus | None,
                        error: GrokError | None, started: float) -> Run:
        """The end of a wait: a poll's final answer becomes the run's status and error (or the wait stops)."""
        run = job.run
        waited = time.monotonic() - started
        if step.outcome == "deadline":
            run.error = DeadlineExceeded(waited, request_id=run.request_id, run=run)
            await self.stop(job, "deadline")
            raise run.error
        if step.outcome in ("fatal", "unreadable"):
            assert error is not None
            if isinstance(error, NotFoundError):
                # The server does not know this id: nothing will ever come of waiting.
                if job.unrecorded:  # attached by an id the history never had: it keeps nothing of it
                    self.jobs.pop(run.run_id, None)
                    run.status, run.error = Status.FAILED, error
                    raise error
                await self.conclude(job, Status.FAILED, error, timed=False)
                raise error
            # A 400/401/403 on a poll, or answers that cannot be read: say so and keep the request id;
            # the job may still be fine.
            run.error = error
            reason = ("the answers could not be read" if step.outcome == "unreadable" else
                      f"the poll was answered {error.status_code}" if isinstance(error, APIError) else str(error))
            await self.stop(job, reason)
            raise error
        self.mark_finished(job)
        if step.outcome == "done":
            return await self.deliver(job)
        final: GrokError
        if status is Status.MODERATED:
            final = ModeratedError(request_id=run.request_id, run=run)
        elif status is Status.EXPIRED:
            final = JobExpiredError(request_id=run.request_id, run=run)
        elif step.outcome == "no_video":
            assert observation is not None
            final = NoVideoError(observation.no_video_reason, request_id=run.request_id, run=run)
        else:
            assert observation is not None
            final = JobFailedError(observation.error_code, observation.error_message,
                                   request_id=run.request_id, run=run)
        return await self.conclude(job, status or Status.FAILED, final)

    # -- the one conclusion ------------------------------------------------------------------------
    @staticmethod
    def mark_finished(job: Job) -> None:
        """The server says the job is over: its latency is measured now, on the monotonic clock, before any
        download (a batch result and a poll answer alike)."""
        if job.timed:
            return
        job.timed = True
        run = job.run
        run.finished_at = _now()
        if job.accepted_at is not None:
            run.latency_s = round(time.monotonic() - job.accepted_at, 3)

    async def conclude(self, job: Job, status: Status, error: GrokError | None, *, timed: bool = True) -> Run:
        """End a job in a final status (every driver ends its jobs here): what the budget counts, the history's
        final row (on disk when this returns), the views, the priors, whoever waits. ``timed`` False: the job
        never ran at the server (nothing to time)."""
        run = job.run
        if timed:
            self.mark_finished(job)
        run.status, run.error, run.stopped = status, error, False
        if isinstance(error, JobError) and error.run is None:
            error.run = run
        estimate = run.estimate.usd if run.estimate else 0.0
        # A server's figure counts only when it can be right (a negative one would refill the budget).
        counted = count_cost(run.status, estimate, run.cost_actual_usd, run.cost_reported)
        run.cost_budget_usd, run.cost_budget_basis = counted.usd, counted.basis
        if job.reservation is not None:
            self.budget.settle(job.reservation, counted.usd)
        self.jobs.pop(run.run_id, None)
        await self.emit(job, Finished(run))
        if run.error is not None and not job.listeners:  # a view shows it already: said once, not twice
            log.warning("grok_nb: %s", run.error)
        job.end()
        return run

    async def stop(self, job: Job, reason: str) -> None:
        """Nobody waits for the job any more; it stays resumable (the row says how, on disk first)."""
        run = job.run
        self.jobs.pop(run.run_id, None)
        # On disk before this process shows it: whoever sees run.stopped finds the resume note in the history.
        if not job.unrecorded:
            row = row_of(replace(run, stopped=True), self.base_url)
            await asyncio.shield(asyncio.wrap_future(self.writer.update(run.run_id, row)))
        run.stopped = True
        await self.emit(job, Stopped(run, reason=reason))
        job.end()

    async def save(self, job: Job) -> None:
        """Write the run's state now and wait until it is on disk (a batch request added, say)."""
        await self.emit(job, Saved(job.run))

    # -- download --------------------------------------------------------------------------------
    async def deliver(self, job: Job, *, lifetime: str = "minutes to hours") -> Run:
        """A job done at the server: fetch its MP4 (checked whole) and conclude it done, download_failed or expired
        (a URL that answers gone)."""
        run = job.run
        run.error = None
        name = run.request_id or f"batch-{run.run_id}"
        dest = self.cache_dir / f"{_safe_name(name)}.mp4"
        got = await self.sender.download(job, run.url, dest, known_bytes=run.video_bytes, lifetime=lifetime)
        if isinstance(got, Fetched):
            run.path, run.video_bytes = got.path, got.size
            await self.conclude(job, after_download(True), None)
            job.measuring = asyncio.get_running_loop().create_task(self._measure(job))
            self._measuring.add(job.measuring)
            job.measuring.add_done_callback(self._measuring.discard)
            return run
        run.path = None
        return await self.conclude(job, after_download(False, gone=got.gone), got)

    async def _measure(self, job: Job) -> None:
        """Measure the downloaded video in a worker thread (the run is done already) and keep the measures with the
        run and in the history; a file that cannot be measured marks the run (``m_error``), never the job."""
        run = job.run
        assert run.path is not None
        try:
            run.measures = await asyncio.to_thread(measure, run.path)
            fields: dict[str, Any] = {**run.measures.as_columns(), "m_error": None}
        except MeasureError as exc:
            fields = {"m_error": str(exc)[:500]}
        except Exception as exc:  # a bug in measuring must never cost the video: say it, keep the run done
            log.warning("grok_nb: measuring %s failed (%s: %s)", run.path, type(exc).__name__, exc)
            fields = {"m_error": f"measuring failed ({type(exc).__name__}: {exc})"[:500]}
        run.extra.update(fields)
        self.writer.update(run.run_id, fields)
        for callback in job.listeners:
            self.views.notify(callback, run)

    async def measured(self, job: Job, timeout: float = MEASURE_WAIT_S) -> None:
        """Wait (at most ``timeout``) for the job's video to be measured: whoever waited for the job finds
        ``run.measures`` filled in. The job is done already; its views showed it without waiting."""
        if job.measuring is not None:
            await asyncio.wait({asyncio.shield(job.measuring)}, timeout=timeout)

    async def aclose(self) -> None:
        """Stop scheduling, end the waits still polling (their jobs stay resumable), write what is waiting, close
        the connections."""
        self.sender.closing = True
        polling = [job for job in self.jobs.values() if job.polling]
        await self.scheduler.aclose()
        for _ in range(500):  # each wait still polling ends in ClientClosedError once its stop note is written
            if not any(job.polling for job in polling):
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(self.scheduler.limiter.close)
        if self._measuring:  # measures of videos just downloaded reach the history before it closes
            await asyncio.wait(set(self._measuring), timeout=MEASURE_WAIT_S)
        await asyncio.to_thread(self.writer.close)
        await asyncio.to_thread(self.views.close)
        await self.api.aclose()


def _poll_summary(observation: Any, error: APIError | None, answer: Answer) -> str:
    if isinstance(observation, JobStatus):
        progress = f" progress={observation.progress}" if observation.progress is not None else ""
        return f"status={observation.status}{progress}"
    if isinstance(observation, Unreadable):
        return f"unreadable: {observation.detail}"
    if error is not None:
        return error.server_message
    return f"no answer ({answer.problem})"


def _safe_name(request_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in request_id)[:100]


def reconcile_orphans(rows: Sequence[dict[str, Any]], active: set[str], me: str
                      ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Split unfinished history rows into (rows to re-attach, rows cut off mid-submit, rows never sent).

    A row without a request id whose process is gone can never learn one: if its POST had left
    (``submitted_at`` is written before it leaves) it becomes ``uncertain``, else it was never sent.
    Rows that another live process is still handling are left alone.
    """
    attach: list[dict[str, Any]] = []
    lost: list[dict[str, Any]] = []
    unsent: list[dict[str, Any]] = []
    for row in rows:
        if row["run_id"] in active:
            continue
        owner = row.get("owner")
        alive = owner_alive(owner)  # True for this very process
        if row.get("request_id"):
            if alive and owner != me:
                continue  # another notebook is waiting for it
            attach.append(row)
            continue
        if alive:
            continue  # its POST is still in flight
        if alive is None and owner:
            created = datetime.fromisoformat(row["created_at"])
            if (_now() - created).total_seconds() < FOREIGN_SUBMIT_GRACE_S:
                continue  # on another machine, maybe still sending
        (lost if row.get("submitted_at") else unsent).append(row)
    return attach, lost, unsent


NOT_SENT_CLOSED = ("The client was closed before this submit's turn came: nothing was sent and nothing was billed. "
                   "Submit it again if you still want it.")
UNCERTAIN_AFTER_CRASH = (
    "The process that sent this submit ended before a request id came back, so the submit may or may not have "
    "started a paid job. Nothing was resent, to avoid paying twice. Check your xAI console "
    "(https://console.x.ai) for a job made at {when} before submitting it again."
)
NOT_SENT_AFTER_CRASH = (
    "The process that was to send this submit ended before it left: nothing was sent and nothing was billed. "
    "Submit it again if you still want it."
)
