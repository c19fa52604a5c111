"""One job's lifecycle, written once and without I/O: statuses, the transitions between them, and typed events.

A job goes ``submitting`` → ``pending`` → ``done`` (or ``failed``, ``moderated``, ``expired``,
``download_failed``); a submit that may have reached the server without an answer is
``uncertain`` and is never resent; one refused before it could start a job is ``rejected``.
The async driver (``grok_nb.runtime.engine``) feeds answers in; the history store and the views
subscribe to the events that come out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

from ..api.responses import JobStatus
from .policy import PollPolicy, Problem, Stop, SubmitOutcome, Wait, next_step, submit_step


class Status(str, Enum):
    """Where a job stands; a ``str``, so ``run.status == "done"`` keeps working."""

    SUBMITTING = "submitting"  # the history row exists; the POST is being sent
    PENDING = "pending"  # the server accepted it (request id known) and is working
    DONE = "done"  # the video is done and downloaded
    FAILED = "failed"  # the server says the job failed (or sent no video to fetch)
    MODERATED = "moderated"  # made, but withheld by moderation (usually billed)
    EXPIRED = "expired"  # the job ran but its content is gone
    # done at the server; the MP4 could not be fetched (resumable while the URL lives)
    DOWNLOAD_FAILED = "download_failed"
    UNCERTAIN = "uncertain"  # the POST may have started a paid job but no id came back: never resent
    REJECTED = "rejected"  # refused before any job could start (nothing billed)

    def __str__(self) -> str:  # f"{status}" reads "done", not "Status.DONE"
        return self.value

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the job by itself."""
        return self in FINAL

    @property
    def ok(self) -> bool:
        """True for a finished video on disk."""
        return self is Status.DONE


FINAL = frozenset({Status.DONE, Status.FAILED, Status.MODERATED, Status.EXPIRED, Status.DOWNLOAD_FAILED,
                   Status.UNCERTAIN, Status.REJECTED})
#: Statuses a ``resume()`` picks up again: the server may still have (or be making) the video.
RESUMABLE = frozenset({Status.SUBMITTING, Status.PENDING, Status.DOWNLOAD_FAILED})


def status_of(value: Any) -> Status:
    """A Status from its text (history rows store text); unknown text counts as pending."""
    try:
        return Status(str(value))
    except ValueError:
        return Status.PENDING


# -- events ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobEvent:
    """Something happened to a job; ``run`` is the live record, ``at`` a monotonic time."""

    run: Any
    at: float = field(default_factory=time.monotonic)

    #: The history must hold this before the job goes on (the row, the request id).
    durable: ClassVar[bool] = False


@dataclass(frozen=True)
class Created(JobEvent):
    """The job exists locally (validated, priced); nothing has been sent yet."""

    durable = True


@dataclass(frozen=True)
class Submitted(JobEvent):
    """The POST is about to leave: on disk first, so that after a crash only a row marked sent can be uncertain."""

    durable = True


@dataclass(frozen=True)
class RequestIdKnown(JobEvent):
    """The server accepted the job: from now on it can always be resumed by its request id."""

    durable = True


@dataclass(frozen=True)
class Progress(JobEvent):
    """A poll answered: progress (maybe None) and status still running."""


@dataclass(frozen=True)
class Exchange(JobEvent):
    """One HTTP request of the job (method, path, status, timing, summary) for the history's log."""

    entry: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finished(JobEvent):
    """The job reached a final status (done, failed, moderated, expired, download_failed, uncertain, rejected)."""

    durable = True


@dataclass(frozen=True)
class Stopped(JobEvent):
    """Nobody waits for the job any more (deadline, Ctrl+C, stop_waiting); it stays resumable."""

    durable = True
    reason: str = ""


Listener = Callable[[JobEvent], Any]


# -- transitions ----------------------------------------------------------------------------------
def after_submit(policy: PollPolicy, outcome: SubmitOutcome, attempt: int, rand: float = 0.5,
                 elapsed: float = 0.0) -> tuple[Wait | Stop, Status | None]:
    """What follows one submit attempt, and the job's new status when it is decided.

    Keeps the rule that a POST which may have reached the server is never resent.
    """
    step = submit_step(policy, outcome, attempt, rand, elapsed)
    if isinstance(step, Wait):
        return step, None
    return step, submit_status(step.outcome)


def submit_status(outcome: str) -> Status:
    """A submit's status from the outcome that ended it: pending once accepted, uncertain when it may have
    reached the server, else rejected (nothing started)."""
    return {"accepted": Status.PENDING, "ok": Status.PENDING, "uncertain": Status.UNCERTAIN}.get(outcome,
                                                                                               Status.REJECTED)


#: A poll's outcome (from ``policy.next_step``) → the job's final status.
_POLL_OUTCOMES = {"done": None, "moderated": Status.MODERATED, "failed": Status.FAILED, "expired": Status.EXPIRED,
                  "no_video": Status.FAILED}


def after_poll(policy: PollPolicy, observation: JobStatus | Problem, *, elapsed: float, polls: int,
               errors_in_a_row: int, rand: float = 0.5,
               planned: float | None = None) -> tuple[Wait | Stop, Status | None]:
    """What follows one poll: keep waiting, download (``done``), or a final status.

    A ``Stop("done")`` comes back with status None: the job is done at the server and the
    download decides between ``done`` and ``download_failed``.
    """
    step = next_step(policy, observation, elapsed=elapsed, polls=polls, errors_in_a_row=errors_in_a_row, rand=rand,
                     planned=planned)
    if isinstance(step, Wait):
        return step, None
    return step, _POLL_OUTCOMES.get(step.outcome)


def after_download(ok: bool, gone: bool = False) -> Status:
    """A done job whose MP4 was fetched and checked (done), could not be (download_failed), or is gone (expired)."""
    if ok:
        return Status.DONE
    return Status.EXPIRED if gone else Status.DOWNLOAD_FAILED


#: A reported cost above this many times the estimate is taken as a wrong figure, not a price.
ABSURD_COST_FACTOR = 10.0
#: Below this estimate, ten times it is no bound (a job priced at nothing); a cost up to it is plausible.
_COST_FLOOR_USD = 0.01


@dataclass(frozen=True)
class CostCount:
    """What a finished job counts against a budget (``usd``) and which figure that is (``basis``)."""

    usd: float
    basis: str  # "actual", "estimate", "none", then why when the server's figure was not used


def cost_problem(estimate_usd: float, actual_usd: float | None, reported: Any = None) -> str | None:
    """Why the server's cost cannot be counted (missing, not a number, negative, absurd), or None when it can."""
    if actual_usd is None:
        if reported is None:
            return "no cost reported"
        shown = repr(reported)
        return f"the reported cost_in_usd_ticks {shown[:40]} is not a number"
    if actual_usd != actual_usd or actual_usd in (float("inf"), float("-inf")):
        return "the reported cost is not a finite number"
    if actual_usd < 0:
        return f"the reported cost ${actual_usd:.3f} is negative"
    if actual_usd > ABSURD_COST_FACTOR * max(estimate_usd, _COST_FLOOR_USD):
        return (f"the reported cost ${actual_usd:.2f} is over {ABSURD_COST_FACTOR:g}x "
                f"the estimate ${estimate_usd:.3f}")
    return None


def count_cost(status: Status, estimate_usd: float, actual_usd: float | None, reported: Any = None) -> CostCount:
    """What a finished job counts against a budget, and why: the larger of the estimate and a sane server figure.

    The server's figure is sane only when it is a number between 0 and ten times the estimate: a
    negative one would refill the budget, an absurd one empty it; then the estimate counts. A sane
    figure below the estimate still counts the estimate (a budget guards against spending, so it never
    counts less than was expected), except for a failed or refused job, which counts what it reports.
    A failed or refused job that reports no cost is taken as unbilled.
    """
    problem = cost_problem(estimate_usd, actual_usd, reported)
    if problem is None:
        assert actual_usd is not None
        if actual_usd >= estimate_usd or status in (Status.FAILED, Status.REJECTED):
            return CostCount(actual_usd, "actual")
        return CostCount(estimate_usd, f"estimate (larger than the reported ${actual_usd:.3f})")
    if problem == "no cost reported" and status in (Status.FAILED, Status.REJECTED):
        return CostCount(0.0, "none (the job did not run and no cost was reported)")
    return CostCount(max(estimate_usd, 0.0), f"estimate ({problem})" if problem != "no cost reported" else "estimate")


def settle_cost(status: Status, estimate_usd: float, actual_usd: float | None, reported: Any = None) -> float:
    """What a finished job counts against a budget: the server's figure when sane, else the estimate for billed
    outcomes (see ``count_cost``).

    A failed or refused job without a ``usage`` figure is taken as unbilled; an uncertain one
    keeps its estimate (it may have been billed).
    """
    return count_cost(status, estimate_usd, actual_usd, reported).usd
