"""The simulated site's physics: identities, counters, modes, outages, battery behaviour."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import ExportRule, GridStatusValue, MeterName, OperationMode
from tegkit.sim.physics import Site, SiteConfig
from tegkit.tariff import builtin_tariff

GRID_CONNECTED = GridStatusValue.CONNECTED
GRID_ISLANDED = GridStatusValue.ISLANDED_ACTIVE
GRID_TRANSITION = GridStatusValue.TRANSITION_TO_GRID
METERS = tuple(MeterName)
LA = ZoneInfo("America/Los_Angeles")
MIDSUMMER = datetime(2024, 6, 21, 0, 0, tzinfo=LA)


def make_site(start: datetime = MIDSUMMER, seed: int = 1, **config: object) -> Site:
    return Site(SiteConfig(**config), start, seed)  # type: ignore[arg-type]


def assert_identity(site: Site) -> None:
    assert site.load_w == pytest.approx(site.site_w + site.battery_w + site.solar_w, abs=1e-6)


def counters_flat(site: Site) -> list[float]:
    counters = site.counters
    return [v for m in METERS for v in (counters[m].imported_wh, counters[m].exported_wh)]


def run_day(site: Site, step_s: float = 60.0, hours: float = 24.0) -> None:
    for _ in range(int(hours * 3600 / step_s)):
        assert_identity(site)
        site.advance(step_s)


# --- identities and counters ----------------------------------------------------------------


def test_power_identity_and_counter_integral_over_a_day() -> None:
    site = make_site()
    before = site.counters
    integral = {"site+": 0.0, "site-": 0.0, "bat+": 0.0, "bat-": 0.0, "load": 0.0, "solar": 0.0}
    previous = counters_flat(site)
    for _ in range(24 * 60):
        assert_identity(site)
        assert site.solar_w >= 0.0 and site.load_w >= 0.0
        h = 60.0 / 3600.0
        integral["site+"] += max(site.site_w, 0.0) * h
        integral["site-"] += max(-site.site_w, 0.0) * h
        integral["bat+"] += max(site.battery_w, 0.0) * h
        integral["bat-"] += max(-site.battery_w, 0.0) * h
        integral["load"] += site.load_w * h
        integral["solar"] += site.solar_w * h
        site.advance(60.0)
        now = counters_flat(site)
        assert all(b >= a for a, b in zip(previous, now, strict=True))
        previous = now
    after = site.counters
    pairs = {
        "site+": after["site"].imported_wh - before["site"].imported_wh,
        "site-": after["site"].exported_wh - before["site"].exported_wh,
        "bat+": after["battery"].exported_wh - before["battery"].exported_wh,
        "bat-": after["battery"].imported_wh - before["battery"].imported_wh,
        "load": after["load"].imported_wh - before["load"].imported_wh,
        "solar": after["solar"].exported_wh - before["solar"].exported_wh,
    }
    for key, delta in pairs.items():
        assert delta == pytest.approx(integral[key], rel=1e-3, abs=1e-6), key
    # a midsummer day in LA with 7 kW: real, non-trivial flows in every direction
    assert pairs["solar"] > 30_000 and pairs["load"] > 20_000
    assert pairs["site-"] > 1_000 and pairs["bat+"] > 1_000 and pairs["bat-"] > 1_000


def test_counters_start_at_plausible_lifetime_values() -> None:
    counters = make_site().counters
    assert counters["load"].imported_wh > 1e6
    assert counters["solar"].exported_wh > 1e6
    assert counters["battery"].imported_wh > counters["battery"].exported_wh > 0
    assert counters["site"].imported_wh > 0 and counters["site"].exported_wh > 0


def test_soe_consistent_with_energy_remaining_and_bounded() -> None:
    site = make_site(powerwalls=2, initial_soe_raw_percent=90.0)
    assert site.full_pack_wh == pytest.approx(2 * 13_500 / 0.95)
    for _ in range(48):
        site.advance(1800.0)
        assert 0.0 <= site.soe_raw_percent <= 100.0
        expected = site.soe_raw_percent * site.full_pack_wh / 100.0
        assert site.energy_remaining_wh == pytest.approx(expected)
        assert site.soe_app_percent == pytest.approx(max(0.0, (site.soe_raw_percent - 5.0) / 0.95))


def test_any_stepping_pattern_gives_nearly_the_same_counters() -> None:
    coarse, fine = make_site(seed=4), make_site(seed=4)
    coarse.advance(6 * 3600.0 + 37.0)
    for _ in range(6 * 360):
        fine.advance(10.0)
    fine.advance(37.0)
    assert coarse.epoch_s == pytest.approx(fine.epoch_s)
    for a, b in zip(counters_flat(coarse), counters_flat(fine), strict=True):
        assert a == pytest.approx(b, rel=1e-3)
    assert coarse.soe_raw_percent == pytest.approx(fine.soe_raw_percent, abs=0.5)


def test_same_seed_same_day_other_seed_other_day() -> None:
    a, b, c = make_site(seed=9), make_site(seed=9), make_site(seed=10)
    for site in (a, b, c):
        site.advance(13 * 3600.0)
    assert a.snapshot() == b.snapshot()
    assert counters_flat(a) != counters_flat(c)


def test_snapshot_carries_the_readings() -> None:
    site = make_site()
    site.advance(12 * 3600.0)
    snap = site.snapshot()
    assert snap.now == site.now == MIDSUMMER + timedelta(hours=12)
    assert (snap.solar_w, snap.load_w, snap.site_w) == (site.solar_w, site.load_w, site.site_w)
    assert snap.counters["solar"] == site.counters["solar"]
    assert snap.grid_status == GRID_CONNECTED and not snap.home_dark
    with pytest.raises(TypeError):
        snap.counters["solar"] = snap.counters["load"]  # type: ignore[index]


# --- solar and load ---------------------------------------------------------------------------


def test_solar_follows_the_sun_and_clouds() -> None:
    site = make_site(array_kw=8.0)
    site.advance(2 * 3600.0)
    assert site.solar_w == 0.0  # 02:00
    site.advance(11 * 3600.0)  # 13:00 PDT, about solar noon in LA
    clear_w = site.solar_w
    assert 5_000 < clear_w <= 8_000 * 0.8 * 1.05
    site.cloud_cover = 1.0
    assert site.solar_w < 0.6 * clear_w
    winter = make_site(start=datetime(2024, 12, 21, 12, 0, tzinfo=LA), array_kw=8.0)
    assert winter.solar_w < clear_w


def test_load_profile_has_night_base_and_evening_peak_scaled_to_the_day() -> None:
    site = make_site(array_kw=0.0, daily_load_kwh=25.0)
    night, evening = [], []
    start = site.counters["load"].imported_wh
    for minute in range(24 * 60):
        hour = minute // 60
        if 1 <= hour < 5:
            night.append(site.load_w)
        if 17 <= hour < 21:
            evening.append(site.load_w)
        site.advance(60.0)
    day_wh = site.counters["load"].imported_wh - start
    assert 250 < sorted(night)[len(night) // 2] < 450
    assert sum(evening) / len(evening) > 2.5 * sum(night) / len(night)
    assert 18_000 < day_wh < 32_000


def test_load_spike_adds_demand_for_its_duration() -> None:
    site = make_site(array_kw=0.0)
    site.load_override_w = None
    before = site.load_w
    site.add_load_spike(7_000.0, 600.0)
    assert site.load_w == pytest.approx(before + 7_000.0)
    site.advance(900.0)
    assert site.load_w < 3_000.0


# --- self-consumption ---------------------------------------------------------------------


def test_midday_surplus_charges_then_exports_when_full() -> None:
    site = make_site(initial_soe_raw_percent=50.0)
    site.solar_override_w, site.load_override_w = 4_000.0, 1_000.0
    assert site.battery_w == pytest.approx(-3_000.0)
    assert site.site_w == pytest.approx(0.0)
    for _ in range(6 * 60):
        site.advance(60.0)
    assert site.soe_raw_percent == pytest.approx(100.0)
    assert site.battery_w == pytest.approx(0.0)
    assert site.site_w == pytest.approx(-3_000.0)


def test_night_battery_covers_home_down_to_reserve_then_grid_imports() -> None:
    site = make_site(initial_soe_raw_percent=40.0)
    site.backup_reserve_raw_percent = 30.0
    site.solar_override_w, site.load_override_w = 0.0, 1_500.0
    assert site.battery_w == pytest.approx(1_500.0) and site.site_w == pytest.approx(0.0)
    site.advance(4 * 3600.0)
    assert site.soe_raw_percent == pytest.approx(30.0)
    assert site.battery_w == 0.0
    assert site.site_w == pytest.approx(1_500.0)


def test_never_below_hidden_five_percent_on_grid_even_with_zero_reserve() -> None:
    site = make_site(initial_soe_raw_percent=10.0)
    site.backup_reserve_raw_percent = 0.0
    site.solar_override_w, site.load_override_w = 0.0, 2_000.0
    site.advance(6 * 3600.0)
    assert site.soe_raw_percent == pytest.approx(5.0)
    assert site.soe_app_percent == pytest.approx(0.0)


def test_reserve_above_soe_charges_slowly_from_grid() -> None:
    site = make_site(initial_soe_raw_percent=20.0)
    site.solar_override_w, site.load_override_w = 0.0, 800.0
    site.backup_reserve_raw_percent = 50.0
    assert -2_500.0 < site.battery_w < -1_000.0  # slow: well below the 5 kW rating
    assert site.site_w == pytest.approx(800.0 - site.battery_w)
    site.advance(12 * 3600.0)
    assert site.soe_raw_percent == pytest.approx(50.0)
    assert site.battery_w == 0.0


def test_charge_tapers_above_95_percent() -> None:
    site = make_site(initial_soe_raw_percent=90.0)
    site.solar_override_w, site.load_override_w = 8_000.0, 500.0
    assert site.battery_w == pytest.approx(-5_000.0)
    site.set_soe_raw_percent(97.5)
    assert site.battery_w == pytest.approx(-2_500.0, rel=0.01)
    assert site.max_charge_power_w == pytest.approx(2_500.0, rel=0.01)
    site.set_soe_raw_percent(99.9)
    assert -200.0 < site.battery_w < 0.0


def test_round_trip_efficiency_about_90_percent() -> None:
    site = make_site(initial_soe_raw_percent=20.0)
    site.backup_reserve_raw_percent = 5.0
    site.solar_override_w, site.load_override_w = 3_000.0, 0.0
    start = site.counters["battery"]
    site.advance(2 * 3600.0)
    charged_wh = site.counters["battery"].imported_wh - start.imported_wh
    soe_full = site.soe_raw_percent
    site.solar_override_w, site.load_override_w = 0.0, 1_000.0
    while site.soe_raw_percent > 20.0 + 1e-9:
        site.advance(60.0)
        assert site.soe_raw_percent >= 5.0
        if site.battery_w == 0.0:
            break
    discharged_wh = site.counters["battery"].exported_wh - start.exported_wh
    # discharge ran a little past 20% within the last minute; correct by the pack energy
    overshoot_wh = (20.0 - site.soe_raw_percent) * site.full_pack_wh / 100.0 * math.sqrt(0.9)
    assert soe_full > 50.0
    assert (discharged_wh - overshoot_wh) / charged_wh == pytest.approx(0.90, abs=0.005)


# --- other modes ----------------------------------------------------------------------------


def test_backup_mode_charges_to_full_and_never_discharges_on_grid() -> None:
    site = make_site(initial_soe_raw_percent=60.0)
    site.mode = "backup"
    site.solar_override_w, site.load_override_w = 0.0, 2_000.0
    assert site.battery_w == pytest.approx(-5_000.0)  # from the grid at night
    for _ in range(6 * 60):
        site.advance(60.0)
        assert site.battery_w <= 0.0
    assert site.soe_raw_percent == pytest.approx(100.0)
    assert site.site_w == pytest.approx(2_000.0)


def test_scheduler_mode_idles_the_battery() -> None:
    site = make_site()
    site.mode = "scheduler"
    site.load_override_w = 2_000.0
    site.advance(3600.0)
    assert site.battery_w == 0.0
    assert site.soe_raw_percent == pytest.approx(50.0)


def test_autonomous_tou_charges_in_cheap_hours_and_discharges_in_peak() -> None:
    tariff = builtin_tariff("california-tou")
    site = make_site(tariff=tariff, grid_charging=True, initial_soe_raw_percent=30.0)
    site.mode = "autonomous"
    site.solar_override_w, site.load_override_w = 0.0, 1_000.0
    site.advance(3600.0)  # 01:00, super off-peak: charge from the grid
    assert site.battery_w == pytest.approx(-5_000.0)
    assert site.site_w == pytest.approx(6_000.0)
    site.advance(9 * 3600.0)  # 10:00, off-peak before the peak: energy is kept for the peak
    assert site.soe_raw_percent == pytest.approx(100.0)  # the night's grid charge filled it
    assert site.battery_w == 0.0 and site.site_w == pytest.approx(1_000.0)
    site.set_soe_raw_percent(80.0)
    site.solar_override_w = 3_000.0  # ... but solar surplus still charges
    assert site.battery_w == pytest.approx(-2_000.0)
    site.solar_override_w = 0.0
    site.advance(7 * 3600.0)  # 17:00, peak: battery covers the home, no battery export
    assert site.battery_w == pytest.approx(1_000.0) and site.site_w == pytest.approx(0.0)
    site.advance(5 * 3600.0)  # 22:00, off-peak after the peak: self-consumption
    assert site.battery_w == pytest.approx(1_000.0)


def test_autonomous_without_grid_charging_holds_energy_for_the_peak() -> None:
    tariff = builtin_tariff("california-tou")
    site = make_site(tariff=tariff, grid_charging=False, initial_soe_raw_percent=60.0)
    site.mode = "autonomous"
    site.solar_override_w, site.load_override_w = 0.0, 1_000.0
    site.advance(3600.0)  # 01:00, cheapest hours: no grid charging, energy kept for the peak
    assert site.battery_w == 0.0 and site.site_w == pytest.approx(1_000.0)


def test_autonomous_battery_export_in_peak_when_configured() -> None:
    tariff = builtin_tariff("california-tou")
    site = make_site(tariff=tariff, battery_export=True, initial_soe_raw_percent=90.0)
    site.mode = "autonomous"
    site.solar_override_w, site.load_override_w = 0.0, 1_000.0
    site.advance(17 * 3600.0)
    assert site.battery_w == pytest.approx(5_000.0)
    assert site.site_w == pytest.approx(-4_000.0)


# --- outages and the sitemaster -------------------------------------------------------------


def test_outage_islands_and_battery_goes_below_reserve_then_home_dark() -> None:
    site = make_site(initial_soe_raw_percent=30.0)
    site.backup_reserve_raw_percent = 24.0
    site.solar_override_w, site.load_override_w = 0.0, 2_000.0
    site.start_outage()
    assert site.grid_status == GRID_ISLANDED
    assert site.site_w == 0.0 and site.battery_w == pytest.approx(2_000.0)
    went_below_reserve = False
    for _ in range(5 * 60):
        site.advance(60.0)
        assert site.site_w == 0.0
        assert_identity(site)
        went_below_reserve |= 0.0 < site.soe_raw_percent < 24.0
    assert went_below_reserve
    assert site.soe_raw_percent == pytest.approx(5.0)  # the hidden bottom: app 0%
    assert site.soe_app_percent == 0.0
    assert site.max_discharge_power_w == 0.0
    assert site.home_dark
    assert site.load_w == site.battery_w == site.solar_w == 0.0


def test_outage_curtails_solar_with_frequency_shift_when_full() -> None:
    site = make_site(initial_soe_raw_percent=100.0)
    site.solar_override_w, site.load_override_w = 5_000.0, 1_000.0
    assert abs(site.frequency_hz - 60.0) < 0.1
    site.start_outage()
    assert site.curtailing
    assert site.frequency_hz == pytest.approx(65.0, abs=0.2)
    assert site.solar_w == pytest.approx(1_000.0)  # curtailed to what the home takes
    assert site.site_w == 0.0
    site.load_override_w = 6_000.0
    assert not site.curtailing and abs(site.frequency_hz - 60.0) < 0.1


def test_restore_transitions_then_connects_and_recharges_to_reserve_first() -> None:
    site = make_site(initial_soe_raw_percent=15.0)
    site.backup_reserve_raw_percent = 40.0
    site.solar_override_w, site.load_override_w = 0.0, 1_000.0
    site.start_outage()
    site.advance(600.0)
    assert site.soe_raw_percent < 15.0
    site.end_outage()
    assert site.grid_status == GRID_TRANSITION
    assert site.site_w == 0.0
    site.advance(5.0)
    assert site.grid_status == GRID_TRANSITION
    site.advance(60.0)
    assert site.grid_status == GRID_CONNECTED
    assert site.battery_w < 0.0  # charging from the grid back to the reserve
    site.advance(24 * 3600.0)
    assert site.soe_raw_percent == pytest.approx(40.0)


def test_dark_home_comes_back_when_grid_returns() -> None:
    site = make_site(initial_soe_raw_percent=1.0)
    site.solar_override_w, site.load_override_w = 0.0, 3_000.0
    site.start_outage()
    site.advance(3600.0)
    assert site.home_dark and site.frequency_hz == 0.0 and site.voltage_v == 0.0
    site.end_outage()
    site.advance(120.0)
    assert not site.home_dark and site.load_w == pytest.approx(3_000.0)


def test_stopped_sitemaster_idles_battery_but_readings_evolve() -> None:
    site = make_site()
    site.load_override_w = 1_200.0
    site.running = False
    site.advance(8 * 3600.0)
    assert site.battery_w == 0.0 and site.soe_raw_percent == pytest.approx(50.0)
    assert site.max_charge_power_w == 0.0
    assert site.site_w == pytest.approx(1_200.0 - site.solar_w)
    site.running = True
    assert site.battery_w != 0.0


def test_controls_are_validated() -> None:
    site = make_site()
    with pytest.raises(InvalidInputError, match="mode"):
        site.mode = "turbo"
    with pytest.raises(InvalidInputError, match="backup_reserve_raw_percent"):
        site.backup_reserve_raw_percent = 101.0
    with pytest.raises(InvalidInputError, match="cloud_cover"):
        site.cloud_cover = -0.1
    with pytest.raises(InvalidInputError, match="dt_s"):
        site.advance(-1.0)
    with pytest.raises(InvalidInputError, match="powerwall_power_kw"):
        SiteConfig(powerwall_power_kw=6.0)
    with pytest.raises(InvalidInputError, match="powerwalls"):
        SiteConfig(powerwalls=11)
    with pytest.raises(InvalidInputError, match="timezone"):
        SiteConfig(timezone="Mars/Olympus_Mons")
    with pytest.raises(InvalidInputError, match="start"):
        Site(SiteConfig(), datetime(2024, 1, 1), 0)


# --- random control sequences keep the invariants -------------------------------------------


def assert_cloud_settings_hold(site: Site) -> None:
    """What each cloud setting promises, at this instant (on grid, sitemaster running)."""
    if site.grid_status != GRID_CONNECTED or not site.running:
        return
    surplus_w = max(0.0, site.solar_w - site.load_w)
    if site.export_rule != ExportRule.BATTERY_OK and site.battery_w > 0.0:
        assert site.site_w >= -1e-6  # the battery never discharges to the grid
    if site.export_rule == ExportRule.NEVER:
        assert site.site_w >= -1e-6  # nothing is exported: solar is curtailed instead
    if site.storm_watch and site.mode != OperationMode.SCHEDULER:
        assert site.battery_w <= 0.0  # charging to full or holding there
    autonomous = site.mode == OperationMode.AUTONOMOUS
    if autonomous and not site.grid_charging_allowed and not site.storm_watch:
        assert -site.battery_w <= surplus_w + 1e-6  # only solar surplus charges


_actions = st.one_of(
    st.tuples(st.just("advance"), st.floats(0.0, 7200.0)),
    st.tuples(st.just("mode"), st.sampled_from(["self_consumption", "backup", "autonomous"])),
    st.tuples(st.just("reserve"), st.floats(0.0, 100.0)),
    st.tuples(st.just("cloud"), st.floats(0.0, 1.0)),
    st.tuples(st.just("outage"), st.booleans()),
    st.tuples(st.just("running"), st.booleans()),
    st.tuples(st.just("solar"), st.one_of(st.none(), st.floats(0.0, 12_000.0))),
    st.tuples(st.just("load"), st.one_of(st.none(), st.floats(0.0, 15_000.0))),
    st.tuples(st.just("spike"), st.floats(0.0, 8_000.0)),
    st.tuples(st.just("grid_charging"), st.booleans()),
    st.tuples(st.just("export_rule"), st.sampled_from(list(ExportRule))),
    st.tuples(st.just("storm"), st.booleans()),
    st.tuples(st.just("ev_reserve"), st.floats(0.0, 100.0)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actions=st.lists(_actions, max_size=25),
    soe=st.floats(0.0, 100.0),
    seed=st.integers(0, 2**32),
)
def test_random_control_sequences_keep_the_invariants(
    actions: list[tuple[str, object]], soe: float, seed: int
) -> None:
    site = make_site(
        seed=seed,
        initial_soe_raw_percent=soe,
        tariff=builtin_tariff("california-tou"),
        grid_charging=True,
        battery_export=True,
    )
    previous = counters_flat(site)
    for name, value in actions:
        if name == "advance":
            site.advance(float(value))  # type: ignore[arg-type]
        elif name == "mode":
            site.mode = str(value)
        elif name == "reserve":
            site.backup_reserve_raw_percent = float(value)  # type: ignore[arg-type]
        elif name == "cloud":
            site.cloud_cover = float(value)  # type: ignore[arg-type]
        elif name == "outage":
            site.start_outage() if value else site.end_outage()
        elif name == "running":
            site.running = bool(value)
        elif name == "solar":
            site.solar_override_w = value  # type: ignore[assignment]
        elif name == "load":
            site.load_override_w = value  # type: ignore[assignment]
        elif name == "spike":
            site.add_load_spike(float(value), 300.0)  # type: ignore[arg-type]
        elif name == "grid_charging":
            site.grid_charging_allowed = bool(value)
        elif name == "export_rule":
            site.export_rule = str(value)
        elif name == "storm":
            site.storm_watch = bool(value)
        elif name == "ev_reserve":
            site.off_grid_ev_reserve_app_percent = float(value)  # type: ignore[arg-type]
        assert_identity(site)
        assert_cloud_settings_hold(site)
        assert 0.0 <= site.soe_raw_percent <= 100.0
        assert site.solar_w >= 0.0 and site.load_w >= 0.0
        if site.grid_status != GRID_CONNECTED:
            assert site.site_w == 0.0
        assert abs(site.battery_w) <= 5_000.0 + 1e-6
        now = counters_flat(site)
        assert all(b >= a - 1e-9 for a, b in zip(previous, now, strict=True))
        previous = now
