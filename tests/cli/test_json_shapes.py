"""Golden shapes of --json output: keys (in order) and value types, units and scales named."""

from __future__ import annotations

from typing import Any

import pytest
from teg_helpers import Teg

from tegkit.sim import Simulator

OptStr = (str, type(None))
Num = (int, float)

SHAPES: dict[str, tuple[list[str], dict[str, Any]]] = {
    "cert show": (
        ["cert", "show", "--check"],
        {"profile": str, "host": str, "pin_sha256": str, "cafile": type(None), "insecure": bool,
         "presented_sha256": str, "matches": bool, "checked_at": str},
    ),
    "set reserve --dry-run": (
        ["set", "reserve", "20", "--dry-run"],
        {"dry_run": bool, "requests": list},
    ),
    "login": (["login"], {"host": str, "profile": str, "logged_in": bool, "session_file": str}),
    "logout": (
        ["logout"],
        {"host": str, "profile": str, "logged_in": bool, "ended_on_gateway": bool,
         "forgotten": list},
    ),
    "dump": (
        ["dump", "{tmp}/dump"],
        {"directory": str, "files": int, "errors": int, "skipped": int, "firmware_version": str},
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", SHAPES)
def test_json_shape(name: str, teg: Teg, tmp_path: Any) -> None:
    args, shape = SHAPES[name]
    data = teg.json(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert list(data) == list(shape)
    for key, kind in shape.items():
        assert isinstance(data[key], kind), (key, data[key])


def test_cert_show_values(teg: Teg, sim: Simulator) -> None:
    data = teg.json("cert", "show", "--check")
    assert data["pin_sha256"] == data["presented_sha256"] == sim.fingerprint_sha256
    assert data["matches"] is True and data["insecure"] is False


def test_endpoints_json_is_a_list_of_catalog_rows(teg: Teg) -> None:
    rows = teg.json("endpoints", "--api", "local")
    assert {"method", "path", "auth", "effect", "model", "live"} <= set(rows[0])
    assert all(row["api"] == "local" for row in rows)
