"""The public surface: __all__ lists exactly what the package re-exports, and it imports."""

from __future__ import annotations

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


def test_simulator_does_not_import_the_client() -> None:
    """Data flows one way: the simulator's modules never import tegkit.client or tegkit.cloud."""
    import ast
    from pathlib import Path

    sim_dir = Path(tegkit.__file__).parent / "sim"
    offenders = []
    for path in sim_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.startswith(("tegkit.client", "tegkit.cloud", "tegkit.cli")):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
