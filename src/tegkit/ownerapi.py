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
from typing import Any, Final, Literal

from tegkit.errors import InvalidInputError
from tegkit.models.vocabulary import CUSTOMER_MODES, OperationMode

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

# Command families and their JSON body field.
Family = Literal["powerwalls", "energy_sites"]
Command = Literal["backup", "site_name", "operation"]
COMMANDS: Final[tuple[Command, ...]] = ("backup", "site_name", "operation")
COMMAND_FIELDS: Final[dict[Command, str]] = {
    "backup": "backup_reserve_percent",
    "site_name": "site_name",
    "operation": "default_real_mode",
}

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


def check_command_value(command: Command, value: object) -> Any:
    """Validate the body value of one command; raise InvalidInputError naming the field."""
    if command == "backup":
        return check_backup_reserve_app_percent(value)
    if command == "operation":
        return check_operation_mode(value)
    return check_site_name(value)


__all__ = [
    "AUTHORIZE_PATH",
    "AUTHORIZE_URLS",
    "AUTH_URL",
    "BACKUP_RESERVE_MAX_APP_PERCENT",
    "BACKUP_RESERVE_MIN_APP_PERCENT",
    "COMMANDS",
    "COMMAND_FIELDS",
    "DEFAULT_REGION",
    "DEFAULT_SUCCESS_SHAPES",
    "FLAVOURS",
    "FLEET_API_URLS",
    "FLEET_AUTH_URLS",
    "FLEET_SCOPE",
    "OAUTH_CLIENT_ID",
    "OAUTH_SCOPE",
    "OWNER_API_URL",
    "RATE_LIMIT_LIMIT_HEADER",
    "RATE_LIMIT_REMAINING_HEADER",
    "RATE_LIMIT_RESET_HEADER",
    "REGIONS",
    "SITE_NAME_MAX_CHARS",
    "SUCCESS_SHAPES",
    "TOKEN_PATH",
    "ApiFlavour",
    "Command",
    "Family",
    "Region",
    "SuccessShape",
    "check_backup_reserve_app_percent",
    "check_command_value",
    "check_operation_mode",
    "check_site_name",
    "success_body",
]
