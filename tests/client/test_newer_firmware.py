"""The client against a gateway double answering as a newer firmware might, over real TLS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import CAPTURES, FIRMWARE, PASSWORD
from tegkit.client import Gateway
from tegkit.errors import ParseError


async def test_null_lists_recased_and_new_keys_read_through_the_typed_methods(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    capture = CAPTURES / FIRMWARE / "running" / "meters.aggregates.json"
    aggregates = json.loads(capture.read_text())
    for reading in aggregates.values():
        reading["Instant_Power"] = reading.pop("instant_power")  # re-cased
        reading["energyExported"] = reading.pop("energy_exported")
        reading["phase_count_new"] = 3  # a field no firmware sent before
        del reading["last_communication_time"]  # gone
    newer = fault(status=200, body=json.dumps(aggregates).encode())
    fake.fault("GET /api/meters/aggregates", newer)
    fake.fault("GET /api/meters", fault(status=200, body=b"null"))  # Go's nil slice
    fake.fault("GET /api/system_status/grid_faults", fault(status=200, body=b"null"))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        flow = await gw.meters_aggregates()
        assert flow.site is not None and flow.battery is not None
        assert flow.site.instant_power_w == aggregates["site"]["Instant_Power"]
        assert flow.site.energy_exported_wh == aggregates["site"]["energyExported"]
        assert flow.site.last_communication_time is None
        assert flow.raw["site"]["phase_count_new"] == 3
        assert await gw.meters() == []
        assert await gw.grid_faults() == []


async def test_a_required_field_gone_is_a_parse_error_naming_it(
    fake: Any, address: str, pinned: Any, fault: Any
) -> None:
    fake.fault("GET /api/system_status/soe", fault(status=200, body=b'{"charge": 50}'))
    async with Gateway(address, password=PASSWORD, tls=pinned) as gw:
        with pytest.raises(ParseError, match="percentage") as caught:
            await gw.state_of_energy()
        assert caught.value.endpoint == "GET /api/system_status/soe"
