"""Prometheus metrics of the watched gateways, collected from the live state when scraped.

Names carry base units: power in watts, energy counters in joules (the gateway's Wh x 3600),
ratios 0..1. ``powerwall_state_of_energy_ratio`` and ``powerwall_backup_reserve_ratio`` are
on the gateway's raw scale (raw percent / 100, as /api/system_status/soe reports it); the
``*_app_ratio`` gauges carry the same values on the Tesla app's scale (raw = 5 + 0.95 x app).

While a gateway's data is not fresh (stopped, unreachable, unauthorized, stale) only
``powerwall_up`` (0), ``powerwall_info`` and the poller's own metrics are exported: a missing
value is missing, never a stale or zero one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

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
from tegkit.monitor.live import GatewayLive, LiveState
from tegkit.monitor.readings import Reading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
JOULES_PER_WH = 3600.0

# The label values exported (0 or 1) even when not current; a value the gateway sends that
# is not listed is exported too, while it is current.
KNOWN_GRID_STATUSES: tuple[str, ...] = tuple(GridStatusValue)
KNOWN_MODES: tuple[str, ...] = CUSTOMER_MODES

# (meter, reading field) of each power and counter a Reading carries
_POWER = tuple(zip(MeterName, POWER_NAMES, strict=True))
_COUNTERS = tuple(zip(COUNTERS, COUNTER_NAMES, strict=True))


class LiveCollector(Collector):
    """Builds every metric family from `LiveState` at scrape time."""

    def __init__(self, live: LiveState) -> None:
        self.live = live

    def describe(self) -> Iterable[Metric]:
        return []  # names depend on the state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        now = self.live.clock()
        gateways = self.live.gateways()
        fresh = [g for g in gateways if g.status(now, self.live.stale_after_s)[0] == "ok"]

        up = GaugeMetricFamily(
            "powerwall_up", "1 when the latest reading of the gateway is fresh", labels=["gateway"]
        )
        for g in gateways:
            up.add_metric([g.name], 1.0 if g in fresh else 0.0)
        yield up
        yield _info(gateways)
        yield from _readings(fresh)
        yield from _settings(fresh)
        yield from _poller(gateways)


def _info(gateways: list[GatewayLive]) -> Metric:
    info = GaugeMetricFamily(
        "powerwall_info", "Gateway firmware version (value 1)", labels=["gateway", "version"]
    )
    for g in gateways:
        if g.version is not None:
            info.add_metric([g.name, g.version], 1.0)
    return info


def _readings(gateways: list[GatewayLive]) -> Iterator[Metric]:
    power = GaugeMetricFamily(
        "powerwall_power_watts",
        "Instant power per meter; site>0 imports, battery>0 discharges, load>0 consumes, "
        "solar>0 produces",
        labels=["gateway", "meter"],
    )
    imported = CounterMetricFamily(
        "powerwall_energy_imported_joules",
        "Cumulative energy imported per meter, as the gateway counts it (Wh x 3600)",
        labels=["gateway", "meter"],
    )
    exported = CounterMetricFamily(
        "powerwall_energy_exported_joules",
        "Cumulative energy exported per meter, as the gateway counts it (Wh x 3600)",
        labels=["gateway", "meter"],
    )
    soe = GaugeMetricFamily(
        "powerwall_state_of_energy_ratio",
        "State of energy on the gateway's raw scale (raw percent / 100)",
        labels=["gateway"],
    )
    soe_app = GaugeMetricFamily(
        "powerwall_state_of_energy_app_ratio",
        "State of energy on the Tesla app's scale (app percent / 100; raw = 5 + 0.95 x app)",
        labels=["gateway"],
    )
    grid = GaugeMetricFamily(
        "powerwall_grid_status",
        "Grid status: 1 for the current status, 0 for the other known ones",
        labels=["gateway", "status"],
    )
    taken = GaugeMetricFamily(
        "powerwall_reading_timestamp_seconds",
        "When the latest reading was taken (Unix time)",
        labels=["gateway"],
    )
    for g in gateways:
        reading = g.reading
        if reading is None:
            continue
        taken.add_metric([g.name], reading.taken_at)
        for meter, name in _POWER:
            _add(power, [g.name, meter], _value(reading, name))
        for counter, name in _COUNTERS:
            family = imported if counter.direction == "imported" else exported
            _add(family, [g.name, counter.meter], _value(reading, name), JOULES_PER_WH)
        if reading.soe_raw_percent is not None:
            soe.add_metric([g.name], reading.soe_raw_percent / 100.0)
            soe_app.add_metric([g.name], percent.raw_to_app(reading.soe_raw_percent) / 100.0)
        if reading.grid_status is not None:
            for status in _with_current(KNOWN_GRID_STATUSES, reading.grid_status):
                grid.add_metric([g.name, status], 1.0 if status == reading.grid_status else 0.0)
    yield from (power, imported, exported, soe, soe_app, grid, taken)


def _settings(gateways: list[GatewayLive]) -> Iterator[Metric]:
    reserve = GaugeMetricFamily(
        "powerwall_backup_reserve_ratio",
        "Backup reserve on the gateway's raw scale (raw percent / 100)",
        labels=["gateway"],
    )
    reserve_app = GaugeMetricFamily(
        "powerwall_backup_reserve_app_ratio",
        "Backup reserve on the Tesla app's scale (app percent / 100)",
        labels=["gateway"],
    )
    mode = GaugeMetricFamily(
        "powerwall_operation_mode",
        "Operation mode: 1 for the current mode, 0 for the other known ones",
        labels=["gateway", "mode"],
    )
    running = GaugeMetricFamily(
        "powerwall_sitemaster_running",
        "1 while the sitemaster (the system) runs, 0 while it is stopped",
        labels=["gateway"],
    )
    for g in gateways:
        if g.backup_reserve_raw_percent is not None:
            reserve.add_metric([g.name], g.backup_reserve_raw_percent / 100.0)
            app = percent.raw_to_app(g.backup_reserve_raw_percent)
            reserve_app.add_metric([g.name], app / 100.0)
        if g.mode is not None:
            for m in _with_current(KNOWN_MODES, g.mode):
                mode.add_metric([g.name, m], 1.0 if m == g.mode else 0.0)
        if g.sitemaster_running is not None:
            running.add_metric([g.name], 1.0 if g.sitemaster_running else 0.0)
    yield from (reserve, reserve_app, mode, running)


def _poller(gateways: list[GatewayLive]) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "tegkit_poller_requests",
        "Requests the poller sent to the gateway, per endpoint",
        labels=["gateway", "endpoint"],
    )
    errors = CounterMetricFamily(
        "tegkit_poller_errors",
        "Failed poller requests per endpoint and kind (stopped, unreachable, timeout, ...)",
        labels=["gateway", "endpoint", "kind"],
    )
    deferred = CounterMetricFamily(
        "tegkit_poller_budget_deferrals",
        "Polls put off because the gateway's request budget for the minute was spent",
        labels=["gateway"],
    )
    restarts = CounterMetricFamily(
        "tegkit_poller_restarts",
        "Times the poller failed and was restarted by its supervisor",
        labels=["gateway"],
    )
    durations = HistogramMetricFamily(
        "tegkit_poller_request_duration_seconds",
        "Time from sending a poller request to its answer",
        labels=["gateway", "endpoint"],
    )
    for g in gateways:
        c = g.counters
        for endpoint, n in sorted(c.requests_total.items()):
            requests.add_metric([g.name, endpoint], float(n))
        for (endpoint, kind), n in sorted(c.errors_total.items()):
            errors.add_metric([g.name, endpoint, kind], float(n))
        deferred.add_metric([g.name], float(c.budget_deferrals_total))
        restarts.add_metric([g.name], float(c.restarts_total))
        for endpoint, hist in sorted(c.durations.items()):
            durations.add_metric([g.name, endpoint], hist.cumulative(), hist.sum_s)
    yield from (requests, errors, deferred, restarts, durations)


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

    The text is cached by (state version, reading freshness) so a busy scraper costs one
    string copy; the freshness part keeps ``powerwall_up`` honest when nothing new arrives.
    """

    def __init__(self, live: LiveState, automation: AutomationRows | None = None) -> None:
        self.live = live
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(LiveCollector(live))
        if automation is not None:  # a plan's outcome bumps the live state's version too
            self.registry.register(AutomationCollector(automation))
        self._key: tuple[int, tuple[bool, ...]] | None = None
        self._body = b""

    def render(self) -> bytes:
        now = self.live.clock()
        fresh = tuple(
            g.status(now, self.live.stale_after_s)[0] == "ok" for g in self.live.gateways()
        )
        key = (self.live.version, fresh)
        if key != self._key:
            self._body = generate_latest(self.registry)
            self._key = key
        return self._body
