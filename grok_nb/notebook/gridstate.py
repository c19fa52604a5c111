"""What a comparison grid shows, as plain data: headers, one tile per cell, the summary line (pure: no I/O).

The anywidget view (gridview.py), the saved-notebook fallback (fallback.py) and the HTML report
(report.py) all draw these same dicts, so they cannot disagree about a cell.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..jobs.results import Run
from . import looks, metrics, present, tables

_REQUEST_ID = re.compile(r"\s*\[request_id=[^\]]*\]")


#: A file name of an image or a video (told from a prompt by its look alone: a label never touches the disk).
_MEDIA_FILE = re.compile(r"[^\n]*\.(png|jpe?g|webp|gif|bmp|mp4|mov|webm)", re.IGNORECASE)


def short(value: Any, width: int = 40) -> str:
    """A value as a label: images as their name, long prompts cut."""
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, Path):
        return value.name
    if isinstance(value, str) and _MEDIA_FILE.fullmatch(value) and ("/" in value or "\\" in value or " " not in value):
        return re.split(r"[\\/]", value)[-1]
    if isinstance(value, str) and value.startswith("data:"):
        return "data URI"
    text = str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def tile_kind(run: Run | None, cancelled: bool = False) -> str:
    """The one word a tile's state reduces to (``download_failed`` when done but the MP4 never arrived)."""
    return looks.state_of(run, cancelled)


def failure_reason(run: Run) -> str:
    """Why a cell failed, said once (the error's own message, without the repeated request id)."""
    err = run.error
    if err is None:
        return looks.look(looks.state_of(run)).reason
    code = getattr(err, "code", None)
    message = getattr(err, "message", None) or str(err)
    text = f"{code}: {message}" if code and code not in message else message
    return _REQUEST_ID.sub("", text).strip()  # the request id is on hover already


@dataclass(frozen=True)
class Layout:
    """Where each cell goes: row labels, column labels, and a (row, column) per cell."""

    row_axis: str | None
    col_axes: tuple[str, ...]
    rows: list[str]
    cols: list[str]
    positions: list[tuple[int, int]]
    row_titles: list[str]
    col_titles: list[str]


def layout(labels: Sequence[dict[str, Any]], varying: Sequence[str], short: Any = lambda v, _w=40: str(v)) -> Layout:
    """Rows from the first varying parameter, columns from the others; axis values appear only here."""
    names = list(varying)
    row_axis = names[0] if len(names) >= 2 else None
    col_axes = tuple(names[1:] if row_axis else names)
    row_keys: list[Any] = []
    col_keys: list[Any] = []
    positions = []
    seen: dict[tuple[str, str], int] = {}
    for label in labels:
        rk = label.get(row_axis) if row_axis else None
        ck = tuple(label.get(a) for a in col_axes)
        n = seen.get((repr(rk), repr(ck)), 0)  # the same values twice (a repeated list entry): a column of its own
        seen[(repr(rk), repr(ck))] = n + 1
        ck = ck + (n,)
        if rk not in row_keys:
            row_keys.append(rk)
        if ck not in col_keys:
            col_keys.append(ck)
        positions.append((row_keys.index(rk), col_keys.index(ck)))

    def unit(axis: str, value: Any) -> str:
        text = short(value)
        return f"{text} s" if axis == "duration" and isinstance(value, (int, float)) else text

    cols = [" · ".join(unit(a, v) for a, v in zip(col_axes, k[:-1], strict=True)) or "result" for k in col_keys]
    col_titles = [", ".join(f"{a}={v}" for a, v in zip(col_axes, k[:-1], strict=True)) or "result" for k in col_keys]
    rows = [short(k, 200) if row_axis else "" for k in row_keys]  # a row header has the grid's width
    row_titles = [f"{row_axis}={k}" if row_axis else "" for k in row_keys]
    return Layout(row_axis, col_axes, rows, cols, positions, row_titles, col_titles)


def axes_line(grid: Any, lay: Layout) -> str:
    """The line under the summary: which parameter runs down the rows and which across, and the takes a cell has."""
    axes = (f"rows: {lay.row_axis} · columns: {' · '.join(lay.col_axes)}" if lay.row_axis
            else f"columns: {' · '.join(lay.col_axes)}" if lay.col_axes else "")
    if grid.takes > 1:  # "12 cells × 3 takes = 36 jobs"
        axes = f"{axes} · {grid.plan_text}" if axes else grid.plan_text
    return axes


def tile(index: int, run: Run | None, *, position: tuple[int, int] = (0, 0), label: str = "",
         source: tuple[str, int, int, float | None] | None = None, poster: str | None = None,
         rating: int | None = None, note: str | None = None, winner: bool = False, cancelled: bool = False,
         prompt: str | None = None, href: str | None = None, where: str | None = None,
         metrics: dict[str, list[Any]] | None = None, now: datetime | None = None) -> dict[str, Any]:
    """One tile's state: what the view draws for a cell, or for one take of it (every value JSON-able).

    ``metrics``: ``{name: [text, colour or None]}`` for the numbers its footer may show (see ``metric_values``)."""
    kind = tile_kind(run, cancelled)
    seen = looks.look(kind)
    tone = seen.tone
    progress = None
    state = seen.word
    if run is not None and kind in ("pending", "submitting") and run.progress is not None:
        progress = int(run.progress)
        state = f"{state} {progress}%"
    cost = latency = ""
    request_id = run_id = ""
    if run is not None:
        if run.cost_actual_usd is not None:
            cost = present.usd(run.cost_actual_usd)
        elif run.cost_usd is not None and tone != "bad":  # an estimate for a job that failed says nothing
            cost = "≈" + present.usd(run.cost_usd)  # an estimate until the server reports the cost
        elapsed = present.elapsed_s(run, now)
        latency = present.seconds(elapsed) if elapsed is not None else ""
        request_id, run_id = run.request_id or "", run.run_id
        prompt = run.prompt if prompt is None else prompt
    src, width, height, duration = source if source else ("", 16, 9, None)
    title = "\n".join(t for t in (prompt or "", label, f"request id: {request_id}" if request_id else "") if t)
    return {
        "index": index, "row": position[0], "col": position[1], "label": label, "kind": kind, "tone": tone,
        "icon": seen.icon, "state": state, "progress": progress,
        "detail": failure_reason(run) if run is not None and tone in ("bad", "warn") else "",
        "cost": cost, "latency": latency, "rating": int(rating or 0), "note": note or "", "winner": bool(winner),
        "request_id": request_id, "run_id": run_id, "prompt": prompt or "", "title": title,
        "src": src if kind == "done" else "", "href": (href or "") if kind == "done" else "", "poster": poster or "",
        "where": (where or "") if kind == "done" else "",
        "width": int(width), "height": int(height),
        "duration": duration, "can_stop": run is not None and tone == "busy" and not run.stopped,
        "metrics": dict(metrics or {}),
    }


#: A tile's fields that belong to its cell, not to one take.
_CELL_FIELDS = ("index", "row", "col", "label")


def cell_tile(takes: Sequence[dict[str, Any]], chosen: int = 0) -> dict[str, Any]:
    """A cell of several takes as one tile: the chosen take's state at the top (what static copies and reports
    draw), every take's in ``takes`` (what the view's take strip switches between), ``take`` the chosen one
    (counted from 0). A cell of one take is that take's tile, with no strip."""
    chosen = min(max(int(chosen), 0), len(takes) - 1)
    shown = {**takes[chosen], "take": chosen, "takes": []}
    if len(takes) > 1:
        shown["takes"] = [{k: v for k, v in t.items() if k not in _CELL_FIELDS} for t in takes]
    return shown


def synced(tile: dict[str, Any]) -> dict[str, Any]:
    """A cell's tile as the grid's script needs it: a cell of several takes sends each take's state once (in
    ``takes``), not the chosen one's again at the top (posters and embedded videos would go twice)."""
    if not tile.get("takes"):
        return tile
    return {k: tile[k] for k in (*_CELL_FIELDS, "take", "takes")}


def grid_tiles(runs: Sequence[Run | None], takes: int, lay: Layout, prompts: Sequence[str | None], *,
               media: Callable[[int, int], Any] = lambda _i, _k: None,
               ratings: Mapping[tuple[int, int], int] | None = None, notes: Mapping[tuple[int, int], str] | None = None,
               winners: Mapping[int, tuple[int, int]] | None = None, chosen: Mapping[int, int] | None = None,
               cancelled: bool = False) -> tuple[list[dict[str, Any]], list[str]]:
    """Every cell's tile (see ``cell_tile``) and the metrics the takes have, for the view and the report alike.

    ``runs``: every job's run, cell by cell and take by take; ``media(cell, take)``: the finished take's video (a
    ``present.Media``) or None; reviews are keyed ``(cell, take)``, takes counted from 0, winners by row."""
    ratings, notes, winners, chosen = ratings or {}, notes or {}, winners or {}, chosen or {}
    names = metrics.present(runs)
    values = metric_values(runs, names)  # one colour scale across the whole grid
    out = []
    for i, position in enumerate(lay.positions):
        label = lay.cols[position[1]]
        cell = []
        for k in range(takes):
            run = runs[i * takes + k]
            found = media(i, k) if run is not None and run.ok else None
            cell.append(tile(
                i, run, position=position, label=label, source=found.source if found else None,
                poster=found.poster if found else None, rating=ratings.get((i, k)), note=notes.get((i, k)),
                winner=winners.get(position[0]) == (i, k), cancelled=cancelled, prompt=prompts[i],
                href=found.href if found else None, where=found.where if found else None,
                metrics=values[i * takes + k]))
        out.append(cell_tile(cell, chosen.get(i, 0)))
    return out, names


def metric_values(runs: Sequence[Run | None], names: Sequence[str]) -> list[dict[str, list[Any]]]:
    """Per run, ``{name: [text, colour]}`` for each metric: its value as read, tinted by where it sits between
    the smallest and the largest value among ``runs`` (colour None when missing, or when every value is the same)."""
    out: list[dict[str, list[Any]]] = [{} for _ in runs]
    for name in names:
        values = [metrics.value(run, name) for run in runs]
        for found, number, position in zip(out, values, metrics.scale(values), strict=True):
            found[name] = [metrics.text(name, number), metrics.colour(position)]
    return out


def summary(tiles: Sequence[dict[str, Any]], runs: Sequence[Run | None], *, estimate_usd: float,
            budget: Any = None, started: bool = True, wall_s: float | None = None,
            now: datetime | None = None) -> dict[str, Any]:
    """The tqdm-like line: N of M done, failed count, overall ETA, dollars against the estimate, and the client's
    budget line (``budget``: a ``BudgetSnapshot`` of its ledger, the same one every card reads)."""
    total = len(tiles)
    done = sum(1 for t in tiles if t["kind"] == "done")
    failed = sum(1 for t in tiles if t["tone"] == "bad")
    stopped = sum(1 for t in tiles if t["kind"] == "stopped")
    recoverable: dict[str, int] = {}  # amber, not stopped: not downloaded, submit uncertain
    for t in tiles:
        if t["tone"] == "warn" and t["kind"] != "stopped":
            recoverable[t["state"]] = recoverable.get(t["state"], 0) + 1
    busy = sum(1 for t in tiles if t["tone"] == "busy")
    cancelled = any(t["kind"] == "not_sent" for t in tiles)
    cost = spent_of(runs)
    eta = overall_eta_s(runs, now)
    parts = [f"{done} of {total} done"]
    if failed:
        parts.append(f"{failed} failed")
    if stopped:
        parts.append(f"{stopped} stopped (resumable)")
    parts.extend(f"{n} {state}" for state, n in recoverable.items())
    if cancelled:
        parts.append("cancelled: nothing sent")
    elif not started:
        parts.append("waiting for confirmation")
    elif busy:
        parts.append(f"ETA {present.seconds(eta)}")
        note = next((r.waiting_note for r in runs if r is not None and r.waiting_note), None)
        if note:  # other notebooks share the key's request budget
            parts.append(note)
    elif wall_s is not None:
        parts.append(f"wall time {present.seconds(wall_s)}")
    parts.append(f"{present.usd(cost)} of est.{tables.NBSP}{present.usd(estimate_usd)}")
    money = tables.ledger(budget)
    if money:
        parts.append(money)
    return {"total": total, "done": done, "failed": failed, "stopped": stopped, "running": busy,
            "warned": stopped + sum(recoverable.values()),
            "finished": started and busy == 0, "eta_s": eta, "cost_usd": cost, "estimate_usd": estimate_usd,
            "budget_usd": budget.limit_usd if budget is not None else None, "parts": parts,
            "text": " · ".join(parts), "can_stop": busy > 0}


def spent_of(runs: Sequence[Run | None]) -> float:
    """What the finished runs cost, as the budget counted each (billed moderated or expired runs too)."""
    return round(sum(r.cost_budget_usd or 0.0 for r in runs if r is not None and r.finished), 6)


def overall_eta_s(runs: Sequence[Run | None], now: datetime | None = None) -> float | None:
    """Seconds until the last running cell should finish: each cell's own pace, else the finished cells' latency."""
    latencies = [r.latency_s for r in runs if r is not None and r.status == "done" and r.latency_s]
    typical = sum(latencies) / len(latencies) if latencies else None
    etas = []
    for run in runs:
        if run is None or run.finished or run.stopped:
            continue
        elapsed = present.elapsed_s(run, now)
        eta = present.eta_s(run.progress, elapsed)
        if eta is None and typical is not None and elapsed is not None:
            eta = max(typical - elapsed, 0.0)
        if eta is None:
            return None  # one cell with no idea at all: say so rather than guess
        etas.append(eta)
    return max(etas) if etas else None
