"""The fleet page's data: one compact row per watched gateway, from the live state only.

GET /api/fleet answers with column names once and a list per gateway (a thousand rows stay
near 150 kB), so the page needs one request and no gateway is ever asked anything. A
gateway whose data is not fresh (stale, stopped, unreachable, unauthorized) shows its status
and reason and no values: power, state of energy and grid status are null, never zero or
the last known ones; `taken_at` still says when its latest reading was taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from tegkit import percent
from tegkit.models.vocabulary import POWER_NAMES, MeterName, power_name
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.live import LiveState
from tegkit.monitor.metrics import STATUSES, FleetLabels

#: the order of the values in each row of /api/fleet
COLUMNS: Final[tuple[str, ...]] = (
    "gateway",
    "status",
    "reason",
    "soe_app_percent",
    *POWER_NAMES,  # site_w > 0 imports, battery_w > 0 discharges, load_w > 0 consumes, ...
    "grid_status",
    "taken_at",
    "alerts",  # open alerts of the gateway
    "labels",  # its fleet label values in the order of label_names ("" where it has none)
)


#: the fleet page's heading of each meter's power column, and what its sign > 0 means
METER_HEADINGS: Final[Mapping[MeterName, tuple[str, str]]] = {
    MeterName.SITE: ("Grid", "imports"),
    MeterName.BATTERY: ("Powerwall", "discharges"),
    MeterName.SOLAR: ("Solar", "produces"),
    MeterName.LOAD: ("Home", "consumes"),
}
_POWER_COLUMNS: Final = [
    {"column": power_name(meter), "meter": meter, "heading": heading, "positive": positive}
    for meter, (heading, positive) in METER_HEADINGS.items()
]


def fleet_labels(gateways: Mapping[str, FleetGateway]) -> FleetLabels:
    """The label names of a fleet (the sorted union of its gateways') and each one's values."""
    names: set[str] = set()
    for gateway in gateways.values():
        names.update(gateway.labels)
    return FleetLabels(
        tuple(sorted(names)), {name: g.labels for name, g in gateways.items() if g.labels}
    )


def fleet_document(
    live: LiveState, labels: FleetLabels, alerts: Mapping[str, int]
) -> dict[str, Any]:
    """The /api/fleet document: the time now, the columns, and a row per gateway;
    `alerts` counts the open alerts per gateway (AlertBook.open_counts)."""
    now = live.clock()
    stale_after_s = live.stale_after_s
    rows: list[list[Any]] = []
    for g in live.gateways():
        status, reason = g.status(now, stale_after_s)
        reading = g.reading
        row: list[Any] = [g.name, status, reason]
        if status == "ok" and reading is not None:
            soe = reading.soe_raw_percent
            row.append(None if soe is None else round(percent.raw_to_app(soe), 1))
            for name in POWER_NAMES:
                value = getattr(reading, name)
                row.append(None if value is None else round(value))
            row.append(reading.grid_status)
        else:  # no fresh data: nothing to show but the status and its reason
            row.extend([None] * (len(POWER_NAMES) + 2))
        row.append(None if reading is None else reading.taken_at)
        row.append(alerts.get(g.name, 0))
        row.append(list(labels.of(g.name)))
        rows.append(row)
    return {
        "now": now,
        "stale_after_s": stale_after_s,
        "statuses": list(STATUSES),
        "label_names": list(labels.names),
        "columns": list(COLUMNS),
        "power": _POWER_COLUMNS,  # the page's power columns, in its order
        "rows": rows,
    }
