"""The site behaviours behind Tesla's energy commands, and the cloud's history of the site.

Physics: each setting changes what the meters do over a simulated day (read from the
counters). Cloud: a change made through the cloud reaches the gateway after the propagation
delay, and backup / calendar history agree with what the physics did.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from gateway_sim_helpers import simulator

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, OperationMode
from tegkit.sim.cloud_history import (
    FLOW_FIELDS,
    MAX_DAYS,
    MAX_OUTAGES,
    CloudHistory,
    split_flows,
)
from tegkit.sim.gateway import MAX_PENDING_CHANGES
from tegkit.sim.physics import Site, SiteConfig
from tegkit.tariff import builtin_tariff

LA = ZoneInfo("America/Los_Angeles")
MIDNIGHT = dt.datetime(2024, 6, 21, 0, 0, tzinfo=LA)


def make_site(**config: object) -> Site:
    return Site(SiteConfig(**config), MIDNIGHT, 3)  # type: ignore[arg-type]


def deltas(before: Site | dict[str, tuple[float, float]], site: Site) -> dict[str, float]:
    """Energy per counter since `before` (a dict from `flat`), Wh."""
    now = flat(site)
    assert isinstance(before, dict)
    return {
        f"{meter}_{direction}": now[meter][i] - before[meter][i]
        for meter in now
        for i, direction in enumerate(("imported", "exported"))
    }


def flat(site: Site) -> dict[str, tuple[float, float]]:
    return {m: (c.imported_wh, c.exported_wh) for m, c in site.counters.items()}


def run(site: Site, hours: float, step_s: float = 300.0) -> list[tuple[float, ...]]:
    """Advance `hours`, returning (solar, load, battery, site, soe) after each step."""
    seen = []
    for _ in range(int(hours * 3600 / step_s)):
        site.advance(step_s)
        seen.append((site.solar_w, site.load_w, site.battery_w, site.site_w, site.soe_raw_percent))
    return seen


# --- the settings' physics over a day -------------------------------------------------------


def test_autonomous_without_grid_charging_never_charges_from_the_grid() -> None:
    # A TOU site set up to charge in cheap hours, from a pack below its reserve: with grid
    # charging allowed it imports to charge; disallowed, every Wh charged is solar surplus.
    tariff = builtin_tariff("california-tou")
    results = {}
    for allowed in (True, False):
        site = make_site(tariff=tariff, grid_charging=True, initial_soe_raw_percent=10.0)
        site.mode = OperationMode.AUTONOMOUS
        site.backup_reserve_raw_percent = 40.0
        site.grid_charging_allowed = allowed
        before = flat(site)
        history = CloudHistory(LA)
        site.observer = history
        run(site, 24.0)
        [day] = history.energy_series("day", MIDNIGHT)
        results[allowed] = (deltas(before, site), day)
    _, day_allowed = results[True]
    charged_solar_only, day_solar_only = results[False]
    assert day_allowed["battery_energy_imported_from_grid"] > 1_000.0  # it does, when allowed
    assert day_solar_only["battery_energy_imported_from_grid"] == pytest.approx(0.0, abs=1e-6)
    assert day_solar_only["battery_energy_imported_from_solar"] > 1_000.0  # solar still charges
    # ... and what the battery took equals what solar gave it: the grid gave nothing.
    assert charged_solar_only["battery_imported"] == pytest.approx(
        day_solar_only["battery_energy_imported_from_solar"], rel=1e-9
    )


def test_grid_charging_disallowed_at_night_leaves_the_pack_below_its_reserve() -> None:
    site = make_site(initial_soe_raw_percent=10.0)
    site.mode = OperationMode.AUTONOMOUS
    site.backup_reserve_raw_percent = 50.0
    site.solar_override_w, site.load_override_w = 0.0, 800.0
    site.grid_charging_allowed = False
    run(site, 2.0)
    assert site.soe_raw_percent == pytest.approx(10.0)  # no sun, no grid: nothing charges it
    assert site.site_w == pytest.approx(800.0)
    site.grid_charging_allowed = True
    assert site.battery_w < 0.0  # allowed again: the slow charge back to the reserve starts


def test_storm_watch_charges_to_full_from_the_grid_and_holds() -> None:
    site = make_site(initial_soe_raw_percent=30.0)
    site.storm_watch = True
    seen = run(site, 24.0)
    assert seen[0][2] < 0.0 and seen[0][3] > 0.0  # at night: charging, from the grid
    reached = next(i for i, s in enumerate(seen) if s[4] >= 100.0 - 1e-9)
    assert all(s[4] == pytest.approx(100.0) for s in seen[reached:])  # holds, all evening too
    assert all(s[2] <= 0.0 for s in seen)  # never discharges while on
    site.storm_watch = False
    site.load_override_w, site.solar_override_w = 2_000.0, 0.0
    assert site.battery_w > 0.0  # off again: self-powered, the battery serves the home


def test_export_rule_never_exports_nothing_and_curtails_solar() -> None:
    site = make_site(initial_soe_raw_percent=90.0, array_kw=10.0)
    site.export_rule = ExportRule.NEVER
    before = flat(site)
    seen = run(site, 24.0)
    assert all(s[3] >= 0.0 for s in seen)  # the site never exports
    assert deltas(before, site)["site_exported"] == pytest.approx(0.0, abs=1e-9)
    midday = max(seen, key=lambda s: s[0])
    assert midday[0] == pytest.approx(midday[1] - midday[2])  # solar made only what was used
    # The same day under pv_only exports the surplus once the pack is full.
    other = make_site(initial_soe_raw_percent=90.0, array_kw=10.0)
    other.export_rule = ExportRule.PV_ONLY
    before = flat(other)
    run(other, 24.0)
    assert deltas(before, other)["site_exported"] > 5_000.0


def test_battery_exports_only_under_battery_ok() -> None:
    tariff = builtin_tariff("california-tou")
    exported = {}
    for rule in ExportRule:
        site = make_site(tariff=tariff, battery_export=True, initial_soe_raw_percent=95.0)
        site.mode = OperationMode.AUTONOMOUS
        site.export_rule = rule
        history = CloudHistory(LA)
        site.observer = history
        seen = run(site, 24.0)
        [day] = history.energy_series("day", MIDNIGHT)
        exported[rule] = day["grid_energy_exported_from_battery"]
        if rule != ExportRule.BATTERY_OK:
            # whatever the site exports is solar surplus, never battery energy
            assert all(-s[3] <= max(0.0, s[0] - s[1]) + 1e-6 for s in seen)
    assert exported[ExportRule.BATTERY_OK] > 1_000.0  # the peak's full-power discharge
    assert exported[ExportRule.PV_ONLY] == pytest.approx(0.0, abs=1e-6)
    assert exported[ExportRule.NEVER] == pytest.approx(0.0, abs=1e-6)


def test_off_grid_ev_reserve_is_stored_and_changes_no_power() -> None:
    a, b = make_site(), make_site()
    b.off_grid_ev_reserve_app_percent = 70.0
    a.start_outage()
    b.start_outage()
    assert run(a, 6.0) == run(b, 6.0)
    assert b.snapshot().off_grid_ev_reserve_app_percent == 70.0


def test_settings_are_validated_naming_the_field() -> None:
    site = make_site()
    with pytest.raises(InvalidInputError, match=r"export_rule.*pv_only, battery_ok, never"):
        site.export_rule = "sometimes"
    with pytest.raises(InvalidInputError, match="grid_charging_allowed"):
        site.grid_charging_allowed = 1  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match="storm_watch"):
        site.storm_watch = "on"  # type: ignore[assignment]
    with pytest.raises(InvalidInputError, match="off_grid_ev_reserve_app_percent"):
        site.off_grid_ev_reserve_app_percent = 101.0
    assert site.export_rule == ExportRule.PV_ONLY and site.grid_charging_allowed


def test_flows_split_the_meters_exactly() -> None:
    for solar, load, battery in [
        (5_000.0, 1_000.0, -3_000.0),  # solar serves the home, charges, exports the rest
        (1_000.0, 3_000.0, -2_000.0),  # the grid supplies the home and tops up the battery
        (0.0, 1_000.0, 5_000.0),  # the battery serves the home and exports
        (2_000.0, 1_000.0, 0.0),
    ]:
        site = load - battery - solar
        flows = dict(zip(FLOW_FIELDS, split_flows(solar, load, battery), strict=True))
        assert all(v >= 0.0 for v in flows.values())
        assert flows["grid_energy_imported"] == pytest.approx(max(site, 0.0))
        exported = (
            flows["grid_energy_exported_from_solar"] + flows["grid_energy_exported_from_battery"]
        )
        assert exported == pytest.approx(max(-site, 0.0))
        consumer = sum(v for k, v in flows.items() if k.startswith("consumer_"))
        assert consumer == pytest.approx(load)


# --- the cloud: propagation delay and history --------------------------------------------------


async def test_a_cloud_change_is_invisible_before_the_delay_and_in_effect_after() -> None:
    async with simulator(cloud_port=None, cloud_delay_s=10.0) as sim:
        cloud = sim.cloud_site
        cloud.set_storm_mode(True)
        cloud.set_grid_import_export(
            disallow_charge_from_grid_with_solar_installed=True,
            customer_preferred_export_rule=ExportRule.NEVER,
        )
        cloud.set_backup_reserve_app_percent(50.0)
        info = cloud.energy_settings()
        assert info["user_settings"]["storm_mode_enabled"] is False
        assert info["components"]["customer_preferred_export_rule"] == ExportRule.PV_ONLY
        assert cloud.site_info()["backup_reserve_percent"] == pytest.approx(20.0)
        await sim.advance(9.0)
        assert sim.gateway.site.storm_watch is False  # the local side does not have it yet
        assert sim.state()["backup_reserve_raw_percent"] == pytest.approx(24.0)
        await sim.advance(1.0)  # 10 s after the change: in effect, locally and in the cloud
        assert sim.gateway.site.storm_watch is True
        assert sim.state()["backup_reserve_raw_percent"] == pytest.approx(52.5)
        assert cloud.site_info()["backup_reserve_percent"] == pytest.approx(50.0)
        info = cloud.energy_settings()
        assert info["user_settings"]["storm_mode_enabled"] is True
        assert info["components"]["customer_preferred_export_rule"] == ExportRule.NEVER
        assert info["components"]["disallow_charge_from_grid_with_solar_installed"] is True
        assert cloud.live_status()["storm_mode_active"] is True
        assert sim.gateway.pending_changes == {}


async def test_cloud_changes_land_in_order_and_bad_ones_are_refused_at_once() -> None:
    async with simulator(cloud_port=None, cloud_delay_s=30.0) as sim:
        cloud = sim.cloud_site
        cloud.set_operation_mode(OperationMode.BACKUP)
        await sim.advance(10.0)
        cloud.set_operation_mode(OperationMode.AUTONOMOUS)
        await sim.advance(20.0)
        assert sim.gateway.mode == OperationMode.BACKUP  # the first, 30 s after it was made
        await sim.advance(10.0)
        assert sim.gateway.mode == OperationMode.AUTONOMOUS  # then the second
        with pytest.raises(InvalidInputError, match="customer_preferred_export_rule"):
            cloud.set_grid_import_export(customer_preferred_export_rule="always")
        with pytest.raises(InvalidInputError, match="off_grid_vehicle_charging_reserve_percent"):
            cloud.set_off_grid_vehicle_charging_reserve_app_percent(-1.0)
        with pytest.raises(InvalidInputError, match="enabled"):
            cloud.set_storm_mode("yes")  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError, match="mode"):
            cloud.set_operation_mode("turbo")
        assert sim.gateway.pending_changes == {}  # nothing refused was queued
        for _ in range(MAX_PENDING_CHANGES):
            cloud.set_off_grid_vehicle_charging_reserve_app_percent(40.0)
        with pytest.raises(InvalidInputError, match="at most 64 changes waiting"):
            cloud.set_off_grid_vehicle_charging_reserve_app_percent(40.0)
        await sim.advance(30.0)
        assert sim.gateway.pending_changes == {}
        assert cloud.energy_settings()["off_grid_vehicle_charging_reserve_percent"] == 40.0


async def test_no_delay_applies_at_once() -> None:
    async with simulator(cloud_port=None) as sim:
        sim.cloud_site.set_storm_mode(True)
        assert sim.gateway.site.storm_watch is True


async def test_calendar_history_sums_equal_the_counters_deltas() -> None:
    start = dt.datetime(2024, 6, 10, 0, 0, tzinfo=LA)
    async with simulator(cloud_port=None, start=start) as sim:
        before = flat(sim.gateway.site)
        sim.start_outage(minutes=90)  # off-grid flows are part of the days too
        await sim.advance(3 * 86400.0 + 5 * 3600.0)  # three whole days and five hours
        answer = sim.cloud_site.calendar_history("energy", "week", sim.now)
        counted = deltas(before, sim.gateway.site)
    series = answer["time_series"]
    assert answer["period"] == "week" and answer["installation_time_zone"] == "America/Los_Angeles"
    assert answer["serial_number"] == sim.gateway.din
    assert [e["timestamp"] for e in series] == [
        f"2024-06-{d}T00:00:00-07:00" for d in (10, 11, 12, 13)
    ]

    def total(*fields: str) -> float:
        return sum(e[f] for e in series for f in fields)

    assert total("grid_energy_imported") == pytest.approx(counted["site_imported"], rel=1e-9)
    assert total(
        "grid_energy_exported_from_solar", "grid_energy_exported_from_battery"
    ) == pytest.approx(counted["site_exported"], rel=1e-9)
    assert total("battery_energy_exported") == pytest.approx(counted["battery_exported"], rel=1e-9)
    assert total(
        "battery_energy_imported_from_grid", "battery_energy_imported_from_solar"
    ) == pytest.approx(counted["battery_imported"], rel=1e-9)
    assert total(
        "consumer_energy_imported_from_grid",
        "consumer_energy_imported_from_solar",
        "consumer_energy_imported_from_battery",
    ) == pytest.approx(counted["load_imported"], rel=1e-9)
    assert total("solar_energy_exported") == pytest.approx(counted["solar_exported"], rel=1e-9)
    assert series[0]["generator_energy_exported"] == 0.0
    # The year is one entry (June) holding the same energy; a day is that day alone.
    history = sim.cloud_site.history
    [june] = history.energy_series("year", sim.now)
    assert june["timestamp"] == "2024-06-01T00:00:00-07:00"
    assert june["solar_energy_exported"] == pytest.approx(total("solar_energy_exported"))
    [day] = history.energy_series("day", dt.datetime(2024, 6, 11, 18, 0, tzinfo=LA))
    assert day == series[1]


async def test_an_outage_appears_in_backup_history_with_its_duration() -> None:
    start = dt.datetime(2024, 6, 10, 12, 0, tzinfo=LA)
    async with simulator(cloud_port=None, start=start) as sim:
        await sim.advance(3600.0)
        sim.start_outage(minutes=45)
        await sim.advance(1800.0)
        assert sim.cloud_site.backup_history() == {"events": [], "total_events": 0}  # ongoing
        await sim.advance(3600.0)
        history = sim.cloud_site.backup_history()
        assert history == {
            "events": [
                # 45 minutes off grid plus the 30 s the gateway takes to resynchronise
                {"timestamp": "2024-06-10T13:00:00-07:00", "duration": (45 * 60 + 30) * 1000}
            ],
            "total_events": 1,
        }
        same_day = sim.cloud_site.calendar_history("backup", "day", sim.now)
        assert same_day == history
        next_day = dt.datetime(2024, 6, 11, 9, 0, tzinfo=LA)
        assert sim.cloud_site.calendar_history("backup", "day", next_day)["total_events"] == 0
        for kind, period, end, field in [
            ("power", "day", None, "kind"),
            ("energy", "decade", None, "period"),
            ("energy", "day", dt.datetime(2024, 6, 10), "end_date"),
        ]:
            with pytest.raises(InvalidInputError, match=field):
                sim.cloud_site.calendar_history(kind, period, end)


def test_history_memory_is_bounded() -> None:
    history = CloudHistory(LA)
    t0 = MIDNIGHT.timestamp()
    for day in range(MAX_DAYS + 30):
        history.record_step(t0 + day * 86400.0, 86400.0, 100.0, 200.0, 0.0, 100.0, day % 2 == 1)
    assert len(history.days) == MAX_DAYS
    assert history.days[0] == (MIDNIGHT + dt.timedelta(days=30)).date()
    assert history.backup_events()["total_events"] == (MAX_DAYS + 30) // 2 - 1  # last: ongoing
    for i in range(2 * MAX_OUTAGES + 4):  # many short outages: the oldest are forgotten
        history.record_step(t0 + 1e8 + i, 1.0, 0.0, 0.0, 0.0, 0.0, i % 2 == 0)
    assert history.backup_events()["total_events"] == MAX_OUTAGES
