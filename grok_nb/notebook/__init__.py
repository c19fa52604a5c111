"""The notebook side of grok_nb: live job cards, comparison grids, a history browser (ipywidgets)."""

from .browser import HistoryBrowser
from .studio import HistoryFrame, Studio
from .widgets import GridView, JobCard

__all__ = ["GridView", "HistoryBrowser", "HistoryFrame", "JobCard", "Studio"]
