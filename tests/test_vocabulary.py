"""The vocabulary is written once: no other module spells out a grid status, an operation
mode, a counter or a power name, and every member says what it means.

The scan reads the package's own code: Python string constants (through `ast`, so comments
and docstrings that mention a value are prose, not a second list) and string literals in the
dashboard's JavaScript and HTML. The simulator's captures (sim/captures/*.json) are recorded
gateway answers, data rather than code, and are not scanned.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import tegkit
from tegkit.models import vocabulary as vocab
from tegkit.models.live import MetersAggregates
from tegkit.models.vocabulary import (
    COUNTER_NAMES,
    COUNTERS,
    GRID_STATUS_LABELS,
    MODE_LABELS,
    OFF_GRID_STATUSES,
    POWER_NAMES,
    GridStatusValue,
    MeterName,
    OperationMode,
    is_off_grid,
)
from tegkit.monitor.readings import EnergyBucket, HistoryPoint, Reading
from tegkit.monitor.store.sqlite import SqliteStore

PACKAGE = Path(tegkit.__file__).parent
VOCABULARY_FILE = Path(vocab.__file__)

#: every value of every scanned vocabulary, and which vocabulary it belongs to
VALUES: dict[str, str] = {
    **{str(v): "GridStatusValue" for v in GridStatusValue},
    **{str(v): "OperationMode" for v in OperationMode},
    **dict.fromkeys(COUNTER_NAMES, "COUNTER_NAMES"),
    **dict.fromkeys(POWER_NAMES, "POWER_NAMES"),
}

# Where a value may still be written, and why: (file under src/tegkit, enclosing definition
# as "Class.function" or the top-level name assigned, or "*" for the whole file, the value)
# -> reason. Each is a different fact that happens to use the same word, or history that
# must not follow the vocabulary when it grows.
_ISLAND_MODE = "island_mode 'backup' of /api/v2/islanding/mode: not an operation mode"
_OWNER_COMMAND = "the Owner API command named 'backup' (ownerapi.Command): not a mode"
_HISTORY_KIND = "kind=backup of the Owner API's calendar_history (the outage log): not a mode"
ALLOWED: dict[tuple[str, str, str], str] = {
    ("monitor/store/rollups.py", "BLOCK_COLUMNS_V1", name): (
        "block format 1 as written to disk: frozen, a grown vocabulary is a new format"
    )
    for name in (*POWER_NAMES, *COUNTER_NAMES)
} | {
    ("sim/actions.py", "island", "backup"): _ISLAND_MODE,
    ("sim/gateway.py", "GatewaySettings", "backup"): _ISLAND_MODE,
    ("models/setup.py", "IslandMode", "backup"): _ISLAND_MODE,
    ("ownerapi.py", "Command", "backup"): _OWNER_COMMAND,
    ("ownerapi.py", "COMMANDS", "backup"): _OWNER_COMMAND,
    ("ownerapi.py", "COMMAND_FIELDS", "backup"): _OWNER_COMMAND,
    ("ownerapi.py", "DEFAULT_SUCCESS_SHAPES", "backup"): _OWNER_COMMAND,
    ("ownerapi.py", "check_command_value", "backup"): _OWNER_COMMAND,
    # the cloud client, its CLI and the simulated cloud send or serve the commands by name
    ("cloud/_client.py", "*", "backup"): _OWNER_COMMAND,
    ("cli/cloud.py", "*", "backup"): _OWNER_COMMAND,
    ("sim/owner_api.py", "*", "backup"): _OWNER_COMMAND,
    ("sim/cloud_history.py", "KINDS", "backup"): _HISTORY_KIND,
    ("monitor/backfill.py", "_cloud_outages", "backup"): _HISTORY_KIND,
    ("sim/cloud_site.py", "*", "backup"): _HISTORY_KIND,
}


def _scopes(tree: ast.Module) -> dict[int, str]:
    """For each string constant node (by id), the name of what encloses it."""
    found: dict[int, str] = {}

    def visit(node: ast.AST, scope: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = scope
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = f"{scope}.{child.name}" if scope else child.name
            elif not scope and isinstance(child, ast.Assign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                names = [t.id for t in targets if isinstance(t, ast.Name)]
                inner = names[0] if names else scope
            elif isinstance(child, ast.Constant) and isinstance(child.value, str):
                found[id(child)] = scope
            visit(child, inner)

    visit(tree, "")
    return found


# Meter names are everyday words ("site", "load") that other vocabularies use one at a time,
# so single uses are not scanned; a list, set or dict naming two or more of them is a second
# list of the meters, and these are the ones that are something else.
METER_LISTS_ALLOWED: dict[tuple[str, str], str] = {
    ("sim/gateway.py", "SimulatedGateway.set_cts"): (
        "the types a CT can be wired as in the wizard (no load CT): not the meters"
    ),
    ("sim/cloud_site.py", "*"): "the Owner API's `components` (what the site has installed)",
    ("sim/owner_api.py", "*"): "the Owner API's `components` (what the site has installed)",
}


def _meter_lists() -> tuple[list[str], set[tuple[str, str]]]:
    meters = {str(m) for m in MeterName}
    offenders: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == VOCABULARY_FILE:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        scopes = _scopes(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple | ast.List | ast.Set):
                items = node.elts
            elif isinstance(node, ast.Dict):
                items = [k for k in node.keys if k is not None]
            else:
                continue
            named = [e for e in items if isinstance(e, ast.Constant) and e.value in meters]
            if len({e.value for e in named}) < 2:
                continue
            key = (rel, scopes[id(named[0])])
            whole_file = (rel, "*")
            if key in METER_LISTS_ALLOWED or whole_file in METER_LISTS_ALLOWED:
                used.add(key if key in METER_LISTS_ALLOWED else whole_file)
            else:
                offenders.append(f"{rel}:{node.lineno}: {[e.value for e in named]} in {key[1]!r}")
    return offenders, used


def _python_offenders() -> tuple[list[str], set[tuple[str, str, str]]]:
    offenders: list[str] = []
    used: set[tuple[str, str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == VOCABULARY_FILE:
            continue
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
        scopes = _scopes(tree)
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and node.value in VALUES):
                continue
            key = (rel, scopes.get(id(node), ""), node.value)
            whole_file = (rel, "*", node.value)
            if key in ALLOWED or whole_file in ALLOWED:
                used.add(key if key in ALLOWED else whole_file)
            else:
                offenders.append(
                    f"{rel}:{node.lineno}: {node.value!r} ({VALUES[node.value]}) in {key[1]!r}"
                )
    return offenders, used


def _web_offenders(paths: list[Path]) -> list[str]:
    """Values in quotes ("x", 'x', `x`) in JavaScript and HTML, attribute values included."""
    alternatives = "|".join(re.escape(v) for v in sorted(VALUES, key=len, reverse=True))
    quoted = re.compile(rf"""(["'`])({alternatives})\1""")
    offenders = []
    for path in paths:
        rel = path.relative_to(PACKAGE).as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            offenders += [f"{rel}:{number}: {m.group(2)!r}" for m in quoted.finditer(line)]
    return offenders


def test_no_python_module_spells_out_a_vocabulary_value() -> None:
    offenders, _ = _python_offenders()
    assert offenders == [], "import these from tegkit.models.vocabulary:\n" + "\n".join(offenders)


def test_no_python_module_lists_the_meters() -> None:
    offenders, _ = _meter_lists()
    assert offenders == [], "use MeterName (or POWER_NAMES, COUNTERS):\n" + "\n".join(offenders)


def test_every_allowed_exception_is_still_needed() -> None:
    # an exception whose value is gone must go too, or the list grows stale and hides misuse
    _, used = _python_offenders()
    assert sorted(set(ALLOWED) - used) == []
    _, used_lists = _meter_lists()
    assert sorted(set(METER_LISTS_ALLOWED) - used_lists) == []


def test_the_dashboard_does_not_spell_out_a_vocabulary_value() -> None:
    # the page takes labels and sets from /api/vocabulary
    paths = sorted([*PACKAGE.rglob("*.js"), *PACKAGE.rglob("*.html")])
    assert paths, "the dashboard's files are part of the package"
    offenders = _web_offenders(paths)
    assert offenders == [], "take these from /api/vocabulary:\n" + "\n".join(offenders)


def test_the_web_scan_finds_each_kind_of_quote(tmp_path: Path) -> None:
    # the scan above must be able to fail: one hit per quoting style, none for prose
    page = PACKAGE / "monitor" / "static" / "_probe.html"
    lines = [
        '<option value="backup">',
        "if (gs === 'SystemGridConnected') {}",
        "const k = `site_imported_wh`;",
        "<p>backup only, SystemGridConnected in prose, solar_w_x</p>",
    ]
    page.write_text("\n".join(lines), encoding="utf-8")
    try:
        found = _web_offenders([page])
    finally:
        page.unlink()
    assert [f.split(":")[1] for f in found] == ["1", "2", "3"]


def test_the_python_scan_finds_a_value_with_its_place() -> None:
    tree = ast.parse('class A:\n    def f(self):\n        return x == "backup"\nY = "z"\n')
    scopes = _scopes(tree)
    named = {n.value: scopes[id(n)] for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    assert named == {"backup": "A.f", "z": "Y"}


def _member_comments(source: str) -> dict[str, str]:
    """Each `NAME = ...` of a class body in vocabulary.py -> the `#:` line just above it."""
    lines = source.splitlines()
    out = {}
    for i, line in enumerate(lines):
        found = re.match(r"    ([A-Z][A-Z0-9_]*) = ", line)
        if found:
            above = lines[i - 1].strip() if i else ""
            out[found.group(1)] = above.removeprefix("#:").strip() if above.startswith("#:") else ""
    return out


@pytest.mark.parametrize("enum", [GridStatusValue, OperationMode, MeterName])
def test_every_member_has_a_one_line_meaning(enum: type) -> None:
    comments = _member_comments(VOCABULARY_FILE.read_text(encoding="utf-8"))
    assert enum.__doc__, f"{enum.__name__} says what it lists"
    for member in enum:
        assert comments.get(member.name), f"{enum.__name__}.{member.name} has no #: meaning"


def test_every_counter_and_label_is_complete() -> None:
    assert all(c.meaning.strip() for c in COUNTERS)
    assert len(set(COUNTER_NAMES)) == len(COUNTERS)
    assert set(GRID_STATUS_LABELS) == set(GridStatusValue)
    assert set(MODE_LABELS) == set(OperationMode)
    assert set(GridStatusValue) >= OFF_GRID_STATUSES
    assert GridStatusValue.CONNECTED not in OFF_GRID_STATUSES


def test_the_typed_records_have_a_field_per_value() -> None:
    # typed structs must name their fields in code; this keeps them in step with the vocabulary
    assert set(Reading.__struct_fields__) >= {*POWER_NAMES, *COUNTER_NAMES}
    assert set(HistoryPoint.__struct_fields__) >= set(POWER_NAMES)
    assert set(EnergyBucket.__struct_fields__) >= set(COUNTER_NAMES)
    assert set(MetersAggregates.__struct_fields__) >= set(MeterName)


@pytest.mark.parametrize("status", list(GridStatusValue))
def test_the_store_derives_outages_from_the_vocabulary(
    tmp_path: Path, status: GridStatusValue
) -> None:
    """Connected, then `status`, then connected again: an outage exactly when the vocabulary
    calls `status` off grid (the store once missed SystemTransitionToGrid)."""
    store = SqliteStore(tmp_path / "m.db")
    try:
        statuses = [GridStatusValue.CONNECTED, status, GridStatusValue.CONNECTED]
        store.write_readings(
            [
                Reading(gateway="g", taken_at=1e9 + 5 * i, grid_status=s)
                for i, s in enumerate(statuses)
            ]
        )
        outages = [(o.start, o.end) for o in store.outages("g", 0.0, 2e9)]
    finally:
        store.close()
    off = is_off_grid(status)
    assert outages == ([(1e9 + 5, 1e9 + 10)] if off else [])
