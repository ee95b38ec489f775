"""Owner API error answers become typed errors: a scripted TLS server plays the cloud."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from owner_cloud import SITE_ID, TlsPair, serve_asgi

from tegkit.cloud import CloudClient
from tegkit.errors import (
    ApiError,
    AuthenticationError,
    ConnectionFailedError,
    EndpointNotSupportedError,
    GatewayBusyError,
    ParseError,
    PermissionDeniedError,
    RateLimitedError,
    ResponseTooLargeError,
)

ACCESS = "access-token-that-must-never-leak"
REFRESH = "refresh-token-that-must-never-leak"


class Script:
    """What the scripted cloud answers next: status, body text, headers."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"response": {}}
        self.headers: dict[str, str] = {}
        self.requests = 0

    def set(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """An ASGI app (served over HTTP/2 like the cloud) answering every request alike."""
        if scope["type"] != "http":
            return
        self.requests += 1
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        headers = [(b"content-type", b"application/json")]
        headers += [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": text.encode()})


@pytest.fixture
async def scripted(tls: TlsPair) -> AsyncIterator[tuple[Script, CloudClient]]:
    script = Script()
    server = serve_asgi(script, tls)
    url = await anext(server)
    # no refresh token: a 401 is final here (refresh is covered with the simulator)
    async with CloudClient(ACCESS, base_url=url, ssl=tls.client_context()) as client:
        yield script, client
    await server.aclose()


def _err(error: str, description: str = "") -> dict[str, Any]:
    return {"response": None, "error": error, "error_description": description}


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, EndpointNotSupportedError),
        (400, ApiError),
        (500, ApiError),
        (502, ApiError),
        (503, GatewayBusyError),
    ],
)
async def test_error_envelope_maps_to_typed_errors(
    scripted: tuple[Script, CloudClient], status: int, kind: type[ApiError]
) -> None:
    script, client = scripted
    script.set(status, _err("some_error", f"it went wrong ({status})"))
    with pytest.raises(kind) as info:
        await client.site_info(SITE_ID)
    assert type(info.value) is kind
    assert info.value.status == status
    assert info.value.error == "some_error"
    assert info.value.message == f"it went wrong ({status})"
    assert info.value.path == f"/api/1/energy_sites/{SITE_ID}/site_info"


@pytest.mark.parametrize(("header", "seconds"), [("17", 17.0), (None, None), ("soon", None)])
async def test_429_carries_retry_after(
    scripted: tuple[Script, CloudClient], header: str | None, seconds: float | None
) -> None:
    script, client = scripted
    script.set(429, _err("rate limited"), {"Retry-After": header} if header else {})
    with pytest.raises(RateLimitedError) as info:
        await client.products()
    assert info.value.retry_after_s == seconds


async def test_result_false_is_an_api_error(scripted: tuple[Script, CloudClient]) -> None:
    script, client = scripted
    script.set(200, {"response": {"result": False, "reason": "site offline"}})
    with pytest.raises(ApiError) as info:
        await client.set_operation_mode("backup", site_id=SITE_ID)
    assert info.value.message == "site offline"


async def test_error_with_status_200_is_an_api_error(scripted: tuple[Script, CloudClient]) -> None:
    script, client = scripted
    script.set(200, _err("vehicle unavailable", "asleep"))
    with pytest.raises(ApiError) as info:
        await client.products()
    assert (info.value.status, info.value.error) == (200, "vehicle unavailable")


@pytest.mark.parametrize(
    "body",
    ["<html>proxy</html>", {"no_response": 1}, {"response": {"weird": 1}}, [1, 2]],
)
async def test_unexpected_success_bodies_are_parse_errors(
    scripted: tuple[Script, CloudClient], body: Any
) -> None:
    script, client = scripted
    script.set(200, body)
    with pytest.raises(ParseError):
        await client.set_site_name("Home", site_id=SITE_ID)


async def test_an_answer_past_the_size_limit_is_refused_while_reading(
    scripted: tuple[Script, CloudClient],
) -> None:
    script, client = scripted
    script.set(200, {"response": [{"padding": "x" * (5 * 1024 * 1024)}]})
    with pytest.raises(ResponseTooLargeError) as caught:
        await client.products()
    assert caught.value.limit_bytes == 4 * 1024 * 1024
    assert "/api/1/products" in str(caught.value)


async def test_wrongly_typed_field_is_a_parse_error_naming_it(
    scripted: tuple[Script, CloudClient],
) -> None:
    script, client = scripted
    script.set(200, {"response": {"solar_power": "lots"}})
    with pytest.raises(ParseError) as info:
        await client.live_status(SITE_ID)
    assert "solar_power" in str(info.value)


async def test_html_error_page_still_maps_by_status(scripted: tuple[Script, CloudClient]) -> None:
    script, client = scripted
    script.set(503, "<html>maintenance</html>")
    with pytest.raises(GatewayBusyError) as info:
        await client.products()
    assert info.value.error is None


async def test_tokens_echoed_by_the_server_are_redacted(
    scripted: tuple[Script, CloudClient],
) -> None:
    script, client = scripted
    script.set(401, _err("invalid bearer token", f"token {ACCESS} is not valid"))
    with pytest.raises(AuthenticationError) as info:
        await client.products()
    assert ACCESS not in str(info.value)
    assert "<redacted>" in str(info.value)


async def test_untrusted_certificate_is_a_connection_error(tls: TlsPair) -> None:
    script = Script()
    server = serve_asgi(script, tls)
    url = await anext(server)
    try:
        async with CloudClient(ACCESS, REFRESH, base_url=url) as client:  # default trust store
            with pytest.raises(ConnectionFailedError, match="certificate not trusted") as info:
                await client.products()
    finally:
        await server.aclose()
    assert script.requests == 0
    assert "SSLContext" not in str(info.value)  # not a repr of the connection
