"""Error bodies in every shape, the status mapping, lenient poll parsing, key redaction."""

import pytest

from grok_nb import errors
from grok_nb.api.responses import parse_job_status

KEY = "xai-abcdefghijklmnop1234"


@pytest.mark.parametrize("body,code,message", [
    ({"code": "invalid-argument", "error": "Prompt cannot be empty."}, "invalid-argument", "Prompt cannot be empty."),
    ({"code": "Client specified an invalid argument", "error": "Incorrect API key provided: xai-ab***234"},
     "Client specified an invalid argument", "Incorrect API key provided: xai-***"),
    ({"error": {"message": "slow down", "code": "rate_limited"}}, "rate_limited", "slow down"),
    ("<html>Bad gateway</html>", None, "<html>Bad gateway</html>"),
    (None, None, "no error message in the answer"),
])
def test_all_error_body_shapes(body, code, message):
    got_code, got_message = errors.parse_error_body(body)
    assert got_code == code
    assert errors.redact(got_message) == message


@pytest.mark.parametrize("status,cls", [
    (400, errors.BadRequestError), (401, errors.AuthenticationError), (403, errors.PermissionDeniedError),
    (404, errors.NotFoundError), (415, errors.BadRequestError), (422, errors.BadRequestError),
    (429, errors.RateLimitError), (500, errors.ServerError), (503, errors.ServerError), (418, errors.APIError),
])
def test_status_mapping_in_one_place(status, cls):
    err = errors.error_from_response(status, {"code": "x", "error": "m"}, request_id="rid-1")
    assert type(err) is cls and err.request_id == "rid-1" and "rid-1" in str(err)


def test_wrong_key_is_an_auth_error_and_never_shows_the_key():
    err = errors.error_from_response(400, {"error": f"Incorrect API key provided: {KEY}"}, secret=KEY)
    assert isinstance(err, errors.AuthenticationError)
    assert KEY not in str(err) and "XAI_API_KEY" in str(err)


def test_rate_limit_tells_money_from_speed():
    broke = errors.error_from_response(429, {"error": "Your team has run out of credits"})
    busy = errors.error_from_response(429, {"error": "Too many requests"}, headers={"retry-after": "2"})
    assert broke.out_of_credits and "credits" in str(broke)
    assert not busy.out_of_credits and busy.retry_after == 2.0 and "rate_limit" in str(busy)


def test_retry_after_as_http_date():
    assert errors.parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert errors.parse_retry_after("nonsense") is None


def test_validation_error_is_a_value_error_naming_field_value_allowed():
    err = errors.ValidationError("duration", 99, "whole seconds from 1 to 15")
    assert isinstance(err, ValueError) and str(err) == "duration=99 is not allowed: whole seconds from 1 to 15"


def test_job_errors_carry_the_request_id():
    for err in (errors.JobFailedError("internal_error", "boom", request_id="r1"),
                errors.JobExpiredError(request_id="r1"), errors.ModeratedError(request_id="r1"),
                errors.DeadlineExceeded(12, request_id="r1")):
        assert err.request_id == "r1" and "r1" in str(err)
    assert isinstance(errors.DeadlineExceeded(1, request_id="r"), TimeoutError)
    assert "try again later" in str(errors.JobFailedError("service_unavailable", "busy", request_id="r"))


def test_lenient_poll_parsing():
    s = parse_job_status({"status": "done", "video": {"url": "https://v/x.mp4", "duration": "6"},
                          "usage": {"cost_in_usd_ticks": 3_000_000_000}, "new_field": [1]})
    assert (s.status, s.progress, s.url, s.duration, s.cost_usd, s.moderated) == ("done", 100, "https://v/x.mp4", 6.0, 0.3, False)
    moderated = parse_job_status({"status": "done", "video": {"url": "", "respect_moderation": False}})
    assert moderated.moderated and moderated.url is None and moderated.outcome == "moderated"
    failed = parse_job_status({"status": "failed", "progress": 0, "model": "", "video": {}, "error": {"code": "invalid_argument", "message": "Prompt cannot be empty."}})
    assert failed.outcome == "failed" and failed.error_code == "invalid_argument"
    weird = parse_job_status(["not", "a", "dict"])
    assert weird.status == "pending" and weird.progress is None
    assert parse_job_status({"status": "PROCESSING", "progress": "42"}).progress == 42
