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

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import socket
import stat
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import is_off_grid
from tegkit.monitor.alert_delivery import WebhookSender
from tegkit.monitor.live import GatewayLive, LiveState

log = logging.getLogger(__name__)

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
    `alerts.webhooks[1] "ops": secret_file`; counted from 1 like the fleet's gateways) and
    what is allowed. With `errors`, every error is appended there instead and the rules and
    webhooks that were valid are returned.
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
    for index, entry in enumerate(raw, start=1):  # counted as the fleet file counts gateways
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
    for index, entry in enumerate(raw, start=1):  # counted as the fleet file counts gateways
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
        elif kind == "firmware_changed" and minutes != 0:
            # an event, not a state: it opens when the change is seen (see FIRMWARE_OPEN_S)
            errs.add(f"{place}: minutes", "0 for firmware_changed (it opens at once)", minutes)
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


# --- the evaluator ----------------------------------------------------------------------------

#: how often (real seconds) the rules are checked against the live state
TICK_S: Final = 5.0
#: a firmware_changed alert is an event: it opens when a new version is seen and resolves
#: itself this long after (or when a newer change supersedes it), delivered both times
FIRMWARE_OPEN_S: Final = 3600.0
#: an open soe_below_reserve alert resolves only this far above the reserve (raw percent),
#: so a battery holding at its reserve does not open and resolve it every few seconds
SOE_HYSTERESIS_RAW_PERCENT: Final = 1.0
#: resolved alerts kept for /api/alerts (the oldest forgotten first)
RECENT_KEPT: Final = 1000


@dataclass(frozen=True, slots=True)
class _Condition:
    holds: bool | None  # None: not known now (no fresh data): nothing opens or resolves
    since_s: float | None = None  # when it began, if the gateway says
    detail: str = ""


def _rule_key(rule: AlertRule) -> str:
    """The rule's identity across reloads of the fleet file (its every setting)."""
    return json.dumps(
        [
            rule.kind,
            rule.minutes,
            None if rule.gateways is None else sorted(rule.gateways),
            sorted(rule.labels.items()),
            None if rule.webhooks is None else list(rule.webhooks),
        ]
    )


def _alert_id(rule_key: str, gateway: str, since_s: float) -> str:
    digest = hashlib.sha256(f"{rule_key}|{gateway}|{since_s!r}".encode()).hexdigest()
    return digest[:24]


def _iso(epoch_s: float | None) -> str | None:
    if epoch_s is None:
        return None
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).isoformat().replace("+00:00", "Z")


def alert_json(alert: Alert, monitor: str) -> dict[str, Any]:
    """An alert as the webhooks and /api/alerts see it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "gateway": alert.gateway,
        "labels": dict(alert.labels),
        "state": alert.state,
        "since": _iso(alert.since_s),
        "resolved_at": _iso(alert.resolved_s),
        "detail": alert.detail,
        "monitor": monitor,
    }


def _no_labels(name: str) -> Mapping[str, str]:
    return {}


class AlertBook:
    """Watches `live` against the rules: opens, resolves, lists and delivers alerts.

    One alert per (rule, gateway) at a time. A rule's condition must hold for its `minutes`
    on the live state's clock before the alert opens (from when the gateway's problem began
    where the poller knows it, else from when this book first saw it); the alert resolves
    the first tick the condition no longer holds. Where nothing is known (no fresh reading),
    nothing opens or resolves. Open alerts are bounded by rules x gateways, resolved ones by
    `recent_kept`. `evaluate()` is one tick; `start()` runs it every `tick_s` real seconds.
    """

    def __init__(
        self,
        config: AlertConfig,
        live: LiveState,
        *,
        labels_of: Callable[[str], Mapping[str, str]] | None = None,
        sender: WebhookSender | None = None,
        tick_s: float = TICK_S,
        recent_kept: int = RECENT_KEPT,
        monitor_name: str | None = None,
    ) -> None:
        self.live = live
        self.tick_s = tick_s
        self.sender = sender if sender is not None else WebhookSender()
        self._default_name = monitor_name or socket.gethostname()
        self.monitor_name = config.monitor or self._default_name
        #: a gateway's fleet labels (rules select by them; payloads carry them), looked up
        #: each tick so a reloaded fleet file's labels count at once
        self._labels_of = labels_of or _no_labels
        self._open: dict[tuple[str, str], Alert] = {}
        self._onset: dict[tuple[str, str], float] = {}  # condition seen holding, not open yet
        self._recent: deque[Alert] = deque(maxlen=recent_kept)
        self._firmware_seen: dict[str, str] = {}  # gateway -> the version seen last
        self._firmware_change: dict[str, tuple[float, str, str]] = {}  # at, old, new
        self._task: asyncio.Task[None] | None = None
        self.config = config
        self._rules: dict[str, AlertRule] = {}
        self.set_config(config)

    # --- configuration --------------------------------------------------------------------

    def set_config(self, config: AlertConfig) -> None:
        """New rules and webhooks (a reloaded fleet file): alerts of rules that are gone
        resolve; those of rules still there go on."""
        self.config = config
        self.monitor_name = config.monitor or self._default_name
        self._hooks = {hook.name: hook for hook in config.webhooks}
        rules = {_rule_key(rule): rule for rule in config.rules}
        for key in [k for k in self._open if k[0] not in rules]:
            self._resolve(key, self.live.clock(), "the rule was removed")
        self._onset = {k: v for k, v in self._onset.items() if k[0] in rules}
        self._rules = rules

    # --- reading --------------------------------------------------------------------------

    def alerts(self, gateway: str | None = None, state: str | None = None) -> list[Alert]:
        """Open alerts (oldest first) then recently resolved ones (latest first)."""
        found: list[Alert] = []
        if state in (None, "open"):
            found += sorted(self._open.values(), key=lambda a: (a.since_s, a.gateway, a.kind))
        if state in (None, "resolved"):
            found += reversed(self._recent)
        return [a for a in found if gateway is None or a.gateway == gateway]

    def open_count(self, gateway: str) -> int:
        return sum(1 for (_, name) in self._open if name == gateway)

    def open_counts(self) -> dict[str, int]:
        """Open alerts per gateway (only gateways with at least one)."""
        counts: dict[str, int] = {}
        for _, name in self._open:
            counts[name] = counts.get(name, 0) + 1
        return counts

    def to_json(self, alert: Alert) -> dict[str, Any]:
        return alert_json(alert, self.monitor_name)

    # --- evaluating -----------------------------------------------------------------------

    def evaluate(self) -> list[Alert]:
        """One tick: every rule on every gateway it selects; the alerts opened or resolved."""
        if not self._rules and not self._open:
            return []  # no rules: a big fleet without alerts pays nothing per tick
        now = self.live.clock()
        changed: list[Alert] = []
        watched = {g.name: g for g in self.live.gateways()}
        self._note_firmware(watched, now)
        for key in [k for k in self._open if k[1] not in watched]:
            changed.append(self._resolve(key, now, "the gateway is no longer watched"))
        self._onset = {k: v for k, v in self._onset.items() if k[1] in watched}
        for gone in set(self._firmware_seen) - set(watched):
            del self._firmware_seen[gone]
            self._firmware_change.pop(gone, None)
        for rule_key, rule in self._rules.items():
            for name, gateway in watched.items():
                labels = self._labels_of(name)
                if not self._selects(rule, name, labels):
                    if (rule_key, name) in self._open:  # its labels changed
                        changed.append(self._resolve((rule_key, name), now, "no longer selected"))
                    self._onset.pop((rule_key, name), None)
                    continue
                changed += self._step(rule_key, rule, gateway, labels, now)
        return changed

    @staticmethod
    def _selects(rule: AlertRule, name: str, labels: Mapping[str, str]) -> bool:
        if rule.gateways is not None and name not in rule.gateways:
            return False
        return all(labels.get(k) == v for k, v in rule.labels.items())

    def _step(
        self,
        rule_key: str,
        rule: AlertRule,
        gateway: GatewayLive,
        labels: Mapping[str, str],
        now: float,
    ) -> list[Alert]:
        key = (rule_key, gateway.name)
        current = self._open.get(key)
        if rule.kind == "firmware_changed":
            return self._step_firmware(key, gateway.name, labels, now)
        cond = self._condition(rule.kind, gateway, now, current is not None)
        if cond.holds is None:
            return []
        if not cond.holds:
            self._onset.pop(key, None)
            return [] if current is None else [self._resolve(key, now, cond.detail)]
        if current is not None:
            current.detail = cond.detail or current.detail
            return []
        since = self._onset.setdefault(key, cond.since_s if cond.since_s is not None else now)
        if now - since < rule.minutes * 60.0:
            return []
        del self._onset[key]
        return [self._open_alert(key, rule.kind, gateway.name, labels, since, cond.detail)]

    def _condition(self, kind: RuleKind, g: GatewayLive, now: float, is_open: bool) -> _Condition:
        fresh = g.reading is not None and now - g.reading.taken_at <= self.live.stale_after_s
        if kind == "unreachable":
            if g.problem in ("unreachable", "error"):
                return _Condition(True, g.problem_since, g.problem_reason or "no readings")
            if g.reading is not None and not fresh:
                age_s = now - g.reading.taken_at
                detail = f"no reading for {age_s:.0f} s"
                return _Condition(True, g.reading.taken_at, detail)
            if g.problem is not None or fresh:  # it answers (stopped and auth: their rules)
                return _Condition(False, detail="readings again")
            return _Condition(None)
        if kind == "system_stopped":
            if g.problem == "stopped":
                return _Condition(True, g.problem_since, g.problem_reason or "system stopped")
            if g.sitemaster_running is False:  # as /api/sitemaster says
                return _Condition(True, None, "the sitemaster reports it is not running")
            if fresh or g.sitemaster_running:
                return _Condition(False, detail="the system runs again")
            return _Condition(None)
        if kind == "auth_failing":
            if g.problem == "auth":
                reason = g.problem_reason or "authentication failed"
                return _Condition(True, g.problem_since, reason)
            if fresh:
                return _Condition(False, detail="the gateway accepts the credentials again")
            return _Condition(None)
        if not fresh or g.reading is None:
            return _Condition(None)
        reading = g.reading
        if kind == "grid_outage":
            off = is_off_grid(reading.grid_status)
            if off is None:
                return _Condition(None)
            if off:
                return _Condition(True, detail=f"grid status {reading.grid_status}")
            return _Condition(False, detail="the grid is back")
        # soe_below_reserve
        soe, reserve = reading.soe_raw_percent, g.backup_reserve_raw_percent
        if soe is None or reserve is None:
            return _Condition(None)
        margin = SOE_HYSTERESIS_RAW_PERCENT if is_open else 0.0
        detail = f"state of energy {soe:.1f} %, backup reserve {reserve:.1f} % (raw percent)"
        return _Condition(soe < reserve + margin, detail=detail)

    def _note_firmware(self, watched: Mapping[str, GatewayLive], now: float) -> None:
        for name, gateway in watched.items():
            version = gateway.version
            if version is None:
                continue
            seen = self._firmware_seen.get(name)
            if seen is not None and seen != version:
                self._firmware_change[name] = (now, seen, version)
            self._firmware_seen[name] = version

    def _step_firmware(
        self, key: tuple[str, str], name: str, labels: Mapping[str, str], now: float
    ) -> list[Alert]:
        changed: list[Alert] = []
        change = self._firmware_change.get(name)
        current = self._open.get(key)
        if current is not None:
            superseded = change is not None and change[0] > current.since_s
            if superseded or now - current.since_s >= FIRMWARE_OPEN_S:
                detail = "superseded by a newer change" if superseded else current.detail
                changed.append(self._resolve(key, now, detail))
                current = None  # a newer change opens below, on this same tick
        if current is not None or change is None:
            return changed
        at, old, new = change
        if now - at >= FIRMWARE_OPEN_S or self._onset.get(key, -math.inf) >= at:
            return changed
        self._onset[key] = at  # this change has had its alert
        changed.append(
            self._open_alert(key, "firmware_changed", name, labels, at, f"{old} -> {new}")
        )
        return changed

    def _open_alert(
        self,
        key: tuple[str, str],
        kind: RuleKind,
        name: str,
        labels: Mapping[str, str],
        since: float,
        detail: str,
    ) -> Alert:
        alert = Alert(
            id=_alert_id(key[0], name, since),
            kind=kind,
            gateway=name,
            since_s=since,
            detail=detail,
            labels=dict(labels),
        )
        self._open[key] = alert
        log.warning("alert %s on %s: %s (%s)", kind, name, detail, alert.id)
        self._deliver(key[0], alert)
        return alert

    def _resolve(self, key: tuple[str, str], now: float, detail: str) -> Alert:
        alert = self._open.pop(key)
        alert.state = "resolved"
        alert.resolved_s = max(now, alert.since_s)
        if detail:
            alert.detail = detail
        self._recent.append(alert)
        log.info("alert %s on %s resolved: %s (%s)", alert.kind, alert.gateway, detail, alert.id)
        self._deliver(key[0], alert)
        return alert

    def _deliver(self, rule_key: str, alert: Alert) -> None:
        rule = self._rules.get(rule_key)
        names = (
            self._hooks.keys()
            if rule is None or rule.webhooks is None
            else [n for n in rule.webhooks if n in self._hooks]
        )
        if not names:
            return
        body = json.dumps(self.to_json(alert), separators=(",", ":")).encode()
        for name in names:
            self.sender.submit(self._hooks[name], alert.id, alert.state, body)

    # --- running --------------------------------------------------------------------------

    async def start(self) -> None:
        await self.sender.start()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="alerts")

    async def _run(self) -> None:
        while True:
            try:
                self.evaluate()
            except Exception:  # a bug in the rules must not stop the monitor
                log.exception("alerts: evaluating the rules failed")
            await asyncio.sleep(self.tick_s)

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop evaluating; pending deliveries get `grace_s`, then are dropped (logged)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.sender.close(grace_s)
