"""When to poll a job next: its end estimated from noisy progress and from what finished jobs taught (pure).

The service's ``progress`` is read as a measurement, not a fact: a job's readings follow
``100·t/P + b + e`` (``P`` the time its progress would take to reach 100 %, ``b`` a bias that
stays with the job, ``e`` a jitter from answer to answer, rounded down, held at 99 %), and the job
ends at ``τ·P`` (``τ`` ≥ 1 when the service holds at 99 % for a last stretch). :func:`estimate_end`
weighs every end the readings allow (rate and offset together, the bias integrated out), so its
spread narrows as readings come in. :class:`PriorBook` learns, per (model, kind), how the service's
progress runs (``τ``, the bias's mean and spread, the jitter: :class:`Pace`) and how long jobs take
(per bucket, and how much faster or slower than documented), from finished jobs and from the rows of
the history a caller hands it. :func:`plan_next_poll` puts the next poll where the estimate says the
job is most likely done, counting the lag (a share of the job's latency) and the cost of each poll.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from ..api.latency import LatencyPrior, documented_prior
from .policy import PollPolicy

Array = npt.NDArray[np.float64]

#: (model, kind, resolution, duration rounded to 0.1 s): the bucket a job's latency is learned in.
PriorKey = tuple[str, str, str, float | None]
#: (model, kind): what the service's pace and progress are learned per.
Family = tuple[str, str]


@dataclass(frozen=True)
class Observation:
    """One poll answer: seconds since the job was accepted, the progress it reported (None if absent), and
    how far the server's moment may lie from ``t`` (half the round trip: a slow answer dates itself loosely)."""

    t: float
    progress: int | None
    spread: float = 0.0


@dataclass(frozen=True)
class Pace:
    """How a (model, kind)'s progress relates to the truth (in points of progress, and its end's multiple)."""

    tail: float = 1.0  # τ: the end as a multiple of the moment unbiased progress reaches 100 %
    tail_sd: float = 0.015  # how much τ varies from job to job (log scale)
    bias: float = 0.0  # mean points a job's progress runs ahead (+) of its true share
    bias_sd: float = 1.0  # spread of that bias from job to job, in points
    jitter: float = 0.6  # spread from answer to answer, in points (rounding included)
    progress: float = 1.0  # share of pending answers that carried a progress
    jobs: int = 0  # finished jobs it was learned from


#: What a service nothing was learned about is assumed to do (the docs: progress can be a few points off).
COLD = Pace()


# -- the estimate -------------------------------------------------------------------------------------
#: Gauss–Hermite nodes and weights (probabilists'): τ is integrated over five values.
_GH_X = np.array([-2.8569700138728056, -1.3556261799742659, 0.0, 1.3556261799742659, 2.8569700138728056])
_GH_W = np.array([0.011257411327720691, 0.22207592200561266, 0.5333333333333333, 0.22207592200561266,
                  0.011257411327720691])
#: A service much faster or slower than documented stays possible: the prior keeps this range (× typical).
BROAD = (0.12, 5.0)
#: How much of the documented prior's weight goes to that broad range: for the first job of a (model, kind) nothing
#: is known of (it explores: its first reading comes early), and for the others, which plan by what it reads.
DOCUMENTED_BROAD = 0.35
EXPLORED_BROAD = 0.1
#: A (model, kind)'s jobs, while one of them explores for the others.
EXPLORED = "documented, explored"
#: A job unlike the finished ones it is compared with: a log-normal this wide around them (log scale).
SURPRISE = 0.7
#: And, whatever was learned, this much weight on the broad range (no latency is ever ruled out).
FLOOR = 0.002
_erfc = np.frompyfunc(math.erfc, 1, 1)


def _log_ndtr(z: Array) -> Array:
    """log Φ(z), elementwise, without underflow where it matters (a library's erfc, clamped far out)."""
    z = np.clip(z, -37.0, 37.0)
    return np.log(np.maximum(0.5 * np.asarray(_erfc(-z / math.sqrt(2.0)), dtype=np.float64), 1e-300))


@dataclass(frozen=True)
class _Readings:
    t: Array  # uncensored readings (1..98 %)
    y: Array
    sp: Array
    hi_t: Array  # readings of 99 %: at least that far
    hi_sp: Array
    lo_t: Array  # readings of 0 %: not yet 1 %
    lo_sp: Array

    @classmethod
    def of(cls, observations: Sequence[Observation]) -> _Readings:
        def pick(test: Any) -> tuple[Array, Array, Array]:
            rows = [(o.t, float(o.progress), o.spread) for o in observations
                    if o.progress is not None and o.t > 0 and test(o.progress)]
            a = np.array(rows, dtype=np.float64).reshape(-1, 3)
            return a[:, 0], a[:, 1], a[:, 2]

        t, y, sp = pick(lambda p: 1 <= p <= 98)
        hi_t, _, hi_sp = pick(lambda p: p >= 99)
        lo_t, _, lo_sp = pick(lambda p: p <= 0)
        return cls(t, y, sp, hi_t, hi_sp, lo_t, lo_sp)

    @property
    def any(self) -> bool:
        return bool(self.t.size or self.hi_t.size or self.lo_t.size)


def _loglik(u: Array, rd: _Readings, pace: Pace) -> tuple[Array, Array, Array]:
    """Log-likelihood of the readings for each rate ``u`` (points per second), the bias integrated out;
    also the bias's mean and variance given the uncensored readings, for each ``u``."""
    s_b2 = pace.bias_sd ** 2
    j2 = pace.jitter ** 2
    ll = np.zeros_like(u)
    b_mean = np.full_like(u, pace.bias)
    b_var = np.full_like(u, s_b2)
    if rd.t.size:
        v = j2 + (u[:, None] * rd.sp[None, :]) ** 2 / 3.0
        r = rd.y[None, :] + 0.5 - u[:, None] * rd.t[None, :] - pace.bias
        a, b, q = (1.0 / v).sum(1), (r / v).sum(1), (r * r / v).sum(1)
        den = 1.0 + s_b2 * a
        ll = -0.5 * (q - s_b2 * b * b / den) - 0.5 * (np.log(v).sum(1) + np.log(den))
        b_mean = pace.bias + s_b2 * b / den
        b_var = s_b2 / den
    for t, sp, sign, edge in ((rd.hi_t, rd.hi_sp, 1.0, 99.0), (rd.lo_t, rd.lo_sp, -1.0, 1.0)):
        if t.size:
            v = j2 + (u[:, None] * sp[None, :]) ** 2 / 3.0
            z = sign * (u[:, None] * t[None, :] + b_mean[:, None] - edge) / np.sqrt(b_var[:, None] + v)
            ll = ll + _log_ndtr(z).sum(1)
    return ll, b_mean, b_var


def _prior_width(prior: LatencyPrior) -> float:
    """The prior's spread on the log scale (its low and high taken as the 5th and 95th percentiles)."""
    return max(0.03, math.log(max(prior.high, prior.low * 1.0001) / prior.low) / 3.29)


#: The narrowest a kernel of one latency is, by what it rests on (log scale): the bucket's own finished jobs, the
#: (model, kind)'s, or the estimates of jobs still running (each of which may yet be wrong by as much).
BANDWIDTH = {"history": 0.04, "learned": 0.12, "running": 0.25}
#: A running job's estimate speaks for the others only once it is known this closely (half its 16–84 % range).
RUNNING_SPREAD = 0.25


def _bandwidth(prior: LatencyPrior) -> float:
    """How far one finished job's latency speaks for others (log scale): wider for another bucket's jobs."""
    logs = np.log(np.asarray(prior.samples))
    rule = 1.06 * float(np.std(logs)) * logs.size ** -0.2 if logs.size > 1 else 0.3
    return max(rule, BANDWIDTH.get(prior.source, 0.12))


@lru_cache(maxsize=512)
def _density(prior: LatencyPrior) -> tuple[Array, Array]:
    """The prior's core as a table of log density over log latency: a kernel density of its samples."""
    logs = np.log(np.asarray(prior.samples))
    h = _bandwidth(prior)
    counts, edges = np.histogram(logs, bins=min(64, max(1, logs.size)))
    centres = (edges[:-1] + edges[1:]) / 2
    x = np.linspace(float(logs.min()) - 6 * h, float(logs.max()) + 6 * h, 600)
    pdf = (counts[None, :] * np.exp(-0.5 * ((x[:, None] - centres[None, :]) / h) ** 2)).sum(1)
    pdf /= logs.size * h * math.sqrt(2 * math.pi)
    return x, np.log(np.maximum(pdf, 1e-300))


def _log_prior(latency: Array, prior: LatencyPrior) -> Array:
    """The latency prior's log density (per unit of log latency).

    Documented: a log-normal, a third of its weight spread evenly (log scale) over 0.12× to 5× (the
    service may run far faster or slower than documented). From finished jobs: the kernel density of
    their latencies, and a wide log-normal around them for a job unlike them (weight 1/(n+2)).
    """
    x = np.log(latency / prior.typical)
    lo, hi = math.log(BROAD[0]), math.log(BROAD[1])
    outside = np.maximum(0.0, np.maximum(lo - x, x - hi))
    broad = -math.log(hi - lo) - 0.5 * (outside / 0.5) ** 2
    if not prior.samples:
        sigma = _prior_width(prior)
        core = -0.5 * (x / sigma) ** 2 - math.log(sigma) - 0.9189385332046727
        weight = EXPLORED_BROAD if prior.source == EXPLORED else DOCUMENTED_BROAD
        return np.logaddexp(math.log(1 - weight) + core, math.log(weight) + broad)
    grid, table = _density(prior)
    core = np.interp(np.log(latency), grid, table, left=-700.0, right=-700.0)
    unlike = min(max(1.0 / (len(prior.samples) + 2), 0.01), 0.15)
    wide = -0.5 * (x / SURPRISE) ** 2 - math.log(SURPRISE) - 0.9189385332046727
    out = np.logaddexp(math.log(1 - unlike - FLOOR) + core, math.log(unlike) + wide)
    return np.logaddexp(out, math.log(FLOOR) + broad)


#: A job held at 99 % longer than the service's usual: these multiples of its usual τ (the broad part of τ).
HELD_LONGER = np.exp(np.linspace(math.log(1.03), math.log(1.6), 12))
#: How much of τ's weight that broad part has before anything is learned; it fades as finished jobs agree.
HELD_WEIGHT = 0.15


def _tail_nodes(pace: Pace) -> tuple[Array, Array]:
    """The values of τ a job's end is integrated over, and their log weights: the service's usual τ (a
    Gauss–Hermite rule over its spread) and, fading with the jobs learned from, a job held longer."""
    held = HELD_WEIGHT * 2.0 / (2.0 + pace.jobs)
    nodes = np.concatenate((pace.tail * np.exp(pace.tail_sd * _GH_X), pace.tail * HELD_LONGER))
    weights = np.concatenate(((1 - held) * _GH_W, np.full(HELD_LONGER.size, held / HELD_LONGER.size)))
    return nodes, np.log(weights)


@dataclass(frozen=True)
class EndEstimate:
    """When the job ends (seconds since accepted): weighted points, sorted, given its readings so far."""

    ends: Array
    weights: Array  # sum to 1
    rate: float  # the most likely pace of its progress (points per second, unbiased)
    bias: float  # its bias, as the readings and what was learned put it
    info: Array  # what the uncensored readings tell about (rate, bias): a 2×2 information matrix
    readings: int  # uncensored readings used

    def quantile(self, q: float) -> float:
        """The end by which the job is done with probability ``q``."""
        cdf = np.cumsum(self.weights)
        return float(self.ends[min(int(np.searchsorted(cdf, q)), self.ends.size - 1)])

    @property
    def median(self) -> float:
        """The middle of the estimate."""
        return self.quantile(0.5)

    def spread(self) -> float:
        """Half the 16–84 % range, as a share of the median: how closely the end is known."""
        return (self.quantile(0.8413) - self.quantile(0.1587)) / 2.0 / self.median

    def done_by(self, t: float) -> float:
        """The probability that the job is done by ``t``."""
        return float(self.weights[self.ends <= t].sum())


def estimate_end(observations: Sequence[Observation], prior: LatencyPrior, pace: Pace = COLD) -> EndEstimate:
    """The job's end from all its readings (rate and offset together), the learned pace and the latency prior.

    Pending answers bound the end from below; readings of 99 % say only that the job got that far.
    """
    rd = _Readings.of(observations)
    pending = max((o.t - o.spread for o in observations), default=0.0)
    nodes, log_wt = _tail_nodes(pace)  # τ values, and their weights
    lo, hi = prior.typical * BROAD[0] * 0.3, prior.typical * BROAD[1] * 3.0
    if pending > 0:
        lo, hi = max(lo, pending * 0.999), max(hi, pending * 4.0)
    if rd.t.size:  # readings can put the pace anywhere: make room for what they say
        implied = 100.0 * rd.t / np.maximum(rd.y + 0.5 - pace.bias + 4 * (pace.bias_sd + pace.jitter), 1.0)
        lo = min(lo, float(implied.min()) * nodes[0])
    paces = (lo / nodes.max(), hi / nodes.min())

    def posterior(p_lo: float, p_hi: float, n: int) -> tuple[Array, Array, Array, Array]:
        p = np.exp(np.linspace(math.log(p_lo), math.log(p_hi), n))
        u = 100.0 / p
        ll, b_mean, _ = _loglik(u, rd, pace) if rd.any else (np.zeros(n), np.full(n, pace.bias), None)
        ends = p[:, None] * nodes[None, :]
        # The latency prior speaks of the pace (at the usual τ); how long a job holds at 99 % is τ's own.
        logw = ll[:, None] + log_wt[None, :] + _log_prior(p * pace.tail, prior)[:, None]
        logw = np.where(ends > pending, logw, -np.inf)
        top = logw.max()
        w = np.exp(logw - top) if np.isfinite(top) else np.ones_like(logw)
        return p, ends, w / w.sum(), b_mean

    p, ends, w, _ = posterior(*paces, 240)
    marginal = np.cumsum(w.sum(1))
    i = max(0, int(np.searchsorted(marginal, 1e-7)) - 2)
    j = min(p.size - 1, int(np.searchsorted(marginal, 1 - 1e-7)) + 2)
    p_lo, p_hi = float(p[i]), float(p[j])
    if p_hi / p_lo < 1.01:
        mid = math.sqrt(p_lo * p_hi)
        p_lo, p_hi = mid / 1.005, mid * 1.005
    p, ends, w, b_mean = posterior(p_lo, p_hi, 160)
    flat, order = ends.ravel(), np.argsort(ends.ravel(), kind="stable")
    best = int(np.argmax(w.sum(1)))
    rate = 100.0 / float(p[best])
    info = np.zeros((2, 2))
    if rd.t.size:
        v = pace.jitter ** 2 + (rate * rd.sp) ** 2 / 3.0
        info = np.array([[np.sum(rd.t ** 2 / v), np.sum(rd.t / v)], [np.sum(rd.t / v), np.sum(1.0 / v)]])
    return EndEstimate(flat[order], w.ravel()[order], rate, float(b_mean[best]), info, int(rd.t.size))


# -- where to poll ------------------------------------------------------------------------------------
#: Equal-probability slices the search for the end is planned over.
SLICES = 40
#: Two polls of one job are at least this share of the time waited apart: no hot loop at any progress.
MIN_STEP = 0.01
#: A narrowing reading is planned only where it is expected below this progress (99 % says nothing of the pace).
READABLE = 96.0
#: Where a narrowing reading may go: these shares of the estimate done by then.
NARROW_AT = (0.01, 0.03, 0.07, 0.15, 0.3, 0.5)


def _search(ends: Array, weights: Array, earliest: float, cost: float) -> tuple[float, float]:
    """The cheapest way to find the end by polls alone (no further reading narrows it): (expected cost, first
    poll). The cost counts each poll as ``cost`` and each finished job's lag as a share of its latency."""
    cw = np.cumsum(weights)
    total = float(cw[-1])
    idx = np.unique(np.minimum(np.searchsorted(cw, total * np.arange(1, SLICES + 1) / SLICES - 1e-12),
                               ends.size - 1))
    edge = np.maximum(ends[idx], earliest)
    s0 = np.concatenate(([0.0], cw[idx]))
    s1 = np.concatenate(([0.0], np.cumsum(weights / ends)[idx]))
    m = idx.size
    value = np.zeros(m + 1)
    choice = np.zeros(m + 1, dtype=np.int64)
    for i in range(m - 1, -1, -1):
        k = np.arange(i + 1, m + 1)
        c = cost * (total - s0[i]) + edge[k - 1] * (s1[k] - s1[i]) - (s0[k] - s0[i]) + value[k]
        best = int(np.argmin(c))
        value[i], choice[i] = c[best], k[best]
    return float(value[0]) / total, float(edge[choice[0] - 1])


@lru_cache(maxsize=4096)
def _search_cost(spread: float, cost: float) -> float:
    """The expected cost of :func:`_search` for an end known within ``spread`` (log scale)."""
    z = np.linspace(-6.0, 6.0, 600)
    w = np.exp(-0.5 * z * z)
    return _search(np.exp(spread * z), w / w.sum(), 0.0, cost)[0]


def _spread_cost(spread: float, cost: float) -> float:
    # Looked up on a grid of spreads (a few hundred distinct values ever), interpolated on the log scale.
    x = math.log(min(max(spread, 1e-4), 3.0)) * 8.0
    lo = math.floor(x)
    a, b = _search_cost(math.exp(lo / 8.0), cost), _search_cost(math.exp((lo + 1) / 8.0), cost)
    return a + (b - a) * (x - lo)


def _after_reading(estimate: EndEstimate, prior: LatencyPrior, pace: Pace, t: float) -> float:
    """How closely the end would be known (log scale) after one more reading at ``t``."""
    rate = estimate.rate
    prior_info = np.array([[1.0 / (rate * _prior_width(prior)) ** 2, 0.0], [0.0, 1.0 / max(pace.bias_sd, 0.05) ** 2]])
    v = pace.jitter ** 2
    info = estimate.info + prior_info + np.array([[t * t, t], [t, 1.0]]) / v
    var_rate = float(np.linalg.inv(info)[0, 0])
    return math.sqrt(var_rate / rate ** 2 + pace.tail_sd ** 2)


def plan_poll(estimate: EndEstimate, prior: LatencyPrior, pace: Pace, policy: PollPolicy, now: float,
              progress: bool = True, delay: float = 0.0) -> float:
    """When to send the next poll (seconds since accepted), from the estimate of the end.

    Either one more reading before the end, where it narrows the estimate most for its cost, or
    the first poll of the cheapest search for the end as it is known now, whichever costs less
    (each poll counting as ``policy.poll_cost`` of lag). ``progress`` False: answers carry none.
    ``delay``: from sending a poll to the server's moment it answers for (a slot's wait, half a round trip).
    """
    earliest = max(now + policy.interval, now * (1.0 + MIN_STEP)) + delay
    cost = policy.poll_cost
    best_cost, at = _search(estimate.ends, estimate.weights, earliest, cost)
    if progress and pace.progress >= 0.5:
        for q in NARROW_AT:
            t = max(estimate.quantile(q), earliest)
            if estimate.rate * t + estimate.bias > READABLE - 2.0 * pace.jitter:
                break  # it would read 99 %: no pace in it
            early = estimate.ends <= t
            lag = float(np.sum(estimate.weights[early] * (t / estimate.ends[early] - 1.0)))
            left = 1.0 - float(estimate.weights[early].sum())
            total = cost + lag + left * _spread_cost(_after_reading(estimate, prior, pace, t), cost)
            if total < best_cost:
                best_cost, at = total, t
    return min(max(at, earliest), now + policy.max_interval) - delay


def plan_next_poll(observations: Sequence[Observation], prior: LatencyPrior, policy: PollPolicy, now: float,
                   pace: Pace = COLD, delay: float = 0.0) -> float:
    """When (seconds since accepted) to poll a pending job next; ``now`` is the same clock."""
    estimate = estimate_end(observations, prior, pace)
    readable = not observations or any(o.progress is not None for o in observations)
    return plan_poll(estimate, prior, pace, policy, now, progress=readable, delay=delay)


# -- what finished jobs teach ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Trace:
    """A finished job's readings and the bounds of its end (its last pending answer, its done answer)."""

    readings: _Readings
    low: float
    high: float


#: Pseudo-jobs of the cold pace that every learned figure is shrunk towards (a few jobs outweigh them).
PRIOR_JOBS = 0.3
#: ...and the pseudo-jobs a shared bias is shrunk towards none with.
BIAS_JOBS = 4.0
#: Rounds of expectation–maximization per new finished job.
EM_ROUNDS = 12


def _normal(z: Array) -> tuple[Array, Array]:
    """φ(z) and Φ(z), elementwise."""
    return np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi), np.exp(_log_ndtr(z))


def _fit_pace(traces: Sequence[_Trace], start: Pace, progress: float) -> Pace:
    """The pace that best explains finished jobs' readings and ends (expectation–maximization, shrunk to COLD).

    For each job, its progress pace ``P`` is weighed on a grid by its readings and by the chance that
    its own ``τ`` (spread around the service's) puts its end between its last pending and its done answer.
    """
    traces = [tr for tr in traces if tr.readings.any]
    pace = replace(start, progress=progress, jobs=len(traces))
    if not traces:
        return pace
    k0 = PRIOR_JOBS
    for _ in range(EM_ROUNDS):
        log_tail, sd = math.log(pace.tail), pace.tail_sd
        sum_b = sum_b2 = sum_lt = sum_lt2 = sum_e2 = 0.0
        n_e = 0
        for tr in traces:
            logp = np.linspace(math.log(tr.low) - log_tail - 4 * sd, math.log(tr.high) - log_tail + 4 * sd, 64)
            u = 100.0 * np.exp(-logp)
            ll, b_mean, b_var = _loglik(u, tr.readings, pace)
            a = (math.log(tr.low) - logp - log_tail) / sd  # where this job's τ must lie for its end to fall there
            b = (math.log(tr.high) - logp - log_tail) / sd
            (pa, ca), (pb, cb) = _normal(a), _normal(b)
            mass = np.maximum(cb - ca, 1e-300)
            logw = ll + np.log(mass)
            w = np.exp(logw - logw.max())
            w /= w.sum()
            shift = (pa - pb) / mass  # E[(log τ_j − log τ)/sd] within the window, and its second moment
            second = 1.0 + (a * pa - b * pb) / mass
            sum_b += float(w @ b_mean)
            sum_b2 += float(w @ (b_var + b_mean ** 2))
            sum_lt += float(w @ (log_tail + sd * shift))
            sum_lt2 += float(w @ (log_tail ** 2 + 2 * log_tail * sd * shift + sd * sd * second))
            if tr.readings.t.size:
                e = tr.readings.y[None, :] + 0.5 - u[:, None] * tr.readings.t[None, :] - b_mean[:, None]
                sum_e2 += float(w @ ((e * e).sum(1) + b_var * tr.readings.t.size))
                n_e += tr.readings.t.size
        jobs = len(traces)
        # A bias the service shares by all its jobs needs more evidence than a hold (where readings are alike,
        # the two explain them equally well): its mean is shrunk harder.
        bias = (sum_b + BIAS_JOBS * COLD.bias) / (jobs + BIAS_JOBS)
        bias_var = (sum_b2 - 2 * bias * sum_b + jobs * bias ** 2 + k0 * COLD.bias_sd ** 2) / (jobs + k0)
        mean_lt = (sum_lt + k0 * math.log(COLD.tail)) / (jobs + k0)
        lt_var = (sum_lt2 - 2 * mean_lt * sum_lt + jobs * mean_lt ** 2 + k0 * COLD.tail_sd ** 2) / (jobs + k0)
        jitter_var = (sum_e2 + 2 * k0 * COLD.jitter ** 2) / (n_e + 2 * k0)
        pace = Pace(tail=math.exp(mean_lt), tail_sd=math.sqrt(max(lt_var, 0.004 ** 2)), bias=bias,
                    bias_sd=math.sqrt(max(bias_var, 0.3 ** 2)), jitter=math.sqrt(max(jitter_var, 0.3 ** 2)),
                    progress=progress, jobs=jobs)
    return pace


class PriorBook:
    """What this client knows of the service's pace: latencies per bucket, and per (model, kind) how much faster
    or slower than documented it runs and how its progress relates to the truth (a :class:`Pace`).

    Jobs still running teach too: their estimated ends say how fast the service runs before any has
    finished (a grid's first readings set the pace of the jobs submitted after them).
    """

    MIN_SAMPLES = 3

    def __init__(self, speed: float = 1.0, keep: int = 300, traces: int = 30):
        self.speed = speed
        self._seen: dict[PriorKey, deque[float]] = defaultdict(lambda: deque(maxlen=keep))
        self._ratios: dict[Family, deque[float]] = defaultdict(lambda: deque(maxlen=keep))
        self._running: dict[Family, dict[str, float]] = defaultdict(dict)
        self._explorer: dict[Family, str] = {}  # the job whose first reading comes early, for the others
        self._traces: dict[Family, deque[_Trace]] = defaultdict(lambda: deque(maxlen=traces))
        self._answers: dict[Family, deque[bool]] = defaultdict(lambda: deque(maxlen=200))
        self._paces: dict[Family, Pace] = {}
        self._versions: dict[Family, int] = defaultdict(int)

    @staticmethod
    def key(model: str | None, kind: str, resolution: str | None, duration: float | None) -> PriorKey:
        """The bucket a job's latency is learned in."""
        return (model or "", kind, resolution or "", round(float(duration), 1) if duration else None)

    def documented(self, key: PriorKey) -> LatencyPrior:
        """The documented latency of a bucket, on this client's clock."""
        model, kind, resolution, duration = key
        return documented_prior(kind, duration, resolution, self.speed, model=model or None)

    # -- learning --------------------------------------------------------------------------------------
    def learn(self, key: PriorKey, latency_s: float | None) -> None:
        """Remember one finished job's latency (seconds on this client's clock)."""
        if latency_s is None or not latency_s > 0 or not math.isfinite(latency_s):
            return
        family = key[:2]
        before = self._scale(family)
        self._seen[key].append(float(latency_s))
        self._ratios[family].append(float(latency_s) / self.documented(key).typical)
        if len(self._ratios[family]) <= 3 or len(self._seen[key]) == self.MIN_SAMPLES:
            self._versions[family] += 1  # the first finished jobs, or a bucket's own: what priors rest on changed
        else:
            self._moved(family, before)

    def learn_rows(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Take finished runs of the history (``model``, ``kind``, ``resolution``, ``duration``, ``latency_s``),
        oldest first; returns how many were taken."""
        typical: dict[PriorKey, float] = {}
        families: set[Family] = set()
        taken = 0
        for row in rows:
            latency = row.get("latency_s")
            if not (isinstance(latency, (int, float)) and latency > 0 and math.isfinite(latency) and row.get("kind")):
                continue
            key = self.key(row.get("model"), str(row["kind"]), row.get("resolution"), row.get("duration"))
            if key not in typical:
                typical[key] = self.documented(key).typical
            self._seen[key].append(float(latency))
            self._ratios[key[:2]].append(float(latency) / typical[key])
            families.add(key[:2])
            taken += 1
        for family in families:
            self._versions[family] += 1
        return taken

    def learn_pace(self, key: PriorKey, observations: Sequence[Observation]) -> None:
        """Remember how a finished job's progress ran: its pending answers, then its done answer (last)."""
        family = key[:2]
        pending = observations[:-1]
        self._answers[family].extend(o.progress is not None for o in pending)
        if not pending:
            return
        done = observations[-1]
        low = max(o.t - o.spread for o in pending)
        high = done.t + done.spread
        if not 0 < low < high:
            return
        self._traces[family].append(_Trace(_Readings.of(pending), low, high))
        old = self._paces.get(family, COLD)
        answers = self._answers[family]
        new = _fit_pace(self._traces[family], old, sum(answers) / len(answers))
        self._paces[family] = new
        if (abs(math.log(new.tail / old.tail)) > 0.01 or abs(new.bias - old.bias) > 1.0
                or abs(math.log(new.bias_sd / old.bias_sd)) > 0.2 or abs(math.log(new.jitter / old.jitter)) > 0.2):
            self._versions[family] += 1

    def forget(self, job: str) -> None:
        """A job stopped running (finished or given up): its estimate no longer speaks for the others."""
        for running in self._running.values():
            running.pop(job, None)
        for family in [f for f, j in self._explorer.items() if j == job]:
            del self._explorer[family]

    def _moved(self, family: Family, before: float | None) -> None:
        """Say so when how fast the (model, kind) runs moved by more than a tenth (or became known)."""
        after = self._scale(family)
        if after is not None and (before is None or abs(math.log(after / before)) > 0.1):
            self._versions[family] += 1

    # -- what it knows ---------------------------------------------------------------------------------
    def version(self, key: PriorKey) -> int:
        """Changes when what was learned for this key's (model, kind) moved enough to plan its polls again."""
        return self._versions[key[:2]]

    def pace(self, key: PriorKey) -> Pace:
        """How this (model, kind)'s progress runs: learned from finished jobs, else the cold assumption."""
        return self._paces.get(key[:2], COLD)

    def _scale(self, family: Family, without: str | None = None) -> float | None:
        ratios = list(self._ratios.get(family, ()))
        if not ratios:
            ratios = [r for job, r in self._running.get(family, {}).items() if job != without]
        return float(np.exp(np.median(np.log(ratios)))) if ratios else None

    def prior(self, key: PriorKey, job: str | None = None) -> LatencyPrior:
        """The latency to expect: this bucket's finished jobs when there are enough, else the documented latency
        scaled by how fast the (model, kind) runs (its finished jobs, else the estimates of those running,
        ``job``'s own left out), else the documented latency."""
        seen = self._seen.get(key)
        if seen and len(seen) >= self.MIN_SAMPLES:
            return _from_samples(tuple(seen), "history")
        family = key[:2]
        documented = self.documented(key)
        if self._ratios.get(family):
            return _from_samples(tuple(documented.typical * r for r in self._ratios[family]), "learned")
        running = [r for j, r in self._running.get(family, {}).items() if j != job]
        if running:
            return _from_samples(tuple(documented.typical * r for r in running), "running")
        explorer = self._explorer.get(family)
        if explorer is None or explorer == job or job is None:
            return documented
        return replace(documented, source=EXPLORED)

    def plan(self, job: str, key: PriorKey, observations: Sequence[Observation], policy: PollPolicy,
             now: float, delay: float = 0.0) -> float:
        """When (seconds since accepted) to poll the running ``job`` next; its estimate teaches the others."""
        family = key[:2]
        if not self._ratios.get(family) and not self._running.get(family):
            self._explorer.setdefault(family, job)  # nothing known: this job explores, the others wait for it
        prior = self.prior(key, job)
        estimate = estimate_end(observations, prior, self.pace(key))
        if estimate.readings and not self._ratios.get(family) and estimate.spread() < RUNNING_SPREAD:
            before = self._scale(family)
            self._running[family][job] = estimate.median / self.documented(key).typical
            self._moved(family, before)
        readable = not observations or any(o.progress is not None for o in observations)
        return plan_poll(estimate, prior, self.pace(key), policy, now, progress=readable, delay=delay)


def _from_samples(samples: tuple[float, ...], source: str) -> LatencyPrior:
    logs = np.log(np.asarray(samples))
    return LatencyPrior(float(np.exp(np.percentile(logs, 5))), float(np.exp(np.median(logs))),
                        float(np.exp(np.percentile(logs, 95))), source, samples)
