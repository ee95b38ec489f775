"""Commands from MQTT (--mqtt-control): parsing, refusals naming what is wrong, and the change
carried out through the monitor's own path (a poller of the simulator; its cloud for the
cloud-only settings), the new value then in the state published back."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monitor_helpers import STEPPED, sim_clock, stepped_poller, target

from tegkit import percent
from tegkit.automation.plan import Setpoints
from tegkit.errors import InvalidInputError, RequestBudgetExceededError
from tegkit.models.vocabulary import CUSTOMER_MODES, MODE_LABELS, OperationMode
from tegkit.monitor.demo import demo_cloud
from tegkit.monitor.live import LiveState
from tegkit.monitor.mqtt.commands import (
    MAX_PAYLOAD_BYTES,
    MqttCommand,
    apply_command,
    parse_command,
)
from tegkit.monitor.mqtt.discovery import state_messages
from tegkit.monitor.mqtt.topics import command_topic
from tegkit.monitor.poller import Poller
from tegkit.route import RouteUnavailableError
from tegkit.sim import Simulator

BASE = "tegkit"


def topic(entity: str, gateway: str = "home") -> str:
    return command_topic(BASE, gateway, entity)


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", CUSTOMER_MODES)
def test_a_mode_by_its_app_name_or_its_value(mode: OperationMode) -> None:
    for payload in (
        MODE_LABELS[mode],  # what Home Assistant's select sends
        mode.value,
        MODE_LABELS[mode].upper(),
        json.dumps(mode.value),
        f"  {MODE_LABELS[mode]}\n",
    ):
        assert parse_command(BASE, topic("mode"), payload.encode()) == (
            "home",
            Setpoints(mode=mode),
        )


@pytest.mark.parametrize(
    ("payload", "app_percent"),
    [(b"20", 20.0), (b"20.0", 20.0), (b"0", 0.0), (b"100", 100.0), (b"37.5", 37.5), (b" 5 ", 5.0)],
)
def test_a_backup_reserve_on_the_app_scale(payload: bytes, app_percent: float) -> None:
    command = parse_command(BASE, topic("backup_reserve"), payload)
    assert command == MqttCommand("home", Setpoints(backup_reserve_app_percent=app_percent))


@pytest.mark.parametrize("entity", ["grid_charging", "storm_watch"])
@pytest.mark.parametrize(
    ("payload", "on"),
    [(b"ON", True), (b"OFF", False), (b"on", True), (b"off", False), (b"true", True),
     (b"false", False), (b'"ON"', True)],
)  # fmt: skip
def test_the_switches(entity: str, payload: bytes, on: bool) -> None:
    gateway, points = parse_command(BASE, topic(entity), payload)
    assert gateway == "home"
    assert points == Setpoints(**{entity: on})


@pytest.mark.parametrize(
    ("where", "payload", "field", "allowed"),
    [
        ("mode", b"turbo", "tegkit/home/set/mode (operation mode)", "Self-powered"),
        ("mode", b"scheduler", "tegkit/home/set/mode (operation mode)", "Backup only"),
        ("mode", b"", "tegkit/home/set/mode (operation mode)", "Time-based control"),
        ("mode", b"42", "tegkit/home/set/mode (operation mode)", "one of"),
        ("backup_reserve", b"150", "tegkit/home/set/backup_reserve (backup reserve)", "0 to 100"),
        ("backup_reserve", b"-1", "tegkit/home/set/backup_reserve (backup reserve)", "0 to 100"),
        ("backup_reserve", b"nan", "tegkit/home/set/backup_reserve (backup reserve)", "number"),
        ("backup_reserve", b"inf", "tegkit/home/set/backup_reserve (backup reserve)", "number"),
        ("backup_reserve", b"true", "tegkit/home/set/backup_reserve (backup reserve)", "number"),
        ("backup_reserve", b"twenty", "tegkit/home/set/backup_reserve (backup reserve)", "app"),
        ("grid_charging", b"yes", "tegkit/home/set/grid_charging (grid charging)", "ON or OFF"),
        ("storm_watch", b"1", "tegkit/home/set/storm_watch (storm watch)", "ON or OFF"),
        ("storm_watch", b'{"on": true}', "tegkit/home/set/storm_watch", "not a JSON object"),
        ("storm_watch", b"[true]", "tegkit/home/set/storm_watch", "not a JSON object or list"),
        ("storm_watch", b"null", "tegkit/home/set/storm_watch", "single value"),
        ("mode", b'{"mode": "backup"', "tegkit/home/set/mode", "plain text or a JSON value"),
        ("mode", b'"backup', "tegkit/home/set/mode", "JSON value"),
        ("mode", b"\xff\xfe", "tegkit/home/set/mode", "UTF-8"),
        ("backup_reserve", b"1" * (MAX_PAYLOAD_BYTES + 1), "tegkit/home/set/backup_reserve",
         f"at most {MAX_PAYLOAD_BYTES} bytes"),
    ],
)  # fmt: skip
def test_bad_payloads_are_refused_naming_the_entity_and_what_is_allowed(
    where: str, payload: bytes, field: str, allowed: str
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_command(BASE, topic(where), payload)
    assert refused.value.field == field
    assert allowed in refused.value.allowed


@pytest.mark.parametrize(
    ("bad_topic", "field"),
    [
        ("other/home/set/mode", "MQTT command topic"),
        ("tegkit/home/get/mode", "MQTT command topic"),
        ("tegkit/home/set/mode/extra", "MQTT command topic"),
        ("tegkit//set/mode", "MQTT command topic"),
        ("tegkit/home/set", "MQTT command topic"),
        ("tegkit/home/set/export_rule", "tegkit/home/set/export_rule: entity"),
        ("tegkit/home/set/", "tegkit/home/set/: entity"),
    ],
)
def test_unknown_topics_are_refused(bad_topic: str, field: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_command(BASE, bad_topic, b"ON")
    assert refused.value.field == field
    assert "mode" in refused.value.allowed and "storm_watch" in refused.value.allowed


def test_a_gateway_the_monitor_does_not_watch_is_refused() -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_command(BASE, topic("mode", "cabin"), b"backup", gateways=["home", "garage"])
    assert refused.value.field == "tegkit/cabin/set/mode: gateway"
    assert refused.value.allowed == "one of home, garage"
    parse_command(BASE, topic("mode", "garage"), b"backup", gateways=["home", "garage"])


@settings(max_examples=300, deadline=None)
@given(
    entity=st.sampled_from(["mode", "backup_reserve", "grid_charging", "storm_watch", "x"]),
    payload=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=40).map(str.encode),
        st.from_regex(r"-?[0-9]{1,4}(\.[0-9]{0,3})?", fullmatch=True).map(str.encode),
    ),
)
def test_any_payload_is_a_command_or_a_refusal_never_a_crash(entity: str, payload: bytes) -> None:
    try:
        gateway, points = parse_command(BASE, topic(entity), payload)
    except InvalidInputError as refused:
        assert refused.field.startswith("tegkit/home/set/")
        return
    assert gateway == "home" and not points.is_empty()
    reserve = points.backup_reserve_app_percent
    assert reserve is None or 0 <= reserve <= 100
    assert points.mode is None or points.mode in CUSTOMER_MODES


# --- applying -------------------------------------------------------------------------------


async def test_mode_and_reserve_change_the_gateway_and_the_new_values_are_published() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        pollers = {"home": poller}
        before = json.loads(state_messages(BASE, poller.live.to_json()["gateways"][0])[0].payload)
        assert before["mode"] == OperationMode.SELF_CONSUMPTION
        backup = MODE_LABELS[OperationMode.BACKUP]
        note = await apply_command(
            pollers, parse_command(BASE, topic("mode"), backup.encode(), pollers)
        )
        assert note and sim.state()["mode"] == OperationMode.BACKUP
        await apply_command(pollers, parse_command(BASE, topic("backup_reserve"), b"35"))
        assert sim.state()["backup_reserve_raw_percent"] == pytest.approx(percent.app_to_raw(35))
        # the read-back is the live state at once: the next state message says it
        after = json.loads(state_messages(BASE, poller.live.to_json()["gateways"][0])[0].payload)
        assert after["mode"] == OperationMode.BACKUP and after["mode_label"] == backup
        assert after["backup_reserve_app_percent"] == pytest.approx(35, abs=0.01)
        # inside the poller's one request budget
        assert poller.budget.in_window() == poller.requests_sent


async def test_an_unknown_gateway_or_a_setting_without_a_cloud_sends_nothing() -> None:
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        stepped_poller(sim) as poller,
    ):
        await poller.poll_due()
        sent = poller.requests_sent
        with pytest.raises(InvalidInputError) as refused:
            await apply_command({"home": poller}, MqttCommand("cabin", Setpoints(mode=None)))
        assert refused.value.field == "gateway" and "home" in refused.value.allowed
        # grid charging and storm watch exist only in Tesla's cloud, and this one has none
        for points in (Setpoints(grid_charging=True), Setpoints(storm_watch=False)):
            with pytest.raises(RouteUnavailableError) as unavailable:
                await apply_command({"home": poller}, MqttCommand("home", points))
            assert "cloud" in str(unavailable.value)
        assert poller.requests_sent == sent


async def test_a_spent_budget_refuses_the_command_and_sends_nothing() -> None:
    # the clock stands still: after one poll, too little of 12 requests a minute is left
    # for a change (up to 4 calls x 3 requests)
    config = dataclasses.replace(STEPPED, budget_per_minute=12)
    async with (
        Simulator(port=0, scenario="sunny-day", speed=0, allow_customer_operation=True) as sim,
        stepped_poller(sim, config=config) as poller,
    ):
        await poller.poll_due()
        sent = poller.requests_sent
        assert sent > 0
        command = parse_command(BASE, topic("mode"), b"backup")
        with pytest.raises(RequestBudgetExceededError):
            await apply_command({"home": poller}, command)
        assert poller.requests_sent == sent
        assert sim.gateway.mode != OperationMode.BACKUP


async def test_grid_charging_and_storm_watch_go_through_the_monitors_cloud(
    tmp_path: Path,
) -> None:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        gateway = dataclasses.replace(target(sim), cloud=await demo_cloud(sim, tmp_path))
        clock = sim_clock(sim)
        poller = Poller.for_target(gateway, LiveState(clock=clock), clock=clock, monotonic=clock)
        try:
            site = sim.gateway.site
            assert site.storm_watch is False and site.grid_charging_allowed is True
            pollers = {"home": poller}
            for entity, payload in (("storm_watch", b"ON"), ("grid_charging", b"OFF")):
                note = await apply_command(pollers, parse_command(BASE, topic(entity), payload))
                assert "Tesla's cloud" in note
            assert sim.gateway.site.storm_watch is True
            assert sim.gateway.site.grid_charging_allowed is False
        finally:
            await poller.aclose()
