"""The client for a gateway's local API: async Gateway, blocking SyncGateway, TLS policies.

>>> info = await fetch_certificate("192.168.91.1", sni="powerwall")  # once, then keep it
>>> async with Gateway("192.168.91.1", password="...", sni="powerwall",
...                    tls=PinnedCertificate(info.sha256_hex)) as gw:
...     soe = await gw.state_of_energy()
"""

from __future__ import annotations

from tegkit.client._gateway import MODES, Gateway, PlannedRequest, SitemasterRestart
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
    "normalise_fingerprint",
]
