"""The async driver of jobs: submit, wait, download, under one scheduler, one budget and one history writer.

It runs the lifecycle of ``jobs.py`` against the API (``transport.py``) and tells its
subscribers (the history writer, the views, the latency priors) what happened. It never
chooses a server (the entry points do) and never blocks the loop it polls on: store writes
and view updates go to their own threads.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..api.responses import JobStatus, parse_job_status, parse_poll_error
from ..errors import (
    APIError,
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
    after_submit,
    settle_cost,
)
from ..jobs.policy import HttpProblem, PollPolicy, Stop, SubmitOutcome, TransportProblem, Wait, next_step
from ..jobs.results import Run
from ..settings import owner_alive, process_owner
from .background import HistoryWriter, ViewDispatcher
from .scheduler import POLL, SUBMIT, Observation, PriorBook, Scheduler, plan_next_poll
from .transport import Answer, Api, is_mp4, path_of

log = logging.getLogger("grok_nb")

UpdateCallback = Callable[[Run], Any]
#: A row left ``submitting`` by a process on another machine is taken as cut off after this long.
FOREIGN_SUBMIT_GRACE_S = 10 * 60.0


def _now() -> datetime:
    return datetime.now(timezone.utc)


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
        self._rng = random.Random()

    # -- events ----------------------------------------------------------------------------------
    def _row(self, run: Run) -> dict[str, Any]:
        return run.to_row(self.base_url)

    async def _emit(self, job: Job, event: JobEvent) -> None:
        run = event.run
        if isinstance(event, Exchange):
            run.exchanges.append(event.entry)
            self.writer.exchange(run.run_id, event.entry)
        elif isinstance(event, Created):
            future = self.writer.insert(self._row(run))  # the store adds who made it and which process owns it
        else:
            future = self.writer.update(run.run_id, self._row(run))
        if isinstance(event, Finished) and run.status is Status.DONE:
            self.priors.learn(job.prior_key, run.latency_s)
        if hasattr(self.scheduler.limiter, "jobs"):  # other processes on the key see how busy this one is
            self.scheduler.limiter.jobs = len(self.jobs)
        for callback in job.listeners:
            self.views.notify(callback, run)
        if event.durable:
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
        """Wait for a job that already has a request id (resumed, or started elsewhere: ``new`` records its row)."""
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
        await self._emit(job, Created(run) if new else Progress(run))
        return self._wait(job)

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

    async def _turn(self, job: Job, kind: int, due: float | None = None,
                    replan: Callable[[], float] | None = None) -> None:
        """Wait for the scheduler's go; when the key's shared budget keeps it waiting for others, say so on the run."""
        turn = asyncio.ensure_future(self.scheduler.turn(kind, due, replan))
        try:
            slack = max(0.0, (due or 0.0) - time.monotonic()) + 5 * self.policy.interval
            done, _ = await asyncio.wait({turn}, timeout=slack)
            if not done:
                status = getattr(self.scheduler.limiter, "status", None)
                note = status().get("message") if status is not None else None
                if note:
                    job.run.waiting_note = note
                    for callback in job.listeners:
                        self.views.notify(callback, job.run)
                await turn
        finally:
            if not turn.done():
                turn.cancel()
            if job.run.waiting_note:
                job.run.waiting_note = None

    # -- submit ----------------------------------------------------------------------------------
    async def _submit(self, job: Job) -> None:
        run, attempt, started = job.run, 0, time.monotonic()
        assert job.endpoint is not None
        while True:
            await self._turn(job, SUBMIT)
            run.submitted_at = _now()
            await self._emit(job, Submitted(run))
            answer = await self.api.request("POST", job.endpoint, job.body)
            outcome, request_id, error = self._classify_submit(run, answer)
            await self._exchange(job, "POST", job.endpoint, answer,
                                 f"request_id={request_id}" if request_id
                                 else str(getattr(error, "server_message", error)))
            step, status = after_submit(self.policy, outcome, attempt, self._rng.random(),
                                        elapsed=time.monotonic() - started)
            if status is Status.PENDING:
                # On disk before anything else happens, even before this process shows the id to anyone.
                await asyncio.shield(asyncio.wrap_future(self.writer.update(
                    run.run_id, {**self._row(run), "request_id": request_id, "status": Status.PENDING.value})))
                run.request_id, run.status = str(request_id), Status.PENDING
                job.accepted_at = (answer.sent_at + answer.received_at) / 2
                await self._emit(job, RequestIdKnown(run))
                if job.waiter_gone:
                    await self._stop(job, "stopped waiting")
                return
            if status is not None:
                assert error is not None
                run.status, run.error = status, error
                await self._finish(job)
                raise error
            if outcome.retry_after is not None:
                self.scheduler.limiter.pause(outcome.retry_after)
            assert isinstance(step, Wait)  # a Stop came back with a status above
            log.info("grok_nb: submit not accepted (%s); retrying in %.2f s", step.reason, step.delay)
            await asyncio.sleep(step.delay)
            attempt += 1

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
    async def _wait(self, job: Job) -> Run:
        run = job.run
        started = time.monotonic()
        if job.accepted_at is None:
            job.accepted_at = started
        observations: list[Observation] = []
        polls = errors_in_a_row = 0
        warned: set[str] = set()
        rtt = 0.0
        accepted = job.accepted_at

        def plan(now: float, seen: tuple[Observation, ...] = (), rtt: float = 0.0) -> Callable[[], float]:
            # Asked again when the poll comes due: jobs that finished meanwhile may have taught the priors.
            def ask() -> float:
                at = accepted + plan_next_poll(seen, self.priors.prior(job.prior_key), self.policy, now - accepted, rtt)
                return min(at, started + self.policy.deadline)
            return ask

        first = plan(started)
        replan: Callable[[], float] | None = first
        due = first()
        path = f"/v1/videos/{run.request_id}"
        job.polling = True
        try:
            while True:
                await self._turn(job, POLL, due, replan)
                answer = await self.api.request("GET", path)
                polls += 1
                run.polls += 1
                observation, error = self._classify_poll(run, answer)
                await self._exchange(job, "GET", path, answer, _poll_summary(observation, error, answer))
                if isinstance(observation, JobStatus):
                    errors_in_a_row = 0
                    rtt = (answer.received_at - answer.sent_at)
                    self._apply(run, observation, warned)
                    observations.append(Observation((answer.sent_at + answer.received_at) / 2 - job.accepted_at,
                                                    observation.progress, rtt / 2))
                else:
                    errors_in_a_row += 1
                    if isinstance(observation, HttpProblem) and observation.retry_after is not None:
                        self.scheduler.limiter.pause(observation.retry_after)
                now = time.monotonic()
                step, status = after_poll(self.policy, observation, elapsed=now - started, polls=polls,
                                          errors_in_a_row=errors_in_a_row, rand=self._rng.random())
                if isinstance(step, Wait):
                    await self._emit(job, Progress(run))
                    if isinstance(observation, JobStatus):
                        later = plan(now, tuple(observations), rtt)
                        due, replan = later(), later
                    else:
                        due, replan = now + step.delay, None
                    continue
                if step.outcome == "done":
                    self.priors.learn_end(job.prior_key, observations)
                return await self._conclude(job, step, status, observation, error, started)
        except asyncio.CancelledError:
            await asyncio.shield(self._stop(job, "stopped waiting"))
            raise
        finally:
            job.polling = False

    def _classify_poll(self, run: Run,
                       answer: Answer) -> tuple[JobStatus | HttpProblem | TransportProblem, APIError | None]:
        if answer.status_code is None:
            return TransportProblem(answer.problem or ""), None
        if answer.problem is not None:  # an answer too large to read: nothing to learn from it
            return HttpProblem(answer.status_code), APIError(answer.problem, status_code=answer.status_code,
                                                             request_id=run.request_id)
        if answer.status_code < 400:
            return parse_job_status(answer.body), None
        outcome = parse_poll_error(answer.status_code, answer.body)  # moderation sent as a 400, with its cost
        if outcome is not None:
            return outcome, None
        error = error_from_response(answer.status_code, answer.body, headers=answer.headers,
                                    request_id=run.request_id, secret=self.secret)
        return HttpProblem(answer.status_code, error.retry_after), error

    def _apply(self, run: Run, status: JobStatus, warned: set[str]) -> None:
        if not status.known_status and status.status not in warned:
            warned.add(status.status)
            log.warning("grok_nb: request %s has status %r, not one of xAI's documented statuses; "
                        "treating it as still running", run.request_id, status.status)
        if status.progress is not None:
            run.progress = status.progress
        if status.url:
            run.url = status.url
        if status.duration is not None:
            run.duration = status.duration
        if status.cost_usd is not None:
            run.cost_actual_usd = status.cost_usd
        if status.model and not run.model:
            run.model = status.model

    async def _conclude(self, job: Job, step: Stop, status: Status | None, observation: Any,
                        error: APIError | None, started: float) -> Run:
        run = job.run
        waited = time.monotonic() - started
        if step.outcome == "deadline":
            run.error = DeadlineExceeded(waited, request_id=run.request_id, run=run)
            await self._stop(job, "deadline")
            raise run.error
        if step.outcome == "fatal":
            assert error is not None
            if isinstance(error, NotFoundError):
                # The server does not know this id: nothing will ever come of waiting.
                run.status, run.error = Status.FAILED, error
                await self._finish(job)
                raise error
            # A 400/401/403 on a poll: say so and keep the request id; the job may still be fine.
            run.error = error
            await self._stop(job, f"the poll was answered {error.status_code}")
            raise error
        self._finish_timing(job)
        if step.outcome == "done":
            run.error = None
            await self._download(job, started)
        elif status is Status.MODERATED:
            run.status, run.error = status, ModeratedError(request_id=run.request_id, run=run)
        elif status is Status.EXPIRED:
            run.status, run.error = status, JobExpiredError(request_id=run.request_id, run=run)
        elif step.outcome == "no_video":
            assert isinstance(observation, JobStatus)
            run.status = Status.FAILED
            run.error = NoVideoError(observation.no_video_reason, request_id=run.request_id, run=run)
        else:
            assert isinstance(observation, JobStatus)
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
        if job.reservation is not None:
            estimate = run.estimate.usd if run.estimate else 0.0
            self.budget.settle(job.reservation, settle_cost(run.status, estimate, run.cost_actual_usd))
        self.jobs.pop(run.run_id, None)
        await self._emit(job, Finished(run))

    async def _stop(self, job: Job, reason: str) -> None:
        run = job.run
        self.jobs.pop(run.run_id, None)
        # On disk before this process shows it: whoever sees run.stopped finds the resume note in the history.
        row = replace(run, stopped=True).to_row(self.base_url)
        await asyncio.shield(asyncio.wrap_future(self.writer.update(run.run_id, row)))
        run.stopped = True
        await self._emit(job, Stopped(run, reason=reason))

    # -- download --------------------------------------------------------------------------------
    async def _download(self, job: Job, started: float) -> None:
        """Stream the MP4 to a temporary file, check it, rename it into the cache: done or download_failed."""
        run = job.run
        error = await self._fetch(job, started)
        run.status = after_download(error is None, gone=getattr(error, "gone", False))
        run.error = error

    async def _fetch(self, job: Job, started: float) -> DownloadError | None:
        run = job.run
        url = run.url
        assert run.request_id
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return DownloadError(f"the server said the video is done but gave no usable URL ({url!r}); "
                                 "nothing to download", request_id=run.request_id, run=run)
        dest = self.cache_dir / f"{_safe_name(run.request_id)}.mp4"
        if is_mp4(dest):  # already fetched (resumed, or asked for twice)
            run.path = dest
            return None
        part = dest.with_name(f"{dest.name}.{uuid.uuid4().hex[:8]}.part")
        deadline = started + self.policy.deadline  # one attempt at least, retries only within the deadline
        policy = self.policy
        errors = 0
        try:
            while True:
                try:
                    answer = await self.api.download(url, part)
                except OSError as exc:
                    return DownloadError(f"could not write the video to {self.cache_dir} ({exc.strerror or exc}). "
                                         f"Free some space or fix GROK_NB_HOME, then call client.resume(): the URL "
                                         "stays valid for about 24 h", request_id=run.request_id, run=run)
                summary = (f"{answer.body} bytes" if answer.status_code == 200 and answer.problem is None
                           else answer.problem or f"download refused ({answer.status_code})")
                await self._exchange(job, "GET", url, answer, summary)
                if answer.status_code == 200 and answer.problem is None:
                    if not is_mp4(part):
                        return DownloadError("the download is not an MP4 file", request_id=run.request_id, run=run)
                    os.replace(part, dest)
                    run.path = dest
                    return None
                if answer.problem == "UnsupportedProtocol" or answer.status_code in (401, 403, 404, 410):
                    why = ("its URL scheme is not supported" if answer.problem == "UnsupportedProtocol" else
                           f"the video's URL answered {answer.status_code}: it has expired or is gone. Result URLs "
                           "are temporary (about 24 h); generate the video again")
                    error = DownloadError(why, request_id=run.request_id, run=run)
                    error.gone = answer.problem != "UnsupportedProtocol"  # type: ignore[attr-defined]
                    return error
                errors += 1
                problem = (HttpProblem(answer.status_code, parse_retry_after(answer.headers.get("retry-after")))
                           if answer.status_code is not None and answer.headers is not None
                           else TransportProblem(answer.problem or ""))
                step = next_step(policy, problem, elapsed=0.0, polls=0, errors_in_a_row=errors,
                                 rand=self._rng.random())
                left = deadline - time.monotonic()
                if isinstance(step, Stop) or left <= 0 or answer.problem == "the video is larger than 2 GiB":
                    return DownloadError(f"could not download the video ({answer.problem or answer.status_code}); "
                                         f"its URL is {url}, valid for about 24 h: client.resume() tries again",
                                         request_id=run.request_id, run=run)
                await asyncio.sleep(min(step.delay, left))
        finally:
            part.unlink(missing_ok=True)

    async def aclose(self) -> None:
        """Stop scheduling, write what is waiting, close the connections."""
        await self.scheduler.aclose()
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
    if error is not None:
        return error.server_message
    return f"no answer ({answer.problem})"


def _safe_name(request_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in request_id)[:100]


def reconcile_orphans(rows: Sequence[dict[str, Any]], active: set[str],
                      me: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split unfinished history rows into (rows to re-attach, rows cut off mid-submit), asking which owners still live.

    A row still ``submitting`` whose process is gone can never learn its request id: it becomes
    ``uncertain``. Rows that another live process is still handling are left alone.
    """
    attach, lost = [], []
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
        lost.append(row)
    return attach, lost


UNCERTAIN_AFTER_CRASH = (
    "The process that sent this submit ended before a request id came back, so the submit may or may not have "
    "started a paid job. Nothing was resent, to avoid paying twice. Check your xAI console "
    "(https://console.x.ai) for a job made at {when} before submitting it again."
)
