"""Testing your own Powerwall client against tegkit's simulated gateway: a pytest example.

With tegkit installed (`pip install tegkit`), pytest has the fixtures `teg_sim` (a simulated
Tesla Energy Gateway over HTTPS on 127.0.0.1, started for the test and stopped after it) and
`teg_sim_factory` (start gateways with options): nothing to import or configure. These tests
use no tegkit client, only requests and aiohttp, as your project would.

A real gateway's certificate is self-signed and names "teg", "powerwall" and "powerpack",
not the gateway's address; the simulator's does the same. A client verifies it either by
pinning its SHA-256 fingerprint (`teg_sim.fingerprint_sha256`), or by trusting the certificate
file (`teg_sim.cafile`) while sending one of those names (`teg_sim.server_hostname`).

The simulated clock stands still (at noon in Los Angeles, 1 June 2024) unless the test moves
it: `teg_sim.advance(seconds)`, `teg_sim.set_time(when)`.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
import requests
from requests.adapters import HTTPAdapter


class GatewayName(HTTPAdapter):
    """Connect to the gateway's address but verify its certificate for the name it carries."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["server_hostname"] = self.name  # sent as SNI and checked against the certificate
        super().init_poolmanager(*args, **kwargs)


class PinnedFingerprint(HTTPAdapter):
    """Accept exactly the certificate with this SHA-256 fingerprint (hex)."""

    def __init__(self, fingerprint_sha256: str) -> None:
        self.fingerprint_sha256 = fingerprint_sha256
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["assert_fingerprint"] = self.fingerprint_sha256
        super().init_poolmanager(*args, **kwargs)


def login_body(sim: Any, password: str | None = None) -> dict[str, Any]:
    return {
        "username": "customer",
        "email": sim.email,
        "password": sim.password if password is None else password,
    }


def verified_session(sim: Any) -> requests.Session:
    """A requests session that verifies the gateway by its certificate file."""
    session = requests.Session()
    session.trust_env = False  # else REQUESTS_CA_BUNDLE from the environment beats `verify`
    session.verify = str(sim.cafile)
    session.mount(sim.url, GatewayName(sim.server_hostname))
    return session


def test_requests_logs_in_and_reads_the_meters(teg_sim: Any) -> None:
    with verified_session(teg_sim) as session:
        refused = session.get(teg_sim.url + "/api/meters/aggregates")
        assert refused.status_code == 401  # nothing without logging in, as on a gateway

        login = session.post(teg_sim.url + "/api/login/Basic", json=login_body(teg_sim))
        assert login.status_code == 200
        assert login.json()["token"]

        meters = session.get(teg_sim.url + "/api/meters/aggregates").json()
        site, battery, solar, load = (
            meters[m]["instant_power"] for m in ("site", "battery", "solar", "load")
        )
        assert solar > 0  # noon in June
        # what the home uses comes from the grid, the battery and the sun
        assert load == pytest.approx(site + battery + solar, abs=1.0)


def test_a_wrong_password_is_refused(teg_sim: Any) -> None:
    with verified_session(teg_sim) as session:
        answer = session.post(
            teg_sim.url + "/api/login/Basic", json=login_body(teg_sim, password="wrong")
        )
        assert answer.status_code == 401


def test_requests_pins_the_fingerprint(teg_sim: Any) -> None:
    with requests.Session() as session:
        session.mount(teg_sim.url, PinnedFingerprint(teg_sim.fingerprint_sha256))
        status = session.get(teg_sim.url + "/api/status", verify=False)
        assert status.status_code == 200
    with requests.Session() as session:
        session.mount(teg_sim.url, PinnedFingerprint("00" * 32))
        with pytest.raises(requests.exceptions.SSLError):
            session.get(teg_sim.url + "/api/status", verify=False)


@pytest.mark.asyncio
async def test_aiohttp_reads_the_meters(teg_sim: Any) -> None:
    pinned = aiohttp.Fingerprint(bytes.fromhex(teg_sim.fingerprint_sha256))
    # The gateway's cookies belong to an IP address: aiohttp keeps those only when unsafe.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.post(
            teg_sim.url + "/api/login/Basic", json=login_body(teg_sim), ssl=pinned
        ) as login:
            assert login.status == 200
        async with session.get(teg_sim.url + "/api/meters/aggregates", ssl=pinned) as answer:
            assert answer.status == 200
            meters = await answer.json()
    assert meters["solar"]["instant_power"] > 0


@pytest.mark.asyncio
async def test_aiohttp_verifies_by_the_certificate_file(teg_sim: Any) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            teg_sim.url + "/api/status",
            ssl=teg_sim.ssl_context(),
            server_hostname=teg_sim.server_hostname,
        ) as answer,
    ):
        assert answer.status == 200
        assert (await answer.json())["version"]


@pytest.mark.teg_sim(firmware="23.44", powerwalls=1)
def test_a_firmware_chosen_by_marker(teg_sim: Any) -> None:
    with verified_session(teg_sim) as session:
        status = session.get(teg_sim.url + "/api/status").json()
    assert status["version"].startswith("23.44")


def test_the_clock_moves_when_the_test_says(teg_sim: Any) -> None:
    def solar_exported_wh(session: requests.Session) -> float:
        meters = session.get(teg_sim.url + "/api/meters/aggregates").json()
        return float(meters["solar"]["energy_exported"])

    with verified_session(teg_sim) as session:
        session.post(teg_sim.url + "/api/login/Basic", json=login_body(teg_sim))
        before_wh = solar_exported_wh(session)
        assert solar_exported_wh(session) == before_wh  # a standing clock
        teg_sim.advance(900)  # a login lasts an hour of simulated time, as on a gateway
        after_wh = solar_exported_wh(session)
        assert after_wh > before_wh
        # the same through the control API, as a test in another language would
        moved = session.post(
            teg_sim.control_url + "/advance",
            json={"seconds": 900},
            headers=teg_sim.control_headers,
        )
        assert moved.status_code == 200
        assert solar_exported_wh(session) > after_wh


def test_an_outage_and_a_flaky_gateway(teg_sim_factory: Any) -> None:
    sim = teg_sim_factory(
        powerwalls=1,
        faults=[{"kind": "status", "status": 503, "count": 1, "path_prefix": "/api/meters"}],
    )
    with verified_session(sim) as session:
        session.post(sim.url + "/api/login/Basic", json=login_body(sim))
        assert session.get(sim.url + "/api/meters/aggregates").status_code == 503
        assert session.get(sim.url + "/api/meters/aggregates").status_code == 200

        sim.start_outage()
        grid = session.get(sim.url + "/api/system_status/grid_status").json()
        assert grid["grid_status"] == "SystemIslandedActive"
        sim.end_outage()
        sim.advance(60)  # the gateway resynchronises with the grid before it reconnects
        grid = session.get(sim.url + "/api/system_status/grid_status").json()
        assert grid["grid_status"] == "SystemGridConnected"


@pytest.fixture(scope="session")
def shared_gateway(teg_sim_factory_session: Any) -> Any:
    """One gateway for every test of the session that asks for it, stopped at the end
    (its clock and faults carry over from test to test)."""
    return teg_sim_factory_session(firmware="21.44", powerwalls=1)


def test_a_session_gateway_is_its_own(shared_gateway: Any, teg_sim: Any) -> None:
    assert shared_gateway.url != teg_sim.url
    with verified_session(shared_gateway) as session:
        assert session.get(shared_gateway.url + "/api/status").status_code == 200
