"""The user's guide: it builds strictly, needs nothing from the network, and speaks to users (no issue numbers).

``scripts/test.sh`` builds the guide before the tests; the slow test here builds it the same way into a
temporary folder, so a broken docstring, link or anchor also fails a plain pytest run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
#: What users should never read: an issue's number, a session, a change log.
NOT_FOR_USERS = re.compile(r"\bissues? #?\d+|\bitem \d+ of\b|\b(this|last|next) session\b|\bwhat changed\b|"
                           r"\bchange ?log\b", re.IGNORECASE)


def test_the_pages_and_the_readme_speak_to_users() -> None:
    found = []
    for path in [ROOT / "README.md", *PAGES]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if NOT_FOR_USERS.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "issue numbers, sessions or change logs in the docs:\n" + "\n".join(found)


def test_the_readme_is_a_front_page_with_the_two_commands_first() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300, "the README is the front page; the guide in docs/ holds the rest"
    commands = [line.split("#")[0].strip() for line in text.split("```bash", 1)[1].split("```", 1)[0].splitlines()]
    assert [c for c in commands if c] == ["bash scripts/demo.sh", "bash scripts/test.sh"]


def test_the_checker_finds_an_issue_number() -> None:
    assert NOT_FOR_USERS.search("Goal (issue 14): every figure 0")
    assert NOT_FOR_USERS.search("as measured last session")
    assert not NOT_FOR_USERS.search("every issue of the service is retried")


@pytest.mark.slow
def test_the_guide_builds_strictly_with_nothing_fetched(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    for page in ("index.html", "getting-started/index.html", "reference/client/index.html", "benchmarks/index.html"):
        assert (site / page).is_file(), page
    # Offline: no stylesheet, script or font comes from elsewhere (links to other sites are fine).
    remote = re.compile(r"<(?:script|img)[^>]+src=\"https?://|<link[^>]+href=\"https?://[^\"]+\"[^>]*stylesheet|"
                        r"@import url\(\"?https?://|fonts\.googleapis")
    for html in site.rglob("*.html"):
        assert not remote.search(html.read_text()), f"{html.relative_to(site)} loads something from the network"
    # The API reference is generated from the docstrings, and the status table from the code.
    reference = (site / "reference/client/index.html").read_text()
    assert "start_many" in reference and "Re-attach every unfinished job" in reference
    safety = (site / "safety/index.html").read_text()
    assert "submit uncertain" in safety and "<code>SubmitUncertainError</code>" in safety
