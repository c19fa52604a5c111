"""Who runs, which process, safe URLs: the pure helpers shared by the history and the budget."""

import subprocess
import sys

import pytest

from grok_nb.history.owners import current_user, owner_alive, process_owner
from grok_nb.settings import key_fingerprint, redact_url


def test_redact_url_removes_only_the_password():
    assert redact_url("postgresql://ana:pw@db:5432/grok") == "postgresql://ana:***@db:5432/grok"
    assert redact_url("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("postgresql://ana@db/grok") == "postgresql://ana@db/grok"


def test_a_key_fingerprint_is_stable_short_and_not_the_key():
    key = "xai-SECRET0123456789"
    assert key_fingerprint(key) == key_fingerprint(key) != key_fingerprint(key + "x")
    assert "SECRET" not in key_fingerprint(key) and len(key_fingerprint(key)) == 24


def test_current_user(monkeypatch):
    monkeypatch.setenv("GROK_NB_USER", "  ana ")
    assert current_user() == "ana"
    monkeypatch.delenv("GROK_NB_USER")
    assert "@" in current_user()


@pytest.mark.slow
def test_owner_alive_tells_a_live_process_from_a_dead_one():
    me = process_owner()
    assert owner_alive(me) is True and owner_alive(None) is None and owner_alive("garbage") is None
    code = "from grok_nb.history.owners import process_owner; print(process_owner())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out != me and owner_alive(out) is False  # that process has ended
    host, pid, start = me.rsplit(":", 2)
    assert owner_alive(f"{host}:{pid}:{start}999") is False  # same pid, another start: a reused pid
    assert owner_alive(f"another-host:{pid}:{start}") is None


@pytest.mark.parametrize("raw", ["0", "2", "-1", "nan", "inf", "quarter"])
def test_a_bad_simulator_scale_names_the_variable_and_what_is_allowed(monkeypatch, raw):
    from grok_nb.errors import ConfigurationError
    from grok_nb.settings import simulator_render_scale

    monkeypatch.setenv("GROK_NB_SIMULATOR_SCALE", raw)
    with pytest.raises(ConfigurationError, match=r"GROK_NB_SIMULATOR_SCALE='.*' is not a scale: use a number from 0.05"):
        simulator_render_scale()


def test_the_simulator_scale_is_read_from_the_environment(monkeypatch):
    from grok_nb.settings import simulator_render_scale

    monkeypatch.delenv("GROK_NB_SIMULATOR_SCALE")
    assert simulator_render_scale() == 1.0
    monkeypatch.setenv("GROK_NB_SIMULATOR_SCALE", " 0.25 ")
    assert simulator_render_scale() == 0.25
