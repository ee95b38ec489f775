"""Owner API facts shared by the cloud client and the simulator: modes, limits, body shapes.

Neutral ground: `tegkit.cloud` (the client) and `tegkit.sim.owner_api` (the simulated
cloud) both import this module and never each other. Percents here are on the APP scale,
as the Owner API and Tesla's app show them (raw = 5 + 0.95 x app, see `tegkit.percent`).

>>> check_backup_reserve_app_percent(20.0)
20
>>> str(check_operation_mode("autonomous"))
'autonomous'
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final, Literal

import msgspec

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, ExportRule, OperationMode

OWNER_API_URL: Final = "https://owner-api.teslamotors.com"
AUTH_URL: Final = "https://auth.tesla.com"

# --- OAuth refresh grant (served by the auth host) ----------------------------------------
TOKEN_PATH: Final = "/oauth2/v3/token"
OAUTH_CLIENT_ID: Final = "ownerapi"
OAUTH_SCOPE: Final = "openid email offline_access"

# --- the two API flavours -------------------------------------------------------------------
# "owner": the Owner API with Tesla's own app client id (above). "fleet": Tesla's official
# Fleet API: the same /api/1/energy_sites/{id}/... paths on a regional host, OAuth with the
# user's own developer application (its client id) and per-partner rate limits.
ApiFlavour = Literal["owner", "fleet"]
FLAVOURS: Final[tuple[ApiFlavour, ...]] = ("owner", "fleet")
Region = Literal["na", "eu", "cn"]
REGIONS: Final[tuple[Region, ...]] = ("na", "eu", "cn")
DEFAULT_REGION: Final[Region] = "na"

# Fleet API hosts by region (Tesla's developer documentation, "Base URLs by Region"):
# na = North America and Asia-Pacific without China; eu = Europe, Middle East, Africa.
FLEET_API_URLS: Final[dict[Region, str]] = {
    "na": "https://fleet-api.prd.na.vn.cloud.tesla.com",
    "eu": "https://fleet-api.prd.eu.vn.cloud.tesla.com",
    "cn": "https://fleet-api.prd.cn.vn.cloud.tesla.cn",
}
# The token endpoint of Fleet API applications lives on its own host; China has its own.
FLEET_AUTH_URLS: Final[dict[Region, str]] = {
    "na": "https://fleet-auth.prd.vn.cloud.tesla.com",
    "eu": "https://fleet-auth.prd.vn.cloud.tesla.com",
    "cn": "https://auth.tesla.cn",
}
# Where the user signs in and approves the application (authorization-code flow).
AUTHORIZE_PATH: Final = "/oauth2/v3/authorize"
AUTHORIZE_URLS: Final[dict[Region, str]] = {
    "na": AUTH_URL + AUTHORIZE_PATH,
    "eu": AUTH_URL + AUTHORIZE_PATH,
    "cn": "https://auth.tesla.cn" + AUTHORIZE_PATH,
}
# openid + offline_access bring a refresh token; the energy scopes read and command sites.
FLEET_SCOPE: Final = "openid offline_access energy_device_data energy_cmds"

# Partner rate limits: headers on every Fleet API answer, Retry-After on a 429.
RATE_LIMIT_LIMIT_HEADER: Final = "x-ratelimit-limit"
RATE_LIMIT_REMAINING_HEADER: Final = "x-ratelimit-remaining"
RATE_LIMIT_RESET_HEADER: Final = "x-ratelimit-reset"  # seconds until the window resets

# --- command bodies -------------------------------------------------------------------------
BACKUP_RESERVE_MIN_APP_PERCENT: Final = 0.0
BACKUP_RESERVE_MAX_APP_PERCENT: Final = 100.0
# The spec gives no limit; Tesla's app refuses long names, so we hold both sides to this.
SITE_NAME_MAX_CHARS: Final = 64
# The off-grid EV reserve: the charge kept from vehicles during an outage (app percent).
OFF_GRID_EV_RESERVE_MIN_APP_PERCENT: Final = 0.0
OFF_GRID_EV_RESERVE_MAX_APP_PERCENT: Final = 100.0
# A tariff is passed through unread; these keep it well inside what any peer accepts (the
# simulated cloud refuses bodies past 64 KiB or nested past 32 levels).
TOU_SETTINGS_MAX_BYTES: Final = 32 * 1024
TOU_SETTINGS_MAX_DEPTH: Final = 24

# The body fields of the Fleet API's energy-site commands.
GRID_CHARGING_FIELD: Final = "disallow_charge_from_grid_with_solar_installed"  # inverted!
EXPORT_RULE_FIELD: Final = "customer_preferred_export_rule"  # an ExportRule value
STORM_MODE_FIELD: Final = "enabled"
OFF_GRID_EV_RESERVE_FIELD: Final = "off_grid_vehicle_charging_reserve_percent"
TOU_SETTINGS_FIELD: Final = "tou_settings"
TARIFF_FIELD: Final = "tariff_content_v2"  # the one member of tou_settings we require

# Command families (the path's first part) and the commands, each posted to
# /api/1/{family}/{id}/{command}.
Family = Literal["powerwalls", "energy_sites"]
Command = Literal[
    "backup",
    "site_name",
    "operation",
    "grid_import_export",
    "storm_mode",
    "off_grid_vehicle_charging_reserve",
    "time_of_use_settings",
]
#: spec 000's commands: by battery id (powerwalls) and by energy site id
COMMANDS: Final[tuple[Command, ...]] = ("backup", "site_name", "operation")
#: the Fleet API's energy-site commands: by energy site id only
SITE_COMMANDS: Final[tuple[Command, ...]] = (
    "grid_import_export",
    "storm_mode",
    "off_grid_vehicle_charging_reserve",
    "time_of_use_settings",
)
#: the families each command is served under
COMMAND_FAMILIES: Final[dict[Command, tuple[Family, ...]]] = {
    **dict.fromkeys(COMMANDS, ("powerwalls", "energy_sites")),
    **dict.fromkeys(SITE_COMMANDS, ("energy_sites",)),
}
#: the body field of each one-field command
COMMAND_FIELDS: Final[dict[Command, str]] = {
    "backup": "backup_reserve_percent",
    "site_name": "site_name",
    "operation": "default_real_mode",
    "storm_mode": STORM_MODE_FIELD,
    "off_grid_vehicle_charging_reserve": OFF_GRID_EV_RESERVE_FIELD,
    "time_of_use_settings": TOU_SETTINGS_FIELD,
}
#: grid_import_export takes either or both of these (at least one)
GRID_IMPORT_EXPORT_FIELDS: Final = (GRID_CHARGING_FIELD, EXPORT_RULE_FIELD)

# --- success envelopes seen in practice -----------------------------------------------------
# "code":   {"code": 201, "message": "Updated"}
# "Code":   {"Code": 200, "Message": "..."}      (capitalised keys)
# "result": {"result": true, "reason": ""}
SuccessShape = Literal["code", "Code", "result"]
SUCCESS_SHAPES: Final[tuple[SuccessShape, ...]] = ("code", "Code", "result")

# Which shape the simulated cloud answers per command; the client accepts every shape.
# powerwalls/* and energy_sites/backup|operation answer like the Owner API did for years;
# energy_sites/site_name answers with the capitalised keys seen from the newer endpoints.
DEFAULT_SUCCESS_SHAPES: Final[dict[tuple[Family, Command], SuccessShape]] = {
    ("powerwalls", "backup"): "code",
    ("powerwalls", "site_name"): "code",
    ("powerwalls", "operation"): "code",
    ("energy_sites", "backup"): "code",
    ("energy_sites", "site_name"): "Code",
    ("energy_sites", "operation"): "code",
    **{("energy_sites", command): "code" for command in SITE_COMMANDS},
}


def success_body(shape: SuccessShape, message: str = "Updated") -> dict[str, Any]:
    """The `response` object of a successful command in the given shape."""
    if shape == "code":
        return {"code": 201, "message": message}
    if shape == "Code":
        return {"Code": 200, "Message": message}
    return {"result": True, "reason": ""}


# --- validation (the client before sending, the simulator on receipt) -----------------------


def check_backup_reserve_app_percent(value: object) -> int | float:
    """A reserve on the app scale, 0..100, as sent on the wire (int when it is whole)."""
    allowed = "a number from 0 to 100 (app percent)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError("backup_reserve_percent", allowed, value)
    number = float(value)
    if not math.isfinite(number) or not (
        BACKUP_RESERVE_MIN_APP_PERCENT <= number <= BACKUP_RESERVE_MAX_APP_PERCENT
    ):
        raise InvalidInputError("backup_reserve_percent", allowed, value)
    return int(number) if number.is_integer() else number


def check_operation_mode(value: object) -> OperationMode:
    """One of the operation modes the Owner API accepts: the customer's modes."""
    for mode in CUSTOMER_MODES:
        if value == mode:
            return mode
    # listed in the vocabulary's order, as this message always was
    allowed = ", ".join(m for m in OperationMode if m in CUSTOMER_MODES)
    raise InvalidInputError("default_real_mode", "one of " + allowed, value)


def check_site_name(value: object) -> str:
    """A site name: 1..SITE_NAME_MAX_CHARS characters, not blank, no control characters."""
    allowed = f"text of 1 to {SITE_NAME_MAX_CHARS} characters, not blank, no control characters"
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > SITE_NAME_MAX_CHARS
        or any(ch < " " or ch == "\x7f" for ch in value)
    ):
        raise InvalidInputError("site_name", allowed, value)
    return value


def check_flag(value: object, field: str) -> bool:
    """A JSON boolean (1, "on" and "true" are refused: Tesla takes true or false)."""
    if not isinstance(value, bool):
        raise InvalidInputError(field, "true or false", _summary(value))
    return value


def check_export_rule(value: object, field: str = EXPORT_RULE_FIELD) -> ExportRule:
    """One of the export rules of the vocabulary (pv_only, battery_ok, never)."""
    for rule in ExportRule:
        if value == rule:
            return rule
    raise InvalidInputError(field, "one of " + ", ".join(ExportRule), _summary(value))


def check_off_grid_ev_reserve_app_percent(value: object) -> int | float:
    """The off-grid EV reserve, app percent, as sent on the wire (int when it is whole)."""
    low, high = OFF_GRID_EV_RESERVE_MIN_APP_PERCENT, OFF_GRID_EV_RESERVE_MAX_APP_PERCENT
    allowed = f"a number from {low:g} to {high:g} (app percent)"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(OFF_GRID_EV_RESERVE_FIELD, allowed, _summary(value))
    number = float(value)
    if not math.isfinite(number) or not low <= number <= high:
        raise InvalidInputError(OFF_GRID_EV_RESERVE_FIELD, allowed, value)
    return int(number) if number.is_integer() else number


def check_tou_settings(value: object) -> dict[str, Any]:
    """tou_settings: an object holding a tariff_content_v2 object. The tariff itself is
    Tesla's to judge; only its size and depth are held to our limits."""
    allowed = (
        f"a JSON object with a {TARIFF_FIELD} object, at most {TOU_SETTINGS_MAX_BYTES} bytes "
        f"of JSON nested at most {TOU_SETTINGS_MAX_DEPTH} levels"
    )
    if not isinstance(value, dict) or not isinstance(value.get(TARIFF_FIELD), dict):
        raise InvalidInputError(TOU_SETTINGS_FIELD, allowed, _summary(value))
    if _deeper_than(value, TOU_SETTINGS_MAX_DEPTH):
        raise InvalidInputError(TOU_SETTINGS_FIELD, allowed, "too deeply nested")
    try:
        size = len(msgspec.json.encode(value))
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(TOU_SETTINGS_FIELD, allowed, "not JSON data") from None
    if size > TOU_SETTINGS_MAX_BYTES:
        raise InvalidInputError(TOU_SETTINGS_FIELD, allowed, f"{size} bytes")
    return value


def _summary(value: object) -> object:
    # An error names the refused value; text is cut and a container named by its type, so
    # nothing big is echoed into a message (or into the simulated cloud's error answer).
    if isinstance(value, str):
        return value if len(value) <= 40 else value[:40] + "..."
    return value if isinstance(value, bool | int | float | None) else type(value).__name__


def _deeper_than(value: object, limit: int) -> bool:
    """Whether containers in `value` nest more than `limit` levels (no recursion)."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def check_command_value(command: Command, value: object) -> Any:
    """Validate the value of a one-field command; raise InvalidInputError naming the field."""
    if command == "backup":
        return check_backup_reserve_app_percent(value)
    if command == "operation":
        return check_operation_mode(value)
    if command == "site_name":
        return check_site_name(value)
    if command == "storm_mode":
        return check_flag(value, STORM_MODE_FIELD)
    if command == "off_grid_vehicle_charging_reserve":
        return check_off_grid_ev_reserve_app_percent(value)
    if command == "time_of_use_settings":
        return check_tou_settings(value)
    raise InvalidInputError("command", "one of " + ", ".join(COMMAND_FIELDS), command)


def missing_body_fields(command: Command, body: Mapping[str, object]) -> str | None:
    """What a command's body lacks, said for an error answer; None when nothing is missing."""
    if command == "grid_import_export":
        if any(name in body for name in GRID_IMPORT_EXPORT_FIELDS):
            return None
        return " and/or ".join(GRID_IMPORT_EXPORT_FIELDS) + " is missing from the body"
    field = COMMAND_FIELDS[command]
    return None if field in body else f"{field} is missing from the body"


def check_command_body(command: Command, body: Mapping[str, object]) -> dict[str, Any]:
    """The wire body of a command with every field checked (other keys are left out).

    The client calls it before sending and the simulated cloud on receipt, so both refuse
    the same bodies with an InvalidInputError naming the field.
    """
    if missing_body_fields(command, body) is not None:
        if command == "grid_import_export":
            raise InvalidInputError("/".join(GRID_IMPORT_EXPORT_FIELDS), "either or both, set")
        raise InvalidInputError(COMMAND_FIELDS[command], "a value (it is missing)")
    if command != "grid_import_export":
        field = COMMAND_FIELDS[command]
        return {field: check_command_value(command, body[field])}
    wire: dict[str, Any] = {}
    if GRID_CHARGING_FIELD in body:
        wire[GRID_CHARGING_FIELD] = check_flag(body[GRID_CHARGING_FIELD], GRID_CHARGING_FIELD)
    if EXPORT_RULE_FIELD in body:
        wire[EXPORT_RULE_FIELD] = str(check_export_rule(body[EXPORT_RULE_FIELD]))
    return wire


__all__ = [
    "AUTHORIZE_PATH",
    "AUTHORIZE_URLS",
    "AUTH_URL",
    "BACKUP_RESERVE_MAX_APP_PERCENT",
    "BACKUP_RESERVE_MIN_APP_PERCENT",
    "COMMANDS",
    "COMMAND_FAMILIES",
    "COMMAND_FIELDS",
    "DEFAULT_REGION",
    "DEFAULT_SUCCESS_SHAPES",
    "EXPORT_RULE_FIELD",
    "FLAVOURS",
    "FLEET_API_URLS",
    "FLEET_AUTH_URLS",
    "FLEET_SCOPE",
    "GRID_CHARGING_FIELD",
    "GRID_IMPORT_EXPORT_FIELDS",
    "OAUTH_CLIENT_ID",
    "OAUTH_SCOPE",
    "OFF_GRID_EV_RESERVE_FIELD",
    "OFF_GRID_EV_RESERVE_MAX_APP_PERCENT",
    "OFF_GRID_EV_RESERVE_MIN_APP_PERCENT",
    "OWNER_API_URL",
    "RATE_LIMIT_LIMIT_HEADER",
    "RATE_LIMIT_REMAINING_HEADER",
    "RATE_LIMIT_RESET_HEADER",
    "REGIONS",
    "SITE_COMMANDS",
    "SITE_NAME_MAX_CHARS",
    "STORM_MODE_FIELD",
    "SUCCESS_SHAPES",
    "TARIFF_FIELD",
    "TOKEN_PATH",
    "TOU_SETTINGS_FIELD",
    "TOU_SETTINGS_MAX_BYTES",
    "TOU_SETTINGS_MAX_DEPTH",
    "ApiFlavour",
    "Command",
    "Family",
    "Region",
    "SuccessShape",
    "check_backup_reserve_app_percent",
    "check_command_body",
    "check_command_value",
    "check_export_rule",
    "check_flag",
    "check_off_grid_ev_reserve_app_percent",
    "check_operation_mode",
    "check_site_name",
    "check_tou_settings",
    "missing_body_fields",
    "success_body",
]
