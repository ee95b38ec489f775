"""Alerts: rules from the fleet file watched against the live state, each alert delivered to
webhooks (JSON, HMAC-signed, retried with back-off, deduplicated) and listed at /api/alerts.

The fleet file's `[alerts]` table (checked by `parse_alert_config`)::

    [alerts]
    monitor = "office-1"                  # optional: the payload's `monitor` (default: host name)

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

import math
import os
import re
import stat
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from tegkit.errors import InvalidInputError

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
    monitor: str | None = None  # the payload's `monitor`: this monitor's name (default: host)


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
    labels: Mapping[str, str] = field(default_factory=dict)  # the gateway's fleet labels


# --- the fleet file's [alerts] table --------------------------------------------------------

MAX_RULES: Final = 200
MAX_WEBHOOKS: Final = 20
MAX_RULE_MINUTES: Final = 7 * 24 * 60.0  # a week: longer is a report, not an alert
MIN_SECRET_CHARS: Final = 16  # an HMAC key shorter than this is guessable
MAX_SECRET_BYTES: Final = 4096
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ALERTS_KEYS: Final = frozenset({"rules", "webhooks", "monitor"})
_WEBHOOK_KEYS: Final = frozenset({"name", "url", "secret_env", "secret_file"})
_RULE_KEYS: Final = frozenset({"kind", "minutes", "gateways", "labels", "webhooks"})


class _Errors:
    """Every error of the table, so a file is fixed in one go; raised first-found otherwise."""

    def __init__(self, sink: list[InvalidInputError] | None) -> None:
        self.sink = sink
        self.found: list[InvalidInputError] = []

    def add(self, field_name: str, allowed: str, value: object = None) -> None:
        error = InvalidInputError(field_name, allowed, value)
        if self.sink is None:
            raise error
        self.sink.append(error)
        self.found.append(error)


def parse_alert_config(
    table: Mapping[str, Any],
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    gateway_names: Collection[str],
    label_names: Collection[str],
    errors: list[InvalidInputError] | None = None,
) -> AlertConfig:
    """The fleet file's `[alerts]` table checked as a whole.

    Raises InvalidInputError naming the place (`alerts.rules[2]: minutes`,
    `alerts.webhooks[0] "ops": secret_file`) and what is allowed. With `errors`, every
    error is appended there instead and the rules and webhooks that were valid are returned.
    A secret is never part of a message: only the variable's name or the file's path.
    """
    errs = _Errors(errors)
    if not isinstance(table, Mapping):
        errs.add("alerts", "a table ([alerts])", type(table).__name__)
        return AlertConfig()
    for key in sorted(set(table) - _ALERTS_KEYS):
        errs.add(f"alerts: {key}", f"one of {', '.join(sorted(_ALERTS_KEYS))}", key)
    monitor = table.get("monitor")
    if monitor is not None and (not isinstance(monitor, str) or not _NAME.fullmatch(monitor)):
        errs.add("alerts: monitor", "a name (letters, digits, '_', '.', '-'; 64 at most)", monitor)
        monitor = None
    webhooks = _parse_webhooks(table.get("webhooks", []), base_dir, environ, errs)
    known_hooks = {hook.name for hook in webhooks}
    # a rule naming a webhook that failed to parse is not also blamed for it
    named_hooks = known_hooks | _raw_hook_names(table.get("webhooks", []))
    rules = _parse_rules(
        table.get("rules", []), set(gateway_names), set(label_names), named_hooks, errs
    )
    rules = tuple(
        r
        if r.webhooks is None
        else replace(r, webhooks=tuple(h for h in r.webhooks if h in known_hooks))
        for r in rules
    )
    return AlertConfig(rules=rules, webhooks=webhooks, monitor=monitor)


def _raw_hook_names(raw: object) -> set[str]:
    if not isinstance(raw, list):
        return set()
    return {h["name"] for h in raw if isinstance(h, Mapping) and isinstance(h.get("name"), str)}


def _parse_webhooks(
    raw: object, base_dir: Path, environ: Mapping[str, str], errs: _Errors
) -> tuple[Webhook, ...]:
    if not isinstance(raw, list):
        errs.add("alerts.webhooks", "an array of tables ([[alerts.webhooks]])", type(raw).__name__)
        return ()
    if len(raw) > MAX_WEBHOOKS:
        errs.add("alerts.webhooks", f"at most {MAX_WEBHOOKS} webhooks", len(raw))
        return ()
    hooks: list[Webhook] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw):
        place = f"alerts.webhooks[{index}]"
        if not isinstance(entry, Mapping):
            errs.add(place, "a table with name, url and secret_env or secret_file", entry)
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            errs.add(f"{place}: name", "a name (letters, digits, '_', '.', '-'; 64 at most)", name)
            continue
        place = f'{place} "{name}"'
        ok = True
        if name in seen:
            errs.add(f"{place}: name", "a name no other webhook has", name)
            ok = False
        seen.add(name)
        for key in sorted(set(entry) - _WEBHOOK_KEYS):
            errs.add(f"{place}: {key}", f"one of {', '.join(sorted(_WEBHOOK_KEYS))}", key)
            ok = False
        url = _webhook_url(entry.get("url"), place, errs)
        secret = _webhook_secret(entry, base_dir, environ, place, errs)
        if ok and url is not None and secret is not None:
            hooks.append(Webhook(name=name, url=url, secret=secret))
    return tuple(hooks)


def _webhook_url(raw: object, place: str, errs: _Errors) -> str | None:
    allowed = "an http:// or https:// URL with a host and no user or password"
    if not isinstance(raw, str) or not raw:
        errs.add(f"{place}: url", allowed, raw)
        return None
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        errs.add(f"{place}: url", allowed, raw)
        return None
    if parts.username is not None or parts.password is not None:
        # credentials in the URL would show in every log line naming the webhook
        errs.add(f"{place}: url", allowed, f"{parts.scheme}://***@{parts.hostname}")
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.fragment:
        errs.add(f"{place}: url", allowed, raw)
        return None
    return raw


def _webhook_secret(
    entry: Mapping[str, Any], base_dir: Path, environ: Mapping[str, str], place: str, errs: _Errors
) -> str | None:
    env_name, file_name = entry.get("secret_env"), entry.get("secret_file")
    if (env_name is None) == (file_name is None):
        errs.add(
            f"{place}: secret_env",
            "exactly one of secret_env (a variable's name) or secret_file (a 0600 file)",
            "both" if env_name is not None else "neither",
        )
        return None
    if env_name is not None:
        if not isinstance(env_name, str) or not env_name:
            errs.add(f"{place}: secret_env", "an environment variable's name", env_name)
            return None
        secret = environ.get(env_name)
        if not secret:
            errs.add(f"{place}: secret_env", "a variable that is set and not empty", env_name)
            return None
        return _checked_secret(secret, f"{place}: secret_env", env_name, errs)
    if not isinstance(file_name, str) or not file_name:
        errs.add(f"{place}: secret_file", "a file's path", file_name)
        return None
    path = Path(file_name).expanduser()
    if not path.is_absolute():
        path = base_dir / path
    try:
        info = path.stat()
    except OSError as exc:
        errs.add(f"{place}: secret_file", "a readable file", f"{path}: {exc.strerror}")
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o077 or info.st_uid != os.getuid():
        errs.add(
            f"{place}: secret_file",
            f"a file of yours only you may read or write (chmod 600 {path})",
            f"{path} (mode {stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid})",
        )
        return None
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
        lines = data.decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        errs.add(f"{place}: secret_file", "a readable UTF-8 file", str(path))
        return None
    if len(data) > MAX_SECRET_BYTES or not lines:
        errs.add(f"{place}: secret_file", "the secret on its first line", str(path))
        return None
    return _checked_secret(lines[0], f"{place}: secret_file", str(path), errs)


def _checked_secret(secret: str, field_name: str, shown: str, errs: _Errors) -> str | None:
    if len(secret) < MIN_SECRET_CHARS:
        # the value shown is where the secret came from, never the secret
        errs.add(field_name, f"a secret of at least {MIN_SECRET_CHARS} characters", shown)
        return None
    return secret


def _parse_rules(
    raw: object,
    gateway_names: set[str],
    label_names: set[str],
    hook_names: set[str],
    errs: _Errors,
) -> tuple[AlertRule, ...]:
    if not isinstance(raw, list):
        errs.add("alerts.rules", "an array of tables ([[alerts.rules]])", type(raw).__name__)
        return ()
    if len(raw) > MAX_RULES:
        errs.add("alerts.rules", f"at most {MAX_RULES} rules", len(raw))
        return ()
    rules: list[AlertRule] = []
    for index, entry in enumerate(raw):
        place = f"alerts.rules[{index}]"
        if not isinstance(entry, Mapping):
            errs.add(
                place, "a table with kind and optional minutes, gateways, labels, webhooks", entry
            )
            continue
        before = len(errs.found)
        for key in sorted(set(entry) - _RULE_KEYS):
            errs.add(f"{place}: {key}", f"one of {', '.join(sorted(_RULE_KEYS))}", key)
        kind: Any = entry.get("kind")
        if kind not in RULE_KINDS:
            errs.add(f"{place}: kind", f"one of {', '.join(RULE_KINDS)}", kind)
        minutes = entry.get("minutes", 0)
        if (
            isinstance(minutes, bool)
            or not isinstance(minutes, int | float)
            or not math.isfinite(minutes)
            or not 0 <= minutes <= MAX_RULE_MINUTES
        ):
            errs.add(f"{place}: minutes", f"a number from 0 to {MAX_RULE_MINUTES:.0f}", minutes)
        gateways = _names(entry, "gateways", place, gateway_names, "the fleet's gateways", errs)
        labels = entry.get("labels", {})
        if not isinstance(labels, Mapping):
            errs.add(f"{place}: labels", "a table of label names to values", labels)
        else:
            for key, value in labels.items():
                if key not in label_names:
                    known = ", ".join(sorted(label_names)) or "none in this fleet"
                    errs.add(f"{place}: labels.{key}", f"a label name of the fleet ({known})", key)
                elif not isinstance(value, str):
                    errs.add(f"{place}: labels.{key}", "a string", value)
        hooks = _names(entry, "webhooks", place, hook_names, "the webhooks defined", errs)
        if len(errs.found) == before:  # without a sink, an error has been raised already
            rules.append(
                AlertRule(
                    kind=kind,
                    minutes=float(minutes),
                    gateways=None if gateways is None else frozenset(gateways),
                    labels=dict(labels),
                    webhooks=hooks,
                )
            )
    return tuple(rules)


def _names(
    entry: Mapping[str, Any],
    key: str,
    place: str,
    known: set[str],
    what: str,
    errs: _Errors,
) -> tuple[str, ...] | None:
    if key not in entry:
        return None
    raw = entry[key]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        errs.add(f"{place}: {key}", f"an array of names of {what}", raw)
        return None
    if len(set(raw)) != len(raw):
        errs.add(f"{place}: {key}", "each name once", raw)
    for item in raw:
        if item not in known:
            listed = ", ".join(sorted(known)[:10]) or "none"
            more = ", ..." if len(known) > 10 else ""
            errs.add(f"{place}: {key}", f"a name of {what} ({listed}{more})", item)
    return tuple(dict.fromkeys(raw))
