"""Issue 14, item 15: every error of the grok-nb command and of scripts/lab.sh is one line that says what to do,
with exit status 2 for a usage error (and never a traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from grok_nb.cli import main

ROOT = Path(__file__).resolve().parent.parent


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize("argv, says", [
    (["demo", "--speed", "-1"], "not a positive number"),
    (["demo", "--speed", "0"], "not a positive number"),  # was silently the default speed
    (["demo", "--speed", "fast"], "not a positive number"),
    (["demo", "--speed", "nan"], "not a positive number"),
    (["simulator", "--port", "99999"], "port number from 1 to 65535"),
    (["simulator", "--port", "-1"], "port number"),
    (["simulator", "--speed", "inf"], "not a positive number"),
    (["simulator", "--fail-rate", "2"], "share from 0 to 1"),
    (["history", "--limit", "-3"], "whole number"),
    ([], "required"),
    (["bogus"], "invalid choice"),
    (["get"], "request_id"),
])
def test_usage_errors_are_one_line_with_status_2(argv, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    line = one_line(err)
    assert says in line and "--help" in line


@pytest.mark.parametrize("argv", [["demo", "--bogus"], ["history", "--bogus", "x"], ["simulator", "--bogus"]])
def test_an_unknown_option_of_a_command_points_to_that_command_s_help(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = one_line(capsys.readouterr().err)
    assert f"grok-nb {argv[0]}: unrecognized arguments: {' '.join(argv[1:])}" in line, line
    assert f"See 'grok-nb {argv[0]} --help'" in line, line


def test_a_refused_value_is_a_usage_error(capsys):
    assert main(["get", ""]) == 2
    line = one_line(capsys.readouterr().err)
    assert line.startswith("grok-nb get: request_id=''") and "the id a submit returned" in line


def test_get_unknown_id_says_what_to_do(capsys):
    assert main(["get", "nonsense"]) == 1
    line = one_line(capsys.readouterr().err)
    assert "404" in line and "nonsense" in line and "grok-nb history" in line and "embedded simulator" in line


@pytest.mark.slow
def test_no_traceback_from_the_installed_command(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for argv, status in ((["get", "nonsense"], 1), (["demo", "--speed", "-1"], 2)):
        result = subprocess.run([sys.executable, "-m", "grok_nb.cli", *argv], env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == status, result.stderr
        one_line(result.stderr)


def test_simulator_on_a_taken_port_says_pick_another(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["simulator", "--port", str(port)]) == 1
    line = one_line(capsys.readouterr().err)
    assert f"cannot serve on 127.0.0.1:{port}" in line and "pick another --port" in line


def test_history_csv_to_an_unwritable_place(tmp_path, capsys):
    assert main(["history", "--csv", str(tmp_path / "no" / "such" / "dir" / "runs.csv")]) == 1
    line = one_line(capsys.readouterr().err)
    assert "cannot write" in line and "'-' for the screen" in line


@pytest.mark.parametrize("args", [["--port"], ["--port", ""], ["--port="], ["--port", "abc"], ["--port", "0"],
                                  ["--port", "70000"], ["--port", "-5"], ["--bogus"]])
def test_lab_sh_usage_errors(args):
    """Arguments are checked before any set-up or server starts (nothing here may launch JupyterLab)."""
    result = subprocess.run(["bash", str(ROOT / "scripts" / "lab.sh"), *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 2 and result.stdout == ""
    line = one_line(result.stderr)
    assert "unbound variable" not in line and "scripts/lab.sh" in line
