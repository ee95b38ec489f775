"""`teg monitor --mqtt` against a real Mosquitto (tests/monitor/mqtt_broker.py) and the
simulator over HTTPS: what arrives equals /api/live, discovery is retained, the last will,
commands with and without --mqtt-control, a broker restart, refused TLS and passwords.

Every wait is for a message, a counter or a line, with a deadline; never for a time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from monitor_helpers import first_reading, live_monitor, target
from mqtt_broker import DEADLINE_S, Listener, MosquittoBroker, listening, running_broker
from test_mqtt_discovery import check_config

from teg_process import SimProcess, TegProcess, clean_env
from tegkit import percent
from tegkit.cli import exit_codes
from tegkit.monitor.demo import demo_cloud
from tegkit.monitor.mqtt.bridge import (
    BrokerRefusedError,
    MqttBridge,
    MqttSettings,
    Outbox,
    check_broker,
    read_password_file,
)
from tegkit.monitor.mqtt.discovery import (
    DeviceInfo,
    PowerwallInfo,
    device_info,
    discovery_messages,
)
from tegkit.monitor.mqtt.topics import Message
from tegkit.monitor.service import Monitor
from tegkit.sim import Simulator

BASE = "tegkit"
PREFIX = "homeassistant"
STATUS = f"{BASE}/status"
STATE = f"{BASE}/home/state"
AVAILABILITY = f"{BASE}/home/availability"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[MosquittoBroker]:
    """A Mosquitto of this test's own, in its temporary directory; always stopped."""
    with running_broker(tmp_path / "broker") as b:
        yield b


def settings(broker: MosquittoBroker, **kwargs: Any) -> MqttSettings:
    kwargs.setdefault("min_interval_s", 0.0)
    kwargs.setdefault("password", broker.password)
    return MqttSettings(broker.url, username=broker.username, **kwargs)


def config_topics(control: bool) -> set[str]:
    """The discovery topics of gateway "home" that carry a config (not a removal)."""
    messages = discovery_messages(DeviceInfo("home"), BASE, PREFIX, control)
    return {m.topic for m in messages if m.payload}


async def until(what: str, check: Callable[[], object], deadline_s: float = DEADLINE_S) -> None:
    """Poll check() (state in this process) until it is truthy; fail at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while not check():
        if loop.time() > end:
            raise AssertionError(f"waited {deadline_s} s for {what}")
        await asyncio.sleep(0.02)


def bridge_of(monitor: Monitor) -> MqttBridge:
    assert monitor.mqtt_bridge is not None
    return monitor.mqtt_bridge


async def api_live(monitor: Monitor) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(monitor.url + "api/live") as reply,
    ):
        [entry] = (await reply.json())["gateways"]
        return dict(entry)


# --- what is published ---------------------------------------------------------------------


async def test_the_published_state_equals_api_live_and_discovery_is_retained(
    broker: MosquittoBroker,
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        listening(broker, f"{BASE}/#", f"{PREFIX}/#") as seen,
        live_monitor(sim, None, mqtt=settings(broker)) as monitor,
    ):
        await first_reading(monitor)
        entry = await api_live(monitor)
        reading = entry["reading"]

        expected = {
            **{name: reading[name] for name in ("site_w", "battery_w", "load_w", "solar_w")},
            **{
                n: reading[n] for n in ("site_imported_wh", "site_exported_wh", "solar_exported_wh")
            },
            "taken_at": entry["taken_at"],
            "soe_app_percent": entry["soe"]["app_percent"],
            "backup_reserve_app_percent": entry["backup_reserve"]["app_percent"],
            "mode": entry["mode"],
            "grid_status": reading["grid_status"],
            "status": "ok",
        }
        assert None not in expected.values(), expected

        def same_as_api_live(message: Any) -> bool:
            doc = json.loads(message.payload)
            return {k: doc.get(k) for k in expected} == expected

        await seen.message(STATE, same_as_api_live)
        # discovery (once the slow poll's firmware reached it), availability, status
        wanted = config_topics(control=False)
        await seen.wait_for(
            "every discovery config with the firmware",
            lambda: all(
                (m := seen.latest(t)) is not None and b'"sw_version"' in m.payload for t in wanted
            ),
        )
        await seen.message(AVAILABILITY, lambda m: m.text == "online")
        await seen.message(STATUS, lambda m: m.text == "online")
        # a newcomer (Home Assistant starting later) gets them all from the broker, retained
        async with listening(broker, f"{BASE}/#", f"{PREFIX}/#") as late:
            await late.wait_for("the retained configs", lambda: all(late.latest(t) for t in wanted))
            for topic in wanted:
                message = late.latest(topic)
                assert message is not None and message.retain, topic
                config = json.loads(message.payload)
                check_config(topic, config)  # Home Assistant's schema
                assert config["device"]["sw_version"] == (await api_live(monitor))["version"]
            for topic, text in ((STATUS, "online"), (AVAILABILITY, "online")):
                message = await late.message(topic)
                assert message.retain and message.text == text
            assert (await late.message(STATE)).retain


# --- commands ----------------------------------------------------------------------------


@asynccontextmanager
async def controlled(
    sim: Simulator, broker: MosquittoBroker, tmp_path: Path, control: bool
) -> AsyncIterator[Monitor]:
    """A live monitor of `sim` with the sim's cloud (the route of a 21.44 gateway's
    changes), publishing to `broker`, with or without --mqtt-control."""
    gateway = dataclasses.replace(target(sim), cloud=await demo_cloud(sim, tmp_path))
    from tegkit.monitor.poller import PollerConfig

    monitor = Monitor(
        [gateway],
        listen=("127.0.0.1", 0),
        config=PollerConfig(fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000),
        clock=lambda: sim.now_s,
        stale_after_s=120.0,
        mqtt=settings(broker, control=control),
    )
    async with monitor:
        await first_reading(monitor)
        await until("the broker connection", bridge_of(monitor).connected.is_set)
        yield monitor


async def publish(
    broker: MosquittoBroker, topic: str, payload: bytes, retain: bool = False
) -> None:
    async with broker.client() as client:
        await client.publish(topic, payload, qos=1, retain=retain)


async def test_a_command_changes_the_gateway_and_the_new_value_is_published(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        listening(broker, f"{BASE}/#", f"{PREFIX}/#") as seen,
        controlled(sim, broker, tmp_path, control=True) as monitor,
    ):
        assert sim.gateway.mode != "backup"
        for topic in config_topics(control=True):  # the select, the number, the switches
            config = json.loads((await seen.message(topic)).payload)
            check_config(topic, config)
        await publish(broker, f"{BASE}/home/set/backup_reserve", b"55")
        await publish(broker, f"{BASE}/home/set/mode", b"Backup")  # the select's option
        await until("both commands", lambda: bridge_of(monitor).commands_applied_total == 2)
        assert sim.gateway.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(55))
        assert sim.gateway.mode == "backup"

        def changed(message: Any) -> bool:
            doc = json.loads(message.payload)
            return doc["mode"] == "backup" and doc["backup_reserve_app_percent"] == 55

        await seen.message(STATE, changed)
        assert bridge_of(monitor).commands_refused_total == 0


async def test_without_control_a_command_is_refused_and_logged(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tegkit")
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        controlled(sim, broker, tmp_path, control=False) as monitor,
    ):
        before = (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent)
        await publish(broker, f"{BASE}/home/set/mode", b"backup")
        await until("the refusal", lambda: bridge_of(monitor).commands_refused_total == 1)
        assert (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent) == before
        assert bridge_of(monitor).commands_applied_total == 0
    logged = caplog.text
    assert f"{BASE}/home/set/mode" in logged and "--mqtt-control" in logged


async def test_bad_commands_are_refused_and_logged_and_a_good_one_still_works(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "tegkit")
    bad = [
        ("home/set/backup_reserve", b"150", "backup reserve"),
        ("home/set/backup_reserve", b"nan", "backup reserve"),
        ("home/set/mode", b"turbo", "operation mode"),
        ("home/set/mode", b"\xff\xfe", "UTF-8"),
        ("home/set/mode", b"x" * 5000, "bytes"),
        ("home/set/storm_watch", b'{"on": true}', "single value"),
        ("home/set/firmware", b"now", "entity"),
        ("garage/set/mode", b"backup", "gateway"),
    ]
    # a retained command would be carried out again at every connection: refused
    await publish(broker, f"{BASE}/home/set/mode", b"backup", retain=True)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        controlled(sim, broker, tmp_path, control=True) as monitor,
    ):
        before = (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent)
        for topic, payload, _ in bad:
            await publish(broker, f"{BASE}/{topic}", payload)
        bridge = bridge_of(monitor)
        await until("every refusal", lambda: bridge.commands_refused_total == len(bad) + 1)
        assert (sim.gateway.mode, sim.gateway.backup_reserve_raw_percent) == before
        assert bridge.commands_applied_total == 0
        await publish(broker, f"{BASE}/home/set/mode", b"", retain=True)  # clear it
        # the bridge goes on: a good command after them is carried out
        await publish(broker, f"{BASE}/home/set/backup_reserve", b"40")
        await until("the good command", lambda: bridge.commands_applied_total == 1)
        assert sim.gateway.backup_reserve_raw_percent == pytest.approx(percent.app_to_raw(40))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for topic, _, why in bad:
        assert any(f"{BASE}/{topic}" in w and why in w for w in warnings), (topic, why)
    assert any("retained command" in w for w in warnings)


# --- the connection ------------------------------------------------------------------------


async def test_a_broker_restart_is_survived_and_everything_published_again(
    broker: MosquittoBroker,
) -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, None, mqtt=settings(broker)) as monitor,
    ):
        await first_reading(monitor)
        bridge = bridge_of(monitor)
        await until("the first connection", bridge.connected.is_set)
        await asyncio.to_thread(broker.restart)  # forgets every retained message
        # reconnected within the deadline (back-off starts at 0.5 s, at most 5 s)
        await until("the reconnection", lambda: bridge.connections_total == 2, 15.0)
        wanted = config_topics(control=False) | {STATUS, AVAILABILITY, STATE}
        async with listening(broker, f"{BASE}/#", f"{PREFIX}/#") as seen:
            await seen.wait_for("everything again", lambda: all(seen.latest(t) for t in wanted))
        async with listening(broker, f"{BASE}/#", f"{PREFIX}/#") as late:  # from the broker
            await late.wait_for("everything retained", lambda: all(late.latest(t) for t in wanted))
            assert all(m.retain for m in late.messages if m.topic in wanted)
            assert (await late.message(STATUS)).text == "online"
        assert monitor.live.get("home") is not None


async def test_tls_with_a_password_and_with_a_client_certificate(broker: MosquittoBroker) -> None:
    tls = MqttSettings(
        broker.tls_url, username=broker.username, password=broker.password, ca_file=broker.ca_path
    )
    assert await check_broker(tls) is None
    by_certificate = MqttSettings(
        broker.cert_url,
        ca_file=broker.ca_path,
        cert_file=broker.client_cert,
        key_file=broker.client_key,
        min_interval_s=0.0,
    )
    assert await check_broker(by_certificate) is None
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        listening(broker, STATE) as seen,
        live_monitor(sim, None, mqtt=by_certificate) as monitor,
    ):
        await first_reading(monitor)
        await seen.message(STATE)


async def test_a_wrong_ca_and_a_wrong_password_are_refusals_naming_the_broker(
    broker: MosquittoBroker,
) -> None:
    wrong_ca = MqttSettings(
        broker.tls_url,
        username=broker.username,
        password=broker.password,
        ca_file=broker.other_ca_path,
    )
    refused = await check_broker(wrong_ca)
    assert isinstance(refused, BrokerRefusedError) and refused.kind == "certificate"
    assert broker.tls_url in str(refused) and str(broker.other_ca_path) in str(refused)
    wrong_password = settings(broker, password="not-the-password")
    refused = await check_broker(wrong_password)
    assert isinstance(refused, BrokerRefusedError) and refused.kind == "auth"
    assert broker.url in str(refused) and "not-the-password" not in str(refused)
    # an unreachable broker is no refusal: it may come up later
    broker.stop()
    assert await check_broker(settings(broker)) is None


async def test_a_stuck_broker_neither_stops_polling_nor_grows_the_outbox(
    broker: MosquittoBroker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, "tegkit")
    assert broker.process is not None
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        live_monitor(sim, tmp_path / "monitor.db", mqtt=settings(broker)) as monitor,
    ):
        await first_reading(monitor)
        bridge = bridge_of(monitor)
        await until("the connection", bridge.connected.is_set)
        gateway = monitor.live.get("home")
        assert gateway is not None
        os.kill(broker.process.pid, signal.SIGSTOP)  # accepts nothing, answers nothing
        try:
            polls = gateway.counters.total_requests()
            sent = bridge.published_total
            # the poller goes on reading the gateway while nothing reaches the broker
            await until("more polls", lambda: gateway.counters.total_requests() > polls + 50)
            assert bridge.published_total <= sent + 200  # at most what was in flight
            # one message per topic: configs (its Powerwalls' too), state, availability
            entry = gateway.to_json(monitor.live.clock(), monitor.live.stale_after_s)
            device = device_info(entry, bridge.dashboard_url)
            topics = len({m.topic for m in discovery_messages(device, BASE, PREFIX)}) + 3
            assert len(bridge.outbox) <= topics
        finally:
            os.kill(broker.process.pid, signal.SIGCONT)
        async with listening(broker, STATE) as seen:
            await seen.message(STATE)  # published again once the broker answers
    assert broker.password not in caplog.text


async def test_a_gateway_no_longer_watched_has_its_entities_removed(
    broker: MosquittoBroker,
) -> None:
    # what an earlier monitor with gateway "garage" (two Powerwalls) left on the broker
    walls = (PowerwallInfo("TG1"), PowerwallInfo("TG2"))
    gone = discovery_messages(DeviceInfo("garage", powerwalls=walls), BASE, PREFIX)
    assert len([m for m in gone if "/powerwall_" in m.topic]) == 6  # removed with the rest
    async with broker.client() as client:
        for message in gone:
            await client.publish(message.topic, message.payload, qos=1, retain=True)
        await client.publish(f"{BASE}/garage/availability", b"online", qos=1, retain=True)
    wanted = {m.topic for m in gone if m.payload}
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0) as sim,
        listening(broker, f"{PREFIX}/#", f"{BASE}/#") as seen,
        live_monitor(sim, None, mqtt=settings(broker)),
    ):
        # each of its configs emptied (Home Assistant removes the entity), home's kept
        await seen.wait_for(
            "garage's configs removed",
            lambda: all((m := seen.latest(t)) is not None and not m.payload for t in wanted),
        )
        await seen.message(f"{BASE}/garage/availability", lambda m: not m.payload)
        await seen.wait_for(
            "home's configs", lambda: all(seen.latest(t) for t in config_topics(False))
        )
    async with listening(broker, f"{PREFIX}/#") as late:  # nothing of garage is retained
        await late.wait_for(
            "home's configs", lambda: all(late.latest(t) for t in config_topics(False))
        )
        assert not [m for m in late.messages if "garage" in m.topic]


# --- what waits for the broker -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_the_rate_limit_sends_the_latest_value_when_the_interval_ends() -> None:
    clock = Clock()
    outbox = Outbox(5.0, clock)
    first, second, third = (Message("t/state", str(n).encode(), False) for n in range(3))
    outbox.put(first)
    assert outbox.take_due(10) == [first]  # a topic never sent goes at once
    outbox.put(second)
    outbox.put(third)  # replaces the second, which never goes out
    assert outbox.take_due(10) == [] and outbox.next_due_in_s() == 5.0
    clock.now_s += 4.9
    assert outbox.take_due(10) == []
    clock.now_s += 0.1
    assert outbox.take_due(10) == [third] and outbox.replaced_total == 1
    assert outbox.next_due_in_s() is None
    # discovery and status are not limited; a failed send goes back in line, due at once
    outbox.put(Message("t/config", b"{}", True), limited=False)
    outbox.put(Message("t/state", b"3", False), limited=False)
    sent = outbox.take_due(10)
    assert [m.topic for m in sent] == ["t/config", "t/state"]
    outbox.requeue(sent)
    assert outbox.take_due(10) == sent


def test_a_stuck_broker_costs_one_waiting_message_per_topic() -> None:
    outbox = Outbox(5.0, Clock(), max_topics=50)
    for n in range(100_000):  # a fast poll of 20 gateways while nothing is sent
        outbox.put(Message(f"t/{n % 20}/state", str(n).encode(), False))
    assert len(outbox) == 20
    for n in range(100):  # more topics than the bound: the oldest waiting go first
        outbox.put(Message(f"u/{n}", b"x", True))
    assert len(outbox) == 50 and outbox.dropped_total == 70


# --- the command line ----------------------------------------------------------------------


def mqtt_env(broker: MosquittoBroker, **extra: str) -> dict[str, str]:
    return clean_env(TEG_MQTT_USERNAME=broker.username, **extra)


def monitor_args(sim: SimProcess, tmp_path: Path, *mqtt: str) -> list[str]:
    return [
        "monitor",
        "--gateway",
        f"home={sim.url}",
        "--pin",
        sim.fingerprint,
        "--password",
        sim.password,
        "--db",
        str(tmp_path / "monitor.db"),
        "--listen",
        "127.0.0.1:0",
        "--fast-interval",
        "1",
        "--budget",
        "600",
        *mqtt,
    ]


@pytest.fixture
def sim_process(tmp_path: Path) -> Any:
    sim = SimProcess(tmp_path / "sim")
    try:
        yield sim
    finally:
        sim.close()


async def test_the_last_will_and_a_clean_stop_leave_the_monitor_offline(
    broker: MosquittoBroker, sim_process: SimProcess, tmp_path: Path
) -> None:
    env = mqtt_env(broker, TEG_MQTT_PASSWORD=broker.password)
    args = monitor_args(sim_process, tmp_path, "--mqtt", broker.url, "--mqtt-min-interval-s", "0")

    async def online_then(stop: Callable[[TegProcess], int | None]) -> tuple[Listener, int | None]:
        async with listening(broker, f"{BASE}/#") as seen:
            process = TegProcess.teg(*args, env=env)
            try:
                await seen.message(STATUS, lambda m: m.text == "online")
                await seen.message(STATE)
                after = len(seen.messages)
                code = await asyncio.to_thread(stop, process)
                await seen.message(STATUS, lambda m: m.text == "offline", after=after)
            except AssertionError as exc:
                raise AssertionError(
                    f"{exc}\nmonitor's stderr:\n" + "\n".join(process.err)
                ) from None
            finally:
                process.close()
            return seen, code

    def kill(process: TegProcess) -> None:
        os.kill(process.proc.pid, signal.SIGKILL)
        process.proc.wait()

    await online_then(kill)  # the broker publishes the last will
    _, code = await online_then(lambda p: p.stop())  # the monitor says goodbye itself
    assert code == 0
    async with listening(broker, STATUS) as late:
        message = await late.message(STATUS)
        assert message.retain and message.text == "offline"


def test_a_wrong_password_ends_the_monitor_naming_the_broker_not_the_password(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    secret = "wrong-password-123"
    process = TegProcess.teg(
        *monitor_args_without_sim(tmp_path, "--mqtt", broker.url),
        env=mqtt_env(broker, TEG_MQTT_PASSWORD=secret),
    )
    code = process.finish()
    err = "\n".join(process.err)
    assert code == exit_codes.AUTHENTICATION, err
    assert broker.url in err and "refused the login" in err and secret not in err


def test_a_certificate_from_another_ca_ends_the_monitor_with_exit_code_7(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    process = TegProcess.teg(
        *monitor_args_without_sim(
            tmp_path, "--mqtt", broker.tls_url, "--mqtt-ca", str(broker.other_ca_path)
        ),
        env=mqtt_env(broker, TEG_MQTT_PASSWORD=broker.password),
    )
    code = process.finish()
    err = "\n".join(process.err)
    assert code == exit_codes.CERTIFICATE_MISMATCH, err
    assert broker.tls_url in err and "not trusted" in err and broker.password not in err


def test_a_password_file_others_may_read_is_refused_naming_it(
    broker: MosquittoBroker, tmp_path: Path
) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text(broker.password + "\n")
    secret.chmod(0o644)
    process = TegProcess.teg(
        *monitor_args_without_sim(
            tmp_path, "--mqtt", broker.url, "--mqtt-password-file", str(secret)
        ),
        env=mqtt_env(broker),
    )
    code = process.finish()
    err = "\n".join(process.err)
    assert code == exit_codes.USAGE, err
    assert str(secret) in err and "chmod 600" in err and broker.password not in err
    secret.chmod(0o600)
    assert read_password_file(secret) == broker.password


def monitor_args_without_sim(tmp_path: Path, *mqtt: str) -> list[str]:
    """A monitor whose broker is refused before any gateway is asked anything."""
    return [
        "monitor",
        "--gateway",
        "home=https://127.0.0.1:1",
        "--password",
        "gateway-password",
        "--db",
        str(tmp_path / "monitor.db"),
        "--listen",
        "127.0.0.1:0",
        *mqtt,
    ]


def test_the_options_are_checked_before_anything_starts(tmp_path: Path) -> None:
    import click

    from tegkit.monitor.mqtt.options import settings_from_options

    def refusal(opts: dict[str, Any], gateways: tuple[str, ...] = ("home",)) -> str:
        with pytest.raises(click.BadParameter) as caught:
            settings_from_options(opts, gateways, environ={})
        return caught.value.format_message()

    assert settings_from_options({}, ("home",), environ={}) is None
    assert "needs --mqtt" in refusal({"mqtt_control": True})
    # a password in the URL would be in `ps`: refused, and not repeated
    told = refusal({"mqtt_url": "mqtt://user:hunter22@127.0.0.1"})
    assert "--mqtt" in told and "hunter22" not in told
    assert "mqtts://" in refusal({"mqtt_url": "http://127.0.0.1"})
    assert "mqtts://" in refusal({"mqtt_url": "mqtt://127.0.0.1", "mqtt_ca": tmp_path / "ca.pem"})
    assert "--gateway" in refusal({"mqtt_url": "mqtt://127.0.0.1"}, ("home", "a/b"))
    assert "--mqtt-topic" in refusal({"mqtt_url": "mqtt://127.0.0.1", "mqtt_topic": "a/#"})
    made = settings_from_options(
        {"mqtt_url": "mqtts://127.0.0.1", "mqtt_username": "ha", "mqtt_min_interval_s": 2.0},
        ("home",),
        environ={"TEG_MQTT_PASSWORD": "from-the-environment"},
    )
    assert made is not None and made.password == "from-the-environment"
    assert made.where == "mqtts://127.0.0.1:8883" and made.min_interval_s == 2.0
    assert "from-the-environment" not in repr(made)
