"""The history browser sends a page, not the history: paged, sorted and filtered in SQL; `who` only for teams."""

from __future__ import annotations

from grok_nb.history.store import RunStore
from grok_nb.notebook import browser as B
from grok_nb.notebook.controller import Controller


def _store(tmp_path, n: int) -> RunStore:
    store = RunStore(tmp_path / "h.sqlite")
    store.apply([("insert", {"run_id": f"r{i:04d}", "backend": "simulator", "kind": "generate", "status": "done",
                             "prompt": f"{'fox' if i % 2 else 'boat'} {i}", "made_by": "ana",
                             "created_at": f"2026-03-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000000+00:00",
                             "latency_s": float(i % 97)}) for i in range(n)])
    return store


def test_the_list_holds_one_page_and_pages_turn_in_sql(tmp_path):
    store = _store(tmp_path, 250)
    feed = B.HistoryFeed(Controller(store), live=False)  # the view asks, the feed reads pages in SQL
    view = feed.view
    try:
        ids = [v for _, v in view.runs.options]
        assert len(ids) == B.PAGE_SIZE and ids[0] == "r0249"  # newest first
        assert "1–100 of 250 runs" in view.count.value and view.prev.disabled and not view.next.disabled
        view.next.click()
        assert [v for _, v in view.runs.options][0] == "r0149" and "101–200 of 250" in view.count.value
        view.next.click()
        assert len(view.runs.options) == 50 and view.next.disabled and not view.prev.disabled
        view.search.value = "fox"  # a filter starts at its first page
        assert "1–100 of 125 runs (of 250)" in view.count.value and view.runs.options[0][1] == "r0249"
        view.sort.value = "latency"
        assert [v for _, v in view.runs.options][0] == "r0193"  # 193 % 97 = 96, the slowest fox
        sent = sum(len(label) for label, _ in view.runs.options)
        assert sent < B.PAGE_SIZE * 200  # a page of one-line labels, whatever the history holds
        assert "r0001" not in view.static_html() or len(view.static_html()) < 60_000
    finally:
        view.close()


def test_who_made_a_run_shows_only_when_more_than_one_person_did(tmp_path):
    store = _store(tmp_path, 3)
    feed = B.HistoryFeed(Controller(store), live=False)
    view = feed.view
    try:
        assert "who" not in view.head.value
        store.insert(run_id="x", backend="simulator", kind="generate", status="done", prompt="theirs", made_by="bo")
        feed.refresh()
        assert "who" in view.head.value and "bo" in view.runs.options[0][0]
    finally:
        view.close()
