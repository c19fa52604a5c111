"""Packaging: the widget stack installs with grok_nb, the client alone never loads it, builds are quiet,
and scripts/lab.sh opens the notebooks in JupyterLab on loopback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
WIDGET_STACK = ("ipywidgets", "anywidget", "matplotlib", "ipykernel", "jinja2", "nest_asyncio2")

pytestmark = pytest.mark.slow  # wheel builds and fresh interpreters


def client_import() -> dict:
    """Import grok_nb and touch Client in a fresh interpreter: seconds taken and widget modules loaded."""
    code = ("import json, sys, time; t = time.perf_counter(); import grok_nb; grok_nb.Client; "
            "s = time.perf_counter() - t; "
            f"print(json.dumps({{'seconds': s, 'loaded': [m for m in {WIDGET_STACK!r} if m in sys.modules]}}))")
    env = {k: v for k, v in os.environ.items() if k not in ("XAI_API_KEY", "GROK_NB_BASE_URL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_client_imports_without_the_widget_stack():
    result = client_import()
    assert result["loaded"] == [], f"importing the client loaded {result['loaded']}"


#: What neither ``import grok_nb`` nor creating a client may load (issue 13): the notebook side and the media stack.
HEAVY = ("ipywidgets", "IPython", "matplotlib", "pandas", "av", "PIL", "anywidget")


@pytest.mark.parametrize("make", ["grok_nb.Client(api_key='k', base_url='http://127.0.0.1:9')", "grok_nb.Client()"],
                         ids=["given-server", "embedded-simulator"])
def test_creating_a_client_loads_neither_widgets_nor_pandas_nor_media_libraries(make):
    code = (f"import json, sys, grok_nb; c = {make}; c.close(); "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {k: v for k, v in os.environ.items() if k not in ("XAI_API_KEY", "GROK_NB_BASE_URL")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env, cwd=ROOT)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_widget_stack_is_a_main_dependency_with_lower_bounds():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = {re.split(r"[<>=!~ \[;]", d, maxsplit=1)[0].lower(): d for d in project["project"]["dependencies"]}
    for name in ("ipywidgets", "anywidget", "matplotlib", "jinja2", "nest-asyncio2", "ipykernel", "ipython"):
        assert name in deps and ">=" in deps[name], name
    assert project["project"]["optional-dependencies"]["notebook"] == []  # an alias kept for old commands
    assert project["project"]["license"] == "MIT"  # an SPDX string, not the deprecated table
    setuptools = next(r for r in project["build-system"]["requires"] if r.startswith("setuptools"))
    assert int(re.search(r">=(\d+)", setuptools).group(1)) >= 77  # the first to take an SPDX license string


def test_building_prints_no_warnings(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    # This machine's pip configuration names package folders that do not exist; those lines are not the build's.
    lines = [line for line in (out.stdout + out.stderr).splitlines()
             if line.strip() and not line.startswith("WARNING: Location")]
    assert lines == []
    assert list(tmp_path.glob("grok_nb-*.whl"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lab_script_serves_the_notebooks_on_loopback():
    port = _free_port()
    env = {**os.environ, "XAI_API_KEY": "must-not-reach-the-kernel"}
    proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "lab.sh"), "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            match = re.search(r"(http://127\.0\.0\.1:(\d+)/lab\S*\?token=(\w+))", line)
            if match:
                url, token = match.group(1), match.group(3)
        assert url is not None and f":{port}/" in url, "lab.sh printed no URL"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", params={"token": token}) as http:
            while True:
                try:
                    if http.get("/api/status").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and proc.poll() is None, "JupyterLab did not start"
                time.sleep(0.5)
            names = {item["name"] for item in http.get("/api/contents").json()["content"]}
            assert {"01_quickstart.ipynb", "02_compare_prompts.ipynb", "03_how_the_api_works.ipynb"} <= names
            assert http.get("/lab/tree/01_quickstart.ipynb").status_code == 200
            assert httpx.get(f"http://127.0.0.1:{port}/api/contents").status_code == 403  # a token is needed
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
