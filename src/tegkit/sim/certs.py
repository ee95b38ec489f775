"""The simulator's TLS certificates: create once, keep in the state dir, fingerprint.

The gateway port's certificate is self-signed and names what a real gateway's names: teg,
powerwall and powerpack (spec 001), and by default nothing else, so a client that verifies
it with `cafile` must send one of those names (SNI), exactly as against a real gateway; an
IP address or localhost fails the name check there and here alike. `loopback_names=True`
adds localhost, 127.0.0.1 and ::1 for tools that cannot send a server name.

The Owner API port stands in for a public server reached by its address: it serves a
second certificate that names the loopback addresses, issued by the gateway certificate,
so the one `cafile` verifies both ports. Both are kept in the state directory so the
fingerprint survives restarts (clients pin it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tegkit._private_file import make_private_dir, write_private

CERT_FILE = "gateway-cert.pem"
KEY_FILE = "gateway-key.pem"
CLOUD_CERT_FILE = "cloud-cert.pem"
CLOUD_KEY_FILE = "cloud-key.pem"
DNS_NAMES = ("teg", "powerwall", "powerpack")  # a real gateway's (spec 001, "Step 1: DNS")
LOOPBACK_DNS_NAMES = ("localhost",)
IP_ADDRESSES = ("127.0.0.1", "::1")  # the loopback addresses, named only when asked
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


def subject_alt_names(dns_names: tuple[str, ...], ip_addresses: tuple[str, ...]) -> set[str]:
    """Names as `certificate_names` reports them: DNS names and IP addresses as text."""
    return set(dns_names) | {str(ipaddress.ip_address(a)) for a in ip_addresses}


def certificate_names(cert_path: Path) -> set[str]:
    """The DNS names and IP addresses a PEM certificate's subjectAltName carries."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = set(san.get_values_for_type(x509.DNSName))
    return names | {str(a) for a in san.get_values_for_type(x509.IPAddress)}


def _names(loopback_names: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    if loopback_names:
        return DNS_NAMES + LOOPBACK_DNS_NAMES, IP_ADDRESSES
    return DNS_NAMES, ()


def _write_pair(
    cert: x509.Certificate, key: ec.EllipticCurvePrivateKey, files: CertificateFiles
) -> None:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    # Temporary names first so a reader never sees a half-written file; the key is 0600 in
    # folders made 0700, like every secret tegkit keeps.
    make_private_dir(files.cert_path.parent)
    tmp_cert = files.cert_path.with_name(files.cert_path.name + ".tmp")
    tmp_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(files.key_path, key_pem)
    os.replace(tmp_cert, files.cert_path)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    dns_names: tuple[str, ...],
    ip_addresses: tuple[str, ...],
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def generate_certificate(
    cert_path: Path, key_path: Path, common_name: str = "teg", *, loopback_names: bool = False
) -> None:
    """Write a new self-signed certificate and key (EC P-256: quick to make, quick handshakes)
    naming teg, powerwall and powerpack, and with `loopback_names` localhost, 127.0.0.1, ::1.
    It may issue other certificates (the Owner API port's)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    dns_names, ip_addresses = _names(loopback_names)
    cert = (
        _builder(name, name, key.public_key(), dns_names, ip_addresses)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    _write_pair(cert, key, CertificateFiles(cert_path, key_path))


def issue_loopback_certificate(issuer: CertificateFiles, files: CertificateFiles) -> None:
    """Write a certificate for localhost, 127.0.0.1 and ::1 issued by `issuer`'s key, so a
    client trusting the issuer's certificate verifies a server reached by a loopback address."""
    issuer_cert = x509.load_pem_x509_certificate(issuer.cert_path.read_bytes())
    issuer_key = serialization.load_pem_private_key(issuer.key_path.read_bytes(), None)
    if not isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{issuer.key_path}: an EC private key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    issuer_public = issuer_key.public_key()
    cert = (
        _builder(subject, issuer_cert.subject, key.public_key(), LOOPBACK_DNS_NAMES, IP_ADDRESSES)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False
        )
        .sign(issuer_key, hashes.SHA256())
    )
    _write_pair(cert, key, files)


def _issued_by(files: CertificateFiles, issuer: CertificateFiles) -> bool:
    cert = x509.load_pem_x509_certificate(files.cert_path.read_bytes())
    issuer_cert = x509.load_pem_x509_certificate(issuer.cert_path.read_bytes())
    try:
        cert.verify_directly_issued_by(issuer_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def ensure_certificate(state_dir: Path, *, loopback_names: bool = False) -> CertificateFiles:
    """The gateway certificate kept in `state_dir`, created on first use, and again when it
    names other hosts than asked for (with or without the loopback names)."""
    files = CertificateFiles(state_dir / CERT_FILE, state_dir / KEY_FILE)
    wanted = subject_alt_names(*_names(loopback_names))
    if not (
        files.cert_path.exists()
        and files.key_path.exists()
        and certificate_names(files.cert_path) == wanted
    ):
        generate_certificate(files.cert_path, files.key_path, loopback_names=loopback_names)
    return files


def ensure_cloud_certificate(state_dir: Path, issuer: CertificateFiles) -> CertificateFiles:
    """The Owner API port's loopback certificate in `state_dir`, issued by `issuer`."""
    files = CertificateFiles(state_dir / CLOUD_CERT_FILE, state_dir / CLOUD_KEY_FILE)
    if not (files.cert_path.exists() and files.key_path.exists() and _issued_by(files, issuer)):
        issue_loopback_certificate(issuer, files)
    return files


def rotate_certificate(state_dir: Path, *, loopback_names: bool = False) -> CertificateFiles:
    """Replace the certificate in `state_dir` with a new one (a new fingerprint)."""
    files = CertificateFiles(state_dir / CERT_FILE, state_dir / KEY_FILE)
    generate_certificate(files.cert_path, files.key_path, loopback_names=loopback_names)
    return files


__all__ = [
    "DNS_NAMES",
    "IP_ADDRESSES",
    "LOOPBACK_DNS_NAMES",
    "CertificateFiles",
    "certificate_names",
    "ensure_certificate",
    "ensure_cloud_certificate",
    "fingerprint_sha256",
    "generate_certificate",
    "issue_loopback_certificate",
    "rotate_certificate",
]
