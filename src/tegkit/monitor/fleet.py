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

Errors name the gateway and the field: `gateways[3] "smith-home": pin: ...` (gateways
counted from 1, in file order). The file is checked as a whole: every problem is listed in
one `FleetFileError`, and no secret is ever part of a message.

The rules, in short:

- `url` is `https://HOST[:PORT]` (a gateway serves its API over HTTPS only: `http://` is
  refused); `host = "HOST[:PORT]"` means the same. Two gateways at one address are refused
  (two pollers would share one gateway's request budget).
- `name`: 1 to 64 of letters, digits, `_`, `.`, `-`, starting with a letter or digit
  (it is a metric label value, a URL part and an MQTT topic level); unique.
- Trust: `pin` (a SHA-256 fingerprint as `teg cert show` prints it) or `cafile`
  (relative to this file; it must exist), not both; neither: the system's CAs.
- The password comes from one of `password_env` (the variable must be set when the file
  is read), `password_file` (owned by you, mode 0600, at most 4 KiB, one trailing newline
  dropped), `password_keyring` (the user name under service "tegkit" in the system
  keyring) or `password` (inline, only when this file is owned by you and 0600). No
  environment variable overrides a gateway's source (TEG_PASSWORD too is read only where a
  gateway names it).
- A gateway that sets one key of a group (the password sources; `pin`/`cafile`) takes
  none of that group from `[defaults]`.
- `tz`: an IANA zone name. `tariff`: a tariff file (relative to this file). `via`: auto,
  local or cloud. `cloud_profile`: a `teg` profile name (resolved by the command line).
- `fast_interval_s`, `slow_interval_s` (seconds, above 0, at most a day),
  `budget_per_minute` (requests, 3 to 10,000), `timeout_s`: the intervals' requests must
  fit the budget.
- `labels`: at most 16, names as Prometheus label names (not starting `__`, not one the
  metrics use themselves: `gateway`, `meter`, `status`, `mode`, `version`, `endpoint`,
  `kind`, `rule`, `result`, `le`, `quantile`, `job`, `instance`), values text of at most
  128 characters; a gateway without a label of the fleet gets "" for it.
- At most 1 MiB and 20,000 gateways per file; unknown keys are refused everywhere.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
import tomllib
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from tegkit.client import normalise_fingerprint
from tegkit.errors import InvalidInputError
from tegkit.monitor.metrics import RESERVED_LABELS
from tegkit.monitor.poller import REQUESTS_PER_CALL_MAX, GatewayTarget, PollerConfig
from tegkit.route import VIAS
from tegkit.tariff import Tariff, load_tariff

if TYPE_CHECKING:
    from tegkit.monitor.alerts import AlertConfig

#: the keyring service under which `password_keyring` names a user
KEYRING_SERVICE = "tegkit"

MAX_FILE_BYTES: Final = 1 << 20
MAX_GATEWAYS: Final = 20_000
MAX_SECRET_FILE_BYTES: Final = 4096
MAX_LABELS: Final = 16
MAX_LABEL_VALUE_CHARS: Final = 128
MAX_INTERVAL_S: Final = 86_400.0
MAX_BUDGET_PER_MINUTE: Final = 10_000
MAX_TIMEOUT_S: Final = 300.0
DEFAULT_TIMEOUT_S: Final = 10.0  # GatewayTarget's

CREDENTIAL_KEYS: Final = ("password_env", "password_file", "password_keyring", "password")
TRUST_KEYS: Final = ("pin", "cafile")
#: keys `[defaults]` may hold: every gateway key but its name, address and labels
DEFAULT_KEYS: Final = frozenset(
    {
        "email",
        "sni",
        *TRUST_KEYS,
        *CREDENTIAL_KEYS,
        "tz",
        "tariff",
        "cloud_profile",
        "via",
        "fast_interval_s",
        "slow_interval_s",
        "budget_per_minute",
        "timeout_s",
    }
)
GATEWAY_KEYS: Final = DEFAULT_KEYS | {"name", "url", "host", "labels"}
TOP_KEYS: Final = frozenset({"defaults", "gateways", "alerts"})

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_NAME_ALLOWED = "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?")
_PROFILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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


class FleetProblem(InvalidInputError):
    """One problem of a fleet file: `field: what was wrong; expected what is allowed`.
    `what` describes the value (never a secret's)."""

    def __init__(self, field: str, what: str, allowed: str) -> None:
        self.field = field
        self.allowed = allowed
        self.value = None
        self.what = what
        Exception.__init__(self, f"{field}: {what}; expected {allowed}")


class FleetFileError(InvalidInputError):
    """A fleet file refused: every problem found, one a line (`errors`)."""

    def __init__(self, where: str, errors: list[InvalidInputError]) -> None:
        self.field = where
        self.allowed = "a valid fleet file"
        self.value = None
        self.errors = tuple(errors)
        count = f"{len(errors)} problem{'s' if len(errors) != 1 else ''}"
        lines = "\n".join(f"  {e}" for e in errors)
        Exception.__init__(self, f"fleet file {where}: {count}:\n{lines}")


def load_fleet(path: str | Path, *, environ: Mapping[str, str] = os.environ) -> Fleet:
    """Read and check the fleet file at `path` (see the module); FleetFileError if wrong."""
    path = Path(path).expanduser()
    where = str(path)
    try:
        with path.open("rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise FleetFileError(where, [FleetProblem("fleet", "not a file", "a TOML file")])
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        problem = FleetProblem("fleet", f"cannot be read ({exc.strerror})", "a readable file")
        raise FleetFileError(where, [problem]) from None
    if len(data) > MAX_FILE_BYTES:
        problem = FleetProblem("fleet", "larger than 1 MiB", "a file of at most 1 MiB")
        raise FleetFileError(where, [problem])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FleetFileError(
            where, [FleetProblem("fleet", "not UTF-8 text", "a UTF-8 TOML file")]
        ) from None
    return parse_fleet(
        text,
        path.parent,
        file_is_private=_private(info),
        environ=environ,
        path=path,
    )


def parse_fleet(
    text: str,
    base_dir: Path,
    *,
    file_is_private: bool,
    environ: Mapping[str, str] = os.environ,
    path: Path | None = None,
) -> Fleet:
    """The fleet in `text` (a fleet file's content; relative paths from `base_dir`).
    `file_is_private`: the file is the user's own and 0600 (inline passwords allowed)."""
    where = str(path) if path is not None else "(text)"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FleetFileError(where, [FleetProblem("fleet", f"not TOML ({exc})", "TOML")]) from None
    reader = _Reader(base_dir, file_is_private, environ)
    errs = reader.errors
    for key in sorted(set(data) - TOP_KEYS):
        errs.append(FleetProblem(key, "an unknown key", f"one of {', '.join(sorted(TOP_KEYS))}"))
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        errs.append(FleetProblem("defaults", _kind(defaults), "a table ([defaults])"))
        defaults = {}
    for key in sorted(set(defaults) - DEFAULT_KEYS):
        allowed = "a gateway key other than name, url, host and labels"
        if key not in GATEWAY_KEYS:
            allowed = f"one of {', '.join(sorted(DEFAULT_KEYS))}"
        errs.append(FleetProblem(f"defaults: {key}", "not allowed here", allowed))
    defaults = {k: v for k, v in defaults.items() if k in DEFAULT_KEYS}
    raw_gateways = data.get("gateways")
    gateways: list[FleetGateway] = []
    if not isinstance(raw_gateways, list) or not raw_gateways:
        what = "missing" if raw_gateways is None else _kind(raw_gateways)
        errs.append(FleetProblem("gateways", what, "at least one [[gateways]] table"))
    elif len(raw_gateways) > MAX_GATEWAYS:
        errs.append(
            FleetProblem("gateways", f"{len(raw_gateways)} gateways", f"at most {MAX_GATEWAYS}")
        )
    else:
        for index, raw in enumerate(raw_gateways, start=1):
            gateway = reader.gateway(raw, index, defaults)
            if gateway is not None:
                gateways.append(gateway)
    label_names = tuple(sorted({n for g in gateways for n in g.labels}))
    gateways = [_with_every_label(g, label_names) for g in gateways]
    alerts = None
    if "alerts" in data:
        from tegkit.monitor.alerts import parse_alert_config

        alerts = parse_alert_config(
            data["alerts"],
            base_dir=base_dir,
            environ=environ,
            gateway_names=[g.name for g in gateways],
            label_names=label_names,
            errors=errs,
        )
    if errs:
        raise FleetFileError(where, errs)
    return Fleet(tuple(gateways), label_names, alerts, path)


def _with_every_label(gateway: FleetGateway, names: tuple[str, ...]) -> FleetGateway:
    if len(gateway.labels) == len(names):
        return gateway
    labels = {n: gateway.labels.get(n, "") for n in names}
    return FleetGateway(
        gateway.target, gateway.config, gateway.tariff, labels, gateway.cloud_profile
    )


def _private(info: os.stat_result) -> bool:
    """Owned by this user and readable by no one else."""
    return info.st_uid == os.getuid() and not info.st_mode & 0o077


def _kind(value: object) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a table",
    }.get(type(value), type(value).__name__)


def _shown(value: object) -> str:
    """A value as a message shows it (never used for secrets)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class _Reader:
    """Checks gateway tables one by one, collecting every problem in `errors`."""

    def __init__(self, base_dir: Path, file_is_private: bool, environ: Mapping[str, str]):
        self.base_dir = base_dir
        self.file_is_private = file_is_private
        self.environ = environ
        self.errors: list[InvalidInputError] = []
        self.names: dict[str, int] = {}
        self.addresses: dict[str, int] = {}
        self._tariffs: dict[Path, Tariff | InvalidInputError] = {}
        self._files: dict[Path, bool] = {}

    def gateway(self, raw: object, index: int, defaults: dict[str, Any]) -> FleetGateway | None:
        where = f"gateways[{index}]"
        if not isinstance(raw, dict):
            self.errors.append(FleetProblem(where, _kind(raw), "a [[gateways]] table"))
            return None
        before = len(self.errors)
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            what = "missing" if name is None else _shown(name)
            self.errors.append(FleetProblem(f"{where}: name", what, _NAME_ALLOWED))
            prefix = f"{where}: "
            name = None
        else:
            prefix = f'{where} "{name}": '
            if name in self.names:
                self.errors.append(
                    FleetProblem(
                        f"{prefix}name",
                        f"gateways[{self.names[name]}] has this name too",
                        "a name no other gateway has",
                    )
                )
            else:
                self.names[name] = index
        for key in sorted(set(raw) - GATEWAY_KEYS):
            self.errors.append(
                FleetProblem(
                    f"{prefix}{key}", "an unknown key", f"one of {', '.join(sorted(GATEWAY_KEYS))}"
                )
            )
        merged = {k: v for k, v in defaults.items() if not _group_set(raw, k)}
        merged.update((k, v) for k, v in raw.items() if k in GATEWAY_KEYS)
        check = _Check(self, prefix)
        url = self._address(raw, check, index)
        sni = check.optional(merged, "sni", _hostname, "a host name such as teg")
        email = check.optional(merged, "email", _text(256), "text of at most 256 characters")
        pin, cafile = self._trust(merged, check)
        password = self._password(merged, check)
        tz = check.optional(merged, "tz", _zone, "an IANA time zone name such as Europe/Berlin")
        via = check.optional(merged, "via", _via, "one of " + ", ".join(VIAS))
        tariff = self._tariff(merged, check)
        cloud_profile = check.optional(
            merged, "cloud_profile", _profile, "a profile name (" + _NAME_ALLOWED + ")"
        )
        timeout_s = check.optional(
            merged,
            "timeout_s",
            _seconds(MAX_TIMEOUT_S),
            f"seconds above 0, at most {MAX_TIMEOUT_S:g}",
        )
        config = self._config(merged, check)
        labels = self._labels(raw, check)
        if len(self.errors) > before or name is None or url is None:
            return None
        target = GatewayTarget(
            name=name,
            url=url,
            password=password,
            email=email or "",
            pin=pin,
            cafile=cafile,
            sni=sni,
            timeout_s=timeout_s if timeout_s is not None else DEFAULT_TIMEOUT_S,
            tz=tz,
            via=via or "auto",
        )
        return FleetGateway(target, config or PollerConfig(), tariff, labels or {}, cloud_profile)

    # --- the parts ---------------------------------------------------------------------

    def _address(self, raw: dict[str, Any], check: _Check, index: int) -> str | None:
        has_url, has_host = "url" in raw, "host" in raw
        if has_url == has_host:
            what = "both url and host" if has_url else "neither url nor host"
            check.problem("url", what, 'one of url = "https://HOST[:PORT]" or host = "HOST[:PORT]"')
            return None
        key = "url" if has_url else "host"
        value = raw[key]
        if not isinstance(value, str):
            check.problem(key, _kind(value), "text")
            return None
        text = value if has_url else f"https://{value}"
        url, what = _https_url(text)
        if url is None:
            allowed = (
                "https://HOST[:PORT] (a gateway serves its API over HTTPS only)"
                if has_url
                else "HOST or HOST:PORT (an IPv6 address in brackets)"
            )
            check.problem(key, f"{_shown(value)}: {what}", allowed)
            return None
        first = self.addresses.setdefault(url.lower(), index)
        if first != index:
            check.problem(
                key,
                f"gateways[{first}] is at {url} too",
                "one gateway per address (two pollers would share its request budget)",
            )
            return None
        return url

    def _trust(self, merged: dict[str, Any], check: _Check) -> tuple[str | None, str | None]:
        if "pin" in merged and "cafile" in merged:
            check.problem("pin", "both pin and cafile", "one of pin or cafile")
            return None, None
        pin = None
        if "pin" in merged:
            value = merged["pin"]
            try:
                pin = normalise_fingerprint(value) if isinstance(value, str) else None
            except InvalidInputError:
                pin = None
            if pin is None:
                check.problem(
                    "pin",
                    _shown(value),
                    "a SHA-256 fingerprint: 64 hex digits, colons allowed, as `teg cert show` "
                    "prints it",
                )
        cafile = None
        if "cafile" in merged:
            path = self._path(merged["cafile"], "cafile", check, "a certificate file (PEM)")
            cafile = None if path is None else str(path)
        return pin, cafile

    def _path(self, value: object, key: str, check: _Check, what: str) -> Path | None:
        if not isinstance(value, str) or not value or "\x00" in value:
            check.problem(key, _shown(value), f"the path of {what}, relative to the fleet file")
            return None
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        exists = self._files.get(path)
        if exists is None:
            exists = self._files[path] = path.is_file()
        if not exists:
            check.problem(key, f"{_shown(value)}: no such file ({path})", f"{what} that exists")
            return None
        return path

    def _password(self, merged: dict[str, Any], check: _Check) -> str | None:
        given = [k for k in CREDENTIAL_KEYS if k in merged]
        if not given:
            check.problem(
                "password_env",
                "no password source",
                "one of " + ", ".join(CREDENTIAL_KEYS) + " (here or in [defaults])",
            )
            return None
        if len(given) > 1:
            check.problem(given[0], "also " + ", ".join(given[1:]), "one password source")
            return None
        key = given[0]
        value = merged[key]
        if key == "password":
            if not self.file_is_private:
                check.problem(
                    key,
                    "an inline password in a file others can read (or not yours)",
                    "password_env, password_file or password_keyring; or make the fleet "
                    "file yours and mode 0600 (chmod 600)",
                )
                return None
            if not isinstance(value, str) or not value:
                check.problem(key, "not text" if not isinstance(value, str) else "empty", "text")
                return None
            return value
        if key == "password_env":
            if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
                check.problem(key, _shown(value), "an environment variable's name")
                return None
            secret = self.environ.get(value)
            if not secret:
                what = f"{value} is not set" if secret is None else f"{value} is empty"
                check.problem(key, what, f"a password in {value} when the fleet file is read")
                return None
            return secret
        if key == "password_file":
            path = self._path(value, key, check, "a file holding the password")
            if path is None:
                return None
            secret, what = _read_secret(path)
            if secret is None:
                check.problem(
                    key,
                    f"{path}: {what}",
                    f"a file of yours, mode 0600 (chmod 600), of at most "
                    f"{MAX_SECRET_FILE_BYTES} bytes, holding the password",
                )
            return secret
        # password_keyring
        if not isinstance(value, str) or not value or len(value) > 256:
            check.problem(key, _shown(value), "a user name under the keyring service tegkit")
            return None
        secret, what = _keyring_password(value)
        if secret is None:
            check.problem(
                key,
                what,
                f'a password in the system keyring (service "{KEYRING_SERVICE}", user '
                f'"{value}": keyring set {KEYRING_SERVICE} {value})',
            )
        return secret

    def _tariff(self, merged: dict[str, Any], check: _Check) -> Tariff | None:
        if "tariff" not in merged:
            return None
        path = self._path(merged["tariff"], "tariff", check, "a tariff file")
        if path is None:
            return None
        found = self._tariffs.get(path)
        if found is None:
            try:
                found = load_tariff(path)
            except InvalidInputError as exc:
                found = exc
            except (OSError, UnicodeDecodeError) as exc:
                found = InvalidInputError("tariff", "a readable UTF-8 file", type(exc).__name__)
            self._tariffs[path] = found
        if isinstance(found, InvalidInputError):
            check.problem("tariff", f"{path}: {found}", "a valid tariff file (see `teg tariff`)")
            return None
        return found

    def _config(self, merged: dict[str, Any], check: _Check) -> PollerConfig | None:
        defaults = PollerConfig()
        fast = check.optional(
            merged, "fast_interval_s", _seconds(MAX_INTERVAL_S), "seconds above 0, at most a day"
        )
        slow = check.optional(
            merged, "slow_interval_s", _seconds(MAX_INTERVAL_S), "seconds above 0, at most a day"
        )
        budget = check.optional(
            merged,
            "budget_per_minute",
            _count(REQUESTS_PER_CALL_MAX, MAX_BUDGET_PER_MINUTE),
            f"a whole number from {REQUESTS_PER_CALL_MAX} to {MAX_BUDGET_PER_MINUTE}",
        )
        if check.failed_any("fast_interval_s", "slow_interval_s", "budget_per_minute"):
            return None
        try:
            config = PollerConfig(
                fast_interval_s=fast if fast is not None else defaults.fast_interval_s,
                slow_interval_s=slow if slow is not None else defaults.slow_interval_s,
                budget_per_minute=budget if budget is not None else defaults.budget_per_minute,
            )
        except ValueError as exc:  # never: each value is checked above
            check.problem("fast_interval_s", str(exc), "valid poll settings")
            return None
        needed = config.needed_per_minute()
        if needed > config.budget_per_minute:
            check.problem(
                "budget_per_minute",
                f"{config.budget_per_minute}, but the intervals need {math.ceil(needed)} "
                "requests a minute",
                f"at least {math.ceil(needed)}, or longer intervals",
            )
            return None
        return config

    def _labels(self, raw: dict[str, Any], check: _Check) -> dict[str, str] | None:
        if "labels" not in raw:
            return None
        value = raw["labels"]
        if not isinstance(value, dict):
            check.problem("labels", _kind(value), 'a table, e.g. labels = { region = "west" }')
            return None
        if len(value) > MAX_LABELS:
            check.problem("labels", f"{len(value)} labels", f"at most {MAX_LABELS}")
            return None
        labels: dict[str, str] = {}
        for name, text in value.items():
            if not _LABEL_NAME.fullmatch(name) or name.startswith("__") or name in RESERVED_LABELS:
                check.problem(
                    f"labels.{name}" if _LABEL_NAME.fullmatch(name) else "labels",
                    f"the label name {_shown(name)}",
                    "a Prometheus label name (letters, digits, '_'; not starting with a digit "
                    "or '__'), other than the metrics' own: " + ", ".join(sorted(RESERVED_LABELS)),
                )
                continue
            if not isinstance(text, str) or len(text) > MAX_LABEL_VALUE_CHARS:
                what = _kind(text) if not isinstance(text, str) else f"{len(text)} characters"
                check.problem(
                    f"labels.{name}", what, f"text of at most {MAX_LABEL_VALUE_CHARS} characters"
                )
                continue
            labels[name] = text
        return labels


class _Check:
    """The problems of one gateway: each names the gateway (`prefix`) and the field."""

    def __init__(self, reader: _Reader, prefix: str) -> None:
        self.reader = reader
        self.prefix = prefix
        self.failed: set[str] = set()

    def problem(self, key: str, what: str, allowed: str) -> None:
        self.failed.add(key)
        self.reader.errors.append(FleetProblem(f"{self.prefix}{key}", what, allowed))

    def failed_any(self, *keys: str) -> bool:
        return any(k in self.failed for k in keys)

    def optional(
        self, merged: dict[str, Any], key: str, convert: Callable[[Any], Any], allowed: str
    ) -> Any:
        """`convert(value)` of `key` when given (None when not); None and a problem when
        `convert` refuses it (returns None)."""
        if key not in merged:
            return None
        value = merged[key]
        converted = convert(value)
        if converted is None:
            self.problem(key, _shown(value), allowed)
        return converted


def _group_set(raw: dict[str, Any], key: str) -> bool:
    """The gateway sets `key` or a key of its group: a default for it does not apply."""
    for group in (CREDENTIAL_KEYS, TRUST_KEYS):
        if key in group:
            return any(k in raw for k in group)
    return key in raw


def _https_url(text: str) -> tuple[str | None, str]:
    """`text` as https://HOST[:PORT] (no path, query or user), or None and what is wrong."""
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port
    except ValueError as exc:
        return None, str(exc)
    if parts.scheme.lower() != "https":
        return None, f"the scheme {parts.scheme or '(none)'}"
    if parts.username is not None or parts.password is not None:
        return None, "a user or password in the address"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return None, "a path, query or fragment"
    host = parts.hostname
    if not host:
        return None, "no host"
    if ":" in host:  # IPv6
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return None, "not a host"
        host = f"[{host}]"
    elif not _HOSTNAME.fullmatch(host):
        return None, "not a host"
    return f"https://{host}" + (f":{port}" if port is not None else ""), ""


def _read_secret(path: Path) -> tuple[str | None, str]:
    """The password in `path` (one trailing newline dropped), or None and what is wrong.
    The checks are made on the open file, so the file checked is the file read."""
    try:
        fd = os.open(path, os.O_RDONLY)  # a symbolic link is followed (mounted secrets)
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "not a regular file"
        if info.st_uid != os.getuid():
            return None, "owned by another user"
        if info.st_mode & 0o077:
            return None, f"mode {stat.S_IMODE(info.st_mode):04o} lets others read it"
        data = f.read(MAX_SECRET_FILE_BYTES + 1)
    if len(data) > MAX_SECRET_FILE_BYTES:
        return None, f"larger than {MAX_SECRET_FILE_BYTES} bytes"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    if text.endswith("\r\n"):
        text = text[:-2]
    elif text.endswith("\n"):
        text = text[:-1]
    if not text:
        return None, "empty"
    return text, ""


def _keyring_password(user: str) -> tuple[str | None, str]:
    """The password of `user` under KEYRING_SERVICE, or None and what went wrong."""
    try:
        import keyring
        import keyring.errors
    except ImportError:  # a dependency: only a broken install lacks it
        return None, "the keyring library is not installed"
    try:
        secret = keyring.get_password(KEYRING_SERVICE, user)
    except keyring.errors.KeyringError as exc:
        return None, f"the system keyring cannot be read ({type(exc).__name__})"
    except Exception as exc:  # a backend's own failure (D-Bus gone...), said without detail
        return None, f"the system keyring failed ({type(exc).__name__})"
    if not secret:
        return None, f'no password for user "{user}"'
    return secret, ""


# --- value converters: the value, or None when it is not allowed ----------------------------


def _text(most: int) -> Callable[[Any], str | None]:
    def convert(value: Any) -> str | None:
        return value if isinstance(value, str) and len(value) <= most else None

    return convert


def _hostname(value: Any) -> str | None:
    return value if isinstance(value, str) and _HOSTNAME.fullmatch(value) else None


def _profile(value: Any) -> str | None:
    return value if isinstance(value, str) and _PROFILE.fullmatch(value) else None


def _via(value: Any) -> Any:
    return value if value in VIAS else None


def _zone(value: Any) -> ZoneInfo | None:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def _seconds(most: float) -> Callable[[Any], float | None]:
    def convert(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        number = float(value)
        return number if math.isfinite(number) and 0 < number <= most else None

    return convert


def _count(least: int, most: int) -> Callable[[Any], int | None]:
    def convert(value: Any) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return None
        return value if least <= value <= most else None

    return convert
