"""The shape of one catalog entry: method, path template, auth rule, side effects, model."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Literal

Api = Literal["local", "cloud"]
Firmware = Literal["legacy", "modern"]

_PARAM = re.compile(r"\{([a-z_]+)\}")


class Auth(enum.Enum):
    """Who may call an endpoint, per firmware family.

    "legacy" is firmware before 20.49 (live data open, Bearer token); "modern" is 20.49 and
    later (customer login with cookies, as in 21.13 .. 23.44).
    """

    OPEN = "open"  # no login on any firmware
    SINCE_20_49 = "login since 20.49"  # open on legacy firmware, customer login on modern
    LOGIN = "login"  # a login on every firmware
    INSTALLER = "installer"  # a login; on modern firmware the customer role gets 403

    def needs_login(self, firmware: Firmware) -> bool:
        if self is Auth.OPEN:
            return False
        if self is Auth.SINCE_20_49:
            return firmware == "modern"
        return True


class Effect(enum.Enum):
    """What calling an endpoint does to the gateway."""

    READ = "read"  # no side effect
    SESSION = "session"  # logs in or out
    STAGES = "stages settings"  # changes settings, in effect after config/completed
    CHANGES = "changes settings"  # takes effect at once
    COMMITS = "commits staged settings"  # config/completed: applies, commission_count += 1
    STOPS = "stops the system"
    STARTS = "starts the system"
    DISRUPTIVE = "disruptive"  # tests, updates, wizard steps, scans


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method on one path of the local gateway API or the Owner API."""

    method: str
    path: str  # template, parameters written {name}: /api/meters/{serial}/verify
    summary: str
    auth: Auth = Auth.SINCE_20_49
    effect: Effect = Effect.READ
    model: str | None = None  # name of the response model in tegkit.models
    source: str = "spec 001 overview"
    unknowns: str = ""  # what the spec leaves open
    api: Api = "local"
    live: bool = False  # live data: 502 with an empty body while the sitemaster is stopped
    params: tuple[str, ...] = field(init=False)
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(_PARAM.findall(self.path))
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if _PARAM.fullmatch(part) else re.escape(part)
            for part in re.split(r"(\{[a-z_]+\})", self.path)
        )
        object.__setattr__(self, "params", names)
        object.__setattr__(self, "_pattern", re.compile(regex + r"\Z"))

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def documented(self) -> bool:
        """True where a response body is documented or captured (and so typed)."""
        return self.model is not None

    def match(self, path: str) -> dict[str, str] | None:
        """The path parameters if `path` (without query) fits this template, else None."""
        found = self._pattern.match(path)
        return found.groupdict() if found else None

    def format(self, **params: str) -> str:
        """The concrete path for these parameter values (values are URL-quoted)."""
        from urllib.parse import quote

        missing = set(self.params) - params.keys()
        if missing:
            raise KeyError(f"{self.key} needs path parameters {sorted(missing)}")
        return _PARAM.sub(lambda m: quote(params[m.group(1)], safe=""), self.path)
