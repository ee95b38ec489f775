"""The running monitor: one poller per gateway, the store, and the HTTP server, together.

async with Monitor([GatewayTarget("home", "https://192.168.91.1", password=...,
                                  pin="9f86d0...")], db="monitor.db") as monitor:
    print(monitor.url)
    await monitor.wait()

A fleet gives each gateway its own poll settings, tariff and labels
(`Monitor(gateways=[FleetGateway(...)])`), and the gateways may change while it runs:
`await monitor.set_gateways(new)` starts the new ones, stops the removed ones and restarts
the changed ones; the others go on polling on their schedule (see `set_gateways`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web

from tegkit.automation.plan import Plan
from tegkit.monitor.alerts import AlertBook, AlertConfig
from tegkit.monitor.auth import ControlAuth
from tegkit.monitor.automation import GatewayPlan
from tegkit.monitor.clock import ReadingClock
from tegkit.monitor.edge import EdgeSite, HostCheck, ServerLimits
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.live import GatewayLive, LiveState
from tegkit.monitor.mqtt.bridge import MqttBridge, MqttSettings
from tegkit.monitor.poller import GatewayTarget, Poller, PollerConfig
from tegkit.monitor.readings import RetentionPolicy
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.monitor.web import EDGE, WebContext, create_app
from tegkit.tariff import Tariff

log = logging.getLogger(__name__)
__all__ = ["DEFAULT_LISTEN", "FleetChange", "FleetGateway", "GatewayTarget", "Monitor"]

DEFAULT_LISTEN = ("127.0.0.1", 8675)
#: a failed poller is restarted after this many seconds, doubling up to the second figure.
RESTART_BACKOFF_S = (1.0, 60.0)
#: how often (real seconds) the store drops what the retention policy no longer keeps.
RETENTION_EVERY_S = 6 * 3600.0
#: from this many gateways on, their first polls are spread over one fast interval
SPREAD_START_MIN_GATEWAYS = 20
#: at shutdown, webhook deliveries still pending get this long (real seconds) to finish
ALERT_GRACE_S = 3.0


@dataclass(frozen=True, slots=True)
class FleetChange:
    """What `set_gateways` did: gateway names added, removed, restarted and updated in place
    (a new tariff or labels only: the poller goes on)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    updated: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.restarted or self.updated)

    def describe(self) -> str:
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("added", self.added),
                ("removed", self.removed),
                ("restarted", self.restarted),
                ("updated", self.updated),
            )
            if names
        ]
        return "; ".join(parts) or "no change"


class Monitor:
    """Starts pollers, store and web server on `start()`; `close()` flushes and stops them.

    The gateways are `targets` (every one on `config` and `tariff`) or `gateways` (each
    with its own `PollerConfig`, tariff and labels), not both. A monitor without gateways
    refuses to start unless `allow_empty` (its gateways come later through `set_gateways`).

    `clock` stamps readings (epoch s; by default a `ReadingClock`, which never runs
    backwards); `stale_after_s` defaults to three fast intervals (at least 15 s) on that
    clock. A poller that fails is restarted by its supervisor after `restart_backoff_s`
    (first, most) seconds, doubling; the time it was down is a gap.
    """

    def __init__(
        self,
        targets: Sequence[GatewayTarget] = (),
        db: str | Path | None = None,
        *,
        gateways: Sequence[FleetGateway] | None = None,
        allow_empty: bool = False,
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
        alerts: AlertConfig | None = None,
        metrics_per_gateway: bool | None = None,
    ) -> None:
        if targets and gateways is not None:
            raise ValueError("give the gateways as targets or as fleet gateways, not both")
        #: /metrics per gateway (True), per fleet label values only (False), by size (None)
        self.metrics_per_gateway = metrics_per_gateway
        self.config = config or PollerConfig()
        self.tariff = tariff  # of a gateway without a tariff of its own
        if gateways is None:  # the command line's path: one config and tariff for all
            gateways = [FleetGateway(t, self.config, tariff) for t in targets]
        if not gateways and not allow_empty:
            raise ValueError("watch at least one gateway")
        _check_names(gateways)
        names = [g.name for g in gateways]
        unknown = sorted(set(plans or {}) - set(names))
        if unknown:
            raise ValueError(f"plans for gateways not watched: {unknown} (watched: {names})")
        #: the gateways by name, in order: the ones polled once started (set_gateways)
        self.gateways: dict[str, FleetGateway] = {g.name: g for g in gateways}
        #: the owner's plan per gateway name (`teg monitor --plan`), run on its poller
        self.plans = dict(plans or {})
        self.plan_dry_run = plan_dry_run
        self.running_plans: dict[str, GatewayPlan] = {}
        #: the MQTT broker to publish to (`teg monitor --mqtt`), and its bridge once started
        self.mqtt = mqtt
        self.mqtt_bridge: MqttBridge | None = None
        self.db = db
        self.listen = listen
        self.hosts = HostCheck.for_listen(listen[0], allowed_hosts)
        self.limits = limits or ServerLimits()
        self.retention = retention
        self.tz = tz or _local_tz()
        stale = stale_after_s or max(15.0, 3 * self.config.fast_interval_s)
        clock = clock if clock is not None else ReadingClock()
        self.live = LiveState(clock=clock, stale_after_s=stale)
        self.control = ControlAuth(control_token) if control_token else None
        self.clock = clock
        #: the fleet file's alert rules against the live state (none: /api/alerts is empty)
        self.alert_book = AlertBook(alerts or AlertConfig(), self.live, labels_of=self._labels)
        #: drives the pollers' schedules and request budgets (tests pass the sim's clock)
        self.monotonic = monotonic
        self.restart_backoff_s = restart_backoff_s
        self.store: AsyncStore | None = None
        #: the running pollers by gateway name; the web context holds this same dict
        self.pollers: dict[str, Poller] = {}
        self.app: web.Application | None = None
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.site: EdgeSite | None = None
        self._service_tasks: list[asyncio.Task[None]] = []
        self._poll_tasks: dict[str, asyncio.Task[None]] = {}
        self._plan_tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._polling = False
        self._closed = False
        self._stopped = asyncio.Event()
        self._tasks_changed = asyncio.Event()
        # set_gateways and close one at a time: a reload never races the shutdown
        self._lock = asyncio.Lock()

    @property
    def targets(self) -> list[GatewayTarget]:
        """The watched gateways' targets, in order."""
        return [g.target for g in self.gateways.values()]

    @property
    def _tasks(self) -> list[asyncio.Task[None]]:
        """Every task the monitor runs: its services', the pollers' and the plans'."""
        return [*self._service_tasks, *self._poll_tasks.values(), *self._plan_tasks.values()]

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

    def _poller(self, gateway: FleetGateway, live: GatewayLive | None = None) -> Poller:
        """A new poller of `gateway`; `live` is its entry kept from a poller it replaces."""
        target = gateway.target
        if live is None:
            return Poller.for_target(
                target,
                self.live,
                self.store,
                gateway.config,
                clock=self.clock,
                monotonic=self.monotonic,
            )
        live.url = target.url
        live.tz_override = target.tz
        self.live.changed(live)
        return Poller(
            live,
            target.client(),
            self.live,
            self.store,
            gateway.config,
            clock=self.clock,
            monotonic=self.monotonic,
            cloud=target.cloud,
            via=target.via,
        )

    def _plan(self, name: str) -> GatewayPlan | None:
        plan = self.plans.get(name)
        if plan is None or name not in self.pollers:
            return None
        return GatewayPlan(
            plan,
            self.pollers[name],
            dry_run=self.plan_dry_run,
            tick_every_s=self.gateways[name].config.fast_interval_s,
        )

    async def start(self, poll: bool = True) -> None:
        """Open the store, make the clients and pollers, serve HTTP; with `poll`, poll."""
        async with self._lock:  # a set_gateways meanwhile waits for the pollers to exist
            await self._start(poll)

    async def _start(self, poll: bool) -> None:
        if self.db is not None:
            self.store = AsyncStore(await asyncio.to_thread(open_store, self.db))
        for gateway in self.gateways.values():
            self.pollers[gateway.name] = self._poller(gateway)
        for name in self.plans:
            running = self._plan(name)
            if running is not None:
                self.running_plans[name] = running
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
            gateways=self.gateways,
            alerts=self.alert_book,
            metrics_per_gateway=self.metrics_per_gateway,
        )
        self.app = create_app(ctx)
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        # timeouts and a cap on connections: see tegkit.monitor.edge
        self.site = EdgeSite(self._runner, self.listen[0], self.listen[1], self.limits, backlog=512)
        await self.site.start()
        self.app[EDGE].connections = self.site.connections
        self.port = self.site.port
        self._started = True
        if self.mqtt is not None:  # a broker's failure is the bridge's: polling goes on
            self.mqtt_bridge = MqttBridge(
                self.mqtt, self.live, self.pollers, dashboard_url=self.url
            )
            self._service_tasks.append(asyncio.create_task(self.mqtt_bridge.run(), name="mqtt"))
        if self.store is not None and self.retention is not None:
            self._service_tasks.append(
                asyncio.create_task(self._keep_retention(), name="retention")
            )
        await self.alert_book.start()  # its own tasks: a slow webhook never delays polling
        if poll:
            self.start_polling()

    def _labels(self, name: str) -> Mapping[str, str]:
        gateway = self.gateways.get(name)
        return gateway.labels if gateway is not None else {}

    def set_alerts(self, alerts: AlertConfig | None) -> None:
        """New alert rules and webhooks (a reloaded fleet file): alerts of rules still
        there stay open, those of removed rules resolve."""
        self.alert_book.set_config(alerts or AlertConfig())

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
        self._polling = True
        if len(self.pollers) >= SPREAD_START_MIN_GATEWAYS:  # not a thousand logins at once
            for i, poller in enumerate(self.pollers.values()):
                poller.spread_first_poll(i / len(self.pollers))
        for name in self.pollers:
            self._start_tasks(name)

    def _start_tasks(self, name: str) -> None:
        """The polling task of gateway `name` and its plan's (when polling has started)."""
        if not self._polling or self._closed:
            return
        poller = self.pollers[name]
        self._poll_tasks[name] = asyncio.create_task(self._supervise(poller), name=f"poll-{name}")
        plan = self.running_plans.get(name)
        if plan is not None:
            self._plan_tasks[name] = asyncio.create_task(
                self._supervise_plan(plan), name=f"plan-{name}"
            )
        self._tasks_changed.set()

    async def _stop_gateway(self, name: str, *, forget: bool) -> None:
        """Stop gateway `name`'s plan and poller (its readings flushed, its client closed);
        with `forget`, drop its live state (and so its metrics) and its MQTT entities."""
        tasks = [self._plan_tasks.pop(name, None), self._poll_tasks.pop(name, None)]
        self._tasks_changed.set()
        for task in tasks:
            if task is not None:
                task.cancel()
        for task in tasks:
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self.running_plans.pop(name, None)
        poller = self.pollers.pop(name, None)
        if poller is not None:
            with contextlib.suppress(Exception):
                await poller.flush()  # run() flushed already unless it never ran
            with contextlib.suppress(Exception):
                await poller.aclose()
        if forget:
            self.live.remove(name)
            if self.mqtt_bridge is not None:
                self.mqtt_bridge.forget(name)

    async def set_gateways(self, gateways: Sequence[FleetGateway]) -> FleetChange:
        """Watch exactly `gateways` from now on; returns what changed.

        By name: a new name gets a poller (and its plan, if `plans` has one); a name no
        longer given has its poller stopped (readings flushed, client closed) and its live
        state, metrics and MQTT entities dropped; a name whose target (address, trust,
        credentials, zone, cloud) or poll settings differ gets a new poller (client and
        budget) on the same live entry; a name whose tariff or labels alone differ keeps
        its poller. Every other gateway goes on polling without a pause.
        Calls are serialised with each other and with `close()`; after `close()` it does
        nothing. Before `start()` it only replaces the gateways `start()` will poll.
        Raises ValueError (nothing changed) for names given twice.
        """
        gateways = list(gateways)
        _check_names(gateways)
        async with self._lock:
            if self._closed:
                return FleetChange()
            new = {g.name: g for g in gateways}
            old = self.gateways
            removed = [n for n in old if n not in new]
            added = [n for n in new if n not in old]
            restarted = [n for n in new if n in old and _restart_needed(old[n], new[n])]
            updated = [n for n in new if n in old and n not in restarted and old[n] != new[n]]
            change = FleetChange(tuple(added), tuple(removed), tuple(restarted), tuple(updated))
            # the dict the web context holds, changed in place, in the new order
            self.gateways.clear()
            self.gateways.update(new)
            if not self._started:
                return change
            # together: every removed poller stops polling at once, before any flush (a
            # fleet worker giving gateways up must not poll one while another flushes)
            await asyncio.gather(*(self._stop_gateway(n, forget=True) for n in removed))
            for name in restarted:
                live = self.pollers[name].gateway
                await self._stop_gateway(name, forget=False)
                self._begin(new[name], live)
            for name in added:
                self._begin(new[name])
            for name in [n for n in new if n not in added and n not in restarted]:
                self.gateways[name] = await _keep_cloud(old[name], new[name])
            return change

    def _begin(self, gateway: FleetGateway, live: GatewayLive | None = None) -> None:
        """Start polling `gateway` (and its plan); a gateway whose client cannot be made is
        logged and left out, never the others stopped."""
        try:
            self.pollers[gateway.name] = self._poller(gateway, live)
        except Exception as exc:  # a certificate file that went away since it was checked
            log.error("%s: not started: %s: %s", gateway.name, type(exc).__name__, exc)
            self.gateways.pop(gateway.name, None)
            if live is not None:
                self.live.remove(gateway.name)
            return
        running = self._plan(gateway.name)
        if running is not None:
            self.running_plans[gateway.name] = running
        self._start_tasks(gateway.name)

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
        """Until `stop()` is called or a running task dies (a poller removed by
        `set_gateways` is not one that died)."""
        while not self._stopped.is_set():
            self._tasks_changed.clear()
            tasks = self._tasks
            waiters = [
                asyncio.ensure_future(self._stopped.wait()),
                asyncio.ensure_future(self._tasks_changed.wait()),
            ]
            try:
                await asyncio.wait([*waiters, *tasks], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
            running = set(self._tasks)
            ended = [t for t in tasks if t.done() and t in running]
            for task in ended:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if ended:
                return

    def stop(self) -> None:
        self._stopped.set()

    async def close(self) -> None:
        async with self._lock:  # a reload in progress finishes first; none starts after
            self._closed = True
            self._stopped.set()  # a wait() still running returns
            await self._close()

    async def _close(self) -> None:
        # evaluation stops; deliveries still pending get a short grace, then are dropped
        await self.alert_book.close(ALERT_GRACE_S)
        if self.mqtt_bridge is not None:  # "offline" published before the tasks stop
            await self.mqtt_bridge.close()
        tasks = self._tasks
        self._service_tasks.clear()
        self._poll_tasks.clear()
        self._plan_tasks.clear()
        self._tasks_changed.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
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


def _check_names(gateways: Sequence[FleetGateway]) -> None:
    names = [g.name for g in gateways]
    if len(set(names)) != len(names):
        raise ValueError(f"gateway names must differ: {names}")


def _without_cloud(gateway: FleetGateway) -> tuple[object, ...]:
    """What a poller is made of, but the cloud's client (made anew by every reload)."""
    cloud = gateway.target.cloud
    where = None if cloud is None else (cloud.site_id, cloud.battery_id)
    target = dataclasses.replace(gateway.target, cloud=None)
    return (target, where, gateway.cloud_profile, gateway.config)


def _restart_needed(old: FleetGateway, new: FleetGateway) -> bool:
    return _without_cloud(old) != _without_cloud(new)


async def _keep_cloud(old: FleetGateway, new: FleetGateway) -> FleetGateway:
    """`new` with the cloud of the running poller (`old`'s); a client made for `new` is
    closed, unused."""
    cloud_old, cloud_new = old.target.cloud, new.target.cloud
    if cloud_new is None or cloud_new is cloud_old:
        return new
    with contextlib.suppress(Exception):
        await cloud_new.client.close()
    return dataclasses.replace(new, target=dataclasses.replace(new.target, cloud=cloud_old))


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
