"""The simulated gateway: `Simulator` serves the local API, the Owner API and a control API.

Imported lazily, so `tegkit.sim.physics` and friends load without aiohttp's server parts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tegkit.sim._runner import Simulator


def __getattr__(name: str) -> Any:
    if name == "Simulator":
        from tegkit.sim._runner import Simulator

        return Simulator
    raise AttributeError(f"module 'tegkit.sim' has no attribute {name!r}")


__all__ = ["Simulator"]
