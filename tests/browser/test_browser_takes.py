"""Measures and takes in the grid, in JupyterLab + Debian's chromium: a 12-cell × 3-take grid on the simulator shows
its measures under every tile (tinted across the grid), a take strip on every tile whose choice changes the player
(Play all, A/B and ratings follow it), the per-cell table with each mean's spread, and nothing cut at 900 and
1400 px, light and dark. Screenshots: test-artifacts/takes_*.png."""

from __future__ import annotations

import re
import sqlite3
import time

import pytest

from .test_browser import ARTIFACTS, KERNEL_IDLE, _nb, browser, lab, notebook_json, open_notebook, quiet_news, upload  # noqa: F401  (fixtures, shared)
from .test_browser_grid import CONTRAST
from .test_browser_widths import _measure, _screenshot, _theme, _width

pytestmark = [pytest.mark.browser]

PROMPTS = ["A still lake at night under a calm moon", "Wild horses running through a storm",
           "A sunny meadow at noon, then cut to a city street"]
CELLS = [
    "import grok_nb\nstudio = grok_nb.Studio(budget_usd=20.00, simulator_speed=300)\n"
    "print('HISTORY', studio.client.store.path)",
    f"grid = studio.compare(prompt={PROMPTS!r}, resolution=['480p', '720p'], duration=[1, 2], takes=3, confirm=True)",
    "table = grid.wait()\ntable",
]
GRID = ".jp-NotebookPanel:not(.lm-mod-hidden) .grok-vgrid"
# Every take of every cell done, measured and loaded: 12 tiles, each with its three takes and its measures.
ALL_DONE = """() => {
  const g = NB.querySelector('.grok-vgrid');
  if (!g) return false;
  const tiles = [...g.querySelectorAll('.grok-vtile')];
  return tiles.length === 12 && tiles.every(t => {
    const takes = [...t.querySelectorAll('.grok-vtake')];
    const chips = [...t.querySelectorAll('.grok-vmetric')];
    return takes.length === 3 && takes.every(b => b.classList.contains('grok-tone-ok'))
      && chips.length >= 2 && chips.every(c => !c.textContent.includes('—'));
  }) && [...g.querySelectorAll('.grok-vtile video.grok-vvideo')].every(v => v.readyState >= 1)
    && !!NB.querySelector('.grok-table-wrap table.grok-table');
}"""
TILES = """() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vtile')].map(t => ({
  row: [...t.closest('.grok-vgrid').querySelectorAll('.grok-vrow')].indexOf(t.closest('.grok-vrow')),
  src: t.querySelector('video.grok-vvideo').getAttribute('src'),
  takes: [...t.querySelectorAll('.grok-vtake')].map(b => ({text: b.textContent, pressed: b.getAttribute('aria-pressed'),
                                                          label: b.getAttribute('aria-label')})),
  chips: [...t.querySelectorAll('.grok-vmetric')].map(c => ({name: c.dataset.metric, text: c.textContent,
                                                            background: getComputedStyle(c).backgroundColor})),
}))"""
VIDEOS = """() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vtile video.grok-vvideo')]
  .map(v => ({t: v.currentTime, d: v.duration, paused: v.paused, src: v.currentSrc}))"""


def _spread(playing: list[dict]) -> float:
    """How far apart the videos play: each against the longest clips' time wrapped to its own length (the 1-s
    clips loop while the 2-s ones play on: in step, though their clocks read differently)."""
    longest = max(v["d"] for v in playing)
    clock = max(v["t"] for v in playing if v["d"] == longest)
    drifts = []
    for v in playing:
        off = abs(v["t"] - clock % v["d"])
        drifts.append(min(off, v["d"] - off))
    return max(drifts)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=False)


def _number(chip_text: str) -> float:
    return float(chip_text.split(" ")[-1].replace("\u2212", "-").replace(",", ""))


@pytest.fixture(scope="module")
def takes_page(lab, browser):  # noqa: F811
    base, token = lab
    quiet_news(base, token)
    upload(base, token, "takes_live.ipynb", notebook_json(CELLS))
    page, errors = open_notebook(browser, base, token, "takes_live.ipynb", width=1400, height=1000)
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    page.wait_for_function(_nb(ALL_DONE), timeout=300_000, polling=500)
    page.wait_for_function(KERNEL_IDLE, timeout=120_000)
    history = page.evaluate(_nb("() => NB.querySelector('.jp-OutputArea-output pre').textContent"))
    page.history_path = history.split("HISTORY", 1)[1].strip()
    yield page, errors
    page.close()


def test_every_tile_shows_its_measures_tinted_across_the_grid(takes_page):
    page, errors = takes_page
    page.locator(GRID).first.scroll_into_view_if_needed()
    tiles = page.evaluate(_nb(TILES))
    assert len(tiles) == 12 and "Error displaying widget" not in page.content() and not errors, errors
    for t in tiles:
        assert [c["name"] for c in t["chips"]] == ["m_motion", "m_brightness"], t  # the default pick
        assert [c["text"].split(" ")[0] for c in t["chips"]] == ["motion", "brightness"], t
        assert all(_number(c["text"]) >= 0 for c in t["chips"]), t
        assert [b["text"] for b in t["takes"]] == ["1", "2", "3"] and t["takes"][0]["pressed"] == "true", t
    # One scale across the grid: the tints differ from tile to tile, and the extremes are where the words put them.
    tints = {c["background"] for t in tiles for c in t["chips"] if c["name"] == "m_motion"}
    assert len(tints) >= 3, tints
    motion = {row: [_number(t["chips"][0]["text"]) for t in tiles if t["row"] == row] for row in range(3)}
    brightness = {row: [_number(t["chips"][1]["text"]) for t in tiles if t["row"] == row] for row in range(3)}
    assert max(motion[0]) < min(motion[1]), motion  # the calm lake moves less than the horses in the storm
    assert max(brightness[0]) < min(brightness[1]) and max(brightness[0]) < min(brightness[2]), brightness  # night
    legend = page.evaluate(_nb("() => { const l = NB.querySelector('.grok-vgrid .grok-vlegend'); "
                               "return [l.hidden, l.innerText, getComputedStyle(l.querySelector('.grok-vlegend-bar'))"
                               ".backgroundImage]; }"))
    assert legend[0] is False and "low" in legend[1] and "high" in legend[1] and "gradient" in legend[2], legend
    axes = page.evaluate(_nb("() => NB.querySelector('.grok-vgrid .grok-vaxes').textContent"))
    assert "12 cells × 3 takes = 36 jobs" in axes, axes
    summary = page.evaluate(_nb("() => NB.querySelector('.grok-vgrid .grok-vsummary').innerText"))
    assert summary.startswith("36 of 36 done"), summary
    page.locator(GRID).first.screenshot(path=str(ARTIFACTS / "takes_grid_light.png"))


def test_choosing_a_take_changes_the_player_play_all_and_a_b(takes_page):
    page, _ = takes_page
    grid = page.locator(GRID).first
    grid.scroll_into_view_if_needed()
    before = page.evaluate(_nb(TILES))
    tile = grid.locator(".grok-vtile").nth(0)
    tile.locator(".grok-vtake").nth(1).click()  # take 2 of the first cell
    page.wait_for_function(_nb("() => NB.querySelector('.grok-vgrid .grok-vtile video.grok-vvideo').readyState >= 1"))
    after = page.evaluate(_nb(TILES))
    assert after[0]["src"] != before[0]["src"] and after[0]["src"], (before[0], after[0])
    assert [b["pressed"] for b in after[0]["takes"]] == ["false", "true", "false"], after[0]
    assert all(a["src"] == b["src"] for a, b in zip(after[1:], before[1:], strict=True))  # the other tiles keep theirs
    # Back and forth: take 1 again gives the first video again, then take 3 a third one.
    tile.locator(".grok-vtake").nth(0).click()
    assert page.evaluate(_nb(TILES))[0]["src"] == before[0]["src"]
    tile.locator(".grok-vtake").nth(2).click()
    third = page.evaluate(_nb(TILES))[0]["src"]
    assert third not in (before[0]["src"], after[0]["src"])
    tile.locator(".grok-vtake").nth(1).click()
    chosen = page.evaluate(_nb(TILES))[0]["src"]
    assert chosen == after[0]["src"]
    page.wait_for_function(_nb("() => NB.querySelector('.grok-vgrid .grok-vtile video.grok-vvideo').readyState >= 2"))
    # Play all plays each cell's chosen take, in step.
    grid.get_by_role("button", name="Play all").click()
    page.wait_for_function(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vtile video.grok-vvideo')]"
                               ".every(v => !v.paused && v.currentTime > 0.05)"), timeout=30_000, polling=100)
    time.sleep(0.5)  # as the grid's own test: the clock nudges a late starter within a tick or two
    playing = page.evaluate(_nb(VIDEOS))
    assert len(playing) == 12 and playing[0]["src"].endswith(chosen), playing[0]
    spread = _spread(playing)
    print(f"Play all, 12 chosen takes: spread {spread:.3f} s")
    assert spread <= 0.25, [(v["t"], v["d"]) for v in playing]
    _shot(page, "takes_playing_1400.png")
    grid.get_by_role("button", name="Pause all").click()
    # A/B compares the tiles' chosen takes.
    grid.get_by_role("button", name="A/B").click()
    page.wait_for_function(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vab video')]"
                               ".every(v => v.readyState >= 1)"), timeout=20_000)
    ab = page.evaluate(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vab video')]"
                           ".map(v => v.getAttribute('src'))"))
    assert ab[0] == chosen, (ab, chosen)
    choice = page.evaluate(_nb("() => NB.querySelector('.grok-vgrid .grok-ab-a').selectedOptions[0].textContent"))
    assert "take 2" in choice, choice
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-vab").first.screenshot(path=str(ARTIFACTS / "takes_ab.png"))
    grid.get_by_role("button", name="A/B").click()


def test_a_rating_goes_to_the_shown_take_s_run(takes_page):
    page, _ = takes_page
    grid = page.locator(GRID).first
    tile = grid.locator(".grok-vtile").nth(0)
    tile.locator(".grok-vtake").nth(1).click()  # take 2 shown (as the test before left it)
    tile.scroll_into_view_if_needed()
    tile.hover()
    tile.get_by_role("button", name="rate 4 of 5").click()
    deadline = time.monotonic() + 15
    while True:
        with sqlite3.connect(page.history_path) as conn:
            rows = conn.execute("SELECT prompt, resolution, duration, take, rating FROM runs "
                                "WHERE rating IS NOT NULL").fetchall()
        if rows or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    assert rows == [(PROMPTS[0], "480p", 1.0, 2, 4)], rows


def test_the_measures_picker_changes_every_footer(takes_page):
    page, _ = takes_page
    grid = page.locator(GRID).first
    grid.scroll_into_view_if_needed()
    grid.locator(".grok-vpick > summary").click()
    grid.locator(".grok-vpick-item", has_text="contrast").locator("input").check()
    grid.locator(".grok-vpick-item", has_text="brightness").locator("input").uncheck()
    names = page.evaluate(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vtile')]"
                              ".map(t => [...t.querySelectorAll('.grok-vmetric')].map(c => c.dataset.metric).join(','))"))
    assert names == ["m_motion,m_contrast"] * 12, names
    listed = page.evaluate(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vpick-item')]"
                               ".map(i => i.textContent.trim())"))
    assert listed[:3] == ["motion", "brightness", "contrast"] and "cuts" in listed, listed  # what the takes have
    grid.screenshot(path=str(ARTIFACTS / "takes_picker.png"))
    grid.locator(".grok-vpick > summary").click()


def test_the_table_gives_each_cell_s_mean_and_spread(takes_page):
    page, _ = takes_page
    table = page.evaluate(_nb("""() => {
      const t = [...NB.querySelectorAll('.grok-table-wrap table.grok-table')].pop();
      const heads = [...t.querySelectorAll('thead th')].map(h => h.textContent.trim());
      return {heads, rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')]
                                                                     .map(d => d.textContent.trim()))};
    }"""))
    heads, rows = table["heads"], table["rows"]
    assert len(rows) == 12, rows
    for name in ("prompt", "resolution", "duration", "takes", "done", "status", "cost_usd", "latency_s", "m_motion",
                 "m_brightness", "m_cuts"):
        assert name in heads, heads
    motion = heads.index("m_motion")
    assert all(re.fullmatch(r"[\d.]+ ± [\d.]+", r[motion]) for r in rows), [r[motion] for r in rows]
    assert all(r[heads.index("takes")] == "3" and r[heads.index("done")] == "3" for r in rows)
    cuts = heads.index("m_cuts")
    assert {r[cuts] for r in rows if "cut to" in r[0]} == {"1"} and {r[cuts] for r in rows if "cut to" not in r[0]} == {"0"}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_nothing_is_cut_at_900_and_1400_px_and_text_reads(takes_page, theme):
    page, _ = takes_page
    found: list[str] = []
    try:
        _theme(page, theme)
        for width in (900, 1400):
            _width(page, width)
            found += _measure(page, f"takes {theme} {width} px")
            page.locator(GRID).first.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            low = [r for r in page.evaluate(_nb(CONTRAST)) if r["ratio"] < 4.5]
            found += [f"takes {theme} {width} px: contrast {r['ratio']:.2f} for {r['text']!r} ({r['cls']})" for r in low]
            _shot(page, f"takes_{theme}_{width}.png")
            _screenshot(page, ARTIFACTS / f"takes_{theme}_{width}_whole.png")
    finally:
        _theme(page, "light")
        page.set_viewport_size({"width": 1400, "height": 1000})
    assert not found, "\n".join(found[:40])
