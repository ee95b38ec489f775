"""The runner's pure parts: the back-off, which failures are tried again, the event's JSON."""

from __future__ import annotations

import datetime as dt
import json
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tegkit.automation.plan import Setpoints
from tegkit.automation.runner import RESULTS, ActionEvent, RetryPolicy, describe, retry_after_s
from tegkit.errors import (
    AuthenticationError,
    ConnectionFailedError,
    GatewayBusyError,
    GatewayTimeoutError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    RequestBudgetExceededError,
    SystemStoppedError,
)
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.route import ChangeNotSeenError


@settings(max_examples=200, deadline=None)
@given(
    failed=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32),
    retry_after=st.none() | st.floats(min_value=0, max_value=3600),
)
def test_the_back_off_grows_is_capped_and_waits_out_a_retry_after(
    failed: int, seed: int, retry_after: float | None
) -> None:
    policy = RetryPolicy()
    delay = policy.delay_s(failed, random.Random(seed), retry_after)
    base = min(policy.max_delay_s, policy.first_delay_s * 2.0 ** (failed - 1))
    if retry_after is None:
        low, high = 1 - policy.jitter_ratio, 1 + policy.jitter_ratio
        assert base * low <= delay <= min(base * high, policy.max_delay_s)
    else:
        assert delay >= retry_after  # the gateway's word is waited out in full
        assert delay <= max(retry_after, policy.max_delay_s)


def test_a_retry_after_past_an_hour_is_taken_as_an_hour() -> None:
    assert RetryPolicy().delay_s(1, random.Random(0), 7200.0) == 3600.0


def test_what_is_tried_again() -> None:
    args = (0, "GET", "/api/operation")
    assert retry_after_s(RateLimitedError(429, "GET", "/x", retry_after_s=7.0)) == 7.0
    assert retry_after_s(RateLimitedError(429, "GET", "/x")) is None
    assert retry_after_s(RequestBudgetExceededError(12.0)) == 12.0
    for again in (
        GatewayBusyError(503, *args[1:]),
        SystemStoppedError(502, *args[1:]),
        GatewayTimeoutError("no answer"),
        ConnectionFailedError("refused"),
        TimeoutError(),
        ChangeNotSeenError("sent, not yet seen"),
    ):
        assert retry_after_s(again) is None, again
    for never in (
        AuthenticationError(401, *args[1:]),
        PermissionDeniedError(403, *args[1:]),
        InvalidInputError("backup_reserve_percent", "0 to 100", 140),
    ):
        assert retry_after_s(never) is False, never


def test_an_event_is_one_json_line_and_one_log_line() -> None:
    at = dt.datetime(2026, 3, 6, 15, 55, tzinfo=dt.UTC)
    points = Setpoints(mode=OperationMode.SELF_CONSUMPTION, backup_reserve_app_percent=5.0)
    event = ActionEvent(at, "peak on the battery", "done", "set it", points, at)
    fields = json.loads(json.dumps(event.fields()))
    assert fields == {
        "at_utc": "2026-03-06T15:55:00+00:00",
        "rule": "peak on the battery",
        "result": "done",
        "detail": "set it",
        "setpoints": {"mode": "self_consumption", "backup_reserve_app_percent": 5.0},
        "scheduled_at_utc": "2026-03-06T15:55:00+00:00",
        "attempt": 1,
    }
    assert event.line() == "2026-03-06T15:55:00Z 'peak on the battery': done: set it"
    assert "\n" not in event.line()
    assert set(RESULTS) == {
        "done",
        "skipped",
        "retry",
        "failed",
        "postponed",
        "dry_run",
        "refused",
        "missed",
    }


def test_settings_in_plain_words() -> None:
    assert describe(Setpoints()) == "nothing"
    words = describe(
        Setpoints(
            mode=OperationMode.BACKUP,
            backup_reserve_app_percent=100.0,
            grid_charging=False,
            export_rule=ExportRule.PV_ONLY,
            storm_watch=True,
        )
    )
    assert words == (
        "mode backup, reserve 100 %, grid charging off, export pv_only, storm watch on"
    )
