"""Response bodies of the read endpoints, built from gateway state in the captures' shapes.

Every builder takes the gateway and the path parameters and returns (status, body); the
body is JSON-able, or None for an empty body. Live readings are read from the physics site
once per builder call, so one answer is one consistent snapshot.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from typing import Any

from tegkit.models.vocabulary import GridStatusValue, MeterName
from tegkit.sim.captures import captures
from tegkit.sim.gateway import Answer, Refusal, SimulatedGateway, not_found

Builder = Callable[[SimulatedGateway, dict[str, str]], Answer]

# Reactive power each meter shows (VAR): the captures' orders of magnitude, kept constant.
_REACTIVE_VAR = {
    MeterName.SITE: -329.0,
    MeterName.BATTERY: 30.0,
    MeterName.LOAD: -318.75,
    MeterName.SOLAR: -14.0,
}


def _t(gw: SimulatedGateway, name: str) -> Any:
    """A fresh copy of the firmware's answer template `name` (sim/captures/<firmware>/)."""
    return captures(gw.profile.name).body(name)


def _r(value: float, digits: int = 2) -> float:
    return round(float(value), digits)


def _go_duration(seconds: float) -> str:
    """Go's time.Duration string: 230h55m59.932079901s."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)}h{int(minutes)}m{secs:.9f}s"


def live_powers_w(gw: SimulatedGateway) -> dict[str, float]:
    """Instant power of the four meters; load is the sum, so load = site + battery + solar."""
    site = gw.snap()
    site_w, battery_w, solar_w = _r(site.site_w), _r(site.battery_w), _r(site.solar_w)
    return {
        MeterName.SITE: site_w,
        MeterName.BATTERY: battery_w,
        MeterName.LOAD: _r(site_w + battery_w + solar_w),
        MeterName.SOLAR: solar_w,
    }


def _aggregate_meter(
    gw: SimulatedGateway, name: MeterName, power_w: float, nanos: int
) -> dict[str, Any]:
    site = gw.snap()
    counter = site.counters[name]
    legacy = gw.profile.extra_meters
    body: dict[str, Any] = _t(gw, "meters.aggregates.meter")  # 1.x: from its own folder
    voltage_v = float(site.voltage_v)
    reactive = _REACTIVE_VAR[name] if power_w else 0.0
    apparent = math.hypot(power_w, reactive)
    current_a = apparent / voltage_v if voltage_v else 0.0
    freq = float(site.frequency_hz)
    body.update(
        last_communication_time=gw.format_time(gw.now, nanos),
        instant_power=power_w,
        instant_reactive_power=reactive,
        instant_apparent_power=apparent,
        frequency=freq if (legacy or name == MeterName.BATTERY) else 0,
        energy_exported=float(counter.exported_wh),
        energy_imported=float(counter.imported_wh),
        instant_average_voltage=voltage_v,
        instant_total_current=_r(current_a, 3) if name != MeterName.SITE else 0,
    )
    if "instant_average_current" in body:
        body["instant_average_current"] = body["instant_total_current"]
    if "num_meters_aggregated" in body:
        body["num_meters_aggregated"] = 2 if name == MeterName.SITE else 1
    if name == MeterName.LOAD:
        body.pop("num_meters_aggregated", None)
    if not gw.profile.phase_energy_time:
        body.pop("last_phase_energy_communication_time", None)
    return body


def meters_aggregates(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    powers = live_powers_w(gw)
    body: dict[str, dict[str, Any]] = {
        name: _aggregate_meter(gw, name, powers[name], 321056 + i * 67023)
        for i, name in enumerate(MeterName)
    }
    if gw.profile.extra_meters:
        for name in ("busway", "frequency", "generator"):
            body[name] = _t(gw, "meters.aggregates.idle_meter")
    return 200, body


def soe(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    full = float(gw.snap().full_pack_wh)
    return 200, {"percentage": float(gw.snap().energy_remaining_wh) / full * 100 if full else 0.0}


def grid_status(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, {"grid_status": str(gw.snap().grid_status), "grid_services_active": False}


def grid_faults(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, []


def system_status(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    site = gw.snap()
    n = max(1, gw.powerwall_count)
    full, remaining = float(site.full_pack_wh), float(site.energy_remaining_wh)
    battery_w = float(site.battery_w)
    charged = float(site.counters[MeterName.BATTERY].imported_wh)
    discharged = float(site.counters[MeterName.BATTERY].exported_wh)
    island = str(site.grid_status)
    body = _t(gw, "system_status")
    block_template = _t(gw, "system_status.battery_block")
    body.update(
        battery_target_power=_r(battery_w),
        nominal_full_pack_energy=round(full),
        nominal_energy_remaining=round(remaining),
        max_charge_power=round(float(site.max_charge_power_w)),
        max_discharge_power=round(float(site.max_discharge_power_w)),
        max_apparent_power=round(float(site.max_discharge_power_w)),
        system_island_state=island,
        available_blocks=gw.powerwall_count,
        blocks_controlled=gw.powerwall_count,
    )
    blocks = []
    for serial in gw.battery_serials:
        block = dict(block_template)
        block.update(
            PackageSerialNumber=serial,
            nominal_energy_remaining=round(remaining / n),
            nominal_full_pack_energy=round(full / n),
            p_out=_r(battery_w / n),
            v_out=_r(float(site.voltage_v)),
            f_out=float(site.frequency_hz),
            energy_charged=round(charged / n),
            energy_discharged=round(discharged / n),
            off_grid=island != GridStatusValue.CONNECTED,
            version=gw.profile.git_hash[:14],
        )
        blocks.append(block)
    body["battery_blocks"] = blocks
    return 200, body


def meter_readings(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    """Raw CT readings that add up to the aggregates: site on X ct1+2 and Y ct1+2, solar on Y ct3.

    Energies are the aggregate counters in watt-seconds, split the same way.
    """
    site = gw.snap()
    powers = live_powers_w(gw)
    half_v = _r(float(site.voltage_v) / 2)
    site_c, solar_c = site.counters[MeterName.SITE], site.counters[MeterName.SOLAR]

    def ct(n: int, p_w: float, imp_wh: float, exp_wh: float) -> dict[str, Any]:
        return {
            "ct": n,
            "v_V": half_v if n else 0,
            "p_W": _r(p_w),
            "q_VAR": 0,
            "eExp_Ws": round(exp_wh * 3600),
            "eImp_Ws": round(imp_wh * 3600),
        }

    quarter_p = powers[MeterName.SITE] / 4
    quarter_imp, quarter_exp = site_c.imported_wh / 4, site_c.exported_wh / 4
    fw = gw.profile.git_hash[:14]
    readings = {}
    for kind, serial in gw.meter_serials.items():
        cts = [
            ct(1, quarter_p, quarter_imp, quarter_exp),
            ct(2, quarter_p, quarter_imp, quarter_exp),
        ]
        if kind == "synchrometerY":  # solar CT with real_power_scale_factor 2
            solar_w = powers[MeterName.SOLAR]
            cts.append(ct(3, solar_w / 2, solar_c.exported_wh / 2, solar_c.imported_wh / 2))
        else:
            cts.append(ct(3, 0.0, 0.0, 0.0))
        cts.append(ct(0, 0.0, 0.0, 0.0))
        readings[serial] = {"error": "", "data": {"firmwareVersion": fw, "cts": cts}}
    return 200, readings


def status(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    uptime_s = (gw.now - gw.boot_time).total_seconds()
    start = gw.boot_time.astimezone(dt.timezone(dt.timedelta(hours=8)))
    if gw.profile.legacy:
        return 200, {
            "start_time": start.strftime("%Y-%m-%d %H:%M:%S %z"),
            "up_time_seconds": _go_duration(uptime_s),
            "is_new": False,
            "version": gw.profile.version,
            "git_hash": gw.profile.git_hash,
        }
    body = _t(gw, "status")
    body.update(
        din=gw.din,
        start_time=start.strftime("%Y-%m-%d %H:%M:%S %z"),
        up_time_seconds=_go_duration(uptime_s),
        version=gw.profile.version,
        git_hash=gw.profile.git_hash,
        commission_count=gw.settings.commission_count,
    )
    return 200, body


def sitemaster(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    running = gw.running
    if gw.profile.legacy:
        since_s = int((gw.now - gw.sitemaster_since).total_seconds())
        return 200, {
            "running": running,
            "uptime": f"{since_s}s," if running else "log:",
            "connected_to_tesla": running and gw.network_up,
        }
    return 200, {
        "status": "StatusUp" if running else "StatusDown",
        "running": running,
        "connected_to_tesla": gw.network_up,
        "power_supply_mode": False,
        "can_reboot": "Yes" if running else "",
    }


def operation(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    if gw.profile.legacy:
        body = {"mode": gw.mode, "backup_reserve_percent": gw.backup_reserve_raw_percent}
    else:
        body = _t(gw, "operation")
        body.update(real_mode=gw.mode, backup_reserve_percent=gw.backup_reserve_raw_percent)
    if gw.settings.max_pv_export_power_kw is not None:  # the captures have no such key
        body["max_pv_export_power_kW"] = gw.settings.max_pv_export_power_kw
    return 200, body


def _system_size(gw: SimulatedGateway) -> tuple[float, float]:
    config = gw.site.config
    energy_kwh = config.usable_kwh_per_powerwall * gw.powerwall_count
    power_kw = config.powerwall_power_kw * gw.powerwall_count
    return _r(energy_kwh, 3), _r(power_kw, 3)


def site_info(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    energy_kwh, power_kw = _system_size(gw)
    if gw.profile.flat_grid_code:
        legacy = _t(gw, "site_info")  # 1.x: a flat grid code, from its own folder
        legacy.update(
            nominal_system_energy_kWh=energy_kwh,
            nominal_system_power_kW=power_kw,
            site_name=gw.settings.site_name,
            timezone=gw.settings.timezone,
        )
        return 200, legacy
    body: dict[str, Any] = {}
    shown = gw.profile.measured_frequency
    if (shown == "running" and gw.running) or (shown == "stopped" and not gw.running):
        body["measured_frequency"] = float(gw.snap().frequency_hz)
    body.update(_t(gw, "site_info"))
    body.update(
        max_system_energy_kWh=energy_kwh,
        max_system_power_kW=power_kw,
        nominal_system_energy_kWh=energy_kwh,
        nominal_system_power_kW=power_kw,
        site_name=gw.settings.site_name,
        timezone=gw.settings.timezone,
    )
    return 200, body


def site_name(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, {"site_name": gw.settings.site_name, "timezone": gw.settings.timezone}


def powerwalls(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    body = _t(gw, "powerwalls")
    wall_template = _t(gw, "powerwalls.powerwall")
    if not gw.running:
        body["on_grid_check_error"] = "run sitemanager flag enabled, sitemanager process is running"
    on_grid = not gw.running or gw.snap().grid_status == GridStatusValue.CONNECTED
    walls = []
    for serial in gw.battery_serials:
        wall = dict(wall_template)
        wall.update(
            PackageSerialNumber=serial,
            grid_state="Grid_Compliant" if on_grid else "Grid_Uncompliant",
        )
        walls.append(wall)
    body["powerwalls"] = walls
    body["gateway_din"] = gw.din
    return 200, body


def powerwalls_status(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    if gw.profile.powerwalls_status_409_running:
        if gw.running:  # spec 001's answer, "current" as the gateway spells it
            message = "Sitemaster is current running"
            raise Refusal(409, message, message)
        return 200, _t(gw, "powerwalls.status")
    body = _t(gw, "powerwalls.status")
    if not gw.running:
        body["on_grid_check_error"] = "run sitemanager flag enabled, sitemanager process is running"
    return 200, body


def phase_usages(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    raise Refusal(500, "no phase information", "Failed getting phase detection information")


def auth_toggle_supported(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, {"toggle_auth_supported": gw.running}


def installer(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    body = _t(gw, "installer")
    if not gw.running:
        body.pop("run_sitemaster", None)
    return 200, body


def meters(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, [
        {"serial": serial, "short_id": gw.din, "type": kind, "cts": gw.settings.cts[serial]}
        for kind, serial in gw.meter_serials.items()
    ]


def meter_cts(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    serial = params["serial"]
    gw.meter_kind(serial)
    return 200, gw.settings.cts[serial]


def meter_ct_config(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    kind = gw.meter_kind(params["serial"])
    raise Refusal(500, f"meter type must be Neurio ({kind})", "Unable to get Amp configuration")


def meter_details(gw: SimulatedGateway, params: dict[str, str], *, solar: bool = False) -> Answer:
    """Legacy /api/meters/site and /solar: the old Neurio detail shape with live readings."""
    name = MeterName.SOLAR if solar else MeterName.SITE
    powers = live_powers_w(gw)
    entry = _t(gw, f"meters.{name}")[0]
    entry["Cached_readings"] = _aggregate_meter(gw, name, powers[name], 0)
    return 200, [entry]


def ct_voltage_reference_options(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    if gw.running:
        raise Refusal(
            400,
            "run sitemanager flag enabled, sitemanager process is running",
            "Failed to read Synchrometer Y CT available pairings. Please try again or reboot "
            "Gateway",
        )
    return 200, _t(gw, "synchrometer.ct_voltage_references.options")


def conn_tests(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    """Idle (not_run) until started; running for 2 s; partly done until 5 s; then all pass."""
    elapsed = gw.elapsed_s(gw.conn_tests)
    if elapsed is None:
        return 200, _t(gw, "system.networks.conn_tests")
    started = gw.conn_tests.started
    assert started is not None
    body = _t(gw, "system.networks.conn_tests.done")
    checks = []
    for i, check in enumerate(body["checks"]):
        begin_s, end_s = (0.0, 2.0, 3.5)[i], (2.0, 3.5, 5.0)[i]
        entry = dict(check)
        if elapsed < begin_s:
            break
        entry["start_time"] = gw.format_time(started + dt.timedelta(seconds=begin_s))
        if elapsed < end_s:
            entry.update(status="running", end_time=None)
        else:
            entry.update(
                status="pass", end_time=gw.format_time(started + dt.timedelta(seconds=end_s))
            )
        checks.append(entry)
    body["checks"] = checks
    return 200, body


def system_testing(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    """TestNotRun; then running for 10 s; then TestPassed with the charge test steps."""
    elapsed = gw.elapsed_s(gw.testing)
    body = _t(gw, "system.testing")
    if elapsed is None:
        return 200, body
    if elapsed < 10:
        body.update(running=True, status="TestRunning")
        return 200, body
    site_w = live_powers_w(gw)[MeterName.SITE]
    steps = [0, -1000, -2000, -1000, 0]
    results = [
        [
            {
                "Power": _r(site_w - step / 2, 4),
                "CT": ct,
                "Serial": gw.meter_serials["synchrometerX"],
                "Type": "site",
            }
            for ct in (1, 2)
        ]
        for step in steps
    ]
    body.update(
        running=False,
        status="TestPassed",
        charge_tests=steps,
        meter_results=results,
        hysteresis=0.05,
    )
    return 200, body


def update_status(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    """The update state machine (gateway.FirmwareUpdate): /update_succeeded at rest; after
    POST /api/system/update a check, then /update_failed (nonactionable: nothing newer) or
    the download, the install (/update_staged) and /update_succeeded on the new version."""
    update = gw.fw_update
    body = _t(gw, "system.update.status")
    now_ms = int(gw.now.timestamp() * 1000)
    info = {"status": [update.status]}
    if update.since is not None:
        body["last_status_time"] = int(update.since.timestamp() * 1000)
    body.update(state=update.state, info=info, current_time=now_ms, version=gw.profile.version)
    if gw.profile.legacy:
        return 200, {"state": update.state, "info": info, "current_time": now_ms}
    return 200, body


def powerwalls_update(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, {"updating": gw.fw_update.installing}


def grid_codes(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    # Served by the firmware whose folder has it (1.x); 404 from 20.49 on (spec 001).
    if "site_info.grid_codes" not in captures(gw.profile.name).names:
        raise not_found("/api/site_info/grid_codes")
    return 200, _t(gw, "site_info.grid_codes")


def config(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, {"vin": gw.din}


def registration(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, gw.settings.registration


def customer(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    reg = gw.settings.registration
    return 200, {k: reg.get(k, v) for k, v in _t(gw, "customer").items()}


def networks(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, gw.settings.networks


def client_protocols(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, gw.settings.client_protocols


def vitals(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    if not gw.profile.has_vitals:
        raise not_found("/api/devices/vitals")
    return 200, b""  # protobuf; an empty message is a valid one


def _static(body: Any) -> Builder:
    def build(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
        return 200, body

    return build


def _template(name: str) -> Builder:
    """An answer that is the firmware's template as captured, nothing filled in."""

    def build(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
        return 200, _t(gw, name)

    return build


def system_networks(gw: SimulatedGateway, params: dict[str, str]) -> Answer:
    return 200, [
        {
            "network_name": n["network_name"],
            "interface": n["interface"],
            "security_type": n.get("security_type", "NONE"),
            "dhcp": n.get("dhcp"),
        }
        for n in _t(gw, "networks")
    ]


READS: dict[str, Builder] = {
    "GET /api/meters/aggregates": meters_aggregates,
    "GET /api/system_status/soe": soe,
    "GET /api/system_status/grid_status": grid_status,
    "GET /api/system_status/grid_faults": grid_faults,
    "GET /api/system_status": system_status,
    "GET /api/meters/readings": meter_readings,
    "GET /api/status": status,
    "GET /api/sitemaster": sitemaster,
    "GET /api/operation": operation,
    "GET /api/site_info": site_info,
    "GET /api/site_info/site_name": site_name,
    "GET /api/powerwalls": powerwalls,
    "GET /api/powerwalls/status": powerwalls_status,
    "GET /api/powerwalls/phase_usages": phase_usages,
    "GET /api/auth/toggle/supported": auth_toggle_supported,
    "GET /api/installer": installer,
    "GET /api/meters": meters,
    "GET /api/meters/{serial}/cts": meter_cts,
    "GET /api/meters/{serial}/ct_config": meter_ct_config,
    "GET /api/meters/site": meter_details,
    "GET /api/meters/solar": lambda gw, p: meter_details(gw, p, solar=True),
    "GET /api/synchrometer/ct_voltage_references/options": ct_voltage_reference_options,
    "GET /api/system/networks/conn_tests": conn_tests,
    "GET /api/system/testing": system_testing,
    "GET /api/system/update/status": update_status,
    "GET /api/system/update": update_status,
    "GET /api/config": config,
    "GET /api/customer/registration": registration,
    "GET /api/customer": customer,
    "GET /api/networks": networks,
    "GET /api/networks/client_protocols": client_protocols,
    "GET /api/devices/vitals": vitals,
    "GET /api/autoconfig/status": _template("autoconfig.status"),
    "GET /api/generators": _template("generators"),
    "GET /api/generators/disconnect_types": _template("generators.disconnect_types"),
    "GET /api/installer/companies": _template("installer.companies"),
    "GET /api/meters/status": _template("meters.status"),
    "GET /api/site_info/grid_codes": grid_codes,
    "GET /api/site_info/grid_regions": _template("site_info.grid_regions"),
    "GET /api/solars": _template("solars"),
    "GET /api/solars/brands": _template("solars.brands"),
    "GET /api/solars/brands/{brand}": _template("solars.brands.brand"),
    "GET /api/synchrometer/ct_voltage_references": _template("synchrometer.ct_voltage_references"),
    "GET /api/system/networks/ping_test": _template("system.networks.ping_test"),
    "GET /api/troubleshooting/problems": _template("troubleshooting.problems"),
    "GET /api/networks/access_points": _template("networks.access_points"),
    "GET /api/legal/radio": _template("legal.radio"),
    "GET /api/powerwalls/pvi_sub_package_numbers": _template("powerwalls.pvi_sub_package_numbers"),
    "GET /api/networks/wifi_security_types": _static(["NONE", "WEP", "WPAorWPA2_Personal"]),
    "GET /api/system/networks": system_networks,
    "GET /api/powerwalls/phase_detection": _static(
        {"running_phase_detection": False, "phase_detection_last_error": "no phase information"}
    ),
    "GET /api/powerwalls/update": powerwalls_update,
    "GET /api/system/update/urgency": _static({"urgency": "none"}),
}

__all__ = ["READS", "Builder", "live_powers_w"]
