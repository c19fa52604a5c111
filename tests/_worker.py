"""A grok_nb process for the multi-process tests: ``python -m tests._worker MODE BASE_URL KEY N PROMPT``.

It uses GROK_NB_HOME from its environment and prints one line per event the test waits for.
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    mode, base_url, key, n, prompt = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    from grok_nb import Client
    from grok_nb.jobs.policy import PollPolicy

    policy = PollPolicy(interval=0.02, max_interval=0.05, retry_base=0.02, retry_max=0.2, deadline=120.0)
    client = Client(api_key=key, base_url=base_url, policy=policy, rate_limit=300.0)
    if mode == "submit-then-hang":  # prints each request id once known, then waits to be killed
        handles = [client.generate(f"{prompt} {i}", duration=1, wait=False) for i in range(n)]
        for h in handles:
            while h.request_id is None:
                time.sleep(0.005)
            print(f"id {h.request_id}", flush=True)
        print("ready", flush=True)
        time.sleep(3600)
    elif mode == "submit-slow":  # the server is slow to answer the submits; the test kills us meanwhile
        for i in range(n):
            client.generate(f"{prompt} {i}", duration=1, wait=False)
        print("sent", flush=True)
        time.sleep(3600)
    elif mode == "wait-one":  # blocks on one job; the test interrupts us with SIGINT
        print("waiting", flush=True)
        client.generate(prompt, duration=1)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
