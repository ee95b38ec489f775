"""The monitor's HTTP server: dashboard, JSON API, event stream, health, metrics, controls.

Every live answer comes from the poller's `LiveState`; history, daily energy, outages,
gaps and events come from the store. Nothing here sends a request to a gateway except
the control endpoints, which exist only when the monitor was started with a control
token (otherwise they answer 404 like any unknown path). Query parameters and bodies are
checked at the edge: a bad one gets a 400 that names the field and what is allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from aiohttp import web

from tegkit import percent
from tegkit.errors import (
    GatewayError,
    InvalidInputError,
    PermissionDeniedError,
    RateLimitedError,
    RequestBudgetExceededError,
)
from tegkit.models.vocabulary import (
    COUNTERS,
    CUSTOMER_MODES,
    GRID_STATUS_LABELS,
    MODE_LABELS,
    POWER_NAMES,
    GridStatusValue,
    MeterName,
    OperationMode,
    is_off_grid,
)
from tegkit.monitor.alerts import AlertBook
from tegkit.monitor.auth import ControlAuth
from tegkit.monitor.automation import GatewayPlan
from tegkit.monitor.costs import daily_costs
from tegkit.monitor.edge import (
    SECURITY_HEADERS,
    SERVER_NAME,
    BadParameter,
    Connections,
    HostCheck,
    ServerLimits,
    decode_json,
    error_text,
)
from tegkit.monitor.fleet import FleetGateway
from tegkit.monitor.fleetview import fleet_document, fleet_labels
from tegkit.monitor.live import LiveState
from tegkit.monitor.metrics import CONTENT_TYPE, FleetLabels, MetricsPage
from tegkit.monitor.poller import Poller
from tegkit.monitor.sitetz import gateway_tz, tz_name
from tegkit.monitor.store import AsyncStore
from tegkit.tariff import Tariff

STATIC_DIR = Path(__file__).with_name("static")
MAX_POINTS = 2000
MAX_RANGE_S = 20 * 366 * 86400.0
MAX_DAYS = 3660
#: the times the API accepts: 1970-01-01T00:00:00Z .. 9999-12-30T00:00:00Z
MIN_TIME_S = 0.0
MAX_TIME_S = 253_402_128_000.0
MIN_DAY = dt.date(1970, 1, 1)
MAX_DAY = dt.date(9999, 12, 30)
#: a history step: whole seconds at least (the store snaps it up to one of its buckets)
MIN_STEP_S = 1.0
MAX_STEP_S = 366 * 86400.0
SSE_HEARTBEAT_S = 15.0
_JSON = "application/json"


@dataclass
class WebContext:
    """What the handlers read: live state, store, tariff and, with a token, the controls."""

    live: LiveState
    store: AsyncStore | None = None
    tz: dt.tzinfo = dt.UTC
    tariff: Tariff | None = None
    pollers: Mapping[str, Poller] = field(default_factory=dict)
    control: ControlAuth | None = None
    hosts: HostCheck = field(default_factory=HostCheck)
    limits: ServerLimits = field(default_factory=ServerLimits)
    #: the owner's plan of each gateway that has one (teg monitor --plan)
    plans: Mapping[str, GatewayPlan] = field(default_factory=dict)
    #: each watched gateway's fleet settings (its tariff, labels); the monitor's own dict
    gateways: Mapping[str, FleetGateway] = field(default_factory=dict)

    def tariff_for(self, gateway: str) -> Tariff | None:
        """The tariff of `gateway`: its own (a fleet file's), else the monitor's."""
        settings = self.gateways.get(gateway)
        if settings is not None and settings.tariff is not None:
            return settings.tariff
        return self.tariff

    #: /metrics per gateway (True), by fleet labels only (False), or by fleet size (None)
    metrics_per_gateway: bool | None = None
    #: the alert rules' evaluator, when the fleet file has rules
    alerts: AlertBook | None = None

    def fleet_labels(self) -> FleetLabels:
        """The fleet file's label names and each gateway's values, as they are now."""
        return fleet_labels(self.gateways)

    def automation_rows(self) -> list[tuple[str, str, str, int]]:
        """(gateway, rule, result, count) of every plan, for /metrics."""
        return [(name, *row) for name, plan in self.plans.items() for row in plan.metric_rows()]

    def tz_for(self, gateway: str | None) -> dt.tzinfo:
        """The site time zone of `gateway` (of the only one when None); `tz` by default."""
        names = self.live.names()
        if gateway is None and len(names) == 1:
            gateway = names[0]
        return gateway_tz(self.live.get(gateway) if gateway else None, self.tz)


CTX = web.AppKey("tegkit_ctx", WebContext)
METRICS = web.AppKey("tegkit_metrics", MetricsPage)
CLOSING = web.AppKey("tegkit_closing", asyncio.Event)


@dataclass
class EdgeState:
    """The server's side of the app: its connections (set once serving) and open streams."""

    connections: Connections | None = None
    streams: int = 0


EDGE = web.AppKey("tegkit_edge", EdgeState)


def _json(doc: Any, status: int = 200) -> web.Response:
    return web.Response(body=msgspec.json.encode(doc), status=status, content_type=_JSON)


# --- parameters -------------------------------------------------------------------------


def _gateway(request: web.Request) -> str:
    ctx = request.app[CTX]
    names = ctx.live.names()
    name = request.query.get("gateway")
    if name is None or name == "":
        if len(names) == 1:
            return names[0]
        raise BadParameter("gateway", "one of " + ", ".join(names), name)
    if name not in names:
        raise BadParameter("gateway", "one of " + ", ".join(names), name)
    return name


_TIMES = (
    f"epoch seconds from {MIN_TIME_S:.0f} to {MAX_TIME_S:.0f}, or an ISO 8601 time from "
    "1970-01-01 to 9999-12-30 such as 2024-05-01T00:00:00Z"
)


def _time(request: web.Request, name: str, default: float) -> float:
    """Epoch seconds or an ISO 8601 time (naive times are in the site's time zone)."""
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        try:
            when = dt.datetime.fromisoformat(text)
            if when.tzinfo is None:
                tz = request.app[CTX].tz_for(request.query.get("gateway"))
                when = when.replace(tzinfo=tz)
            value = when.timestamp()
        except (ValueError, OverflowError, OSError):
            raise BadParameter(name, _TIMES, text) from None
    if not (math.isfinite(value) and MIN_TIME_S <= value <= MAX_TIME_S):
        raise BadParameter(name, _TIMES, text)
    return value


def _range(request: web.Request, default_span_s: float) -> tuple[float, float]:
    now = request.app[CTX].live.clock()
    end = _time(request, "to", now)
    if end <= MIN_TIME_S:
        raise BadParameter("to", "a time after 1970-01-01T00:00:00Z", request.query.get("to"))
    start = _time(request, "from", max(MIN_TIME_S, end - default_span_s))
    if start >= end:
        raise BadParameter("from", "a time before 'to'", request.query.get("from"))
    if end - start > MAX_RANGE_S:
        if request.query.get("to"):
            raise BadParameter("to", "at most 20 years after 'from'", request.query.get("to"))
        raise BadParameter("from", "at most 20 years before 'to'", request.query.get("from"))
    return start, end


def _step(request: web.Request) -> float | None:
    """The step asked for, in seconds: whole seconds at least, a leap year at most."""
    text = request.query.get("step")
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and MIN_STEP_S <= value <= MAX_STEP_S):
        allowed = (
            f"a number of seconds from {MIN_STEP_S:g} to {MAX_STEP_S:.0f} (366 days); "
            "the answer uses the store's bucket at or above it"
        )
        raise BadParameter("step", allowed, text)
    return value


def _day(request: web.Request, name: str, default: dt.date) -> dt.date:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    allowed = f"a date YYYY-MM-DD from {MIN_DAY} to {MAX_DAY}"
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise BadParameter(name, allowed, text) from None
    if not MIN_DAY <= day <= MAX_DAY:
        raise BadParameter(name, allowed, text)
    return day


def _store(request: web.Request) -> AsyncStore:
    store = request.app[CTX].store
    if store is None:
        raise web.HTTPServiceUnavailable(
            text=error_text("this monitor keeps no history"), content_type=_JSON
        )
    return store


# --- handlers ---------------------------------------------------------------------------


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def fleet_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "fleet.html", headers={"Cache-Control": "no-cache"})


async def api_fleet(request: web.Request) -> web.Response:
    """A row per gateway (status and reason, state of energy, power, grid status, latest
    reading, open alerts, fleet labels) from the live state: see tegkit.monitor.fleetview."""
    ctx = request.app[CTX]
    alerts = ctx.alerts.open_counts() if ctx.alerts is not None else {}
    return _json(fleet_document(ctx.live, ctx.fleet_labels(), alerts))


async def api_live(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    doc = ctx.live.to_json()
    doc["control"] = ctx.control is not None
    for entry in doc["gateways"]:
        entry["tz"] = tz_name(ctx.tz_for(entry["gateway"]))
    # an IANA name the browser can use: the first gateway's site
    doc["tz"] = getattr(ctx.tz_for(next(iter(ctx.live.names()), None)), "key", None)
    return _json(doc)


async def api_live_stream(request: web.Request) -> web.StreamResponse:
    """Server-sent events: every gateway's entry at once, then each new reading."""
    ctx = request.app[CTX]
    edge = request.app[EDGE]
    if edge.streams >= ctx.limits.max_streams:
        raise web.HTTPServiceUnavailable(
            text=error_text(f"at most {ctx.limits.max_streams} event streams at once"),
            headers={"Retry-After": "10"},
            content_type=_JSON,
        )
    edge.streams += 1
    try:
        return await _stream(request, ctx)
    finally:
        edge.streams -= 1


async def _stream(request: web.Request, ctx: WebContext) -> web.StreamResponse:
    closing = request.app[CLOSING]
    write_timeout_s = ctx.limits.write_timeout_s

    async def send(data: bytes) -> None:
        async with asyncio.timeout(write_timeout_s):  # a reader that stops reading is dropped
            await response.write(data)

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # let reverse proxies pass events at once
        }
    )
    await response.prepare(request)
    async with ctx.live.subscribe() as queue:
        closed = asyncio.ensure_future(closing.wait())
        try:
            await send(b"retry: 3000\n\n")
            for entry in ctx.live.to_json()["gateways"]:
                await send(b"data: " + msgspec.json.encode(entry) + b"\n\n")
            while not closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait(
                    {getter, closed}, timeout=SSE_HEARTBEAT_S, return_when=asyncio.FIRST_COMPLETED
                )
                if getter in done:
                    await send(b"data: " + msgspec.json.encode(getter.result()) + b"\n\n")
                else:
                    getter.cancel()
                    if not closing.is_set():
                        await send(b": keep-alive\n\n")
        except TimeoutError:
            if request.transport is not None:
                request.transport.abort()  # finishing the answer would wait on it again
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            closed.cancel()
    return response


async def api_history(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    start, end = _range(request, 86400.0)
    step_s = _step(request)
    store = _store(request)
    try:
        # day-or-longer buckets start at the site's midnights
        tz = request.app[CTX].tz_for(gateway)
        history = await store.history(gateway, start, end, step_s, MAX_POINTS, tz=tz)
    except ValueError as exc:  # the store's own bounds (checked here first; belt and braces)
        raise BadParameter("from", str(exc), request.query.get("from")) from None
    outages = await store.outages(gateway, start, end)
    gaps = await store.gaps(gateway, start, end)
    points = history.points
    soe_raw = [p.soe_raw_percent for p in points]
    return _json(
        {
            "gateway": gateway,
            "from": start,
            "to": end,
            "step_s": history.step_s,
            "source": history.source,
            # the first bucket may begin before 'from': it is shown at 'from'
            "t": [min(max(p.t, start), end) for p in points],
            **{name: [getattr(p, name) for p in points] for name in POWER_NAMES},
            "soe_raw_percent": soe_raw,
            "soe_app_percent": [
                None if s is None else round(percent.raw_to_app(s), 2) for s in soe_raw
            ],
            # what the charts shade: grid outages, and gaps (no readings, with the reason)
            "outages": [{"start": o.start, "end": o.end, "source": o.source} for o in outages],
            "gaps": [{"start": g.start, "end": g.end, "reason": g.reason} for g in gaps],
        }
    )


async def api_daily(request: web.Request) -> web.Response:
    ctx = request.app[CTX]
    gateway = _gateway(request)
    tz = ctx.tz_for(gateway)  # the site's days, not this machine's
    today = dt.datetime.fromtimestamp(ctx.live.clock(), tz).date()
    end_day = _day(request, "to", today)
    start_day = _day(request, "from", max(MIN_DAY, end_day - dt.timedelta(days=29)))
    if start_day > end_day:
        raise BadParameter("from", "a date not after 'to'", request.query.get("from"))
    if (end_day - start_day).days >= MAX_DAYS:
        if request.query.get("to"):
            allowed = f"at most {MAX_DAYS} days after 'from'"
            raise BadParameter("to", allowed, request.query.get("to"))
        allowed = f"at most {MAX_DAYS} days before 'to'"
        raise BadParameter("from", allowed, request.query.get("from"))
    store = _store(request)
    days = await store.daily(gateway, start_day, end_day, tz)
    costs: dict[dt.date, Any] = {}
    tariff = ctx.tariff_for(gateway)
    if tariff is not None:
        found = await daily_costs(store, gateway, start_day, end_day, tariff, tz)
        costs = {c.day: c for c in found}
    rows = []
    for d in days:
        row = msgspec.to_builtins(d)
        cost = costs.get(d.day)
        row["cost"] = cost.cost if cost is not None else None
        row["savings"] = cost.savings if cost is not None else None
        row["baseline_cost"] = cost.baseline_cost if cost is not None else None
        rows.append(row)
    return _json(
        {
            "gateway": gateway,
            "tz": tz_name(tz),
            "currency": tariff.currency if tariff is not None else None,
            "days": rows,
        }
    )


async def api_outages(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    start, end = _range(request, 365 * 86400.0)
    outages = await _store(request).outages(gateway, start, end)
    now = request.app[CTX].live.clock()
    # source: "local" (the monitor saw it) or "cloud" (from `teg monitor backfill`)
    periods = [_period(o.start, o.end, now) | {"source": o.source} for o in outages]
    return _json({"gateway": gateway, "from": start, "to": end, "outages": periods})


async def api_gaps(request: web.Request) -> web.Response:
    """Periods without readings (monitor stopped, gateway unreachable, system stopped)."""
    gateway = _gateway(request)
    start, end = _range(request, 30 * 86400.0)
    gaps = await _store(request).gaps(gateway, start, end)
    now = request.app[CTX].live.clock()
    periods = [_period(g.start, g.end, now) | {"reason": g.reason} for g in gaps]
    return _json({"gateway": gateway, "from": start, "to": end, "gaps": periods})


def _period(start: float, end: float | None, now: float) -> dict[str, Any]:
    """A period as the API shows it; an open one (end None) has lasted until now."""
    return {"start": start, "end": end, "duration_s": (end if end is not None else now) - start}


async def api_events(request: web.Request) -> web.Response:
    gateway = _gateway(request)
    start, end = _range(request, 30 * 86400.0)
    events = await _store(request).events(gateway, start, end)
    return _json({"gateway": gateway, "events": msgspec.to_builtins(events)})


MAX_NEXT_ACTIONS = 50


async def api_automation(request: web.Request) -> web.Response:
    """The gateway's plan: its name, rules, the next planned actions (site-local times too)
    and the latest outcomes; "plan": null when it has none. Read-only; a plan holds no
    secrets, and no gateway is asked anything."""
    gateway = _gateway(request)
    text = request.query.get("count", "10")
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses
    if not (len(text) <= 3 and text.isascii() and text.isdigit()) or not (
        1 <= int(text) <= MAX_NEXT_ACTIONS
    ):
        raise BadParameter("count", f"a whole number from 1 to {MAX_NEXT_ACTIONS}", text)
    plan = request.app[CTX].plans.get(gateway)
    if plan is None:
        return _json({"gateway": gateway, "plan": None})
    return _json(await plan.to_json(int(text)))


async def api_alerts(request: web.Request) -> web.Response:
    """Open alerts (oldest first), then recently resolved ones (latest first); `gateway`
    and `state` (open, resolved) narrow the list."""
    book = request.app[CTX].alerts
    state = request.query.get("state") or None
    if state not in (None, "open", "resolved"):
        raise BadParameter("state", "open or resolved", state)
    gateway = request.query.get("gateway") or None
    alerts = book.alerts(state=state) if book is not None else []
    if gateway is not None:
        known = set(request.app[CTX].live.names())
        known |= {a.gateway for a in book.alerts()} if book is not None else set()
        if gateway not in known:
            raise BadParameter("gateway", f"the name of one of the {len(known)} gateways", gateway)
        alerts = [a for a in alerts if a.gateway == gateway]
    docs = [book.to_json(a) for a in alerts] if book is not None else []
    return _json({"open": sum(1 for a in alerts if a.state == "open"), "alerts": docs})


async def healthz(request: web.Request) -> web.Response:
    """200 when every gateway's data is fresh; 503 with each reason otherwise."""
    live = request.app[CTX].live
    now = live.clock()
    report = []
    healthy = bool(live.gateways())
    for g in live.gateways():
        status, reason = g.status(now, live.stale_after_s)
        healthy &= status == "ok"
        report.append({"gateway": g.name, "status": status, "reason": reason})
    doc = {"status": "ok" if healthy else "unhealthy", "gateways": report}
    if not report:
        doc["reason"] = "no gateway is watched"
    return _json(doc, 200 if healthy else 503)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


def _vocabulary() -> dict[str, Any]:
    """The words the dashboard shows, from the models' vocabulary: its only source."""
    modes = (*CUSTOMER_MODES, *(m for m in OperationMode if m not in CUSTOMER_MODES))
    return {
        "grid_statuses": [
            {"value": s, "label": GRID_STATUS_LABELS[s], "off_grid": is_off_grid(s)}
            for s in GridStatusValue
        ],
        # the modes a customer may choose first, in the app's order
        "modes": [
            {"value": m, "label": MODE_LABELS[m], "customer": m in CUSTOMER_MODES} for m in modes
        ],
        "meters": [{"name": m, "power": p} for m, p in zip(MeterName, POWER_NAMES, strict=True)],
        "counters": [
            {"name": c.name, "meter": c.meter, "direction": c.direction, "meaning": c.meaning}
            for c in COUNTERS
        ],
    }


# The vocabulary cannot change while the monitor runs: encoded once, tagged by its content.
_VOCABULARY_BODY = msgspec.json.encode(_vocabulary())
_VOCABULARY_ETAG = hashlib.sha256(_VOCABULARY_BODY).hexdigest()[:20]


async def api_vocabulary(request: web.Request) -> web.StreamResponse:
    """Labels and sets of grid statuses, modes, meters and counters (public, never secret)."""
    headers = {"Cache-Control": "max-age=300", "ETag": f'"{_VOCABULARY_ETAG}"'}
    if any(tag.value in (_VOCABULARY_ETAG, "*") for tag in request.if_none_match or ()):
        return web.Response(status=304, headers=headers)
    return web.Response(body=_VOCABULARY_BODY, content_type=_JSON, headers=headers)


async def control_operation(request: web.Request) -> web.Response:
    """POST {gateway, mode?, backup_reserve_percent?, scale?}: the poller changes it by the
    route `tegkit.route` picks (locally, or through the cloud when the gateway refuses a
    customer's change) and reads it back locally (inside its request budget); the client
    checks the values. The answer says the route and whether the read-back showed it."""
    ctx = request.app[CTX]
    assert ctx.control is not None  # the route exists only with a control token
    ctx.control.require(request)
    body = decode_json(await request.read())
    if not isinstance(body, dict):
        raise BadParameter("body", "a JSON object", body)
    name = body.get("gateway") or (ctx.live.names()[0] if len(ctx.live.names()) == 1 else None)
    poller = ctx.pollers.get(name) if isinstance(name, str) else None
    if poller is None:
        raise BadParameter("gateway", "one of " + ", ".join(ctx.pollers), name)
    try:
        outcome = await poller.change_operation(
            mode=body.get("mode"),
            backup_reserve_percent=body.get("backup_reserve_percent"),
            scale=body.get("scale"),
        )
    except InvalidInputError as exc:
        raise BadParameter(exc.field, exc.allowed, exc.value) from None
    except RequestBudgetExceededError as exc:  # the monitor's own budget: nothing was sent
        retry = {"Retry-After": str(max(1, math.ceil(exc.wait_s)))}
        doc = {"error": str(exc), "retry_after_s": exc.wait_s}
        return web.Response(
            body=msgspec.json.encode(doc), status=429, content_type=_JSON, headers=retry
        )
    except PermissionDeniedError as exc:
        return _json({"error": f"the gateway refused: {exc}"}, 403)
    except RateLimitedError as exc:
        return _json({"error": str(exc), "retry_after_s": exc.retry_after_s}, 429)
    except GatewayError as exc:
        return _json({"error": f"the gateway did not apply it: {exc}"}, 502)
    after = outcome.operation
    # no local read got through after a cloud change: the live state is the latest known
    gateway = poller.gateway
    raw = gateway.backup_reserve_raw_percent if after is None else after.backup_reserve_raw_percent
    return _json(
        {
            "gateway": poller.name,
            "mode": gateway.mode if after is None else after.mode,
            "backup_reserve": {
                "raw_percent": raw,
                "app_percent": None if raw is None else round(percent.raw_to_app(raw), 2),
            },
            **outcome.fields(),
        },
        200 if outcome.confirmed else 202,  # 202: sent, not yet seen locally
    )


# --- the app ----------------------------------------------------------------------------

_CSP_PAGE = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'"
)
_CSP_DATA = "default-src 'none'; frame-ancestors 'none'"


@web.middleware
async def _edge(request: web.Request, handler: Any) -> web.StreamResponse:
    """The checks every request passes first: its Host, then its body (in time, in size)."""
    ctx = request.app[CTX]
    host = request.headers.get("Host")
    if host is None:
        if request.version >= (1, 1):
            raise web.HTTPBadRequest(
                text=error_text("a Host header is required"), content_type=_JSON
            )
    elif not ctx.hosts.allows(host):
        shown = host if len(host) <= 80 else host[:77] + "..."
        message = (
            f"this monitor does not answer for host {shown!r}; it answers for "
            f"{ctx.hosts.describe()} (more with teg monitor --allowed-host NAME)"
        )
        raise web.HTTPMisdirectedRequest(text=error_text(message), content_type=_JSON)
    connections = request.app[EDGE].connections
    with connections.busy(request) if connections is not None else contextlib.nullcontext():
        if request.body_exists:
            try:
                async with asyncio.timeout(ctx.limits.body_timeout_s):
                    await request.read()
            except TimeoutError:
                message = f"the body did not arrive within {ctx.limits.body_timeout_s:g} s"
                raise web.HTTPRequestTimeout(
                    text=error_text(message), content_type=_JSON, headers={"Connection": "close"}
                ) from None
            except web.HTTPRequestEntityTooLarge:
                message = f"a body of at most {ctx.limits.max_body_bytes} bytes"
                raise web.HTTPRequestEntityTooLarge(
                    max_size=ctx.limits.max_body_bytes,
                    actual_size=request.content_length or 0,
                    text=error_text(message),
                    content_type=_JSON,
                ) from None
        response: web.StreamResponse = await handler(request)
        return response


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    """The same headers on every answer, errors included; a Server header without versions."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers["Server"] = SERVER_NAME
    page = request.path in ("/", "/fleet")
    response.headers.setdefault("Content-Security-Policy", _CSP_PAGE if page else _CSP_DATA)


def _static_files() -> dict[str, Path]:
    """The dashboard's files by URL path: nothing else under /static is ever opened."""
    return {
        "/static/" + p.relative_to(STATIC_DIR).as_posix(): p
        for p in sorted(STATIC_DIR.rglob("*"))
        if p.is_file()
    }


def create_app(ctx: WebContext) -> web.Application:
    """The aiohttp application for `ctx`; run it with aiohttp's AppRunner."""
    app = web.Application(middlewares=[_edge], client_max_size=ctx.limits.max_body_bytes)
    app[CTX] = ctx
    app[METRICS] = MetricsPage(
        ctx.live,
        ctx.automation_rows if ctx.plans else None,
        labels=ctx.fleet_labels,
        per_gateway=ctx.metrics_per_gateway,
    )
    app[CLOSING] = asyncio.Event()
    app[EDGE] = EdgeState()
    app.on_response_prepare.append(_headers)
    static = _static_files()

    async def static_file(request: web.Request) -> web.FileResponse:
        path = static.get(request.path)
        if path is None:
            raise web.HTTPNotFound(text=error_text("no such file"), content_type=_JSON)
        return web.FileResponse(path)

    async def on_shutdown(app: web.Application) -> None:
        app[CLOSING].set()  # end the event streams so shutdown does not wait on them

    app.on_shutdown.append(on_shutdown)
    app.router.add_get("/", index)
    app.router.add_get("/static/{name:.+}", static_file)
    app.router.add_get("/fleet", fleet_page)
    app.router.add_get("/api/fleet", api_fleet)
    app.router.add_get("/api/live", api_live)
    app.router.add_get("/api/live/stream", api_live_stream)
    app.router.add_get("/api/history", api_history)
    app.router.add_get("/api/daily", api_daily)
    app.router.add_get("/api/outages", api_outages)
    app.router.add_get("/api/gaps", api_gaps)
    app.router.add_get("/api/events", api_events)
    app.router.add_get("/api/vocabulary", api_vocabulary)
    app.router.add_get("/api/automation", api_automation)
    app.router.add_get("/api/alerts", api_alerts)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if ctx.control is not None:
        app.router.add_post("/login", ctx.control.login)
        app.router.add_post("/logout", ctx.control.logout)
        app.router.add_get("/api/session", ctx.control.session)
        app.router.add_post("/api/control/operation", control_operation)
    return app
