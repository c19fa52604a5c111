"""``studio.status()``: who shares the key's request budget right now, as text or a small HTML table."""

from __future__ import annotations

import html
import time
from typing import Any

from . import tables


class KeyStatus:
    """A snapshot of the key's shared budget: where it lives, this process and the others on the key."""

    def __init__(self, status: dict[str, Any], *, embedded: bool = False, speed: float = 1.0, budget: Any = None):
        self.embedded = embedded  # this process talks to its own embedded simulator (its key is its own)
        self.speed = speed  # the server's time factor: a simulator runs faster than the service
        self.budget = budget  # a BudgetSnapshot of the client's ledger (the money side), or None
        self.backend: str = status["backend"]
        self.where: str = status["where"]
        self.rate: float = status["rate"]
        self.message: str = status.get("message", "")
        self.paused_s: float = status.get("paused_s", 0.0)
        me = {**status.get("me", {}), "this": True}
        self.processes: list[dict[str, Any]] = [me] + [{**p, "this": False} for p in status.get("peers", [])]

    @property
    def others(self) -> int:
        """How many other live processes use the key."""
        return len(self.processes) - 1

    def _rows(self) -> list[tuple[str, ...]]:
        now = time.time()
        rows: list[tuple[str, ...]] = []
        for p in self.processes:
            seen = "now" if p["this"] else f"{max(0.0, now - p.get('last_seen', now)):.0f} s ago"
            rows.append((f"{p.get('pid', '?')}{' (this one)' if p['this'] else ''}", str(p.get("host", "?")),
                         str(p.get("jobs", 0)), str(p.get("waiting", 0)), seen))
        return rows

    def _headline(self) -> str:
        if self.speed != 1:  # say it in the service's seconds, as the notebooks do, then in real ones
            rate = (f"Request budget {self.rate / self.speed:.3g} requests per second of the service's time "
                    f"({self.rate:.3g} per real second: the simulator runs {self.speed:g}× faster)")
        else:
            rate = f"Request budget {self.rate:.3g} requests/s"
        if self.backend == "process" and self.embedded:
            line = (f"{rate}, kept in process: this notebook talks to its own embedded simulator, whose key no "
                    "other process has, so there is nothing to share. With a real key or a shared simulator, every "
                    "notebook on this machine draws from one budget.")
        elif self.backend == "process":
            line = (f"{rate}, kept in process (GROK_NB_SHARED_URL=local): other processes on this key keep "
                    "budgets of their own.")
        else:
            others = f"{self.others} other process{'es' if self.others != 1 else ''}"
            line = f"{rate}, shared through {self.backend} ({self.where}): {others} on this key."
        return line + (f" Now: {self.message}." if self.message else "")

    def _money(self) -> str:
        line = tables.ledger(self.budget)
        return f"Money: {line}." if line else ""

    def __repr__(self) -> str:
        head = ("process", "host", "jobs", "waiting", "last seen")
        rows = [head] + self._rows()
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        table = "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows)
        money = self._money()
        return f"{self._headline()}\n{money + chr(10) if money else ''}{table}"

    def _repr_html_(self) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in self._rows())
        money = f"<p class='grok-nb-money'>{html.escape(self._money())}</p>" if self._money() else ""
        return (f"<div class='grok-nb-status'><p>{html.escape(self._headline())}</p>{money}"
                "<div class='grok-table-wrap' style='overflow-x:auto;max-width:100%'><table><thead><tr><th>process</th>"
                f"<th>host</th><th>jobs</th><th>waiting</th><th>last seen</th></tr></thead><tbody>{cells}</tbody>"
                "</table></div></div>")
