"""Who may import whom inside tegkit: the table docs/architecture.md quotes, enforced.

Every module under src/tegkit is parsed (not imported) and each `import tegkit...` in it,
function-local and TYPE_CHECKING imports included, is checked against two rules:

1. A private module (a name starting with "_") is private to the package that holds it:
   tegkit.client._auth may be imported from tegkit.client only. The top-level ones
   (tegkit._body, tegkit._headers, tegkit._private_file) belong to the whole package, so
   every part of tegkit may import them.
2. A part imports only the parts its row of ALLOWED names (or EXCEPTIONS names for one module).

A part is a subpackage (client, sim, ...) or a top-level module (errors, percent, ...). The
facade tegkit/__init__.py is the part "tegkit"; no other part imports it, since importing it
loads the client.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import tegkit

SRC = Path(tegkit.__file__).parent.parent

#: Neutral shared modules: small facts and helpers any part may import.
SHARED = frozenset(
    {"errors", "percent", "tariff", "ownerapi", "logs", "_body", "_headers", "_private_file"}
)

#: part -> the other parts it may import. Data flows catalog -> models -> client -> cli and
#: monitor; the simulator and the cloud client sit beside the client and never import it.
ALLOWED: dict[str, frozenset[str]] = {
    # the shared modules import only each other (ownerapi: the modes from the vocabulary)
    "errors": frozenset(),
    "percent": frozenset(),
    "logs": frozenset(),
    "_headers": frozenset(),
    "_private_file": frozenset(),
    "_body": frozenset({"errors"}),
    "tariff": frozenset({"errors"}),
    "ownerapi": frozenset({"errors", "models"}),
    # the data flow
    "catalog": frozenset(),
    "models": frozenset({"catalog", "errors", "percent"}),
    "client": frozenset({"catalog", "models"}) | SHARED,
    "cloud": frozenset({"catalog", "models"}) | SHARED,
    "sim": frozenset({"catalog", "models"}) | SHARED,
    # the route of a change (local, or through the cloud) sits on both clients
    "route": frozenset({"catalog", "models", "client", "cloud"}) | SHARED,
    # automation carries out a plan through the route of a change, on both clients
    "automation": frozenset({"catalog", "models", "client", "cloud", "route"}) | SHARED,
    "monitor": frozenset({"catalog", "models", "client", "route", "automation"}) | SHARED,
    "cli": frozenset(
        {"catalog", "models", "client", "cloud", "monitor", "route", "sim", "automation"}
    )
    | SHARED,
    # the facade re-exports the client, the models and the errors
    "tegkit": frozenset({"client", "models", "errors", "percent"}),
}

#: module -> {part: why}: a module that may import a part its row does not list.
EXCEPTIONS: dict[str, dict[str, str]] = {
    "tegkit.automation.simulate": {
        "sim": "a plan is simulated on the same physics and firmware behaviour as `teg sim`",
    },
    "tegkit.monitor.backfill": {
        "cloud": "backfill fills unrecorded days from Tesla's calendar and backup history",
    },
    "tegkit.monitor.demo": {
        "sim": "the demo records a simulated gateway",
        "cloud": "the demo's dashboard changes go through the simulator's cloud",
    },
}


class Import(NamedTuple):
    importer: str  # tegkit.cli.app
    imported: str  # tegkit.client._auth
    line: int

    def __str__(self) -> str:
        path = self.importer.replace(".", "/")
        return f"{path}.py:{self.line}: imports {self.imported}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    """True when `name` (tegkit.x.y) is a module or package under src/."""
    base = SRC.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, module: str, is_package: bool) -> Iterator[Import]:
    """The tegkit modules `module` imports; `from a import b` counts as a.b when b is a module
    or a private name, else as a. Relative imports are resolved."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                private_name = alias.name.startswith("_") and not alias.name.startswith("__")
                whole = is_module(name) or private_name
                yield Import(module, name if whole else base, node.lineno)


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted((SRC / "tegkit").rglob("*.py")):
        module = module_name(path)
        source = path.read_text(encoding="utf-8")
        for imp in imports_of(source, module, path.name == "__init__.py"):
            if imp.imported == "tegkit" or imp.imported.startswith("tegkit."):
                found.append(imp)
    return found


def part_of(module: str) -> str:
    """tegkit.client._auth -> client; tegkit.errors -> errors; tegkit -> tegkit."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "tegkit"


def private_import(imp: Import) -> bool:
    """True when `imp` reaches a private module (or name) from outside its package."""
    parts = imp.imported.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            owner = ".".join(parts[:i])  # the package the private name belongs to
            return not (imp.importer == owner or imp.importer.startswith(owner + "."))
    return False


def layer_breach(imp: Import) -> bool:
    """True when `imp` crosses to a part the table does not allow."""
    mine, theirs = part_of(imp.importer), part_of(imp.imported)
    if mine == theirs:
        return False
    return theirs not in ALLOWED[mine] and theirs not in EXCEPTIONS.get(imp.importer, {})


# --- the rules on the code ------------------------------------------------------------------


def test_no_module_imports_another_packages_private_module() -> None:
    offenders = sorted({str(imp) for imp in all_imports() if private_import(imp)})
    assert offenders == [], "import the package's public API instead:\n" + "\n".join(offenders)


def test_every_import_follows_the_table() -> None:
    offenders = sorted({str(imp) for imp in all_imports() if layer_breach(imp)})
    assert offenders == [], "not allowed by ALLOWED in tests/test_layers.py:\n" + "\n".join(
        offenders
    )


def test_the_simulator_never_imports_the_client_or_what_is_built_on_it() -> None:
    """Data flows one way: the simulator is a gateway, not a user of the client."""
    forbidden = {"client", "cloud", "cli", "monitor", "tegkit"}
    offenders = [
        str(imp)
        for imp in all_imports()
        if part_of(imp.importer) == "sim" and part_of(imp.imported) in forbidden
    ]
    assert offenders == []
    assert not forbidden & ALLOWED["sim"]


def test_every_part_has_a_row() -> None:
    parts = {part_of(module_name(path)) for path in (SRC / "tegkit").rglob("*.py")}
    assert parts == set(ALLOWED), "add the new part to ALLOWED (and docs/architecture.md)"
    assert all(module.startswith("tegkit.") and is_module(module) for module in EXCEPTIONS)


def test_the_table_has_no_cycle() -> None:
    """Each part can be built on the ones before it: the allowed imports form no loop."""
    done: set[str] = set()

    def visit(part: str, path: tuple[str, ...]) -> None:
        assert part not in path, " -> ".join((*path, part))
        if part not in done:
            for other in ALLOWED[part]:
                visit(other, (*path, part))
            done.add(part)

    for part in ALLOWED:
        visit(part, ())


# --- the checks themselves catch what they are for ------------------------------------------


def _scan(source: str, module: str = "tegkit.cli.example") -> list[Import]:
    return [i for i in imports_of(source, module, False) if i.imported.startswith("tegkit")]


def test_the_scan_resolves_submodules_names_and_relative_imports() -> None:
    source = (
        "import tegkit.client\n"
        "from tegkit import percent, __version__\n"
        "from tegkit.client import Gateway\n"
        "def later():\n"
        "    from ..client import _auth\n"
    )
    assert [i.imported for i in _scan(source)] == [
        "tegkit.client",
        "tegkit.percent",
        "tegkit",
        "tegkit.client",
        "tegkit.client._auth",
    ]


def test_a_private_module_is_private_to_its_package() -> None:
    def private(source: str, module: str) -> list[bool]:
        return [private_import(i) for i in _scan(source, module)]

    assert private("from tegkit.client._auth import SessionFile", "tegkit.cli.app") == [True]
    assert private("from tegkit.client._transport import Reply", "tegkit.client._auth") == [False]
    assert private("from tegkit.client import _sync", "tegkit.monitor.poller") == [True]
    assert private("from tegkit.models.live import _helper", "tegkit.cli.status") == [True]
    assert private("from tegkit.monitor.store._sql import SqlStore", "tegkit.monitor.web") == [True]
    assert private("from tegkit.monitor.store import _sql", "tegkit.monitor.store.sqlite") == [
        False
    ]
    # The top-level private modules belong to the whole package.
    assert private("from tegkit._body import read_capped", "tegkit.sim.server") == [False]


def test_a_breach_names_the_module_and_the_import() -> None:
    (imp,) = _scan("from tegkit.client import Gateway\n", "tegkit.sim.server")
    assert layer_breach(imp)
    assert str(imp) == "tegkit/sim/server.py:1: imports tegkit.client"
    (imp,) = _scan("from tegkit.cli.app import Settings\n", "tegkit.monitor.poller")
    assert layer_breach(imp)
    (imp,) = _scan("from tegkit.cli.app import Settings\n", "tegkit.cli.monitor")
    assert not layer_breach(imp)  # the command line's own part
    (imp,) = _scan("from tegkit import Gateway\n", "tegkit.monitor.poller")
    assert layer_breach(imp)  # the facade, not the client
