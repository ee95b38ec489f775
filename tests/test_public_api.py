"""The public surface: __all__ lists exactly what the package re-exports, and it imports."""

from __future__ import annotations

import json
from pathlib import Path

import tegkit
from tegkit import client, errors


def test_all_names_resolve() -> None:
    missing = [name for name in tegkit.__all__ if not hasattr(tegkit, name)]
    assert missing == []


def test_every_error_is_exported_and_rooted() -> None:
    for name in errors.__all__:
        assert name in tegkit.__all__, name
        cls = getattr(errors, name)
        assert issubclass(cls, tegkit.GatewayError)


def test_timeout_is_also_an_asyncio_timeout() -> None:
    import asyncio

    assert issubclass(tegkit.GatewayTimeoutError, asyncio.TimeoutError)


def test_client_surface_is_reexported() -> None:
    for name in ("Gateway", "SyncGateway", "PinnedCertificate", "VerifyCertificate", "Insecure"):
        assert getattr(tegkit, name) is getattr(client, name)


# Which module may import which (the simulator never imports the client): tests/test_layers.py


def test_a_kept_session_is_read_through_the_public_api(tmp_path: Path) -> None:
    """The CLI and the monitor ask the client whether a login is kept, without its insides."""
    path = tmp_path / "session.json"
    assert client.has_kept_session(path, "teg") is False  # no file yet
    url = str(client.gateway_url("teg"))
    assert url == "https://teg/"
    path.write_text(json.dumps({"url": url, "token": "abc", "cookies": {}}))
    assert client.has_kept_session(path, "https://teg") is True
    assert client.has_kept_session(path, "powerwall") is False  # another gateway's session
    assert path.exists()  # not ours to judge or remove
    path.write_text(json.dumps({"url": url, "token": None, "cookies": {}}))
    assert client.has_kept_session(path, "teg") is False  # logged out: nothing kept
    path.write_text("{not json")
    assert client.has_kept_session(path, "teg") is False
    assert not path.exists()  # unusable: removed, as the client would


# Public names that two modules may both define, each with why. Keep this short: a second
# meaning for a name makes readers (and imports) guess which one they hold.
_SHARED_NAMES_ALLOWED: dict[str, str] = {}


def _public_definitions(tree: object) -> list[str]:
    """Top-level class names and capitalised aliases (X = ..., X: TypeAlias = ...) of a module."""
    import ast

    assert isinstance(tree, ast.Module)
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names.append(node.name)
        elif isinstance(node, ast.Assign):
            names += [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.append(node.target.id)
    # Constants (ALL_CAPS) and private names are not types; a class or alias starts upper-case.
    return [n for n in names if n[0].isupper() and not n.isupper()]


def test_each_public_type_name_has_one_meaning() -> None:
    """No two modules of tegkit define the same public class or type alias name."""
    import ast
    from collections import defaultdict
    from pathlib import Path

    package = Path(tegkit.__file__).parent
    where: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package).with_suffix("").as_posix().replace("/", ".")
        for name in _public_definitions(ast.parse(path.read_text(encoding="utf-8"))):
            where[name].append(module)
    shared = {
        name: modules
        for name, modules in where.items()
        if len(modules) > 1 and name not in _SHARED_NAMES_ALLOWED
    }
    assert shared == {}


def test_no_module_outside_the_command_line_imports_it() -> None:
    """The library never loads `tegkit.cli`: every other module is imported in a fresh
    interpreter (function-level imports are caught statically by tests/test_layers.py) and
    the command line package must not be among what they pulled in."""
    import pkgutil
    import subprocess
    import sys

    names = [
        info.name
        for info in pkgutil.walk_packages(tegkit.__path__, "tegkit.")
        if not info.name.startswith("tegkit.cli")
        and info.name != "tegkit.sim.__main__"  # runs `teg sim` when imported
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] == ['tegkit', 'cli']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert len(names) > 50  # the walk found the package
    assert done.stdout.strip() == "[]", done.stdout


def test_importing_the_package_or_the_pytest_plugin_loads_no_client() -> None:
    """Every pytest run where tegkit is installed imports its plugin: the client (aiohttp,
    cryptography) and the models load only when a name of theirs is first used."""
    import subprocess
    import sys

    probe = (
        "import sys, tegkit, tegkit.sim.pytest_plugin\n"
        "heavy = ('tegkit.client', 'tegkit.models', 'aiohttp')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "tegkit.Gateway\n"
        "print('tegkit.client' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split("\n")[:2] == ["[]", "True"]
