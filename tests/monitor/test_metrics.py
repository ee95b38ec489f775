"""/metrics of a monitor watching the simulator, parsed with prometheus_client's parser."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp
import pytest
from monitor_helpers import first_reading, live_monitor
from prometheus_client.parser import text_string_to_metric_families

from tegkit import percent
from tegkit.monitor import metrics as metrics_module
from tegkit.monitor.poller import FAST, SLOW
from tegkit.sim import Simulator


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url + "metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return await r.text()


async def test_metrics_carry_the_live_state_in_base_units(tmp_path: Path) -> None:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        async with live_monitor(sim, tmp_path / "m.db") as monitor:
            await first_reading(monitor)
            monitor.stop()
            for task in monitor._tasks:
                task.cancel()  # freeze the state so the scrape and the live state agree
            g = monitor.live.get("home")
            assert g is not None and g.reading is not None
            text = await _scrape(monitor.url)
        s = _samples(text)
        grafana = Path(metrics_module.__file__).with_name("grafana") / "tegkit-dashboard.json"
        used = set(re.findall(r"\b(?:powerwall|tegkit)_[a-z_]+", grafana.read_text()))
        families = {f.name for f in text_string_to_metric_families(text)}
        declared = families | {f + "_total" for f in families} | {f + "_bucket" for f in families}
        assert used and used <= declared  # the Grafana panels query real names
        r = g.reading
        home = (("gateway", "home"),)
        assert s[("powerwall_up", home)] == 1.0
        for meter in ("site", "battery", "load", "solar"):
            key = ("powerwall_power_watts", (("gateway", "home"), ("meter", meter)))
            assert s[key] == getattr(r, f"{meter}_w")
        imported = (
            "powerwall_energy_imported_joules_total",
            (("gateway", "home"), ("meter", "load")),
        )
        assert s[imported] == pytest.approx(r.load_imported_wh * 3600)  # type: ignore[operator]
        exported = (
            "powerwall_energy_exported_joules_total",
            (("gateway", "home"), ("meter", "solar")),
        )
        assert s[exported] == pytest.approx(r.solar_exported_wh * 3600)  # type: ignore[operator]
        assert r.soe_raw_percent is not None and g.backup_reserve_raw_percent is not None
        assert s[("powerwall_state_of_energy_ratio", home)] == pytest.approx(
            r.soe_raw_percent / 100
        )
        app = percent.raw_to_app(r.soe_raw_percent) / 100
        assert s[("powerwall_state_of_energy_app_ratio", home)] == pytest.approx(app)
        reserve = g.backup_reserve_raw_percent / 100
        assert s[("powerwall_backup_reserve_ratio", home)] == pytest.approx(reserve)
        grid = {k[1][1][1]: v for k, v in s.items() if k[0] == "powerwall_grid_status"}
        assert grid["SystemGridConnected"] == 1.0 and sum(grid.values()) == 1.0
        modes = {k[1][1][1]: v for k, v in s.items() if k[0] == "powerwall_operation_mode"}
        assert modes[sim.state()["mode"]] == 1.0 and sum(modes.values()) == 1.0
        assert s[("powerwall_info", (("gateway", "home"), ("version", g.version or "")))] == 1.0
        for endpoint in FAST + SLOW:
            labels = (("endpoint", endpoint), ("gateway", "home"))
            assert (
                s[("tegkit_poller_requests_total", labels)] == g.counters.requests_total[endpoint]
            )
            count = s[("tegkit_poller_request_duration_seconds_count", labels)]
            inf = s[("tegkit_poller_request_duration_seconds_bucket", (*labels, ("le", "+Inf")))]
            assert count == inf == g.counters.requests_total[endpoint]


async def test_a_stopped_system_exports_up_zero_and_no_stale_values(tmp_path: Path) -> None:
    async with Simulator(port=0, scenario="sunny-day", speed=0) as sim:
        async with live_monitor(sim, None) as monitor:
            await first_reading(monitor)
            sim.stop_sitemaster()
            g = monitor.live.get("home")
            assert g is not None
            for _ in range(200):
                if g.problem == "stopped":
                    break
                await asyncio.sleep(0.05)
            text = await _scrape(monitor.url)
        s = _samples(text)
        assert s[("powerwall_up", (("gateway", "home"),))] == 0.0
        names = {name for name, _ in s}
        assert "powerwall_power_watts" not in names
        assert "powerwall_state_of_energy_ratio" not in names
        errors = {
            dict(labels)["kind"]
            for name, labels in s
            if name == "tegkit_poller_errors_total" and dict(labels)["endpoint"] == "soe"
        }
        assert errors == {"stopped"}
