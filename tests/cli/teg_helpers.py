"""Helpers for the CLI tests: a simulator in a background thread and an in-process `teg`."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from tegkit.cli import main
from tegkit.sim import Simulator

TEG = str(Path(sys.executable).with_name("teg"))
SEED = 7
# Noon in the simulated site's time zone (America/Los_Angeles): the sun is up.
START = dt.datetime(2024, 6, 1, 19, 0, tzinfo=dt.UTC)


class SimThread:
    """A Simulator served by an event loop in a daemon thread."""

    def __init__(self, **options: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        options.setdefault("speed", 0)
        options.setdefault("seed", SEED)
        options.setdefault("start", START)
        self.sim: Simulator = self.run(self._start(options))

    async def _start(self, options: dict[str, Any]) -> Simulator:
        sim = Simulator(port=0, cloud_port=0, **options)
        await sim.start()
        return sim

    def run(self, coro: Any) -> Any:
        """Await a coroutine in the simulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call a plain function (a control method) in the simulator's loop."""
        done: Future[Any] = Future()

        def inside() -> None:
            try:
                done.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(inside)
        return done.result(timeout=60)

    def close(self) -> None:
        self.run(self.sim.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


def sim_env(sim: Simulator, config: Path) -> dict[str, str]:
    """What a user exports to reach the simulator: host, password, pin, a config file."""
    return {
        "TEG_HOST": sim.url,
        "TEG_PASSWORD": sim.password,
        "TEG_PIN": sim.fingerprint_sha256,
        "TEG_CONFIG": str(config),
    }


class Teg:
    """Runs `teg` in-process with CliRunner; stdout and stderr kept apart."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def __call__(self, *args: str, input: str | None = None, **extra_env: str) -> Result:
        clean = {k: None for k in os.environ if k.startswith("TEG_")}
        runner = CliRunner()
        return runner.invoke(
            main, list(args), env={**clean, **self.env, **extra_env}, input=input, prog_name="teg"
        )

    def json(self, *args: str, **extra_env: str) -> Any:
        result = self("--json", *args, **extra_env)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)


def write_history_db(path: Path, days: int, solar_peak_w: float, evening_w: float = 0.0) -> None:
    """A monitor database of gateway "home" from 1 July 2024 (Los Angeles), a reading a
    minute: 800 W of load (plus `evening_w` from 17:00 to 21:00), a solar arc peaking at
    `solar_peak_w`, and 10:00 to 12:00 of the first day missing, recorded as a gap."""
    import math
    from zoneinfo import ZoneInfo

    from tegkit.monitor.readings import Gap, Reading
    from tegkit.monitor.store import open_store

    start = dt.datetime(2024, 7, 1, tzinfo=ZoneInfo("America/Los_Angeles")).timestamp()
    store = open_store(path)
    try:
        store.write_readings(
            Reading(
                gateway="home",
                taken_at=start + 60 * k,
                load_w=800.0 + (evening_w if 17 <= (k // 60) % 24 < 21 else 0.0),
                solar_w=round(
                    max(0.0, solar_peak_w * math.sin(math.pi * ((k / 60) % 24 - 6) / 14))
                ),
                soe_raw_percent=50.0,
                grid_status="SystemGridConnected",
            )
            for k in range(days * 1440)
            if not 600 <= k < 720
        )
        store.write_gap(Gap("home", start + 600 * 60, start + 720 * 60, "monitor stopped"))
    finally:
        store.close()
