"""The history browser, cards and tables in JupyterLab + chromium, light and dark: what a person sees.

Text contrast is measured from computed styles (WCAG 2 relative luminance, ≥ 4.5:1), the filters start at
"all", the star buttons are not truncated, Save keeps the selection and the players and writes each run's
own note, and nothing overflows at 1,500 or 1,000 px. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import base64
import sqlite3

import httpx
import pytest

from .test_browser import (  # noqa: F401  (the fixtures)
    ARTIFACTS,
    KERNEL_IDLE,
    _nb,
    browser,
    lab,
    notebook_json,
    open_notebook,
    quiet_news,
    run_all,
    upload,
)

pytestmark = [pytest.mark.browser]

LONG_PROMPT = ("A red fox trotting through fresh snow at dawn, breath steaming, low sun behind the pines, "
               "the camera tracking slowly at knee height as snow falls from a branch")


CELLS = [
    "import grok_nb\nstudio = grok_nb.Studio()",
    f"ok = studio.generate({LONG_PROMPT!r}, duration=1)",
    'bad = studio.generate("A storm at sea [sim:fail=service_unavailable]", duration=1)',
    'hidden = studio.generate("A crowd at a gate [sim:moderate]", duration=1)',
    "for h in (ok, bad, hidden):\n    try:\n        h.result()\n    except grok_nb.GrokError:\n"
    "        pass\nprint('ALL FINISHED')",
    "studio.browse()",
    "studio.history()",
    "studio.plot_timeline()",
    "studio.plot_cost()",
]
NAME = "browse_history.ipynb"

# Contrast of every visible text node's element inside the given roots, against its composited background.
CONTRAST = """(selectors) => {
  const parse = (c) => {
    let m = c.match(/^rgba?\\(([^)]+)\\)/);
    if (m) { const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(parseFloat);
             return [p[0] / 255, p[1] / 255, p[2] / 255, p.length > 3 ? p[3] : 1]; }
    m = c.match(/^color\\(srgb ([^)]+)\\)/);
    if (m) { const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(parseFloat);
             return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; }
    return null;
  };
  const over = (top, bottom) => {  // alpha-composite top over an opaque bottom
    const a = top[3];
    return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]);
  };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let bg = [1, 1, 1, 1];
    for (const layer of layers.reverse()) bg = over(layer, bg);
    return bg;
  };
  const lum = (c) => { const f = v => v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
                       return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const out = [];
  for (const root of NB.querySelectorAll(selectors)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    const seen = new Set();
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const el = n.parentElement;
      if (!n.textContent.trim() || seen.has(el) || el.closest('option, style, script')) continue;
      seen.add(el);
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(el).visibility === 'hidden') continue;
      const bg = background(el);
      const fg = over(parse(getComputedStyle(el).color), bg);
      const [l1, l2] = [lum(fg), lum(bg)].sort((a, b) => b - a);
      out.push({text: n.textContent.trim().slice(0, 40), cls: el.className.toString().slice(0, 60),
                ratio: Math.round((l1 + 0.05) / (l2 + 0.05) * 100) / 100});
    }
  }
  return out;
}"""
TRUNCATED = """() => [...NB.querySelectorAll('.grok-rating button, .grok-save')].filter(b => b.getBoundingClientRect().width > 0)
  .map(b => ({text: b.innerText, scroll: b.scrollWidth, client: b.clientWidth}))"""
OVERFLOW = """() => [...NB.querySelectorAll('.grok-browser, .grok-card')].filter(e => e.getBoundingClientRect().width > 0)
  .map(e => { const area = e.closest('.jp-OutputArea-output') || e.parentElement;
              return {cls: e.className.slice(0, 40), right: e.getBoundingClientRect().right,
                      limit: area.getBoundingClientRect().right}; })"""


def _open(chromium, base: str, token: str, width: int = 1500):
    quiet_news(base, token)
    upload(base, token, NAME, notebook_json(CELLS))
    page, _ = open_notebook(chromium, base, token, NAME, width=width, workspace="history")
    run_all(page, "() => NB.innerText.includes('ALL FINISHED') && NB.querySelector('.grok-browser') "
                  "&& NB.querySelectorAll('.jp-RenderedImage img').length === 2", idle_timeout=120_000)
    return page


def _history(base: str, token: str) -> list[dict]:
    """The lab's history file, read through Jupyter's contents API (the WAL too: the latest writes are there)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("", "-wal"):
            r = httpx.get(f"{base}/api/contents/home/history.sqlite{suffix}",
                          params={"token": token, "content": 1, "format": "base64", "type": "file"}, timeout=30)
            if r.status_code == 200:
                (Path(tmp) / f"history.sqlite{suffix}").write_bytes(base64.b64decode(r.json()["content"]))
        conn = sqlite3.connect(Path(tmp) / "history.sqlite")
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT run_id, prompt, status, rating, note FROM runs")]
        conn.close()
    return rows


def _theme(page, name: str) -> None:
    page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{name}'}})")
    light = "true" if "Light" in name else "false"
    page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'", timeout=30_000)
    page.wait_for_timeout(800)  # the theme's stylesheet settles


def _check_contrast(page, label: str) -> None:
    measured = page.evaluate(_nb(CONTRAST), ".grok-card, .grok-browser, .grok-table-wrap table.grok-table")
    assert len(measured) > 30, measured
    low = [m for m in measured if m["ratio"] < 4.5]
    assert not low, (label, low)


def _shots(page, label: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1500, 1000):
        # Tall enough that the browser fits: JupyterLab scrolls inside its panel, so an element taller than
        # the window would be photographed under the toolbars.
        page.set_viewport_size({"width": width, "height": 1800})
        page.wait_for_timeout(400)
        overflow = page.evaluate(_nb(OVERFLOW))
        assert all(o["right"] <= o["limit"] + 1 for o in overflow), (label, width, overflow)
        # The rows are never cut: the list is as wide as its longest row and scrolls sideways when narrow.
        select = page.evaluate(_nb("() => { const s = NB.querySelector('.grok-runs select'); "
                                   "return [s.scrollWidth, s.clientWidth]; }"))
        assert select[0] <= select[1] + 1, (label, width, select)
        view = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-browser").first
        view.scroll_into_view_if_needed()
        view.screenshot(path=str(ARTIFACTS / f"history_browser_{label}_{width}.png"))
        cards = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-card")
        cards.nth(1).scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"history_cards_{label}_{width}.png"))
        table = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) :not(.grok-browser-static) > .grok-table-wrap table.grok-table").first
        table.scroll_into_view_if_needed()
        table.screenshot(path=str(ARTIFACTS / f"history_table_{label}_{width}.png"))
        plots = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-RenderedImage img")
        assert plots.count() == 2
        plots.nth(0).scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"history_plots_{label}_{width}.png"))
    page.set_viewport_size({"width": 1500, "height": 1100})


def test_history_browser_light_and_dark(lab, browser):  # noqa: F811  (pytest fixtures)
    base, token = lab
    page = _open(browser, base, token)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    assert "Error displaying widget" not in page.content()

    # While the browser is live, its saved table is hidden (it is there for the saved notebook).
    assert page.evaluate(_nb("() => NB.querySelector('.grok-browser-static').getBoundingClientRect().height")) == 0
    # Filters start at "all", never blank.
    for cls in ("grok-filter-status", "grok-filter-kind", "grok-filter-tag"):
        assert page.evaluate(_nb(f"() => NB.querySelector('.{cls} select').value")) == "all", cls
    # Every row says resolution, length, latency and cost; the header names them.
    rows = page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-runs select option')].map(o => [o.value, o.text.replace(/\u00a0/g, ' ')])"))
    assert len(rows) == 3 and any("480p" in t and " s " in t and "$" in t for _, t in rows), rows
    assert "latency" in page.evaluate(_nb("() => NB.querySelector('.grok-browser-head').innerText"))

    # Select the done run and the failed one (a <select>'s values are its labels): two tiles, a player, an error.
    done_id = next(v for v, t in rows if " done " in t)
    failed_id = next(v for v, t in rows if " failed " in t)
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-runs select").select_option([done_id, failed_id])
    page.wait_for_function(_nb("() => NB.querySelectorAll('.grok-browser-tile').length === 2"), timeout=30_000)
    page.wait_for_function(_nb("() => NB.querySelector('.grok-browser-tile video.grok-video')"), timeout=30_000)
    errors_text = page.evaluate(_nb("() => NB.querySelector('.grok-browser-tile .grok-error').innerText"))
    assert errors_text.count("try again later") == 1, errors_text

    # The star buttons are whole, and reachable by keyboard.
    stars = page.evaluate(_nb(TRUNCATED))
    assert len(stars) == 13 and all(s["scroll"] <= s["client"] for s in stars), stars
    assert any(s["text"] == "★★★★★" for s in stars)
    tiles = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-browser-tile")
    fox, storm = tiles.filter(has_text="red fox"), tiles.filter(has_text="storm at sea")
    four = fox.locator(".grok-rating button", has_text="★★★★").filter(has_not_text="★★★★★")
    four.focus()
    page.keyboard.press("Space")
    page.wait_for_function(_nb("() => [...NB.querySelectorAll('.grok-browser-tile')].some(t => "
                               "t.innerText.includes('red fox') && "
                               "t.querySelector('.grok-rating button.mod-active').innerText === '★★★★')"), timeout=10_000)
    storm.locator(".grok-rating button", has_text="★★").filter(has_not_text="★★★").click()
    fox.locator("textarea").fill("crisp snow, good motion")
    storm.locator("textarea").fill("failed: retry tomorrow")
    page.evaluate(_nb("() => { NB.querySelector('.grok-browser-tile video.grok-video').dataset.mark = 'kept'; }"))
    page.wait_for_timeout(500)  # the notes' last keystrokes reach the kernel

    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-save").click()
    page.wait_for_function(_nb("() => NB.querySelector('.grok-browser-message').innerText.includes('saved 2 runs')"),
                           timeout=30_000)
    page.wait_for_timeout(1500)  # a live refresh has passed too
    # The selection and the players are kept (the same <video> element), the rows show the ratings.
    assert page.evaluate(_nb("() => NB.querySelector('.grok-runs select').selectedOptions.length")) == 2
    assert page.evaluate(_nb("() => NB.querySelector('.grok-browser-tile video.grok-video').dataset.mark")) == "kept"
    labels = page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-runs select option')]"
                               ".map(o => o.text.replace(/\\u00a0/g, ' '))"))
    assert any("4/5" in t and "red" in t for t in labels) and any("2/5" in t and "storm" in t for t in labels), labels
    saved = {r["prompt"]: r for r in _history(base, token)}
    assert (saved[LONG_PROMPT]["rating"], saved[LONG_PROMPT]["note"]) == (4, "crisp snow, good motion")
    storm = saved["A storm at sea [sim:fail=service_unavailable]"]
    assert (storm["rating"], storm["note"]) == (2, "failed: retry tomorrow")  # each run its own note

    # The history table: one line per run (the prompt is cut by CSS, whole on hover), request ids whole.
    heights = page.evaluate(_nb("() => [...NB.querySelector(':not(.grok-browser-static) > .grok-table-wrap table.grok-table').querySelectorAll('tbody tr')]"
                                ".map(r => r.getBoundingClientRect().height)"))
    assert heights and max(heights) < 32, heights
    clips = page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-table-wrap table.grok-table code')].map(c => [c.scrollWidth, c.clientWidth, c.innerText])"))
    assert clips and all(len(text) >= 30 for _, _, text in clips)
    assert page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-table-wrap table.grok-table .grok-clip')].some(s => s.title.includes('knee height'))"))

    _check_contrast(page, "light")
    _shots(page, "light")
    _theme(page, "JupyterLab Dark")
    _check_contrast(page, "dark")
    _shots(page, "dark")
    _theme(page, "JupyterLab Light")
    assert not errors, errors

    # Saved, and reopened without its kernel: the browser's place shows a table of the runs, not an error.
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
    for session in httpx.get(f"{base}/api/sessions", params={"token": token}, timeout=30).json():
        httpx.delete(f"{base}/api/sessions/{session['id']}", params={"token": token}, timeout=30)
    page.reload()
    page.wait_for_function("() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget; "
                           "return !!(w && w.node.querySelector('.grok-browser-static table.grok-table')); }",
                           timeout=90_000)
    page.wait_for_timeout(2000)  # every output has rendered (or failed to)
    static = page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-browser-static tbody tr')].map(r => r.innerText)"))
    assert len(static) == 3 and any("red fox" in r for r in static), static
    browse_cell = _nb("() => [...NB.querySelectorAll('.jp-CodeCell')].find(c => c.innerText.includes('studio.browse()'))"
                      ".querySelector('.jp-OutputArea').innerText")
    shown = page.evaluate(browse_cell)
    assert "Error displaying widget" not in shown and "run the cell for the live browser" in shown, shown
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-browser-static").first.screenshot(
        path=str(ARTIFACTS / "history_browser_saved.png"))
    page.close()
