"""Alerts: rules from the fleet file watched against the live state, each alert delivered to
webhooks (JSON, HMAC-signed, retried with back-off, deduplicated) and listed at /api/alerts.

The fleet file's `[alerts]` table::

    [[alerts.webhooks]]
    name = "ops"
    url = "https://hooks.example/tegkit"
    secret_env = "TEG_WEBHOOK_SECRET"     # or secret_file = "secrets/hook" (0600)

    [[alerts.rules]]
    kind = "unreachable"                  # one of RULE_KINDS
    minutes = 10                          # how long the condition must hold (0: at once)
    gateways = ["smith-home"]             # optional: names; default every gateway
    labels = { region = "west" }          # optional: only gateways with these labels
    webhooks = ["ops"]                    # optional: default every webhook
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

RuleKind = Literal[
    "unreachable",  # no reading for `minutes` (gateway unreachable or timing out)
    "grid_outage",  # the grid is down (an off-grid status)
    "system_stopped",  # the sitemaster is stopped (live endpoints answer 502)
    "soe_below_reserve",  # state of energy under the backup reserve
    "firmware_changed",  # the firmware version differs from the one seen before
    "auth_failing",  # the gateway refuses the credentials
]
RULE_KINDS: Final[tuple[RuleKind, ...]] = (
    "unreachable",
    "grid_outage",
    "system_stopped",
    "soe_below_reserve",
    "firmware_changed",
    "auth_failing",
)


@dataclass(frozen=True, slots=True)
class Webhook:
    name: str
    url: str
    secret: str = field(repr=False)  # the HMAC key; never logged

    def __repr__(self) -> str:
        return f"Webhook(name={self.name!r}, url={self.url!r})"


@dataclass(frozen=True, slots=True)
class AlertRule:
    kind: RuleKind
    minutes: float = 0.0
    gateways: frozenset[str] | None = None  # None: every gateway
    labels: Mapping[str, str] = field(default_factory=dict)
    webhooks: tuple[str, ...] | None = None  # None: every webhook


@dataclass(frozen=True, slots=True)
class AlertConfig:
    rules: tuple[AlertRule, ...] = ()
    webhooks: tuple[Webhook, ...] = ()


AlertState = Literal["open", "resolved"]


@dataclass(slots=True)
class Alert:
    """One alert: a rule's condition on one gateway, from `since_s` until `resolved_s`."""

    id: str  # stable for the alert's life: the webhook's deduplication key
    kind: RuleKind
    gateway: str
    since_s: float  # epoch seconds the condition began
    detail: str
    state: AlertState = "open"
    resolved_s: float | None = None
