"""tegkit: a local-first toolkit for the Tesla Energy Gateway (the gateway of a Powerwall 2).

>>> import tegkit
>>> async with tegkit.Gateway("https://powerwall", password="...",
...                           tls=tegkit.PinnedCertificate("ab12...")) as gw:
...     flow = await gw.meters_aggregates()
...     print(flow.site.instant_power_w, (await gw.state_of_energy()).app_percent)

The public surface is re-exported here; the parts live in subpackages: `catalog` (every
endpoint), `models` (typed responses), `client` (async and blocking clients), `cloud`
(Owner API), `sim` (the simulated gateway), `monitor` (recorder, metrics, dashboard).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from tegkit.errors import (
    ApiError,
    AuthenticationError,
    CertificateError,
    CertificateMismatchError,
    CloudTokenMissingError,
    ConnectionFailedError,
    EndpointNotSupportedError,
    GatewayBusyError,
    GatewayError,
    GatewayTimeoutError,
    InvalidInputError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
    RequestBudgetExceededError,
    RequestError,
    ResponseTooLargeError,
    SystemStoppedError,
)
from tegkit.percent import Scale, app_to_raw, raw_to_app

if TYPE_CHECKING:
    from tegkit.client import (
        CertificateInfo,
        Gateway,
        Insecure,
        PinnedCertificate,
        SyncGateway,
        TlsPolicy,
        VerifyCertificate,
        fetch_certificate,
    )
    from tegkit.models import parse_response

# The client and the models load on first use: `import tegkit` stays cheap for whoever needs
# only a part (the pytest plugin, which every pytest run where tegkit is installed imports).
_LAZY = {
    **dict.fromkeys(
        (
            "CertificateInfo",
            "Gateway",
            "Insecure",
            "PinnedCertificate",
            "SyncGateway",
            "TlsPolicy",
            "VerifyCertificate",
            "fetch_certificate",
        ),
        "tegkit.client",
    ),
    "parse_response": "tegkit.models",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tegkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


__all__ = [
    "ApiError",
    "AuthenticationError",
    "CertificateError",
    "CertificateInfo",
    "CertificateMismatchError",
    "CloudTokenMissingError",
    "ConnectionFailedError",
    "EndpointNotSupportedError",
    "Gateway",
    "GatewayBusyError",
    "GatewayError",
    "GatewayTimeoutError",
    "Insecure",
    "InvalidInputError",
    "ParseError",
    "PermissionDeniedError",
    "PinnedCertificate",
    "RateLimitedError",
    "RequestBudgetExceededError",
    "RequestError",
    "ResponseTooLargeError",
    "Scale",
    "SyncGateway",
    "SystemStoppedError",
    "TlsPolicy",
    "VerifyCertificate",
    "app_to_raw",
    "fetch_certificate",
    "parse_response",
    "raw_to_app",
]
