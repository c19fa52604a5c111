"""MkDocs hook: tables the guide shows, drawn from the code they describe, so the two cannot disagree.

A page asks for one with a marker line (``<!-- grok_nb:statuses -->``); the marker is replaced by the
table made from the package as it is now. A marker that names no table fails the build.
"""

from __future__ import annotations

import re
from typing import Any

from grok_nb import errors
from grok_nb.api.pricing import JUDGE_IMAGE_TOKENS, JUDGE_PRICES, PRICES, PRICES_AS_OF
from grok_nb.jobs.status import STATUSES, Status

_MARKER = re.compile(r"^<!-- grok_nb:([a-z_]+) -->$", re.MULTILINE)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def statuses() -> str:
    """Every Status and its row of the status table (``grok_nb/jobs/status.py``)."""
    lines = ["| status | shown as | final | `resume()` picks it up | billed without a reported cost | error | "
             "what it means |", "|---|---|---|---|---|---|---|"]
    for status in Status:
        info = STATUSES[status]
        error = f"`{info.error.__name__}`" if info.error is not None else ""
        lines.append(f"| `{status.value}` | {info.icon} {info.word} ({info.tone}) | {_yes(info.final)} | "
                     f"{_yes(info.resumable)} | {_yes(info.billed)} | {error} | {info.reason} |")
    return "\n".join(lines)


def _usd(value: float | None) -> str:
    return "—" if value is None else f"${value:g}"


def prices() -> str:
    """The video models' price table (``grok_nb/api/pricing.py``)."""
    lines = ["| model | 480p per s | 720p per s | 1080p per s | each input image | input video per s |",
             "|---|---|---|---|---|---|"]
    for model, items in PRICES.items():
        cells = [_usd(items[k].usd) for k in ("480p", "720p", "1080p", "input_image", "input_video_per_s")]
        lines.append(f"| `{model}` | " + " | ".join(cells) + " |")
    sources = sorted({p.source for items in PRICES.values() for p in items.values() if p.official})
    lines.append("")
    lines.append(f"Source: {'; '.join(sources)} (`grok_nb.PRICES_AS_OF` = {PRICES_AS_OF}).")
    return "\n".join(lines)


def judge_prices() -> str:
    """The judge models' price table and the tokens an image is assumed to cost (``grok_nb/api/pricing.py``)."""
    lines = ["| judge model | input, per million tokens | output, per million tokens |", "|---|---|---|"]
    for model, items in JUDGE_PRICES.items():
        lines.append(f"| `{model}` | {_usd(items['input_per_mtok'].usd)} | {_usd(items['output_per_mtok'].usd)} |")
    assumed = ", ".join(f"{tokens:,} for `{detail}`" for detail, tokens in JUDGE_IMAGE_TOKENS.items())
    lines.append("")
    lines.append(f"Tokens assumed per image, by `detail`: {assumed}.")
    return "\n".join(lines)


def error_tree() -> str:
    """The tree of error classes, as ``grok_nb/errors.py`` draws it."""
    doc = errors.__doc__ or ""
    tree = [line[4:].replace("``", "") for line in doc.splitlines() if line.startswith("    ")]
    return "```text\n" + "\n".join(tree) + "\n```"


def error_classes() -> str:
    """A reference entry (mkdocstrings) for every error class of ``grok_nb/errors.py``, in the order of the file."""
    import inspect

    classes = [obj for _, obj in inspect.getmembers(errors, inspect.isclass)
               if issubclass(obj, errors.GrokError) and obj.__module__ == errors.__name__]
    classes.sort(key=lambda cls: inspect.getsourcelines(cls)[1])
    return "\n\n".join(f"::: grok_nb.errors.{cls.__name__}" for cls in classes)


TABLES = {"statuses": statuses, "prices": prices, "judge_prices": judge_prices, "errors": error_tree,
          "error_classes": error_classes}


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """Replace each marker by its table."""
    def table(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TABLES:
            raise ValueError(f"{page.file.src_path}: no table named {name!r}; known: {sorted(TABLES)}")
        return TABLES[name]()

    return _MARKER.sub(table, markdown)
