"""The ``grok-nb`` command: serve the simulator, show the history, run the demo, resume a job.

Every error is one line on stderr that says what to do: exit status 2 for a usage error (a bad
argument, caught before anything runs), 1 for a failure while running.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from .api.validation import check_request_id
from .demo import run_demo
from .errors import ConfigurationError, GrokError, ValidationError
from .history.repair import repair
from .history.store import HistoryError, history_location, open_store
from .jobs.results import Run
from .settings import redact_url
from .sync_client import Client

#: Exit statuses: a usage error (fix the command), a failure while running.
USAGE, FAILED = 2, 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line that says where to look, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message}. See '{self.prog} --help'.\n")


def _positive(text: str) -> float:
    """A time factor: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number (1 is real time, 30 is 30x faster)")
    return value


def _rate(text: str) -> float:
    """A share of jobs: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a share from 0 to 1 (0.1 is one job in ten)")
    return value


def _port(text: str) -> int:
    """A TCP port: 0 (any free one) to 65535."""
    if not text.strip().isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 1 to 65535 (0 picks a free one)")
    return int(text)


def _count(text: str) -> int:
    """A number of rows: 0 or more."""
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of runs, 0 or more (0: all of them)")
    return int(text)


def _one_line(text: object) -> str:
    return " ".join(str(text).split())

#: Simulator switches for answers seen from the live service beyond the spec.
_LIVE_VARIANTS = ("moderation_as_http_400", "moderation_as_failed", "done_without_status", "done_without_url",
                  "nested_response", "pending_empty_body")


def _simulator(args: argparse.Namespace) -> int:
    from .simulator import SimulatorConfig, serve  # the server side (starlette, uvicorn): only for this command

    config = SimulatorConfig(speed=args.speed, api_key=args.api_key, fail_rate=args.fail_rate,
                             moderation_rate=args.moderation_rate, pending_status=args.pending_status,
                             pending_http_status=args.pending_http_status, omit_progress=args.omit_progress,
                             error_shape=args.error_shape, retry_after_header=not args.no_retry_after,
                             enforce_rate_limit=not args.no_rate_limit,
                             **{name: getattr(args, name) for name in _LIVE_VARIANTS})
    try:
        serve(args.host, args.port, config)
    except OSError as exc:  # the port is taken, or the host is not this machine's
        print(f"grok-nb: cannot serve on {args.host}:{args.port} ({exc.strerror or exc}); pick another --port "
              "(0 picks a free one) or --host", file=sys.stderr)
        return FAILED
    return 0


def _history(args: argparse.Namespace) -> int:
    import pandas as pd  # heavy: only the history command prints tables

    from .notebook.tables import one_line  # loads pandas too: only for this command

    if args.repair:
        where = history_location(args.home)
        if not isinstance(where, Path):
            print("grok-nb: --repair mends the SQLite history file; GROK_NB_HISTORY_URL points at a PostgreSQL "
                  "server, whose own tools (pg_dump, psql) are the way to check it.", file=sys.stderr)
            return USAGE
        print(repair(where))
        return 0
    try:
        df = open_store(args.home).dataframe()
    except HistoryError as exc:
        print(f"grok-nb: {_one_line(exc)}", file=sys.stderr)
        return FAILED
    if args.limit:
        df = df.head(args.limit)  # the newest N: the history comes newest first
    if args.csv:
        out = sys.stdout if args.csv == "-" else args.csv
        try:
            df.to_csv(out, index=False)
        except OSError as exc:
            print(f"grok-nb: cannot write {args.csv} ({exc.strerror or exc}); give a path in a folder you can "
                  "write to, or '-' for the screen", file=sys.stderr)
            return FAILED
        if args.csv != "-":
            print(f"{len(df)} runs written to {args.csv}")
        return 0
    if df.empty:
        print("No runs yet. Try: grok-nb demo")
        return 0
    view = df[["created_at", "kind", "status", "resolution", "video_duration", "cost_actual_usd",
               "cost_estimated_usd", "latency_s", "request_id", "prompt"]].copy()
    view["prompt"] = [one_line(p, 40) if isinstance(p, str) else p for p in view["prompt"]]
    view["created_at"] = view["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(view.to_string(index=False))
    return 0


def _demo(args: argparse.Namespace) -> int:
    client = Client(simulator_speed=args.speed) if args.speed is not None else Client()
    df = run_demo(client)
    return 0 if (df["status"] == "done").all() else 1


def _get(args: argparse.Namespace) -> int:
    check_request_id(args.request_id)  # a malformed id is a usage error, found before any server starts
    with Client() as client:
        try:
            run = client.get(args.request_id)
        except ValidationError:
            raise
        except GrokError as exc:
            where = ("the embedded simulator, which knows only the jobs made while it runs"
                     if getattr(client._backend, "embedded", False) else redact_url(client.base_url))
            print(f"grok-nb get: {_one_line(exc)} (asked {where}; 'grok-nb history' lists the request ids of this "
                  "history)", file=sys.stderr)
            return FAILED
    assert isinstance(run, Run)  # wait=True: the finished run
    print(run.summary())
    print(run.path or run.error)
    return 0 if run.ok else FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grok-nb`` console script."""
    parser = _Parser(prog="grok-nb", description="xAI's Grok Imagine video API from Jupyter.")
    parser.add_argument("--traceback", action="store_true", help="on an unexpected error, show Python's traceback")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{simulator,history,demo,get}")

    sim = sub.add_parser("simulator", help="serve the simulator of the xAI video API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_port, default=8000, help="TCP port (0 picks a free one)")
    sim.add_argument("--speed", type=_positive, default=30.0,
                     help="time factor for latencies, rate limit, URL lifetime")
    sim.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    sim.add_argument("--fail-rate", type=_rate, default=0.0, help="share of jobs that fail (0 to 1)")
    sim.add_argument("--moderation-rate", type=_rate, default=0.0, help="share of jobs moderated (0 to 1)")
    sim.add_argument("--pending-status", default="pending", choices=["pending", "processing"])
    sim.add_argument("--pending-http-status", type=int, default=202, choices=[200, 202])
    sim.add_argument("--omit-progress", action="store_true")
    sim.add_argument("--error-shape", default="flat", choices=["flat", "legacy", "nested"])
    sim.add_argument("--no-retry-after", action="store_true", help="send 429s without a Retry-After header")
    sim.add_argument("--no-rate-limit", action="store_true")
    for name in _LIVE_VARIANTS:
        sim.add_argument("--" + name.replace("_", "-"), action="store_true", help="live-service answer variant")
    sim.set_defaults(func=_simulator)

    hist = sub.add_parser("history", help="print the run history")
    hist.add_argument("--csv", metavar="PATH", help="export as CSV to PATH ('-' for stdout)")
    hist.add_argument("--limit", type=_count, default=0, help="only the newest N runs")
    hist.add_argument("--home", default=None, help="grok_nb's data folder (default: GROK_NB_HOME or user data dir)")
    hist.add_argument("--repair", action="store_true",
                      help="keep a copy of a damaged history file, start a fresh one with every run that can be read")
    hist.set_defaults(func=_history)

    demo = sub.add_parser("demo", help="run a small experiment on the simulator")
    demo.add_argument("--speed", type=_positive, default=None, help="simulator time factor (default 30)")
    demo.set_defaults(func=_demo)

    get = sub.add_parser("get", help="re-attach to a job by request id and download its video")
    get.add_argument("request_id")
    get.set_defaults(func=_get)

    args, extra = parser.parse_known_args(argv)  # a usage error exits here, with status 2
    if extra:  # an option the command does not have: that command's help says which it has
        commands = {"simulator": sim, "history": hist, "demo": demo, "get": get}
        commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("grok-nb: stopped (Ctrl+C)", file=sys.stderr)
        return 130
    except (ValidationError, ConfigurationError) as exc:  # a value the command passed on was refused
        print(f"grok-nb {args.command}: {_one_line(exc)}", file=sys.stderr)
        return USAGE
    except GrokError as exc:
        print(f"grok-nb {args.command}: {_one_line(exc)}", file=sys.stderr)
        return FAILED
    except OSError as exc:
        print(f"grok-nb {args.command}: {_one_line(exc)}; check the path, the disk and the permissions, then run it "
              "again", file=sys.stderr)
        return FAILED
    except Exception as exc:
        if args.traceback:
            raise
        print(f"grok-nb {args.command}: unexpected {type(exc).__name__}: {_one_line(exc)}. This is a bug in "
              "grok_nb: run it again with 'grok-nb --traceback ...' and report what it prints", file=sys.stderr)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
