"""One HTTPS round trip to the gateway, and the mapping of its failures to tegkit.errors.

Besides the round trip this module holds the small pieces of request policy that do not
depend on login: which endpoints answered 404 (not asked again), per-endpoint 429 cool-downs,
single-flight of identical in-flight GETs and a short per-endpoint cache.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast

import aiohttp
import msgspec
from yarl import URL

from tegkit._body import DEFAULT_MAX_RESPONSE_BYTES, checked_max_response_bytes, read_capped
from tegkit._headers import retry_after_s
from tegkit.client._tls import (
    TlsPolicy,
    certificate_failure,
    describe_verify_failure,
    is_ip,
    ssl_argument,
)
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    CertificateError,
    CertificateMismatchError,
    ConnectionFailedError,
    EndpointNotSupportedError,
    GatewayBusyError,
    GatewayTimeoutError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    SystemStoppedError,
)

_LOG = logging.getLogger("tegkit.client")
T = TypeVar("T")

# Without a Retry-After header a 429 still cools the endpoint down for this long.
DEFAULT_COOL_DOWN_S = 30.0

# What a path segment may carry unencoded (RFC 3986 pchar); anything else is percent-encoded,
# and a %XX that is already there is kept (encoding it again would change the path).
_PCHAR = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@"
)
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")


def quote_segment(text: str) -> str:
    """One path segment percent-encoded: '/' too, valid %XX escapes kept as they are.

    >>> quote_segment("SolarEdge Technologies")
    'SolarEdge%20Technologies'
    """
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "%" and _ENCODED.match(text, index):
            out.append(text[index : index + 3])
            index += 3
            continue
        if char in _PCHAR:
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode("utf-8"))
        index += 1
    return "".join(out)


def quote_path(path: str) -> str:
    """A path with every segment percent-encoded; the '/' between segments are kept.

    >>> quote_path("/api/solars/brands/SolarEdge Technologies")
    '/api/solars/brands/SolarEdge%20Technologies'
    """
    return "/".join(quote_segment(segment) for segment in path.split("/"))


def base_url(host: str) -> URL:
    """The https:// root URL for a gateway given as URL, host, host:port or [v6]:port."""
    text = host.strip()
    if not text:
        raise InvalidInputError("host", "a host name, IP address or https:// URL", host)
    if "://" not in text:
        try:
            ipaddress.IPv6Address(text)  # a bare IPv6 address has colons but no port
        except ValueError:
            pass
        else:
            text = f"[{text}]"
        text = f"https://{text}"
    url = URL(text)
    if url.scheme == "http":
        # The gateway answers plain HTTP with a 301 to HTTPS on the same host.
        if url.explicit_port is not None:
            raise InvalidInputError(
                "host", "an https:// URL; the gateway serves its API over HTTPS only", host
            )
        url = url.with_scheme("https")
    if url.scheme != "https" or not url.host:
        raise InvalidInputError("host", "a host name, IP address or https:// URL", host)
    if url.user is not None or url.password is not None:
        # never repeat what was given: the user info may be a password
        raise InvalidInputError(
            "host", "the gateway root without user or password", url.with_user(None).human_repr()
        )
    if url.path not in ("", "/") or url.query_string:
        raise InvalidInputError("host", "the gateway root only, without path or credentials", host)
    return url.with_path("/")


@dataclass(frozen=True, slots=True)
class Reply:
    """One HTTP answer: status, headers and the whole body."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    cookies: Mapping[str, str]


class _ErrorBody(msgspec.Struct):
    code: int | None = None
    error: str | None = None
    message: str | None = None


def error_for(method: str, path: str, reply: Reply) -> ApiError:
    """The typed error for a non-2xx reply, with the gateway's error body fields."""
    status = reply.status
    if status == 502 and not reply.body.strip():
        return SystemStoppedError(status, method, path, message="the system is stopped")
    fields = _ErrorBody()
    if reply.body:
        try:
            fields = msgspec.json.decode(reply.body, type=_ErrorBody)
        except msgspec.DecodeError:
            fields = _ErrorBody(message=reply.body[:200].decode("utf-8", "replace"))
    args = (status, method, path, fields.code, fields.error, fields.message)
    if status == 401:
        return AuthenticationError(*args)
    if status == 403:
        return PermissionDeniedError(*args)
    if status == 404:
        return EndpointNotSupportedError(*args)
    if status == 429:
        return RateLimitedError(
            *args, retry_after_s=retry_after_s(reply.headers.get("Retry-After"))
        )
    if status == 503:
        return GatewayBusyError(*args)
    return ApiError(*args)


class EndpointGuard:
    """Remembers per endpoint what polls must not repeat: 404s, 429 cool-downs, role 403s."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._unsupported: dict[str, EndpointNotSupportedError] = {}
        self._cool_until: dict[str, tuple[float, RateLimitedError]] = {}
        self._role_denied: set[str] = set()

    def relogin_helps(self, key: str) -> bool:
        """False once `key` answered 403 to a good session: the role, not the session, is wrong."""
        return key not in self._role_denied

    def check(self, key: str) -> None:
        """Raise at once, without a request, if `key` is known missing or cooling down."""
        missing = self._unsupported.get(key)
        if missing is not None:
            raise missing
        cooling = self._cool_until.get(key)
        if cooling is None:
            return
        remaining_s = cooling[0] - self._clock()
        if remaining_s <= 0:
            del self._cool_until[key]
            return
        old = cooling[1]
        raise RateLimitedError(
            old.status,
            old.method,
            old.path,
            old.code,
            old.error,
            f"cooling down after HTTP 429; {remaining_s:.1f} s left",
            retry_after_s=remaining_s,
        )

    def note(self, key: str, error: ApiError) -> None:
        """Record what an error teaches about this endpoint."""
        if isinstance(error, EndpointNotSupportedError):
            self._unsupported[key] = error
        elif isinstance(error, PermissionDeniedError):
            self._role_denied.add(key)
        elif isinstance(error, RateLimitedError):
            wait_s = error.retry_after_s
            if wait_s is None:
                wait_s = DEFAULT_COOL_DOWN_S
            self._cool_until[key] = (self._clock() + wait_s, error)

    def forget(self, key: str) -> None:
        """Try this endpoint again (after a firmware update, for example)."""
        self._unsupported.pop(key, None)
        self._cool_until.pop(key, None)
        self._role_denied.discard(key)


class _Flight:
    """One running call; `shared` is made only when a second caller arrives."""

    __slots__ = ("shared",)

    def __init__(self) -> None:
        self.shared: asyncio.Future[object] | None = None


def _consume(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


class SingleFlight:
    """Concurrent callers with the same key share one running call.

    The first caller runs the call in its own task (no extra task on the hot path); callers
    that arrive while it runs wait on a future it completes. If the first caller is
    cancelled, a waiting caller that was not cancelled itself takes over and runs the call.
    """

    def __init__(self) -> None:
        self._running: dict[str, _Flight] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        while True:
            flight = self._running.get(key)
            if flight is None:
                return await self._lead(key, call)
            if flight.shared is None:
                flight.shared = asyncio.get_running_loop().create_future()
                # Waiters that were cancelled leave no one to read an error: read it here.
                flight.shared.add_done_callback(_consume)
            shared = flight.shared
            try:
                return cast("T", await asyncio.shield(shared))
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if shared.cancelled() and task is not None and not task.cancelling():
                    continue  # the leader gave up, not us: run the call ourselves
                raise

    async def _lead(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        flight = _Flight()
        self._running[key] = flight
        try:
            result = await call()
        except BaseException as exc:
            shared = flight.shared
            if shared is not None and not shared.done():
                if isinstance(exc, asyncio.CancelledError):
                    shared.cancel()
                else:
                    shared.set_exception(exc)
            raise
        finally:
            if self._running.get(key) is flight:
                del self._running[key]
        if flight.shared is not None and not flight.shared.done():
            flight.shared.set_result(result)
        return result


class TtlCache:
    """Bodies of successful reads kept for a short, per-endpoint time."""

    def __init__(
        self, ttl_s: Mapping[str, float] | float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._default_s = float(ttl_s) if isinstance(ttl_s, int | float) else 0.0
        self._per_path_s = {} if isinstance(ttl_s, int | float) else dict(ttl_s)
        self._clock = clock
        self._entries: dict[str, tuple[float, Reply]] = {}

    def ttl_s(self, path: str) -> float:
        return self._per_path_s.get(path, self._default_s)

    def get(self, key: str) -> Reply | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            del self._entries[key]
            return None
        return entry[1]

    def put(self, key: str, path: str, reply: Reply) -> None:
        ttl_s = self.ttl_s(path)
        if ttl_s > 0:
            self._entries[key] = (self._clock() + ttl_s, reply)

    def clear(self) -> None:
        self._entries.clear()


class Transport:
    """HTTPS round trips to one gateway over a kept-alive aiohttp session."""

    def __init__(
        self,
        url: URL,
        *,
        tls: TlsPolicy,
        sni: str | None = None,
        session: aiohttp.ClientSession | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        retry_backoff_s: float = 0.05,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        connections: int = 4,
    ) -> None:
        self.url = url
        self.max_response_bytes = checked_max_response_bytes(max_response_bytes)
        self.tls = tls
        self.sni = sni
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.connections = connections  # kept-alive TLS connections to the gateway, at most
        self._ssl = ssl_argument(tls)
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.requests_sent = 0
        self._urls: dict[str, URL] = {}  # built once per path: yarl is not free per request

    @property
    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session (our own is made on first use, inside the running loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                # Auth carries the session cookies itself (they go to the session file too),
                # so they work with IP-address hosts and borrowed sessions alike; a jar
                # would only add its filtering and merging to every request.
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(
                    limit_per_host=self.connections, keepalive_timeout=30
                ),
            )
            # aiohttp (3.10 on) sends every GET again once when a kept-alive connection drops,
            # GET /api/config/completed (a commit) included. Retries are `round_trip`'s call:
            # reads only. A borrowed session keeps its owner's setting.
            if hasattr(self._session, "_retry_connection"):
                self._session._retry_connection = False
        return self._session

    async def close(self) -> None:
        """Close the session if it is ours; a borrowed session is left to its owner."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def round_trip(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool = False,
    ) -> Reply:
        """Send one request and read the whole answer; retry only where that is safe.

        An idempotent request whose kept-alive connection was dropped is sent again with
        exponential back-off and jitter; anything else that may have reached the gateway is
        never repeated.
        """
        attempt = 0
        while True:
            try:
                return await self._once(method, path, json, headers)
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                connect_failed = isinstance(exc, aiohttp.ClientConnectorError)
                if not idempotent or connect_failed or attempt >= self.retries:
                    raise self._map(exc, method, path) from exc
                delay_s = self.retry_backoff_s * (2**attempt) * random.uniform(0.5, 1.0)
                attempt += 1
                _LOG.debug("%s %s: connection dropped, retry %d", method, path, attempt)
                await asyncio.sleep(delay_s)
            except (TimeoutError, aiohttp.ClientError, ssl.SSLError) as exc:
                raise self._map(exc, method, path) from exc

    async def _once(
        self, method: str, path: str, json: object, headers: Mapping[str, str] | None
    ) -> Reply:
        self.requests_sent += 1
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) > 256:  # arbitrary paths through request(): stay bounded
                self._urls.clear()
            bare, _, query = path.partition("?")
            url = self._urls[path] = self.url.with_path(quote_path(bare), encoded=True).with_query(
                query or None
            )
        started = time.perf_counter()
        try:
            async with self.session.request(
                method,
                url,
                json=json,
                headers=headers,
                ssl=self._ssl,
                server_hostname=self.sni,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await read_capped(response, self.max_response_bytes, f"{method} {path}")
                cookies = {name: morsel.value for name, morsel in response.cookies.items()}
                reply = Reply(response.status, response.headers, body, cookies)
        except BaseException as exc:
            # Method, path and what went wrong; never headers or bodies (sessions, passwords).
            _LOG.debug(
                "%s %s failed after %.0f ms: %s",
                method,
                path,
                (time.perf_counter() - started) * 1000,
                exc.__class__.__name__,
            )
            raise
        _LOG.debug(
            "%s %s -> %d in %.0f ms (%d bytes)",
            method,
            path,
            reply.status,
            (time.perf_counter() - started) * 1000,
            len(body),
        )
        return reply

    def _map(self, exc: BaseException, method: str, path: str) -> Exception:
        where = f"{method} {path} to {self.url.host}:{self.url.port}"
        if isinstance(exc, aiohttp.ServerFingerprintMismatch):
            return CertificateMismatchError(exc.expected.hex(), exc.got.hex())
        if isinstance(exc, TimeoutError):
            return GatewayTimeoutError(f"{where}: no answer within {self.timeout_s} s")
        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            name = self.sni if self.sni is not None else (self.url.host or "")
            cause, detail = certificate_failure(exc.certificate_error)
            return CertificateError(
                f"{where}: {describe_verify_failure(self.tls, cause, name)}", cause, detail
            )
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
            return ConnectionFailedError(
                f"{where}: TLS handshake failed ({exc.__class__.__name__}); the gateway drops "
                "connections whose SNI name it does not know (teg, powerwall, powerpack)"
            )
        if isinstance(exc, aiohttp.ClientConnectorError):
            os_error = exc.os_error
            # "Connection refused" says more than "[Errno 111] Connect call failed (...)".
            reason = (
                os.strerror(os_error.errno)
                if os_error.errno
                else str(os_error) or os_error.__class__.__name__
            )
            if isinstance(os_error, ConnectionResetError | ConnectionAbortedError):
                # Reset while connecting over TLS: the handshake was refused.
                name = self.sni if self.sni is not None else (self.url.host or "")
                sent = "none (IP address)" if is_ip(name) else repr(name)
                reason += (
                    f" during the TLS handshake; the gateway drops connections whose SNI name "
                    f"it does not know (teg, powerwall, powerpack); SNI sent: {sent}"
                )
            return ConnectionFailedError(f"{where}: cannot connect: {reason}")
        return ConnectionFailedError(f"{where}: {exc.__class__.__name__}: {exc}")


__all__ = [
    "DEFAULT_COOL_DOWN_S",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "EndpointGuard",
    "Reply",
    "SingleFlight",
    "Transport",
    "TtlCache",
    "base_url",
    "error_for",
    "quote_path",
    "quote_segment",
]
