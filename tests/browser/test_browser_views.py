"""What a person reads in JupyterLab + chromium, light and dark, 1500 and 900 px: the key status, a card's
words, the exchanges table, a grid waiting for confirmation, the A/B pickers, the cost plot; then the same
notebook saved as JupyterLab saves it and reopened without a kernel, and exported by nbconvert."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

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

NAME = "views_words.ipynb"
FOX = "A red fox trotting through fresh snow at dawn"
CELLS = [
    # Fast simulated jobs for the test: the studio's own embedded simulator at speed 300 (a separate
    # embedded(speed=300) beforehand is another server, full size and unused: the studio would run at 30).
    "import grok_nb\nstudio = grok_nb.Studio(budget_usd=20.00, simulator_speed=300)",
    f"card = studio.generate({FOX!r}, duration=1)\nrun = card.result()",
    "studio.status()",
    "studio.exchanges(run)",
    "waiting = studio.compare(prompt=['A', 'B', 'C'], resolution=['480p', '720p'], duration=[6, 8])",
    f"ab = studio.compare(prompt={FOX!r}, resolution=['480p', '720p'], duration=1)",
    "ab.wait();",
    "studio.plot_cost()",
]
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
OUTPUT = _nb("""(i) => {
  const cell = [...NB.querySelectorAll('.jp-CodeCell')][i];
  return cell ? cell.querySelector('.jp-Cell-outputWrapper') : null;
}""")


def _cell_text(page, i: int) -> str:
    return page.evaluate(f"() => ({OUTPUT})({i}).innerText")


def _shoot(page, i: int, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator(f"{PANEL} .jp-CodeCell").nth(i).locator(".jp-Cell-outputWrapper").screenshot(
        path=str(ARTIFACTS / name))


@pytest.fixture(scope="module")
def ran(lab, browser):  # noqa: F811
    """The notebook, run in JupyterLab, then saved by JupyterLab (no widget state, as by default)."""
    base, token = lab
    quiet_news(base, token)
    upload(base, token, NAME, notebook_json(CELLS))
    page, errors = open_notebook(browser, base, token, NAME, workspace="views")
    run_all(page)
    page.wait_for_function(_nb("() => [...NB.querySelectorAll('.grok-vgrid')][1]?.querySelectorAll("
                               "'.grok-vtile video.grok-vvideo[src]').length === 2"), timeout=60_000)
    yield page, errors
    page.close()


def test_words_read_right_in_light_and_dark_at_two_widths(ran):
    page, errors = ran
    status = _cell_text(page, 2)
    assert "own embedded simulator" in status and "0 other processes" not in status, status
    card = _cell_text(page, 1)
    assert re.search(r"\b\d+ polls?\b", card) and not re.search(r"\b1 polls\b", card), card
    # The exchanges: one line per row (no wrapped timestamps), times to the millisecond, HTTP codes.
    rows = page.evaluate(f"() => [...({OUTPUT})(3).querySelectorAll('table.grok-table tbody tr')]"
                         ".map(r => ({h: r.getBoundingClientRect().height, t: r.innerText}))")
    assert len(rows) >= 3 and all(r["h"] < 26 for r in rows), rows
    assert re.search(r"\d\d:\d\d:\d\d\.\d{3}", rows[0]["t"]) and "POST" in rows[0]["t"] and " ms" in rows[0]["t"]
    # A grid that waits for confirmation offers no playback yet; the finished one does.
    hidden = page.evaluate(f"""() => {{
      const g = ({OUTPUT})(4).querySelector('.grok-vgrid');
      return ['.grok-play-all', '.grok-loop', '.grok-mute'].map(s => g.querySelector(s).offsetParent === null);
    }}""")
    assert hidden == [True, True, True]
    assert "waiting for confirmation" in _cell_text(page, 4) and "Run" in _cell_text(page, 4)
    assert page.evaluate(f"() => ({OUTPUT})(5).querySelector('.grok-play-all').offsetParent !== null")
    # The A/B pickers name what differs first.
    page.locator(f"{PANEL} .jp-CodeCell").nth(5).get_by_role("button", name="A/B").click()
    picks = page.evaluate(f"() => [...({OUTPUT})(5).querySelectorAll('.grok-vab select')].slice(0, 2)"
                          ".map(s => [...s.options].map(o => o.text))")
    assert picks[0] == ["480p", "720p"] and picks[1] == ["480p", "720p"], picks
    plot = page.evaluate(f"() => {{ const i = ({OUTPUT})(7).querySelector('img'); return i && i.naturalWidth; }}")
    assert plot and plot > 300
    for theme in ("JupyterLab Light", "JupyterLab Dark"):
        page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
        page.wait_for_timeout(1500)
        tag = "dark" if "Dark" in theme else "light"
        for width in (1500, 900):
            page.set_viewport_size({"width": width, "height": 1100})
            page.wait_for_timeout(500)
            for i, what in ((1, "card"), (2, "status"), (3, "exchanges"), (4, "confirm_grid"), (5, "ab_grid"),
                            (7, "cost_plot")):
                _shoot(page, i, f"views_{what}_{tag}_{width}.png")
    page.evaluate("window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    page.set_viewport_size({"width": 1500, "height": 1100})
    assert not errors, errors


def _save_and_stop(page, base: str, token: str) -> None:
    page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(_nb("() => !window.jupyterapp.shell.currentWidget.context.model.dirty"), timeout=30_000)
    for kernel in httpx.get(f"{base}/api/kernels", params={"token": token}, timeout=30).json():
        httpx.delete(f"{base}/api/kernels/{kernel['id']}", params={"token": token}, timeout=30)


@pytest.fixture(scope="module")
def saved(lab, ran):  # noqa: F811
    """The notebook as JupyterLab saved it, its kernel (and so its simulator and media server) gone."""
    base, token = lab
    page, _ = ran
    _save_and_stop(page, base, token)
    got = httpx.get(f"{base}/api/contents/{NAME}", params={"token": token, "content": 1}, timeout=30).json()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "views_saved.ipynb").write_text(json.dumps(got["content"]))  # for a look
    return got["content"]


def test_saved_notebook_reopened_without_a_kernel_shows_every_result(lab, browser, saved):  # noqa: F811
    base, token = lab
    assert "widgets" not in saved["metadata"] or not saved["metadata"]["widgets"]  # as JupyterLab saves by default
    statics = [o["data"]["text/html"] for c in saved["cells"] for o in c.get("outputs", [])
               if "grok-static" in o.get("data", {}).get("text/html", "")]
    assert len(statics) == 3 and not [h for h in statics if "127.0.0.1" in h]  # no link to the kernel's servers
    players = [p for h in statics for p in re.findall(r"<video class=\"grok-static-video\".*?</video>", h)]
    sources = [re.findall(r'<source src="([^"]+)"', p)[0] for p in players]  # the first one each tries
    assert len(sources) == 3 and all(src.startswith("grok_nb_videos/") for src in sources), sources  # beside it
    for theme in ("JupyterLab Light", "JupyterLab Dark"):
        for width in (1500, 900):
            page = browser.new_page(viewport={"width": width, "height": 1100})
            page.goto(f"{base}/lab/workspaces/views-saved-{width}/tree/{NAME}?reset&token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.evaluate(f"window.jupyterapp.commands.execute('apputils:change-theme', {{theme: '{theme}'}})")
            page.wait_for_function(_nb("() => NB.querySelectorAll('.grok-static-tile').length >= 4"), timeout=60_000)
            # The widget manager gives up on each model (card, confirm bar, two grids): "model not found".
            page.wait_for_function(_nb("() => NB.querySelectorAll('.jp-OutputArea-output.jupyter-widgets')"
                                       ".length >= 4"), timeout=60_000)
            time.sleep(0.5)
            shown = page.evaluate(_nb("() => NB.innerText"))
            if "Error displaying widget" in shown:  # say where, with the markup around it
                print(theme, width, page.evaluate(_nb("() => [...NB.querySelectorAll('.jp-OutputArea')].filter(a => "
                                                      "a.innerText.includes('Error displaying')).map(a => a.outerHTML"
                                                      ".replace(/data:image[^\"]*/g, 'DATA').slice(0, 3000))")))
            assert "Error displaying widget" not in shown, (theme, width)
            assert "<grok_nb" not in shown
            # Every static video: its poster now, and it plays from the cache, served beside the notebook.
            page.wait_for_function(_nb("() => [...NB.querySelectorAll('video.grok-static-video')]"
                                       ".every(v => v.readyState >= 1 && v.duration > 0)"), timeout=30_000)
            videos = page.evaluate(_nb("""() => [...NB.querySelectorAll('video.grok-static-video')].map(v => ({
              resolved: v.currentSrc, poster: (v.poster || '').slice(0, 23)}))"""))
            assert len(videos) == 3, videos  # the card and the two tiles of the A/B grid
            for v in videos:  # JupyterLab serves the copy beside the notebook from its own server
                assert v["poster"] == "data:image/jpeg;base64," and f"{base}/files/grok_nb_videos/" in v["resolved"], v
            tag = "dark" if "Dark" in theme else "light"
            page.screenshot(path=str(ARTIFACTS / f"views_saved_{tag}_{width}.png"), full_page=True)
            page.close()


def test_saved_notebook_as_nbconvert_html(browser, saved, tmp_path):  # noqa: F811
    path = tmp_path / NAME
    path.write_text(json.dumps(saved))
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", str(path)], check=True,
                   capture_output=True, timeout=120)
    html = path.with_suffix(".html").read_text()
    assert html.count("<video") >= 3 and "&lt;grok_nb" not in html and "Error displaying" not in html
    page = browser.new_page(viewport={"width": 1500, "height": 1100})
    page.goto(path.with_suffix(".html").as_uri())
    page.wait_for_load_state("load")
    posters = page.evaluate("() => [...document.querySelectorAll('video.grok-static-video')].filter(v => "
                            "v.poster.startsWith('data:image/jpeg') && v.getBoundingClientRect().width > 100).length")
    assert posters == 3
    page.screenshot(path=str(ARTIFACTS / "views_nbconvert.png"), full_page=True)
    page.close()
