"""Answers the live service sends beyond the spec, each understood (pure)."""

import pytest

from grok_nb import NoVideoError
from grok_nb.api.responses import parse_job_status, parse_poll_error
from grok_nb.jobs.policy import PollPolicy, Stop, next_step

URL = "https://vidgen.x.ai/xai-video-1.mp4"


def test_a_video_url_without_status_is_done():
    s = parse_job_status({"video": {"url": URL, "duration": 6}, "model": "grok-imagine-video"})
    assert (s.status, s.outcome, s.url, s.progress, s.duration, s.model) == ("done", "done", URL, 100, 6.0,
                                                                          "grok-imagine-video")
    assert next_step(PollPolicy(), s, elapsed=1, polls=1, errors_in_a_row=0) == Stop("done")


def test_no_status_and_no_video_is_still_pending():
    assert parse_job_status({"model": "grok-imagine-video"}).outcome == "running"
    assert parse_job_status({"video": {"url": ""}}).outcome == "running"


@pytest.mark.parametrize("body,reason", [
    ({"status": "done", "video": {"duration": 6, "respect_moderation": True}}, "no video.url"),
    ({"status": "done", "video": {"url": ""}}, "empty"),
    ({"status": "done", "video": {"url": "   "}}, "empty"),
    ({"status": "done", "video": {"url": 42}}, "int, not a string"),
    ({"status": "done", "video": {"url": {"href": URL}}}, "dict, not a string"),
    ({"status": "done", "video": {"url": "s3://bucket/key.mp4"}}, "not an http(s) URL"),
    ({"status": "done"}, "no video.url"),
    ({"status": "done", "response": {"video": {"duration": 6}}}, "no video.url"),
])
def test_done_without_a_usable_url_is_a_terminal_outcome_that_explains(body, reason):
    s = parse_job_status(body)
    assert s.terminal and s.outcome == "no_video" and s.url is None and not s.moderated
    assert reason in s.no_video_reason and "no video URL" in s.message and "request id is kept" in s.message
    assert next_step(PollPolicy(), s, elapsed=1, polls=1, errors_in_a_row=0) == Stop("no_video")
    err = NoVideoError(s.no_video_reason, request_id="r-1")
    assert "r-1" in str(err) and reason in str(err)


def test_the_nested_response_shape_is_accepted_when_it_has_a_url():
    s = parse_job_status({"status": "done", "response": {"video": {"url": URL, "duration": 3}, "model": "m"},
                          "usage": {"cost_in_usd_ticks": 1_500_000_000}})
    assert (s.outcome, s.url, s.duration, s.model, s.cost_usd) == ("done", URL, 3.0, "m", 0.15)
    nested_all = parse_job_status({"response": {"status": "done", "video": {"url": URL}}})
    assert nested_all.outcome == "done" and nested_all.url == URL


def test_moderation_needs_respect_moderation_false():
    s = parse_job_status({"status": "done", "video": {"url": "", "respect_moderation": False},
                          "usage": {"cost_in_usd_ticks": 500_000_000}})
    assert s.outcome == "moderated" and s.cost_usd == 0.05 and "moderation" in s.message
    assert parse_job_status({"video": {"respect_moderation": False}}).outcome == "moderated"  # no status either


@pytest.mark.parametrize("body", ["", None, b"", "   "])
def test_an_empty_202_body_is_pending(body):
    s = parse_job_status(body)
    assert s.status == "pending" and s.outcome == "running" and s.progress is None


@pytest.mark.parametrize("progress", [float("nan"), float("inf"), "1e400", 10**400, [], "x"])
def test_odd_progress_values_never_crash(progress):
    assert parse_job_status({"status": "pending", "progress": progress}).progress in (None, 0, 100)


def test_odd_usage_values_never_crash():
    for ticks in (float("nan"), "1e400", True, [], 10**400):
        assert parse_job_status({"status": "done", "video": {"url": URL},
                                 "usage": {"cost_in_usd_ticks": ticks}}).cost_usd is None


def test_poll_time_400_moderation_is_the_moderated_outcome_with_its_cost():
    body = {"code": "Client specified an invalid argument", "error": "Generated video rejected by content moderation.",
            "usage": {"cost_in_usd_ticks": 2_000_000_000}}
    s = parse_poll_error(400, body)
    assert s is not None and s.outcome == "moderated" and s.terminal and s.cost_usd == pytest.approx(0.2)
    assert s.error_code == "Client specified an invalid argument" and "content moderation" in s.error_message
    nested = parse_poll_error(400, {"error": {"message": "Video rejected by moderation", "code": "invalid-argument"}})
    assert nested is not None and nested.outcome == "moderated" and nested.cost_usd is None


@pytest.mark.parametrize("status,body", [
    (400, {"code": "invalid-argument", "error": "Prompt cannot be empty."}),
    (404, {"code": "not-found", "error": "No video request with id x."}),
    (500, {"error": "moderation service down"}),  # a 5xx is the service's problem, not an outcome
    (400, "<html>bad gateway</html>"), (400, None), (200, {"error": "moderation"}),
])
def test_other_poll_errors_are_not_outcomes(status, body):
    assert parse_poll_error(status, body) is None


@pytest.mark.parametrize("message", ["Generated video rejected by content moderation.", "Blocked.", "", None,
                                     "Policy violation"])
def test_poll_time_400_with_the_moderation_code_is_moderated_whatever_the_wording(message):
    body = {"code": "imagine:content-moderated", "usage": {"cost_in_usd_ticks": 500_000_000}}
    if message is not None:
        body["error"] = message
    s = parse_poll_error(400, body)
    assert s is not None and s.outcome == "moderated" and s.terminal and s.cost_usd == pytest.approx(0.05)
    assert s.error_code == "imagine:content-moderated"
    assert next_step(PollPolicy(), s, elapsed=1, polls=1, errors_in_a_row=0) == Stop("moderated")  # never retried


def test_a_failed_job_whose_message_speaks_of_moderation_is_moderated():
    body = {"status": "failed", "progress": 0, "usage": {"cost_in_usd_ticks": 500_000_000},
            "error": {"code": "invalid_argument", "message": "Content blocked by moderation."}}
    s = parse_job_status(body)
    assert s.moderated and s.outcome == "moderated" and s.cost_usd == pytest.approx(0.05) and s.terminal
    assert next_step(PollPolicy(), s, elapsed=1, polls=1, errors_in_a_row=0) == Stop("moderated")
    # other failures stay failures: another code, or a message about something else
    for code, message in (("invalid_argument", "Prompt cannot be empty."),
                          ("internal_error", "moderation service crashed"),
                          ("invalid_argument", None)):
        other = parse_job_status({"status": "failed", "error": {"code": code, "message": message}})
        assert other.outcome == "failed" and not other.moderated
