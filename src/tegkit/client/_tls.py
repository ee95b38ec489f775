"""TLS policies for the gateway's self-signed certificate: verify, pin, or (opt-in) trust all.

The gateway presents a self-signed certificate named teg / powerwall / powerpack. There are
three explicit ways to deal with it:

- `VerifyCertificate(cafile)`: verify the chain against a CA or certificate file (for example
  the gateway's own certificate, exported once) and check the name against the SNI name. With
  no file the system CAs are used; that is the default, and it fails on a stock gateway with
  a message that says how to pin.
- `PinnedCertificate(sha256_hex)`: trust on first use. `fetch_certificate()` reads the
  certificate once; afterwards every handshake must present that exact fingerprint, and a
  changed certificate raises `CertificateMismatchError`.
- `Insecure()`: accept any certificate. Opt-in only; warns once.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import ssl
import string
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from cryptography import x509

from tegkit.errors import (
    CERTIFICATE_HEADLINES,
    CertificateReason,
    ConnectionFailedError,
    GatewayTimeoutError,
    InvalidInputError,
)

_LOG = logging.getLogger("tegkit.client")
_HEX = set(string.hexdigits)


class InsecureTlsWarning(UserWarning):
    """Certificate checks were switched off: the gateway is not authenticated."""


# Labels people copy along with a fingerprint: `teg sim` prints "sha256:..", openssl
# "sha256 Fingerprint=..".
_FINGERPRINT_LABELS = ("sha256 fingerprint=", "sha256:", "sha-256:")


def normalise_fingerprint(fingerprint: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits.

    Accepts "AA:BB:..", "aabb..", and either with a "sha256:" or openssl's
    "sha256 Fingerprint=" label in front.
    """
    text = fingerprint.strip()
    for label in _FINGERPRINT_LABELS:
        if text.lower().startswith(label):
            text = text[len(label) :]
            break
    digits = "".join(ch for ch in text if ch not in ": -")
    if len(digits) != 64 or not set(digits) <= _HEX:
        raise InvalidInputError(
            "sha256_hex", "a SHA-256 fingerprint: 64 hex digits, colons allowed", fingerprint
        )
    return digits.lower()


@dataclass(frozen=True, slots=True)
class VerifyCertificate:
    """Verify the certificate chain (system CAs, or `cafile`) and the name against the SNI."""

    cafile: Path | str | None = None


@dataclass(frozen=True, slots=True)
class PinnedCertificate:
    """Accept exactly the certificate with this SHA-256 fingerprint (trust on first use)."""

    sha256_hex: str
    _digest: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        hex_digits = normalise_fingerprint(self.sha256_hex)
        object.__setattr__(self, "sha256_hex", hex_digits)
        object.__setattr__(self, "_digest", bytes.fromhex(hex_digits))


@dataclass(frozen=True, slots=True)
class Insecure:
    """Accept any certificate. The connection is encrypted but the gateway is not verified."""


TlsPolicy = VerifyCertificate | PinnedCertificate | Insecure

_warned_insecure = False


def _warn_insecure_once() -> None:
    global _warned_insecure
    if _warned_insecure:
        return
    _warned_insecure = True
    text = "TLS certificate checks are off (Insecure policy); pin the certificate instead"
    _LOG.warning(text)
    warnings.warn(text, InsecureTlsWarning, stacklevel=4)


def ssl_argument(policy: TlsPolicy) -> ssl.SSLContext | aiohttp.Fingerprint | bool:
    """What aiohttp's `ssl=` takes for this policy."""
    if isinstance(policy, PinnedCertificate):
        return aiohttp.Fingerprint(policy._digest)
    if isinstance(policy, Insecure):
        _warn_insecure_once()
        return False
    cafile = None if policy.cafile is None else str(policy.cafile)
    context = ssl.create_default_context(cafile=cafile)
    if cafile is not None:
        # A self-signed gateway certificate is its own anchor; accept it without a root above.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    return context


# OpenSSL's verify codes (X509_V_ERR_*) for the checks that are not about trust.
_NAME_CODES = frozenset({62, 63, 64})  # host name, email, IP address mismatch
_TIME_CODES = frozenset({9, 10})  # not yet valid, expired


def certificate_failure(error: BaseException) -> tuple[CertificateReason, str]:
    """Why a certificate check failed: (UNTRUSTED, NAME_MISMATCH or EXPIRED, detail).

    `error` is the ssl error of the handshake; its verify code tells a name or validity
    failure (the chain was trusted) from a chain that is not trusted at all.
    """
    code = getattr(error, "verify_code", None)
    detail = str(getattr(error, "verify_message", "") or error)
    if code in _NAME_CODES:
        return CertificateReason.NAME_MISMATCH, detail
    if code in _TIME_CODES:
        return CertificateReason.EXPIRED, detail
    if code is None and isinstance(error, ssl.CertificateError) and "match" in detail:
        # the pre-OpenSSL-check form of a name mismatch
        return CertificateReason.NAME_MISMATCH, detail
    return CertificateReason.UNTRUSTED, detail


def describe_verify_failure(
    policy: TlsPolicy,
    reason: CertificateReason = CertificateReason.UNTRUSTED,
    name: str | None = None,
) -> str:
    """The hint attached to a failed certificate check, by the reason it failed; it opens
    with the reason's headline (errors.CERTIFICATE_HEADLINES), the advice is the API's."""
    headline = CERTIFICATE_HEADLINES[reason]
    if reason == CertificateReason.NAME_MISMATCH:
        sent = "an IP address (no SNI)" if name and is_ip(name) else repr(name)
        return (
            f"{headline}: the certificate is trusted but does not name {sent}; "
            "connect with sni= set to a name it carries (the gateway's are teg, powerwall "
            "and powerpack)"
        )
    if reason == CertificateReason.EXPIRED:
        return (
            f"{headline}: the certificate is trusted but outside its validity period; check "
            "this computer's clock, or fetch and pin the gateway's current certificate"
        )
    if isinstance(policy, VerifyCertificate) and policy.cafile is None:
        return (
            f"{headline}: the gateway's certificate is self-signed and not "
            "trusted by the system CAs; pin it (tegkit.client.fetch_certificate, then "
            "PinnedCertificate(sha256_hex)) or pass its file as VerifyCertificate(cafile)"
        )
    return (
        f"{headline}: the gateway's certificate was not issued by the given CA "
        "file; give the gateway's own certificate as cafile, or pin it"
    )


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """A certificate as fetched from the gateway, for pinning or saving as a CA file."""

    pem: str
    sha256_hex: str
    subject_names: tuple[str, ...]
    not_after: dt.datetime

    def policy(self) -> PinnedCertificate:
        """The pinning policy for exactly this certificate."""
        return PinnedCertificate(self.sha256_hex)


def certificate_info(der: bytes) -> CertificateInfo:
    """Fingerprint, names and expiry of a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = [
        attr.value if isinstance(attr.value, str) else attr.value.decode()
        for attr in cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    ]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        names += san.get_values_for_type(x509.DNSName)
        names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    return CertificateInfo(
        pem=ssl.DER_cert_to_PEM_cert(der),
        sha256_hex=hashlib.sha256(der).hexdigest(),
        subject_names=tuple(dict.fromkeys(names)),
        not_after=cert.not_valid_after_utc,
    )


def is_ip(host: str) -> bool:
    """True for an IPv4 or IPv6 address (brackets allowed), False for a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


async def fetch_certificate(
    host: str, port: int = 443, sni: str | None = None, timeout_s: float = 10.0
) -> CertificateInfo:
    """Read the gateway's certificate without trusting it (the first step of pinning).

    Check the fingerprint out of band where you can (the gateway's label, the app) before
    pinning it.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    server_hostname = sni if sni is not None else (None if is_ip(host) else host)
    # Without SNI asyncio still wants server_hostname="" for an SSL connection by IP.
    try:
        _reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                host.strip("[]"), port, ssl=context, server_hostname=server_hostname or ""
            ),
            timeout_s,
        )
    except TimeoutError as exc:
        raise GatewayTimeoutError(f"{host}:{port}: no TLS handshake in {timeout_s} s") from exc
    except (OSError, ssl.SSLError) as exc:
        raise ConnectionFailedError(
            f"{host}:{port}: could not fetch the certificate: {exc}"
        ) from exc
    try:
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True)
    finally:
        writer.close()
        # The certificate is already read; a rude close changes nothing.
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
    if not der:
        raise ConnectionFailedError(f"{host}:{port} presented no certificate")
    return certificate_info(der)


__all__ = [
    "CertificateInfo",
    "Insecure",
    "InsecureTlsWarning",
    "PinnedCertificate",
    "TlsPolicy",
    "VerifyCertificate",
    "certificate_failure",
    "certificate_info",
    "describe_verify_failure",
    "fetch_certificate",
    "is_ip",
    "normalise_fingerprint",
]
