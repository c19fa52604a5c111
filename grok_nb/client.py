"""The public client for xAI's video API: one async core (``AsyncClient``) and a thin sync facade (``Client``).

A job goes: validate (no I/O) → reserve its price in the budget → record a history row →
submit (never resent once it may have reached the server, never cancelled by a waiter) →
record the request id → poll when the scheduler says it is worth it → download the MP4 at
once (result URLs expire). The engine (``engine.py``) does the work; this module turns
what users hold into specs and hands back ``Run`` records and ``JobHandle`` s.
"""

from __future__ import annotations

import asyncio
import atexit
import functools
import logging
import os
import re
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import httpx

from .api import media, validation
from .api.frames import DEFAULT_FRAMES, DEFAULT_WIDTH
from .api.judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL
from .api.judge import DEFAULT_RUBRIC, Judgement
from .api.models import ModelInfo, parse_models_listing, with_allowed_values
from .api.pricing import CostEstimate
from .api.validation import DEFAULT_MODEL, JobSpec, VideoRef
from .backends import Backend, resolve_backend
from .errors import GrokError, ValidationError, error_from_response
from .history.owners import current_user
from .history.rows import run_of
from .history.schema import utcnow
from .history.store import RunStore, open_store
from .jobs.budget import Budget, Reservation
from .jobs.policy import PollPolicy
from .jobs.ranking import DEFAULT_BOOTSTRAP, ranking
from .jobs.results import JobHandle, Run
from .jobs.status import RESUMABLE, Status
from .runtime.batch import BatchJob, resumable_batches
from .runtime.cache import cached_problem, sweep_parts
from .runtime.engine import (
    NOT_SENT_AFTER_CRASH,
    UNCERTAIN_AFTER_CRASH,
    Engine,
    Job,
    UpdateCallback,
    reconcile_orphans,
)
from .runtime.files import Uploads
from .runtime.judge import (
    JudgedPair,
    Judges,
    Target,
    check_label,
    check_options,
    check_winner,
    judge_voter,
    pick_winner,
)
from .runtime.logs import protect_secret
from .runtime.ratelimit import Limiter, make_limiter
from .runtime.scheduler import POLL, Scheduler
from .runtime.sender import plain_reading
from .runtime.transport import Answer, Api
from .settings import check_home, home_dir, redact_url

if TYPE_CHECKING:
    from typing_extensions import Self

DEFAULT_DEADLINE_S = 15 * 60.0
DEFAULT_RATE_LIMIT = 1.0  # requests per second, polls included: xAI's limit for the video models
#: Requests per second to each judge model (a bucket of its own per key and model). xAI's limits per model rise with
#: the team's tier and are not published for all of them: a modest start, which a 429's Retry-After slows further.
DEFAULT_JUDGE_RATE_LIMIT = 2.0
#: Requests are spaced a little wider than the limit, so jitter on the way never lands two closer than it allows.
RATE_SAFETY = 0.95
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: The statuses a resume looks at.
UNFINISHED = sorted(s.value for s in RESUMABLE)
#: How long closing a client (or the interpreter) waits for POSTs in flight to bring back their ids.
SETTLE_SUBMITS_S = 30.0

P = ParamSpec("P")
T = TypeVar("T")


#: A new client's poll planner starts from this many of the newest finished runs on its server (and keeps the
#: newest few hundred of each bucket).
PRIOR_ROWS = 2000


def _names_a_file(text: str) -> bool:
    """A text that reads as a file path (a video's extension, or a folder in it), never as a request id or URL."""
    name = text.strip()
    if not name or len(name) > 4096 or "\n" in name or name.startswith(("http://", "https://", "data:")):
        return False
    return "/" in name or "\\" in name or bool(re.search(r"\.(mp4|mov|m4v|webm|mkv|avi)$", name, re.IGNORECASE))


class AsyncClient:
    """The async core: ``await client.generate(...)`` and friends."""

    home: Path  # the data folder: history, video cache, key-sharing state
    budget: Budget  # the ledger of what this client may spend, has spent and holds for jobs under way
    tags: list[str]  # the tags put on every run of this client
    policy: PollPolicy  # the timings of waiting: deadline, poll gaps, retries
    cache_dir: Path  # where finished MP4s are kept
    store: RunStore  # the run history (SQLite in the home, or PostgreSQL)
    limiter: Limiter  # the key's request budget (shared with other processes on the key)

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        deadline: float = DEFAULT_DEADLINE_S,
        rate_limit: float | None = None,
        poll_interval: float | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        home: str | os.PathLike[str] | None = None,
        tags: Sequence[str] = (),
        budget_usd: float | None = None,
        simulator_speed: float | None = None,
        policy: PollPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        quiet: bool = False,
        backend: Backend | None = None,
        limiter: Limiter | None = None,
        judge_rate_limit: float | None = None,
    ):
        """Settings come from the arguments, then XAI_API_KEY / GROK_NB_BASE_URL / GROK_NB_HOME, then defaults.

        With neither a key nor a base URL, videos come from the embedded simulator (it says so).
        ``judge_rate_limit`` is each judge model's requests per second (its own bucket, apart from the videos').
        """
        if judge_rate_limit is not None and (isinstance(judge_rate_limit, bool)
                                             or not isinstance(judge_rate_limit, (int, float))
                                             or not 0 < judge_rate_limit < float("inf")):
            raise ValidationError("judge_rate_limit", judge_rate_limit, "a positive number of requests per second")
        self.home = check_home(home_dir(home))  # a read-only home is reported before anything is sent
        self.budget = Budget(budget_usd)
        self.tags: list[str] = validation.check_tags(tags)
        self._backend = backend or resolve_backend(api_key, base_url, simulator_speed=simulator_speed, quiet=quiet)
        protect_secret(self._backend.api_key, self)
        speed = self._backend.speed
        if policy is None:
            # Defaults follow the server's clock (the simulator runs faster); explicit values are taken as given.
            policy = PollPolicy(deadline=deadline).scaled(speed)
            if poll_interval is not None:
                policy = replace(policy, interval=poll_interval, max_interval=max(poll_interval, policy.max_interval))
        self.policy = policy
        self.cache_dir = self.home / "videos"
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        sweep_parts(self.cache_dir)  # downloads cut off by a process that is gone
        self.store = open_store(self.home)  # GROK_NB_HISTORY_URL (PostgreSQL), else the SQLite file in the home
        rate = rate_limit if rate_limit is not None else DEFAULT_RATE_LIMIT * RATE_SAFETY * speed
        if limiter is None:
            # One budget per key for every process on this machine (or beyond, with GROK_NB_SHARED_URL);
            # the embedded simulator's key is this process's own, so there is nothing to share.
            limiter = make_limiter(None if self._backend.embedded else self._backend.api_key, rate, self.home)
        self.limiter = limiter
        self._engine = Engine(
            Api(self._backend.base_url, self._backend.api_key, timeout=timeout, transport=transport),
            store=self.store, cache_dir=self.cache_dir, policy=policy, limiter=self.limiter, budget=self.budget,
            backend=self._backend.name, base_url=redact_url(self._backend.base_url), speed=speed,
            secret=self._backend.api_key)
        # A new client starts warm: how long this server's newest finished runs took.
        try:
            self._engine.priors.learn_rows(self.store.latency_samples(redact_url(self._backend.base_url), PRIOR_ROWS))
        except Exception as exc:  # a history that cannot be read now costs a few extra polls, not the client
            logging.getLogger("grok_nb").warning(
                "grok_nb: could not read the latencies of finished runs from the history (%s: %s); the poll planner "
                "starts from the documented latencies", type(exc).__name__, exc)
        self._models: list[ModelInfo] | None = None
        self._judge_rate = float(judge_rate_limit) if judge_rate_limit is not None else \
            DEFAULT_JUDGE_RATE_LIMIT * RATE_SAFETY * speed

    # -- what users see --------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._backend.base_url

    @property
    def backend(self) -> str:
        """``xai`` or ``simulator``."""
        return self._backend.name

    @property
    def simulated(self) -> bool:
        """True when videos come from a simulator, not xAI."""
        return self._backend.name == "simulator"

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler that spends this client's request budget."""
        return self._engine.scheduler

    @property
    def budget_usd(self) -> float | None:
        """The spending limit for everything sent through this client (None: no limit)."""
        return self.budget.limit_usd

    @property
    def spent_usd(self) -> float:
        """What this client's finished jobs and judge calls cost (actual where reported, else estimated)."""
        return self.budget.spent_usd

    @property
    def judge_spent_usd(self) -> float:
        """What this client's judge calls cost (part of ``spent_usd``; ``budget.spent_by_kind`` has both kinds)."""
        return self.budget.spent_by_kind["judge"]

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent: the budget less what is spent and held for jobs under way."""
        return self.budget.remaining_usd

    def __repr__(self) -> str:
        budget = "" if self.budget_usd is None else f" budget=${self.budget_usd:.2f} spent=${self.spent_usd:.2f}"
        return (f"<{type(self).__name__} backend={self.backend} base_url={redact_url(self.base_url)} "
                f"api_key={'set' if self._backend.api_key else 'none'} home={self.home}{budget}>")

    async def history(self, **filters: Any) -> Any:
        """The runs of this history as a DataFrame, newest first (or those passing status, kind, tags, text, since,
        made_by); read off the event loop."""
        await asyncio.to_thread(self._engine.writer.flush)
        return await asyncio.to_thread(self.store.dataframe, **filters)

    async def estimate_cost(self, *args: Any, kind: str = "generate", **kwargs: Any) -> CostEstimate:
        """The price of a job before anything is sent; takes the arguments of generate/edit/extend."""
        kind = validation.check_kind(kind)
        if kind == "generate":
            return validation.generate_spec(*args, **kwargs).estimate
        spec_for = self._edit_spec if kind == "edit" else self._extend_spec
        # An input named by URL or request id is looked up in the history: off the event loop.
        return (await asyncio.to_thread(spec_for, *args, **kwargs)).estimate

    # -- the three kinds of job ------------------------------------------------------------------
    @with_allowed_values("generate")  # the values each argument may take, per model (help(), Shift-Tab)
    async def generate(
        self,
        prompt: str | None = None,
        *,
        image: Any = None,
        reference_images: Sequence[Any] | None = None,
        duration: int | None = None,
        resolution: str | None = None,
        aspect_ratio: str | None = None,
        model: str = DEFAULT_MODEL,
        generate_audio: bool | None = None,
        user: str | None = None,
        last_frame: Any = None,
        keyframes: Sequence[dict[str, Any]] | None = None,
        reference_audios: Sequence[str | dict[str, Any]] | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
    ) -> Run | JobHandle:
        """Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        spec = validation.generate_spec(prompt, image=image, reference_images=reference_images, duration=duration,
                                        resolution=resolution, aspect_ratio=aspect_ratio, model=model,
                                        generate_audio=generate_audio, user=user, last_frame=last_frame,
                                        keyframes=keyframes, reference_audios=reference_audios)
        return await self._start(spec, tags, wait, on_update)

    @with_allowed_values("edit")
    async def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        user: str | None = None,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Change a video by prompt.

        ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id.
        """
        spec = await asyncio.to_thread(self._edit_spec, video, prompt, model=model, user=user, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    @with_allowed_values("extend")
    async def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        tags: Sequence[str] = (),
        wait: bool = True,
        on_update: UpdateCallback | None = None,
        **unsupported: Any,
    ) -> Run | JobHandle:
        """Continue a video (same inputs as edit); ``duration`` is the length of the added part only."""
        spec = await asyncio.to_thread(self._extend_spec, video, prompt, duration=duration, model=model, **unsupported)
        return await self._start(spec, tags, wait, on_update)

    async def start_many(self, jobs: Sequence[dict[str, Any]], *, takes: int = 1, tags: Sequence[str] = (),
                         on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Start several generate() jobs (one dict of arguments each) as one: all fit the budget, or none is sent.

        Each job is made ``takes`` times (``run.take`` 1, 2, ...: the service has no seed, so takes show how much
        a prompt varies); the handles come job by job, take by take, and the budget counts every take. They come
        back once their rows are written (one transaction); the submits go out in the background, each when the
        key's rate limit gives it a turn.
        """
        takes = validation.check_takes(takes)
        specs = [validation.generate_spec(**args) for args in jobs]  # every one validated before anything is sent
        tag_list = validation.check_tags(tags)
        made = [(spec, take) for spec in specs for take in range(1, takes + 1)]
        reservations = self.budget.reserve([spec.estimate.usd for spec, _ in made])
        started = [self._job_for(spec, tag_list, on_update(i) if on_update else None, reservation, take)
                   for i, ((spec, take), reservation) in enumerate(zip(made, reservations, strict=True))]
        waits = await self._engine.start(started)  # releases every reservation if the rows cannot be written
        return [self._handle(job.run, work) for job, work in zip(started, waits, strict=True)]

    async def get(self, request_id: str, *, wait: bool = True,
                  on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        request_id = validation.check_request_id(request_id)
        await asyncio.to_thread(self._engine.writer.flush)
        row = await asyncio.to_thread(self.store.find, request_id)
        if row is not None:
            run = run_of(row)
            # A done run is handed back only while its MP4 is whole; else the engine downloads it again.
            settled = run.status.final and not run.status.resumable and run.status is not Status.DONE
            if settled or (
                    run.status is Status.DONE and run.path is not None
                    and await asyncio.to_thread(cached_problem, run.path, run.video_bytes) is None):
                return run if wait else self._handle(run, _finished(run))
            work = await self._engine.attach(run, on_update)
        else:  # started elsewhere: this history learns of it now
            run = Run(run_id=uuid.uuid4().hex, kind="unknown", model="", prompt=None, backend=self.backend,
                      request_id=request_id, status=Status.PENDING)
            work = await self._engine.attach(run, on_update, new=True)
        return await self._launch(run, work, wait)

    async def resume(self, *, on_update: Callable[[Run], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Re-attach every unfinished job of this history that has a request id; sends no submit.

        Rows left ``submitting`` by a process that is gone become ``uncertain`` if their POST had left (it
        may or may not have started a job, so nothing is resent) and ``rejected`` if it never left
        (nothing sent, nothing billed). Jobs another live process is waiting for are left to it.
        """
        await asyncio.to_thread(self._engine.writer.flush)
        rows = await asyncio.to_thread(self.store.rows, status=UNFINISHED)
        batch_rows = [row for row in rows if row.get("batch_id")]  # followed by their batch, never polled alone
        rows = [row for row in rows if not row.get("batch_id")]
        attach, lost, unsent = reconcile_orphans(rows, set(self._engine.jobs), self._engine.owner)
        for row in lost:
            message = UNCERTAIN_AFTER_CRASH.format(when=row.get("submitted_at") or row["created_at"])
            await asyncio.to_thread(self.store.update, row["run_id"], status=Status.UNCERTAIN.value,
                                    error_code="SubmitUncertainError", error_message=message)
        for row in unsent:
            await asyncio.to_thread(self.store.update, row["run_id"], status=Status.REJECTED.value,
                                    error_code="NotSent", error_message=NOT_SENT_AFTER_CRASH)
        handles = []
        for run_id, job in list(self._engine.jobs.items()):  # this process's own jobs
            handle = self._handles.get(run_id)
            if handle is None or handle.done():  # nobody waits for it any more: wait again
                callback = on_update(job.run) if on_update else None
                if callback is not None:
                    job.listeners.append(callback)
                handle = self._handle(job.run, self._engine.follow(job))
            handles.append(handle)
        for row in attach:
            if not await asyncio.to_thread(self.store.claim, row, self._engine.owner):
                continue  # another process took it first, or holds its lease: one owner per job
            run = run_of(row)
            callback = on_update(run) if on_update else None
            handles.append(self._handle(run, await self._engine.attach(run, callback)))
        handles.extend(await self._resume_batches(batch_rows, on_update))
        return handles

    async def waiting(self) -> int:
        """How many jobs of this history wait to be resumed (unfinished, with no live process on them)."""
        rows = await asyncio.to_thread(self.store.rows, status=UNFINISHED)
        attach, lost, unsent = reconcile_orphans(rows, set(self._engine.jobs), self._engine.owner)
        return len(attach) + len(lost) + len(unsent)

    async def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The video models this key may use (``GET /v1/video-generation-models``), cached after the first call."""
        if self._models is None or refresh:
            def error(answer: Answer) -> GrokError:
                return error_from_response(answer.status_code or 0, answer.body, headers=answer.headers,
                                           secret=self._backend.api_key)

            reply = await self._engine.sender.send(self._engine.unattached, "GET", "/v1/video-generation-models",
                                                   functools.partial(plain_reading, error=error),
                                                   started=time.monotonic(), turn=POLL)
            if reply.outcome != "ok":
                assert reply.error is not None
                raise reply.error
            self._models = parse_models_listing(reply.value)
        return list(self._models or [])

    # -- the vision judge, votes and rankings --------------------------------------------------------
    async def judge(self, run: Any, rubric: str | Sequence[str] | None = None, *, model: str = DEFAULT_JUDGE_MODEL,
                    frames: int = DEFAULT_FRAMES, detail: str = "low", width: int = DEFAULT_WIDTH) -> Judgement:
        """Ask a Grok vision model how well a finished run's video meets ``rubric``; kept in the history.

        ``run`` is a Run, a JobHandle, or the request id or run id of a run in this history. ``rubric`` is a
        text or a list of criteria (each scored under ``criteria``); by default, how well the video shows its
        own prompt. ``frames`` JPEG frames sampled evenly from the MP4, ``width`` pixels wide, go to
        ``POST /v1/responses`` with the prompt, ``store: false`` and a strict JSON schema. The same video, rubric,
        model, frames, detail and width are judged once: a valid verdict in the history is handed back
        (``cached`` True) and nothing is sent. An answer that does not fit the schema, a refusal or no answer
        gives a Judgement whose ``score`` is None and whose ``error`` says why (``.raise_for_error()`` raises
        it); it is kept but never reused. Raises before sending when an option is wrong, the video cannot be
        read, or the estimate does not fit the budget (BudgetExceeded).
        """
        (judgement,) = await self._judge([run], ["run"], rubric, model=model, frames=frames, detail=detail,
                                         width=width)
        return judgement

    async def judge_many(self, runs: Sequence[Any], rubric: str | Sequence[str] | None = None, *,
                         model: str = DEFAULT_JUDGE_MODEL, frames: int = DEFAULT_FRAMES, detail: str = "low",
                         width: int = DEFAULT_WIDTH) -> list[Judgement]:
        """Judge several runs against one rubric (as ``judge``), concurrently within the judge model's rate limit.

        A Judgement per run, in order. Every run is checked and every uncached call estimated before anything is
        sent; together they fit the budget, or none is sent (BudgetExceeded).
        """
        if isinstance(runs, (str, bytes)) or not isinstance(runs, Sequence):
            raise ValidationError("runs", runs, "a list of runs (Runs, JobHandles, request ids or run ids)")
        return await self._judge(list(runs), [f"runs[{i}]" for i in range(len(runs))], rubric, model=model,
                                 frames=frames, detail=detail, width=width)

    async def judge_pair(self, a: Any, b: Any, rubric: str | Sequence[str] | None = None, *,
                         model: str = DEFAULT_JUDGE_MODEL, frames: int = DEFAULT_FRAMES, detail: str = "low",
                         width: int = DEFAULT_WIDTH, experiment: str | None = None,
                         tie_within: float = 0.0) -> JudgedPair:
        """Let the judge vote between two runs: each is judged against ``rubric`` (as ``judge``, so a run judged
        before costs nothing), the higher score wins (``tie`` when the scores are within ``tie_within``), and the
        vote is recorded under the voter ``judge:<model>``, beside people's votes, so both can be ranked.

        When either judgement failed, no vote is recorded (``winner`` None). The same two judgements vote once.
        """
        experiment = check_label(experiment, "experiment", "an experiment's name (a text)")
        if isinstance(tie_within, bool) or not isinstance(tie_within, (int, float)) or not 0 <= tie_within <= 1:
            raise ValidationError("tie_within", tie_within, "a score difference from 0 to 1")
        rubric, targets = await self._judge_targets([a, b], ["a", "b"], rubric, model=model, frames=frames,
                                                    detail=detail, width=width)
        if targets[0].run_id == targets[1].run_id:
            raise ValidationError("b", b, "a run other than a (a vote compares two runs)")
        judged_a, judged_b = await self._judges.judge_many(targets, rubric, model=model, frames=frames,
                                                           detail=detail, width=width)
        winner, voter = pick_winner(judged_a, judged_b, float(tie_within)), judge_voter(model)
        if winner is None:
            return JudgedPair(judged_a, judged_b, None, voter)
        assert judged_a.judgement_id is not None and judged_b.judgement_id is not None
        found = await asyncio.to_thread(self.store.find_vote, voter=voter, judgement_a=judged_a.judgement_id,
                                        judgement_b=judged_b.judgement_id, experiment=experiment)
        if found is not None:
            return JudgedPair(judged_a, judged_b, found["winner"], voter, found["vote_id"])
        assert judged_a.run_id is not None and judged_b.run_id is not None
        vote = await self._record_vote(judged_a.run_id, judged_b.run_id, winner, voter, experiment,
                                       judgement_a=judged_a.judgement_id, judgement_b=judged_b.judgement_id)
        return JudgedPair(judged_a, judged_b, winner, voter, vote["vote_id"])

    async def judgements(self, run: Any = None, *, rubric: str | Sequence[str] | None = None,
                         valid: bool | None = None) -> Any:
        """The judgements of this history (of one run, under one rubric, only the valid or failed ones) as a
        DataFrame, oldest first."""
        run_id = None if run is None else await self._run_id_of(run, "run")
        return await asyncio.to_thread(self.store.judgements, run_id=run_id, rubric=rubric, valid=valid)

    async def vote(self, a: Any, b: Any, winner: str, *, voter: str | None = None,
                   experiment: str | None = None) -> dict[str, Any]:
        """Record which of two runs is better: ``winner`` is ``"a"``, ``"b"`` or ``"tie"``.

        ``a`` and ``b`` are Runs, JobHandles, or request ids or run ids of runs in this history; ``voter``
        defaults to this user (``GROK_NB_USER``, else user@host); ``experiment`` tags the vote. Anything
        wrong raises ValidationError naming it, and nothing is written. Returns the vote as recorded.
        """
        winner = check_winner(winner)
        voter = check_label(voter, "voter", "who voted (a name)") or current_user()
        experiment = check_label(experiment, "experiment", "an experiment's name (a text)")
        run_a, run_b = await self._run_id_of(a, "a"), await self._run_id_of(b, "b")
        if run_a == run_b:
            raise ValidationError("b", b, "a run other than a (a vote compares two runs)")
        return await self._record_vote(run_a, run_b, winner, voter, experiment)

    async def delete_vote(self, vote: Any) -> dict[str, Any]:
        """Take back a vote (a mis-click): ``vote`` is what ``vote()`` returned, or its ``vote_id``. Returns the
        vote as it was kept; the rankings no longer count it. An unknown vote raises ValidationError."""
        vote_id = vote.get("vote_id") if isinstance(vote, Mapping) else vote
        if not isinstance(vote_id, str) or not vote_id.strip():
            raise ValidationError("vote", vote, "a vote as client.vote() returned it, or its vote_id (a text)")
        removed = await asyncio.to_thread(self.store.delete_vote, vote_id)
        if removed is None:
            raise ValidationError("vote", vote_id, "the vote_id of a vote in this history (see client.votes()); "
                                                   "nothing was deleted")
        return removed

    async def votes(self, experiment: str | None = None, *, voter: str | None = None) -> Any:
        """The votes of this history (of one experiment, by one voter) as a DataFrame, oldest first: ``a``, ``b``
        (run ids), ``winner``, ``voter``, ``experiment``, ``created_at``, ``vote_id``."""
        return await asyncio.to_thread(self.store.votes, experiment=experiment, voter=voter)

    async def ranking(self, experiment: str | None = None, by: str = "prompt", voter: str | None = None, *,
                      bootstrap: int = DEFAULT_BOOTSTRAP, level: float = 0.95, seed: int | None = 0) -> Any:
        """Rank what the votes compared: one row per option, strongest first (Bradley–Terry strengths with
        bootstrap intervals, ``grok_nb.jobs.ranking.ranking``).

        An option is a value of the runs' column ``by`` in ``client.history()`` (prompt, resolution, duration,
        model, ..., or ``run_id`` for the runs themselves); a vote between two runs of the same option is left
        out. ``voter`` ranks one voter's votes (a person, or ``judge:<model>``); ``experiment`` one experiment's.
        """
        votes = await self.votes(experiment, voter=voter)
        runs = await self.history()
        if not isinstance(by, str) or by not in runs.columns:
            raise ValidationError("by", by, "a column of client.history(), such as prompt, resolution, duration, "
                                            "model or run_id")
        options = dict(zip(runs["run_id"], runs[by].map(_option), strict=True))
        return await asyncio.to_thread(ranking, votes, lambda run_id: options.get(run_id, "(not in this history)"),
                                       bootstrap=bootstrap, level=level, seed=seed)

    async def _judge(self, runs: list[Any], fields: list[str], rubric: str | Sequence[str] | None, *, model: str,
                     frames: int, detail: str, width: int) -> list[Judgement]:
        chosen, targets = await self._judge_targets(runs, fields, rubric, model=model, frames=frames, detail=detail,
                                                    width=width)
        return await self._judges.judge_many(targets, chosen, model=model, frames=frames, detail=detail,
                                             width=width)

    async def _judge_targets(self, runs: list[Any], fields: list[str], rubric: str | Sequence[str] | None, *,
                             model: str, frames: int, detail: str,
                             width: int) -> tuple[str | Sequence[str], list[Target]]:
        """The rubric (the default one for None) and each run's video, every option checked first."""
        chosen = DEFAULT_RUBRIC if rubric is None else rubric
        check_options(chosen, model, frames, detail, width)  # before anything is read or sent
        return chosen, [await self._judge_target(run, field) for run, field in zip(runs, fields, strict=True)]

    async def _judge_target(self, value: Any, field: str) -> Target:
        """A finished run's video on this machine (downloaded again while its URL lives, if it went missing)."""
        run = await self._run_of(value, field)
        if run.status is not Status.DONE:
            raise ValidationError(field, value, f"a finished run with its video (this one is {run.status.value}: "
                                                "wait for it first)")
        if (run.path is None or not run.path.is_file()) and run.request_id:
            again = await self.get(run.request_id)
            assert isinstance(again, Run)
            run = again
        if run.path is None or not run.path.is_file():
            raise ValidationError(field, value, "a run whose MP4 is on this machine (it is missing and could not be "
                                                "downloaded again)")
        return Target(run.run_id, run.prompt or "", run.path)

    async def _run_of(self, value: Any, field: str) -> Run:
        """A Run from a Run, a JobHandle, or the request id or run id of a run in this history."""
        if isinstance(value, JobHandle):
            value = value.run
        if isinstance(value, Run):
            return value
        allowed = "a Run, a JobHandle, or the request id or run id of a run in this history"
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(field, value, allowed)
        validation.check_text(value, field, allowed)
        await asyncio.to_thread(self._engine.writer.flush)
        row = await asyncio.to_thread(lambda: self.store.get(value.strip()) or self.store.find(value.strip()))
        if row is None:
            raise ValidationError(field, value, allowed)
        return run_of(row)

    async def _run_id_of(self, value: Any, field: str) -> str:
        """The run id of a run of this history (a vote's side, a judgements filter)."""
        run = await self._run_of(value, field)
        if isinstance(value, (Run, JobHandle)):  # made by a client: its row may still wait in the writer
            await asyncio.to_thread(self._engine.writer.flush)
            if await asyncio.to_thread(self.store.get, run.run_id) is None:
                raise ValidationError(field, value, "a run recorded in this history")
        return run.run_id

    async def _record_vote(self, a: str, b: str, winner: str, voter: str, experiment: str | None,
                           **judgements: str) -> dict[str, Any]:
        vote = {"vote_id": uuid.uuid4().hex, "a": a, "b": b, "winner": winner, "voter": voter,
                "experiment": experiment, "created_at": utcnow(), **judgements}
        await asyncio.to_thread(lambda: self.store.add_vote(**vote))
        return vote

    @functools.cached_property
    def _judges(self) -> Judges:
        shared = None if self._backend.embedded else self._backend.api_key

        def limiter_for(model: str) -> Limiter:
            # A bucket per key and judge model, shared by every process on the key like the video one.
            return make_limiter(shared, self._judge_rate, self.home, bucket=model)

        return Judges(self._engine.sender, self.store, self._engine.writer, self.budget, limiter_for=limiter_for,
                      secret=self._backend.api_key)

    # -- plumbing --------------------------------------------------------------------------------
    def _edit_spec(self, video: Any, prompt: Any = None, **options: Any) -> JobSpec:
        return validation.edit_spec(prompt, self._video_ref(video), **options)

    def _extend_spec(self, video: Any, prompt: Any = None, **options: Any) -> JobSpec:
        return validation.extend_spec(prompt, self._video_ref(video), **options)

    def _video_ref(self, video: Any) -> VideoRef:
        """A Run, a JobHandle, a request id in the history, or a URL → the input video."""
        if isinstance(video, JobHandle):
            video = video.run
        if isinstance(video, Run):
            if not video.url:
                raise ValidationError("video", video, "a finished run that has a video URL (wait for it first)")
            return VideoRef(video.url, video.duration, video.resolution, video.run_id)
        if isinstance(video, str) and video.startswith(("http://", "https://")):
            row = self.store.find_by_url(video)
            if row is not None:
                return VideoRef(video, row.get("video_duration"), row.get("resolution"), row["run_id"])
            return VideoRef(video)
        if media.looks_like_local_video(video):
            return media.video_ref(video)
        if isinstance(video, str) and _names_a_file(video):  # a path whose file is not there: say so
            raise ValidationError("video", video, f"a local MP4 that exists (no such file: {Path(video).absolute()}), "
                                                  "a Run, an http(s) URL, or the request id of a finished run")
        if isinstance(video, str) and video.strip():
            validation.check_text(video, "video")
            row = self.store.find(video.strip())
            if row is None or not row.get("video_url"):
                raise ValidationError("video", video, "a Run, a URL, or the request id of a finished run in this "
                                                      "history (re-attach first with client.get(request_id))")
            return VideoRef(row["video_url"], row.get("video_duration"), row.get("resolution"), row["run_id"])
        raise ValidationError("video", video, "a Run, a request id, or an http(s) URL of an MP4")

    def _job_for(self, spec: JobSpec, tags: list[str], on_update: UpdateCallback | None,
                 reservation: Reservation, take: int | None = None) -> Job:
        run = Run(run_id=uuid.uuid4().hex, kind=spec.kind, model=spec.model, prompt=spec.params.get("prompt"),
                  params=spec.params, backend=self.backend, estimate=spec.estimate,
                  parent_run_id=spec.parent_run_id, tags=[*self.tags, *tags], duration=spec.params.get("duration"),
                  take=take)
        # Local inputs over 10 MiB go as {"file_id": ...}, uploaded just before the submit (in the background).
        return self._engine.job(run, endpoint=spec.endpoint, body=spec.body, prepare=self._uploads.externalize_body,
                                reservation=reservation, on_update=on_update)

    async def _start(self, spec: JobSpec, tags: Any, wait: bool, on_update: UpdateCallback | None) -> Run | JobHandle:
        tag_list = validation.check_tags(tags)
        reservation = self.budget.reserve([spec.estimate.usd])[0]  # BudgetExceeded: nothing is sent
        job = self._job_for(spec, tag_list, on_update, reservation)
        (work,) = await self._engine.start([job])
        return await self._launch(job.run, work, wait)

    async def _launch(self, run: Run, work: Awaitable[Run], wait: bool) -> Run | JobHandle:
        if wait:
            return await work
        return self._handle(run, work)

    def _handle(self, run: Run, work: Awaitable[Run]) -> JobHandle:
        loop = asyncio.get_running_loop()
        # Before its caller's timeout gives up, the job is polled once more: one done at the server is returned done.
        handle = JobHandle(run, loop.create_task(work), loop,  # type: ignore[arg-type]
                           look=functools.partial(self._engine.look, run.run_id))
        self._handles[run.run_id] = handle
        return handle

    @functools.cached_property
    def _handles(self) -> weakref.WeakValueDictionary[str, JobHandle]:
        return weakref.WeakValueDictionary()

    # -- Files and Batch -------------------------------------------------------------------------
    async def upload(self, file: Any, *, expires_after: int | None = None, filename: str | None = None) -> str:
        """Upload an input (path, bytes or PIL image, at most 50 MB) to the Files API; returns its file id.

        The same bytes are not uploaded twice while their id lives. Pass ``{"file_id": id}`` as an
        ``image`` or ``video``; ``expires_after`` is in seconds (3,600 to 2,592,000).
        """
        return (await self._uploads.upload(file, expires_after=expires_after, filename=filename)).id

    def batch(self, name: str | None = None, *, takes: int = 1, tags: Sequence[str] = (),
              on_update: UpdateCallback | None = None) -> BatchJob:
        """A batch builder: ``b.generate/edit/extend(...)`` as on the client, sent outside the key's rate limit.

        ``with client.batch(name="sweep") as b: ...`` (``async with`` on AsyncClient) submits on
        leaving the block (or ``b.submit()``); ``b.wait()`` returns the runs once all are done;
        ``b.cancel()`` cancels what has not run (each awaited on AsyncClient). Best effort (typically
        within 24 hours), billed at standard prices. With ``takes=N`` every request is made N times
        (``run.take``; ``b.generate`` returns the first take, ``b.runs`` holds them all).
        """
        job = BatchJob(self._engine, name=name, spec_for=self._batch_spec, uploads=self._uploads,
                       backend=self.backend, tags=[*self.tags, *validation.check_tags(tags)],
                       speed=self._backend.speed, on_update=on_update, takes=validation.check_takes(takes))
        self._batches.append(job)
        return job

    async def start_batch(self, jobs: Sequence[dict[str, Any]], *, takes: int = 1, name: str | None = None,
                          tags: Sequence[str] = (),
                          on_update: Callable[[int], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Send several generate() jobs (one dict of arguments each) as one batch; a handle per job, at once.

        Like ``start_many`` (all fit the budget or none is sent, each job made ``takes`` times), but outside the
        key's rate limit and best effort: results come back typically within 24 hours, billed at standard prices.
        """
        job = self.batch(name, takes=takes, tags=tags)
        for args in jobs:
            job.generate(**args)  # every one validated before anything is sent
        runs = list(job.runs)
        for i, run in enumerate(runs):
            callback = on_update(i) if on_update else None
            if callback is not None:
                job.listen(run, callback)
        job.reserve()  # BudgetExceeded here: nothing is sent
        handles = [job.handle(run) for run in runs]
        self._background(job.send_in_background())  # the batch is made and filled while the caller goes on
        return handles

    def _batch_spec(self, kind: str, *args: Any, **kwargs: Any) -> JobSpec:
        if kind == "generate":
            return validation.generate_spec(*args, **kwargs)
        if kind == "edit":
            return self._edit_spec(*args, **kwargs)
        return self._extend_spec(*args, **kwargs)

    async def _resume_batches(self, rows: list[dict[str, Any]],
                              on_update: Callable[[Run], UpdateCallback | None] | None) -> list[JobHandle]:
        followed = {b.batch_id for b in self._batches if b.batch_id is not None}
        handles: list[JobHandle] = []
        for batch_id, group in resumable_batches(rows, self._engine.owner, followed).items():
            job = await BatchJob.attach(self._engine, batch_id, group, backend=self.backend, speed=self._backend.speed)
            for run in job.runs:
                callback = on_update(run) if on_update else None
                if callback is not None:
                    job.listeners.append(callback)
            self._batches.append(job)
            handles.extend(job.handle(run) for run in job.runs)
        return handles

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` on the loop after the caller returned; its task is held until it ends (and awaited on close)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @functools.cached_property
    def _tasks(self) -> set[asyncio.Task[None]]:
        return set()

    @functools.cached_property
    def _batches(self) -> list[BatchJob]:
        return []

    @functools.cached_property
    def _uploads(self) -> Uploads:
        return Uploads(self._engine, redact_url(self._backend.base_url), self._backend.speed)

    async def aclose(self) -> None:
        """Let submits in flight bring back their request ids, write the history, close the connections."""
        if "_judges" in self.__dict__:  # judge calls in flight finish (they may be billed) and are kept
            await self._judges.aclose(SETTLE_SUBMITS_S)
        await self._engine.settle_submits(SETTLE_SUBMITS_S)
        if self._tasks:  # batches still being made: their adding calls must finish or be reconciled later
            await asyncio.wait(list(self._tasks), timeout=SETTLE_SUBMITS_S)
        for batch in self._batches:  # they go on at the server; resume() follows them again
            await batch.aclose()
        await self._engine.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


async def _finished(run: Run) -> Run:
    return run


def _option(value: Any) -> Any:
    """A history cell as an option of a ranking: lists as tuples (hashable), nothing as "(none)"."""
    if isinstance(value, list):
        return tuple(value)
    try:
        missing = bool(value is None or value != value)  # None, NaN, pandas' NA
    except (TypeError, ValueError):  # NA compares to nothing
        missing = True
    return "(none)" if missing else value


class _LoopThread:
    """An event loop in a daemon thread, so blocking calls work anywhere, even inside a running kernel loop."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grok-nb-client", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop thread and block for its result."""
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result()

    def alive(self) -> bool:
        """True until closed."""
        return self._thread.is_alive()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():  # stopped: close it too, or its selector and socketpair leak
            self.loop.close()


#: Clients still open (held until closed: each runs a loop thread); at exit each is closed, so POSTs in
#: flight bring back their request ids and the history writer empties its queue.
_OPEN: set[SyncClientBase] = set()


@atexit.register
def _close_open_clients() -> None:
    for client in list(_OPEN):
        try:
            client.close()
        except (Exception, KeyboardInterrupt):  # the interpreter is ending anyway; the ids are written
            pass


class SyncClientBase:
    """What the blocking facade does by hand: its loop thread, closing, and how a job's wait blocks.

    The methods themselves are generated from :class:`AsyncClient` (``grok_nb/sync_client.py``, written by
    ``scripts/make_sync.py``): each runs its AsyncClient twin on this client's loop thread.
    """

    _async: AsyncClient

    def _open(self, *args: Any, **kwargs: Any) -> None:
        self._loop = _LoopThread()
        try:
            self._async = self._loop.call(_make_async, *args, **kwargs)
        except BaseException:
            self._loop.close()
            raise
        _OPEN.add(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncClient", "Client", 1)

    @property
    def _backend(self) -> Backend:
        return self._async._backend

    def _call(self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a coroutine function of the async core on the loop thread and block for its result."""
        return self._loop.call(fn, *args, **kwargs)

    def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a plain function of the async core on the loop thread (it may touch the loop's objects)."""
        return asyncio.run_coroutine_threadsafe(_plainly(fn, *args, **kwargs), self._loop.loop).result()

    def _job(self, wait: bool, start: Coroutine[Any, Any, Run | JobHandle]) -> Run | JobHandle:
        """Start a job on the loop thread (``start`` was called with wait=False), then block on it when asked."""
        handle = self._loop.call(_awaited, start)
        assert isinstance(handle, JobHandle)
        return handle.result() if wait else handle

    def close(self) -> None:
        """Let submits in flight bring back their request ids, close the connections, stop the loop thread."""
        if not self._loop.alive():
            return
        _OPEN.discard(self)
        interrupted = False
        try:
            future = asyncio.run_coroutine_threadsafe(self._async.aclose(), self._loop.loop)
            deadline = time.monotonic() + SETTLE_SUBMITS_S + 15
            while True:
                try:
                    future.result(max(0.0, deadline - time.monotonic()))
                    break
                except KeyboardInterrupt:
                    # Another Ctrl+C (often the one that ends a script) must not drop the request ids
                    # still on their way: they are what makes a paid job resumable. Waiting stays bounded.
                    if not interrupted:
                        jobs = list(self._async._engine.jobs.values())
                        left = sum(1 for j in jobs if j.submit_task is not None and not j.submit_task.done())
                        print(f"grok_nb: still waiting (up to {deadline - time.monotonic():.0f} s) for {left} "
                              "submit(s) in flight to bring back their request ids, so that no paid job is lost",
                              file=sys.stderr, flush=True)
                    interrupted = True
        finally:
            self._loop.close()
        if interrupted:
            raise KeyboardInterrupt

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class SyncBatchBase:
    """What the blocking face of a batch does by hand; its methods are generated from :class:`BatchJob`."""

    def __init__(self, job: BatchJob, client: SyncClientBase):
        self._job = job
        self._client = client

    def _call(self, fn: Callable[P, Coroutine[Any, Any, T]], *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._call(fn, *args, **kwargs)

    def wait(self, timeout: float | None = None) -> list[Run]:
        """Every run once all are finished; ``timeout`` s at most, then one more look (BatchWaitTimeout if some
        still run). Ctrl+C stops waiting; the batch goes on: client.resume()."""
        try:
            return self._call(self._job.wait, timeout)
        except KeyboardInterrupt:
            print(f"grok_nb: stopped waiting for batch {self._job.batch_id}; it goes on at the server and this client "
                  "keeps reading its results. b.wait() again, or client.resume() in a new kernel.", flush=True)
            raise

    def __repr__(self) -> str:
        return repr(self._job)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self._call(self._job.submit)


async def _make_async(*args: Any, **kwargs: Any) -> AsyncClient:
    return AsyncClient(*args, **kwargs)


async def _plainly(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    return fn(*args, **kwargs)


async def _awaited(coroutine: Coroutine[Any, Any, T]) -> T:
    return await coroutine
