"""Prometheus metrics of the watched gateways, collected from the live state when scraped.

Names carry base units: power in watts, energy counters in joules (the gateway's Wh x 3600),
ratios 0..1. ``powerwall_state_of_energy_ratio`` and ``powerwall_backup_reserve_ratio`` are
on the gateway's raw scale (raw percent / 100, as /api/system_status/soe reports it); the
``*_app_ratio`` gauges carry the same values on the Tesla app's scale (raw = 5 + 0.95 x app).

While a gateway's data is not fresh (stopped, unreachable, unauthorized, stale) only
``powerwall_up`` (0), ``powerwall_info`` and the poller's own metrics are exported: a missing
value is missing, never a stale or zero one.

Every per-gateway series carries ``gateway`` plus the fleet file's label names (``customer``,
``region``...; "" for a gateway without that label). Above `PER_GATEWAY_MAX` gateways, or
when told so (``teg monitor --no-metrics-per-gateway``), the per-gateway series are left out
and only the ``tegkit_fleet_*`` aggregates remain: counts and sums per combination of fleet
label values, so the number of series follows the label values, never the gateways. The
aggregates are exported in both modes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tegkit import percent
from tegkit.models.vocabulary import (
    COUNTER_NAMES,
    COUNTERS,
    CUSTOMER_MODES,
    POWER_NAMES,
    GridStatusValue,
    MeterName,
)
from tegkit.monitor.live import GatewayLive, LiveState, PollerCounters, Status
from tegkit.monitor.readings import Reading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOULES_PER_WH = 3600.0
#: up to this many gateways /metrics has per-gateway series unless told otherwise
PER_GATEWAY_MAX = 100

# The label values exported (0 or 1) even when not current; a value the gateway sends that
# is not listed is exported too, while it is current.
KNOWN_GRID_STATUSES: tuple[str, ...] = tuple(GridStatusValue)
KNOWN_MODES: tuple[str, ...] = CUSTOMER_MODES
STATUSES: tuple[Status, ...] = get_args(Status)

# (meter, reading field) of each power and counter a Reading carries
_POWER = tuple(zip(MeterName, POWER_NAMES, strict=True))
_COUNTERS = tuple(zip(COUNTERS, COUNTER_NAMES, strict=True))

#: label names the families use themselves: a fleet label may not take one
RESERVED_LABELS = frozenset(
    {"gateway", "meter", "status", "mode", "version", "endpoint", "kind", "rule", "result"}
    | {"le", "quantile", "job", "instance"}
)
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def label_name_problem(name: str) -> str | None:
    """Why a fleet label called `name` cannot be a metric label; None when it can."""
    if not _LABEL_NAME.fullmatch(name) or name.startswith("__"):
        return "a name of letters, digits and _ that starts with a letter (Prometheus' rule)"
    if name in RESERVED_LABELS:
        return "a name other than " + ", ".join(sorted(RESERVED_LABELS)) + " (the metrics' own)"
    return None


@dataclass(frozen=True, slots=True)
class FleetLabels:
    """The fleet file's label names and each gateway's values (a missing label is "")."""

    names: tuple[str, ...] = ()
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # gateway -> labels

    def of(self, gateway: str) -> tuple[str, ...]:
        labels = self.values.get(gateway, {})
        return tuple(labels.get(name, "") for name in self.names)


NO_LABELS = FleetLabels()


class LiveCollector(Collector):
    """Builds every metric family from `LiveState` at scrape time.

    `labels` gives the fleet labels now (a fleet reload may change them); `per_gateway`
    True/False forces per-gateway series on or off, None: on up to `PER_GATEWAY_MAX`."""

    def __init__(
        self,
        live: LiveState,
        labels: Callable[[], FleetLabels] = lambda: NO_LABELS,
        per_gateway: bool | None = None,
    ) -> None:
        self.live = live
        self.labels = labels
        self.per_gateway = per_gateway

    def describe(self) -> Iterable[Metric]:
        return []  # names depend on the state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        now = self.live.clock()
        gateways = self.live.gateways()
        statuses = [g.status(now, self.live.stale_after_s)[0] for g in gateways]
        fleet = self.labels()
        names = tuple(n for n in fleet.names if label_name_problem(n) is None)
        fleet = FleetLabels(names, fleet.values)
        per_gateway = self.per_gateway
        if per_gateway is None:
            per_gateway = len(gateways) <= PER_GATEWAY_MAX
        if per_gateway:
            tags = ("gateway", *names)
            rows = [(g, [g.name, *fleet.of(g.name)]) for g in gateways]
            fresh = [row for row, s in zip(rows, statuses, strict=True) if s == "ok"]
            up = GaugeMetricFamily(
                "powerwall_up", "1 when the latest reading of the gateway is fresh", labels=tags
            )
            for (_, key), status in zip(rows, statuses, strict=True):
                up.add_metric(key, 1.0 if status == "ok" else 0.0)
            yield up
            yield _info(tags, rows)
            yield from _readings(tags, fresh)
            yield from _settings(tags, fresh)
            yield from _poller(tags, [(g.counters, key) for g, key in rows])
        yield from _aggregates(
            names, [(g, s, fleet.of(g.name)) for g, s in zip(gateways, statuses, strict=True)]
        )
        lateness = self.live.poll_lateness
        late = HistogramMetricFamily(
            "tegkit_poll_lateness_seconds",
            "How late each poll group started after its scheduled time (all gateways)",
        )
        late.add_metric([], lateness.cumulative(), lateness.sum_s)
        yield late


#: a gateway and its label values: its name first, then its fleet labels in order
_Row = tuple[GatewayLive, list[str]]


def _info(tags: Sequence[str], rows: list[_Row]) -> Metric:
    info = GaugeMetricFamily(
        "powerwall_info", "Gateway firmware version (value 1)", labels=[*tags, "version"]
    )
    for g, key in rows:
        if g.version is not None:
            info.add_metric([*key, g.version], 1.0)
    return info


def _readings(tags: Sequence[str], rows: list[_Row]) -> Iterator[Metric]:
    power = GaugeMetricFamily(
        "powerwall_power_watts",
        "Instant power per meter; site>0 imports, battery>0 discharges, load>0 consumes, "
        "solar>0 produces",
        labels=[*tags, "meter"],
    )
    imported = CounterMetricFamily(
        "powerwall_energy_imported_joules",
        "Cumulative energy imported per meter, as the gateway counts it (Wh x 3600)",
        labels=[*tags, "meter"],
    )
    exported = CounterMetricFamily(
        "powerwall_energy_exported_joules",
        "Cumulative energy exported per meter, as the gateway counts it (Wh x 3600)",
        labels=[*tags, "meter"],
    )
    soe = GaugeMetricFamily(
        "powerwall_state_of_energy_ratio",
        "State of energy on the gateway's raw scale (raw percent / 100)",
        labels=tags,
    )
    soe_app = GaugeMetricFamily(
        "powerwall_state_of_energy_app_ratio",
        "State of energy on the Tesla app's scale (app percent / 100; raw = 5 + 0.95 x app)",
        labels=tags,
    )
    grid = GaugeMetricFamily(
        "powerwall_grid_status",
        "Grid status: 1 for the current status, 0 for the other known ones",
        labels=[*tags, "status"],
    )
    taken = GaugeMetricFamily(
        "powerwall_reading_timestamp_seconds",
        "When the latest reading was taken (Unix time)",
        labels=tags,
    )
    for g, key in rows:
        reading = g.reading
        if reading is None:
            continue
        taken.add_metric(key, reading.taken_at)
        for meter, name in _POWER:
            _add(power, [*key, meter], _value(reading, name))
        for counter, name in _COUNTERS:
            family = imported if counter.direction == "imported" else exported
            _add(family, [*key, counter.meter], _value(reading, name), JOULES_PER_WH)
        if reading.soe_raw_percent is not None:
            soe.add_metric(key, reading.soe_raw_percent / 100.0)
            soe_app.add_metric(key, percent.raw_to_app(reading.soe_raw_percent) / 100.0)
        if reading.grid_status is not None:
            for status in _with_current(KNOWN_GRID_STATUSES, reading.grid_status):
                grid.add_metric([*key, status], 1.0 if status == reading.grid_status else 0.0)
    yield from (power, imported, exported, soe, soe_app, grid, taken)


def _settings(tags: Sequence[str], rows: list[_Row]) -> Iterator[Metric]:
    reserve = GaugeMetricFamily(
        "powerwall_backup_reserve_ratio",
        "Backup reserve on the gateway's raw scale (raw percent / 100)",
        labels=tags,
    )
    reserve_app = GaugeMetricFamily(
        "powerwall_backup_reserve_app_ratio",
        "Backup reserve on the Tesla app's scale (app percent / 100)",
        labels=tags,
    )
    mode = GaugeMetricFamily(
        "powerwall_operation_mode",
        "Operation mode: 1 for the current mode, 0 for the other known ones",
        labels=[*tags, "mode"],
    )
    running = GaugeMetricFamily(
        "powerwall_sitemaster_running",
        "1 while the sitemaster (the system) runs, 0 while it is stopped",
        labels=tags,
    )
    for g, key in rows:
        if g.backup_reserve_raw_percent is not None:
            reserve.add_metric(key, g.backup_reserve_raw_percent / 100.0)
            app = percent.raw_to_app(g.backup_reserve_raw_percent)
            reserve_app.add_metric(key, app / 100.0)
        if g.mode is not None:
            for m in _with_current(KNOWN_MODES, g.mode):
                mode.add_metric([*key, m], 1.0 if m == g.mode else 0.0)
        if g.sitemaster_running is not None:
            running.add_metric(key, 1.0 if g.sitemaster_running else 0.0)
    yield from (reserve, reserve_app, mode, running)


def _poller(
    tags: Sequence[str],
    rows: Iterable[tuple[PollerCounters, list[str]]],
    prefix: str = "tegkit_poller",
) -> Iterator[Metric]:
    """The pollers' own metrics: per gateway, or (prefix tegkit_fleet_poller) summed per
    combination of fleet label values."""
    requests = CounterMetricFamily(
        f"{prefix}_requests",
        "Requests the poller sent to the gateway, per endpoint",
        labels=[*tags, "endpoint"],
    )
    errors = CounterMetricFamily(
        f"{prefix}_errors",
        "Failed poller requests per endpoint and kind (stopped, unreachable, timeout, ...)",
        labels=[*tags, "endpoint", "kind"],
    )
    deferred = CounterMetricFamily(
        f"{prefix}_budget_deferrals",
        "Polls put off because the gateway's request budget for the minute was spent",
        labels=tags,
    )
    restarts = CounterMetricFamily(
        f"{prefix}_restarts",
        "Times the poller failed and was restarted by its supervisor",
        labels=tags,
    )
    durations = HistogramMetricFamily(
        f"{prefix}_request_duration_seconds",
        "Time from sending a poller request to its answer",
        labels=[*tags, "endpoint"],
    )
    for c, key in rows:
        for endpoint, n in sorted(c.requests_total.items()):
            requests.add_metric([*key, endpoint], float(n))
        for (endpoint, kind), n in sorted(c.errors_total.items()):
            errors.add_metric([*key, endpoint, kind], float(n))
        deferred.add_metric(key, float(c.budget_deferrals_total))
        restarts.add_metric(key, float(c.restarts_total))
        for endpoint, hist in sorted(c.durations.items()):
            durations.add_metric([*key, endpoint], hist.cumulative(), hist.sum_s)
    yield from (requests, errors, deferred, restarts, durations)


@dataclass(slots=True)
class _Group:
    """What the gateways of one combination of fleet label values add up to."""

    statuses: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    power_w: dict[str, float] = field(default_factory=dict)  # meter -> sum
    soe_app_percent: list[float] = field(default_factory=list)
    grid: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KNOWN_GRID_STATUSES, 0))
    versions: dict[str, int] = field(default_factory=dict)
    counters: PollerCounters = field(default_factory=PollerCounters)  # the pollers' sum


def _group(
    rows: Iterable[tuple[GatewayLive, Status, tuple[str, ...]]],
) -> dict[tuple[str, ...], _Group]:
    groups: dict[tuple[str, ...], _Group] = {}
    for g, status, key in rows:
        group = groups.get(key)
        if group is None:
            group = groups[key] = _Group()
        group.statuses[status] += 1
        if g.version is not None:
            group.versions[g.version] = group.versions.get(g.version, 0) + 1
        group.counters.add(g.counters)
        reading = g.reading
        if status != "ok" or reading is None:
            continue  # a gateway without fresh data adds nothing to sums: it is counted only
        for meter, name in _POWER:
            value = _value(reading, name)
            if value is not None:
                group.power_w[meter] = group.power_w.get(meter, 0.0) + value
        if reading.soe_raw_percent is not None:
            group.soe_app_percent.append(percent.raw_to_app(reading.soe_raw_percent))
        if reading.grid_status is not None:
            group.grid[reading.grid_status] = group.grid.get(reading.grid_status, 0) + 1
    return groups


def _aggregates(
    names: tuple[str, ...], rows: Iterable[tuple[GatewayLive, Status, tuple[str, ...]]]
) -> Iterator[Metric]:
    """The tegkit_fleet_* families: one series set per combination of fleet label values."""
    tags = list(names)
    gateways = GaugeMetricFamily(
        "tegkit_fleet_gateways",
        "Gateways per status (ok, stale, stopped, unreachable, unauthorized)",
        labels=[*tags, "status"],
    )
    power = GaugeMetricFamily(
        "tegkit_fleet_power_watts",
        "Sum of the instant power per meter of the gateways whose data is fresh (signs as "
        "powerwall_power_watts)",
        labels=[*tags, "meter"],
    )
    soe_min = GaugeMetricFamily(
        "tegkit_fleet_state_of_energy_app_ratio_min",
        "Lowest state of energy (app scale, 0..1) among the gateways whose data is fresh",
        labels=tags,
    )
    soe_mean = GaugeMetricFamily(
        "tegkit_fleet_state_of_energy_app_ratio_mean",
        "Mean state of energy (app scale, 0..1) of the gateways whose data is fresh",
        labels=tags,
    )
    grid = GaugeMetricFamily(
        "tegkit_fleet_grid_status_gateways",
        "Gateways whose data is fresh, per grid status",
        labels=[*tags, "status"],
    )
    firmware = GaugeMetricFamily(
        "tegkit_fleet_firmware_gateways", "Gateways per firmware version", labels=[*tags, "version"]
    )
    groups = sorted(_group(rows).items())
    for values, group in groups:
        key = list(values)
        for status, n in group.statuses.items():
            gateways.add_metric([*key, status], float(n))
        for meter, _ in _POWER:
            if meter in group.power_w:
                power.add_metric([*key, meter], group.power_w[meter])
        if group.soe_app_percent:
            soe_min.add_metric(key, min(group.soe_app_percent) / 100.0)
            mean = sum(group.soe_app_percent) / len(group.soe_app_percent)
            soe_mean.add_metric(key, mean / 100.0)
        for status, n in group.grid.items():
            grid.add_metric([*key, status], float(n))
        for version, n in sorted(group.versions.items()):
            firmware.add_metric([*key, version], float(n))
    yield from (gateways, power, soe_min, soe_mean, grid, firmware)
    yield from _poller(tags, [(g.counters, list(v)) for v, g in groups], "tegkit_fleet_poller")


#: (gateway, rule, result, count) of each plan's outcomes; rules come from the plan files
AutomationRows = Callable[[], Iterable[tuple[str, str, str, int]]]


class AutomationCollector(Collector):
    """`tegkit_automation_actions_total{gateway, rule, result}`: what the owner's plans did.

    Bounded: one series per gateway with a plan, rule of its plan file and runner result."""

    def __init__(self, rows: AutomationRows) -> None:
        self.rows = rows

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        actions = CounterMetricFamily(
            "tegkit_automation_actions",
            "Outcomes of the plan's actions per rule: done, skipped, retry, failed, postponed, "
            "dry_run, refused, missed",
            labels=["gateway", "rule", "result"],
        )
        for gateway, rule, result, n in self.rows():
            actions.add_metric([gateway, rule, result], float(n))
        yield actions


def _value(reading: Reading, name: str) -> float | None:
    value = getattr(reading, name)
    return None if value is None else float(value)


def _add(
    family: GaugeMetricFamily | CounterMetricFamily,
    labels: list[str],
    value: float | None,
    scale: float = 1.0,
) -> None:
    if value is not None:
        family.add_metric(labels, value * scale)


def _with_current(known: tuple[str, ...], current: str) -> tuple[str, ...]:
    return known if current in known else (*known, current)


class MetricsPage:
    """The /metrics text, rebuilt only when the live state changed since the last scrape.

    The text is cached by (state version, each gateway's status, fleet labels) so a busy
    scraper costs one string copy; the status part keeps ``powerwall_up`` honest when
    nothing new arrives. `labels` and `per_gateway` are as `LiveCollector` takes them.
    """

    def __init__(
        self,
        live: LiveState,
        automation: AutomationRows | None = None,
        labels: Callable[[], FleetLabels] = lambda: NO_LABELS,
        per_gateway: bool | None = None,
    ) -> None:
        self.live = live
        self.labels = labels
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LiveCollector(live, labels, per_gateway))
        if automation is not None:  # a plan's outcome bumps the live state's version too
            self.registry.register(AutomationCollector(automation))
        self._key: tuple[object, ...] | None = None
        self._body = b""

    def render(self) -> bytes:
        now = self.live.clock()
        stale_after_s = self.live.stale_after_s
        statuses = tuple(g.status(now, stale_after_s)[0] for g in self.live.gateways())
        key = (self.live.version, statuses, self.labels())
        if key != self._key:
            self._body = generate_latest(self.registry)
            self._key = key
        return self._body
