"""Static stand-ins for live views, so saved notebooks, nbconvert and GitHub show results, not widget errors.

A view is displayed as one bundle: the widget's own entry plus ``text/html`` and ``text/plain``.
JupyterLab shows the widget while the kernel holds its model and the ``text/html`` otherwise
(checked in notebook-notes.md). The HTML is small: poster thumbnails, never the videos' bytes.
"""

from __future__ import annotations

import html
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .looks import TONE_HEX

_E = html.escape
#: Posters are cut at POSTER_WIDTH (posters.py); shown a little smaller, four fit a notebook's width.
TILE_PX = 224


def stars(rating: int) -> str:
    """A rating as five stars (empty when unrated)."""
    return "★" * rating + "☆" * (5 - rating) if rating else ""


def _where_line(t: dict[str, Any], lead: str = "the video is not reachable from here; its file") -> str:
    where = t.get("where") or t.get("href") or ""
    return (f'<div class="grok-static-where" style="font-size:11px;overflow-wrap:anywhere">{_E(lead)}: '
            f"{_E(where)}</div>")


def _poster_or_box(t: dict[str, Any], width: int, height: int, colour: str, text: str) -> str:
    if t["poster"]:
        return (f'<img src="{_E(t["poster"])}" alt="{_E(t["prompt"][:80])}" width="{width}" height="{height}" '
                f'style="display:block;width:{width}px;max-width:100%;height:auto;background:#000">')
    return (f'<div style="width:{width}px;max-width:100%;min-height:{height}px;box-sizing:border-box;padding:8px;'
            f'font-size:12px;border:2px solid {colour}">{_E(text)}</div>')


def static_video(t: dict[str, Any], width: int, height: int) -> str:
    """A player for a saved notebook: the copy kept beside the notebook (a relative path: JupyterLab serves it, an
    export beside the notebook finds it), then the file by its absolute path (an export opened elsewhere on this
    machine). Where neither loads, the player gives way to its poster and a line saying where the file is."""
    sources = [t["href"]] + ([Path(t["where"]).as_uri()] if t.get("where") and Path(t["where"]).is_absolute() else [])
    gone = f'<div class="grok-static-gone">{_where_line(t)}</div>'
    # The last source failing means none could load: the player gives way to its own poster (not copied into the
    # page twice) and the line. JupyterLab drops the handler from untrusted outputs, where the copy beside the
    # notebook is what plays.
    swap = ("var v=this.parentNode,d=document.createElement('div');d.innerHTML=v.dataset.gone;"
            "if(v.poster){var i=new Image();i.src=v.poster;i.alt=v.getAttribute('aria-label');"
            "i.style.cssText=v.style.cssText;d.firstChild.prepend(i)}v.replaceWith(d.firstChild)")
    tags = "".join(f'<source src="{_E(src)}" type="video/mp4"'
                   + (f' onerror="{_E(swap)}"' if i == len(sources) - 1 else "") + ">"
                   for i, src in enumerate(sources))
    poster = f' poster="{_E(t["poster"])}"' if t["poster"] else ""
    return (f'<video class="grok-static-video" data-gone="{_E(gone)}"{poster} controls preload="metadata" playsinline '
            f'width="{width}" height="{height}" aria-label="{_E(t["prompt"][:80])}" title="{_E(t["href"])}" '
            f'style="display:block;width:{width}px;max-width:100%;height:auto;background:#000">{tags}</video>')


def metrics_html(t: dict[str, Any], shown: Sequence[tuple[str, str]]) -> str:
    """A tile's metrics, as picked (``(name, label)`` pairs), each tinted by where it sits on the grid's scale."""
    chips = []
    for name, label in shown:
        text, colour = (t.get("metrics") or {}).get(name, ("—", None))
        # A translucent tint over whatever the page's background is: the text keeps the page's own colour.
        tint = (f"background:rgba({int(colour[1:3], 16)},{int(colour[3:5], 16)},{int(colour[5:7], 16)},0.35);"
                if colour else "")
        chips.append(f'<span class="grok-static-metric" style="{tint}padding:0 3px;border-radius:2px;'
                     f'white-space:nowrap">{_E(label)} {_E(text)}</span>')
    if not chips:
        return ""
    return f'<div style="font-size:11px;display:flex;flex-wrap:wrap;gap:2px 4px">{"".join(chips)}</div>'


def tile_html(t: dict[str, Any], width: int = TILE_PX, metrics: Sequence[tuple[str, str]] = ()) -> str:
    """One tile as static HTML: the video (its poster until played), else the poster; state, cost, latency, rating,
    the take shown (of a cell's takes) and the metrics picked."""
    colour = TONE_HEX[t["tone"]]  # borders and the icon only: text keeps the page's colour (contrast in both themes)
    height = round(width * t["height"] / max(t["width"], 1))
    if t.get("href"):
        # Never a result URL: those expire.
        media = static_video(t, width, height)
    elif t.get("where"):  # no copy beside the notebook (its folder could not be written): say where the file is
        media = _poster_or_box(t, width, height, colour, t["state"]) + _where_line(t, "the video file")
    else:
        media = _poster_or_box(t, width, height, colour, t["detail"] or t["state"])
    takes = t.get("takes") or []
    bits = [f"take {t.get('take', 0) + 1} of {len(takes)}" if takes else "",
            f'<span style="color:{colour}">{_E(t.get("icon") or "●")}</span> {_E(t["state"])}',
            _E(t["cost"]), _E(t["latency"]),
            stars(t["rating"]), "♛ best" if t["winner"] else ""]
    foot = " · ".join(b for b in bits if b)
    note = f'<div style="font-size:11px">“{_E(t["note"])}”</div>' if t["note"] else ""
    return (f'<div class="grok-tile grok-static-tile grok-tone-{t["tone"]}" title="{_E(t["title"])}" '
            f'style="width:{width}px;max-width:100%;text-align:left;border-top:3px solid {colour}">{media}'
            f'<div style="font-size:12px;padding:2px 0">{foot}</div>{metrics_html(t, metrics)}{note}</div>')


def grid_html(rows: Sequence[str], cols: Sequence[str], axes: str, tiles: Sequence[dict[str, Any]],
              summary_text: str, width: int = TILE_PX, metrics: Sequence[tuple[str, str]] = ()) -> str:
    """The grid as a static table: column headers on top, each row's header as a band above its tiles, each tile
    with the metrics picked (``(name, label)`` pairs)."""
    by_pos = {(t["row"], t["col"]): t for t in tiles}
    cell = "text-align:left;vertical-align:top;padding:4px;background:transparent"
    head = "".join(f'<th style="{cell};font-weight:600">{_E(c)}</th>' for c in cols)
    body = []
    for r, label in enumerate(rows):
        if label:
            body.append(f'<tr><th colspan="{len(cols)}" style="{cell};font-weight:600;padding-top:10px">'
                        f"{_E(label)}</th></tr>")
        body.append("<tr>" + "".join(f'<td style="{cell}">'
                                     f'{tile_html(by_pos[(r, c)], width, metrics) if (r, c) in by_pos else ""}'
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
