"""Keeps API keys out of every log line that grok_nb, httpx and httpcore emit while a client exists.

A filter on a logger does not see its children's records (httpcore logs from
``httpcore.http11`` and friends), so redaction happens where every record is made: in the
log record factory, for these libraries' loggers only.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from ..errors import forget_secret, redact, remember_secret, secrets_in_use

_LOGGERS = ("grok_nb", "httpx", "httpcore", "hpack", "h11", "h2")
_lock = threading.Lock()
_installed = False


def _make_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        if secrets_in_use() and record.name.split(".", 1)[0] in _LOGGERS:
            try:
                message = record.getMessage()
            except Exception:
                return record
            # Every live client's key (the registry in grok_nb.errors), and anything shaped like a key or a
            # bearer token: httpcore logs raw header bytes, where a key may show up as b'Bearer xai-...'.
            clean = redact(message)
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
        if not _installed:
            logging.setLogRecordFactory(_make_factory(logging.getLogRecordFactory()))
            _installed = True
    remember_secret(secret)
    # Run by the garbage collector, maybe in a thread inside redact(): forget_secret never waits for a lock.
    weakref.finalize(owner, forget_secret, secret)
