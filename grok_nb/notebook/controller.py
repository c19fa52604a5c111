"""The notebook's I/O on behalf of its views: finds and serves the videos, reads and writes the history.

Views only draw state and send intents (rate, note, winner, save); a Controller, owned by the Studio,
does the reading and writing, so no view touches a file, a socket or the database while it draws.
"""

from __future__ import annotations

import html
import os
import threading
from pathlib import Path
from typing import Any

from ..api.probe import probe
from ..jobs.results import Run
from . import tables
from .media import MediaServer
from .posters import poster_data_uri
from .present import Media
from .tables import THUMB_WIDTH

#: Fields a view may ask to write to a run's history row.
REVIEW_FIELDS = ("rating", "note", "winner")


def relative_path(path: Path) -> str | None:
    """The file as a path relative to the working directory (a kernel's is its notebook's folder), POSIX style;
    None when there is none (another drive). Saved notebooks link videos this way, never by a result URL."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:
        return None


class Controller:
    """Owns the store and the players' sources; views get values from it, never call it while drawing."""

    def __init__(self, store: Any, player: str = "local"):
        if player not in ("local", "remote"):
            raise ValueError(f"player={player!r} is not allowed: 'local' (served from the cache) or 'remote' "
                             "(the result URL)")
        self.store = store
        self.player = player
        self._media: dict[tuple[str, int], Media | None] = {}
        self._lock = threading.Lock()

    # -- videos -----------------------------------------------------------------------------------
    def media(self, run: Run) -> Media | None:
        """A finished run's player source, shape, poster and link; None when there is nothing to play."""
        if not run.ok or run.path is None:
            return None
        path = Path(run.path)
        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            return None
        with self._lock:
            if key in self._media:
                return self._media[key]
        info = probe(path)
        src = MediaServer.for_folder(path.parent).url_for(path) if self.player == "local" else None
        src = src or run.url
        found = None
        if src:
            found = Media(src, info.width, info.height, info.duration, poster_data_uri(path), relative_path(path))
        with self._lock:
            self._media[key] = found
        return found

    # -- the history ------------------------------------------------------------------------------
    def review(self, run_id: str, **fields: Any) -> None:
        """Write a run's rating, note or winner mark (None clears one) to the history."""
        unknown = set(fields) - set(REVIEW_FIELDS)
        if unknown:
            raise ValueError(f"cannot write {sorted(unknown)} from a view: only {', '.join(REVIEW_FIELDS)}")
        if fields and self.store is not None:
            self.store.update(run_id, **fields)


def poster_html(path: Any, title: Any = None) -> str | None:
    """A small poster <img> of a cached MP4 for a history row (cut once per file, then cached); None without one."""
    if tables._missing(path):
        return None
    uri = poster_data_uri(str(path), width=THUMB_WIDTH, at_s=0.1)  # a few frames in: past a fade from black
    if uri is None:
        return None
    tip = html.escape(str(title)[:200]) if not tables._missing(title) else ""
    return f'<img src="{uri}" alt="{tip}" title="{tip}" style="width:{THUMB_WIDTH}px;height:auto;display:block">'
