"""The one request path: every HTTP call grok_nb makes goes through :meth:`Sender.send`.

Submits, polls, downloads, uploads, batch calls and model listings alike: one retry rule
(:func:`grok_nb.jobs.policy.retry_step`: 429, 5xx and connections never made are tried again,
``Retry-After`` honoured within a cap, a POST that may have reached the server never resent), one
exchange record per request (redacted, logged under whoever the request is for) and one download
(a size cap, a redirect limit, a deadline of its own, a floor on its rate, a few at a time, and
every file checked as a whole MP4 before it is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from ..api.probe import mp4_problem
from ..errors import ClientClosedError, DownloadError, GrokError, RateLimitError, parse_retry_after, redact
from ..jobs.policy import (
    HttpProblem,
    PollPolicy,
    Problem,
    Stop,
    TransportProblem,
    Unreadable,
    rate_limited,
    retry_step,
)
from .cache import cached_problem, part_path
from .ratelimit import Limiter
from .scheduler import Scheduler
from .transport import TOO_SLOW, Answer, Api, path_of

log = logging.getLogger("grok_nb")

#: Downloads at once, for every job of the client (single jobs and batches alike).
DOWNLOADS_AT_ONCE = 4


class Caller(Protocol):
    """Whom a request is for: its exchanges are logged under it, and a long wait for the key is shown on it."""

    @property
    def request_id(self) -> str | None:
        """The job's request id, when there is one (errors carry it)."""

    async def exchanged(self, entry: dict[str, Any]) -> None:
        """One request was answered (or got no answer): log it."""

    def waiting(self, note: str | None) -> None:
        """The key's shared budget keeps this request waiting for other processes (None: no longer)."""


class ExchangeLog(Protocol):
    """Where exchanges that belong to no run are written (the history writer)."""

    def exchange(self, run_id: str | None, entry: dict[str, Any]) -> Any:
        """Write one exchange."""


class Unattached:
    """A caller that is no job: a batch's own calls, an upload, a model listing. Its exchanges go to the history
    under no run."""

    request_id = None

    def __init__(self, log: ExchangeLog):
        self._log = log

    async def exchanged(self, entry: dict[str, Any]) -> None:
        """Write the exchange under no run."""
        self._log.exchange(None, entry)

    def waiting(self, note: str | None) -> None:
        """Nobody shows it."""


@dataclass(frozen=True)
class Reading:
    """What one answer means to the request that got it: a value, or a problem (and the error it would end in)."""

    value: Any = None
    problem: Problem | None = None
    error: GrokError | None = None
    summary: str = ""  # one line for the history's log of exchanges
    job_status: str | None = None  # the job's status as the answer said it (a poll's), for the log


@dataclass(frozen=True)
class Reply:
    """How one request ended under the retry rule: ``ok`` with a value, or the outcome that stopped it."""

    answer: Answer | None  # None: the deadline came before it could be sent
    value: Any = None
    problem: Problem | None = None
    error: GrokError | None = None
    outcome: str = "ok"  # ok, or a Stop outcome: deadline, fatal, unreadable, uncertain, refused
    attempts: int = 0


def problem_of(answer: Answer) -> Problem | None:
    """The problem an answer poses to the retry rule (None when it is a usable answer)."""
    if answer.status_code is None:
        return TransportProblem(answer.problem or "", never_sent=answer.never_sent, final=answer.final)
    if answer.status_code >= 400:
        retry_after = parse_retry_after(answer.headers.get("retry-after")) if answer.headers is not None else None
        return HttpProblem(answer.status_code, retry_after)
    if answer.problem is not None:
        return Unreadable(answer.status_code, answer.problem)
    return None


@dataclass(frozen=True)
class Fetched:
    """A video downloaded and checked: where it is and how many bytes it has."""

    path: Path
    size: int


class Sender:
    """Sends every request of one client: through its scheduler (when the request takes a slot of the key's budget),
    under its policy's retry rule, logged under whom it is for."""

    def __init__(self, api: Api, scheduler: Scheduler, policy: PollPolicy, *, secret: str | None):
        self.api = api
        self.scheduler = scheduler
        self.policy = policy
        self.secret = secret
        self.closing = False
        self._rng = random.Random()
        self._paused: set[int] = set()  # the schedulers (by id) whose limiter this sender paused after a Retry-After
        self._downloads = asyncio.Semaphore(DOWNLOADS_AT_ONCE)

    @property
    def limiter(self) -> Limiter:
        """The key's request budget (the scheduler's; it may fall back to one of this process alone)."""
        return self.scheduler.limiter

    async def _turn(self, caller: Caller, kind: int, due: float | None, until: float | None,
                    replan: Callable[[], float] | None, scheduler: Scheduler) -> bool:
        """Wait for ``scheduler``'s go (False when ``until`` passes first); say so on the caller when the key's
        shared budget keeps it waiting for others. ``replan`` re-plans ``due`` when it comes (see Scheduler.turn)."""
        if self.closing:
            raise ClientClosedError(request_id=caller.request_id)
        turn = asyncio.ensure_future(scheduler.turn(kind, due, replan))
        noted = False
        try:
            slack = max(0.0, (due or 0.0) - time.monotonic()) + 5 * self.policy.interval
            left = None if until is None else max(0.0, until - time.monotonic())
            done, _ = await asyncio.wait({turn}, timeout=slack if left is None else min(slack, left))
            if not done and (left is None or left > slack):
                note = scheduler.limiter.status().get("message")
                if note:
                    noted = True
                    caller.waiting(note)
                left = None if until is None else max(0.0, until - time.monotonic())
                done, _ = await asyncio.wait({turn}, timeout=left)
            if not done:
                return False
            if turn.cancelled() and self.closing:  # the scheduler was closed under this wait, not its caller
                raise ClientClosedError(request_id=caller.request_id)
            turn.result()
            return True
        finally:
            if not turn.done():
                turn.cancel()
            if noted:
                caller.waiting(None)

    async def send(self, caller: Caller, method: str, url: str, read: Callable[[Answer], Reading], *,
                   started: float, deadline: float | None = None, body: Any = None,
                   form: dict[str, str] | None = None, file: tuple[str, bytes, str] | None = None,
                   turn: int | None = None, due: float | None = None, part: Path | None = None,
                   before: Callable[[], Awaitable[None]] | None = None,
                   after_problem: Callable[[], Awaitable[None]] | None = None,
                   slot: asyncio.Lock | asyncio.Semaphore | None = None,
                   on_answer: Callable[[Reading], Awaitable[None]] | None = None,
                   replan: Callable[[], float] | None = None, scheduler: Scheduler | None = None) -> Reply:
        """Send one request until it gets a usable answer or the one retry rule says stop.

        ``read`` says what an answer means (a value, or a problem and its error); :func:`retry_step`
        whether to try again and how long to wait (a POST that may have reached the server is never
        resent). ``turn`` asks the scheduler for a slot of the key's budget (None: downloads, which go to
        another host, and batch calls, which the service keeps outside the rate limit); ``started`` is when
        the wait began, ``deadline`` (default: ``started`` plus the policy's) when it ends. ``slot`` is held
        from the turn until ``on_answer`` has run (submits: one POST at a time, so each request id is durable
        before the next POST leaves; downloads: a few at a time, each attempt taking a slot of its own, so a URL
        that trickles gives its slot up between tries). ``replan`` re-plans ``due`` when it comes; a retry's wait
        is not re-planned. ``scheduler`` is whose turns are taken and whose limiter a Retry-After pauses (default:
        the key's video scheduler; a judge model has a bucket of its own, so its calls never take a video's slot).
        """
        scheduler = self.scheduler if scheduler is None else scheduler
        deadline = started + self.policy.deadline if deadline is None else deadline
        # A GET waits for its slot until the deadline (plus one shortest gap, for a last try at it);
        # a POST waits in line for the key's budget however long the line is: nothing was sent.
        turn_until = None if method == "POST" else deadline + self.policy.interval
        attempt = 0
        while True:
            async with slot if slot is not None else contextlib.nullcontext():
                if turn is not None:
                    if not await self._turn(caller, turn, due, turn_until, replan, scheduler):
                        return Reply(None, outcome="deadline", attempts=attempt)
                    epoch = scheduler.epoch  # what its answer says of the pace is about the pace it was sent at
                elif due is not None and due > time.monotonic():
                    await asyncio.sleep(due - time.monotonic())
                if before is not None:
                    await before()
                # The deadline bounds a GET in flight too: an answer that trickles in is cut off at it. A POST is
                # not cut: once it may have reached the server, cutting it makes a paid job uncertain.
                until = None if method == "POST" else deadline
                answer = await (self.api.download(url, part, until=until) if part is not None
                                else self.api.request(method, url, body, form=form, file=file, until=until))
                if self.closing and method == "GET":  # the answer (if any) came as the connections closed
                    raise ClientClosedError(request_id=caller.request_id)
                reading = read(answer)
                if on_answer is not None:
                    await on_answer(reading)
            await caller.exchanged(self._entry(method, url, answer, reading))
            if reading.problem is None:
                if turn is not None:
                    self._lift_pause(scheduler)
                    scheduler.answered(epoch)
                return Reply(answer, reading.value, None, reading.error, "ok", attempt + 1)
            limited = turn is not None and rate_limited(reading.problem)
            if limited:
                scheduler.slowed(epoch)
            step = retry_step(self.policy, reading.problem, resend_safe=method == "GET", attempt=attempt,
                              elapsed=time.monotonic() - started, rand=self._rng.random(),
                              remaining=deadline - time.monotonic())
            if isinstance(step, Stop):
                return Reply(answer, reading.value, reading.problem, reading.error, step.outcome, attempt + 1)
            problem = reading.problem
            asked = isinstance(problem, HttpProblem) and bool(self.policy.cap_retry_after(problem.retry_after))
            if limited or asked:
                # The bucket's other requests wait too, as long as this one does: capped, never past the deadline.
                # A 429 that does not say how long holds this process's alone, for its own backoff: a pause other
                # processes on the key keep after a good answer lifted it here is for the service to ask.
                self._paused.add(id(scheduler))
                scheduler.limiter.pause(step.delay, everyone=asked)
            log.info("grok_nb: %s %s: %s; trying again in %.2f s", method, path_of(url), step.reason, step.delay)
            if after_problem is not None:
                await after_problem()
            due, replan = time.monotonic() + step.delay, None
            attempt += 1

    def _entry(self, method: str, url: str, answer: Answer, reading: Reading) -> dict[str, Any]:
        """The exchange record: never a header, a query string or a key."""
        return {"at": datetime.now(timezone.utc).isoformat(), "method": method, "path": path_of(url),
                "status": answer.status_code, "elapsed_ms": answer.elapsed_ms,
                "summary": redact(reading.summary, self.secret)[:200], "job_status": reading.job_status}

    def _lift_pause(self, scheduler: Scheduler) -> None:
        """A good answer from the API after a Retry-After pause: the pause has done its job, end it."""
        if id(scheduler) in self._paused:
            self._paused.discard(id(scheduler))
            scheduler.limiter.lift()

    # -- the one download ----------------------------------------------------------------------------
    async def download(self, caller: Caller, url: str | None, dest: Path, *, known_bytes: int | None = None,
                       lifetime: str = "minutes to hours") -> Fetched | DownloadError:
        """Fetch a finished video into ``dest`` (a temporary file, checked as a whole MP4, then renamed), or say why
        not. A copy already at ``dest`` is kept when whole. ``lifetime`` says how long such URLs live."""
        rid = caller.request_id
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return DownloadError(f"the server said the video is done but gave no usable URL ({url!r}); "
                                 "nothing to download", request_id=rid)
        damaged = None
        if dest.exists():  # already fetched (resumed, or asked for twice): handed back only if whole
            damaged = await asyncio.to_thread(cached_problem, dest, known_bytes)
            if damaged is None:
                return Fetched(dest, dest.stat().st_size)
            log.warning("grok_nb: the cached video %s is damaged (%s); downloading it again", dest, damaged)
            dest.unlink(missing_ok=True)
        part = part_path(dest)
        try:
            try:
                # A done video gets a whole deadline of its own: its URL expires, the job is paid for.
                reply = await self.send(caller, "GET", url, functools.partial(_read_download, rid, url, lifetime),
                                        started=time.monotonic(), part=part, slot=self._downloads)
            except OSError as exc:
                return DownloadError(f"could not write the video to {dest.parent} ({exc.strerror or exc}). Free "
                                     "some space or fix GROK_NB_HOME, then call client.resume() soon: the URL "
                                     f"lives {lifetime}", request_id=rid)
            if reply.outcome != "ok":
                error = reply.error if isinstance(reply.error, DownloadError) else DownloadError(
                    f"could not download the video before the deadline; its URL lives {lifetime}: client.resume() "
                    "tries again soon", request_id=rid)
                if damaged is not None:
                    text = str(error.args[0]) if error.args else str(error)
                    gone = error.gone
                    error = DownloadError(f"the cached copy is damaged ({damaged}) and {text[:1].lower()}{text[1:]}",
                                          request_id=rid)
                    error.gone = gone
                return error
            assert reply.answer is not None
            broken = await asyncio.to_thread(mp4_problem, part, reply.answer.body)
            if broken is not None:
                return DownloadError(f"the download is not a whole MP4 file: {broken}. Its URL lives {lifetime}: "
                                     "client.resume() tries again", request_id=rid)
            os.replace(part, dest)
            return Fetched(dest, int(reply.answer.body))
        finally:
            part.unlink(missing_ok=True)


def plain_reading(answer: Answer, error: Callable[[Answer], GrokError]) -> Reading:
    """The plain reading of an API call's answer: its body when usable, else its problem and ``error(answer)``."""
    problem = problem_of(answer)
    if problem is None:
        return Reading(answer.body, None, None, _summary(answer))
    err = error(answer)
    if isinstance(problem, HttpProblem) and isinstance(err, RateLimitError) and err.out_of_credits:
        problem = dataclasses.replace(problem, out_of_credits=True)  # a 429 about money: waiting does not help
    return Reading(None, problem, err, _summary(answer))


def _summary(answer: Answer) -> str:
    if answer.status_code is None:
        return f"no answer ({answer.problem})"
    if answer.problem is not None:
        return answer.problem
    body = answer.body
    if isinstance(body, dict):
        return ", ".join(f"{k}={body[k]}" for k in list(body)[:4] if not isinstance(body[k], (dict, list)))
    return "" if body is None else str(body)[:100]


def _read_download(request_id: str | None, url: str, lifetime: str, answer: Answer) -> Reading:
    if answer.status_code == 200 and answer.problem is None:
        return Reading(answer.body, None, None, f"{answer.body} bytes")
    summary = answer.problem or f"download refused ({answer.status_code})"
    problem: Problem
    if answer.final or answer.status_code in (401, 403, 404, 410):
        gone = not answer.final
        reason = "its URL scheme is not supported" if answer.problem == "UnsupportedProtocol" else answer.problem
        why = (f"the video's URL answered {answer.status_code}: it has expired or is gone. Result URLs live "
               f"{lifetime}; generate the video again" if gone else
               f"the video cannot be fetched: {reason}. Trying again would not help")
        error = DownloadError(why, request_id=request_id)
        error.gone = gone
        problem = (TransportProblem(summary, final=True) if answer.status_code is None or answer.final
                   else HttpProblem(answer.status_code))
        return Reading(None, problem, error, summary)
    problem = problem_of(answer) or TransportProblem(summary)
    if isinstance(problem, Unreadable) and not (answer.problem or "").startswith(TOO_SLOW):
        problem = TransportProblem(summary)  # a 200 cut short: asked again until the deadline
    # A URL that trickled is asked again a few times (the rule's unreadable_retries), then given up: it must not
    # hold a download slot until the deadline.
    error = DownloadError(f"could not download the video ({answer.problem or answer.status_code}); its URL "
                          f"({path_of(url)}) lives {lifetime}: client.resume() tries again soon", request_id=request_id)
    return Reading(None, problem, error, summary)
