"""Static stand-ins for live views, so saved notebooks, nbconvert and GitHub show results, not widget errors.

A view is displayed as one bundle: the widget's own entry plus ``text/html`` and ``text/plain``.
JupyterLab shows the widget while the kernel holds its model and the ``text/html`` otherwise
(checked in notebook-notes.md). The HTML is small: poster thumbnails, never the videos' bytes.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from typing import Any

from .looks import TONE_HEX

_E = html.escape
#: Posters are cut at POSTER_WIDTH (posters.py); shown a little smaller, four fit a notebook's width.
TILE_PX = 224


def stars(rating: int) -> str:
    """A rating as five stars (empty when unrated)."""
    return "★" * rating + "☆" * (5 - rating) if rating else ""


def tile_html(t: dict[str, Any], width: int = TILE_PX) -> str:
    """One tile as static HTML: the video (its poster until played), else the poster; state, cost, latency, rating."""
    colour = TONE_HEX[t["tone"]]  # borders and the icon only: text keeps the page's colour (contrast in both themes)
    height = round(width * t["height"] / max(t["width"], 1))
    if t.get("href"):
        # A path relative to the notebook: it plays wherever the cached MP4 is reachable from there (JupyterLab
        # serves it, an exported HTML beside it); elsewhere the poster stays. Never a result URL: those expire.
        poster = f' poster="{_E(t["poster"])}"' if t["poster"] else ""
        media = (f'<video class="grok-static-video" src="{_E(t["href"])}"{poster} controls preload="none" playsinline '
                 f'width="{width}" height="{height}" aria-label="{_E(t["prompt"][:80])}" '
                 f'style="display:block;width:{width}px;height:auto;background:#000"></video>')
    elif t["poster"]:
        media = (f'<img src="{_E(t["poster"])}" alt="{_E(t["prompt"][:80])}" width="{width}" height="{height}" '
                 f'style="display:block;width:{width}px;height:auto;background:#000">')
    else:
        media = (f'<div style="width:{width}px;height:{height}px;box-sizing:border-box;padding:8px;font-size:12px;'
                 f'border:2px solid {colour}">{_E(t["detail"] or t["state"])}</div>')
    bits = [f'<span style="color:{colour}">{_E(t.get("icon") or "●")}</span> {_E(t["state"])}',
            _E(t["cost"]), _E(t["latency"]),
            stars(t["rating"]), "♛ best" if t["winner"] else ""]
    foot = " · ".join(b for b in bits if b)
    note = f'<div style="font-size:11px">“{_E(t["note"])}”</div>' if t["note"] else ""
    return (f'<div class="grok-tile grok-static-tile grok-tone-{t["tone"]}" title="{_E(t["title"])}" '
            f'style="width:{width}px;text-align:left;border-top:3px solid {colour}">{media}'
            f'<div style="font-size:12px;padding:2px 0">{foot}</div>{note}</div>')


def grid_html(rows: Sequence[str], cols: Sequence[str], axes: str, tiles: Sequence[dict[str, Any]],
              summary_text: str, width: int = TILE_PX) -> str:
    """The grid as a static table: column headers on top, each row's header as a band above its tiles."""
    by_pos = {(t["row"], t["col"]): t for t in tiles}
    cell = "text-align:left;vertical-align:top;padding:4px;background:transparent"
    head = "".join(f'<th style="{cell};font-weight:600">{_E(c)}</th>' for c in cols)
    body = []
    for r, label in enumerate(rows):
        if label:
            body.append(f'<tr><th colspan="{len(cols)}" style="{cell};font-weight:600;padding-top:10px">'
                        f"{_E(label)}</th></tr>")
        body.append("<tr>" + "".join(f'<td style="{cell}">'
                                     f'{tile_html(by_pos[(r, c)], width) if (r, c) in by_pos else ""}'
                                     "</td>" for c in range(len(cols))) + "</tr>")
    return (f'<div class="grok-static-grid tex2jax_ignore mathjax_ignore" style="overflow-x:auto;text-align:left">'
            f'<div style="font-size:13px;margin:4px 0"><b>grok_nb grid</b> · {_E(summary_text)}'
            f'{" · " + _E(axes) if axes else ""}</div>'
            f'<table style="border-collapse:collapse;margin:0"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def bundle(widget: Any, html_text: str | None, plain: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's display bundle with a readable ``text/plain`` (and a static ``text/html``) beside it."""
    got = widget._repr_mimebundle_()
    data, meta = got if isinstance(got, tuple) else (got, {})
    data = {**data, "text/plain": plain}
    if html_text is not None:
        data["text/html"] = html_text
    return data, dict(meta or {})


def new_key() -> str:
    """A fresh key tying a live view to its shadow."""
    return uuid.uuid4().hex[:16]


def hide_css(key: str) -> str:
    """CSS that a live view carries to hide its own static shadow (and, in JupyterLab, the shadow's output row)."""
    return f".grok-shadow-{key}, .jp-OutputArea-child:has(.grok-shadow-{key}) {{ display: none !important; }}"


def card_html(t: dict[str, Any], heading: str, width: int = 240) -> str:
    """One job card as static HTML: what was asked, then the tile (poster or failure, state, cost, request id)."""
    rid = f'<div style="font-size:11px">request id <code>{_E(t["request_id"])}</code></div>' if t["request_id"] else ""
    return (f'<div class="grok-static-card tex2jax_ignore mathjax_ignore" style="margin:4px 0;text-align:left">'
            f'<div style="font-size:13px;margin-bottom:2px">{_E(heading)}</div>{tile_html(t, width)}{rid}</div>')
