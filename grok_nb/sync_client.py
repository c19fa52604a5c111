# Written by scripts/make_sync.py from client.py and runtime/batch.py: do not edit, run the script.
"""The blocking facade of the client and of its batches: each method runs its async twin on the loop thread."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from .api.batch import BatchState
from .api.frames import DEFAULT_FRAMES, DEFAULT_WIDTH
from .api.judge import DEFAULT_MODEL as DEFAULT_JUDGE_MODEL
from .api.judge import Judgement
from .api.models import ModelInfo, with_allowed_values
from .api.pricing import CostEstimate
from .api.validation import DEFAULT_MODEL
from .backends import Backend
from .client import DEFAULT_DEADLINE_S, DEFAULT_TIMEOUT, SyncBatchBase, SyncClientBase
from .history.store import RunStore
from .jobs.budget import Budget
from .jobs.policy import PollPolicy
from .jobs.ranking import DEFAULT_BOOTSTRAP
from .jobs.results import JobHandle, Run
from .runtime.engine import UpdateCallback
from .runtime.judge import JudgedPair
from .runtime.ratelimit import Limiter
from .runtime.scheduler import Scheduler

__all__ = ["Client", "SyncBatch"]


class Client(SyncClientBase):
    """The blocking facade over :class:`AsyncClient`: same methods, same arguments, no ``await``.

    Each method runs its AsyncClient twin on the client's loop thread; a job method starts the job
    there and then blocks on its handle, so Ctrl+C stops the waiting and never the job.
    """

    @property
    def home(self) -> Path:
        """The data folder: history, video cache, key-sharing state."""
        return self._async.home

    @property
    def budget(self) -> Budget:
        """The ledger of what this client may spend, has spent and holds for jobs under way."""
        return self._async.budget

    @property
    def tags(self) -> list[str]:
        """The tags put on every run of this client."""
        return self._async.tags

    @property
    def policy(self) -> PollPolicy:
        """The timings of waiting: deadline, poll gaps, retries."""
        return self._async.policy

    @property
    def cache_dir(self) -> Path:
        """Where finished MP4s are kept."""
        return self._async.cache_dir

    @property
    def store(self) -> RunStore:
        """The run history (SQLite in the home, or PostgreSQL)."""
        return self._async.store

    @property
    def limiter(self) -> Limiter:
        """The key's request budget (shared with other processes on the key)."""
        return self._async.limiter

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
    ) -> None:
        """Settings come from the arguments, then XAI_API_KEY / GROK_NB_BASE_URL / GROK_NB_HOME, then defaults.

        With neither a key nor a base URL, videos come from the embedded simulator (it says so).
        ``judge_rate_limit`` is each judge model's requests per second (its own bucket, apart from the videos').
        """
        self._open(
            api_key,
            base_url,
            deadline=deadline,
            rate_limit=rate_limit,
            poll_interval=poll_interval,
            timeout=timeout,
            home=home,
            tags=tags,
            budget_usd=budget_usd,
            simulator_speed=simulator_speed,
            policy=policy,
            transport=transport,
            quiet=quiet,
            backend=backend,
            limiter=limiter,
            judge_rate_limit=judge_rate_limit,
        )

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._async.base_url

    @property
    def backend(self) -> str:
        """``xai`` or ``simulator``."""
        return self._async.backend

    @property
    def simulated(self) -> bool:
        """True when videos come from a simulator, not xAI."""
        return self._async.simulated

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler that spends this client's request budget."""
        return self._async.scheduler

    @property
    def budget_usd(self) -> float | None:
        """The spending limit for everything sent through this client (None: no limit)."""
        return self._async.budget_usd

    @property
    def spent_usd(self) -> float:
        """What this client's finished jobs and judge calls cost (actual where reported, else estimated)."""
        return self._async.spent_usd

    @property
    def judge_spent_usd(self) -> float:
        """What this client's judge calls cost (part of ``spent_usd``; ``budget.spent_by_kind`` has both kinds)."""
        return self._async.judge_spent_usd

    @property
    def remaining_usd(self) -> float | None:
        """What may still be spent: the budget less what is spent and held for jobs under way."""
        return self._async.remaining_usd

    def history(self, **filters: Any) -> Any:
        """The runs of this history as a DataFrame, newest first (or those passing status, kind, tags, text, since,
        made_by); read off the event loop."""
        return self._call(self._async.history, **filters)

    def estimate_cost(self, *args: Any, kind: str = 'generate', **kwargs: Any) -> CostEstimate:
        """The price of a job before anything is sent; takes the arguments of generate/edit/extend."""
        return self._call(self._async.estimate_cost, *args, kind=kind, **kwargs)

    @with_allowed_values("generate")
    def generate(
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
        return self._job(wait, self._async.generate(
            prompt,
            image=image,
            reference_images=reference_images,
            duration=duration,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            model=model,
            generate_audio=generate_audio,
            user=user,
            last_frame=last_frame,
            keyframes=keyframes,
            reference_audios=reference_audios,
            tags=tags,
            wait=False,
            on_update=on_update,
        ))

    @with_allowed_values("edit")
    def edit(
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
        return self._job(wait, self._async.edit(
            video,
            prompt,
            model=model,
            user=user,
            tags=tags,
            wait=False,
            on_update=on_update,
            **unsupported,
        ))

    @with_allowed_values("extend")
    def extend(
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
        return self._job(wait, self._async.extend(
            video,
            prompt,
            duration=duration,
            model=model,
            tags=tags,
            wait=False,
            on_update=on_update,
            **unsupported,
        ))

    def start_many(
        self,
        jobs: Sequence[dict[str, Any]],
        *,
        takes: int = 1,
        tags: Sequence[str] = (),
        on_update: Callable[[int], UpdateCallback | None] | None = None,
    ) -> list[JobHandle]:
        """Start several generate() jobs (one dict of arguments each) as one: all fit the budget, or none is sent.

        Each job is made ``takes`` times (``run.take`` 1, 2, ...: the service has no seed, so takes show how much
        a prompt varies); the handles come job by job, take by take, and the budget counts every take. They come
        back once their rows are written (one transaction); the submits go out in the background, each when the
        key's rate limit gives it a turn.
        """
        return self._call(self._async.start_many, jobs, takes=takes, tags=tags, on_update=on_update)

    def get(self, request_id: str, *, wait: bool = True, on_update: UpdateCallback | None = None) -> Run | JobHandle:
        """Re-attach to any job by request id (one started earlier, or in another process)."""
        return self._job(wait, self._async.get(request_id, wait=False, on_update=on_update))

    def resume(self, *, on_update: Callable[[Run], UpdateCallback | None] | None = None) -> list[JobHandle]:
        """Re-attach every unfinished job of this history that has a request id; sends no submit.

        Rows left ``submitting`` by a process that is gone become ``uncertain`` if their POST had left (it
        may or may not have started a job, so nothing is resent) and ``rejected`` if it never left
        (nothing sent, nothing billed). Jobs another live process is waiting for are left to it.
        """
        return self._call(self._async.resume, on_update=on_update)

    def waiting(self) -> int:
        """How many jobs of this history wait to be resumed (unfinished, with no live process on them)."""
        return self._call(self._async.waiting)

    def models(self, *, refresh: bool = False) -> list[ModelInfo]:
        """The video models this key may use (``GET /v1/video-generation-models``), cached after the first call."""
        return self._call(self._async.models, refresh=refresh)

    def judge(
        self,
        run: Any,
        rubric: str | Sequence[str] | None = None,
        *,
        model: str = DEFAULT_JUDGE_MODEL,
        frames: int = DEFAULT_FRAMES,
        detail: str = 'low',
        width: int = DEFAULT_WIDTH,
    ) -> Judgement:
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
        return self._call(self._async.judge, run, rubric, model=model, frames=frames, detail=detail, width=width)

    def judge_many(
        self,
        runs: Sequence[Any],
        rubric: str | Sequence[str] | None = None,
        *,
        model: str = DEFAULT_JUDGE_MODEL,
        frames: int = DEFAULT_FRAMES,
        detail: str = 'low',
        width: int = DEFAULT_WIDTH,
    ) -> list[Judgement]:
        """Judge several runs against one rubric (as ``judge``), concurrently within the judge model's rate limit.

        A Judgement per run, in order. Every run is checked and every uncached call estimated before anything is
        sent; together they fit the budget, or none is sent (BudgetExceeded).
        """
        return self._call(self._async.judge_many, runs, rubric, model=model, frames=frames, detail=detail, width=width)

    def judge_pair(
        self,
        a: Any,
        b: Any,
        rubric: str | Sequence[str] | None = None,
        *,
        model: str = DEFAULT_JUDGE_MODEL,
        frames: int = DEFAULT_FRAMES,
        detail: str = 'low',
        width: int = DEFAULT_WIDTH,
        experiment: str | None = None,
        tie_within: float = 0.0,
    ) -> JudgedPair:
        """Let the judge vote between two runs: each is judged against ``rubric`` (as ``judge``, so a run judged
        before costs nothing), the higher score wins (``tie`` when the scores are within ``tie_within``), and the
        vote is recorded under the voter ``judge:<model>``, beside people's votes, so both can be ranked.

        When either judgement failed, no vote is recorded (``winner`` None). The same two judgements vote once.
        """
        return self._call(
            self._async.judge_pair,
            a,
            b,
            rubric,
            model=model,
            frames=frames,
            detail=detail,
            width=width,
            experiment=experiment,
            tie_within=tie_within,
        )

    def judgements(
        self,
        run: Any = None,
        *,
        rubric: str | Sequence[str] | None = None,
        valid: bool | None = None,
    ) -> Any:
        """The judgements of this history (of one run, under one rubric, only the valid or failed ones) as a
        DataFrame, oldest first."""
        return self._call(self._async.judgements, run, rubric=rubric, valid=valid)

    def vote(
        self,
        a: Any,
        b: Any,
        winner: str,
        *,
        voter: str | None = None,
        experiment: str | None = None,
    ) -> dict[str, Any]:
        """Record which of two runs is better: ``winner`` is ``"a"``, ``"b"`` or ``"tie"``.

        ``a`` and ``b`` are Runs, JobHandles, or request ids or run ids of runs in this history; ``voter``
        defaults to this user (``GROK_NB_USER``, else user@host); ``experiment`` tags the vote. Anything
        wrong raises ValidationError naming it, and nothing is written. Returns the vote as recorded.
        """
        return self._call(self._async.vote, a, b, winner, voter=voter, experiment=experiment)

    def delete_vote(self, vote: Any) -> dict[str, Any]:
        """Take back a vote (a mis-click): ``vote`` is what ``vote()`` returned, or its ``vote_id``. Returns the
        vote as it was kept; the rankings no longer count it. An unknown vote raises ValidationError."""
        return self._call(self._async.delete_vote, vote)

    def votes(self, experiment: str | None = None, *, voter: str | None = None) -> Any:
        """The votes of this history (of one experiment, by one voter) as a DataFrame, oldest first: ``a``, ``b``
        (run ids), ``winner``, ``voter``, ``experiment``, ``created_at``, ``vote_id``."""
        return self._call(self._async.votes, experiment, voter=voter)

    def ranking(
        self,
        experiment: str | None = None,
        by: str = 'prompt',
        voter: str | None = None,
        *,
        bootstrap: int = DEFAULT_BOOTSTRAP,
        level: float = 0.95,
        seed: int | None = 0,
    ) -> Any:
        """Rank what the votes compared: one row per option, strongest first (Bradley–Terry strengths with
        bootstrap intervals, ``grok_nb.jobs.ranking.ranking``).

        An option is a value of the runs' column ``by`` in ``client.history()`` (prompt, resolution, duration,
        model, ..., or ``run_id`` for the runs themselves); a vote between two runs of the same option is left
        out. ``voter`` ranks one voter's votes (a person, or ``judge:<model>``); ``experiment`` one experiment's.
        """
        return self._call(self._async.ranking, experiment, by, voter, bootstrap=bootstrap, level=level, seed=seed)

    def upload(self, file: Any, *, expires_after: int | None = None, filename: str | None = None) -> str:
        """Upload an input (path, bytes or PIL image, at most 50 MB) to the Files API; returns its file id.

        The same bytes are not uploaded twice while their id lives. Pass ``{"file_id": id}`` as an
        ``image`` or ``video``; ``expires_after`` is in seconds (3,600 to 2,592,000).
        """
        return self._call(self._async.upload, file, expires_after=expires_after, filename=filename)

    def batch(
        self,
        name: str | None = None,
        *,
        takes: int = 1,
        tags: Sequence[str] = (),
        on_update: UpdateCallback | None = None,
    ) -> SyncBatch:
        """A batch builder: ``b.generate/edit/extend(...)`` as on the client, sent outside the key's rate limit.

        ``with client.batch(name="sweep") as b: ...`` (``async with`` on AsyncClient) submits on
        leaving the block (or ``b.submit()``); ``b.wait()`` returns the runs once all are done;
        ``b.cancel()`` cancels what has not run (each awaited on AsyncClient). Best effort (typically
        within 24 hours), billed at standard prices. With ``takes=N`` every request is made N times
        (``run.take``; ``b.generate`` returns the first take, ``b.runs`` holds them all).
        """
        return SyncBatch(self._run(self._async.batch, name, takes=takes, tags=tags, on_update=on_update), self)

    def start_batch(
        self,
        jobs: Sequence[dict[str, Any]],
        *,
        takes: int = 1,
        name: str | None = None,
        tags: Sequence[str] = (),
        on_update: Callable[[int], UpdateCallback | None] | None = None,
    ) -> list[JobHandle]:
        """Send several generate() jobs (one dict of arguments each) as one batch; a handle per job, at once.

        Like ``start_many`` (all fit the budget or none is sent, each job made ``takes`` times), but outside the
        key's rate limit and best effort: results come back typically within 24 hours, billed at standard prices.
        """
        return self._call(self._async.start_batch, jobs, takes=takes, name=name, tags=tags, on_update=on_update)


class SyncBatch(SyncBatchBase):
    """The blocking face of a :class:`BatchJob`: ``with client.batch(name=...) as b: ...``, then ``b.wait()``."""

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

    @with_allowed_values("generate")
    def generate(
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
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.generate``.

        Text→video, image→video (``image`` is the first frame) or reference→video (``reference_images``).

        On grok-imagine-video-1.5 also ``last_frame`` (the final frame), ``keyframes`` (up to 4
        ``{"image": ..., "timestamp_s": n}``) and ``reference_audios`` (up to 3 voice ids, ``<AUDIO_n>`` in the prompt).
        """
        return self._job.generate(
            prompt,
            image=image,
            reference_images=reference_images,
            duration=duration,
            resolution=resolution,
            aspect_ratio=aspect_ratio,
            model=model,
            generate_audio=generate_audio,
            user=user,
            last_frame=last_frame,
            keyframes=keyframes,
            reference_audios=reference_audios,
            tags=tags,
        )

    @with_allowed_values("edit")
    def edit(
        self,
        video: Any,
        prompt: str,
        *,
        model: str = DEFAULT_MODEL,
        user: str | None = None,
        tags: Sequence[str] = (),
        **unsupported: Any,
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.edit``.

        Change a video by prompt.

        ``video`` is a Run, a request id, a URL, a local MP4 (path or bytes) or a file id.
        """
        return self._job.edit(video, prompt, model=model, user=user, tags=tags, **unsupported)

    @with_allowed_values("extend")
    def extend(
        self,
        video: Any,
        prompt: str,
        *,
        duration: int | None = None,
        model: str = DEFAULT_MODEL,
        tags: Sequence[str] = (),
        **unsupported: Any,
    ) -> Run:
        """Add a request to the batch, with the arguments and checks of ``client.extend``.

        Continue a video (same inputs as edit); ``duration`` is the length of the added part only.
        """
        return self._job.extend(video, prompt, duration=duration, model=model, tags=tags, **unsupported)

    @property
    def estimate_usd(self) -> float:
        """The estimated total of the requests added (billed at standard prices: no batch discount for video)."""
        return self._job.estimate_usd

    def reserve(self) -> None:
        """Hold the whole batch's estimate in the budget, or raise BudgetExceeded and hold nothing; sends nothing."""
        return self._job.reserve()

    def submit(self) -> SyncBatch:
        """Upload large inputs, reserve the budget, create the batch, record the rows, add the requests."""
        self._call(self._job.submit)
        return self

    def send_in_background(self) -> None:
        """``submit()`` for a caller that has already returned (``start_batch``): a batch that cannot be made ends
        its runs refused (nothing was sent), with the reason."""
        return self._call(self._job.send_in_background)

    def refresh(self) -> BatchState | None:
        """Read the batch's counters now."""
        return self._call(self._job.refresh)

    def cancel(self) -> BatchState | None:
        """Cancel what has not run yet (not billed); finished results are still read and downloaded."""
        return self._call(self._job.cancel)

    @property
    def progress(self) -> dict[str, Any]:
        """Where the batch stands: counters from the server, and the runs' own statuses here."""
        return self._job.progress
