"""Why a certificate was refused is one vocabulary (errors.CertificateReason), used everywhere."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tegkit
from tegkit import errors
from tegkit.cli import exit_codes
from tegkit.client import VerifyCertificate
from tegkit.client._tls import certificate_failure, describe_verify_failure
from tegkit.errors import CERTIFICATE_HEADLINES, CertificateReason

PACKAGE = Path(tegkit.__file__).parent


def test_the_reason_values_are_spelled_only_in_errors() -> None:
    values = {reason.value for reason in CertificateReason}
    spelled = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in values:
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert spelled == [], "use errors.CertificateReason:\n" + "\n".join(spelled)


def test_every_reason_has_one_headline() -> None:
    assert tuple(CertificateReason) == errors.CERTIFICATE_REASONS
    assert set(CERTIFICATE_HEADLINES) == set(CertificateReason)
    # No headline is part of another, so a message names one cause only.
    for reason, headline in CERTIFICATE_HEADLINES.items():
        others = [h for r, h in CERTIFICATE_HEADLINES.items() if r is not reason]
        assert not any(headline in other or other in headline for other in others), headline


def test_a_certificate_error_carries_a_reason_from_the_vocabulary() -> None:
    assert errors.CertificateError("x", "expired").reason is CertificateReason.EXPIRED
    assert errors.CertificateMismatchError("aa", "bb").reason is CertificateReason.CHANGED
    with pytest.raises(ValueError):
        errors.CertificateError("x", "stale")  # not a reason anyone can act on


@pytest.mark.parametrize(
    "reason",
    [CertificateReason.UNTRUSTED, CertificateReason.NAME_MISMATCH, CertificateReason.EXPIRED],
)
def test_the_client_and_the_cli_open_with_the_reasons_headline(reason: CertificateReason) -> None:
    headline = CERTIFICATE_HEADLINES[reason]
    for policy in (VerifyCertificate(), VerifyCertificate(Path("gateway.pem"))):
        assert describe_verify_failure(policy, reason, "teg").startswith(headline + ":")
    error = errors.CertificateError("refused", reason, "OpenSSL's words")
    context = exit_codes.Context(cafile="gateway.pem", tls_name="teg")
    assert exit_codes.certificate_reason(error) is reason
    assert exit_codes.message(error, context).startswith(headline + ":")
    assert exit_codes.exit_code(error) == exit_codes.exit_code(
        errors.CertificateMismatchError("aa" * 32, "bb" * 32)
    )


def test_a_changed_pin_opens_with_its_headline_in_the_cli() -> None:
    error = errors.CertificateMismatchError("aa" * 32, "bb" * 32)
    assert exit_codes.certificate_reason(error) is CertificateReason.CHANGED
    assert exit_codes.message(error).startswith(CERTIFICATE_HEADLINES[CertificateReason.CHANGED])


def test_openssl_verify_codes_map_to_reasons() -> None:
    class Failure(Exception):
        def __init__(self, code: int) -> None:
            self.verify_code, self.verify_message = code, f"code {code}"

    assert certificate_failure(Failure(62))[0] is CertificateReason.NAME_MISMATCH
    assert certificate_failure(Failure(10))[0] is CertificateReason.EXPIRED
    assert certificate_failure(Failure(18))[0] is CertificateReason.UNTRUSTED
