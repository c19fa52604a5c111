"""JupyterLab in Debian's chromium (Playwright): run the notebooks, then check what a person would see."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
                                                      reason="Debian's chromium is not installed (scripts/test.sh installs it)")]
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-quic", "--autoplay-policy=user-gesture-required"]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    for name in ("01_quickstart.ipynb", "02_compare_prompts.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root / name)
    settings = root / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # Render every cell, not just those near the viewport, so all widgets exist in the DOM.
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_hex(16)
    log = open(root / "lab.log", "w")
    env = {**os.environ, "GROK_NB_HOME": str(root / "home")}
    env.pop("XAI_API_KEY", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
         "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--allow-root", f"--LabApp.user_settings_dir={root / 'settings'}",
         f"--LabApp.workspaces_dir={root / 'workspaces'}"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{base}/api/status", params={"token": token}, timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
        time.sleep(0.5)
    yield base, token
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!k && k.status === 'idle';
}"""
# Every query is scoped to the notebook in front: JupyterLab restores other open tabs into the page.
NB = "window.jupyterapp.shell.currentWidget.node"
ALL_RAN = """() => {
  const prompts = [...NB.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  return prompts.length > 0 && prompts.every(t => /\\[\\d+\\]/.test(t));
}"""
BARS = """() => [...NB.querySelectorAll('.grok-progress')].map(el => {
  const bar = el.querySelector('.progress-bar');
  return {cls: bar ? bar.className : '', width: bar ? bar.style.width : ''};
})"""
VIDEOS = """() => [...NB.querySelectorAll('video.grok-video')].map(v => ({
  ready: v.readyState, duration: v.duration, width: v.videoWidth,
  expectedDuration: parseFloat(v.dataset.expectedDuration), expectedWidth: parseInt(v.dataset.expectedWidth)}))"""


def _nb(js: str) -> str:
    return js.replace("NB", NB)


def notebook_json(cells: list[str]) -> dict:
    """A notebook of these code cells on the python3 kernel, as JSON for Jupyter's contents API."""
    import nbformat  # not at the top: its jsonschema takes 3 s to import, in every worker
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook(cells=[new_code_cell(c) for c in cells], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    return json.loads(nbformat.writes(nb))


def upload(base: str, token: str, name: str, content: dict) -> None:
    """Put a notebook into the lab's folder through Jupyter's contents API."""
    httpx.put(f"{base}/api/contents/{name}", params={"token": token}, timeout=30,
              json={"type": "notebook", "format": "json", "content": content}).raise_for_status()


def quiet_news(base: str, token: str) -> None:
    """No "get notified about Jupyter news?" toast over the screenshots."""
    httpx.put(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification", params={"token": token},
              json={"raw": json.dumps({"fetchNews": "false"})}, timeout=30).raise_for_status()


def open_notebook(browser, base: str, token: str, name: str, *, width: int = 1500, height: int = 1100,
                  workspace: str | None = None):
    """A new page on the notebook, in a workspace of its own (reset: no tab restored from another test becomes the
    current one), once its cells show; ``(page, errors)``, the page's JavaScript errors collected as they come."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/lab/workspaces/{workspace or Path(name).stem}/tree/{name}?reset&token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    return page, errors


def run_all(page, done: str = ALL_RAN, idle_timeout: int = 240_000) -> None:
    """Run every cell once the kernel is idle, then wait until ``done`` (JavaScript over NB) holds and it is idle."""
    page.wait_for_function(KERNEL_IDLE, timeout=90_000)
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_function(_nb(done), timeout=240_000, polling=500)
    page.wait_for_function(KERNEL_IDLE, timeout=idle_timeout)


def _run_notebook(browser, base: str, token: str, name: str, players: int):
    page, errors = open_notebook(browser, base, token, name)
    run_all(page)
    page.wait_for_function(_nb(f"() => NB.querySelectorAll('video.grok-video').length >= {players}"),
                           timeout=120_000, polling=500)
    page.wait_for_function(_nb("() => [...NB.querySelectorAll('video.grok-video')].every(v => v.readyState >= 1)"),
                           timeout=60_000, polling=250)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{Path(name).stem}.png"), full_page=True)
    return page, errors


def test_quickstart_in_jupyterlab(lab, browser):
    base, token = lab
    page, errors = _run_notebook(browser, base, token, "01_quickstart.ipynb", players=4)
    content = page.content()
    assert "Error displaying widget" not in content
    bars = page.evaluate(_nb(BARS))
    assert len(bars) == 4 and all("progress-bar-success" in b["cls"] and b["width"] == "100%" for b in bars), bars
    videos = page.evaluate(_nb(VIDEOS))
    assert len(videos) == 4
    for v in videos:
        assert v["ready"] >= 1 and abs(v["duration"] - v["expectedDuration"]) < 0.1 and v["width"] == v["expectedWidth"], v
    assert not any(page.evaluate(_nb("() => [...NB.querySelectorAll('video.grok-video')].map(v => v.autoplay || v.loop)")))
    # Each card's static shadow (for saved notebooks) is there, and hidden while the live card shows.
    shadows = page.evaluate(_nb("() => [...NB.querySelectorAll('.grok-shadow')].map(s => s.offsetParent === null)"))
    assert len(shadows) == 4 and all(shadows), shadows
    page.close()


def test_comparison_grid_in_jupyterlab(lab, browser):
    base, token = lab
    page, errors = _run_notebook(browser, base, token, "02_compare_prompts.ipynb", players=0)
    page.wait_for_function(_nb("""() => {
      const g = NB.querySelector('.grok-vgrid');
      return !!g && g.querySelectorAll('.grok-vtile.grok-kind-done').length === 12
        && [...g.querySelectorAll('.grok-vtile video')].every(v => v.readyState >= 1);
    }"""), timeout=120_000, polling=500)
    assert "Error displaying widget" not in page.content()
    tiles = page.evaluate(_nb("() => [...NB.querySelector('.grok-vgrid').querySelectorAll('.grok-vtile video')]"
                              ".map(v => ({duration: v.duration, autoplay: v.autoplay, width: v.videoWidth}))"))
    assert len(tiles) == 12 and all(t["duration"] > 0 and t["width"] > 0 and not t["autoplay"] for t in tiles)
    summary = page.evaluate(_nb("() => NB.querySelector('.grok-vgrid .grok-vsummary').innerText"))
    assert summary.startswith("12 of 12 done") and "$" in summary
    # grid.wait()'s table, shown once below the grid: one row per cell
    assert page.evaluate(_nb("() => NB.querySelector('.grok-table-wrap table.grok-table').querySelectorAll('tbody tr').length")) == 12
    grid = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .grok-vgrid").first
    grid.scroll_into_view_if_needed()
    grid.screenshot(path=str(ARTIFACTS / "02_grid.png"))
    page.close()
