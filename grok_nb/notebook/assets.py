"""The views' browser code, shipped in the package: each view's module follows the DOM helpers they share."""

from __future__ import annotations

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"


def esm(name: str) -> str:
    """The ES module of the view ``name`` (``grid.js``, ``arena.js``), the shared helpers first."""
    return "\n".join((STATIC / part).read_text(encoding="utf-8") for part in ("dom.js", name))


def css(name: str) -> str:
    """A view's style sheet."""
    return (STATIC / name).read_text(encoding="utf-8")
