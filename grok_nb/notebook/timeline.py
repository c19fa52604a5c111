"""A timeline of jobs from their recorded HTTP exchanges: submits, polls, done, downloads (pure, no I/O).

Every job's exchanges (``store.exchanges(run_id)`` or ``run.exchanges``: at, method, path, status,
elapsed_ms, summary) become bars on one time axis, in seconds since the first request. An exchange
is recorded when its answer arrives, so a request ran from ``at - elapsed_ms`` to ``at``. The API
requests of all jobs (submits and polls, not downloads) draw on one shared rate limit; the timeline
keeps them in one list so a view can show each request slot of the whole client.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..jobs.status import status_of

#: Kinds of request, in the order a job makes them.
KINDS = ("submit", "poll", "done", "download")


@dataclass(frozen=True)
class Request:
    """One HTTP exchange on the timeline (times in seconds since the timeline's origin)."""

    lane: int
    kind: str  # submit, poll, done (the poll that saw the job finish), download
    start: float
    end: float
    status: int | None
    summary: str = ""

    @property
    def refused(self) -> bool:
        """True when the answer was an HTTP error or never came."""
        return self.status is None or self.status >= 400

    @property
    def limited(self) -> bool:
        """True for API requests (submits and polls), which share the client's rate limit; downloads do not."""
        return self.kind != "download"


@dataclass(frozen=True)
class Lane:
    """One job's row: its label, its outcome and its requests in order."""

    label: str
    status: str
    requests: tuple[Request, ...]


@dataclass(frozen=True)
class Timeline:
    """Jobs on one time axis, and the shared limiter's spacing (``interval`` = 1/rate seconds) when known."""

    origin: datetime | None
    lanes: tuple[Lane, ...]
    interval: float | None = None

    @property
    def requests(self) -> list[Request]:
        """Every request of every job, by start time."""
        return sorted((r for lane in self.lanes for r in lane.requests), key=lambda r: (r.start, r.lane))

    @property
    def api_requests(self) -> list[Request]:
        """The requests that drew on the shared rate limit (submits and polls), by start time."""
        return [r for r in self.requests if r.limited]

    @property
    def end(self) -> float:
        """Seconds from the first request's start to the last one's end."""
        return max((r.end for r in self.requests), default=0.0)

    def min_gap(self) -> float | None:
        """The smallest time between two consecutive API requests' starts (None with fewer than two)."""
        starts = [r.start for r in self.api_requests]
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        return min(gaps) if gaps else None

    def peak_rate(self, window: float = 1.0) -> float:
        """The most API requests started within any ``window`` seconds, per second."""
        starts = [r.start for r in self.api_requests]
        best, j = 0, 0
        for i, s in enumerate(starts):
            while starts[j] < s - window + 1e-9:
                j += 1
            best = max(best, i - j + 1)
        return best / window

    def pace(self) -> float | None:
        """API requests per second between the first and the last one (None with fewer than two)."""
        starts = [r.start for r in self.api_requests]
        if len(starts) < 2 or starts[-1] <= starts[0]:
            return None
        return (len(starts) - 1) / (starts[-1] - starts[0])

    def summary(self) -> str:
        """One line: jobs, API requests, their pace against the limit, refusals."""
        api = self.api_requests
        refused = sum(r.refused for r in api)
        text = f"{len(self.lanes)} jobs, {len(api)} API requests in {self.end:.1f} s"
        pace = self.pace()
        if pace is not None:
            text += f" ({pace:.1f}/s" + (f", limit {1 / self.interval:.1f}/s)" if self.interval else ")")
        if refused:
            text += f", {refused} refused (HTTP 429 or errors)"
        return text


def classify(exchange: dict[str, Any]) -> str:
    """submit (POST), poll (GET of a job), done (the poll whose answer said a final status), or download (GET of
    the MP4)."""
    method = str(exchange.get("method", "")).upper()
    path = str(exchange.get("path", ""))
    if method == "POST":
        return "submit"
    if "/videos/" in path and not path.endswith(".mp4") and "/media/" not in path:
        said = exchange.get("job_status")  # the job's status as the poll's answer said it
        return "done" if said and status_of(said).final else "poll"
    return "download"


def _parse(at: Any) -> datetime:
    return at if isinstance(at, datetime) else datetime.fromisoformat(str(at))


def build_timeline(jobs: Iterable[tuple[str, Sequence[dict[str, Any]], str]], *, interval: float | None = None,
                   origin: datetime | None = None) -> Timeline:
    """A Timeline from (label, exchanges, status) per job; the origin is the first request's start."""
    parsed = []
    for label, exchanges, status in jobs:
        spans = []
        for e in exchanges:
            end = _parse(e["at"])
            start = end - timedelta(milliseconds=float(e.get("elapsed_ms") or 0.0))
            spans.append((classify(e), start, end, e.get("status"), str(e.get("summary") or "")))
        parsed.append((label, status, spans))
    if origin is None:
        starts = [s[1] for _, _, spans in parsed for s in spans]
        origin = min(starts) if starts else None
    lanes = []
    for i, (label, status, spans) in enumerate(parsed):
        zero = origin if origin is not None else datetime.min  # no origin: no request in any lane
        reqs = tuple(Request(i, kind, (start - zero).total_seconds(), (end - zero).total_seconds(), code, text)
                     for kind, start, end, code, text in spans)
        lanes.append(Lane(label, str(status), reqs))
    return Timeline(origin, tuple(lanes), interval)
