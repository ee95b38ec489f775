"""What a gateway or a user wrote prints as written: no markup, no emoji, no negative zero."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from canned_gateway import Answer, CannedGateway
from teg_helpers import SimThread, Teg

# Rich markup, an emoji code, and a fingerprint-like group: each must come out literally.
HOSTILE = "[bold]x[/bold] :smile: :AB: :cd: [link=x]y[/link]"


@pytest.fixture()
def hostile_site(simthread: SimThread) -> Iterator[str]:
    gateway = simthread.sim.gateway
    before = gateway.settings.site_name
    simthread.call(gateway.set_site_name, HOSTILE)
    yield HOSTILE
    simthread.call(gateway.set_site_name, before)


def test_set_site_name_echoes_a_name_with_markup_literally(simthread: SimThread, teg: Teg) -> None:
    gateway = simthread.sim.gateway
    before = gateway.settings.site_name
    try:
        result = teg("set", "site-name", HOSTILE)
        assert result.exit_code == 0, result.stderr
        assert HOSTILE in result.stdout  # what the gateway now reports, as it reports it
    finally:
        simthread.call(gateway.set_site_name, before)


def test_status_prints_a_site_name_with_markup_literally(hostile_site: str, teg: Teg) -> None:
    result = teg("status")
    assert result.exit_code == 0, result.stderr
    assert hostile_site in result.stdout
    assert teg.json("status")["site_name"] == hostile_site


def test_watch_prints_a_site_name_with_markup_literally(hostile_site: str, teg: Teg) -> None:
    result = teg("watch", "--count", "1", "--interval", "0.1")
    assert result.exit_code == 0, result.stderr
    assert hostile_site in result.stdout


def test_setup_prints_a_site_name_with_markup_literally(hostile_site: str, teg: Teg) -> None:
    result = teg("setup", "--yes", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    assert hostile_site in result.stdout


def test_fingerprints_never_turn_into_emoji(teg: Teg) -> None:
    # ":CD:" is rich's emoji code for a compact disc; a pin may hold that group anywhere.
    pin = "0006abcdef" + "12" * 27
    result = teg("cert", "show", TEG_PIN=pin)
    assert result.exit_code == 0, result.stderr
    assert "Pinned: 00:06:AB:CD:EF:12:12" in result.stdout


def test_cert_fetch_and_check_print_the_whole_fingerprint(teg: Teg, sim: Any) -> None:
    groups = ":".join(
        sim.fingerprint_sha256[i : i + 2].upper() for i in range(0, 64, 2)
    )  # as users compare it
    fetched = teg("cert", "fetch", "--yes", TEG_PIN="")
    assert fetched.exit_code == 0, fetched.stderr
    assert groups in fetched.stderr and groups in fetched.stdout
    checked = teg("cert", "show", "--check", TEG_PIN="")
    assert checked.stdout.count(groups) == 2  # pinned and presented


def test_a_profile_name_with_markup_prints_literally(teg: Teg) -> None:
    name = "[red]cabin :cd: [bold]"
    result = teg("--profile", name, "setup", "--yes", TEG_PIN="")
    assert result.exit_code == 0, result.stderr
    assert repr(name) in result.stdout


def test_cloud_output_prints_a_site_name_with_markup_literally(
    simthread: SimThread, env: dict[str, str], tmp_path: Path
) -> None:
    sim = simthread.sim
    cteg = Teg(
        {
            **env,
            "TEG_CLOUD_URL": sim.cloud_url,
            "TEG_CLOUD_AUTH_URL": sim.cloud_url,
            "TEG_CLOUD_CAFILE": str(sim.cafile),
        }
    )
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps({"access_token": sim.cloud_tokens.access_token}))
    assert cteg("cloud", "token", "import", str(tokens)).exit_code == 0
    before = cteg.json("cloud", "products")
    old = next(p["site_name"] for p in before if "energy_site_id" in p)
    try:
        named = cteg("cloud", "set", "site-name", HOSTILE)
        assert named.exit_code == 0, named.stderr
        assert HOSTILE in named.stdout
        listed = cteg("cloud", "products")
        assert HOSTILE in listed.stdout
    finally:
        assert cteg("cloud", "set", "site-name", old).exit_code == 0


# --- negative zero ---------------------------------------------------------------------------


def _negative_zeros(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value] if value == 0 and math.copysign(1.0, value) < 0 else []
    if isinstance(value, dict):
        return [z for v in value.values() for z in _negative_zeros(v)]
    if isinstance(value, list):
        return [z for v in value for z in _negative_zeros(v)]
    return []


def _teg_for(gateway: CannedGateway, tmp_path: Path) -> Teg:
    """`teg` pinned to the canned gateway, with a config of its own."""
    return Teg(
        {
            "TEG_HOST": gateway.url,
            "TEG_PIN": gateway.sha256,
            "TEG_PASSWORD": "unused",
            "TEG_CONFIG": str(tmp_path / "config" / "config.toml"),
        }
    )


@pytest.fixture()
def zero_gateway(tmp_path: Path) -> Iterator[Teg]:
    gateway = CannedGateway(tmp_path / "gw")
    meters = gateway.bodies["/api/meters/aggregates"]
    for meter in ("site", "battery", "solar"):
        meters[meter]["instant_power"] = -0.0
    gateway.bodies["/api/operation"]["backup_reserve_percent"] = -0.0
    try:
        yield _teg_for(gateway, tmp_path)
    finally:
        gateway.close()


def test_json_output_has_no_negative_zero(zero_gateway: Teg) -> None:
    raw = zero_gateway("get", "meters/aggregates")
    assert raw.exit_code == 0, raw.stderr
    assert "-0.0" not in raw.stdout
    status = zero_gateway("--json", "status")
    assert status.exit_code == 0, status.stderr
    assert "-0.0" not in status.stdout
    data = json.loads(status.stdout)
    assert data["site_power_w"] == 0 and data["backup_reserve_raw_percent"] == 0
    watch = zero_gateway("--json", "watch", "--count", "2", "--interval", "0.1")
    assert watch.exit_code == 0, watch.stderr
    lines = watch.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        assert "-0.0" not in line and _negative_zeros(json.loads(line)) == []


def test_text_output_has_no_negative_zero(zero_gateway: Teg) -> None:
    for args in (["status"], ["watch", "--count", "1", "--interval", "0.1"]):
        result = zero_gateway(*args)
        assert result.exit_code == 0, result.stderr
        # -0, -0.0, -0.00 as a number of its own ("-0700", a UTC offset, is not one)
        assert not re.search(r"-0(\.0+)?(?![\d])", result.stdout), result.stdout
        assert "0.0% raw" in result.stdout  # the reserve, on the gateway's scale


def test_normalise_makes_every_negative_zero_positive() -> None:
    from tegkit.cli.output import normalise

    data = {"a": -0.0, "b": [-0.0, {"c": -0.0}], "d": -1.5, "e": "-0.0", "f": None, "g": 0}
    out = normalise(data)
    assert _negative_zeros(out) == []
    assert out == {"a": 0.0, "b": [0.0, {"c": 0.0}], "d": -1.5, "e": "-0.0", "f": None, "g": 0}


# --- control characters -----------------------------------------------------------------------

# Clear the screen, set the window title, a one-byte CSI, a right-to-left override.
ESCAPES = "Home\x1b[2J\x1b]0;owned\x07\x9b31m\u202ex"
RAW = ("\x1b", "\x07", "\x9b", "\u202e")
STATUS_READS = (
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/operation",
    "/api/site_info/site_name",
)


@pytest.fixture()
def escape_gateway(tmp_path: Path) -> Iterator[tuple[CannedGateway, Teg]]:
    gateway = CannedGateway(tmp_path / "gw")
    gateway.bodies["/api/site_info/site_name"]["site_name"] = ESCAPES
    try:
        yield (
            gateway,
            _teg_for(gateway, tmp_path),
        )
    finally:
        gateway.close()


def _no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, (char, text)


def test_control_characters_from_the_gateway_never_reach_the_terminal(
    escape_gateway: tuple[CannedGateway, Teg],
) -> None:
    _gateway, teg = escape_gateway
    for args in (["status"], ["watch", "--count", "1", "--interval", "0.1"]):
        result = teg(*args)
        assert result.exit_code == 0, result.stderr
        _no_raw_controls(result.stdout)
        assert "Home\\x1b[2J" in result.stdout  # shown, escaped, not acted on
    for args in (["--json", "status"], ["get", "site_info/site_name"]):
        result = teg(*args)
        assert result.exit_code == 0, result.stderr
        _no_raw_controls(result.stdout)
        assert ESCAPES in result.stdout or json.loads(result.stdout)["site_name"] == ESCAPES
    lines = teg("--json", "watch", "--count", "1").stdout
    _no_raw_controls(lines)
    assert json.loads(lines)["site_name"] == ESCAPES  # JSON readers get the value itself


def test_control_characters_in_a_gateway_error_never_reach_the_terminal(
    escape_gateway: tuple[CannedGateway, Teg],
) -> None:
    gateway, teg = escape_gateway
    gateway.bodies["/api/status"] = Answer(503, {"code": 503, "error": ESCAPES, "message": ESCAPES})
    for path in STATUS_READS:
        gateway.bodies[path] = Answer(503, {"code": 503, "error": ESCAPES})
    result = teg("status")
    assert result.exit_code != 0
    assert "Home\\x1b[2J" in result.stderr
    _no_raw_controls(result.stdout + result.stderr)


def test_an_oversized_answer_says_so_without_pointing_at_teg_get(tmp_path: Path) -> None:
    gateway = CannedGateway(tmp_path / "gw")
    gateway.bodies["/api/status"] = {"padding": "x" * (5 * 1024 * 1024)}  # past the 4 MiB cap
    try:
        teg = _teg_for(gateway, tmp_path)
        result = teg("get", "status")
    finally:
        gateway.close()
    assert result.exit_code != 0
    assert "answer too large" in result.stderr
    assert "teg get" not in result.stderr
    assert "Traceback" not in result.stderr
