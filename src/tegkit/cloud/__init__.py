"""The Owner API (Tesla's cloud) for energy sites: CloudClient, its typed answers and tokens.

Percents are on the APP scale (raw = 5 + 0.95 x app; see `tegkit.percent`).
"""

from __future__ import annotations

from tegkit.cloud._client import CloudClient
from tegkit.cloud._envelope import CommandResult
from tegkit.cloud._models import (
    CloudSiteInfo,
    EnergySite,
    LiveStatus,
    SiteComponents,
    SiteUserSettings,
)
from tegkit.cloud._tokens import (
    TokenFormatError,
    Tokens,
    parse_tokens,
    read_token_file,
    write_token_file,
)

__all__ = [
    "CloudClient",
    "CloudSiteInfo",
    "CommandResult",
    "EnergySite",
    "LiveStatus",
    "SiteComponents",
    "SiteUserSettings",
    "TokenFormatError",
    "Tokens",
    "parse_tokens",
    "read_token_file",
    "write_token_file",
]
