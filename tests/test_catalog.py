"""The catalog covers every endpoint the spec names, and its lookups are unambiguous."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tegkit import catalog, models
from tegkit.catalog import Auth, Effect

_ROW = re.compile(r"^\|\s*(`(?P<path>[^`]+)`)?\s*\|\s*(\[)?(?P<method>GET|POST|DELETE|PUT)\b")
_PLACEHOLDER = re.compile(r"\$\{[^}]+\}")


def overview_rows(spec_dir: Path) -> list[tuple[str, str]]:
    """(method, path) of every row of spec 001's overview table; blank paths repeat the last."""
    text = next(spec_dir.glob("001_*.txt")).read_text(encoding="utf-8")
    rows, last_path = [], ""
    for line in text.splitlines():
        found = _ROW.match(line)
        if not found:
            continue
        last_path = found.group("path") or last_path
        rows.append((found.group("method"), last_path))
    return rows


def test_overview_table_has_81_rows(spec_dir: Path) -> None:
    assert len(overview_rows(spec_dir)) == 81


def test_every_overview_row_is_in_the_catalog(spec_dir: Path) -> None:
    missing = []
    for method, raw_path in overview_rows(spec_dir):
        # A placeholder becomes a parameter: try a concrete value in its place.
        concrete = "/api" + _PLACEHOLDER.sub("x1", raw_path)
        if catalog.match(method, concrete) is None:
            missing.append(f"{method} {raw_path}")
    assert missing == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/meters/site"),
        ("GET", "/api/meters/solar"),
        ("POST", "/api/networks/wifi_scan"),
        ("GET", "/api/system/networks"),
        ("GET", "/api/networks/wifi_security_types"),
        ("POST", "/api/customer/registration/emailed"),
        ("POST", "/api/password/change"),
        ("GET", "/api/system_status"),
        ("GET", "/api/troubleshooting/problems"),
        ("GET", "/api/autoconfig/status"),
        ("GET", "/api/site_info/grid_regions"),
        ("GET", "/api/powerwalls/phase_usages"),
        ("GET", "/api/meters/status"),
        ("GET", "/api/synchrometer/ct_voltage_references/options"),
        ("POST", "/api/sitemaster/stop"),
        ("GET", "/api/sitemaster/stop"),
        ("POST", "/api/1/powerwalls/{battery_id}/backup"),
        ("POST", "/api/1/powerwalls/{battery_id}/site_name"),
        ("POST", "/api/1/powerwalls/{battery_id}/operation"),
        ("POST", "/api/1/energy_sites/{site_id}/backup"),
        ("POST", "/api/1/energy_sites/{site_id}/site_name"),
        ("POST", "/api/1/energy_sites/{site_id}/operation"),
    ],
)
def test_endpoints_beyond_the_overview(method: str, path: str) -> None:
    assert catalog.find(method, path.replace("{", "").replace("}", "")).method == method


def test_no_duplicate_entries() -> None:
    counts = Counter(e.key for e in catalog.ENDPOINTS)
    assert [key for key, n in counts.items() if n > 1] == []


def test_static_paths_win_over_templates() -> None:
    assert catalog.find("GET", "/api/meters/aggregates").path == "/api/meters/aggregates"
    assert catalog.find("GET", "/api/status/").path == "/api/status"
    assert catalog.find("GET", "/api/operation?x=1").path == "/api/operation"
    assert catalog.find("GET", "/api/anything").path == "/api/{resource}"
    enable = catalog.find("POST", "/api/networks/enable_wifi")
    assert enable.path == "/api/networks/enable_{interface}"


def test_params_and_format_round_trip() -> None:
    endpoint, params = catalog.match("POST", "/api/meters/OBB123/verify") or (None, None)
    assert endpoint is not None and params == {"serial": "OBB123"}
    assert endpoint.format(serial="a b/c") == "/api/meters/a%20b%2Fc/verify"
    with pytest.raises(KeyError, match="serial"):
        endpoint.format()


def test_unknown_request_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="PATCH /api/status"):
        catalog.find("PATCH", "/api/status")
    assert catalog.methods_for("/api/operation") == ["GET", "POST"]
    assert catalog.methods_for("/nope") == []


def test_every_named_model_exists() -> None:
    names = {e.model for e in catalog.ENDPOINTS if e.model}
    assert sorted(n for n in names if not hasattr(models, n)) == []


def test_auth_rules_per_firmware_family() -> None:
    aggregates = catalog.find("GET", "/api/meters/aggregates")
    assert aggregates.auth is Auth.SINCE_20_49 and aggregates.live
    assert not aggregates.auth.needs_login("legacy")
    assert aggregates.auth.needs_login("modern")
    assert not catalog.find("GET", "/api/status").auth.needs_login("modern")
    assert catalog.find("POST", "/api/operation").auth is Auth.INSTALLER
    assert catalog.find("GET", "/api/config/completed").effect is Effect.COMMITS
    live = sorted(e.path for e in catalog.ENDPOINTS if e.live)
    assert live == [
        "/api/meters/aggregates",
        "/api/system_status",
        "/api/system_status/grid_faults",
        "/api/system_status/grid_status",
        "/api/system_status/soe",
    ]
