"""A fleet file: many gateways, each with its own address, trust, credentials, zone, tariff,
poll intervals and labels, read and checked as a whole (`teg monitor --fleet FLEET.toml`).

The format (every key but `name` and `url`/`host` is optional; `[defaults]` holds any
gateway key except `name`, `url`, `host` and `labels` and applies to every gateway that does
not set it itself)::

    [defaults]
    email = "owner@example.com"
    password_env = "TEG_PASSWORD"       # the password from this environment variable
    fast_interval_s = 5
    slow_interval_s = 60
    budget_per_minute = 90

    [[gateways]]
    name = "smith-home"                 # the dashboard's and the metrics' `gateway` label
    url = "https://127.0.0.1:9001"      # or host = "teg.example" (https://HOST)
    sni = "teg"                         # the name sent in TLS (the certificate names teg)
    pin = "sha256:9f86d0..."            # or cafile = "certs/smith.pem" (relative to this file)
    password_file = "secrets/smith"     # a 0600 file holding the password, or
    # password_env = "TEG_PW_SMITH"     # an environment variable's name, or
    # password_keyring = "smith-home"   # the system keyring: service "tegkit", this user
    # password = "..."                  # inline only when this file itself is 0600
    tz = "America/Los_Angeles"          # overrides the gateway's own site time zone
    tariff = "tariffs/sce.toml"         # a tariff file (relative to this file)
    cloud_profile = "smith"             # a `teg` profile holding Tesla cloud tokens
    labels = { customer = "smith", region = "west" }

    [alerts]                            # see tegkit.monitor.alerts
    ...

Errors name the gateway and the field: `gateways[3] "smith-home": pin: ...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tegkit.monitor.poller import GatewayTarget, PollerConfig
from tegkit.tariff import Tariff

if TYPE_CHECKING:
    from tegkit.monitor.alerts import AlertConfig

#: the keyring service under which `password_keyring` names a user
KEYRING_SERVICE = "tegkit"


@dataclass(frozen=True, slots=True)
class FleetGateway:
    """One gateway of a fleet, credentials resolved, ready for a poller."""

    target: GatewayTarget  # name, url, sni, pin/cafile, password, email, tz
    config: PollerConfig = field(default_factory=PollerConfig)  # its intervals and budget
    tariff: Tariff | None = None
    labels: Mapping[str, str] = field(default_factory=dict)  # every fleet label name present
    cloud_profile: str | None = None  # resolved into target.cloud by the command line

    @property
    def name(self) -> str:
        return self.target.name


@dataclass(frozen=True, slots=True)
class Fleet:
    """Every gateway of a fleet file, in file order, plus its alert rules."""

    gateways: tuple[FleetGateway, ...]
    label_names: tuple[str, ...] = ()  # sorted union of the gateways' label names
    alerts: AlertConfig | None = None
    path: Path | None = None

    def names(self) -> list[str]:
        return [g.name for g in self.gateways]
