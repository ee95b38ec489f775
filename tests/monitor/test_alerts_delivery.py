"""Webhook delivery against a real aiohttp receiver on 127.0.0.1 that checks each signature:
retries (503, 429 with Retry-After, a dropped connection, a timeout), deduplication,
giving up, redirects not followed, a full queue and the grace at shutdown."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from webhook_receiver import SECRET, Receiver, webhook_receiver

from tegkit.monitor.alert_delivery import WebhookSender, retry_after_s, sign
from tegkit.monitor.alerts import Alert, Webhook, alert_json


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with webhook_receiver() as rec:
        yield rec


class Waits:
    """The sender's back-off: records each wait asked for and yields without waiting."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)
        await asyncio.sleep(0)


def body_of(alert_id: str = "a1", state: str = "open") -> bytes:
    alert = Alert(id=alert_id, kind="grid_outage", gateway="smith-home", since_s=1.75e9, detail="x")
    alert.state = state  # type: ignore[assignment]
    return json.dumps(alert_json(alert, "test")).encode()


def sender(**kw: Any) -> tuple[WebhookSender, Waits]:
    waits = Waits()
    kw.setdefault("backoff_s", (1.0, 8.0))
    kw.setdefault("rng", random.Random(7))
    return WebhookSender(sleep=waits, **kw), waits


def hook_for(rec: Receiver, name: str = "ops") -> Webhook:
    return Webhook(name, rec.url, SECRET)


async def test_the_signature_verifies_and_the_payload_is_complete(receiver: Receiver) -> None:
    send, waits = sender()
    await send.start()
    try:
        assert send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    (got,) = receiver.got
    assert got["valid"]
    assert got["delivery"] == got["idempotency"] == "a1:open"
    assert set(got["body"]) == {
        "id", "kind", "gateway", "labels", "state", "since", "resolved_at", "detail", "monitor"
    }  # fmt: skip
    assert send.counters.delivered_total == 1 and waits.asked == []


async def test_a_wrong_secret_fails_the_receivers_check(receiver: Receiver) -> None:
    send, _ = sender()
    await send.start()
    try:
        send.submit(Webhook("ops", receiver.url, "another-secret-entirely!!"), "a1", "open", b"{}")
        await send.wait_idle()
    finally:
        await send.close()
    assert [g["valid"] for g in receiver.got] == [False]


def test_sign_is_hmac_of_timestamp_dot_body() -> None:
    expected = hmac.new(b"k" * 16, b"1700000000.{}", hashlib.sha256).hexdigest()
    assert sign("k" * 16, "1700000000", b"{}") == f"sha256={expected}"


async def test_503s_then_success_backs_off_and_delivers_once(receiver: Receiver) -> None:
    receiver.script = ["503", "503", "500"]
    send, waits = sender()
    await send.start()
    try:
        send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    assert [g["action"] for g in receiver.got] == ["503", "503", "500", "ok"]
    assert all(g["valid"] and g["delivery"] == "a1:open" for g in receiver.got)
    assert send.counters.delivered_total == 1 and send.counters.attempts_total == 4
    # exponential with jitter: each wait within [half, all] of 1, 2, 4 s
    assert len(waits.asked) == 3
    for wait, base in zip(waits.asked, (1.0, 2.0, 4.0), strict=True):
        assert base / 2 <= wait <= base


async def test_a_dropped_connection_is_retried(receiver: Receiver) -> None:
    receiver.script = ["drop"]
    send, waits = sender()
    await send.start()
    try:
        send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    assert [g["action"] for g in receiver.got] == ["drop", "ok"]
    # the receiver saw one delivery id twice: the Idempotency-Key lets it keep one
    assert {g["idempotency"] for g in receiver.got} == {"a1:open"}
    assert send.counters.delivered_total == 1 and len(waits.asked) == 1


async def test_a_timeout_is_retried(receiver: Receiver) -> None:
    receiver.script = ["hang"]
    send, _ = sender(timeout_s=0.3)
    await send.start()
    try:
        send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    assert [g["action"] for g in receiver.got] == ["hang", "ok"]
    assert send.counters.delivered_total == 1


async def test_retry_after_is_honoured_up_to_the_cap(receiver: Receiver) -> None:
    receiver.script = ["429:30", "429:86400"]
    send, waits = sender(retry_after_cap_s=600.0)
    await send.start()
    try:
        send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    assert waits.asked == [30.0, 600.0]
    assert send.counters.delivered_total == 1


def test_retry_after_forms() -> None:
    assert retry_after_s("120", 0.0) == 120.0
    assert retry_after_s("Thu, 01 Jan 1970 00:01:40 GMT", 40.0) == 60.0
    assert retry_after_s("Thu, 01 Jan 1970 00:01:40 GMT", 400.0) == 0.0
    assert retry_after_s("soon", 0.0) is None
    assert retry_after_s(None, 0.0) is None


async def test_given_up_after_the_bound_with_a_warning(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = ["500"] * 10
    send, waits = sender(max_attempts=3)
    await send.start()
    try:
        with caplog.at_level(logging.WARNING, "tegkit.monitor.alert_delivery"):
            send.submit(hook_for(receiver), "a1", "open", body_of())
            await send.wait_idle()
    finally:
        await send.close()
    assert len(receiver.got) == 3 and len(waits.asked) == 2
    assert send.counters.given_up_total == 1 and send.counters.delivered_total == 0
    (record,) = [r for r in caplog.records if "given up" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert 'webhook "ops"' in record.getMessage() and "/hook" not in record.getMessage()
    assert SECRET not in caplog.text
    # not delivered: the same delivery may be submitted again
    assert not send.delivered("a1", "open", "ops")


@pytest.mark.parametrize("action", ["400", "404", "302"])
async def test_a_final_answer_is_not_retried_and_a_redirect_not_followed(
    receiver: Receiver, action: str, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = [action]
    send, waits = sender()
    await send.start()
    try:
        with caplog.at_level(logging.WARNING, "tegkit.monitor.alert_delivery"):
            send.submit(hook_for(receiver), "a1", "open", body_of())
            await send.wait_idle()
    finally:
        await send.close()
    assert [g["path"] for g in receiver.got] == ["/hook"]  # never /elsewhere
    assert waits.asked == [] and send.counters.given_up_total == 1
    assert f"HTTP {action}" in caplog.text


async def test_deduplicated(receiver: Receiver) -> None:
    send, _ = sender()
    hook = hook_for(receiver)
    assert send.submit(hook, "a1", "open", body_of())  # queued before the start
    assert not send.submit(hook, "a1", "open", body_of())  # already queued
    await send.start()
    try:
        await send.wait_idle()
        assert not send.submit(hook, "a1", "open", body_of())  # already delivered
        assert send.submit(hook, "a1", "resolved", body_of(state="resolved"))
        assert send.submit(Webhook("pager", receiver.url, SECRET), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    assert sorted((g["delivery"], g["body"]["state"]) for g in receiver.got) == [
        ("a1:open", "open"),
        ("a1:open", "open"),
        ("a1:resolved", "resolved"),
    ]
    assert send.counters.delivered_total == 3


async def test_a_full_queue_drops_the_oldest(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    send, _ = sender(queue_size=2)
    hook = hook_for(receiver)
    with caplog.at_level(logging.WARNING, "tegkit.monitor.alert_delivery"):
        for n in range(4):
            send.submit(hook, f"a{n}", "open", body_of(f"a{n}"))
    assert send.pending() == 2 and send.counters.dropped_total == 2
    assert caplog.text.count("dropped the oldest") == 2
    await send.start()
    try:
        await send.wait_idle()
    finally:
        await send.close()
    assert [g["delivery"] for g in receiver.got] == ["a2:open", "a3:open"]


async def test_one_slow_webhook_does_not_hold_up_another(receiver: Receiver) -> None:
    receiver.script = ["hang"]
    send, _ = sender(timeout_s=60.0)
    await send.start()
    try:
        send.submit(hook_for(receiver, "slow"), "a1", "open", body_of())
        await receiver.wait_for(1)
        send.submit(hook_for(receiver, "fast"), "a1", "open", body_of())
        await receiver.wait_for(2)
        for _ in range(400):  # the answer to "fast" is read while "slow" still hangs
            if send.delivered("a1", "open", "fast"):
                break
            await asyncio.sleep(0.01)
        assert send.delivered("a1", "open", "fast")
        assert not send.delivered("a1", "open", "slow")
        receiver.release.set()
        await send.wait_idle()
    finally:
        await send.close()
    assert send.delivered("a1", "open", "slow") and send.delivered("a1", "open", "fast")


async def test_close_gives_a_grace_then_drops_with_a_log_line(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.script = ["hang"]
    send, _ = sender(timeout_s=60.0)
    await send.start()
    send.submit(hook_for(receiver), "a1", "open", body_of())
    send.submit(hook_for(receiver), "a2", "open", body_of("a2"))
    await receiver.wait_for(1)
    with caplog.at_level(logging.WARNING, "tegkit.monitor.alert_delivery"):
        await send.close(grace_s=0.05)
    assert "2 webhook deliveries still pending at shutdown, dropped" in caplog.text
    assert send.pending() == 0 and send.counters.dropped_total == 2


def docs_verify() -> Any:
    """The `verify` function docs/alerts.md gives receivers, as written there."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "alerts.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block is not None
    namespace: dict[str, Any] = {}
    exec(block.group(1), namespace)
    return namespace["verify"]


async def test_the_documented_check_verifies_a_real_delivery(receiver: Receiver) -> None:
    verify = docs_verify()
    send, _ = sender()
    await send.start()
    try:
        send.submit(hook_for(receiver), "a1", "open", body_of())
        await send.wait_idle()
    finally:
        await send.close()
    (got,) = receiver.got
    assert verify(SECRET, got["headers"], got["raw"])
    assert not verify("another-secret-entirely!!", got["headers"], got["raw"])
    assert not verify(SECRET, got["headers"], got["raw"] + b" ")
    old = dict(got["headers"], **{"X-Tegkit-Timestamp": "1000000000"})
    assert not verify(SECRET, old, got["raw"])
