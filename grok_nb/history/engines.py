"""The engines under the history (``store.RunStore``): a SQLite file or a PostgreSQL database."""

from __future__ import annotations

import os

from ..settings import ENV_HISTORY_URL
from .postgres import PostgresEngine
from .sqlite import SQLiteEngine
from .storage import POSTGRESQL, HistoryError, parse_location

Engine = SQLiteEngine | PostgresEngine


def engine_for(where: str | os.PathLike[str]) -> Engine:
    """The engine for a file path or a ``postgresql://`` URL; any other URL is explained."""
    location = parse_location(where, setting=ENV_HISTORY_URL, kinds=(POSTGRESQL,), error=HistoryError,
                              local="to keep the history in a SQLite file in GROK_NB_HOME")
    if location.kind == POSTGRESQL:
        return PostgresEngine(location)
    return SQLiteEngine(location.target)
