"""/metrics of a fleet: the fleet file's labels on every per-gateway series, and aggregates
per combination of label values whose number follows the label values, never the gateways.
Parsed with prometheus_client's own parser."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from fleet_live import expected_status, fleet_context, gateway_name, labels_of, serve
from monitor_helpers import sim_clock, target
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from teg_process import TegProcess, clean_env
from tegkit import percent
from tegkit.models.vocabulary import POWER_NAMES, GridStatusValue, MeterName
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.metrics import (
    PER_GATEWAY_MAX,
    RESERVED_LABELS,
    FleetLabels,
    MetricsPage,
    label_name_problem,
)
from tegkit.monitor.poller import PollerConfig
from tegkit.monitor.service import Monitor
from tegkit.sim import Simulator

METERS = dict(zip(MeterName, POWER_NAMES, strict=True))  # meter -> Reading field


def samples(text: str) -> list[Sample]:
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def render(n: int, per_gateway: bool | None = None) -> list[Sample]:
    ctx, _ = fleet_context(n, per_gateway=per_gateway)
    page = MetricsPage(ctx.live, labels=ctx.fleet_labels, per_gateway=per_gateway)
    return samples(page.render().decode())


def _power(i: int, field: str) -> float:
    return {"site_w": 3 * i - 1500, "battery_w": 1000 - i, "load_w": 500 + i, "solar_w": 2 * i}[
        field
    ]


async def test_per_gateway_series_carry_the_fleet_labels() -> None:
    n = 60
    ctx, _ = fleet_context(n)
    async with serve(ctx) as url, aiohttp.ClientSession() as http, http.get(url + "metrics") as r:
        assert r.status == 200
        text = await r.text()
    found = samples(text)
    per_gateway = [s for s in found if "gateway" in s.labels]
    assert {s.name for s in per_gateway} >= {
        "powerwall_up",
        "powerwall_info",
        "powerwall_power_watts",
        "powerwall_state_of_energy_app_ratio",
        "powerwall_grid_status",
        "tegkit_poller_requests_total",
        "tegkit_poller_request_duration_seconds_bucket",
    }
    for s in per_gateway:  # every one: the gateway's own label values, "" where it has none
        i = int(s.labels["gateway"][3:])
        labels = labels_of(i)
        assert s.labels["region"] == labels["region"], s
        assert s.labels["customer"] == labels.get("customer", ""), s
    up = {s.labels["gateway"]: s.value for s in found if s.name == "powerwall_up"}
    assert up == {gateway_name(i): float(expected_status(i) == "ok") for i in range(n)}
    power = {
        (s.labels["gateway"], s.labels["meter"]): s.value
        for s in found
        if s.name == "powerwall_power_watts"
    }
    want = {
        (gateway_name(i), meter): _power(i, field)
        for i in range(n)
        if expected_status(i) == "ok"
        for meter, field in METERS.items()
    }
    assert power == want  # a gateway without fresh data has no power at all, not a zero


def _aggregates_agree(found: list[Sample], n: int) -> None:
    """The tegkit_fleet_* samples are what the fleet_live gateways add up to."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i in range(n):
        labels = labels_of(i)
        groups.setdefault((labels.get("customer", ""), labels["region"]), []).append(i)

    def by(name: str, *extra: str) -> dict[tuple[str, ...], float]:
        return {
            (s.labels["customer"], s.labels["region"], *(s.labels[e] for e in extra)): s.value
            for s in found
            if s.name == name
        }

    gateways = by("tegkit_fleet_gateways", "status")
    power = by("tegkit_fleet_power_watts", "meter")
    soe_min = by("tegkit_fleet_state_of_energy_app_ratio_min")
    grid = by("tegkit_fleet_grid_status_gateways", "status")
    firmware = by("tegkit_fleet_firmware_gateways", "version")
    requests = by("tegkit_fleet_poller_requests_total", "endpoint")
    errors = by("tegkit_fleet_poller_errors_total", "endpoint", "kind")
    durations = by("tegkit_fleet_poller_request_duration_seconds_count", "endpoint")
    assert {k[:2] for k in gateways} == set(groups)
    for key, members in groups.items():
        statuses = Counter(expected_status(i) for i in members)
        for status in ("ok", "stale", "stopped", "unreachable", "unauthorized"):
            assert gateways[(*key, status)] == statuses[status], (key, status)
        fresh = [i for i in members if expected_status(i) == "ok"]
        for meter, field in METERS.items():
            if fresh:  # only fresh gateways add to a sum
                assert power[(*key, meter)] == sum(_power(i, field) for i in fresh)
            else:
                assert (*key, meter) not in power
        if fresh:
            lowest = min(percent.raw_to_app(5.0 + (i % 96)) for i in fresh) / 100
            assert soe_min[key] == pytest.approx(lowest)
        off = sum(1 for i in fresh if i % 13 == 0)
        assert grid[(*key, GridStatusValue.ISLANDED_ACTIVE)] == off
        assert grid[(*key, GridStatusValue.CONNECTED)] == len(fresh) - off
        even = sum(1 for i in members if i % 2 == 0)
        assert firmware.get((*key, "23.44.0"), 0) == even
        assert firmware.get((*key, "24.4.0"), 0) == len(members) - even
        assert requests[(*key, "soe")] == sum(10 + i for i in members)
        assert errors.get((*key, "soe", "unreachable"), 0) == 3 * statuses["unreachable"]
        assert durations[(*key, "soe")] == len(members)


async def test_without_per_gateway_series_the_aggregates_add_up() -> None:
    n = 300
    ctx, _ = fleet_context(n, per_gateway=False)
    async with serve(ctx) as url, aiohttp.ClientSession() as http, http.get(url + "metrics") as r:
        found = samples(await r.text())
    assert [s for s in found if "gateway" in s.labels] == []
    _aggregates_agree(found, n)


def test_the_aggregates_are_there_with_per_gateway_series_too() -> None:
    found = render(40, per_gateway=True)
    assert any(s.name == "powerwall_up" for s in found)
    _aggregates_agree(found, 40)


def test_the_series_follow_the_label_values_not_the_gateways() -> None:
    """With the same label values, 1,000 and 3,000 gateways give as many series (200 give
    a few less: some combinations have no gateway in every state yet)."""
    counts = {n: len(render(n, per_gateway=False)) for n in (200, 1000, 3000)}
    assert counts[200] <= counts[1000] == counts[3000], counts
    per_gateway = len(render(1000, per_gateway=True))
    assert per_gateway > 20 * counts[1000]  # what the switch saves
    # 4 regions x 8 customers ("" too): every family's series are a few per combination
    assert counts[1000] < 32 * 60


def test_by_default_per_gateway_series_stop_above_the_limit() -> None:
    small = render(PER_GATEWAY_MAX)
    large = render(PER_GATEWAY_MAX + 1)
    assert sum(s.name == "powerwall_up" for s in small) == PER_GATEWAY_MAX
    assert [s for s in large if "gateway" in s.labels] == []
    assert sum(s.value for s in large if s.name == "tegkit_fleet_gateways") == PER_GATEWAY_MAX + 1


def test_a_label_name_the_metrics_use_is_refused_and_never_exported() -> None:
    for name in RESERVED_LABELS | {"__x", "9lives", "a-b", ""}:
        assert label_name_problem(name) is not None, name
    assert label_name_problem("region") is None
    ctx, _ = fleet_context(3)
    labels = FleetLabels(("meter", "region"), {gateway_name(i): labels_of(i) for i in range(3)})
    page = MetricsPage(ctx.live, labels=lambda: labels, per_gateway=True)
    found = samples(page.render().decode())
    up = [s for s in found if s.name == "powerwall_up"]
    assert [set(s.labels) for s in up] == [{"gateway", "region"}] * 3
    power = [s for s in found if s.name == "powerwall_power_watts"]
    assert {s.labels["meter"] for s in power} == set(METERS)  # the metric's own meter


def test_a_reload_with_new_labels_changes_the_page() -> None:
    """The cached text follows the labels: a fleet reload may change only them."""
    ctx, _ = fleet_context(3)
    page = MetricsPage(ctx.live, labels=ctx.fleet_labels, per_gateway=True)
    assert 'region="r1"' in page.render().decode()
    name = gateway_name(1)
    old = ctx.gateways[name]
    ctx.gateways[name] = FleetGateway(old.target, labels={"region": "moved"})  # type: ignore[index]
    text = page.render().decode()
    assert 'region="moved"' in text and 'region="r1"' not in text


async def test_a_monitors_fleet_labels_and_switch_reach_its_metrics(tmp_path: Path) -> None:
    config = PollerConfig(
        fast_interval_s=0.2, slow_interval_s=1.0, budget_per_minute=1000, flush_interval_s=0.5
    )
    async with Simulator(port=0, speed=0) as sim:
        for per_gateway in (True, False):
            gateway = FleetGateway(target(sim, "home"), config, labels={"customer": "smith"})
            monitor = Monitor(
                gateways=[gateway],
                db=None,
                listen=("127.0.0.1", 0),
                clock=sim_clock(sim),
                stale_after_s=3600.0,
                metrics_per_gateway=per_gateway,
            )
            async with monitor:
                for _ in range(400):  # until the first reading (20 s at most)
                    if monitor.live.gateways()[0].reading is not None:
                        break
                    await asyncio.sleep(0.05)
                async with aiohttp.ClientSession() as http, http.get(monitor.url + "metrics") as r:
                    found = samples(await r.text())
            fleet = {
                s.labels["status"]: s.value for s in found if s.name == "tegkit_fleet_gateways"
            }
            assert fleet["ok"] == 1.0 and all(
                s.labels["customer"] == "smith" for s in found if s.name == "tegkit_fleet_gateways"
            )
            up = [s for s in found if s.name == "powerwall_up"]
            if per_gateway:
                assert [s.labels for s in up] == [{"gateway": "home", "customer": "smith"}]
            else:
                assert up == [] and [s for s in found if "gateway" in s.labels] == []


def _closed_port() -> int:
    """A loopback port nothing listens on (connections are refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(240)
@pytest.mark.parametrize("switch", ["--metrics-per-gateway", "--no-metrics-per-gateway"])
def test_teg_monitor_takes_the_switch(tmp_path: Path, switch: str) -> None:
    proc = TegProcess.teg(
        "monitor",
        "--gateway",
        f"edge=https://127.0.0.1:{_closed_port()}",
        "--pin",
        "ab" * 32,
        "--db",
        str(tmp_path / "m.db"),
        "--listen",
        "127.0.0.1:0",
        switch,
        env=clean_env(TEG_CONFIG=str(tmp_path / "config.toml")),
    )
    try:
        url = proc.line(r"dashboard (http://\S+)").group(1)

        def unreachable() -> list[Sample] | None:
            with urllib.request.urlopen(url + "metrics", timeout=10) as r:
                found = samples(r.read().decode())
            statuses = {
                s.labels["status"]: s.value for s in found if s.name == "tegkit_fleet_gateways"
            }
            return found if statuses.get("unreachable") == 1.0 else None

        found = proc.poll_until("the gateway counted unreachable", unreachable)
        assert isinstance(found, list)
    finally:
        assert proc.stop() == 0
    up = [s for s in found if s.name == "powerwall_up"]
    if switch == "--metrics-per-gateway":
        assert [(s.labels, s.value) for s in up] == [({"gateway": "edge"}, 0.0)]
    else:
        assert up == [] and [s for s in found if "gateway" in s.labels] == []
