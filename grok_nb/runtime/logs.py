"""Keeps API keys out of every log line that grok_nb, httpx and httpcore emit while a client exists.

A filter on a logger does not see its children's records (httpcore logs from
``httpcore.http11`` and friends), so redaction happens where every record is made: in the
log record factory, for these libraries' loggers only.
"""

from __future__ import annotations

import collections
import logging
import threading
import weakref
from typing import Any

from ..errors import forget_secret, redact, remember_secret

_LOGGERS = ("grok_nb", "httpx", "httpcore", "hpack", "h11", "h2")
_lock = threading.Lock()
_secrets: dict[str, int] = {}  # key → number of live clients using it
_released: collections.deque[str] = collections.deque()  # keys whose client is gone, not yet counted down
_installed = False


def _make_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        if _secrets and record.name.split(".", 1)[0] in _LOGGERS:
            try:
                message = record.getMessage()
            except Exception:
                return record
            clean = message
            for secret in list(_secrets):
                clean = redact(clean, secret)
            # httpcore logs raw header bytes: a key may show up as b'Bearer xai-...'
            if clean != message:
                record.msg, record.args = clean, None
        return record

    return factory


def protect_secret(secret: str | None, owner: Any) -> None:
    """Redact ``secret`` from those libraries' log records, and from server texts made into errors and rows
    (``grok_nb.errors.redact``), for as long as ``owner`` lives."""
    global _installed
    if not secret:
        return
    with _lock:
        _count_down_released()
        _secrets[secret] = _secrets.get(secret, 0) + 1
        if not _installed:
            logging.setLogRecordFactory(_make_factory(logging.getLogRecordFactory()))
            _installed = True
    remember_secret(secret)
    weakref.finalize(owner, _release, secret)


def _count_down_released() -> None:
    """Apply the releases that finalizers queued (the caller holds ``_lock``)."""
    while _released:
        try:
            secret = _released.popleft()
        except IndexError:
            return
        left = _secrets.get(secret, 0) - 1
        if left > 0:
            _secrets[secret] = left
        else:
            _secrets.pop(secret, None)


def _release(secret: str) -> None:
    # A garbage-collector finalizer: it may run in a thread that holds _lock right now, so it never waits for it.
    forget_secret(secret)
    _released.append(secret)
    if _lock.acquire(blocking=False):
        try:
            _count_down_released()
        finally:
            _lock.release()
