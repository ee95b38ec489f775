"""The simulated Owner API seen with a plain HTTP/2 client: auth, token grant, 400s, never 500.

(Over HTTP/2 because, like Tesla's, the simulated API refuses tokens minted over HTTP/1.1;
that refusal is tested in test_cloud_http2.py.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from owner_cloud import BATTERY_ID, SITE_ID, Cloud

from tegkit.sim.owner_api import CloudTokens


@pytest.fixture
async def http(cloud: Cloud) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=cloud.base_url, verify=cloud.ssl, http2=True) as client:
        yield client


def _auth(cloud: Cloud) -> dict[str, str]:
    return {"Authorization": f"Bearer {cloud.tokens.access_token}"}


async def _call(http: httpx.AsyncClient, method: str, path: str, **kw: Any) -> tuple[int, Any]:
    if "data" in kw:
        kw["content"] = kw.pop("data")
    resp = await http.request(method, path, **kw)
    assert resp.http_version == "HTTP/2"
    return resp.status_code, resp.json()


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}],
)
async def test_missing_or_unknown_bearer_is_401_envelope(
    cloud: Cloud, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    status, body = await _call(http, "GET", "/api/1/products", headers=headers)
    assert status == 401
    assert body["response"] is None
    assert body["error"] == "invalid bearer token"


async def test_expired_bearer_is_401(cloud: Cloud, http: httpx.AsyncClient) -> None:
    cloud.tokens.expire_access_token()
    status, body = await _call(http, "GET", "/api/1/products", headers=_auth(cloud))
    assert (status, body["error_description"]) == (401, "bearer token expired")


async def test_products_envelope(cloud: Cloud, http: httpx.AsyncClient) -> None:
    status, body = await _call(http, "GET", "/api/1/products", headers=_auth(cloud))
    assert status == 200
    assert body["count"] == 1
    assert body["response"][0]["id"] == BATTERY_ID


GOOD_GRANT = {"grant_type": "refresh_token", "client_id": "ownerapi", "scope": "openid"}


async def test_token_grant_rotates_both_tokens(cloud: Cloud, http: httpx.AsyncClient) -> None:
    old_access, old_refresh = cloud.tokens.access_token, cloud.tokens.refresh_token
    status, body = await _call(
        http, "POST", "/oauth2/v3/token", json={**GOOD_GRANT, "refresh_token": old_refresh}
    )
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == int(cloud.tokens.access_ttl_s)
    assert body["access_token"] not in (old_access, "") and body["refresh_token"] != old_refresh
    # old tokens are dead, new ones work
    status, _ = await _call(
        http, "GET", "/api/1/products", headers={"Authorization": f"Bearer {old_access}"}
    )
    assert status == 401
    status, _ = await _call(
        http,
        "GET",
        "/api/1/products",
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert status == 200
    status, again = await _call(
        http, "POST", "/oauth2/v3/token", json={**GOOD_GRANT, "refresh_token": old_refresh}
    )
    assert (status, again["error"]) == (401, "invalid_grant")


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({**GOOD_GRANT, "refresh_token": "unknown"}, 401, "invalid_grant"),
        ({**GOOD_GRANT, "refresh_token": 5}, 401, "invalid_grant"),
        ({**GOOD_GRANT, "client_id": "other", "refresh_token": "x"}, 401, "invalid_client"),
        ({**GOOD_GRANT, "grant_type": "password"}, 400, "unsupported_grant_type"),
        ("not json", 400, "invalid_request"),
    ],
)
async def test_bad_token_grants(
    cloud: Cloud, http: httpx.AsyncClient, body: Any, status: int, error: str
) -> None:
    kw: dict[str, Any] = {"data": body} if isinstance(body, str) else {"json": body}
    got, answer = await _call(http, "POST", "/oauth2/v3/token", **kw)
    assert (got, answer["error"]) == (status, error)
    assert cloud.tokens.refresh_count == 0


BAD_BODIES = [
    ("backup", '{"backup_reserve_percent": 150}', "backup_reserve_percent"),
    ("backup", '{"backup_reserve_percent": -1}', "backup_reserve_percent"),
    ("backup", '{"backup_reserve_percent": "abc"}', "backup_reserve_percent"),
    ("backup", '{"backup_reserve_percent": NaN}', "not valid JSON"),
    ("backup", '{"backup_reserve_percent": true}', "backup_reserve_percent"),
    ("backup", "{}", "backup_reserve_percent is missing"),
    ("operation", '{"default_real_mode": "turbo"}', "default_real_mode"),
    ("operation", '{"mode": "backup"}', "default_real_mode is missing"),
    ("site_name", '{"site_name": ""}', "site_name"),
    ("site_name", '{"site_name": null}', "site_name"),
    ("site_name", '{"site_name": "' + "y" * 65 + '"}', "site_name"),
    ("site_name", "{not json", "not valid JSON"),
    ("site_name", '["site_name"]', "JSON object"),
    ("backup", "", "not valid JSON"),
]


@pytest.mark.parametrize("family", ["powerwalls", "energy_sites"])
@pytest.mark.parametrize(("command", "raw", "says"), BAD_BODIES)
async def test_bad_bodies_are_400_envelopes_and_change_nothing(
    cloud: Cloud,
    http: httpx.AsyncClient,
    family: str,
    command: str,
    raw: str,
    says: str,
) -> None:
    before = cloud.site.site_info()
    target = BATTERY_ID if family == "powerwalls" else SITE_ID
    status, body = await _call(
        http,
        "POST",
        f"/api/1/{family}/{target}/{command}",
        data=raw,
        headers={**_auth(cloud), "Content-Type": "application/json"},
    )
    assert status == 400
    assert body["response"] is None
    assert body["error"] == "invalid_request"
    assert says in body["error_description"]
    assert cloud.site.site_info() == before


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/1/energy_sites/999/site_info", 404),
        ("GET", "/api/1/energy_sites/abc/live_status", 404),
        ("POST", "/api/1/powerwalls/STE-OTHER/backup", 404),
        ("GET", "/api/1/nothing_here", 404),
        ("GET", f"/api/1/energy_sites/{SITE_ID}/backup", 405),
    ],
)
async def test_unknown_targets_are_envelopes(
    cloud: Cloud, http: httpx.AsyncClient, method: str, path: str, status: int
) -> None:
    got, body = await _call(http, method, path, headers=_auth(cloud), json={})
    assert got == status
    assert body["response"] is None and body["error"]


def test_tokens_repr_hides_secrets() -> None:
    tokens = CloudTokens(access_ttl_s=60)
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token not in repr(tokens)
    assert tokens.access_token != tokens.refresh_token
    assert tokens.access_problem(tokens.access_token) is None
    tokens.expire_access_token()
    assert tokens.access_problem(tokens.access_token) == "bearer token expired"


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        ('{"site_name": "' + "x" * (64 * 1024) + '"}', 413, "65536 bytes"),
        ('{"site_name": ' + "[" * 33 + "]" * 33 + "}", 400, "32 levels"),
        ('{"site_name": ' + "[" * 31 + "]" * 31 + "}", 400, "site_name"),
    ],
)
async def test_bodies_are_capped_in_size_and_depth(
    cloud: Cloud, http: httpx.AsyncClient, raw: str, status: int, says: str
) -> None:
    before = cloud.site.site_info()
    got, body = await _call(
        http,
        "POST",
        f"/api/1/energy_sites/{SITE_ID}/site_name",
        data=raw,
        headers={**_auth(cloud), "Content-Type": "application/json"},
    )
    assert (got, body["response"]) == (status, None)
    assert says in body["error_description"]
    assert cloud.site.site_info() == before


async def test_a_streamed_body_past_the_cap_is_refused_while_reading(
    cloud: Cloud, http: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap applies as it comes
        yield b'{"site_name": "'
        for _ in range(100):
            yield b"y" * 1024
        yield b'"}'

    resp = await http.post(
        f"/api/1/energy_sites/{SITE_ID}/site_name", content=chunks(), headers=_auth(cloud)
    )
    assert resp.status_code == 413
    assert resp.json()["error"] == "payload_too_large"


async def test_405_names_the_allowed_method(cloud: Cloud, http: httpx.AsyncClient) -> None:
    resp = await http.delete("/api/1/products", headers=_auth(cloud))
    assert (resp.status_code, resp.headers["allow"]) == (405, "GET")
    assert resp.json()["error"] == "method_not_allowed"
