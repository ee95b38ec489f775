"""Exit codes of `teg` and the message that tells the user what happened and what to do next.

| code | meaning |
|---|---|
| 0 | success |
| 1 | any other gateway error (an unexpected status, an unreadable answer, a busy gateway) |
| 2 | usage error: a bad option or argument (click's own code) |
| 3 | authentication failed: wrong or missing password, expired session or token |
| 4 | the gateway is unreachable or did not answer in time |
| 5 | rate limited: the gateway or the Owner API asks us to slow down |
| 6 | the system is stopped (sitemaster not running): live data is unavailable |
| 7 | certificate refused: not trusted, not for this name, expired, or not the pinned one |
| 8 | rejected input: a value tegkit refused before sending, or a 400 from the gateway |
| 9 | permission denied: this account's role may not do that |
| 10 | the firmware does not have this endpoint |

Scripts can rely on these numbers; `teg --help` shows the same table.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

import aiohttp

from tegkit import errors

OK: Final = 0
GATEWAY_ERROR: Final = 1
USAGE: Final = 2
AUTHENTICATION: Final = 3
UNREACHABLE: Final = 4
RATE_LIMITED: Final = 5
SYSTEM_STOPPED: Final = 6
CERTIFICATE_MISMATCH: Final = 7
REJECTED_INPUT: Final = 8
PERMISSION_DENIED: Final = 9
NOT_SUPPORTED: Final = 10

# First match wins: subclasses sit before their bases (CertificateMismatchError is a
# RequestError, every status error is an ApiError).
_BY_CLASS: Final[tuple[tuple[type[BaseException], int], ...]] = (
    (errors.CertificateMismatchError, CERTIFICATE_MISMATCH),
    (errors.CertificateError, CERTIFICATE_MISMATCH),
    (errors.AuthenticationError, AUTHENTICATION),
    (errors.CloudTokenMissingError, AUTHENTICATION),
    (errors.PermissionDeniedError, PERMISSION_DENIED),
    (errors.RateLimitedError, RATE_LIMITED),
    (errors.RequestBudgetExceededError, RATE_LIMITED),
    (errors.SystemStoppedError, SYSTEM_STOPPED),
    (errors.EndpointNotSupportedError, NOT_SUPPORTED),
    (errors.InvalidInputError, REJECTED_INPUT),
    (errors.RequestError, UNREACHABLE),
)

TABLE: Final = (
    (OK, "success"),
    (GATEWAY_ERROR, "any other gateway error"),
    (USAGE, "usage error (bad option or argument)"),
    (AUTHENTICATION, "authentication failed"),
    (UNREACHABLE, "gateway unreachable or timed out"),
    (RATE_LIMITED, "rate limited"),
    (SYSTEM_STOPPED, "system stopped (sitemaster not running)"),
    (CERTIFICATE_MISMATCH, "certificate refused (untrusted, wrong name, expired, changed)"),
    (REJECTED_INPUT, "rejected input (checked locally or HTTP 400)"),
    (PERMISSION_DENIED, "permission denied for this account"),
    (NOT_SUPPORTED, "endpoint not supported by this firmware"),
)


def untrusted_certificate(exc: BaseException) -> bool:
    """True when the handshake failed on the certificate check (not a changed pin)."""
    return isinstance(exc, errors.CertificateError) or (
        isinstance(exc, errors.ConnectionFailedError)
        and isinstance(exc.__cause__, aiohttp.ClientConnectorCertificateError)
    )


def certificate_reason(exc: BaseException) -> errors.CertificateReason | None:
    """Why a certificate was refused (CHANGED: a pinned fingerprint that no longer
    matches); None when `exc` is about something else."""
    if isinstance(exc, errors.CertificateMismatchError | errors.CertificateError):
        return exc.reason
    return errors.CertificateReason.UNTRUSTED if untrusted_certificate(exc) else None


CONTEXT_KEY: Final = "teg.error_context"  # ctx.meta: a Context set by a command group


@dataclass(frozen=True, slots=True)
class Context:
    """What the failed command was talking to, so the advice fits it.

    `service` is "gateway" or "cloud" (the Owner API); `password_given` tells a refused
    password from a missing one. `cafile` is the CA file the certificate was checked
    against, `tls_name` the name it had to carry (--sni, else the host).
    """

    service: str = "gateway"
    where: str | None = None
    password_given: bool = True
    cafile: str | None = None
    tls_name: str | None = None


def exit_code(exc: BaseException) -> int:
    """The exit code for an error tegkit raised on purpose (1 for any other gateway error)."""
    if untrusted_certificate(exc):
        return CERTIFICATE_MISMATCH
    for cls, code in _BY_CLASS:
        if isinstance(exc, cls):
            return code
    if isinstance(exc, errors.ApiError) and exc.status == 400:
        return REJECTED_INPUT
    return GATEWAY_ERROR


def message(exc: BaseException, context: Context | None = None) -> str:
    """One or two sentences: what happened, then what to do next. Never contains a secret."""
    context = context or Context()
    if context.service == "cloud":
        cloud = _cloud_message(exc, context.where)
        if cloud is not None:
            return cloud
    where = f" at {context.where}" if context.where else ""
    refused = _certificate_message(exc, context, where)
    if refused is not None:
        return refused
    if isinstance(exc, errors.AuthenticationError) and not context.password_given:
        return (
            f"the gateway{where} wants a login and no password was given, or the kept session "
            f"ended ({_detail(exc)}). Give the password with --password or TEG_PASSWORD, or "
            "run `teg login` to keep a session."
        )
    if isinstance(exc, errors.AuthenticationError):
        return (
            f"authentication failed{where} ({_detail(exc)}). Check the password "
            "(--password or TEG_PASSWORD) and the email (--email or TEG_EMAIL)."
        )
    if isinstance(exc, errors.PermissionDeniedError):
        return (
            f"permission denied: {exc.method} {exc.path} is not allowed for this account "
            f"({_detail(exc)}). On firmware 20.49 and later the customer account may not "
            "change the mode or reserve locally; use `teg cloud set ...` instead."
        )
    if isinstance(exc, errors.RateLimitedError):
        wait = f"wait {exc.retry_after_s:g} s" if exc.retry_after_s is not None else "wait a minute"
        return (
            f"rate limited: {exc.method} {exc.path} answered 429. "
            f"{wait.capitalize()} and try again."
        )
    if isinstance(exc, errors.SystemStoppedError):
        return (
            f"the system is stopped{where}: live data is unavailable while the sitemaster "
            "is stopped; start it with `teg sitemaster run`."
        )
    if isinstance(exc, errors.EndpointNotSupportedError):
        return f"this firmware does not have {exc.method} {exc.path} (HTTP 404)."
    if isinstance(exc, errors.InvalidInputError):
        return f"rejected: {exc}. Nothing was sent."
    if isinstance(exc, errors.GatewayTimeoutError):
        return (
            f"the gateway{where} did not answer in time ({exc}). Check the network, "
            "or allow longer with --timeout / TEG_TIMEOUT."
        )
    if isinstance(exc, errors.RequestError):
        return (
            f"cannot reach the gateway{where} ({exc}). Check --host / TEG_HOST and that the "
            "gateway is on the network."
        )
    if isinstance(exc, errors.GatewayBusyError):
        return f"the gateway is busy (HTTP 503, {_detail(exc)}); try again in a minute."
    if isinstance(exc, errors.ApiError) and exc.status == 400:
        return f"the gateway rejected the request: {exc}. Check the value and try again."
    if isinstance(exc, errors.ResponseTooLargeError):
        # `teg get` reads through the same limit, so pointing at it would fail the same way
        return (
            f"answer too large: {exc}. Real gateway answers are far smaller: "
            "check that --host names the gateway."
        )
    if isinstance(exc, errors.ParseError):
        return f"unexpected answer: {exc}. Run `teg get` on the path to see the raw body."
    return f"gateway error: {exc}"


def _certificate_message(exc: BaseException, context: Context, where: str) -> str | None:
    """The real cause of a refused certificate, and the way out that fits it."""
    reason = certificate_reason(exc)
    if reason is None:
        return None
    headline = errors.CERTIFICATE_HEADLINES[reason]
    if isinstance(exc, errors.CertificateMismatchError):
        return (
            f"{headline}: pinned SHA-256 {exc.expected_sha256}, the gateway{where} "
            f"presents {exc.actual_sha256}. Run `teg cert fetch` if you replaced the gateway; "
            "otherwise something may be intercepting the connection."
        )
    detail = exc.detail.rstrip(".") if isinstance(exc, errors.CertificateError) else ""
    said = f" (OpenSSL: {detail})" if detail else ""
    trusted_by = f" by {context.cafile}" if context.cafile else ""
    if reason == errors.CertificateReason.NAME_MISMATCH:
        name = context.tls_name
        if name is None:
            checked = "the name it was checked against"
        elif _is_ip(name):
            checked = f"the address {name} (no --sni given)"
        else:
            checked = f"the name {name!r}"
        return (
            f"{headline}: the certificate of the gateway{where} is trusted"
            f"{trusted_by} but does not carry {checked}{said}. Give --sni a name it carries "
            "(a gateway's certificate names teg, powerwall and powerpack), or pin it with "
            "`teg cert fetch` instead."
        )
    if reason == errors.CertificateReason.EXPIRED:
        return (
            f"{headline}: the certificate of the gateway{where} is trusted{trusted_by} "
            f"but outside its validity period{said}. Check this computer's date and time, or "
            "pin the certificate with `teg cert fetch` (a pin does not depend on dates)."
        )
    if context.cafile:
        return (
            f"{headline}: the gateway{where} presents a certificate that the CA "
            f"file {context.cafile} does not vouch for{said}. Check that the file holds this "
            "gateway's own certificate, or pin it with `teg cert fetch` instead."
        )
    return (
        f"{headline}: the gateway{where} presents a certificate this computer "
        "does not trust (it is self-signed). Pin it with `teg cert fetch` (or `teg setup`), "
        "or give its file with --cafile."
    )


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def _cloud_message(exc: BaseException, url: str | None) -> str | None:
    """The advice for an Owner API failure, where it differs from the gateway's."""
    where = f" at {url}" if url else ""
    if isinstance(exc, errors.CloudTokenMissingError):
        return f"{exc}. {exc.advice}"
    if isinstance(exc, errors.AuthenticationError):
        return (
            f"the Owner API{where} refused the tokens ({_detail(exc)}). Import fresh ones "
            "with `teg cloud token import FILE`."
        )
    if isinstance(exc, errors.PermissionDeniedError):
        return (
            f"permission denied: the Owner API refused {exc.method} {exc.path} for this "
            f"account ({_detail(exc)}). Check --site-id / --battery-id with `teg cloud products`."
        )
    if isinstance(exc, errors.GatewayTimeoutError):
        return f"the Owner API{where} did not answer in time ({exc}). Try again later."
    if isinstance(exc, errors.RequestError):
        return (
            f"cannot reach the Owner API{where} ({exc}). Check the network, and "
            "--cloud-url / TEG_CLOUD_URL if you set it."
        )
    return None


def _detail(exc: errors.ApiError) -> str:
    parts = dict.fromkeys(p for p in (exc.error, exc.message) if p)  # often the same text
    return "; ".join(parts) or f"HTTP {exc.status}"


def epilog() -> str:
    """The exit code table for `teg --help` (\\b keeps click from rewrapping it)."""
    rows = "\n".join(f"  {code:>2}  {text}" for code, text in TABLE)
    return f"\b\nExit codes:\n{rows}"


__all__ = [
    "TABLE",
    "Context",
    "certificate_reason",
    "epilog",
    "exit_code",
    "message",
    "untrusted_certificate",
]
