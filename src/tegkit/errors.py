"""The exception tree: one root, branches that mirror how callers recover."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from enum import StrEnum
from typing import Final


class GatewayError(Exception):
    """Root of every error tegkit raises on purpose."""


class InvalidInputError(GatewayError, ValueError):
    """A value was rejected before anything was sent; names the field and what is allowed."""

    def __init__(self, field: str, allowed: str, value: object = None) -> None:
        self.field = field
        self.allowed = allowed
        self.value = value
        super().__init__(f"{field}: {value!r} is not allowed; expected {allowed}")


class ParseError(GatewayError):
    """A response body did not match its model; names the endpoint and the field."""

    def __init__(self, endpoint: str, detail: str) -> None:
        self.endpoint = endpoint
        self.detail = detail
        super().__init__(f"{endpoint}: unexpected response: {detail}")


class ResponseTooLargeError(ParseError):
    """An answer was larger than the client's limit; reading stopped at the limit.

    `limit_bytes` is the limit (Gateway(max_response_bytes=...)); `size_bytes` is the size
    the gateway announced in Content-Length, or None when it streamed past the limit.
    """

    def __init__(self, endpoint: str, limit_bytes: int, size_bytes: int | None = None) -> None:
        self.limit_bytes = limit_bytes
        self.size_bytes = size_bytes
        told = "" if size_bytes is None else f" (Content-Length {size_bytes})"
        super().__init__(
            endpoint,
            f"the body is larger than the limit of {limit_bytes} bytes{told}; "
            "raise max_response_bytes if this answer is genuine",
        )


# --- local conditions: tegkit itself declined; nothing was sent ----------------------------


class RequestBudgetExceededError(GatewayError):
    """The caller's own request budget for the gateway is spent: nothing was sent.

    Not an answer of the gateway (that is `RateLimitedError`); `wait_s` is how long until
    the budget has room again.
    """

    def __init__(self, wait_s: float, what: str = "the request") -> None:
        self.wait_s = wait_s
        super().__init__(
            f"{what} was not sent: the request budget for the gateway is spent; "
            f"room again in {wait_s:.0f} s"
        )


class CloudTokenMissingError(GatewayError):
    """No Owner API token is kept where one was looked for: nothing was sent to the cloud.

    Not an answer of the cloud (a refused token is `AuthenticationError`); `token_file` is
    where the token was looked for, `advice` how to get one.
    """

    def __init__(self, token_file: str, advice: str = "import tokens first") -> None:
        self.token_file = token_file
        self.advice = advice
        super().__init__(f"no Owner API token in {token_file}; nothing was sent")


# --- request errors: the request did not get an HTTP answer -------------------------------


class RequestError(GatewayError):
    """The request did not complete (no HTTP status to act on)."""


class ConnectionFailedError(RequestError):
    """The gateway could not be reached (refused, reset, DNS, TLS handshake)."""


class GatewayTimeoutError(RequestError, asyncio.TimeoutError):
    """The gateway did not answer in time. Also an asyncio.TimeoutError for existing handlers."""


class CertificateReason(StrEnum):
    """Why a certificate was refused: `CertificateError.reason`, or CHANGED for a pin."""

    UNTRUSTED = "untrusted"  # it does not chain to the given CA file or the system CAs
    NAME_MISMATCH = "name_mismatch"  # trusted, but does not name the host or the SNI name sent
    EXPIRED = "expired"  # trusted, but outside its validity period (expired or not yet valid)
    CHANGED = "changed"  # not the pinned certificate: CertificateMismatchError


CERTIFICATE_REASONS: Final = tuple(CertificateReason)

#: The phrase every message about a refused certificate opens with (the client's errors and
#: the CLI's advice), so a reader and a test can tell the causes apart by it.
CERTIFICATE_HEADLINES: Final[Mapping[CertificateReason, str]] = {
    CertificateReason.UNTRUSTED: "certificate not trusted",
    CertificateReason.NAME_MISMATCH: "certificate name mismatch",
    CertificateReason.EXPIRED: "certificate expired or not yet valid",
    CertificateReason.CHANGED: "certificate changed",
}


class CertificateError(ConnectionFailedError):
    """The TLS handshake failed on the certificate check; `reason` says which check.

    UNTRUSTED (a self-signed gateway with no cafile, or a cafile of another certificate),
    NAME_MISMATCH or EXPIRED; a pinned certificate that changed is `CertificateMismatchError`
    (reason CHANGED). `detail` is OpenSSL's own words for the failure.
    """

    def __init__(self, message: str, reason: str, detail: str = "") -> None:
        self.reason = CertificateReason(reason)
        self.detail = detail
        super().__init__(message)


class CertificateMismatchError(RequestError):
    """The gateway presented a certificate other than the pinned or trusted one."""

    reason = CertificateReason.CHANGED

    def __init__(self, expected_sha256: str, actual_sha256: str) -> None:
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        super().__init__(
            f"certificate fingerprint changed: pinned {expected_sha256}, got {actual_sha256}; "
            "if the gateway was replaced or re-keyed, fetch and pin the new certificate"
        )


# --- status errors: the gateway answered with an error status ------------------------------


class ApiError(GatewayError):
    """The gateway answered with an error status; carries its error body fields."""

    def __init__(
        self,
        status: int,
        method: str,
        path: str,
        code: int | None = None,
        error: str | None = None,
        message: str | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.path = path
        self.code = code
        self.error = error
        self.message = message
        detail = "; ".join(part for part in (error, message) if part) or "no details"
        super().__init__(f"{method} {path}: HTTP {status}: {detail}")


class AuthenticationError(ApiError):
    """401 or bad credentials: log in again with the right password."""


class PermissionDeniedError(ApiError):
    """403: this account's role may not do that (e.g. customer POST /api/operation)."""


class EndpointNotSupportedError(ApiError):
    """404: this firmware does not have the endpoint (remembered, not retried every poll)."""


class RateLimitedError(ApiError):
    """429: the gateway asks us to slow down; retry_after_s says for how long, if known."""

    def __init__(self, *args: object, retry_after_s: float | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.retry_after_s = retry_after_s


class SystemStoppedError(ApiError):
    """502 with an empty body from a live endpoint: the sitemaster is stopped."""


class GatewayBusyError(ApiError):
    """503: the gateway is busy (starting up, updating); try again later."""


__all__ = [
    "ApiError",
    "AuthenticationError",
    "CertificateError",
    "CertificateMismatchError",
    "CloudTokenMissingError",
    "ConnectionFailedError",
    "EndpointNotSupportedError",
    "GatewayBusyError",
    "GatewayError",
    "GatewayTimeoutError",
    "InvalidInputError",
    "ParseError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestBudgetExceededError",
    "RequestError",
    "ResponseTooLargeError",
    "SystemStoppedError",
]
