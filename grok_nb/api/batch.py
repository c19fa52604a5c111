"""The Batch API's contract, pure: request items, how a batch is split into calls, and lenient parsing.

A batch holds generations, edits and extensions outside the key's rate limit, best effort
("typically within 24 hours"), billed at standard prices (no discount for video). There is no
status field: a batch is done when ``num_pending == 0``. Results can be read, page by page and in
no fixed order, before the batch ends; their URLs live one hour.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..errors import ValidationError
from .validation import check_text

BATCHES_PATH = "/v1/batches"
#: Result URLs of a batch live one hour (single jobs' live longer): download at once.
RESULT_URL_LIFETIME_S = 3_600.0
#: Requests per "add requests" call. xAI publishes no per-call figure; this keeps each call well
#: under the ~25 MB a single request may carry (assumed, like MAX_CALL_BYTES).
MAX_REQUESTS_PER_CALL = 100
MAX_CALL_BYTES = 20 * 2**20
#: "Up to 1,000 such calls per 30 s per team."
ADD_CALLS_PER_WINDOW = 1_000
ADD_CALLS_WINDOW_S = 30.0
#: The body key of each kind inside ``batch_request``; results of an extension may come under either key.
BODY_KEYS = {"generate": "video_generation", "edit": "video_generation", "extend": "video_extension"}
RESULT_KEYS = ("video_generation", "video_extension")
#: gRPC status codes used in batch errors, as the names single jobs use.
GRPC_CODES = {1: "cancelled", 2: "unknown", 3: "invalid_argument", 4: "deadline_exceeded", 5: "not_found",
              7: "permission_denied", 8: "resource_exhausted", 9: "failed_precondition", 13: "internal_error",
              14: "service_unavailable"}
#: Where a batch's requests stand (``GET /v1/batches/{id}/requests``).
REQUEST_STATES = ("pending", "succeeded", "failed", "cancelled")
BEST_EFFORT_NOTE = ("A batch is best effort: results come back typically within 24 hours, outside the key's rate "
                    "limit, billed at standard prices (no batch discount for video).")
MAX_NAME_LENGTH = 256


def check_name(value: Any) -> str:
    """A batch name: non-empty text, at most 256 characters."""
    allowed = f"a non-empty name of at most {MAX_NAME_LENGTH} characters"
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME_LENGTH:
        raise ValidationError("name", value, allowed)
    check_text(value, "name", allowed)
    return value.strip()


def request_item(batch_request_id: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """One entry of ``batch_requests``: the body of the single-job endpoint, under its kind's key."""
    if kind not in BODY_KEYS:
        raise ValidationError("kind", kind, "generate, edit or extend")
    return {"batch_request_id": batch_request_id, "batch_request": {BODY_KEYS[kind]: body}}


def split_requests(items: Sequence[dict[str, Any]], *, max_count: int | None = None,
                   max_bytes: int | None = None) -> list[list[dict[str, Any]]]:
    """Items grouped into calls of at most ``max_count`` items and ``max_bytes`` of JSON each, in order."""
    max_count = MAX_REQUESTS_PER_CALL if max_count is None else max_count
    max_bytes = MAX_CALL_BYTES if max_bytes is None else max_bytes
    calls: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for item in items:
        item_size = len(json.dumps(item, separators=(",", ":")).encode()) + 1
        if item_size > max_bytes:
            raise ValidationError(f"batch request {item.get('batch_request_id')}", f"{item_size:,} bytes of JSON",
                                  f"at most {max_bytes:,} bytes per request: upload large inputs "
                                  "(client.upload) and pass {'file_id': ...}")
        if current and (len(current) >= max_count or size + item_size > max_bytes):
            calls.append(current)
            current, size = [], 0
        current.append(item)
        size += item_size
    if current:
        calls.append(current)
    return calls


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return max(0, int(value))
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return 0


@dataclass(frozen=True)
class BatchState:
    """A batch's counters and times, as ``GET /v1/batches/{id}`` tells them."""

    batch_id: str
    name: str | None = None
    num_requests: int = 0
    num_pending: int = 0
    num_success: int = 0
    num_error: int = 0
    num_cancelled: int = 0
    create_time: Any = None
    expire_time: Any = None
    cancel_time: Any = None
    cost_usd: float | None = None

    @property
    def finished(self) -> int:
        """Requests that ended, whatever the outcome."""
        return self.num_success + self.num_error + self.num_cancelled

    @property
    def done(self) -> bool:
        """Nothing pending (and something was added): no status field exists, this is what done means."""
        return self.num_requests > 0 and self.num_pending == 0

    @property
    def fraction(self) -> float:
        """Share of requests that ended, 0 to 1."""
        return self.finished / self.num_requests if self.num_requests else 0.0

    def ended_by(self) -> tuple[str, float] | None:
        """("cancelled" or "expired", when) once the batch was cancelled or its expiry is known, else None.

        The times are Unix seconds; whether they have passed is the caller's to judge (with a margin)."""
        cancelled = epoch_of(self.cancel_time)
        if cancelled is not None:
            return "cancelled", cancelled
        expires = epoch_of(self.expire_time)
        return ("expired", expires) if expires is not None else None


def epoch_of(value: Any) -> float | None:
    """Unix seconds from a time as services write it: ISO 8601 text, seconds or milliseconds since the epoch, or a
    protobuf Timestamp object (``{"seconds", "nanos"}``); None for anything else."""
    if isinstance(value, dict):
        seconds = value.get("seconds")
        if isinstance(seconds, str) and seconds.strip().lstrip("-").isdigit():
            seconds = int(seconds)
        nanos = value.get("nanos")
        if not isinstance(seconds, (int, float)):
            return None
        return epoch_of(seconds + (nanos / 1e9 if isinstance(nanos, (int, float)) else 0.0))
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value <= 0:
            return None
        return float(value) / 1000.0 if value > 1e11 else float(value)  # milliseconds past year 5138 are not seconds
    if isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            return epoch_of(float(text))
        except ValueError:
            pass
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
    return None


def parse_batch(body: Any) -> BatchState:
    """A Batch object (``state`` nested, or counters at the top level); ValueError without an id."""
    if not isinstance(body, dict):
        raise ValueError(f"the batch answer is not a JSON object: {str(body)[:200]!r}")
    batch_id = body.get("batch_id") or body.get("id")
    if not isinstance(batch_id, str) or not batch_id.strip():
        raise ValueError(f"the batch answer has no batch_id: {str(body)[:200]!r}")
    state = _obj(body.get("state")) or body
    costs = _obj(body.get("cost_breakdown"))
    ticks = costs.get("total_cost_usd_ticks")
    cost = ticks / 1e10 if isinstance(ticks, (int, float)) and not isinstance(ticks, bool) \
        and math.isfinite(ticks) and ticks >= 0 else None
    name = body.get("name")
    return BatchState(batch_id.strip(), name if isinstance(name, str) else None,
                      _count(state.get("num_requests")), _count(state.get("num_pending")),
                      _count(state.get("num_success")), _count(state.get("num_error")),
                      _count(state.get("num_cancelled")), body.get("create_time"), body.get("expire_time"),
                      body.get("cancel_time"), cost)


@dataclass(frozen=True)
class BatchResult:
    """One request's outcome from ``GET /v1/batches/{id}/results``."""

    batch_request_id: str
    ok: bool
    url: str | None = None
    duration: float | None = None
    moderated: bool = False
    model: str | None = None
    cost_usd: float | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def cancelled(self) -> bool:
        """Cancelled before it ran (code 1): nothing billed."""
        return self.error_code == "cancelled"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def parse_result(entry: Any) -> BatchResult | None:
    """One entry of ``results``; None when it names no request (nothing to match it to)."""
    if not isinstance(entry, dict):
        return None
    rid = entry.get("batch_request_id")
    if not isinstance(rid, str) or not rid:
        return None
    result = _obj(entry.get("batch_result")) or entry
    error = result.get("error")
    if isinstance(error, dict) or isinstance(error, str):
        err = error if isinstance(error, dict) else {"message": error}
        code = err.get("code")
        name = GRPC_CODES.get(code, f"code {code}") if isinstance(code, int) else (str(code) if code else "unknown")
        message = str(err.get("message") or err.get("error") or "")
        if "moderat" in message.lower() and name in ("invalid_argument", "unknown"):
            return BatchResult(rid, False, moderated=True, error_code="moderated", error_message=message)
        return BatchResult(rid, False, error_code=name, error_message=message)
    response = _obj(result.get("response")) or result
    inner: dict[str, Any] = {}
    for key in RESULT_KEYS:
        if isinstance(response.get(key), dict):
            inner = response[key]
            break
    else:
        if isinstance(response.get("video"), dict):
            inner = response
    video = _obj(inner.get("video"))
    usage = _obj(inner.get("usage"))
    ticks = _number(usage.get("cost_in_usd_ticks"))
    cost = ticks / 1e10 if ticks is not None and ticks >= 0 else None
    url = video.get("url") if isinstance(video.get("url"), str) and video.get("url") else None
    moderated = video.get("respect_moderation") is False
    model = inner.get("model") if isinstance(inner.get("model"), str) else None
    if not video:
        return BatchResult(rid, False, model=model, cost_usd=cost, error_code="no_video",
                           error_message="the result holds no video object")
    return BatchResult(rid, url is not None and not moderated, url, _number(video.get("duration")), moderated,
                       model, cost)


def parse_results(body: Any) -> tuple[list[BatchResult], str | None]:
    """A page of results and the token of the next page (None: no more for now)."""
    if not isinstance(body, dict):
        return [], None
    entries = body["results"] if isinstance(body.get("results"), list) else []
    parsed = [r for r in (parse_result(e) for e in entries) if r is not None]
    token = body.get("pagination_token")
    return parsed, token if isinstance(token, str) and token else None


def parse_request_states(body: Any) -> dict[str, str]:
    """``batch_request_id`` → state from ``GET /v1/batches/{id}/requests`` (any list of objects with both)."""
    if not isinstance(body, dict):
        return {}
    out: dict[str, str] = {}
    for value in body.values():
        if isinstance(value, list):
            for entry in value:
                if isinstance(entry, dict) and isinstance(entry.get("batch_request_id"), str):
                    state = entry.get("state")
                    out[entry["batch_request_id"]] = str(state).lower() if state is not None else "pending"
    return out
