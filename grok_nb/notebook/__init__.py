"""The notebook side of grok_nb: live job cards, comparison grids, a history browser (ipywidgets).

Names load on first use, so the pure modules here (present, gridstate, fallback) import without widgets.
"""

import importlib
from typing import Any

_WHERE = {"Studio": "studio", "HistoryFrame": "studio", "HistoryBrowser": "browser", "JobCard": "widgets",
          "VideoGrid": "gridview"}

__all__ = ["HistoryBrowser", "HistoryFrame", "JobCard", "Studio", "VideoGrid"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:  # loaded on first use: the views import ipywidgets and anywidget
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
