"""TLS policies against a real TLS server: verify with SNI, pin, mismatch, insecure, SNI refusal."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

from tegkit.client import (
    Gateway,
    Insecure,
    InsecureTlsWarning,
    PinnedCertificate,
    VerifyCertificate,
    _tls,
    fetch_certificate,
    normalise_fingerprint,
)
from tegkit.errors import (
    CertificateError,
    CertificateMismatchError,
    ConnectionFailedError,
    InvalidInputError,
)

PASSWORD = "hunter2-secret"


async def test_fetch_certificate_then_pin(server: Any, cert: Any, fake: Any) -> None:
    info = await fetch_certificate("127.0.0.1", server.port, sni="teg")
    assert info.sha256_hex == cert.sha256_hex
    assert {"teg", "powerwall", "powerpack", "127.0.0.1"} <= set(info.subject_names)
    assert info.pem.startswith("-----BEGIN CERTIFICATE-----")
    assert info.not_after.tzinfo is not None
    async with Gateway(f"127.0.0.1:{server.port}", tls=info.policy()) as gw:
        status = await gw.status()
    assert status.version
    assert fake.hits["GET /api/status"] == 1


async def test_changed_certificate_is_never_accepted(server: Any, certs: Any, fake: Any) -> None:
    _, other = certs
    async with Gateway(f"127.0.0.1:{server.port}", tls=PinnedCertificate(other.sha256_hex)) as gw:
        with pytest.raises(CertificateMismatchError) as caught:
            await gw.status()
    assert caught.value.expected_sha256 == other.sha256_hex
    assert caught.value.actual_sha256 == certs[0].sha256_hex
    assert caught.value.reason == "changed"
    assert fake.total == 0


async def test_verify_against_cert_file_with_sni_apart_from_address(
    server: Any, cert: Any, fake: Any
) -> None:
    tls = VerifyCertificate(cafile=cert.cert)
    async with Gateway(f"127.0.0.1:{server.port}", tls=tls, sni="powerwall") as gw:
        name = await gw.site_name()
    assert name.raw
    assert fake.hits["GET /api/site_info/site_name"] == 1


async def test_verify_checks_the_name_against_sni(server: Any, cert: Any, certs: Any) -> None:
    # The other certificate is a valid CA file but did not sign the server's certificate.
    tls = VerifyCertificate(cafile=certs[1].cert)
    async with Gateway(f"127.0.0.1:{server.port}", tls=tls, sni="teg") as gw:
        with pytest.raises(CertificateError, match="not trusted") as caught:
            await gw.status()
    assert caught.value.reason == "untrusted"
    assert "given CA file" in str(caught.value)


async def test_default_policy_refuses_self_signed_and_says_how_to_pin(server: Any) -> None:
    async with Gateway(f"127.0.0.1:{server.port}") as gw:
        with pytest.raises(ConnectionFailedError, match="PinnedCertificate") as caught:
            await gw.status()
    assert isinstance(caught.value, CertificateError)
    assert caught.value.reason == "untrusted"


async def test_a_trusted_certificate_for_another_name_is_a_name_mismatch(
    server: Any, cert: Any, fake: Any
) -> None:
    # The server takes "localhost" as SNI, but its certificate does not name it: the cafile is
    # right, the name is wrong, and the error must say so (not "untrusted, give --cafile").
    tls = VerifyCertificate(cafile=cert.cert)
    async with Gateway(f"127.0.0.1:{server.port}", tls=tls, sni="localhost") as gw:
        with pytest.raises(CertificateError) as caught:
            await gw.status()
    assert caught.value.reason == "name_mismatch"
    assert "'localhost'" in str(caught.value) and "not trusted" not in str(caught.value)
    assert isinstance(caught.value, ConnectionFailedError)
    assert fake.total == 0


async def test_an_expired_certificate_says_expired(new_cert: Any, serve: Any) -> None:
    expired = new_cert("expired", valid_days=(-30, -1))
    running, fake = serve(expired)
    tls = VerifyCertificate(cafile=expired.cert)
    async with Gateway(f"127.0.0.1:{running.port}", tls=tls, sni="teg") as gw:
        with pytest.raises(CertificateError, match="expired") as caught:
            await gw.status()
    assert caught.value.reason == "expired"
    assert fake.total == 0
    assert "not trusted" not in str(caught.value)


async def test_unknown_sni_is_refused(server: Any, pinned: Any, fake: Any) -> None:
    async with Gateway(f"127.0.0.1:{server.port}", tls=pinned, sni="not-a-gateway") as gw:
        with pytest.raises(ConnectionFailedError, match="SNI"):
            await gw.status()
    assert fake.total == 0


async def test_insecure_is_opt_in_and_warns_once(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_tls, "_warned_insecure", False)
    with pytest.warns(InsecureTlsWarning):
        first = Gateway(f"127.0.0.1:{server.port}", tls=Insecure())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = Gateway(f"127.0.0.1:{server.port}", tls=Insecure())
    async with first, second:
        assert (await first.sitemaster()).running
        assert (await second.sitemaster()).running


def test_fingerprints_are_normalised() -> None:
    hex_digits = "ab" * 32
    colons = ":".join(["AB"] * 32)
    assert normalise_fingerprint(colons) == hex_digits
    assert PinnedCertificate(colons) == PinnedCertificate(hex_digits)
    # As `teg sim` and openssl print them, label included.
    assert normalise_fingerprint(f"sha256:{hex_digits}") == hex_digits
    assert normalise_fingerprint(f"SHA256 Fingerprint={colons}") == hex_digits
    with pytest.raises(InvalidInputError):
        normalise_fingerprint(f"md5:{hex_digits}")
    with pytest.raises(InvalidInputError, match="sha256_hex"):
        PinnedCertificate("abcd")
    with pytest.raises(InvalidInputError):
        normalise_fingerprint("zz" * 32)


async def test_fetch_certificate_from_closed_port(closed_port: int) -> None:
    with pytest.raises(ConnectionFailedError):
        await fetch_certificate("127.0.0.1", closed_port)


async def test_an_ip_address_the_certificate_does_not_carry_is_a_name_mismatch(
    new_cert: Any, serve: Any
) -> None:
    # A real gateway's certificate names teg, powerwall and powerpack only: dialled by its
    # address without an SNI name, a trusted certificate still fails on the name.
    names_only = new_cert("names-only", ip_addresses=())
    running, _ = serve(names_only)
    tls = VerifyCertificate(cafile=names_only.cert)
    async with Gateway(f"127.0.0.1:{running.port}", tls=tls) as gw:
        with pytest.raises(CertificateError, match="IP address") as caught:
            await gw.status()
    assert caught.value.reason == "name_mismatch"
    async with Gateway(f"127.0.0.1:{running.port}", tls=tls, sni="powerwall") as gw:
        assert (await gw.status()).version
