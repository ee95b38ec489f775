"""The `teg` config file: named profiles (gateways and the cloud), read and written atomically.

The file lives at `platformdirs.user_config_dir("tegkit")/config.toml` (for example
`~/.config/tegkit/config.toml`), or wherever TEG_CONFIG points. It is written to a 0600
temporary file beside it and renamed into place, so a crash never leaves half a file and
other users never read it. A password is stored only when the user asks for it
(`teg setup --save-password`).

    default_profile = "home"

    [profiles.home]
    host = "192.168.1.50"
    pin = "9f86d081884c7d65..."      # SHA-256 of the gateway certificate
    email = "owner@example.com"
    timeout_s = 10.0

    [profiles.home.cloud]
    site_id = "1234567"
"""

from __future__ import annotations

import os
import stat
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, cast

import platformdirs
import tomli_w

from tegkit._private_file import PRIVATE_DIR_MODE, write_private
from tegkit.errors import InvalidInputError

DEFAULT_PROFILE: Final = "default"


def config_path() -> Path:
    """Where the config file is: TEG_CONFIG, else the user's config directory."""
    override = os.environ.get("TEG_CONFIG")
    if override:
        return Path(override).expanduser()
    return _own_folder() / "config.toml"


def _own_folder() -> Path:
    return Path(platformdirs.user_config_dir("tegkit"))


def tighten_own_folder(folder: Path) -> None:
    """Make tegkit's own config folder 0700 when something made it wider.

    It holds the session and token files; an older tegkit created it with the umask's mode.
    Only the default folder is changed: one named by TEG_CONFIG may be shared on purpose.
    """
    if folder != _own_folder():
        return
    try:
        mode = stat.S_IMODE(folder.stat().st_mode)
        if mode & 0o077:
            os.chmod(folder, PRIVATE_DIR_MODE)
    except OSError:
        return  # not there yet (it is created 0700), or not ours to change


@dataclass(slots=True)
class CloudProfile:
    """Owner API settings of one profile; the tokens live in their own 0600 file."""

    site_id: str | None = None
    battery_id: str | None = None
    token_file: str | None = None
    base_url: str | None = None  # the Owner API; set for the simulator's cloud
    auth_url: str | None = None
    cafile: str | None = None  # a CA for base_url/auth_url (the simulator's)


@dataclass(slots=True)
class Profile:
    """One gateway: where it is, how to trust it, who logs in. Empty fields use defaults."""

    host: str | None = None
    email: str | None = None
    password: str | None = None  # only with --save-password
    cafile: str | None = None
    pin: str | None = None  # SHA-256 hex of the certificate
    insecure: bool | None = None
    sni: str | None = None
    timeout_s: float | None = None
    cloud: CloudProfile = field(default_factory=CloudProfile)


@dataclass(slots=True)
class CliConfig:
    """The whole file: profiles by name and which one is used when none is named."""

    path: Path
    default_profile: str | None = None
    profiles: dict[str, Profile] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        """The named profile, or an empty one (nothing is written until `save`)."""
        return self.profiles.get(name) or Profile()

    def save(self) -> None:
        write_private(self.path, tomli_w.dumps(self.to_toml()).encode())
        tighten_own_folder(self.path.parent)

    def to_toml(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.default_profile:
            out["default_profile"] = self.default_profile
        out["profiles"] = {name: _profile_to_toml(p) for name, p in self.profiles.items()}
        return out


def _clean(obj: Any) -> dict[str, Any]:
    return {
        f.name: getattr(obj, f.name)
        for f in fields(obj)
        if getattr(obj, f.name) is not None and f.name != "cloud"
    }


def _profile_to_toml(profile: Profile) -> dict[str, Any]:
    out = _clean(profile)
    cloud = _clean(profile.cloud)
    if cloud:
        out["cloud"] = cloud
    return out


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "timeout_s": (int, float),
    "insecure": (bool,),
}


def _typed(section: str, data: Any, cls: type) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise InvalidInputError(section, "a table", type(data).__name__)
    known = {f.name for f in fields(cls)} - {"cloud"}
    out: dict[str, Any] = {}
    value: Any
    for key, value in data.items():
        if key == "cloud" and cls is Profile:
            continue
        if key not in known:
            raise InvalidInputError(f"{section}.{key}", f"one of {sorted(known)}", key)
        types = _TYPES.get(key, (str,))
        if not isinstance(value, types) or (types != (bool,) and isinstance(value, bool)):
            shown = "<hidden>" if key == "password" else value
            raise InvalidInputError(f"{section}.{key}", types[0].__name__, shown)
        out[key] = float(cast(float, value)) if key == "timeout_s" else value
    return out


def load(path: Path | None = None) -> CliConfig:
    """Read the config file; a missing file is an empty config. Bad content raises
    InvalidInputError naming the key (never its value when it is the password)."""
    path = config_path() if path is None else path
    tighten_own_folder(path.parent)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CliConfig(path)
    except (OSError, UnicodeDecodeError) as exc:  # a folder, no permission, not UTF-8 text
        raise InvalidInputError(
            str(path), "a readable UTF-8 TOML file", type(exc).__name__
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(str(path), "a TOML file", str(exc)) from None
    default = data.get("default_profile")
    if default is not None and not isinstance(default, str):
        raise InvalidInputError("default_profile", "a profile name", default)
    profiles: dict[str, Profile] = {}
    raw_profiles = data.get("profiles", {})
    if not isinstance(raw_profiles, dict):
        raise InvalidInputError("profiles", "a table of profiles", type(raw_profiles).__name__)
    for name, raw in raw_profiles.items():
        section = f"profiles.{name}"
        profile = Profile(**_typed(section, raw, Profile))
        profile.cloud = CloudProfile(
            **_typed(f"{section}.cloud", raw.get("cloud", {}), CloudProfile)
        )
        profiles[name] = profile
    return CliConfig(path, default, profiles)


__all__ = [
    "DEFAULT_PROFILE",
    "CliConfig",
    "CloudProfile",
    "Profile",
    "config_path",
    "load",
]
