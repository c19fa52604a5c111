"""A run and its history row, each made from the other by the table's columns (the migrations say which).

Every column of ``runs`` maps to the :class:`~grok_nb.jobs.results.Run` attribute of the same name unless
:data:`RULES` says otherwise (another name, a conversion, a value kept in ``run.params``). A column that no
attribute owns (a rating, a note, a measure written after the download, who made the run) is read into
``run.extra`` and never written back from a run, so a run's writes cannot overwrite what a person or another
writer put there. A new column is one migration; it reaches ``run.extra`` and the history's DataFrame by
itself, and a column the run itself must carry is one more attribute on ``Run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from ..api.measure import MEASURE_COLUMNS, Measures
from ..api.pricing import CostEstimate
from ..jobs.results import Run, stopped_note
from ..jobs.status import restored_error, status_of
from .schema import RUN_COLUMNS

#: Values a run keeps in ``run.params`` (what was asked) and the history keeps as columns.
PARAM_COLUMNS = ("resolution", "aspect_ratio", "image", "reference_images", "generate_audio", "input_video")


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else value or None


@dataclass(frozen=True)
class Rule:
    """How one column is read from a run (``get``) and given back to a new run (``put``: attribute, value)."""

    get: Callable[[Run], Any]
    put: Callable[[Mapping[str, Any]], tuple[str, Any] | None]


def _same(attribute: str) -> Rule:
    return Rule(lambda run: getattr(run, attribute), lambda row: (attribute, row.get(attribute)))


def _param(column: str) -> Rule:
    return Rule(lambda run: run.params.get(column), lambda row: None)  # params are rebuilt whole, below


def _error_code(run: Run) -> str | None:
    err = run.error
    return getattr(err, "code", None) or (type(err).__name__ if err is not None else None)


#: Columns that are not the same-named attribute as it is.
RULES: dict[str, Rule] = {
    **{column: _param(column) for column in PARAM_COLUMNS},
    "status": Rule(lambda run: run.status.value, lambda row: ("status", status_of(row.get("status")))),
    "duration": Rule(lambda run: run.duration if run.duration is not None else run.params.get("duration"),
                     lambda row: None),
    "video_duration": Rule(lambda run: run.duration, lambda row: (
        "duration", row.get("video_duration") if row.get("video_duration") is not None else row.get("duration"))),
    "poll_count": Rule(lambda run: run.polls, lambda row: ("polls", row.get("poll_count") or 0)),
    "video_url": Rule(lambda run: run.url, lambda row: ("url", row.get("video_url"))),
    "local_path": Rule(lambda run: str(run.path) if run.path else None,
                       lambda row: ("path", Path(row["local_path"]) if row.get("local_path") else None)),
    "cost_estimated_usd": Rule(lambda run: run.estimate.usd if run.estimate else None, lambda row: (
        "estimate", CostEstimate(row["cost_estimated_usd"]) if row.get("cost_estimated_usd") is not None else None)),
    "error_code": Rule(_error_code, lambda row: None),
    "error_message": Rule(lambda run: str(run.error) if run.error else stopped_note(run), lambda row: (
        "error", restored_error(status_of(row.get("status")), row.get("error_message"), row.get("request_id"),
                                row.get("error_code")))),
    "submitted_at": Rule(lambda run: run.submitted_at.isoformat() if run.submitted_at else None,
                         lambda row: ("submitted_at", _when(row.get("submitted_at")))),
    "finished_at": Rule(lambda run: run.finished_at.isoformat() if run.finished_at else None,
                        lambda row: ("finished_at", _when(row.get("finished_at")))),
    "tags": Rule(lambda run: list(run.tags), lambda row: ("tags", list(row.get("tags") or []))),
    "prompt": _same("prompt"),
    "model": Rule(lambda run: run.model, lambda row: ("model", row.get("model") or "")),
    "backend": Rule(lambda run: run.backend, lambda row: ("backend", row.get("backend") or "")),
}

_ATTRIBUTES = {f.name for f in fields(Run)}


#: The columns a run writes: each with a rule, or named like one of its attributes (``base_url`` is the client's).
OWNED_COLUMNS = tuple(c for c in RUN_COLUMNS if c in RULES or c in _ATTRIBUTES)


def row_of(run: Run, base_url: str | None = None) -> dict[str, Any]:
    """The history columns a run owns (never image data, never the key), and the server's ``base_url``."""
    row = {c: (RULES[c].get(run) if c in RULES else getattr(run, c)) for c in OWNED_COLUMNS}
    row["base_url"] = base_url
    return row


def run_of(row: Mapping[str, Any]) -> Run:
    """A run rebuilt from its history row (to resume it, or to show it); columns it does not own go to
    ``run.extra``."""
    values: dict[str, Any] = {"params": {c: row.get(c) for c in ("prompt", "duration", *PARAM_COLUMNS)}}
    extra: dict[str, Any] = {}
    for column in RUN_COLUMNS:
        if column in RULES:
            put = RULES[column].put(row)
            if put is not None:
                values[put[0]] = put[1]
        elif column in _ATTRIBUTES:
            values[column] = row.get(column)
        elif column in row:
            extra[column] = row[column]
    values["extra"] = extra
    if any(extra.get(c) is not None for c in MEASURE_COLUMNS):  # measured after its download
        values["measures"] = Measures.from_columns(extra)
    return Run(**values)
