"""The Owner API (Tesla's cloud) for energy sites: CloudClient, its typed answers and tokens.

Percents are on the APP scale (raw = 5 + 0.95 x app; see `tegkit.percent`).
"""

from __future__ import annotations

from tegkit.cloud._client import CloudClient, PlannedCommand
from tegkit.cloud._envelope import CommandResult
from tegkit.cloud._login import LOGIN_TIMEOUT_S, LoginError, login
from tegkit.cloud._models import (
    BackupEvent,
    BackupHistory,
    CloudSiteInfo,
    EnergyHistory,
    EnergyPeriod,
    EnergySite,
    LiveStatus,
    SiteComponents,
    SiteUserSettings,
)
from tegkit.cloud._ratelimit import CloudRateLimit
from tegkit.cloud._tokens import (
    TokenFormatError,
    TokenOrigin,
    Tokens,
    parse_token_origin,
    parse_tokens,
    read_token_file,
    read_token_origin,
    write_token_file,
)

__all__ = [
    "LOGIN_TIMEOUT_S",
    "BackupEvent",
    "BackupHistory",
    "CloudClient",
    "CloudRateLimit",
    "CloudSiteInfo",
    "CommandResult",
    "EnergyHistory",
    "EnergyPeriod",
    "EnergySite",
    "LiveStatus",
    "LoginError",
    "PlannedCommand",
    "SiteComponents",
    "SiteUserSettings",
    "TokenFormatError",
    "TokenOrigin",
    "Tokens",
    "login",
    "parse_token_origin",
    "parse_tokens",
    "read_token_file",
    "read_token_origin",
    "write_token_file",
]
