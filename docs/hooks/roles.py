"""MkDocs hook: show the Sphinx roles some docstrings use (:class:`~a.b.C`, :meth:`m`) as plain code.

Docstrings stay readable in ``help()`` and in Sphinx-aware editors; in the built guide the role's name
would otherwise show as text before the code (``:class:AsyncClient``). A leading ``~`` keeps the last part only.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|data|mod|attr|exc|obj):<code>(~?)([^<]*)</code>")


def _plain(match: re.Match[str]) -> str:
    short, target = match.group(1), match.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if short else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """Replace each role by the code it names."""
    return _ROLE.sub(_plain, html)
