"""The cloud's HTTP transport: HTTP/2 over TLS (ALPN) through httpx, bodies read with a cap.

Tesla's cloud refuses tokens refreshed over HTTP/1.1 (June 2026), so the token endpoint and
the API are spoken to over HTTP/2. httpx is the maintained async HTTP client that speaks
HTTP/2 (through the h2 protocol library) with one API for both versions; HTTP/1.1 is an
explicit opt-in (`http1=True`) for proxies that cannot carry HTTP/2.

Errors leave as tegkit errors: no answer in time -> GatewayTimeoutError, no connection or a
broken one -> ConnectionFailedError (with the cause in words, never a repr of the TLS
context), an answer past the size limit -> ResponseTooLargeError.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from tegkit.errors import ConnectionFailedError, GatewayTimeoutError, ResponseTooLargeError

# hpack logs every header it encodes at DEBUG, the bearer token included: a program that
# turns on DEBUG for everything must not print tokens. Only quieted when nobody set a level.
for _name in ("hpack", "h2"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.INFO)


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """One answer: status, the (capped) body, the headers we read, the HTTP version used."""

    status: int
    body: bytes
    retry_after: str | None
    http_version: str  # "HTTP/2" or "HTTP/1.1"
    #: the Fleet API's x-ratelimit-* headers (lower-case names), as sent
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)


class CloudTransport:
    """An httpx client (owned or borrowed) and how to send one request through it."""

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool,
        timeout_s: float,
        http1: bool,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.http1 = http1
        self.timeout_s = timeout_s
        self._verify = verify
        self._client = client
        self._owns_client = client is None

    def _get(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            if not self._owns_client:
                raise ConnectionFailedError("the borrowed httpx client is closed")
            self._client = httpx.AsyncClient(
                # HTTP/2 only unless asked: no quiet fallback to HTTP/1.1, whose tokens
                # Tesla refuses (ALPN still lists http/1.1; httpcore speaks h2 regardless).
                http1=self.http1,
                http2=not self.http1,
                verify=self._verify,
                timeout=self.timeout_s,
                follow_redirects=False,
                trust_env=False,  # no proxy or .netrc from the environment: tokens stay put
            )
        return self._client

    async def aclose(self) -> None:
        """Close the client if this transport created it; a borrowed one stays open."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def send(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        limit_bytes: int,
        json_body: Any = None,
        form_body: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> HttpAnswer:
        """Send one request; the body is read up to `limit_bytes` (then refused).

        `form_body` is sent form-encoded (OAuth grants of the Fleet API), `json_body` as JSON.
        """
        client = self._get()
        try:
            async with asyncio.timeout(self.timeout_s):  # the whole exchange, not each read
                request = client.build_request(
                    method, url, json=json_body, data=form_body, headers=headers
                )
                try:
                    response = await client.send(request, stream=True)
                except httpx.RemoteProtocolError:
                    # Servers close a connection after so many requests (GOAWAY; 1,000 is
                    # common) and a request caught in that race fails. A read is sent once
                    # more on a new connection; a change is not, as it may have been applied.
                    if method != "GET":
                        raise
                    response = await client.send(request, stream=True)
                try:
                    body = await _read_capped(response, limit_bytes, endpoint)
                finally:
                    await response.aclose()
        except TimeoutError as exc:
            raise GatewayTimeoutError(f"{endpoint}: no answer in time") from exc
        except httpx.TimeoutException as exc:
            raise GatewayTimeoutError(f"{endpoint}: no answer in time") from exc
        except httpx.RemoteProtocolError as exc:
            hint = "" if self.http1 else " (no HTTP/2 there? http1=True / --http1 for HTTP/1.1)"
            raise ConnectionFailedError(f"{endpoint}: {connection_problem(exc)}{hint}") from exc
        except httpx.HTTPError as exc:
            raise ConnectionFailedError(f"{endpoint}: {connection_problem(exc)}") from exc
        limits = {
            k.lower(): v
            for k, v in response.headers.items()
            if k.lower().startswith("x-ratelimit-")
        }
        return HttpAnswer(
            response.status_code,
            body,
            response.headers.get("Retry-After"),
            response.http_version,
            limits,
        )


async def _read_capped(response: httpx.Response, limit_bytes: int, endpoint: str) -> bytes:
    """The whole (decoded) body, or ResponseTooLargeError as soon as it passes the limit."""
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > limit_bytes:
        raise ResponseTooLargeError(endpoint, limit_bytes, int(announced))
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit_bytes:
            raise ResponseTooLargeError(endpoint, limit_bytes)
    return bytes(body)


def connection_problem(exc: httpx.HTTPError) -> str:
    """Why a request got no answer, in words: untrusted certificate, refused, reset..."""
    host = ""
    try:
        url = exc.request.url
        host = f"{url.host}:{url.port}" if url.port else url.host
    except RuntimeError:  # no request attached
        pass
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"cannot connect to {host}: certificate not trusted"
        if isinstance(cause, ssl.SSLError):
            return f"cannot connect to {host}: TLS failed ({cause.reason or 'handshake'})"
        if isinstance(cause, OSError) and cause.errno:
            return f"cannot connect to {host}: {os.strerror(cause.errno)}"
        cause = cause.__cause__ or cause.__context__
    return f"{host}: {exc.__class__.__name__}: {exc}"


__all__ = ["CloudTransport", "HttpAnswer", "connection_problem"]
