"""Every error grok_nb raises, and the one place HTTP answers become exceptions.

    GrokError
    ├── ValidationError            bad input, caught before any request is sent (also a ValueError)
    ├── BudgetExceeded             the jobs would cost more than the budget allows; nothing was sent
    ├── ConfirmationRequired       a grid above the confirmation threshold needs confirm=True
    ├── ConfigurationError         a local setting is unusable (key, base URL, home folder); nothing was sent
    ├── ConnectionFailed           the server could not be reached
    ├── SubmitUncertainError       a submit may have reached the server; not resent (no double billing)
    ├── JudgeError                 a judge's answer was no valid judgement (``Judgement.raise_for_error``)
    ├── MeasureError               a local video cannot be read: missing, empty, not an MP4, damaged
    ├── APIError                   the server answered with an HTTP error
    │   ├── BadRequestError        400, 405, 415, 422
    │   ├── AuthenticationError    401 (and 400 "Incorrect API key")
    │   ├── PermissionDeniedError  403
    │   ├── NotFoundError          404
    │   ├── RateLimitError         429 (``out_of_credits`` when the team has no credits left)
    │   └── ServerError            5xx
    └── JobError                   about one job; always carries ``request_id``
        ├── JobFailedError         status "failed" (``code``, ``message``)
        ├── JobExpiredError        status "expired": the content is gone
        ├── JobCancelledError      status "cancelled": cancelled (with its batch) before it ran
        ├── ModeratedError         done, but withheld by moderation
        ├── NoVideoError           done, but the answer carried no usable video URL
        ├── DeadlineExceeded       stopped waiting (also a TimeoutError); the job is resumable
        ├── ClientClosedError      stopped waiting because the client was closed; the job is resumable
        └── DownloadError          done, but the MP4 could not be fetched
"""

from __future__ import annotations

import collections
import re
import threading
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

_KEY_PATTERN = re.compile(r"xai-[A-Za-z0-9_*.\-]{2,}")
#: A credential after "Bearer" (a gateway may echo the Authorization header), whatever its shape.
_BEARER_PATTERN = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9\-._~+/]{8,}=*")
_secrets_lock = threading.Lock()
#: The keys of the clients alive in this process (key → how many clients use it): any text from a server
#: is cleaned of them, even where the caller does not hold the key (a key need not look like "xai-...").
_live_secrets: dict[str, int] = {}
#: Keys whose client is gone, waiting to be counted down. A client is released by a garbage-collector finalizer,
#: which may run in a thread that holds ``_secrets_lock`` at that very moment: it must never wait for the lock.
_released: collections.deque[str] = collections.deque()


def _count_down_released() -> None:
    """Apply the releases that finalizers queued (the caller holds ``_secrets_lock``)."""
    while _released:
        try:
            secret = _released.popleft()
        except IndexError:
            return
        left = _live_secrets.get(secret, 0) - 1
        if left > 0:
            _live_secrets[secret] = left
        else:
            _live_secrets.pop(secret, None)


def remember_secret(secret: str | None) -> None:
    """Redact ``secret`` from every server text made into an error or row from now on (until forgotten)."""
    if secret:
        with _secrets_lock:
            _count_down_released()
            _live_secrets[secret] = _live_secrets.get(secret, 0) + 1


def forget_secret(secret: str | None) -> None:
    """One client using ``secret`` is gone; the key stays redacted while another one uses it.

    Safe in a finalizer: it never waits for a lock (if the lock is busy, the next use of the registry counts it).
    """
    if secret:
        _released.append(secret)
        if _secrets_lock.acquire(blocking=False):
            try:
                _count_down_released()
            finally:
                _secrets_lock.release()


def secrets_in_use() -> bool:
    """True while some client's key is registered (a cheap look: no lock)."""
    return bool(_live_secrets)


def redact(text: str, secret: str | None = None) -> str:
    """Remove API keys from text: the given one, every live client's, anything shaped like an xAI key or bearer."""
    with _secrets_lock:
        _count_down_released()
        # a live client's 1-3 character "key" (a test's) would blank out ordinary words elsewhere
        known_keys = {k for k in _live_secrets if len(k) >= 4}
    if secret:
        known_keys.add(secret)
    for known in sorted(known_keys, key=len, reverse=True):  # longest first: a key containing another goes whole
        text = text.replace(known, "***")
    text = _BEARER_PATTERN.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)
    return _KEY_PATTERN.sub("xai-***", text)


class GrokError(Exception):
    """Root of every grok_nb error."""


def shown_value(value: Any, limit: int = 80) -> str:
    """A short, safe repr of any value: cut to ``limit``, keys redacted, never raising (a hostile ``__repr__``)."""
    try:
        if isinstance(value, (str, bytes, bytearray)) and len(value) > limit:
            value = value[:limit]  # never repr a huge string whole
        shown = repr(value)
    except Exception:  # a value whose __repr__ raises (or returns a non-str): shown by its type alone
        shown = f"<{type(value).__name__} object>"
    if not isinstance(shown, str):
        shown = f"<{type(value).__name__} object>"
    shown = redact(shown)
    return shown if len(shown) <= limit else shown[:limit - 3] + "..."


class ValidationError(GrokError, ValueError):
    """Input rejected before anything was sent: names the field, the value and what is allowed."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}={shown_value(value)} is not allowed: {redact(str(allowed))}")

    def __repr__(self) -> str:
        return f"ValidationError({self.args[0]!r})"


class BudgetExceeded(GrokError):
    """The estimated cost does not fit in what is left of the budget; nothing was sent."""

    def __init__(self, estimate_usd: float, budget_usd: float, jobs: int, *, committed_usd: float = 0.0):
        self.estimate_usd, self.budget_usd, self.jobs = estimate_usd, budget_usd, jobs
        self.committed_usd = committed_usd
        self.remaining_usd = max(0.0, budget_usd - committed_usd)
        what = f"{jobs} jobs are" if jobs != 1 else "This job is"
        left = (f", and ${committed_usd:.2f} of the ${budget_usd:.2f} budget is already spent or reserved "
                f"(${self.remaining_usd:.2f} remains)" if committed_usd > 0
                else f", above the budget of ${budget_usd:.2f}")
        super().__init__(f"{what} estimated at ${estimate_usd:.2f}{left}; nothing was sent. "
                         "Shrink the request or raise budget_usd=...")


class ConfirmationRequired(GrokError):
    """The estimated cost is above the confirmation threshold and nobody confirmed."""

    def __init__(self, estimate_usd: float, threshold_usd: float, jobs: int):
        self.estimate_usd, self.threshold_usd, self.jobs = estimate_usd, threshold_usd, jobs
        super().__init__(f"{jobs} jobs are estimated at ${estimate_usd:.2f}, above the ${threshold_usd:.2f} that "
                         "needs confirmation; nothing was sent. Pass confirm=True to go ahead.")


class ConfigurationError(GrokError, ValueError):
    """A local setting cannot work (a key with a line break, a base URL without scheme, a read-only home)."""


class ConnectionFailed(GrokError):
    """The server could not be reached (no request was accepted)."""


class SubmitUncertainError(GrokError):
    """A submit may have reached the server but no answer came back; it was not resent."""

    def __init__(self, message: str, *, run_id: str):
        self.run_id = run_id
        super().__init__(
            f"{message} The request may have started a paid job, so it was not resent. "
            f"It is kept in the history as run {run_id} with status 'uncertain': check your "
            "xAI console for a job made at that time before submitting again."
        )


class JudgeError(GrokError):
    """A vision judge answered, but not with a valid judgement (no JSON, a score outside 0-1, a missing field).

    A failed judgement is never a score; it is kept with its cost and ``request_id`` (``judgement``).
    """

    def __init__(self, reason: str, *, request_id: str | None = None, judgement: Any = None):
        self.reason, self.request_id, self.judgement = reason, request_id, judgement
        where = f" [request_id={request_id}]" if request_id else ""
        billed = "nothing was billed for it" if getattr(judgement, "cost_usd", None) == 0 else \
            "the failed call is still billed"
        super().__init__(f"the judge's answer is not a valid judgement: {redact(reason)}{where}. Judge again, or "
                         f"with another model; {billed}")


class MeasureError(GrokError):
    """A local video cannot be read to measure it or sample its frames (missing, empty, not an MP4, cut short or
    damaged); names the file."""

    def __init__(self, path: str, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"cannot read the video {path}: {problem}. Check the path; a damaged download can be "
                         "fetched again while its URL lives (client.get(request_id)), or the video generated again")


class APIError(GrokError):
    """The server answered with an HTTP error status."""

    hint = ""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ):
        self.status_code, self.code, self.request_id = status_code, code, request_id
        self.retry_after = retry_after
        self.server_message = message
        text = f"HTTP {status_code}"
        if code:
            text += f" ({code})"
        text += f": {message.rstrip().rstrip('.')}"  # the server's sentence may end with its own period
        if request_id:
            text += f" [request_id={request_id}]"
        hint = self.hint_for(message)
        if hint:
            text += f". {hint}"
        super().__init__(text)

    def hint_for(self, message: str) -> str:
        """What to do next, for this answer (the class's hint unless a subclass knows better)."""
        return self.hint


class BadRequestError(APIError):
    """400/405/415/422: the server refused the request's content."""

    hint = "Fix the request; sending it again unchanged will fail the same way."


class AuthenticationError(APIError):
    """401, or a 400 about the key: the API key is missing or wrong."""

    hint = "Set XAI_API_KEY or pass api_key=... to the client (keys start with 'xai-')."


class PermissionDeniedError(APIError):
    """403: the key may not use this model or feature."""

    hint = "Check that this key's team has access to the video models in the xAI console."


class NotFoundError(APIError):
    """404: unknown request id, model or path."""

    hint = "Check the request id or model name; jobs are only known to the server that made them."

    def hint_for(self, message: str) -> str:
        """A missing model gets a hint about models, a missing job one about request ids."""
        if "model" in message.lower():
            return ("Check the model name: client.models() lists the video models this key can use, "
                    "such as grok-imagine-video")
        if "request" in message.lower() or "id" in message.lower().split():
            return "Check the request id; jobs are only known to the server that made them."
        return self.hint


class RateLimitError(APIError):
    """429: too many requests, or the team is out of credits / over its spending limit."""

    @property
    def out_of_credits(self) -> bool:
        """True when the 429 is about money, where waiting does not help."""
        msg = self.server_message.lower()
        return any(w in msg for w in ("credit", "spending limit", "billing", "exhausted"))

    def __str__(self) -> str:
        base = super().__str__().rstrip(".")  # the server's sentence may end with its own period
        if self.out_of_credits:
            return base + ". The team is out of credits or over its spending limit: add credits in the xAI console."
        return base + ". Slow down (grok_nb's rate_limit=...) or wait and try again."


class ServerError(APIError):
    """5xx: the service failed; usually temporary."""

    hint = "The service had a problem; try again in a minute."


class JobError(GrokError):
    """An error about one job; ``request_id`` says which, ``run`` holds what is known."""

    def __init__(self, message: str, *, request_id: str | None, run: Any = None):
        self.request_id, self.run = request_id, run
        # Whatever a server said lands here (batch results, gateways): no live key survives into the text.
        super().__init__(redact(f"{message} [request_id={request_id}]"))


class JobFailedError(JobError):
    """The job ended with status "failed"."""

    def __init__(self, code: str | None, message: str | None, *, request_id: str | None, run: Any = None):
        self.code = redact(code) if code is not None else None
        self.message = message = redact(message) if message is not None else None
        advice = "try again later" if code in ("service_unavailable", "internal_error") else "change the request"
        text = message or "no message"
        if advice not in text.lower():  # the server's message may already say it
            text += f"; {advice}"
        super().__init__(f"video job failed ({code or 'unknown'}): {text}", request_id=request_id, run=run)


class JobExpiredError(JobError):
    """The job ran but its content is gone (status "expired")."""

    def __init__(self, *, request_id: str | None, run: Any = None):
        super().__init__("the video has expired on the server (result URLs are ephemeral: minutes to hours, "
                         "1 hour for batches); generate it again", request_id=request_id, run=run)


class JobCancelledError(JobError):
    """The job was cancelled (with its batch) before it ran; nothing was billed for it."""


class ModeratedError(JobError):
    """The video was made but withheld by moderation (``respect_moderation: false``)."""

    def __init__(self, *, request_id: str | None, run: Any = None):
        super().__init__("the video was withheld by moderation; rephrase the prompt or change the input",
                         request_id=request_id, run=run)


class NoVideoError(JobError):
    """The service said done but sent no usable video URL (delivered elsewhere, or a changed answer shape)."""

    def __init__(self, reason: str | None = None, *, request_id: str | None, run: Any = None):
        self.reason = reason
        super().__init__(f"the job is done but the answer has no video URL to download ({reason or 'no url'}); "
                         "it may have been delivered elsewhere (output.upload_url / storage_options). Check the "
                         "xAI console, or resume with client.get(request_id) later", request_id=request_id, run=run)


class DeadlineExceeded(JobError, TimeoutError):
    """Stopped waiting for a job that may still be running; resume with ``client.get(request_id)``."""

    def __init__(self, waited_s: float, *, request_id: str | None, run: Any = None):
        self.waited_s = waited_s
        where = f"client.get({request_id!r})" if request_id else "client.resume()"
        super().__init__(f"stopped waiting after {waited_s:.0f} s; the job may still finish: resume with {where}",
                         request_id=request_id, run=run)


class BatchWaitTimeout(GrokError, TimeoutError):
    """Stopped waiting for a batch whose requests may still finish; it goes on at the server."""

    def __init__(self, waited_s: float, *, batch_id: str | None, running: int, total: int):
        self.waited_s, self.batch_id, self.running = waited_s, batch_id, running
        super().__init__(f"stopped waiting for batch {batch_id} after {waited_s:g} s: {running} of {total} requests "
                         "still running at the server after one more look. It goes on there and this client keeps "
                         "reading it: b.wait() again, or client.resume() in a new kernel")


class ClientClosedError(JobError):
    """The client was closed while a job was waited for; the job goes on at the server and can be resumed."""

    def __init__(self, *, request_id: str | None, run: Any = None):
        where = f"client.get({request_id!r})" if request_id else "client.resume()"
        super().__init__(f"stopped waiting: the client was closed; the job goes on at the server. Resume it with "
                         f"{where} on an open client", request_id=request_id, run=run)


class DownloadError(JobError):
    """The job is done but its MP4 could not be downloaded."""

    #: True when the video's URL answered that it is gone (expired): asking again cannot help.
    gone: bool = False


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    405: BadRequestError,
    415: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
}


def parse_error_body(body: Any, secret: str | None = None) -> tuple[str | None, str]:
    """(code, message) from any of the error-body shapes seen from xAI, without any API key in them."""
    code, message = _error_body(body)
    return (redact(code, secret) if code is not None else None), redact(message, secret)


def _error_body(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # gateway shape {"error": {"message", "code"}}
            code = err.get("code") or err.get("type") or body.get("code")
            return (str(code) if code is not None else None), str(err.get("message") or err)
        code = body.get("code")
        message = err if isinstance(err, str) else body.get("message") or body.get("detail")
        return (str(code) if code is not None else None), str(message or body)
    if isinstance(body, str) and body.strip():
        return None, body.strip()[:500]
    return None, "no error message in the answer"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def error_from_response(
    status_code: int,
    body: Any,
    *,
    headers: Any = None,
    request_id: str | None = None,
    secret: str | None = None,
) -> APIError:
    """Map an HTTP error answer to the right APIError subclass (the only place that does)."""
    code, message = parse_error_body(body, secret)
    retry_after = parse_retry_after(headers.get("retry-after")) if headers is not None else None
    cls = _STATUS_CLASSES.get(status_code)
    if cls is None:
        cls = ServerError if status_code >= 500 else APIError
    if cls is BadRequestError and "api key" in message.lower():
        cls = AuthenticationError  # xAI answers a wrong key with 400
    return cls(message, status_code=status_code, code=code, request_id=request_id, retry_after=retry_after)
