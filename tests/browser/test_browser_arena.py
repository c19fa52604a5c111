"""The blind arena in JupyterLab + chromium: ← → ↓ and the buttons each record the right vote (the left take is
``a``), Backspace and Undo take the last back, the parameters stay hidden, both takes play together, and it fits at 900 and 1400 px, light and dark.

Screenshots: test-artifacts/arena_<theme>_<px>.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from .test_browser import (  # noqa: F401  (the fixtures)
    ARTIFACTS,
    _nb,
    browser,
    lab,
    notebook_json,
    open_notebook,
    quiet_news,
    run_all,
    upload,
)
from .test_browser_widths import _measure, _screenshot, _stop_kernels, _theme, _width

pytestmark = [pytest.mark.browser]

PROMPTS = ["A red fox trotting through fresh snow", "A paper boat on a rainy street", "Clouds over a ridge at sunset"]
EXPERIMENT = "arena-browser"
CELLS = [
    "import grok_nb\nstudio = grok_nb.Studio(simulator_speed=300.0)\nprint('HOME', studio.client.home)",
    f"with studio.experiment({EXPERIMENT!r}):\n"
    f"    grid = studio.compare(prompt={PROMPTS!r}, duration=1, resolution='480p', display=False)\n"
    "grid.wait();",
    "arena = studio.arena(grid, seed=3)",
]
ARENA = ".jp-NotebookPanel:not(.lm-mod-hidden) .grok-arena"
READY = """() => {
  const a = NB.querySelector('.grok-arena');
  return !!a && [...a.querySelectorAll('video.grok-arena-video')].every(v => v.getAttribute('src') && v.readyState >= 2);
}"""
SHOWN = """() => {
  const a = NB.querySelector('.grok-arena');
  const name = v => (v.getAttribute('src') || '').split('/').pop();
  return {left: name(a.querySelector('.grok-arena-left video')), right: name(a.querySelector('.grok-arena-right video')),
          count: a.querySelector('.grok-arena-count').textContent, focused: document.activeElement === a,
          playing: [...a.querySelectorAll('video')].map(v => !v.paused),
          times: [...a.querySelectorAll('video')].map(v => v.currentTime),
          muted: [...a.querySelectorAll('video')].every(v => v.muted && v.loop)};
}"""


def _looks(page, label: str, shots: Callable[[str, int], None]) -> list[str]:
    """What is wrong with the notebook light and dark at 900 and 1400 px (the widths checks), screenshots taken."""
    ARTIFACTS.mkdir(exist_ok=True)
    found: list[str] = []
    for theme in ("light", "dark"):
        _theme(page, theme)
        for width in (900, 1400):
            _width(page, width)
            found += _measure(page, f"{label} {theme} {width} px")
            shots(theme, width)
    _theme(page, "light")
    return found


def _votes(home: Path) -> list[tuple[str, str, str, str]]:
    """The experiment's votes as the client reads them: (file of a, file of b, winner, voter)."""
    import grok_nb

    client = grok_nb.Client(api_key="xai-unused", base_url="http://127.0.0.1:9", home=home, quiet=True)
    try:
        files = {r: Path(p).name for r, p in zip(*(client.history()[c] for c in ("run_id", "local_path")),
                                                     strict=True)}
        votes = client.votes(EXPERIMENT)
        return [(files[a], files[b], w, v) for a, b, w, v in zip(votes["a"], votes["b"], votes["winner"],
                                                                 votes["voter"], strict=True)]
    finally:
        client.close()


def test_the_arena_votes_with_keys_and_buttons_and_hides_the_parameters(lab, browser):  # noqa: F811
    base, token = lab
    quiet_news(base, token)
    name = "arena.ipynb"
    upload(base, token, name, notebook_json(CELLS))
    page, errors = open_notebook(browser, base, token, name, width=1400, height=1000)
    try:
        run_all(page)
        page.wait_for_function(_nb(READY), timeout=60_000, polling=250)
        text = page.evaluate(_nb("() => NB.innerText"))
        home = Path(re.search(r"^HOME (\S+)$", text, re.M).group(1))
        assert "Error displaying widget" not in text
        # the static copy is there for a saved notebook, hidden while the live arena shows
        assert page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-shadow')].every(s => s.offsetParent === null)"))
        # the parameters are hidden: no prompt anywhere in the arena (text, titles, labels, sources)
        markup = page.locator(ARENA).evaluate("a => a.outerHTML.replace(/data:[^\"]*/g, '') + a.innerText")
        assert not [p for p in PROMPTS if p in markup or max(p.split(), key=len) in markup], markup[:400]
        assert "480p" not in markup and "prompt" not in markup.lower()

        arena = page.locator(ARENA)
        arena.click(position={"x": 30, "y": 10})  # the bar: focus, and the gesture that lets both play
        page.wait_for_function(_nb("() => [...NB.querySelectorAll('.grok-arena video')].every(v => !v.paused)"),
                               timeout=15_000)
        shown = page.evaluate(_nb(SHOWN))
        assert shown["focused"] and shown["muted"] and all(shown["playing"]), shown
        assert abs(shown["times"][0] - shown["times"][1]) < 0.35, shown["times"]  # started together
        cell = "() => window.jupyterapp.shell.currentWidget.content.activeCellIndex"
        active = page.evaluate(cell)

        expected: list[tuple[str, str, str]] = []
        actions = [("key", "ArrowLeft", "a"), ("key", "ArrowRight", "b"), ("key", "ArrowDown", "tie"),
                   ("button", "left", "a"), ("button", "right", "b"), ("button", "tie", "tie")]
        for how, which, winner in actions:
            before = page.evaluate(_nb(SHOWN))
            if how == "key":
                page.keyboard.press(which)
            else:
                page.locator(f"{ARENA} .grok-arena-vote-{which}").click()
            page.wait_for_function(_nb("(count) => NB.querySelector('.grok-arena-count').textContent !== count"),
                                   arg=before["count"], timeout=15_000)
            expected.append((before["left"], before["right"], winner))
            assert page.evaluate(_nb(SHOWN))["focused"], f"focus lost after {how} {which}"  # keys go on working
        assert page.evaluate(cell) == active  # ↓ voted: JupyterLab did not move to another cell
        final = page.evaluate(_nb(SHOWN))
        assert final["count"].startswith("6 votes so far · round 3"), final["count"]
        votes = _votes(home)
        assert [v[:3] for v in votes] == expected
        assert len({v[3] for v in votes}) == 1 and not votes[0][3].startswith("judge:")
        # shuffled: the takes of the grid do not keep the grid's order on the screen
        order = {f: i for i, f in enumerate(sorted({x for v in votes for x in v[:2]}))}
        assert len({order[a] < order[b] for a, b, _, _ in votes}) == 2, votes

        # Backspace, then the Undo button, take the last two votes back: each pair is shown again as it was
        for how, taken in (("key", expected[5]), ("button", expected[4])):
            before = page.evaluate(_nb(SHOWN))
            if how == "key":
                page.keyboard.press("Backspace")
            else:
                page.locator(f"{ARENA} .grok-arena-undo").click()
            page.wait_for_function(_nb("(count) => NB.querySelector('.grok-arena-count').textContent !== count"),
                                   arg=before["count"], timeout=15_000)
            shown = page.evaluate(_nb(SHOWN))
            assert (shown["left"], shown["right"]) == taken[:2] and shown["focused"], (shown, taken)
        assert page.evaluate(_nb(SHOWN))["count"].startswith("4 votes so far"), page.evaluate(_nb(SHOWN))
        assert [v[:3] for v in _votes(home)] == expected[:4]
        assert page.evaluate(cell) == active  # Backspace deleted no cell and moved to none

        page.wait_for_function(_nb(READY), timeout=30_000, polling=250)
        def shots(theme: str, width: int) -> None:
            arena.scroll_into_view_if_needed()
            arena.screenshot(path=str(ARTIFACTS / f"arena_{theme}_{width}.png"))
            _screenshot(page, ARTIFACTS / f"arena_notebook_{theme}_{width}.png")

        found = _looks(page, "arena", shots)
        assert not found, "\n".join(found)
        assert not errors, errors
    finally:
        _stop_kernels(base, token)
        page.close()


def test_notebook_05_in_jupyterlab(lab, browser):  # noqa: F811
    """The 'Which prompt wins?' notebook as a person runs it: the grid, the judge's line and table, the arena, the
    ranking and its plot, nothing cut, light and dark."""
    from .test_browser_widths import make_notebook

    base, token = lab
    quiet_news(base, token)
    name = "05_which_prompt_wins.ipynb"
    upload(base, token, name, make_notebook(name))
    page, errors = open_notebook(browser, base, token, name, width=1400, height=1000, workspace="nb05")
    try:
        run_all(page, done="() => NB.querySelectorAll('.grok-table.grok-ranking').length === 1"
                           " && NB.querySelectorAll('.grok-vgrid .grok-vtile.grok-kind-done').length === 3"
                           " && NB.querySelectorAll('.grok-vgrid .grok-vtake.grok-tone-ok').length === 9"
                           " && NB.querySelector('.grok-arena')")
        page.wait_for_timeout(1500)
        text = page.evaluate(_nb("() => NB.innerText")).replace("\u00a0", " ")
        assert "Error displaying widget" not in text and "Traceback" not in text
        assert "9 of 9 judged" in text and "judge)" in text  # the judge's cost, apart from the videos
        assert page.evaluate(_nb("() => NB.querySelectorAll('.jp-RenderedImage img').length")) >= 1
        found = _looks(page, "05", lambda theme, width: _screenshot(page, ARTIFACTS / f"nb05_{theme}_{width}.png"))
        assert not found, "\n".join(found)
        assert not errors, errors
    finally:
        _stop_kernels(base, token)
        page.close()


def test_static_copy_says_what_the_arena_was(browser):  # noqa: F811
    """nbconvert of an executed notebook with an arena: the copy names the takes and the votes, no dead widget."""
    import subprocess
    import sys
    import tempfile

    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        nb = nbformat.reads(json.dumps(notebook_json([*CELLS, "arena.vote('left'); arena.vote('tie')"])),
                            as_version=4)
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
        path = Path(tmp) / "arena.ipynb"
        nbformat.write(nb, path)
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)], check=True,
                       capture_output=True, timeout=120)
        page = browser.new_page(viewport={"width": 900, "height": 800})
        try:
            page.goto((Path(tmp) / "arena.html").as_uri())
            copy = page.locator(".grok-static-arena")
            assert copy.count() == 1 and copy.is_visible()
            said = copy.inner_text()
            assert "3 takes of 3 options (by prompt)" in said and "2 votes by" in said
            assert not any(p in said for p in PROMPTS)
            page.screenshot(path=str(ARTIFACTS / "arena_exported.png"), full_page=True)
        finally:
            page.close()
