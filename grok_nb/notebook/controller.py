"""The notebook's I/O on behalf of its views: finds and serves the videos, reads and writes the history.

Views only draw state and send intents (rate, note, winner, save); a Controller, owned by the Studio,
does the reading and writing, so no view touches a file, a socket or the database while it draws.
"""

from __future__ import annotations

import html
import os
import shutil
import threading
from collections.abc import Sequence
from dataclasses import dataclass
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
#: The folder beside a notebook where the videos it shows are kept, so that its saved copy plays them.
VIDEOS_BESIDE = "grok_nb_videos"


def relative_path(path: Path) -> str | None:
    """The file as a path relative to the working directory (a kernel's is its notebook's folder), POSIX style;
    None when there is none (another drive). Saved notebooks link videos this way, never by a result URL."""
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:
        return None


class Controller:
    """Owns the store and the players' sources; views get values from it, never call it while drawing."""

    def __init__(self, store: Any, player: str = "local", keep_dir: str | Path | None = None):
        """``keep_dir``: where the videos views show are kept (hard-linked, else copied) for saved notebooks; a
        folder beside the notebook, as JupyterLab serves it and an export finds it. None: link to the cache."""
        if player not in ("local", "remote"):
            raise ValueError(f"player={player!r} is not allowed: 'local' (served from the cache) or 'remote' "
                             "(the result URL)")
        self.store = store
        self.player = player
        self.keep_dir = None if keep_dir is None else Path(keep_dir)
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
            kept = self._keep(path)
            # No kept copy when one was asked for: the saved copy shows the poster and says where the file is.
            href = relative_path(kept) if kept is not None else None if self.keep_dir else relative_path(path)
            found = Media(src, info.width, info.height, info.duration, poster_data_uri(path), href,
                          str((kept or path).resolve()))
        with self._lock:
            self._media[key] = found
        return found

    def _keep(self, path: Path) -> Path | None:
        """The video's copy in ``keep_dir`` (made once: a hard link where the disk allows, else a copy); None
        without a keep_dir, or when it cannot be written (the static copy then says where the file is)."""
        if self.keep_dir is None:
            return None
        target = self.keep_dir / path.name
        try:
            if target.is_file() and target.stat().st_size == path.stat().st_size:
                return target
            self.keep_dir.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.{os.getpid()}.part")
            try:
                os.link(path, part)
            except OSError:  # another disk, or no hard links here
                shutil.copy2(path, part)
            os.replace(part, target)  # whole or not at all: a reader never sees half a file
            return target
        except OSError:
            return None

    # -- the history ------------------------------------------------------------------------------
    def history_page(self, *, sort: str, offset: int, limit: int, **filters: Any) -> HistoryPage:
        """One page of the history as a view asks for it (filters, sort, paging all in SQL), with the counts and the
        filters' choices."""
        facets = self.store.facets()
        all_runs = self.store.count()
        total = self.store.count(**filters)
        offset = max(0, min(offset, (max(0, total - 1) // max(1, limit)) * max(1, limit)))
        page = self.store.page(sort=sort, offset=offset, limit=limit, **filters)
        return HistoryPage(page, offset, total, all_runs, facets)

    def rows(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The history rows of these runs (run ids, or request ids), in that order; unknown ids are left out."""
        found = (self.store.get(i) or self.store.find(i) for i in ids)
        return [dict(row) for row in found if row is not None]

    def exchanges(self, run_id: str) -> list[dict[str, Any]]:
        """A run's HTTP exchanges, in order (never a header or a key)."""
        return list(self.store.exchanges(run_id))

    def signature(self) -> Any:
        """A cheap fingerprint of the history (it changes when a run is written); None when it cannot be told."""
        return store_signature(self.store)

    def review(self, run_id: str, **fields: Any) -> None:
        """Write a run's rating, note or winner mark (None clears one) to the history."""
        unknown = set(fields) - set(REVIEW_FIELDS)
        if unknown:
            raise ValueError(f"cannot write {sorted(unknown)} from a view: only {', '.join(REVIEW_FIELDS)}")
        if fields and self.store is not None:
            self.store.update(run_id, **fields)


    # -- the judge, votes and rankings (through the client: money, rate limits and the history stay its own) -------
    #: The studio's client (set by the Studio): judge calls and votes go through it.
    client: Any = None

    def judge_many(self, runs: Sequence[Any], rubric: Any = None, **options: Any) -> list[Any]:
        """Judge finished runs against ``rubric`` (``client.judge_many``): a Judgement per run, in order."""
        return list(self.client.judge_many(list(runs), rubric, **options))

    def judge_pair(self, a: Any, b: Any, rubric: Any = None, **options: Any) -> Any:
        """Let the judge vote between two runs (``client.judge_pair``): a JudgedPair."""
        return self.client.judge_pair(a, b, rubric, **options)

    def judgements(self, run_ids: Sequence[str]) -> Any:
        """The judgements of these runs kept so far (a DataFrame, oldest first): how far a judge run has come."""
        return self.store.judgements(run_id=list(run_ids))

    def vote(self, a: Any, b: Any, winner: str, *, voter: str | None = None,
             experiment: str | None = None) -> dict[str, Any]:
        """Record a person's vote between two runs (``client.vote``); returns it as recorded."""
        recorded: dict[str, Any] = self.client.vote(a, b, winner, voter=voter, experiment=experiment)
        return recorded

    def delete_vote(self, vote: Any) -> dict[str, Any]:
        """Take a vote back (``client.delete_vote``); returns it as it was kept."""
        removed: dict[str, Any] = self.client.delete_vote(vote)
        return removed

    def votes(self, experiment: str | None = None, *, voter: str | None = None) -> Any:
        """The votes of the history (of one experiment, by one voter) as a DataFrame, oldest first."""
        return self.client.votes(experiment, voter=voter)

    def ranking(self, experiment: str | None = None, by: str = "prompt", voter: str | None = None,
                **options: Any) -> Any:
        """``client.ranking``: the options of the history's runs ranked from the votes."""
        return self.client.ranking(experiment, by, voter, **options)

    def budget(self) -> Any:
        """The client's ledger now (a ``BudgetSnapshot``): what videos and judge calls cost, apart."""
        return self.client.budget.snapshot()


@dataclass(frozen=True)
class HistoryPage:
    """A page of the history for a view: the rows, where the page starts, how many pass the filters and in all,
    and the values the filters can take."""

    frame: Any
    offset: int
    total: int
    all_runs: int
    facets: dict[str, Any]


def store_signature(store: Any) -> Any:
    """A cheap fingerprint of the history: the store's ``change_token()``, else its SQLite files' size and time."""
    # None when neither is known: then every look reloads the history.
    token = getattr(store, "change_token", None)
    if callable(token):
        return ("token", token())
    path = getattr(store, "path", None)
    if path is None or not Path(path).is_file():
        return None
    out: list[tuple[int, int] | None] = []
    for p in (Path(path), Path(f"{path}-wal")):
        try:
            st = os.stat(p)
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def poster_html(path: Any, title: Any = None) -> str | None:
    """A small poster <img> of a cached MP4 for a history row (cut once per file, then cached); None without one."""
    if tables._missing(path):
        return None
    uri = poster_data_uri(str(path), width=THUMB_WIDTH, at_s=0.1)  # a few frames in: past a fade from black
    if uri is None:
        return None
    tip = html.escape(str(title)[:200]) if not tables._missing(title) else ""
    return f'<img src="{uri}" alt="{tip}" title="{tip}" style="width:{THUMB_WIDTH}px;height:auto;display:block">'
