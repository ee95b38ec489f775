"""The running monitor: one poller per gateway, the store, and the HTTP server, together.

async with Monitor([GatewayTarget("home", "https://192.168.91.1", password=...,
                                  pin="9f86d0...")], db="monitor.db") as monitor:
    print(monitor.url)
    await monitor.wait()
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tegkit.automation.plan import Plan
from tegkit.monitor.auth import ControlAuth
from tegkit.monitor.automation import GatewayPlan
from tegkit.monitor.clock import ReadingClock
from tegkit.monitor.edge import EdgeSite, HostCheck, ServerLimits
from tegkit.monitor.live import LiveState
from tegkit.monitor.mqtt.bridge import MqttBridge, MqttSettings
from tegkit.monitor.poller import GatewayTarget, Poller, PollerConfig
from tegkit.monitor.readings import RetentionPolicy
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.monitor.web import EDGE, WebContext, create_app
from tegkit.tariff import Tariff

log = logging.getLogger(__name__)
__all__ = ["DEFAULT_LISTEN", "GatewayTarget", "Monitor"]

DEFAULT_LISTEN = ("127.0.0.1", 8675)
#: a failed poller is restarted after this many seconds, doubling up to the second figure.
RESTART_BACKOFF_S = (1.0, 60.0)
#: how often (real seconds) the store drops what the retention policy no longer keeps.
RETENTION_EVERY_S = 6 * 3600.0


class Monitor:
    """Starts pollers, store and web server on `start()`; `close()` flushes and stops them.

    `clock` stamps readings (epoch s; by default a `ReadingClock`, which never runs
    backwards); `stale_after_s` defaults to three fast intervals (at least 15 s) on that
    clock. A poller that fails is restarted by its supervisor after `restart_backoff_s`
    (first, most) seconds, doubling; the time it was down is a gap.
    """

    def __init__(
        self,
        targets: Sequence[GatewayTarget],
        db: str | Path | None = None,
        *,
        listen: tuple[str, int] = DEFAULT_LISTEN,
        tariff: Tariff | None = None,
        tz: dt.tzinfo | None = None,
        control_token: str | None = None,
        config: PollerConfig | None = None,
        clock: Callable[[], float] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        stale_after_s: float | None = None,
        restart_backoff_s: tuple[float, float] = RESTART_BACKOFF_S,
        retention: RetentionPolicy | None = RetentionPolicy(),  # noqa: B008 (frozen)
        allowed_hosts: Sequence[str] = (),
        limits: ServerLimits | None = None,
        plans: Mapping[str, Plan] | None = None,
        plan_dry_run: bool = False,
        mqtt: MqttSettings | None = None,
    ) -> None:
        if not targets:
            raise ValueError("watch at least one gateway")
        names = [t.name for t in targets]
        if len(set(names)) != len(names):
            raise ValueError(f"gateway names must differ: {names}")
        unknown = sorted(set(plans or {}) - set(names))
        if unknown:
            raise ValueError(f"plans for gateways not watched: {unknown} (watched: {names})")
        #: the owner's plan per gateway name (`teg monitor --plan`), run on its poller
        self.plans = dict(plans or {})
        self.plan_dry_run = plan_dry_run
        self.running_plans: dict[str, GatewayPlan] = {}
        #: the MQTT broker to publish to (`teg monitor --mqtt`), and its bridge once started
        self.mqtt = mqtt
        self.mqtt_bridge: MqttBridge | None = None
        self.targets = list(targets)
        self.db = db
        self.listen = listen
        self.hosts = HostCheck.for_listen(listen[0], allowed_hosts)
        self.limits = limits or ServerLimits()
        self.tariff = tariff
        self.retention = retention
        self.tz = tz or _local_tz()
        self.config = config or PollerConfig()
        stale = stale_after_s or max(15.0, 3 * self.config.fast_interval_s)
        clock = clock if clock is not None else ReadingClock()
        self.live = LiveState(clock=clock, stale_after_s=stale)
        self.control = ControlAuth(control_token) if control_token else None
        self.clock = clock
        #: drives the pollers' schedules and request budgets (tests pass the sim's clock)
        self.monotonic = monotonic
        self.restart_backoff_s = restart_backoff_s
        self.store: AsyncStore | None = None
        self.pollers: dict[str, Poller] = {}
        self.app: web.Application | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.site: EdgeSite | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()

    @property
    def url(self) -> str:
        host = self.listen[0]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/"

    async def __aenter__(self) -> Monitor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self, poll: bool = True) -> None:
        """Open the store, make the clients and pollers, serve HTTP; with `poll`, poll."""
        if self.db is not None:
            self.store = AsyncStore(await asyncio.to_thread(open_store, self.db))
        for target in self.targets:
            self.pollers[target.name] = Poller.for_target(
                target,
                self.live,
                self.store,
                self.config,
                clock=self.clock,
                monotonic=self.monotonic,
            )
        for name, plan in self.plans.items():
            self.running_plans[name] = GatewayPlan(
                plan,
                self.pollers[name],
                dry_run=self.plan_dry_run,
                tick_every_s=self.config.fast_interval_s,
            )
        ctx = WebContext(
            live=self.live,
            store=self.store,
            tz=self.tz,
            tariff=self.tariff,
            pollers=self.pollers,
            control=self.control,
            hosts=self.hosts,
            limits=self.limits,
            plans=self.running_plans,
        )
        self.app = create_app(ctx)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # timeouts and a cap on connections: see tegkit.monitor.edge
        self.site = EdgeSite(self._runner, self.listen[0], self.listen[1], self.limits, backlog=512)
        await self.site.start()
        self.app[EDGE].connections = self.site.connections
        self.port = self.site.port
        if self.mqtt is not None:  # a broker's failure is the bridge's: polling goes on
            self.mqtt_bridge = MqttBridge(
                self.mqtt, self.live, self.pollers, dashboard_url=self.url
            )
            self._tasks.append(asyncio.create_task(self.mqtt_bridge.run(), name="mqtt"))
        if self.store is not None and self.retention is not None:
            self._tasks.append(asyncio.create_task(self._keep_retention(), name="retention"))
        if poll:
            self.start_polling()

    async def _keep_retention(self) -> None:
        """Apply the retention policy at start and then every few hours, until cancelled."""
        assert self.store is not None and self.retention is not None
        while True:
            try:
                deleted = await self.store.retention(self.retention, self.clock())
                if any(deleted.values()):
                    log.info("retention: deleted %s", deleted)
            except Exception:  # a failed clean-up must not stop the recording
                log.exception("retention failed; trying again later")
            await asyncio.sleep(RETENTION_EVERY_S)

    def start_polling(self) -> None:
        """Start one polling task per gateway (after `start(poll=False)`)."""
        for poller in self.pollers.values():
            task = asyncio.create_task(self._supervise(poller), name=f"poll-{poller.name}")
            self._tasks.append(task)
        for plan in self.running_plans.values():
            task = asyncio.create_task(self._supervise_plan(plan), name=f"plan-{plan.name}")
            self._tasks.append(task)

    async def _supervise_plan(self, plan: GatewayPlan) -> None:
        """Run a gateway's plan until cancelled; a failure is logged and the plan restarted
        (its runner catches up on what it missed meanwhile), never the monitor stopped."""
        first_s, most_s = self.restart_backoff_s
        wait_s = first_s
        while True:
            try:
                await plan.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # one plan's failure is contained
                log.error(
                    "%s: the plan failed (%s: %s); restarting it in %.1f s",
                    plan.name,
                    type(exc).__name__,
                    str(exc)[:200],
                    wait_s,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
            await asyncio.sleep(wait_s)
            wait_s = min(most_s, wait_s * 2)

    async def _supervise(self, poller: Poller) -> None:
        """Run `poller` until cancelled; restart it after a failure, backing off.

        One gateway's failing poller never stops the others or the process: its failure is
        logged, recorded as a gap ("poller failed: ...") and the poller restarted after a
        wait that doubles from `restart_backoff_s[0]` to `restart_backoff_s[1]` (reset once
        it has run for that long without failing).
        """
        first_s, most_s = self.restart_backoff_s
        wait_s = first_s
        while True:
            started = time.monotonic()
            failure: BaseException
            try:
                await poller.run()
                return
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise
                failure = exc  # a library's stray cancellation must not end the polling
            except Exception as exc:  # any failure of one poller is contained
                failure = exc
            if time.monotonic() - started >= most_s:
                wait_s = first_s
            log.error(
                "%s: the poller failed (%s: %s); restarting it in %.1f s",
                poller.name,
                type(failure).__name__,
                str(failure)[:200],
                wait_s,
                exc_info=log.isEnabledFor(logging.DEBUG),
            )
            await poller.crashed(failure)
            await asyncio.sleep(wait_s)
            wait_s = min(most_s, wait_s * 2)

    async def wait(self) -> None:
        """Until `stop()` is called or a poller task dies."""
        stopped = asyncio.ensure_future(self._stopped.wait())
        try:
            await asyncio.wait([stopped, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        for task in self._tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]

    def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        if self.mqtt_bridge is not None:  # "offline" published before the tasks stop
            await self.mqtt_bridge.close()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for poller in self.pollers.values():
            with contextlib.suppress(Exception):
                await poller.flush()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for poller in self.pollers.values():
            await poller.aclose()  # its client
        if self.store is not None:
            await self.store.aclose()
            self.store = None


def _local_tz() -> dt.tzinfo:
    """This machine's zone, by IANA name where it can be found (the dashboard needs one)."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    with contextlib.suppress(OSError):
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    for name in candidates:
        if name:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(name)
    return dt.datetime.now().astimezone().tzinfo or dt.UTC
