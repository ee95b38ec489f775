"""pytest fixtures for a simulated Tesla Energy Gateway: installing tegkit is enough.

Registered through the `pytest11` entry point, so every pytest run where tegkit is installed
has them:

- `teg_sim`: a started simulated gateway over HTTPS on 127.0.0.1 (a ThreadedSimulator: url,
  port, password, cafile, fingerprint_sha256, control API, clock), stopped after the test.
  Options through the marker `@pytest.mark.teg_sim(firmware="23.44", powerwalls=1, ...)` or
  indirect parametrisation with a dict of options.
- `teg_sim_factory`: a callable taking the same options, returning a started simulator; every
  one it started is stopped after the test.
- `teg_sim_session` / `teg_sim_factory_session`: the same, shared by the whole session.

The simulator serves from a thread of its own, so synchronous tests (requests) and
asynchronous ones (aiohttp, pytest-asyncio) alike reach it. Stopping closes its ports, removes
its temporary directory and joins its thread, also when the test failed or the run was
interrupted. This module is imported by every pytest run that has tegkit installed: the
simulator itself is imported only when a fixture is first used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tegkit.sim.threaded import ThreadedSimulator

MARKER = "teg_sim"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): options for the teg_sim fixture's simulated gateway "
        "(firmware, powerwalls, scenario, faults, seed, speed, start, password, ...)",
    )


class TegSimFactory:
    """Start simulated gateways (`factory(firmware="23.44", powerwalls=1)`); `stop_all()`
    stops every one it started (the fixtures call it at teardown)."""

    def __init__(self) -> None:
        self.started: list[ThreadedSimulator] = []

    def __call__(self, **options: Any) -> ThreadedSimulator:
        from tegkit.sim.threaded import ThreadedSimulator  # the simulator loads on first use

        sim = ThreadedSimulator(**options)
        self.started.append(sim)
        return sim.start()

    def stop_all(self) -> None:
        """Stop them all, newest first; the first error is raised once all were tried."""
        errors: list[BaseException] = []
        while self.started:
            try:
                self.started.pop().stop()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


def _factory() -> Iterator[TegSimFactory]:
    factory = TegSimFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The teg_sim marker's options, then an indirect parameter's (a dict) over them."""
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker(MARKER)
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{MARKER}: options by name only, e.g. firmware='23.44'"
            )
        options.update(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        if not isinstance(param, dict):
            raise pytest.UsageError(
                f"teg_sim parametrised indirectly: a dict of options, got {param!r}"
            )
        options.update(param)
    return options


@pytest.fixture
def teg_sim_factory() -> Iterator[TegSimFactory]:
    """Start simulated gateways with options; all are stopped after the test."""
    yield from _factory()


@pytest.fixture(scope="session")
def teg_sim_factory_session() -> Iterator[TegSimFactory]:
    """As teg_sim_factory, stopped at the end of the session (for session fixtures)."""
    yield from _factory()


@pytest.fixture
def teg_sim(request: pytest.FixtureRequest, teg_sim_factory: TegSimFactory) -> ThreadedSimulator:
    """A started simulated gateway for one test (options: the teg_sim marker)."""
    return teg_sim_factory(**_options(request))


@pytest.fixture(scope="session")
def teg_sim_session(teg_sim_factory_session: TegSimFactory) -> ThreadedSimulator:
    """One simulated gateway for the whole session, default options; its clock, faults and
    settings carry over from test to test."""
    return teg_sim_factory_session()


__all__ = ["TegSimFactory"]
