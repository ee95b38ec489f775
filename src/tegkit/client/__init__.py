"""The client for a gateway's local API: async Gateway, blocking SyncGateway, TLS policies.

For programs built on the client (the CLI, the monitor): `gateway_url(host)` is the https://
root URL the client uses for a host, and `has_kept_session(file, host)` says whether a
login kept in that file serves the gateway.

>>> info = await fetch_certificate("192.168.91.1", sni="powerwall")  # once, then keep it
>>> async with Gateway("192.168.91.1", password="...", sni="powerwall",
...                    tls=PinnedCertificate(info.sha256_hex)) as gw:
...     soe = await gw.state_of_energy()
"""

from __future__ import annotations

from tegkit.client._auth import has_kept_session
from tegkit.client._gateway import (
    MODES,
    Gateway,
    PlannedRequest,
    SitemasterRestart,
    firmware_family,
)
from tegkit.client._sync import SyncGateway
from tegkit.client._tls import (
    CertificateInfo,
    Insecure,
    InsecureTlsWarning,
    PinnedCertificate,
    TlsPolicy,
    VerifyCertificate,
    fetch_certificate,
    normalise_fingerprint,
)
from tegkit.client._transport import Reply
from tegkit.client._transport import base_url as gateway_url

__all__ = [
    "MODES",
    "CertificateInfo",
    "Gateway",
    "Insecure",
    "InsecureTlsWarning",
    "PinnedCertificate",
    "PlannedRequest",
    "Reply",
    "SitemasterRestart",
    "SyncGateway",
    "TlsPolicy",
    "VerifyCertificate",
    "fetch_certificate",
    "firmware_family",
    "gateway_url",
    "has_kept_session",
    "normalise_fingerprint",
]
