"""One job's lifecycle, written once and without I/O: the transitions between its statuses, what a finished job
costs, and typed events (the statuses themselves, and all they mean, are the table in ``status.py``).

A job goes ``submitting`` → ``pending`` → ``done`` (or ``failed``, ``moderated``, ``expired``, ``cancelled``,
``download_failed``); a submit that may have reached the server without an answer is
``uncertain`` and is never resent; one refused before it could start a job is ``rejected``.
The async driver (``grok_nb.runtime.engine``) feeds answers in; the history store and the views
subscribe to the events that come out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..api.pricing import cost_problem as cost_problem  # the one sanity rule for reported costs (videos, judges)
from ..api.responses import JobStatus
from .policy import PollPolicy, Problem, Stop, Wait, next_step
from .status import Status


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
class Saved(JobEvent):
    """The run changed in a way the history must hold before the job goes on (a batch request added, say)."""

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


@dataclass(frozen=True)
class CostCount:
    """What a finished job counts against a budget (``usd``) and which figure that is (``basis``)."""

    usd: float
    basis: str  # "actual", "estimate", "none", then why when the server's figure was not used


def count_cost(status: Status, estimate_usd: float, actual_usd: float | None, reported: Any = None) -> CostCount:
    """What a finished job counts against a budget, and why: the larger of the estimate and a sane server figure.

    The server's figure is sane only when it is a number between 0 and ten times the estimate: a
    negative one would refill the budget, an absurd one empty it; then the estimate counts. A sane
    figure below the estimate still counts the estimate (a budget guards against spending, so it never
    counts less than was expected), except for a status that is not billed (failed, cancelled, refused:
    ``Status.billed``), which counts what it reports, and nothing when it reports nothing.
    """
    problem = cost_problem(estimate_usd, actual_usd, reported)
    if problem is None:
        assert actual_usd is not None
        if actual_usd >= estimate_usd or not status.billed:
            return CostCount(actual_usd, "actual")
        return CostCount(estimate_usd, f"estimate (larger than the reported ${actual_usd:.3f})")
    if problem == "no cost reported" and not status.billed:
        return CostCount(0.0, f"none ({status.info.reason})")
    return CostCount(max(estimate_usd, 0.0), f"estimate ({problem})" if problem != "no cost reported" else "estimate")
