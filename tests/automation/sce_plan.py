"""The spec's use case (spec 001) built from plan.py's types: a Southern California Edison
time-of-use owner who updates firmware at 07:15, runs on the battery from 07:55 and keeps it
full from 22:05. Shared by the automation tests; planfile-independent on purpose."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tegkit.automation.plan import AtTime, FirmwareWindow, Plan, Rule, Setpoints
from tegkit.models.vocabulary import OperationMode
from tegkit.tariff import Tariff

LA = ZoneInfo("America/Los_Angeles")

SCE_TARIFF = Tariff.from_toml(
    """
name = "sce-tou"
currency = "USD"
[[periods]]
name = "super_off_peak"
start = "22:00"
end = "08:00"
buy_per_kwh = 0.25
[[periods]]
name = "off_peak"
start = "08:00"
end = "14:00"
buy_per_kwh = 0.35
[[periods]]
name = "peak"
start = "14:00"
end = "20:00"
buy_per_kwh = 0.55
[[periods]]
name = "off_peak"
start = "20:00"
end = "22:00"
buy_per_kwh = 0.35
"""
)

FIRMWARE = Rule(
    "firmware while the battery idles", AtTime(7 * 60 + 15), firmware_window=FirmwareWindow()
)
ON_BATTERY = Rule(
    "peak on the battery",
    AtTime(7 * 60 + 55),
    setpoints=Setpoints(mode=OperationMode.SELF_CONSUMPTION, backup_reserve_app_percent=5.0),
)
KEEP_FULL = Rule(
    "keep it full overnight",
    AtTime(22 * 60 + 5),
    setpoints=Setpoints(mode=OperationMode.BACKUP, backup_reserve_app_percent=100.0),
)

SCE_PLAN = Plan("sce-tou", (FIRMWARE, ON_BATTERY, KEEP_FULL), timezone=LA, tariff=SCE_TARIFF)
