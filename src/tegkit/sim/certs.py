"""The simulator's self-signed TLS certificate: create once, keep in the state dir, fingerprint.

The certificate names the host names a real gateway's certificate carries (teg, powerwall,
powerpack) plus localhost and 127.0.0.1, so clients can verify it with `cafile` and SNI.
It is kept in the state directory so its fingerprint survives restarts (clients pin it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CERT_FILE = "gateway-cert.pem"
KEY_FILE = "gateway-key.pem"
DNS_NAMES = ("teg", "powerwall", "powerpack", "localhost")
IP_ADDRESSES = ("127.0.0.1", "::1")
_VALID_DAYS = 3650


@dataclass(frozen=True, slots=True)
class CertificateFiles:
    """Paths of a PEM certificate and its private key, and the certificate's fingerprint."""

    cert_path: Path
    key_path: Path

    @property
    def fingerprint_sha256(self) -> str:
        return fingerprint_sha256(self.cert_path.read_bytes())


def fingerprint_sha256(cert: bytes | x509.Certificate) -> str:
    """SHA-256 of the DER certificate as lowercase hex without separators (PEM or DER in)."""
    if isinstance(cert, x509.Certificate):
        der = cert.public_bytes(serialization.Encoding.DER)
    elif cert.lstrip().startswith(b"-----BEGIN"):
        der = x509.load_pem_x509_certificate(cert).public_bytes(serialization.Encoding.DER)
    else:
        der = cert
    return hashlib.sha256(der).hexdigest()


def generate_certificate(cert_path: Path, key_path: Path, common_name: str = "teg") -> None:
    """Write a new self-signed certificate and key (EC P-256: quick to make, quick handshakes)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in DNS_NAMES]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in IP_ADDRESSES]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Write to temporary names first so a reader never sees a half-written pair.
    tmp_key = key_path.with_name(key_path.name + ".tmp")
    tmp_cert = cert_path.with_name(cert_path.name + ".tmp")
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_pem)
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key_path)
    os.replace(tmp_cert, cert_path)


def ensure_certificate(state_dir: Path) -> CertificateFiles:
    """The certificate kept in `state_dir`, created on first use."""
    files = CertificateFiles(state_dir / CERT_FILE, state_dir / KEY_FILE)
    if not (files.cert_path.exists() and files.key_path.exists()):
        generate_certificate(files.cert_path, files.key_path)
    return files


def rotate_certificate(state_dir: Path) -> CertificateFiles:
    """Replace the certificate in `state_dir` with a new one (a new fingerprint)."""
    files = CertificateFiles(state_dir / CERT_FILE, state_dir / KEY_FILE)
    generate_certificate(files.cert_path, files.key_path)
    return files


__all__ = [
    "DNS_NAMES",
    "IP_ADDRESSES",
    "CertificateFiles",
    "ensure_certificate",
    "fingerprint_sha256",
    "generate_certificate",
    "rotate_certificate",
]
