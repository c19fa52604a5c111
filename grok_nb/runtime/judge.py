"""The vision judge's driver: frames sampled off the loop, the body, the money, the one request path, the verdict kept.

A judge call goes: the video's hash and the call's cache key (``api.judge.judgement_key``: video, rubric, model,
frames, detail, width and prompt) → a valid judgement already in the history under that key is handed back and
nothing is sent → frames sampled and the body built in a worker thread → the estimate reserved in the budget
(as ``judge`` money) → ``POST /v1/responses`` through the Sender, taking turns from the judge model's own
scheduler (a bucket per key and model, shared across processes like the video one, so a judge call never takes
a video's slot) under the one retry rule → the answer parsed fail-closed → the reservation settled with the
answer's cost → the verdict (valid or not) written to the history's ``judgements`` table.

Identical calls that overlap in one process send once (the later ones wait for the first). A failed judgement
(an answer that does not fit the schema, a refusal, no answer) comes back as a ``Judgement`` whose ``score`` is
None and whose ``error`` says why; it is kept in the history but never reused as a score.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..api.frames import MAX_FRAMES, MAX_WIDTH, MIN_WIDTH, sample_frames
from ..api.judge import (
    DETAILS,
    Judgement,
    Rubric,
    criteria_of,
    estimate_body_cost,
    judge_body,
    judgement_key,
    parse_judgement,
    rubric_hash,
    rubric_text,
)
from ..api.refs import check_text
from ..errors import ClientClosedError, GrokError, MeasureError, ValidationError, error_from_response, redact
from ..jobs.budget import Budget, Reservation
from ..jobs.ranking import WINNERS
from .ratelimit import Limiter
from .scheduler import SUBMIT, Scheduler
from .sender import ExchangeLog, Reading, Sender, Unattached, plain_reading
from .transport import Answer

log = logging.getLogger("grok_nb")

#: The Responses API's path (the same host and key as the video API).
RESPONSES_PATH = "/v1/responses"
#: What a judge call's row says from the moment it is sent until its verdict replaces it (it stays when the process
#: ended first: the call may have been billed, and its estimate counts).
SENT_NOTE = ("sent; no answer was kept: the process ended before the answer came back, so the call may have been "
             "billed (its estimate counts). Judge again to send it once more")
NOT_SENT_CLOSED = ("the client was closed before this judge call was sent: nothing was sent or billed. Judge again "
                   "on an open client")


class JudgementStore(Protocol):
    """What the driver needs of the history (``history.store.RunStore``)."""

    def add_judgement(self, **fields: Any) -> None:
        """Keep one verdict."""

    def find_judgement(self, cache_key: str) -> dict[str, Any] | None:
        """The newest valid verdict under a cache key."""


@dataclass(frozen=True)
class Target:
    """One video to judge: its run in the history (None for a video that has none), its prompt and its local MP4."""

    run_id: str | None
    prompt: str
    path: Path


@dataclass(frozen=True)
class JudgedPair:
    """A judge's vote between two runs: both judgements, the winner (``a``, ``b`` or ``tie``; None when either
    judgement failed, and then no vote was recorded), and the vote's id in the history."""

    a: Judgement
    b: Judgement
    winner: str | None
    voter: str
    vote_id: str | None = None

    @property
    def ok(self) -> bool:
        """True when both judgements are valid and the vote was recorded."""
        return self.winner is not None


def check_options(rubric: Rubric | None, model: Any, frames: Any, detail: Any, width: Any) -> None:
    """Every option of a judge call checked before anything is read or sent (ValidationError naming the field)."""
    if rubric is not None:
        criteria_of(rubric)
    name = check_text(model, "model", "a judge model's name, such as grok-4.3").strip()
    if not name or name != model:
        raise ValidationError("model", model, "a judge model's name, such as grok-4.3 (no spaces around it)")
    if isinstance(frames, bool) or not isinstance(frames, int) or not 1 <= frames <= MAX_FRAMES:
        raise ValidationError("frames", frames, f"a whole number of frames from 1 to {MAX_FRAMES}")
    if detail not in DETAILS:
        raise ValidationError("detail", detail, "one of " + ", ".join(DETAILS))
    if isinstance(width, bool) or not isinstance(width, int) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValidationError("width", width, f"a width in pixels from {MIN_WIDTH} to {MAX_WIDTH}")


def pick_winner(a: Judgement, b: Judgement, tie_within: float = 0.0) -> str | None:
    """``a`` or ``b`` (the higher score), ``tie`` (scores within ``tie_within``), or None when either failed."""
    if a.score is None or b.score is None:
        return None
    if abs(a.score - b.score) <= tie_within:
        return "tie"
    return "a" if a.score > b.score else "b"


def judgement_from_row(row: dict[str, Any], *, cached: bool = False) -> Judgement:
    """A Judgement as the history keeps it."""
    rubric = row.get("rubric")
    shown: str | tuple[str, ...] = tuple(rubric) if isinstance(rubric, list) else str(rubric or "")
    return Judgement(score=row.get("score"), passed=row.get("passed"), reason=row.get("reason") or "",
                     criteria=dict(row.get("criteria") or {}), model=row["model"], cost_usd=row.get("cost_usd"),
                     cost_basis=row.get("cost_basis") or "actual", estimate_usd=row.get("estimate_usd"),
                     request_id=row.get("request_id"), error=row.get("error"), run_id=row.get("run_id"),
                     rubric=shown, frames=int(row.get("frames") or 0), detail=row.get("detail") or "low",
                     key=row.get("cache_key"), cached=cached, judgement_id=row.get("judgement_id"))


class Judges:
    """Runs every judge call of one client: a scheduler per judge model, the in-flight calls, the verdicts kept."""

    def __init__(self, sender: Sender, store: JudgementStore, exchanges: ExchangeLog, budget: Budget, *,
                 limiter_for: Callable[[str], Limiter], secret: str | None):
        self.sender = sender
        self.store = store
        self.budget = budget
        self.secret = secret
        self._limiter_for = limiter_for
        self._caller = Unattached(exchanges)  # a judge call belongs to no video job: logged under no run
        self._schedulers: dict[str, Scheduler] = {}
        self._inflight: dict[str, asyncio.Future[Judgement]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._sending: set[asyncio.Task[Any]] = set()  # calls whose POST has left (they may be billed)
        self._hashes: dict[tuple[str, int, int], str] = {}
        # Hashing, frame sampling and the judge's history reads and writes run on threads of their own: the default
        # executor (a video's download writes to disk through it) never waits behind a burst of judge calls.
        self._work = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="grok-nb-judge")
        #: Judge requests sent by this client (each POST, retries included).
        self.sent = 0
        self.closing = False

    def scheduler(self, model: str) -> Scheduler:
        """The judge model's scheduler, over its own rate-limit bucket for this key (made on first use)."""
        scheduler = self._schedulers.get(model)
        if scheduler is None:
            scheduler = self._schedulers[model] = Scheduler(self._limiter_for(model))
        return scheduler

    @property
    def schedulers(self) -> dict[str, Scheduler]:
        """The schedulers made so far, by judge model."""
        return dict(self._schedulers)

    # -- one or many calls -----------------------------------------------------------------------
    async def judge_many(self, targets: Sequence[Target], rubric: Rubric, *, model: str, frames: int, detail: str,
                         width: int) -> list[Judgement]:
        """A Judgement per target, in order: from the history when judged before, else sent (concurrently, in turn).

        Raises before anything is sent when an option is wrong (ValidationError), a video cannot be read
        (MeasureError) or the calls do not fit the budget together (BudgetExceeded): then none is sent.
        """
        check_options(rubric, model, frames, detail, width)
        if self.closing:
            raise GrokError(NOT_SENT_CLOSED)
        loop = asyncio.get_running_loop()
        hashes = await asyncio.gather(*(self._off_loop(self._video_hash, t.path) for t in targets))
        keys = [judgement_key(h, rubric, model, frames, detail, width=width, prompt=t.prompt)
                for t, h in zip(targets, hashes, strict=True)]
        waits: list[asyncio.Future[Judgement]] = []
        mine: list[tuple[Target, str, str, asyncio.Future[Judgement]]] = []
        for target, key, video in zip(targets, keys, hashes, strict=True):
            future = self._inflight.get(key)
            if future is None:  # registered before the next await: an identical call from now on waits for it
                future = loop.create_future()
                future.add_done_callback(_retrieved)
                self._inflight[key] = future
                mine.append((target, key, video, future))
            waits.append(future)
        try:
            await self._start(mine, rubric, model=model, frames=frames, detail=detail, width=width)
        except BaseException as exc:
            for _, key, _, future in mine:
                if not future.done():
                    future.set_exception(exc)
                    self._inflight.pop(key, None)
            raise
        judged = list(await asyncio.gather(*(asyncio.shield(w) for w in waits)))
        for i, (target, judgement) in enumerate(zip(targets, judged, strict=True)):
            if target.run_id is not None and judgement.ok and judgement.run_id != target.run_id:
                judged[i] = await self._copy(judgement, target.run_id, hashes[i], rubric, width)
        return judged

    async def _copy(self, judgement: Judgement, run_id: str, video: str, rubric: Rubric, width: int) -> Judgement:
        """Another run with the very same video and prompt: the verdict is its too, kept under it at no cost."""
        copy = dataclasses.replace(judgement, run_id=run_id, cached=True, cost_usd=0.0,
                                   cost_basis=f"nothing: the same video and prompt were judged as "
                                              f"{judgement.judgement_id}",
                                   judgement_id=uuid.uuid4().hex)
        await self._keep(copy, video, rubric, width)
        return copy

    async def _start(self, mine: list[tuple[Target, str, str, asyncio.Future[Judgement]]], rubric: Rubric, *,
                     model: str, frames: int, detail: str, width: int) -> None:
        """Hand back what the history has; prepare, reserve (all or none) and send the rest."""
        if not mine:
            return
        rows = await self._off_loop(lambda: [self.store.find_judgement(key) for _, key, _, _ in mine])
        todo = []
        for (target, key, video, future), row in zip(mine, rows, strict=True):
            if row is not None:
                future.set_result(judgement_from_row(row, cached=True))
                self._inflight.pop(key, None)
            else:
                todo.append((target, key, video, future))
        if not todo:
            return
        bodies = await asyncio.gather(*(self._off_loop(self._body, t, rubric, model, frames, detail, width)
                                        for t, _, _, _ in todo))
        if self.closing:  # closed while the frames were sampled
            raise GrokError(NOT_SENT_CLOSED)
        estimates = [estimate_body_cost(body) for body in bodies]
        reservations = self.budget.reserve(estimates, kind="judge")  # BudgetExceeded: nothing is sent
        loop = asyncio.get_running_loop()
        for (target, key, video, future), body, estimate, reservation in zip(todo, bodies, estimates, reservations,
                                                                              strict=True):
            call = functools.partial(self._call, target, key, video, body, estimate, reservation, rubric,
                                     frames=frames, detail=detail, width=width)
            # A task of its own: a waiter that stops (Ctrl+C, a timeout) never cuts a POST that may be billed.
            task = loop.create_task(self._settled(call, key, future), name=f"grok-nb-judge-{key[:12]}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _settled(self, call: Callable[[], Any], key: str, future: asyncio.Future[Judgement]) -> None:
        """Run one call and hand its outcome to everyone waiting for it."""
        try:
            judgement = await call()
        except asyncio.CancelledError:  # the client closed under it
            if not future.done():
                sent = asyncio.current_task() in self._sending
                future.set_exception(GrokError(
                    "the client was closed while this judge call was out: its answer was not kept (it may be "
                    "billed). Judge again on an open client" if sent else NOT_SENT_CLOSED))
            raise
        except ClientClosedError:  # its turn never came: the client closed first
            if not future.done():
                future.set_exception(GrokError(NOT_SENT_CLOSED))
        except Exception as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(judgement)
        finally:
            self._inflight.pop(key, None)
            self._sending.discard(asyncio.current_task())

    async def _off_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the judge's own threads (closing drops the work not begun: its caller hears so)."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._work, functools.partial(fn, *args))
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if self.closing and task is not None and not task.cancelling():  # the thread pool dropped it
                raise GrokError(NOT_SENT_CLOSED) from None
            raise
        except RuntimeError:
            if self.closing:  # the pool is shut: "cannot schedule new futures after shutdown"
                raise GrokError(NOT_SENT_CLOSED) from None
            raise

    # -- one call --------------------------------------------------------------------------------
    def _video_hash(self, path: Path) -> str:
        """The MP4's SHA-256, remembered while the file keeps its size and time (read in a worker thread)."""
        try:
            stat = path.stat()
        except OSError:
            raise MeasureError(str(path), "there is no file at this path") from None
        mark = (str(path), stat.st_size, stat.st_mtime_ns)
        known = self._hashes.get(mark)
        if known is None:
            digest = hashlib.sha256()
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            known = self._hashes[mark] = digest.hexdigest()
        return known

    @staticmethod
    def _body(target: Target, rubric: Rubric, model: str, frames: int, detail: str, width: int) -> dict[str, Any]:
        """The request body (frames decoded, scaled and encoded in a worker thread, never on the loop)."""
        sampled = sample_frames(target.path, frames, width)
        return judge_body(target.prompt, rubric, sampled, model=model, detail=detail)

    async def _call(self, target: Target, key: str, video: str, body: dict[str, Any], estimate: float,
                    reservation: Reservation, rubric: Rubric, *, frames: int, detail: str,
                    width: int) -> Judgement:
        model = str(body["model"])
        parse = functools.partial(parse_judgement, rubric=rubric, model=model, estimate_usd=estimate,
                                  run_id=target.run_id, frames=frames, detail=detail, key=key)

        left = False
        attempt = dataclasses.replace(parse(None), judgement_id=uuid.uuid4().hex, cost_usd=estimate,
                                      cost_basis="estimate (sent; no answer kept yet)", error=SENT_NOTE,
                                      answer_text=None)

        async def count() -> None:
            nonlocal left
            if not left:  # on disk before the POST leaves (or it does not leave): a process that ends first leaves this
                await self._keep(attempt, video, rubric, width, strict=True)
            left = True
            self.sent += 1
            task = asyncio.current_task()
            if task is not None:
                self._sending.add(task)

        spent = 0.0
        try:
            reply = await self.sender.send(self._caller, "POST", RESPONSES_PATH,
                                           functools.partial(self._read, parse), started=time.monotonic(),
                                           body=body, turn=SUBMIT, scheduler=self.scheduler(model), before=count)
            if reply.outcome == "ok":
                judgement = reply.value
                assert isinstance(judgement, Judgement)
                spent = judgement.cost_usd if judgement.cost_usd is not None else estimate
            else:
                judgement, spent = self._unanswered(reply.outcome, reply.error, reply.answer, parse(None), estimate)
        except BaseException:
            # Closed or cancelled under it: a POST that left may be billed (the estimate counts); one that did not, not.
            spent = estimate if left else 0.0
            raise
        finally:
            self.budget.settle(reservation, spent)  # the last guard refuses a negative or non-finite figure
        judgement = self._clean(judgement, judgement_id=attempt.judgement_id)
        await self._keep(judgement, video, rubric, width)  # over the attempt's row, when one was written
        return judgement

    def _read(self, parse: Callable[[Any], Judgement], answer: Answer) -> Reading:
        """An answer to a judge call: a 2xx is read into a Judgement (valid or failed closed), else its problem."""
        reading = plain_reading(answer, self._error)
        if reading.problem is not None:
            return reading
        judgement = parse(answer.body)
        summary = (f"score={judgement.score:g} passed={judgement.passed}" if judgement.ok
                   else f"not a valid judgement: {judgement.error}")
        return Reading(judgement, None, None, summary)

    def _error(self, answer: Answer) -> GrokError:
        """What a judge call's problem answer says (the key never in it)."""
        if answer.status_code is None:
            return GrokError(f"no answer: {answer.problem}")
        return error_from_response(answer.status_code, answer.body, headers=answer.headers, secret=self.secret)

    def _unanswered(self, outcome: str, error: GrokError | None, answer: Answer | None, failed: Judgement,
                    estimate: float) -> tuple[Judgement, float]:
        """A failed judgement for a call that got no usable answer, and what it counts against the budget."""
        said = f" ({redact(str(error), self.secret)})" if error is not None else ""
        if answer is None:  # the deadline came before its turn: nothing left this machine
            why, spent = "the judge call waited for its turn until the deadline; nothing was sent", 0.0
        elif outcome == "uncertain":
            why = (f"the judge call may have reached the server but no usable answer came back{said}; it was not "
                   "sent again, so that it is not billed twice. Judge again to send it once more")
            spent = estimate
        elif outcome == "deadline":
            why, spent = f"the judge's rate limit held the call until the deadline{said}; nothing was billed", 0.0
        else:  # refused: a 4xx, out of credits, never connected
            why, spent = f"the judge call was refused{said}; nothing was billed. Fix what it says and judge again", 0.0
        basis = "estimate (no answer: the call may have been billed)" if spent else "nothing billed"
        return dataclasses.replace(failed, error=why, cost_usd=spent, cost_basis=basis), spent

    def _clean(self, judgement: Judgement, **changes: Any) -> Judgement:
        """The key out of every text the server sent (a gateway may quote it), before anyone sees or keeps it."""
        def clean(text: str | None) -> str | None:
            return None if text is None else redact(text, self.secret)

        return dataclasses.replace(judgement, reason=clean(judgement.reason) or "", error=clean(judgement.error),
                                   answer_text=clean(judgement.answer_text), **changes)

    async def _keep(self, judgement: Judgement, video: str, rubric: Rubric, width: int, *,
                    strict: bool = False) -> None:
        """Write the verdict to the history (a failure to write is said, and the verdict still handed back; with
        ``strict``, raised: a call that cannot be recorded is not sent)."""
        row = {"judgement_id": judgement.judgement_id, "run_id": judgement.run_id, "cache_key": judgement.key,
               "video_sha256": video, "model": judgement.model, "rubric": rubric_text(rubric),
               "rubric_hash": rubric_hash(rubric), "frames": judgement.frames, "detail": judgement.detail,
               "width": width, "score": judgement.score, "passed": judgement.passed, "reason": judgement.reason,
               "criteria": judgement.criteria or None, "error": judgement.error, "request_id": judgement.request_id,
               "cost_usd": judgement.cost_usd, "cost_basis": judgement.cost_basis,
               "estimate_usd": judgement.estimate_usd}
        try:
            await asyncio.shield(self._off_loop(lambda: self.store.add_judgement(**row)))
        except Exception as exc:  # a full disk, a dropped server: the answer is in hand, only its reuse is lost
            if strict:
                raise
            log.warning("grok_nb: a judgement could not be written to the history (%s); it is handed back but will "
                        "not be reused, so the same call would be sent again", redact(str(exc), self.secret))

    # -- closing ---------------------------------------------------------------------------------
    async def aclose(self, timeout: float) -> None:
        """Drop the calls still waiting for their turn (nothing of them was sent), let the ones out finish (up to
        ``timeout`` s: they may be billed, their verdicts are kept), then stop the schedulers and their buckets."""
        self.closing = True
        for task in [t for t in self._tasks if t not in self._sending]:
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in list(self._tasks):
            task.cancel()
        for scheduler in self._schedulers.values():
            await scheduler.aclose()
            await asyncio.to_thread(scheduler.limiter.close)
        self._work.shutdown(wait=False, cancel_futures=True)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a shared call's error as seen (its own caller raises it; a follower that left must not warn)."""
    if not future.cancelled():
        future.exception()


def check_winner(winner: Any) -> str:
    """A vote's winner: ``a``, ``b`` or ``tie`` (else ValidationError naming it)."""
    if not isinstance(winner, str) or winner not in WINNERS:
        raise ValidationError("winner", winner, "'a' (the first run won), 'b' (the second) or 'tie'")
    return winner


def check_label(value: Any, field: str, allowed: str) -> str | None:
    """An optional short label (a voter, an experiment): None, or 1 to 200 characters of text."""
    if value is None:
        return None
    text = check_text(value, field, allowed).strip()
    if not text or len(text) > 200:
        raise ValidationError(field, value, allowed + " (1 to 200 characters)")
    return text


def judge_voter(model: str) -> str:
    """The voter a judge model's votes are recorded under."""
    return f"judge:{model}"


__all__ = ["RESPONSES_PATH", "JudgedPair", "Judges", "Target", "check_label", "check_options", "check_winner",
           "judge_voter", "judgement_from_row", "pick_winner"]
