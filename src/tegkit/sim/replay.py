"""Replay a real gateway: serve what `teg dump` captured (format "tegkit-dump/1").

`load_dump(folder)` reads and checks a dump at the edge: index.json's format and fields, every
file named there a plain file inside the folder (no `../`, no symlink out), sizes and JSON
nesting bounded. Anything wrong is a `DumpError` naming the file and the field.

Placeholders the dump put in place of identifying values (`<<SERIAL_1>>`, `<<NAME_2>>` ...) are
served as concrete values, the same one everywhere (bodies and paths): `<<SERIAL_3>>` is
`TG9000000003`, `<<NAME_1>>` is `Name 1` (see `concrete`).

`Replay` answers the local API's GETs from the dump, in one of two modes:

- lenient (default): a captured error answer (status, content type, body) is answered as
  captured; a captured 2xx answer of an endpoint in `LIVE_KEYS` is the simulator's answer
  (physics seeded from the dump by `ReplayDump.seed`) laid over the captured body: the dump's
  keys and types, the physics' values for the keys that move; every other captured 2xx answer
  is answered as captured. What the dump lacks is the simulator's own answer.
- strict: every captured GET answers exactly its captured status and body; everything else
  the dump lacks answers 404, as the simulator does for a path it does not serve. Login and
  logout still work (a client could not log in otherwise).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from tegkit.catalog import Endpoint
from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import MeterName, OperationMode, is_off_grid
from tegkit.percent import HIDDEN_BOTTOM_PERCENT
from tegkit.sim.bodies import too_deep
from tegkit.sim.gateway import SimulatedGateway, not_found
from tegkit.sim.physics import Site
from tegkit.sim.profiles import PROFILES, get_profile
from tegkit.sim.responses import READS
from tegkit.sim.siteconfig import POWERWALL_POWER_KW, EnergyCounter, SiteConfig

_LOG = logging.getLogger("tegkit.sim")
# The physics' full pack is the usable energy over this share (raw 5..100 %).
_USABLE_SHARE: Final = 1.0 - HIDDEN_BOTTOM_PERCENT / 100.0

FORMAT: Final = "tegkit-dump/1"
INDEX: Final = "index.json"
MAX_INDEX_BYTES: Final = 1024 * 1024
MAX_FILE_BYTES: Final = 4 * 1024 * 1024
MAX_TOTAL_BYTES: Final = 64 * 1024 * 1024
MAX_FILES: Final = 2000
MAX_DEPTH: Final = 64
MAX_PATH_CHARS: Final = 512

# Requests the simulator keeps answering itself in strict mode: without them no client logs in.
_SESSION_KEYS: Final = frozenset({"POST /api/login/Basic", "GET /api/logout"})

# Lenient: the endpoints whose values move with the physics, and the keys (at any depth)
# whose values the physics gives. Every other key keeps its captured value.
_METER_KEYS: Final = frozenset(
    {
        "last_communication_time",
        "instant_power",
        "instant_reactive_power",
        "instant_apparent_power",
        "frequency",
        "energy_exported",
        "energy_imported",
        "instant_average_voltage",
        "instant_total_current",
        "instant_average_current",
    }
)
LIVE_KEYS: Final[Mapping[str, frozenset[str]]] = {
    "GET /api/meters/aggregates": _METER_KEYS,
    "GET /api/system_status/soe": frozenset({"percentage"}),
    "GET /api/system_status/grid_status": frozenset({"grid_status"}),
    "GET /api/system_status": frozenset(
        {
            "battery_target_power",
            "nominal_full_pack_energy",
            "nominal_energy_remaining",
            "system_island_state",
            "p_out",
            "v_out",
            "f_out",
            "energy_charged",
            "energy_discharged",
            "off_grid",
            "pinv_grid_state",
        }
    ),
    "GET /api/status": frozenset({"up_time_seconds"}),
    "GET /api/sitemaster": frozenset(
        {"running", "status", "uptime", "connected_to_tesla", "can_reboot"}
    ),
    "GET /api/operation": frozenset({"real_mode", "mode", "backup_reserve_percent"}),
}

_PLACEHOLDER: Final = re.compile(r"<<([A-Z][A-Z_ ]*?)_(\d{1,6})>>")
_STATUS_LINE: Final = re.compile(r"HTTP/\d(?:\.\d)? (\d{3})(?: .*)?")
_HEADER: Final = re.compile(r"([A-Za-z0-9-]+):\s*(.*)")
_GO_DURATION: Final = re.compile(r"(\d+)h(\d+)m(\d+(?:\.\d+)?)s")
_VERSION: Final = re.compile(r"(\d+)\.(\d+)")
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


class DumpError(InvalidInputError):
    """A dump folder we refuse to replay: names the file and field, what is wrong, and what
    is allowed."""

    def __init__(self, where: str, problem: str, allowed: str, value: object = None) -> None:
        super().__init__(where, allowed, value)
        shown = "" if value is None else f" ({_short(value)})"
        self.args = (f"{where}: {problem}{shown}; expected {allowed}",)


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- placeholders -----------------------------------------------------------------------------


def _concrete_value(kind: str, n: int) -> str:
    if kind == "SERIAL":
        return f"TG9{n:09d}"
    if kind == "EMAIL":
        return f"user{n}@example.com"
    if kind == "NAME":
        return f"Name {n}"
    if kind == "IP_ADDR":
        return f"192.0.2.{n % 254 + 1}"  # documentation addresses (RFC 5737)
    if kind == "MAC_ADDR":
        return f"02:00:00:00:{n // 256 % 256:02x}:{n % 256:02x}"  # locally administered
    return f"{kind.lower().replace(' ', '-')}-{n}"


def concrete(text: str) -> str:
    """`text` with every numbered placeholder replaced by its concrete value.

    >>> concrete("/api/meters/<<SERIAL_1>>/cts")
    '/api/meters/TG9000000001/cts'
    """
    return _PLACEHOLDER.sub(lambda m: _concrete_value(m.group(1), int(m.group(2))), text)


# --- the dump, read and checked ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Captured:
    """One captured answer, placeholders made concrete: what a replay sends back."""

    file: str
    method: str
    path: str  # as a request arrives (percent-decoded)
    template: str
    status: int
    content_type: str | None  # None: an empty body
    raw: bytes  # the body as sent (compact JSON, or the error's text)
    body: Any  # the decoded JSON body; None when empty or not JSON


@dataclass(frozen=True, slots=True)
class ReplayDump:
    """A checked `teg dump` folder: its answers by (method, path), and what it says of the site."""

    folder: Path
    firmware_version: str | None
    taken_at: dt.datetime | None
    answers: Mapping[tuple[str, str], Captured]

    def body(self, path: str) -> Any:
        """The decoded 2xx body captured for GET `path`, None when there is none."""
        found = self.answers.get(("GET", path))
        return found.body if found is not None and found.status < 300 else None

    @property
    def profile_name(self) -> str:
        """The firmware profile the dump's firmware plays as (see `nearest_profile`)."""
        version = self.firmware_version
        status = self.body("/api/status")
        if version is None and isinstance(status, dict) and isinstance(status.get("version"), str):
            version = status["version"]
        return nearest_profile(version)

    def site_config(self, base: SiteConfig) -> SiteConfig:
        """`base` with the shape the dump shows: Powerwall count, pack size and power, time
        zone, grid voltage and frequency, state of energy. Values the dump lacks or that the
        physics cannot play keep `base`'s (and say so in a log line)."""
        changes: dict[str, Any] = {}
        system = _dict(self.body("/api/system_status"))
        info = _dict(self.body("/api/site_info"))
        walls = _dict(self.body("/api/powerwalls"))
        blocks = system.get("battery_blocks")
        count = len(blocks) if isinstance(blocks, list) and blocks else None
        count = count or _int(system.get("available_blocks")) or None
        if count is None and isinstance(walls.get("powerwalls"), list) and walls["powerwalls"]:
            count = len(walls["powerwalls"])
        if count is not None:
            changes["powerwalls"] = _within("powerwalls", count, 1, 10)
        n = changes.get("powerwalls", base.powerwalls)
        full_wh = _number(system.get("nominal_full_pack_energy"))
        energy_kwh = _number(info.get("nominal_system_energy_kWh"))
        if full_wh and full_wh > 0:  # the real pack's (aged) size, as the gateway reports it
            usable = full_wh * _USABLE_SHARE / 1000.0 / n
            changes["usable_kwh_per_powerwall"] = _within("pack energy", usable, 1.0, 100.0)
        elif energy_kwh and energy_kwh > 0:
            usable = energy_kwh / n
            changes["usable_kwh_per_powerwall"] = _within("pack energy", usable, 1.0, 100.0)
        power_kw = _number(info.get("nominal_system_power_kW"))
        if power_kw and power_kw > 0:
            changes["powerwall_power_kw"] = min(
                POWERWALL_POWER_KW, key=lambda kw: abs(kw - power_kw / n)
            )
        timezone = info.get("timezone") or _dict(self.body("/api/site_info/site_name")).get(
            "timezone"
        )
        if isinstance(timezone, str):
            try:
                ZoneInfo(timezone)
                changes["timezone"] = timezone
            except (ZoneInfoNotFoundError, ValueError, OSError):
                _LOG.warning(
                    "replay: time zone %r unknown here; playing %s", timezone, base.timezone
                )
        grid = _dict(info.get("grid_code")) or info  # 1.x: the grid fields beside the code
        voltage_v = _number(grid.get("grid_voltage_setting"))
        if voltage_v:
            changes["nominal_voltage_v"] = _within("grid voltage", voltage_v, 100.0, 480.0)
        if _number(grid.get("grid_freq_setting")) in (50.0, 60.0):
            changes["nominal_frequency_hz"] = float(grid["grid_freq_setting"])
        soe = _number(_dict(self.body("/api/system_status/soe")).get("percentage"))
        if soe is not None:
            changes["initial_soe_raw_percent"] = _within("state of energy", soe, 0.0, 100.0)
        return dataclasses.replace(base, **changes)

    def seed(self, gw: SimulatedGateway) -> None:
        """Start `gw` where the dump left the site: energy counters, operation mode and
        reserve, grid status, sitemaster, site name, uptime."""
        site = gw.site
        aggregates = _dict(self.body("/api/meters/aggregates"))
        counters: dict[str, EnergyCounter] = {}
        for name in MeterName:
            meter = _dict(aggregates.get(name))
            imported, exported = (
                _number(meter.get("energy_imported")),
                _number(meter.get("energy_exported")),
            )
            if (
                imported is not None
                and exported is not None
                and min(imported, exported) >= 0
                and max(imported, exported) <= 1e15
            ):
                counters[name] = EnergyCounter(imported, exported)
        site.set_counters(counters)
        _seed_operation(site, _dict(self.body("/api/operation")))
        grid = _dict(self.body("/api/system_status/grid_status")).get("grid_status")
        if isinstance(grid, str) and is_off_grid(grid):
            site.start_outage()
        names = _dict(self.body("/api/site_info")) or _dict(self.body("/api/site_info/site_name"))
        if isinstance(names.get("site_name"), str) and names["site_name"]:
            gw.settings.site_name = names["site_name"][:64]
        uptime = _dict(self.body("/api/status")).get("up_time_seconds")
        found = _GO_DURATION.fullmatch(uptime) if isinstance(uptime, str) else None
        if found is not None:
            hours, minutes, seconds = found.groups()
            up_s = min(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 1e9)
            gw.boot_time = gw.sitemaster_since = gw.now - dt.timedelta(seconds=up_s)
        if _dict(self.body("/api/sitemaster")).get("running") is False:
            gw.stop_sitemaster()
        gw.touch()


def _within(what: str, value: float, low: float, high: float) -> Any:
    """`value` clamped to what the physics plays, saying so when it had to be."""
    if low <= value <= high:
        return value
    clamped = min(high, max(low, value))
    _LOG.warning("replay: %s %g is beyond what the simulator plays; using %g", what, value,
                 clamped)  # fmt: skip
    return type(value)(clamped)


def _seed_operation(site: Site, operation: dict[str, Any]) -> None:
    mode = operation.get("real_mode", operation.get("mode"))
    if mode in tuple(OperationMode):
        site.mode = mode
    elif mode is not None:
        _LOG.warning("replay: operation mode %r unknown; playing %s", mode, site.mode)
    reserve = _number(operation.get("backup_reserve_percent"))
    if reserve is not None and 0 <= reserve <= 100:
        site.backup_reserve_raw_percent = reserve


def nearest_profile(version: str | None) -> str:
    """The profile a firmware version plays as: its own, else the nearest of its family
    (before 20.49: legacy auth; from it: modern), saying so in a log line."""
    if version is None:
        _LOG.warning("replay: the dump names no firmware; playing 21.44")
        return "21.44"
    try:
        return get_profile(version.split()[0] if version.split() else version).name
    except ValueError:
        pass
    found = _VERSION.match(version)
    if found is None:
        _LOG.warning("replay: firmware %r is no version number; playing 21.44", version)
        return "21.44"
    wanted = int(found.group(1)) + int(found.group(2)) / 100.0

    def number(name: str) -> float:
        major, minor = name.split(".")
        return int(major) + int(minor) / 100.0

    legacy = wanted < number("20.49")
    family = [p.name for p in PROFILES.values() if p.legacy == legacy]
    name = min(family, key=lambda p: (abs(number(p) - wanted), number(p)))
    _LOG.warning(
        "replay: firmware %r has no profile of its own; playing %s, the nearest", version, name
    )
    return name


def load_dump(folder: str | Path) -> ReplayDump:
    """Read and check a `teg dump` folder; DumpError naming the file and field otherwise."""
    root = Path(folder)
    if not root.is_dir():
        raise DumpError(str(root), "no such folder", "a folder `teg dump` wrote")
    root = root.resolve()
    if not (root / INDEX).exists():
        raise DumpError(str(root / INDEX), "missing",
                        "the index.json `teg dump` writes beside the files")  # fmt: skip
    index = _decode(root, INDEX, _read(root, INDEX, MAX_INDEX_BYTES))
    where = f"{root / INDEX}"
    if not isinstance(index, dict):
        raise DumpError(where, "not a JSON object", "the index `teg dump` writes")
    if index.get("format") != FORMAT:
        raise DumpError(
            f"{where}: format", "unknown dump format", repr(FORMAT), index.get("format")
        )
    version = index.get("firmware_version")
    if version is not None and not (isinstance(version, str) and 0 < len(version) <= 64):
        raise DumpError(f"{where}: firmware_version", "not a version", "a string or null", version)
    taken_at = _taken_at(where, index.get("taken_at"))
    if not isinstance(index.get("skipped", []), list):
        raise DumpError(f"{where}: skipped", "not a list", "a list of {path, reason}")
    files = index.get("files")
    if not isinstance(files, list):
        raise DumpError(f"{where}: files", "missing or not a list", "a list of captured answers")
    if len(files) > MAX_FILES:
        raise DumpError(f"{where}: files", f"{len(files)} entries", f"at most {MAX_FILES}")
    answers: dict[tuple[str, str], Captured] = {}
    total = 0
    for i, entry in enumerate(files):
        captured = _entry(root, f"{where}: files[{i}]", entry)
        total += len(captured.raw)
        if total > MAX_TOTAL_BYTES:
            raise DumpError(
                where, "the files add up to too much", f"at most {MAX_TOTAL_BYTES} bytes"
            )
        key = (captured.method, captured.path)
        if key in answers:
            raise DumpError(f"{where}: files[{i}].path", "a second entry for the path",
                            "each path once", captured.path)  # fmt: skip
        answers[key] = captured
    return ReplayDump(root, version, taken_at, answers)


def _taken_at(where: str, value: object) -> dt.datetime | None:
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None:
        raise DumpError(f"{where}: taken_at", "not a time", "an ISO 8601 time with offset", value)
    return when


def _entry(root: Path, where: str, entry: object) -> Captured:
    if not isinstance(entry, dict):
        raise DumpError(where, "not an object", "{file, method, path, template, status}", entry)
    fields = {}
    for name in ("file", "method", "path", "template"):
        value = entry.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_PATH_CHARS:
            raise DumpError(f"{where}.{name}", "missing or not a string",
                            f"a string of 1 to {MAX_PATH_CHARS} characters", value)  # fmt: skip
        fields[name] = value
    status = entry.get("status")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        raise DumpError(f"{where}.status", "not an HTTP status", "an integer 200..599", status)
    if fields["method"] != "GET":
        raise DumpError(f"{where}.method", "not replayable", "GET (what `teg dump` reads)",
                        fields["method"])  # fmt: skip
    path = urllib.parse.unquote(concrete(fields["path"]))
    if not path.startswith("/api/") or ".." in path.split("/") or "?" in path or "\\" in path:
        raise DumpError(f"{where}.path", "not a gateway path", "a path under /api/", fields["path"])
    if any(ord(c) < 0x20 for c in path):
        raise DumpError(f"{where}.path", "control characters", "a printable path", fields["path"])
    name = fields["file"]
    if not name.endswith((".json", ".err")):
        raise DumpError(f"{where}.file", "neither .json nor .err", "NAME.json or NAME.err", name)
    raw = _read(root, name, MAX_FILE_BYTES, f"{where}.file")
    if name.endswith(".json"):
        if status >= 300:
            raise DumpError(f"{where}.status", "an error status for a .json file",
                            "2xx (error answers are .err files)", status)  # fmt: skip
        body = _decode(root, name, concrete(_text(root, name, raw)).encode())
        text = b"" if body is None else _encoder.encode(body)
        return Captured(name, "GET", path, fields["template"], status,
                        None if body is None else "application/json", text, body)  # fmt: skip
    return _error_answer(root, name, path, fields["template"], status, raw)


def _text(root: Path, name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DumpError(str(root / name), "not UTF-8 text", "the text `teg dump` writes") from exc


def _error_answer(root: Path, name: str, path: str, template: str, status: int, raw: bytes
                  ) -> Captured:  # fmt: skip
    where = str(root / name)
    text = concrete(_text(root, name, raw))
    # headers end at the first blank line; saved from a wire capture they end in CRLF
    ends = [i for i in (text.find("\n\n"), text.find("\r\n\r\n")) if i >= 0]
    sep = "\r\n\r\n" if ends and text.startswith("\r\n\r\n", min(ends)) else "\n\n"
    head, sep, rest = text.partition(sep) if ends else (text, "", "")
    lines = head.replace("\r\n", "\n").split("\n")
    found = _STATUS_LINE.fullmatch(lines[0].rstrip("\r"))
    if not sep or found is None:
        raise DumpError(f"{where}: line 1", "no status line", "HTTP/1.1 STATUS, headers, a blank "
                        "line, the body", lines[0][:80])  # fmt: skip
    if int(found.group(1)) != status:
        raise DumpError(f"{where}: line 1", f"status {found.group(1)} but the index says {status}",
                        "the same status in both")  # fmt: skip
    if not 300 <= status <= 599:
        raise DumpError(f"{where}: line 1", "not an error status", "300..599", status)
    content_type: str | None = None
    for n, line in enumerate(lines[1:], start=2):
        header = _HEADER.fullmatch(line.rstrip("\r"))
        if header is None:
            raise DumpError(f"{where}: line {n}", "not a header", "NAME: VALUE", line[:80])
        if header.group(1).lower() == "content-type":
            content_type = header.group(2).strip() or None
    body_text = rest.removesuffix("\n").removesuffix("\r")
    body: Any = None
    if not body_text:
        return Captured(name, "GET", path, template, status, None, b"", None)
    if content_type is not None and content_type.split(";")[0].strip() == "application/json":
        body = _decode(root, name, body_text.encode())
        return Captured(name, "GET", path, template, status, content_type,
                        _encoder.encode(body), body)  # fmt: skip
    return Captured(name, "GET", path, template, status, content_type or "text/plain",
                    body_text.encode(), None)  # fmt: skip


def _read(root: Path, name: str, limit: int, field: str | None = None) -> bytes:
    """The bytes of `name`, a plain file directly in `root` (symlinks only to files inside)."""
    where = field or str(root / name)
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DumpError(where, "not a file name inside the dump folder",
                        "a plain file name such as meters.aggregates.json", name)  # fmt: skip
    path = root / name
    if not path.exists() and not path.is_symlink():
        raise DumpError(where, f"{name} is missing", "every file the index names, in the folder")
    real = path.resolve()
    if real.parent != root:
        raise DumpError(where, f"{name} points outside the dump folder",
                        "files inside the folder only", str(real))  # fmt: skip
    if not real.is_file():
        raise DumpError(where, f"{name} is not a regular file", "a file", name)
    with real.open("rb") as f:
        raw = f.read(limit + 1)
    if len(raw) > limit:
        raise DumpError(where, f"{name} is too large", f"at most {limit} bytes")
    return raw


def _decode(root: Path, name: str, raw: bytes) -> Any:
    if not raw.strip():
        return None
    try:
        value = _decoder.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DumpError(
            str(root / name), f"not JSON ({exc})", "the JSON `teg dump` writes"
        ) from exc
    if too_deep(value, MAX_DEPTH):
        raise DumpError(str(root / name), "JSON nested too deeply",
                        f"at most {MAX_DEPTH} levels")  # fmt: skip
    return value


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --- serving ------------------------------------------------------------------------------


def overlay(captured: Any, live: Any, keys: frozenset[str]) -> Any:
    """`captured` with the values of `keys` (at any depth) taken from `live`, in the captured
    types; objects are matched by key (by position when no key matches: maps keyed by a
    serial), lists by position. What `live` lacks keeps the captured value."""
    if isinstance(captured, dict) and isinstance(live, dict):
        pairs = [(k, live[k]) for k in captured if k in live]
        if not pairs and len(captured) == len(live):
            pairs = list(zip(captured, live.values(), strict=True))
        out = dict(captured)
        for key, theirs in pairs:
            if key in keys and not isinstance(captured[key], dict | list):
                out[key] = _as_type(captured[key], theirs)
            else:
                out[key] = overlay(captured[key], theirs, keys)
        return out
    if isinstance(captured, list) and isinstance(live, list):
        return [overlay(c, live[i], keys) if i < len(live) else c for i, c in enumerate(captured)]
    return captured


def _as_type(captured: Any, live: Any) -> Any:
    """`live` as a value of `captured`'s type; `captured` when the two cannot be one type.

    A number stays a number: a float where the dump has one; where the dump has an integer,
    an integral value as an integer and any other as a float, as the gateway's own encoder
    (Go's float64) writes them: 72 and 540.25 in one capture."""
    if isinstance(captured, bool) or isinstance(live, bool):
        return live if isinstance(captured, bool) and isinstance(live, bool) else captured
    if isinstance(captured, int) and isinstance(live, int | float) and math.isfinite(live):
        return int(live) if float(live).is_integer() else float(live)
    if isinstance(captured, float) and isinstance(live, int | float):
        return float(live)
    if isinstance(captured, str) and isinstance(live, str):
        return live
    return captured


class Replay:
    """Answers the local API's GETs from a dump (see the module docstring for the modes)."""

    def __init__(self, dump: ReplayDump, *, strict: bool = False) -> None:
        self.dump = dump
        self.strict = strict
        self._version = -1
        self._live: dict[str, Captured] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "folder": str(self.dump.folder),
            "strict": self.strict,
            "firmware_version": self.dump.firmware_version,
            "endpoints": len(self.dump.answers),
        }

    def check(self, key: str, method: str, path: str) -> None:
        """Strict: Refusal 404 for a request the dump has no answer for (login aside)."""
        if self.strict and key not in _SESSION_KEYS and (method, path) not in self.dump.answers:
            raise not_found(path)

    def answer(
        self, gw: SimulatedGateway, endpoint: Endpoint, method: str, path: str
    ) -> Captured | None:
        """The replayed answer to an authorised request; None: the simulator answers."""
        captured = self.dump.answers.get((method, path))
        if captured is None or self.strict or captured.status >= 300:
            return captured
        keys = LIVE_KEYS.get(endpoint.key)
        build = READS.get(endpoint.key)
        if keys is None or build is None or not isinstance(captured.body, dict | list):
            return captured
        if endpoint.live and not gw.running:
            return None  # a stopped gateway's live answer: the simulator's 502
        if self._version != gw.version:
            self._version = gw.version
            self._live.clear()
        hit = self._live.get(path)
        if hit is None:
            status, live = build(gw, {})
            if status >= 300 or live is None:
                return None
            body = overlay(captured.body, live, keys)
            hit = dataclasses.replace(captured, raw=_encoder.encode(body), body=body)
            self._live[path] = hit
        return hit


def make_replay(source: str | Path | ReplayDump, *, strict: bool = False) -> Replay:
    """A Replay of the dump at `source` (a folder, or one already loaded)."""
    dump = source if isinstance(source, ReplayDump) else load_dump(source)
    return Replay(dump, strict=strict)


__all__ = [
    "FORMAT",
    "LIVE_KEYS",
    "Captured",
    "DumpError",
    "Replay",
    "ReplayDump",
    "concrete",
    "load_dump",
    "make_replay",
    "nearest_profile",
    "overlay",
]
