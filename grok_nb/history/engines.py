"""The engines under the history (``grok_nb.history.store.RunStore``): a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import os
from typing import Any


def engine_for(where: str | os.PathLike) -> Any:
    """The engine for a file path or a ``postgresql://`` URL."""
    text = os.fspath(where)
    if text.split(":", 1)[0].lower() in ("postgresql", "postgres"):
        from .postgres import PostgresEngine

        return PostgresEngine(text)
    if "://" in text:
        from ..settings import redact_url
        from .store import HistoryError

        raise HistoryError(f"GROK_NB_HISTORY_URL={redact_url(text)} is not understood: use postgresql://user@host/db, "
                           "or leave it unset to keep the history in a SQLite file in GROK_NB_HOME.")
    from .sqlite import SQLiteEngine

    return SQLiteEngine(text)
