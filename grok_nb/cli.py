"""The ``grok-nb`` command: serve the simulator, show the history, run the demo, resume a job."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Simulator switches for answers seen from the live service beyond the spec.
_LIVE_VARIANTS = ("moderation_as_http_400", "moderation_as_failed", "done_without_status", "done_without_url",
                  "nested_response", "pending_empty_body")


def _simulator(args: argparse.Namespace) -> int:
    from .simulator import SimulatorConfig, serve

    config = SimulatorConfig(speed=args.speed, api_key=args.api_key, fail_rate=args.fail_rate,
                             moderation_rate=args.moderation_rate, pending_status=args.pending_status,
                             pending_http_status=args.pending_http_status, omit_progress=args.omit_progress,
                             error_shape=args.error_shape, retry_after_header=not args.no_retry_after,
                             enforce_rate_limit=not args.no_rate_limit,
                             **{name: getattr(args, name) for name in _LIVE_VARIANTS})
    serve(args.host, args.port, config)
    return 0


def _history(args: argparse.Namespace) -> int:
    import pandas as pd

    from .history.store import HistoryError, history_location, open_store

    if args.repair:
        from .history.repair import repair

        where = history_location(args.home)
        if not isinstance(where, Path):
            print("--repair mends the SQLite history file; GROK_NB_HISTORY_URL points at a PostgreSQL server, "
                  "whose own tools (pg_dump, psql) are the way to check it.", file=sys.stderr)
            return 1
        print(repair(where))
        return 0
    try:
        df = open_store(args.home).dataframe()
    except HistoryError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.limit:
        df = df.tail(args.limit)
    if args.csv:
        out = sys.stdout if args.csv == "-" else args.csv
        df.to_csv(out, index=False)
        if args.csv != "-":
            print(f"{len(df)} runs written to {args.csv}")
        return 0
    if df.empty:
        print("No runs yet. Try: grok-nb demo")
        return 0
    view = df[["created_at", "kind", "status", "resolution", "video_duration", "cost_actual_usd",
               "cost_estimated_usd", "latency_s", "request_id", "prompt"]].copy()
    view["prompt"] = view["prompt"].str.slice(0, 40)
    view["created_at"] = view["created_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(view.to_string(index=False))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .client import Client
    from .demo import run_demo

    client = Client(simulator_speed=args.speed) if args.speed else Client()
    df = run_demo(client)
    return 0 if (df["status"] == "done").all() else 1


def _get(args: argparse.Namespace) -> int:
    from .client import Client

    run = Client().get(args.request_id)
    print(run.summary())
    print(run.path or run.error)
    return 0 if run.ok else 1


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``grok-nb`` console script."""
    parser = argparse.ArgumentParser(prog="grok-nb", description="xAI's Grok Imagine video API from Jupyter.")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulator", help="serve the simulator of the xAI video API")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8000)
    sim.add_argument("--speed", type=float, default=30.0, help="time factor for latencies, rate limit, URL lifetime")
    sim.add_argument("--api-key", default=None, help="accept only this key (default: any non-empty key)")
    sim.add_argument("--fail-rate", type=float, default=0.0)
    sim.add_argument("--moderation-rate", type=float, default=0.0)
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
    hist.add_argument("--limit", type=int, default=0, help="only the last N runs")
    hist.add_argument("--home", default=None, help="grok_nb's data folder (default: GROK_NB_HOME or user data dir)")
    hist.add_argument("--repair", action="store_true",
                      help="keep a copy of a damaged history file, start a fresh one with every run that can be read")
    hist.set_defaults(func=_history)

    demo = sub.add_parser("demo", help="run a small experiment on the simulator")
    demo.add_argument("--speed", type=float, default=None, help="simulator time factor (default 30)")
    demo.set_defaults(func=_demo)

    get = sub.add_parser("get", help="re-attach to a job by request id and download its video")
    get.add_argument("request_id")
    get.set_defaults(func=_get)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
