"""The async driver of jobs: submit, wait, download, under one scheduler, one budget and one history writer.

It runs the lifecycle of ``jobs.py`` against the API (``transport.py``) and tells its
subscribers (the history writer, the views, the latency priors) what happened. It never
chooses a server (the entry points do) and never blocks the loop it polls on: store writes
and view updates go to their own threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api.probe import mp4_problem
from ..api.responses import JobStatus, parse_job_status, parse_poll_error
from ..errors import (
    APIError,
    ClientClosedError,
    ConnectionFailed,
    DeadlineExceeded,
    DownloadError,
    GrokError,
    JobExpiredError,
    JobFailedError,
    ModeratedError,
    NotFoundError,
    NoVideoError,
    RateLimitError,
    SubmitUncertainError,
    error_from_response,
    parse_retry_after,
    redact,
)
from ..history.owners import owner_alive, process_owner
from ..jobs.budget import Budget, Reservation
from ..jobs.lifecycle import (
    Created,
    Exchange,
    Finished,
    JobEvent,
    Progress,
    RequestIdKnown,
    Status,
    Stopped,
    Submitted,
    after_download,
    after_poll,
    count_cost,
    submit_status,
)
from ..jobs.policy import (
    HttpProblem,
    PollPolicy,
    Problem,
    Stop,
    SubmitOutcome,
    TransportProblem,
    Unreadable,
    Wait,
    retry_step,
)
from ..jobs.results import Run
from .background import HistoryWriter, ViewDispatcher
from .cache import cached_problem, part_path
from .scheduler import POLL, SUBMIT, Observation, PriorBook, Scheduler, plan_next_poll
from .transport import VIDEO_TOO_LARGE, Answer, Api, path_of

log = logging.getLogger("grok_nb")

UpdateCallback = Callable[[Run], Any]
#: A row left ``submitting`` by a process on another machine is taken as cut off after this long.
FOREIGN_SUBMIT_GRACE_S = 10 * 60.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Reading:
    """What one answer means to the request that got it: a value, or a problem (and the error it would end in)."""

    value: Any = None
    problem: Problem | None = None
    error: GrokError | None = None
    summary: str = ""  # one line for the history's log of exchanges


@dataclass(frozen=True)
class Reply:
    """How one request ended under the retry rule: ``ok`` with a value, or the outcome that stopped it."""

    answer: Answer | None  # None: the deadline came before it could be sent
    value: Any = None
    problem: Problem | None = None
    error: GrokError | None = None
    outcome: str = "ok"  # ok, or a Stop outcome: deadline, fatal, unreadable, uncertain, refused
    attempts: int = 0


@dataclass
class Job:
    """One job in this process: its run, its spec, its money, who listens."""

    run: Run
    endpoint: str | None = None
    body: dict[str, Any] | None = None
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


class Engine:
    """Runs jobs for one client: ``start`` a new one, ``attach`` to a known one."""

    def __init__(self, api: Api, *, store: Any, cache_dir: Path, policy: PollPolicy, limiter: Any, budget: Budget,
                 backend: str, base_url: str, speed: float = 1.0, secret: str | None = None):
        self.api = api
        self.store = store
        self.cache_dir = cache_dir
        self.policy = policy
        self.scheduler = Scheduler(limiter)
        self.budget = budget
        self.backend, self.base_url, self.secret = backend, base_url, secret
        self.priors = PriorBook(speed)
        self.writer = HistoryWriter(store)
        self.views = ViewDispatcher()
        self.jobs: dict[str, Job] = {}  # run_id → job, while someone may still wait on it
        self.owner = process_owner()
        self.submit_slot = asyncio.Lock()
        self._rng = random.Random()
        self._paused = False  # this engine paused the key after a Retry-After
        self._closing = False

    # -- events ----------------------------------------------------------------------------------
    def _row(self, run: Run) -> dict[str, Any]:
        return run.to_row(self.base_url)

    async def _emit(self, job: Job, event: JobEvent) -> None:
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
            self.priors.learn(job.prior_key, run.latency_s)
        if hasattr(self.scheduler.limiter, "jobs"):  # other processes on the key see how busy this one is
            self.scheduler.limiter.jobs = len(self.jobs)
        for callback in job.listeners:
            self.views.notify(callback, run)
        if event.durable and future is not None:
            # The row, the request id and every outcome are on disk before the job goes on
            # (shielded: a waiter cancelled meanwhile must not cancel the write).
            await asyncio.shield(asyncio.wrap_future(future))
        if isinstance(event, (Finished, Stopped)) and job.listeners:
            # Whoever waits on the job sees its views already showing how it ended.
            await asyncio.shield(asyncio.to_thread(self.views.flush, 5.0))

    async def _exchange(self, job: Job, method: str, url: str, answer: Answer, summary: str) -> None:
        entry = {"at": _now().isoformat(), "method": method, "path": path_of(url), "status": answer.status_code,
                 "elapsed_ms": answer.elapsed_ms, "summary": redact(summary, self.secret)[:200]}
        await self._emit(job, Exchange(job.run, entry=entry))

    # -- starting --------------------------------------------------------------------------------
    async def start(self, run: Run, endpoint: str, body: dict[str, Any], reservation: Reservation | None,
                    on_update: UpdateCallback | None) -> Awaitable[Run]:
        """Record the run, start its submit (which no waiter can cancel), return the wait."""
        job = Job(run, endpoint, body, reservation, [on_update] if on_update else [],
                  prior_key=PriorBook.key(run.model, run.kind, run.resolution, run.params.get("duration")))
        try:
            await self._emit(job, Created(run))  # the row exists before a byte is sent
        except BaseException:
            if reservation is not None:
                self.budget.release(reservation)
            raise
        self.jobs[run.run_id] = job
        job.submit_task = asyncio.get_running_loop().create_task(self._submit(job), name=f"grok-nb-submit-{run.run_id}")
        # Its error reaches whoever waits; when nobody does any more, the history holds it.
        job.submit_task.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._run(job)

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
                    await self._stop(job, "stopped waiting")
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
        job = Job(run, listeners=[on_update] if on_update else [],
                  prior_key=PriorBook.key(run.model, run.kind, run.resolution, run.params.get("duration")))
        if run.submitted_at is not None:  # only wall-clock times survive a restart
            job.accepted_at = time.monotonic() - max(0.0, (_now() - run.submitted_at).total_seconds())
        run.stopped, run.error = False, None
        self.jobs[run.run_id] = job
        if new:
            job.unrecorded = True  # its row is written once the server answers for the id (a 404 leaves none)
        else:
            await self._emit(job, Progress(run))
        return self._wait(job, at_once=True)

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
        """Let POSTs still in flight finish (their request ids must reach the history)."""
        tasks = [j.submit_task for j in self.jobs.values() if j.submit_task is not None and not j.submit_task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)

    async def _turn(self, job: Job, kind: int, due: float | None = None, until: float | None = None,
                    replan: Callable[[], float] | None = None) -> bool:
        """Wait for the scheduler's go (False when ``until`` passes first); say so on the run when the key's
        shared budget keeps it waiting for others. ``replan`` re-plans ``due`` when it comes (see Scheduler.turn)."""
        if self._closing:
            raise ClientClosedError(request_id=job.run.request_id, run=job.run)
        turn = asyncio.ensure_future(self.scheduler.turn(kind, due, replan))
        try:
            slack = max(0.0, (due or 0.0) - time.monotonic()) + 5 * self.policy.interval
            left = None if until is None else max(0.0, until - time.monotonic())
            done, _ = await asyncio.wait({turn}, timeout=slack if left is None else min(slack, left))
            if not done and (left is None or left > slack):
                status = getattr(self.scheduler.limiter, "status", None)
                note = status().get("message") if status is not None else None
                if note:
                    job.run.waiting_note = note
                    for callback in job.listeners:
                        self.views.notify(callback, job.run)
                left = None if until is None else max(0.0, until - time.monotonic())
                done, _ = await asyncio.wait({turn}, timeout=left)
            if not done:
                return False
            if turn.cancelled() and self._closing:  # the scheduler was closed under this wait, not its caller
                raise ClientClosedError(request_id=job.run.request_id, run=job.run)
            turn.result()
            return True
        finally:
            if not turn.done():
                turn.cancel()
            if job.run.waiting_note:
                job.run.waiting_note = None

    # -- the one retry loop ------------------------------------------------------------------------
    async def _send(self, job: Job, method: str, url: str, read: Callable[[Answer], Reading], *,
                    started: float, body: Any = None, turn: int | None = None, due: float | None = None,
                    part: Path | None = None, before: Callable[[], Awaitable[None]] | None = None,
                    after_problem: Callable[[], Awaitable[None]] | None = None,
                    slot: asyncio.Lock | None = None,
                    on_answer: Callable[[Reading], Awaitable[None]] | None = None,
                    replan: Callable[[], float] | None = None) -> Reply:
        """Send one request until it gets a usable answer or the policy's one retry rule says stop.

        Submits, polls and downloads all come through here: ``read`` says what an answer means
        (a value, or a problem and its error), :func:`retry_step` whether to try again and how long
        to wait (a POST that may have reached the server is never resent), counting attempts the
        same way for all three. ``turn`` asks the scheduler for a slot (downloads go to another host
        and take none); ``started`` is when the wait began: the deadline counts from it. ``slot`` is
        held from the turn until ``on_answer`` has run (submits: one POST at a time, so each request
        id is durable before the next POST leaves). ``replan`` re-plans ``due`` when it comes (a poll planned
        from progress: jobs that finished meanwhile may have taught the priors); a retry's wait is not re-planned.
        """
        deadline = started + self.policy.deadline
        # A GET waits for its slot until the deadline (plus one shortest gap, for a last try at it);
        # a submit waits in line for the key's budget however long the line is: nothing was sent.
        turn_until = None if method == "POST" else deadline + self.policy.interval
        attempt = 0
        while True:
            async with slot if slot is not None else contextlib.nullcontext():
                if turn is not None:
                    if not await self._turn(job, turn, due, turn_until, replan):
                        return Reply(None, outcome="deadline", attempts=attempt)
                elif due is not None and due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                if before is not None:
                    await before()
                # The deadline bounds a GET in flight too: an answer that trickles in is cut off at it. A submit is
                # not cut: once it may have reached the server, cutting it makes a paid job uncertain.
                until = None if method == "POST" else deadline
                answer = await (self.api.download(url, part, until=until) if part is not None
                                else self.api.request(method, url, body, until=until))
                if self._closing and method == "GET":  # the answer (if any) came as the connections closed
                    raise ClientClosedError(request_id=job.run.request_id, run=job.run)
                reading = read(answer)
                if on_answer is not None:
                    await on_answer(reading)
            await self._exchange(job, method, url, answer, reading.summary)
            if reading.problem is None:
                if turn is not None:
                    self._lift_pause()
                return Reply(answer, reading.value, None, reading.error, "ok", attempt + 1)
            step = retry_step(self.policy, reading.problem, resend_safe=method == "GET", attempt=attempt,
                              elapsed=time.monotonic() - started, rand=self._rng.random())
            if isinstance(step, Stop):
                return Reply(answer, reading.value, reading.problem, reading.error, step.outcome, attempt + 1)
            if isinstance(reading.problem, HttpProblem) and self.policy.cap_retry_after(reading.problem.retry_after):
                # The key's other requests wait too, as long as this one does: capped, never past the deadline.
                self._paused = True
                self.scheduler.limiter.pause(step.delay)
            log.info("grok_nb: %s %s: %s; trying again in %.2f s", method, path_of(url), step.reason, step.delay)
            if after_problem is not None:
                await after_problem()
            due, replan = time.monotonic() + step.delay, None
            attempt += 1

    def _lift_pause(self) -> None:
        """A good answer from the API after a Retry-After pause: the pause has done its job, end it."""
        if self._paused:
            self._paused = False
            lift = getattr(self.scheduler.limiter, "lift", None)
            if lift is not None:
                lift()

    # -- submit ----------------------------------------------------------------------------------
    async def _submit(self, job: Job) -> None:
        run = job.run
        assert job.endpoint is not None

        async def before() -> None:
            run.submitted_at = _now()
            await self._emit(job, Submitted(run))

        async def durable(reading: Reading) -> None:
            # On disk before anyone sees it, and before the next POST leaves (the slot is held until then).
            if reading.value is not None:
                request_id = str(reading.value)
                try:
                    await asyncio.shield(asyncio.wrap_future(self.writer.record_request_id(run.run_id, request_id)))
                except Exception:
                    run.request_id = request_id  # not on disk: kept in memory, in the error and in the journal
                    raise

        reply = await self._send(job, "POST", job.endpoint, functools.partial(self._read_submit, run),
                                 started=time.monotonic(), body=job.body, turn=SUBMIT, before=before,
                                 slot=self.submit_slot, on_answer=durable)
        if reply.outcome == "ok":
            assert reply.answer is not None
            request_id = str(reply.value)
            # On disk before anything else happens, even before this process shows the id to anyone.
            await asyncio.shield(asyncio.wrap_future(self.writer.update(
                run.run_id, {**self._row(run), "request_id": request_id, "status": Status.PENDING.value})))
            run.request_id, run.status = request_id, Status.PENDING
            job.accepted_at = (reply.answer.sent_at + reply.answer.received_at) / 2
            await self._emit(job, RequestIdKnown(run))
            if job.waiter_gone:
                await self._stop(job, "stopped waiting")
            return
        error = reply.error
        assert error is not None
        run.status, run.error = submit_status(reply.outcome), error
        await self._finish(job)
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
        observations: list[Observation] = []
        polls = 0
        warned: set[str] = set()
        rtt = 0.0
        accepted = job.accepted_at

        def plan(now: float, seen: tuple[Observation, ...] = (), rtt: float = 0.0) -> Callable[[], float]:
            # Asked again when the poll comes due: jobs that finished meanwhile may have taught the priors.
            def ask() -> float:
                at = accepted + plan_next_poll(seen, self.priors.prior(job.prior_key), self.policy, now - accepted, rtt)
                return min(at, deadline)
            return ask

        replan: Callable[[], float] | None = None if at_once else plan(started)
        due = started if replan is None else replan()
        path = f"/v1/videos/{run.request_id}"

        async def count_poll() -> None:
            run.polls += 1

        async def show_progress() -> None:
            await self._emit(job, Progress(run))

        job.polling = True
        try:
            while True:
                reply = await self._send(job, "GET", path, functools.partial(self._read_poll, run), started=started,
                                         turn=POLL, due=due, before=count_poll, after_problem=show_progress,
                                         replan=replan)
                polls += reply.attempts
                if reply.outcome != "ok":
                    return await self._conclude(job, Stop(reply.outcome), None, None, reply.error, started)
                answer, observation = reply.answer, reply.value
                assert answer is not None and isinstance(observation, JobStatus)
                if job.unrecorded:  # the server knows the id: from now on the history does too
                    await self._emit(job, Created(run))
                rtt = answer.received_at - answer.sent_at
                self._apply(run, observation, warned)
                # Dated within half its round trip: a slow answer widens the window instead of contradicting it.
                observations.append(Observation((answer.sent_at + answer.received_at) / 2 - accepted,
                                                observation.progress, rtt / 2))
                now = time.monotonic()
                later = plan(now, tuple(observations), rtt)
                planned = later() - now
                step, status = after_poll(self.policy, observation, elapsed=now - started, polls=polls,
                                          errors_in_a_row=0, planned=planned)
                if isinstance(step, Wait):
                    await self._emit(job, Progress(run))
                    due, replan = now + step.delay, later
                    continue
                if step.outcome == "done":  # how its end followed its progress teaches the tail at 99 %
                    self.priors.learn_end(job.prior_key, observations)
                return await self._conclude(job, step, status, observation, None, started)
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(job, "stopped waiting"))
            raise
        except ClientClosedError as exc:
            run.error = exc
            await asyncio.shield(self._stop(job, "the client was closed"))
            raise
        finally:
            job.polling = False

    def _read_poll(self, run: Run, answer: Answer) -> Reading:
        observation, error = self._classify_poll(run, answer)
        summary = _poll_summary(observation, error, answer)
        if isinstance(observation, JobStatus):
            return Reading(observation, None, None, summary)
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
        run.take(progress=status.progress, url=status.url, duration=status.duration, cost_usd=status.cost_usd,
                 cost_reported=status.cost_reported, model=status.model)

    async def _conclude(self, job: Job, step: Stop, status: Status | None, observation: JobStatus | None,
                        error: GrokError | None, started: float) -> Run:
        run = job.run
        waited = time.monotonic() - started
        if step.outcome == "deadline":
            run.error = DeadlineExceeded(waited, request_id=run.request_id, run=run)
            await self._stop(job, "deadline")
            raise run.error
        if step.outcome in ("fatal", "unreadable"):
            assert error is not None
            if isinstance(error, NotFoundError):
                # The server does not know this id: nothing will ever come of waiting.
                run.status, run.error = Status.FAILED, error
                if job.unrecorded:  # attached by an id the history never had: it keeps nothing of it
                    self.jobs.pop(run.run_id, None)
                    raise error
                await self._finish(job)
                raise error
            # A 400/401/403 on a poll, or answers that cannot be read: say so and keep the request id;
            # the job may still be fine.
            run.error = error
            reason = ("the answers could not be read" if step.outcome == "unreadable" else
                      f"the poll was answered {error.status_code}" if isinstance(error, APIError) else str(error))
            await self._stop(job, reason)
            raise error
        self._finish_timing(job)
        if step.outcome == "done":
            run.error = None
            await self._download(job)
        elif status is Status.MODERATED:
            run.status, run.error = status, ModeratedError(request_id=run.request_id, run=run)
        elif status is Status.EXPIRED:
            run.status, run.error = status, JobExpiredError(request_id=run.request_id, run=run)
        elif step.outcome == "no_video":
            assert observation is not None
            run.status = Status.FAILED
            run.error = NoVideoError(observation.no_video_reason, request_id=run.request_id, run=run)
        else:
            assert observation is not None
            run.status = Status.FAILED
            run.error = JobFailedError(observation.error_code, observation.error_message,
                                       request_id=run.request_id, run=run)
        await self._finish(job)
        if run.error is not None and not job.listeners:  # a view shows it already: said once, not twice
            log.warning("grok_nb: %s", run.error)
        return run

    def _finish_timing(self, job: Job) -> None:
        run = job.run
        run.finished_at = _now()
        if job.accepted_at is not None:
            run.latency_s = round(time.monotonic() - job.accepted_at, 3)

    async def _finish(self, job: Job) -> None:
        run = job.run
        run.stopped = False
        estimate = run.estimate.usd if run.estimate else 0.0
        # A server's figure counts only when it can be right (a negative one would refill the budget).
        counted = count_cost(run.status, estimate, run.cost_actual_usd, run.cost_reported)
        run.cost_budget_usd, run.cost_budget_basis = counted.usd, counted.basis
        if job.reservation is not None:
            self.budget.settle(job.reservation, counted.usd)
        self.jobs.pop(run.run_id, None)
        await self._emit(job, Finished(run))

    async def _stop(self, job: Job, reason: str) -> None:
        run = job.run
        self.jobs.pop(run.run_id, None)
        # On disk before this process shows it: whoever sees run.stopped finds the resume note in the history.
        if not job.unrecorded:
            row = replace(run, stopped=True).to_row(self.base_url)
            await asyncio.shield(asyncio.wrap_future(self.writer.update(run.run_id, row)))
        run.stopped = True
        await self._emit(job, Stopped(run, reason=reason))

    # -- download --------------------------------------------------------------------------------
    async def _download(self, job: Job) -> None:
        """Stream the MP4 to a temporary file, check it, rename it into the cache: done or download_failed."""
        run = job.run
        error = await self._fetch(job)
        run.status = after_download(error is None, gone=getattr(error, "gone", False))
        run.error = error

    async def _fetch(self, job: Job) -> DownloadError | None:
        run = job.run
        url = run.url
        assert run.request_id
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return DownloadError(f"the server said the video is done but gave no usable URL ({url!r}); "
                                 "nothing to download", request_id=run.request_id, run=run)
        dest = self.cache_dir / f"{_safe_name(run.request_id)}.mp4"
        damaged = None
        if dest.exists():  # already fetched (resumed, or asked for twice): handed back only if whole
            damaged = await asyncio.to_thread(cached_problem, dest, run.video_bytes)
            if damaged is None:
                run.path = dest
                return None
            log.warning("grok_nb: the cached video %s is damaged (%s); downloading it again", dest, damaged)
            dest.unlink(missing_ok=True)
            run.path = None
        part = part_path(dest)
        try:
            try:
                # A done video gets a whole deadline of its own: its URL expires, the job is paid for.
                reply = await self._send(job, "GET", url, functools.partial(self._read_download, run, url),
                                         started=time.monotonic(), part=part)
            except OSError as exc:
                return DownloadError(f"could not write the video to {self.cache_dir} ({exc.strerror or exc}). "
                                     f"Free some space or fix GROK_NB_HOME, then call client.resume() soon: the "
                                     "URL is ephemeral (minutes to hours)", request_id=run.request_id, run=run)
            if reply.outcome != "ok":
                error = reply.error
                assert isinstance(error, DownloadError)
                if damaged is not None:
                    text = str(error.args[0]) if error.args else str(error)
                    gone = getattr(error, "gone", False)
                    error = DownloadError(f"the cached copy is damaged ({damaged}) and {text[:1].lower()}{text[1:]}",
                                          request_id=run.request_id, run=run)
                    error.gone = gone  # type: ignore[attr-defined]
                return error
            assert reply.answer is not None
            broken = await asyncio.to_thread(mp4_problem, part, reply.answer.body)
            if broken is not None:
                return DownloadError(f"the download is not a whole MP4 file: {broken}",
                                     request_id=run.request_id, run=run)
            os.replace(part, dest)
            run.path, run.video_bytes = dest, reply.answer.body
            return None
        finally:
            part.unlink(missing_ok=True)

    def _read_download(self, run: Run, url: str, answer: Answer) -> Reading:
        if answer.status_code == 200 and answer.problem is None:
            return Reading(answer.body, None, None, f"{answer.body} bytes")
        summary = answer.problem or f"download refused ({answer.status_code})"
        problem: Problem
        if answer.problem == "UnsupportedProtocol" or answer.status_code in (401, 403, 404, 410):
            why = ("its URL scheme is not supported" if answer.problem == "UnsupportedProtocol" else
                   f"the video's URL answered {answer.status_code}: it has expired or is gone. Result URLs "
                   "are ephemeral (minutes to hours, 1 hour for batches); generate the video again")
            error = DownloadError(why, request_id=run.request_id, run=run)
            error.gone = answer.problem != "UnsupportedProtocol"  # type: ignore[attr-defined]
            problem = (TransportProblem(summary, final=True) if answer.status_code is None
                       else HttpProblem(answer.status_code))
            return Reading(None, problem, error, summary)
        if answer.status_code is None:
            problem = TransportProblem(summary, never_sent=answer.never_sent)
        elif answer.status_code == 200:  # cut short, or too large to keep
            problem = TransportProblem(summary, final=answer.problem == VIDEO_TOO_LARGE)
        else:
            retry_after = parse_retry_after(answer.headers.get("retry-after")) if answer.headers is not None else None
            problem = HttpProblem(answer.status_code, retry_after)
        error = DownloadError(f"could not download the video ({answer.problem or answer.status_code}); "
                              f"its URL is {url}, ephemeral (minutes to hours): client.resume() tries again soon",
                              request_id=run.request_id, run=run)
        return Reading(None, problem, error, summary)

    async def aclose(self) -> None:
        """Stop scheduling, end the waits still polling (their jobs stay resumable), write what is waiting, close
        the connections."""
        self._closing = True
        polling = [job for job in self.jobs.values() if job.polling]
        await self.scheduler.aclose()
        for _ in range(500):  # each wait still polling ends in ClientClosedError once its stop note is written
            if not any(job.polling for job in polling):
                break
            await asyncio.sleep(0.01)
        close = getattr(self.scheduler.limiter, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
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


UNCERTAIN_AFTER_CRASH = (
    "The process that sent this submit ended before a request id came back, so the submit may or may not have "
    "started a paid job. Nothing was resent, to avoid paying twice. Check your xAI console "
    "(https://console.x.ai) for a job made at {when} before submitting it again."
)
NOT_SENT_AFTER_CRASH = (
    "The process that was to send this submit ended before it left: nothing was sent and nothing was billed. "
    "Submit it again if you still want it."
)
