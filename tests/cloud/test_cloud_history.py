"""Backup and calendar history read through CloudClient from the simulator over real HTTP/2.

The simulator's cloud records its history from the physics (sim/cloud_history.py); the
client's typed answers must carry the same values: energy in Wh per local day, outages with
their duration in seconds (the wire has milliseconds).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner, Result
from owner_cloud import SITE_ID, FakeSite, TlsPair, serve_asgi

from tegkit.cli import main
from tegkit.cloud import BackupHistory, CloudClient, EnergyHistory
from tegkit.errors import InvalidInputError, ParseError, ResponseTooLargeError
from tegkit.sim import Simulator
from tegkit.sim.cloud_history import FLOW_FIELDS, ZERO_FIELDS
from tegkit.sim.owner_api import CloudTokens, make_owner_api_app

LA = ZoneInfo("America/Los_Angeles")
START = dt.datetime(2024, 6, 10, 0, 0, tzinfo=LA)
OUTAGE_AT = dt.datetime(2024, 6, 11, 13, 0, tzinfo=LA)
OUTAGE_MINUTES = 45
RESYNC_S = 30  # the gateway takes this long to reconnect after the grid is back


@asynccontextmanager
async def site_with_history() -> AsyncIterator[Simulator]:
    """A simulated site with three whole days and a few hours, one outage on the second;
    COUNTERS gets the counters at the first and the third midnight."""
    async with Simulator(port=0, cloud_port=0, speed=0, start=START) as sim:
        COUNTERS[:] = [_counters(sim)]
        await sim.advance((OUTAGE_AT - START).total_seconds())
        sim.start_outage(minutes=OUTAGE_MINUTES)
        await sim.advance(86400.0 * 2 - (OUTAGE_AT - START).total_seconds())
        COUNTERS.append(_counters(sim))
        await sim.advance(86400.0 + 5 * 3600.0)
        yield sim


COUNTERS: list[dict[str, float]] = []


def _counters(sim: Simulator) -> dict[str, float]:
    return {
        f"{meter}_{d}": getattr(c, f"{d}_wh")
        for meter, c in sim.gateway.site.counters.items()
        for d in ("imported", "exported")
    }


def client_for(sim: Simulator, **kw: Any) -> CloudClient:
    return CloudClient(
        sim.cloud_tokens.access_token,
        sim.cloud_tokens.refresh_token,
        base_url=sim.cloud_url,
        auth_url=sim.cloud_url,
        ssl=ssl.create_default_context(cafile=str(sim.cafile)),
        **kw,
    )


async def test_energy_history_carries_the_simulators_own_days_over_http2() -> None:
    async with site_with_history() as sim, client_for(sim) as client:
        site_id = sim.cloud_site.energy_site_id
        answer = await client.calendar_history(site_id, "energy", "week", end_date=sim.now)
        assert client.last_http_version == "HTTP/2"
        own = sim.cloud_site.calendar_history("energy", "week", sim.now)
    assert isinstance(answer, EnergyHistory)
    assert answer.period == "week"
    assert answer.installation_time_zone == "America/Los_Angeles"
    assert answer.serial_number == sim.gateway.din
    assert [p.timestamp for p in answer.time_series] == [
        START + dt.timedelta(days=d) for d in range(4)
    ]
    for period, wire in zip(answer.time_series, own["time_series"], strict=True):
        for name in (*FLOW_FIELDS, *ZERO_FIELDS):
            assert getattr(period, f"{name}_wh") == wire[name], name
    # the first two whole days together equal the counters' deltas over them
    before, after = COUNTERS
    two = answer.time_series[:2]
    grid_in = sum(p.grid_energy_imported_wh or 0.0 for p in two)
    solar = sum(p.solar_energy_exported_wh or 0.0 for p in two)
    assert grid_in == pytest.approx(after["site_imported"] - before["site_imported"], rel=1e-9)
    assert solar == pytest.approx(after["solar_exported"] - before["solar_exported"], rel=1e-9)
    assert solar > 10_000  # the sun really shone


async def test_one_day_is_that_local_day_whatever_zone_the_end_is_written_in() -> None:
    async with site_with_history() as sim, client_for(sim) as client:
        site_id = sim.cloud_site.energy_site_id
        evening_utc = dt.datetime(2024, 6, 12, 5, 0, tzinfo=dt.UTC)  # June 11th in LA
        day = await client.calendar_history(site_id, end_date=evening_utc)
        with_zone = await client.calendar_history(
            site_id,
            end_date=dt.datetime(2024, 6, 11, 22, 0, tzinfo=LA),
            time_zone="America/Los_Angeles",
        )
    [only] = day.time_series
    assert only.timestamp == START + dt.timedelta(days=1)
    assert with_zone.time_series == day.time_series


async def test_backup_history_has_the_outage_in_seconds_on_both_paths() -> None:
    async with site_with_history() as sim, client_for(sim) as client:
        site_id = sim.cloud_site.energy_site_id
        owner = await client.backup_history(site_id)
        fleet = await client.calendar_history(site_id, "backup", "week", end_date=sim.now)
        other_day = await client.calendar_history(site_id, "backup", "day", end_date=START)
        wire = sim.cloud_site.backup_history()
    assert isinstance(owner, BackupHistory)
    [event] = owner.events
    assert event.start == OUTAGE_AT
    assert event.duration_s == OUTAGE_MINUTES * 60 + RESYNC_S
    assert wire["events"][0]["duration"] == event.duration_s * 1000  # the wire is in ms
    assert event.end == OUTAGE_AT + dt.timedelta(seconds=OUTAGE_MINUTES * 60 + RESYNC_S)
    assert owner.total_events == 1
    assert fleet == owner
    assert other_day.events == [] and other_day.total_events == 0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"kind": "power"}, "kind"),
        ({"period": "decade"}, "period"),
        ({"end_date": dt.datetime(2024, 6, 10)}, "end_date"),  # no UTC offset
        ({"end_date": "2024-06-10"}, "end_date"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"time_zone": "../../etc/passwd"}, "time_zone"),
        ({"site_id": -1}, "site_id"),
    ],
)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    kwargs: dict[str, Any], field: str
) -> None:
    # a client that cannot reach anything: a refusal must come before any request
    client = CloudClient("token", base_url="https://127.0.0.1:9", timeout_s=1)
    async with client:
        args = {"site_id": 1, **kwargs}
        with pytest.raises(InvalidInputError, match=field):
            await client.calendar_history(**args)
        assert client.last_http_version is None


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("kind=power&period=day", "kind"),
        ("kind=energy&period=decade", "period"),
        ("kind=energy&end_date=yesterday", "end_date"),
        ("kind=energy&end_date=2024-06-10T12:00:00", "UTC offset"),
        ("kind=energy&time_zone=Mars/Olympus", "time_zone"),
        ("kind=energy&kind=backup", "more than once"),
        ("kind=energy&colour=blue", "unknown query parameter"),
        ("&".join(f"k{i}=1" for i in range(40)), "query parameters"),
    ],
)
async def test_the_simulated_cloud_answers_bad_queries_with_400_naming_the_value(
    query: str, words: str
) -> None:
    async with (
        Simulator(port=0, cloud_port=0, speed=0, start=START) as sim,
        httpx.AsyncClient(
            http2=True, http1=False, verify=ssl.create_default_context(cafile=str(sim.cafile))
        ) as http,
    ):
        headers = {"Authorization": f"Bearer {sim.cloud_tokens.access_token}"}
        site_id = sim.cloud_site.energy_site_id
        base = f"{sim.cloud_url}/api/1/energy_sites/{site_id}"
        answer = await http.get(f"{base}/calendar_history?{query}", headers=headers)
        assert answer.http_version == "HTTP/2"
        assert answer.status_code == 400, answer.text
        body = answer.json()
        assert body["response"] is None and words in body["error_description"]
        history = await http.get(f"{base}/history?kind=energy", headers=headers)
        assert history.status_code == 400 and "kind" in history.json()["error_description"]
        other_site = await http.get(
            f"{sim.cloud_url}/api/1/energy_sites/1/history?kind=backup", headers=headers
        )
        assert other_site.status_code == 404


async def test_teg_cloud_history_prints_outages_and_days(tmp_path: Path) -> None:
    async with site_with_history() as sim:
        tokens = tmp_path / "tokens.json"
        pair = {"access_token": sim.cloud_tokens.access_token}
        pair["refresh_token"] = sim.cloud_tokens.refresh_token  # days passed: it has expired
        tokens.write_text(json.dumps(pair))
        tokens.chmod(0o600)
        env = {
            "TEG_CONFIG": str(tmp_path / "config.toml"),
            "TEG_TOKEN_FILE": str(tokens),
            "TEG_CLOUD_URL": sim.cloud_url,
            "TEG_CLOUD_AUTH_URL": sim.cloud_url,
            "TEG_CLOUD_CAFILE": str(sim.cafile),
        }

        async def teg(*args: str) -> Result:
            # in a thread: this loop keeps serving the simulated cloud meanwhile
            argv = ["cloud", "history", *args]
            return await asyncio.to_thread(CliRunner().invoke, main, argv, env=env)

        backup = await teg("backup", "--json")
        week = await teg("energy", "--period", "week", "--json")
        one_day = await teg("energy", "--date", "2024-06-11", "--json")
        text = await teg("energy", "--period", "week")
        outages_text = await teg("backup")
        bad = await teg("energy", "--period", "decade")
        own = sim.cloud_site.calendar_history("energy", "week", sim.now)
    for result in (backup, week, one_day, text, outages_text):
        assert result.exit_code == 0, result.output
    [outage] = json.loads(backup.stdout)["outages"]
    assert outage == {
        "start": OUTAGE_AT.isoformat(),
        "end": (OUTAGE_AT + dt.timedelta(seconds=45 * 60 + 30)).isoformat(),
        "duration_s": 45 * 60 + 30,
    }
    periods = json.loads(week.stdout)["periods"]
    assert [p["timestamp"] for p in periods] == [e["timestamp"] for e in own["time_series"]]
    for period, wire in zip(periods, own["time_series"], strict=True):
        assert period["solar_energy_exported_wh"] == wire["solar_energy_exported"]
        assert period["grid_energy_imported_wh"] == wire["grid_energy_imported"]
    [day] = json.loads(one_day.stdout)["periods"]
    assert day == periods[1]
    assert "2024-06-12" in text.stdout and "kWh" in text.stdout
    assert "45 min 30 s" in outages_text.stdout
    assert bad.exit_code == 2 and "decade" in bad.output


class HostileHistorySite(FakeSite):
    """A site whose history answers are whatever a test puts in `backup` and `energy`."""

    backup: Any = None
    energy: Any = None

    def backup_history(self) -> Any:
        return self.backup

    def calendar_history(self, kind: str, period: str, end: dt.datetime | None = None) -> Any:
        return self.backup if kind == "backup" else self.energy


EVENT_AT = "2024-06-10T13:00:00-07:00"


@pytest.mark.parametrize(
    ("read", "answer", "words"),
    [
        ("backup", {"events": [{"timestamp": EVENT_AT, "duration": "long"}]}, "duration"),
        ("backup", {"events": [{"duration": 1000}]}, "timestamp"),
        ("backup", None, "null"),
        ("energy", None, "null"),
        ("energy", {"time_series": [{"timestamp": "x"}]}, "timestamp"),
        (
            "energy",
            {"time_series": [{"timestamp": EVENT_AT, "grid_energy_imported": "lots"}]},
            "grid_energy_imported",
        ),
    ],
)
async def test_a_malformed_history_answer_is_a_parse_error_naming_the_field(
    tls: TlsPair, read: str, answer: Any, words: str
) -> None:
    site = HostileHistorySite()
    site.backup = site.energy = answer
    tokens = CloudTokens()
    server = serve_asgi(make_owner_api_app(site, tokens), tls)  # type: ignore[arg-type]
    base_url = await anext(server)
    try:
        async with CloudClient(
            tokens.access_token, base_url=base_url, ssl=tls.client_context()
        ) as client:
            with pytest.raises(ParseError, match=words):
                if read == "backup":
                    await client.backup_history(SITE_ID)
                else:
                    await client.calendar_history(SITE_ID)
    finally:
        await server.aclose()


async def test_an_answer_past_the_size_cap_stops_reading_there() -> None:
    async with site_with_history() as sim, client_for(sim, max_response_bytes=2000) as client:
        with pytest.raises(ResponseTooLargeError):
            await client.calendar_history(
                sim.cloud_site.energy_site_id, "energy", "week", end_date=sim.now
            )
        one_day = await client.calendar_history(sim.cloud_site.energy_site_id, end_date=sim.now)
    assert len(one_day.time_series) == 1  # a small answer still fits


async def test_the_fleet_flavour_reads_outages_by_calendar_period() -> None:
    async with site_with_history() as sim:
        fresh = sim.cloud_tokens.refresh(sim.cloud_tokens.refresh_token)
        assert fresh is not None

        def no_owner_path() -> Any:
            raise AssertionError("the Fleet API has no /history path")

        sim.cloud_site.backup_history = no_owner_path  # type: ignore[method-assign]
        fleet = CloudClient(
            fresh["access_token"],
            flavour="fleet",
            client_id="my-fleet-app",
            base_url=sim.cloud_url,
            auth_url=sim.cloud_url,
            ssl=ssl.create_default_context(cafile=str(sim.cafile)),
        )
        async with fleet:
            history = await fleet.backup_history(sim.cloud_site.energy_site_id)
    [event] = history.events
    assert (event.start, event.duration_s) == (OUTAGE_AT, OUTAGE_MINUTES * 60 + RESYNC_S)
