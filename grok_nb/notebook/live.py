"""Show a live view with its static shadow, and refresh the shadow in place as the view's state changes."""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Callable
from typing import Any

import IPython.display as ipd

from . import fallback


def hide_dead_widgets_css(key: str) -> str:
    """CSS a shadow carries: in its own output area, a widget output with nothing rendered in it (reopened without
    the kernel: "Error displaying widget: model not found", only text) is hidden, so the static copy stands alone.

    A live view renders elements inside its output, so it is never matched; while it loads it is empty for a moment.
    """
    # JupyterLab marks such an output .jupyter-widgets (and gives it no data-mime-type) and writes only text in it.
    # (:has() may not nest, so "no element inside" is a :not(:has()) beside it, not within it.)
    return (f".jp-OutputArea:has(.grok-shadow-{key}) .jp-OutputArea-child:has(> .jp-OutputArea-output.jupyter-widgets)"
            f":not(:has(> .jp-OutputArea-output *)) {{ display: none; }}")


class LiveDisplay:
    """Shows a view and its static shadow, and later refreshes both in place (``update_display``).

    The shadow is a separate ``text/html`` output, hidden by CSS that only the live view carries.
    Wherever the view cannot render (a saved notebook reopened without its kernel, ``nbconvert``
    even when the widget state was saved, GitHub), nothing hides the shadow, so the results show.
    A ``text/html`` inside the widget's own bundle would not do: nbconvert prefers the widget view
    whenever its state was saved (nbclient saves it by default) and then shows nothing offline.
    """

    def __init__(self, widget_bundle: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
                 static_html: Callable[[], str] | None = None, key: str | None = None):
        self._widget_bundle = widget_bundle
        self._static_html = static_html
        self.key = key or fallback.new_key()
        self._ids: list[tuple[str, str]] = []

    def _shadow(self) -> dict[str, str]:
        assert self._static_html is not None
        return {"text/html": f"<style>{hide_dead_widgets_css(self.key)}</style>"
                             f'<div class="grok-shadow grok-shadow-{self.key} tex2jax_ignore mathjax_ignore">'
                             f"{self._static_html()}</div>"}

    def show(self) -> None:
        """Display the view (and its shadow) in the current cell."""
        ids = (uuid.uuid4().hex, uuid.uuid4().hex)
        data, meta = self._widget_bundle()
        ipd.display(data, metadata=meta, raw=True, display_id=ids[0])  # type: ignore[no-untyped-call]
        if self._static_html is not None:
            ipd.display(self._shadow(), raw=True, display_id=ids[1])  # type: ignore[no-untyped-call]
        self._ids.append(ids)

    def refresh(self) -> None:
        """Redraw the shadow wherever the view was shown; the live view is left alone (a redraw would restart it)."""
        if not self._ids or self._static_html is None:
            return
        def send() -> None:
            shadow = self._shadow()
            for _view_id, shadow_id in self._ids:
                ipd.update_display(shadow, raw=True, display_id=shadow_id)  # type: ignore[no-untyped-call]

        # Filed under the cell running now: the one that displayed the view may have returned long ago.
        contextvars.Context().run(send)
