"""The monitor: records gateway readings into a store and computes history and costs."""

from tegkit.monitor.readings import (
    DailyEnergy,
    EnergyBucket,
    Event,
    Gap,
    History,
    HistoryPoint,
    Outage,
    Reading,
    RetentionPolicy,
)
from tegkit.monitor.store import AsyncStore, Store, open_store

__all__ = [
    "AsyncStore",
    "DailyEnergy",
    "EnergyBucket",
    "Event",
    "Gap",
    "History",
    "HistoryPoint",
    "Outage",
    "Reading",
    "RetentionPolicy",
    "Store",
    "open_store",
]
