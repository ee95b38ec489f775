"""A Simulator on its own event loop in a background thread, driven from any thread.

The pytest fixtures (tegkit.sim.pytest_plugin) hand tests one of these: a synchronous test
(requests, pypowerwall) and an asynchronous one (aiohttp on pytest-asyncio's loop) alike talk
to it over HTTPS, because it serves on a loop of its own that neither test blocks. Every
control method is a thin call into the Simulator's method of the same name, run on that loop
and waited for, so the simulator's state is only ever touched from its own thread.

`stop()` closes the ports, removes the simulator's temporary state directory, ends the loop
and joins the thread; a simulator still running when the interpreter exits is stopped then.
Each simulator makes its own certificate (about 9 ms of a start of about 20): two gateways
never share a fingerprint, as real ones do not, so a test of pinning one cannot pass by
meeting the other.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import datetime as dt
import inspect
import ssl
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from tegkit.errors import InvalidInputError
from tegkit.sim._runner import Simulator
from tegkit.sim.certs import DNS_NAMES

T = TypeVar("T")

#: where the simulated clock stands unless told otherwise: noon in Los Angeles on a June day,
#: so solar is up and every run of a test reads the same numbers
DEFAULT_START = dt.datetime(2024, 6, 1, 19, 0, tzinfo=dt.UTC)
_CALL_TIMEOUT_S = 60.0  # a control call or a start that takes longer is a hung simulator
_LIVE: weakref.WeakSet[ThreadedSimulator] = weakref.WeakSet()


class ThreadedSimulator:
    """A simulated gateway served from a background thread; see the module docstring.

    Options are the Simulator's, with test-friendly defaults: a standing clock (speed 0: it
    moves only by `advance` / `set_time`) at DEFAULT_START (a scenario's or a replayed dump's
    own start when one is given), seed 0 (the scenario's), and `faults` armed before the
    first request.
    """

    #: the name the gateway's certificate carries (as a real gateway's: teg, powerwall,
    #: powerpack): a client that verifies the certificate with `cafile` sends it (SNI)
    server_hostname = DNS_NAMES[0]

    def __init__(
        self,
        *,
        firmware: str | None = None,
        powerwalls: int = 2,
        scenario: str | Path | None = None,
        faults: Iterable[str | Mapping[str, Any]] = (),
        seed: int | None = None,
        speed: float = 0.0,
        start: dt.datetime | None = None,
        password: str | None = None,
        email: str = "owner@example.com",
        host: str = "127.0.0.1",
        cloud: bool = True,
        cert_loopback_names: bool = False,
        **simulator_options: Any,
    ) -> None:
        if host not in ("127.0.0.1", "::1"):
            raise InvalidInputError("host", "a loopback address: 127.0.0.1 or ::1", host)
        if isinstance(faults, str | Mapping):
            faults = [faults]  # one fault given by itself
        self._faults = [_fault(item, i) for i, item in enumerate(faults)]
        self._options: dict[str, Any] = {
            "firmware": firmware,
            "powerwalls": powerwalls,
            "scenario": scenario,
            "seed": seed,
            "speed": speed,
            # a scenario and a replayed dump start at their own instants
            "start": (
                start
                if start is not None or scenario or simulator_options.get("replay")
                else DEFAULT_START
            ),
            "password": password,
            "email": email,
            "host": host,
            "cloud_port": 0 if cloud else None,
            "cert_loopback_names": cert_loopback_names,
            **simulator_options,
        }
        self._sim: Simulator | None = None
        self._opening: concurrent.futures.Future[Simulator] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> ThreadedSimulator:
        """Start the loop thread and the simulator on it; on failure nothing is left running."""
        if self._thread is not None:
            raise RuntimeError("this simulator is already started")
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(loop,), name="tegkit-sim", daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()
        _LIVE.add(self)
        try:
            self._opening = asyncio.run_coroutine_threadsafe(self._open(), loop)
            self._sim = self._opening.result(_CALL_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Close the simulator (ports, connections, state directory), end its loop and join
        the thread. Safe to call twice, and on a simulator whose start failed."""
        loop, thread, sim = self._loop, self._thread, self._sim
        if loop is None or thread is None:
            return
        try:
            if sim is None and self._opening is not None and thread.is_alive():
                # Stopped while starting (an interrupt): let the start finish, then close
                # what it made, so no port or directory outlives us.
                try:
                    sim = self._opening.result(_CALL_TIMEOUT_S)
                except Exception:
                    sim = None  # the start failed, and _open closed what it had made
            if sim is not None and thread.is_alive():
                self._wait(sim.close())
        finally:
            self._sim = self._opening = None
            if thread.is_alive():
                loop.call_soon_threadsafe(loop.stop)
            thread.join(_CALL_TIMEOUT_S)
            self._loop = self._thread = None
            _LIVE.discard(self)
        if thread.is_alive():
            raise RuntimeError("the simulator's thread did not end")

    @property
    def running(self) -> bool:
        return self._sim is not None

    def __enter__(self) -> ThreadedSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _open(self) -> Simulator:
        sim = Simulator(**self._options)
        try:
            await sim.start()
            for kind, options in self._faults:
                await sim.inject_fault(kind, **options)
        except BaseException:
            await sim.close()
            raise
        return sim

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            # Whatever the simulator left (nothing, once closed) ends here, with the loop.
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def _wait(self, work: Awaitable[T]) -> T:
        """Run `work` on the simulator's loop and wait for its result (or its exception)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            if inspect.iscoroutine(work):
                work.close()  # never awaited: say nothing about it
            raise RuntimeError("the simulator is not running")
        if threading.get_ident() == thread.ident:
            raise RuntimeError("called from the simulator's own thread: await its methods")

        async def run() -> T:
            return await work

        return asyncio.run_coroutine_threadsafe(run(), loop).result(_CALL_TIMEOUT_S)

    def call(self, fn: Callable[[Simulator], Any]) -> Any:
        """`fn(simulator)` run on the simulator's thread (awaited when it returns an
        awaitable): the way to reach any Simulator method or attribute safely."""

        async def run() -> Any:
            result = fn(self.simulator)
            return await result if inspect.isawaitable(result) else result

        return self._wait(run())

    @property
    def simulator(self) -> Simulator:
        """The Simulator itself; touch its state only through `call` (it lives on its
        own thread)."""
        if self._sim is None:
            raise RuntimeError("the simulator is not running")
        return self._sim

    # --- what clients need (fixed once started) ---------------------------------------------

    @property
    def url(self) -> str:
        """https://127.0.0.1:PORT: the gateway's local API (and the control API under /sim)."""
        return self.simulator.url

    @property
    def host(self) -> str:
        return self.simulator.host

    @property
    def port(self) -> int:
        return self.simulator.port

    @property
    def address(self) -> str:
        """host:port, as clients that take a host with a port want it (pypowerwall)."""
        return self.url.removeprefix("https://")

    @property
    def cloud_url(self) -> str:
        """The simulated Owner API (Tesla's cloud, HTTP/2); ValueError when started without."""
        if not self.simulator.cloud_port:
            raise ValueError("cloud_url: this simulator was started with cloud=False")
        return self.simulator.cloud_url

    @property
    def password(self) -> str:
        return self.simulator.password

    @property
    def email(self) -> str:
        return self.simulator.email

    @property
    def cafile(self) -> Path:
        """The certificate (PEM) that verifies both the gateway and the cloud port."""
        return self.simulator.cafile

    @property
    def fingerprint_sha256(self) -> str:
        """SHA-256 of the gateway certificate (lowercase hex), for clients that pin it."""
        return str(self.call(lambda sim: sim.fingerprint_sha256))

    @property
    def control_url(self) -> str:
        """The control API's base URL (GET {control_url}/state, POST {control_url}/advance...)."""
        return self.url + "/sim"

    @property
    def control_token(self) -> str:
        return self.simulator.control_token

    @property
    def control_headers(self) -> dict[str, str]:
        """The header the control API wants: Authorization: Bearer <control token>."""
        return {"Authorization": f"Bearer {self.control_token}"}

    @property
    def state_dir(self) -> Path:
        """The simulator's temporary directory (certificates); removed by `stop()`."""
        return self.simulator.state_dir

    def ssl_context(self) -> ssl.SSLContext:
        """A client context trusting `cafile`; connect with server_hostname=`server_hostname`
        (aiohttp: `ssl=ctx, server_hostname=sim.server_hostname`)."""
        return ssl.create_default_context(cafile=str(self.cafile))

    # --- the clock ------------------------------------------------------------------------

    @property
    def now(self) -> dt.datetime:
        """The simulated clock."""
        now: dt.datetime = self.call(lambda sim: sim.now)
        return now

    def advance(self, seconds: float) -> None:
        """Move the simulated clock by exactly `seconds` (physics and scenario events follow)."""
        self.call(lambda sim: sim.advance(seconds))

    def set_time(self, at: dt.datetime) -> None:
        """Jump the simulated clock forward to `at` (an aware datetime)."""
        self.call(lambda sim: sim.set_time(at))

    def set_speed(self, speed: float) -> None:
        """Simulated seconds per real second from now on (0: the clock stands)."""
        self.call(lambda sim: sim.set_speed(speed))

    # --- control: thin calls into the Simulator -------------------------------------------

    def state(self) -> dict[str, Any]:
        """What GET /sim/state answers: clock, mode, powers, energy, faults..."""
        state: dict[str, Any] = self.call(lambda sim: sim.state())
        return state

    def inject_fault(self, kind: str, **options: Any) -> dict[str, Any]:
        """Arm a fault: latency (latency_ms), drop, rate_limit, status (status=502/503), each
        with count / probability / path_prefix; or expire_sessions, rotate_cert, reboot."""
        fault: dict[str, Any] = self.call(lambda sim: sim.inject_fault(kind, **options))
        return fault

    def clear_faults(self) -> None:
        self.call(lambda sim: sim.clear_faults())

    def start_outage(self, minutes: float | None = None) -> None:
        """The grid goes down; with `minutes` it comes back after that much simulated time."""
        self.call(lambda sim: sim.start_outage(minutes))

    def end_outage(self) -> None:
        self.call(lambda sim: sim.end_outage())

    def stop_sitemaster(self) -> None:
        self.call(lambda sim: sim.stop_sitemaster())

    def run_sitemaster(self) -> None:
        self.call(lambda sim: sim.run_sitemaster())

    def override_solar(self, power_w: float | None) -> None:
        """Hold solar at `power_w` (None: back to the modelled sun)."""
        self.call(lambda sim: sim.override_solar(power_w))

    def override_load(self, power_w: float | None) -> None:
        """Hold the home's load at `power_w` (None: back to the modelled load)."""
        self.call(lambda sim: sim.override_load(power_w))

    def __repr__(self) -> str:
        where = self.url if self._sim is not None else "not running"
        return f"<ThreadedSimulator {where}>"


def _fault(item: str | Mapping[str, Any], index: int) -> tuple[str, dict[str, Any]]:
    """A fault to arm at start: a kind ("drop") or a mapping with "kind" and its options."""
    if isinstance(item, str):
        return item, {}
    if isinstance(item, Mapping) and isinstance(item.get("kind"), str):
        options = dict(item)
        return str(options.pop("kind")), options
    raise InvalidInputError(
        f"faults[{index}]", 'a fault kind or a mapping with "kind" and its options', item
    )


@atexit.register
def _stop_the_rest() -> None:
    """A simulator its owner never stopped (an interpreter leaving early) is stopped here."""
    for sim in list(_LIVE):
        with contextlib.suppress(Exception):  # leaving anyway: the others still get a turn
            sim.stop()


__all__ = ["DEFAULT_START", "ThreadedSimulator"]
