"""A judge model's rate-limit bucket: its own per key and model (xAI limits each model on its own), shared by every
process on the key like the video one, named without the key, and paused by its own 429s only."""

from __future__ import annotations

import re
import time

import pytest

from grok_nb.runtime.ratelimit import bucket_name, make_limiter

KEY = "xai-BUCKETtestKEY0123456789abcdef"


def test_a_bucket_name_is_stable_safe_and_never_the_key():
    names = {model: bucket_name(KEY, model) for model in ("grok-4.3", "grok-4.7", "grok_4.3", "GROK-4.3 ")}
    assert len(set(names.values())) == 4  # names that read alike once cleaned stay apart
    assert bucket_name(KEY, "grok-4.3") == names["grok-4.3"] != bucket_name(KEY + "x", "grok-4.3")
    for name in names.values():
        assert re.fullmatch(r"[a-z0-9_]+", name) and KEY not in name and "BUCKET" not in name
        assert len("grok_nb_" + name) <= 63  # a PostgreSQL table name
    assert bucket_name(KEY) == bucket_name(KEY, None) and "grok_4_3" in names["grok-4.3"]


def _paused(limiter) -> float:
    return limiter._state.paused_until() - time.time()


def test_a_judge_bucket_is_shared_by_the_key_apart_from_the_videos(tmp_path):
    # shared_url="" means the default: the SQLite file under the home, as every process on the machine uses it
    video = make_limiter(KEY, 5.0, tmp_path, shared_url="")
    judge = make_limiter(KEY, 5.0, tmp_path, shared_url="", bucket="grok-4.3")
    same = make_limiter(KEY, 5.0, tmp_path, shared_url="", bucket="grok-4.3")  # another process's, say
    other = make_limiter(KEY, 5.0, tmp_path, shared_url="", bucket="grok-4.7")
    try:
        assert len({video.where, judge.where, other.where}) == 3 and judge.where == same.where
        assert all(KEY not in lim.where for lim in (video, judge, other))
        judge.pause(30.0)  # a 429 on the judge model: every process's judge calls wait, no video does
        deadline = time.monotonic() + 5
        while _paused(same) <= 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _paused(same) > 25 and _paused(video) <= 0 and _paused(other) <= 0
    finally:
        for limiter in (video, judge, same, other):
            limiter.close()


def test_without_a_key_to_share_each_bucket_is_this_processs(tmp_path):
    limiter = make_limiter(None, 2.0, tmp_path, bucket="grok-4.3")
    assert limiter.status()["backend"] == "process" and limiter.rate == 2.0
    with pytest.raises(ValueError, match="positive"):
        make_limiter(KEY, 0, tmp_path, bucket="grok-4.3")
