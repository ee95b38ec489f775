"""Fuzz every local catalog endpoint: no 5xx but the documented ones, JSON bodies on 4xx."""

from __future__ import annotations

import json

from gateway_sim_helpers import client, simulator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tegkit import catalog

LOCAL = [e for e in catalog.endpoints("local")]
_DOCUMENTED_5XX = {
    "GET /api/powerwalls/phase_usages",
    "GET /api/meters/{serial}/ct_config",
    "POST /api/meters/{serial}/ct_config",
}
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "mode",
                    "backup_reserve_percent",
                    "site_name",
                    "timezone",
                    "network_name",
                    "cts",
                    "force",
                    "old_password",
                    "new_password",
                    "island_mode",
                    "password",
                    "username",
                ]
            ),
            inner,
            max_size=3,
        )
    ),
    max_leaves=6,
)
_param = st.sampled_from(["x", "OBB0", "%20", "synchrometerX", "wifi0", "SolarEdge"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_catalog_endpoints(data: st.DataObject) -> None:
    async with simulator(allow_customer_operation=True) as sim, client(sim) as c:
        await c.login()
        for _ in range(8):
            endpoint = data.draw(st.sampled_from(LOCAL))
            path = endpoint.format(**{p: data.draw(_param) for p in endpoint.params})
            method = data.draw(st.sampled_from([endpoint.method, endpoint.method, "PUT"]))
            raw = data.draw(
                st.none() | _json.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=12)
            )
            status, body, resp = await c.request(method, path, raw=raw)
            if status >= 500:
                assert endpoint.key in _DOCUMENTED_5XX or (status == 502 and endpoint.live), (
                    method,
                    path,
                    raw,
                    status,
                    body,
                )
            if 400 <= status < 500:
                assert resp.content_type == "application/json", (method, path, status)
                assert set(body) == {"code", "error", "message"} and body["code"] == status
