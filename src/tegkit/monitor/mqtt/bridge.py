"""The monitor's connection to an MQTT broker: publishing, last will, commands, reconnects.

One `MqttBridge` per monitor, one aiomqtt client at a time:

- on each connection it publishes `{base}/status` = "online" (retained; the last will
  publishes "offline" when the connection dies without a goodbye), then every retained
  message it holds again (discovery configs, availability, states): a broker that restarted
  without persistence has them back at once;
- it follows the monitor's `LiveState`: each gateway's change becomes its state and
  availability messages, and Home Assistant's discovery configs again when the gateway's
  device info (model, serial, firmware...) changed;
- each topic is published at most once per `min_interval_s`: a value that arrives sooner
  waits, replaced by any newer one, and the latest goes out when the interval ends (a fast
  poll does not flood the broker; nothing is dropped for good);
- what waits is one message per topic (`Outbox`), so a broker that stops answering costs a
  bounded amount of memory, and polling and recording never wait for it;
- commands on `{base}/+/set/+` are read always but carried out only with `control`
  (`--mqtt-control`); otherwise, and when they are malformed, they are refused with a
  warning (the log's rate limit keeps a flood to a line a minute);
- a lost connection is tried again after 0.5 s, doubling to at most 5 s; `close()`
  publishes "offline" and says goodbye.

The password and the client key's path never reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import ssl
import stat
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.reasoncodes import ReasonCode

from tegkit.errors import InvalidInputError
from tegkit.monitor.live import LiveState
from tegkit.monitor.mqtt import commands
from tegkit.monitor.mqtt.discovery import (
    DeviceInfo,
    device_info,
    discovery_messages,
    powerwall_serials,
    removal_messages,
    state_messages,
)
from tegkit.monitor.mqtt.topics import (
    DEFAULT_BASE,
    DEFAULT_DISCOVERY_PREFIX,
    OFFLINE,
    ONLINE,
    Message,
    availability_topic,
    check_base,
    check_level,
    command_subscription,
    powerwalls_topic,
    status_topic,
)

if TYPE_CHECKING:
    from tegkit.monitor.poller import Poller

log = logging.getLogger(__name__)

#: seconds between two messages on one topic unless --mqtt-min-interval-s says otherwise
DEFAULT_MIN_INTERVAL_S: Final = 5.0
#: reconnect after this many seconds, doubling up to the second figure
RECONNECT_S: Final = (0.5, 5.0)
#: messages in flight (sent, not yet acknowledged) at once
WINDOW: Final = 100
#: a bound on the topics waiting to be sent (one message each); far above a fleet's needs
MAX_PENDING_TOPICS: Final = 200_000
#: commands waiting to be carried out; more are refused while the gateway is busy
MAX_PENDING_COMMANDS: Final = 16
#: seconds to wait for the broker when connecting, publishing and saying goodbye
TIMEOUT_S: Final = 10.0
KEEPALIVE_S: Final = 30
PORTS: Final = {"mqtt": 1883, "mqtts": 8883}
USERNAME_ENV: Final = "TEG_MQTT_USERNAME"
PASSWORD_ENV: Final = "TEG_MQTT_PASSWORD"
_URL_ALLOWED = "mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (no user or password in it)"


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Where the broker is and how to log in; what to publish under which topics."""

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    base: str = DEFAULT_BASE
    discovery_prefix: str = DEFAULT_DISCOVERY_PREFIX
    control: bool = False
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S
    client_id: str = field(default_factory=lambda: "tegkit-" + uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        parse_url(self.url)
        check_base(self.base)
        check_level(self.discovery_prefix, "--mqtt-discovery-prefix")
        if not self.min_interval_s >= 0 or self.min_interval_s > 86_400:
            raise InvalidInputError(
                "--mqtt-min-interval-s", "seconds from 0 to 86400", self.min_interval_s
            )
        tls = self.tls
        for name, path in (
            ("--mqtt-ca", self.ca_file),
            ("--mqtt-cert", self.cert_file),
            ("--mqtt-key", self.key_file),
        ):
            if path is not None and not tls:
                raise InvalidInputError(name, "a file used with an mqtts:// broker", str(path))
        if self.key_file is not None and self.cert_file is None:
            raise InvalidInputError("--mqtt-key", "given together with --mqtt-cert", "no cert")
        if self.password is not None and self.username is None:
            raise InvalidInputError(USERNAME_ENV, "a user name when a password is given", "nothing")

    @property
    def tls(self) -> bool:
        return parse_url(self.url)[0]

    @property
    def where(self) -> str:
        """The broker as log lines and errors name it: scheme, host and port."""
        tls, host, port = parse_url(self.url)
        shown = f"[{host}]" if ":" in host else host
        return f"{'mqtts' if tls else 'mqtt'}://{shown}:{port}"

    def __repr__(self) -> str:  # no password, ever
        return f"MqttSettings(url={self.where!r}, username={self.username!r}, base={self.base!r})"


def parse_url(url: str) -> tuple[bool, str, int]:
    """(tls, host, port) of an mqtt:// or mqtts:// URL; InvalidInputError naming --mqtt."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInputError("--mqtt", _URL_ALLOWED, url) from None
    if (
        parts.scheme not in PORTS
        or not parts.hostname
        or parts.username is not None
        or parts.password is not None
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
    ):
        # a password in the URL would show in `ps`: it is refused, never echoed
        shown = url if parts.password is None else f"{parts.scheme}://***@{parts.hostname}"
        raise InvalidInputError("--mqtt", _URL_ALLOWED, shown)
    return parts.scheme == "mqtts", parts.hostname, port or PORTS[parts.scheme]


def read_password_file(path: Path) -> str:
    """The password in `path` (its first line), which only its owner may read (0600)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise InvalidInputError(
            "--mqtt-password-file", "a readable file", f"{path}: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(mode) or mode & 0o077:
        raise InvalidInputError(
            "--mqtt-password-file",
            f"a file only its owner may read or write (chmod 600 {path})",
            f"{path} (mode {stat.S_IMODE(mode):04o})",
        )
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0]:
        raise InvalidInputError("--mqtt-password-file", "the password on its first line", str(path))
    return lines[0]


def password_from_env(environ: dict[str, str] | None = None) -> str | None:
    env = os.environ if environ is None else environ
    return env.get(PASSWORD_ENV) or None


# --- the broker refusing us ---------------------------------------------------------------


class BrokerRefusedError(Exception):
    """The broker will not have us as configured: credentials or certificate. `kind` is
    "auth" or "certificate"; the message names the broker and what to check, never the
    password."""

    def __init__(self, kind: Literal["auth", "certificate"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


_AUTH_CODES: Final = frozenset({4, 5, 134, 135})  # bad user name or password; not authorised


def refusal(settings: MqttSettings, exc: BaseException) -> BrokerRefusedError | None:
    """What `exc` (from connecting) says about our configuration, if it is a refusal."""
    if isinstance(exc, MqttConnectError):
        code = exc.rc.value if isinstance(exc.rc, ReasonCode) else exc.rc
        if code in _AUTH_CODES:
            who = f"user {settings.username!r}" if settings.username else "no user name"
            return BrokerRefusedError(
                "auth",
                f"the MQTT broker {settings.where} refused the login ({who}): check "
                f"{USERNAME_ENV} and {PASSWORD_ENV} or --mqtt-password-file",
            )
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        reason = text.split("certificate verify failed:", 1)[-1].split("(_ssl", 1)[0].strip()
        ca = f"--mqtt-ca {settings.ca_file}" if settings.ca_file else "the system's CAs"
        return BrokerRefusedError(
            "certificate",
            f"the MQTT broker {settings.where} sent a certificate not trusted by {ca}"
            f" ({reason or 'verify failed'})",
        )
    return None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


# --- what waits to be sent ----------------------------------------------------------------


class Outbox:
    """The messages waiting to be sent: the latest one per topic, each topic at most once
    per `min_interval_s` (a topic never sent, or put with `limited=False`, goes at once).

    Bounded by the number of topics (one waiting message each), so a stuck broker costs a
    fixed amount of memory however fast the gateways are read. Messages that may go now
    wait in arrival order; rate-limited ones in a heap by the time their interval ends.
    """

    def __init__(
        self,
        min_interval_s: float,
        monotonic: Callable[[], float] = time.monotonic,
        max_topics: int = MAX_PENDING_TOPICS,
    ) -> None:
        self.min_interval_s = min_interval_s
        self.monotonic = monotonic
        self.max_topics = max_topics
        self._ready: OrderedDict[str, Message] = OrderedDict()  # may go now, in order
        self._waiting: dict[str, Message] = {}  # their topic's interval has not ended
        self._heap: list[tuple[float, str]] = []  # (interval ends, topic) of the waiting
        self._sent_at: dict[str, float] = {}
        self._wake = asyncio.Event()
        self.replaced_total = 0  # messages superseded by a newer one before they went out
        self.dropped_total = 0  # messages dropped because max_topics was reached

    def __len__(self) -> int:
        return len(self._ready) + len(self._waiting)

    def _ready_at(self, topic: str) -> float:
        sent = self._sent_at.get(topic)
        return float("-inf") if sent is None else sent + self.min_interval_s

    def put(self, message: Message, *, limited: bool = True) -> None:
        topic = message.topic
        if not limited:
            self._sent_at.pop(topic, None)
        if topic in self._ready:
            self.replaced_total += 1
            self._ready[topic] = message  # keeps its place in the line
        elif topic in self._waiting:
            self.replaced_total += 1
            if limited:
                self._waiting[topic] = message
            else:
                del self._waiting[topic]
                self._ready[topic] = message
        else:
            if len(self) >= self.max_topics:
                self._drop_oldest()
            ready_at = self._ready_at(topic)
            if ready_at <= self.monotonic():
                self._ready[topic] = message
            else:
                self._waiting[topic] = message
                heapq.heappush(self._heap, (ready_at, topic))
        self._wake.set()

    def _drop_oldest(self) -> None:
        if self._ready:
            self._ready.popitem(last=False)
        else:
            del self._waiting[next(iter(self._waiting))]
        self.dropped_total += 1

    def requeue(self, messages: Iterable[Message]) -> None:
        """Messages that did not go out: back at the front of the line, due at once, unless
        a newer one for their topic arrived meanwhile (that one goes at once instead)."""
        for message in reversed(list(messages)):  # each to the front: their order is kept
            topic = message.topic
            self._sent_at.pop(topic, None)
            if topic in self._waiting:
                message = self._waiting.pop(topic)
            elif topic in self._ready:
                continue
            self._ready[topic] = message
            self._ready.move_to_end(topic, last=False)
        self._wake.set()

    def _promote(self, now: float) -> None:
        """Waiting messages whose interval ended join the line."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, topic = heapq.heappop(heap)
            if topic in self._waiting and self._ready_at(topic) <= now:
                self._ready[topic] = self._waiting.pop(topic)

    def take_due(self, most: int) -> list[Message]:
        """Up to `most` messages whose topic may be sent now, marked as sent."""
        now = self.monotonic()
        self._promote(now)
        due: list[Message] = []
        while self._ready and len(due) < most:
            topic, message = self._ready.popitem(last=False)
            self._sent_at[topic] = now
            due.append(message)
        return due

    def next_due_in_s(self) -> float | None:
        """Seconds until the next waiting message may be sent; None when nothing waits."""
        if self._ready:
            return 0.0
        now = self.monotonic()
        self._promote(now)
        if self._ready:
            return 0.0
        while self._heap and self._heap[0][1] not in self._waiting:
            heapq.heappop(self._heap)  # a topic sent meanwhile (requeued, not limited)
        if not self._heap:
            return None
        return max(0.0, self._heap[0][0] - now)

    async def wait(self) -> None:
        """Until a message may be sent (or a new one arrives)."""
        self._wake.clear()
        timeout = self.next_due_in_s()
        if timeout == 0.0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)


# --- the connection -----------------------------------------------------------------------


def tls_context(settings: MqttSettings) -> ssl.SSLContext | None:
    """The TLS context for mqtts://: the CA file (else the system's), the client certificate."""
    if not settings.tls:
        return None
    ca = str(settings.ca_file) if settings.ca_file is not None else None
    try:
        context = ssl.create_default_context(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInputError(
            "--mqtt-ca", "a PEM file of CA certificates", f"{ca}: {exc}"
        ) from None
    if settings.cert_file is not None:
        key = str(settings.key_file) if settings.key_file is not None else None
        try:
            context.load_cert_chain(str(settings.cert_file), key)
        except (OSError, ssl.SSLError):  # the message may quote the key file: not repeated
            raise InvalidInputError(
                "--mqtt-cert",
                "a PEM certificate whose key is in it or in --mqtt-key",
                str(settings.cert_file),
            ) from None
    return context


def make_client(
    settings: MqttSettings, *, will: bool = True, identifier: str | None = None
) -> aiomqtt.Client:
    _, host, port = parse_url(settings.url)
    client = aiomqtt.Client(
        host,
        port,
        username=settings.username,
        password=settings.password,
        identifier=identifier or settings.client_id,
        will=aiomqtt.Will(status_topic(settings.base), OFFLINE, qos=1, retain=True)
        if will
        else None,
        clean_session=True,
        timeout=TIMEOUT_S,
        keepalive=KEEPALIVE_S,
        max_inflight_messages=WINDOW,
        max_queued_outgoing_messages=4 * WINDOW,
        max_queued_incoming_messages=4 * MAX_PENDING_COMMANDS,
        tls_context=tls_context(settings),
        # paho's debug lines go to a logger of their own, outside tegkit's
        logger=logging.getLogger("tegkit_mqtt_client"),
    )
    client.pending_calls_threshold = 2 * WINDOW  # the window is expected, not a warning
    return client


async def check_broker(settings: MqttSettings) -> BrokerRefusedError | None:
    """Connect once (no last will) and leave: the refusal if the broker refuses our login or
    its certificate is not trusted. An unreachable broker is no refusal (it may come up)."""
    try:
        async with make_client(settings, will=False, identifier=settings.client_id + "-check"):
            return None
    except aiomqtt.MqttError as exc:
        found = refusal(settings, exc)
        if found is None:
            log.warning("the MQTT broker %s is not reachable yet: %s", settings.where, _short(exc))
        return found


class MqttBridge:
    """Publishes `live` to the broker of `settings` and takes commands for `pollers`; see
    the module. `run()` until `close()`; it never raises (a broker failure is logged and
    retried, polling and recording go on)."""

    def __init__(
        self,
        settings: MqttSettings,
        live: LiveState,
        pollers: Mapping[str, Poller],
        *,
        dashboard_url: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        reconnect_s: tuple[float, float] = RECONNECT_S,
    ) -> None:
        self.settings = settings
        self.live = live
        self.pollers = pollers
        self.dashboard_url = dashboard_url
        self.reconnect_s = reconnect_s
        self.outbox = Outbox(settings.min_interval_s, monotonic)
        self.connected = asyncio.Event()
        self.connections_total = 0  # successful connections (the first one included)
        self.published_total = 0
        self.commands_applied_total = 0
        self.commands_refused_total = 0
        #: the latest retained message per topic: published again on every connection
        self._retained: dict[str, Message] = {}
        self._devices: dict[str, DeviceInfo] = {}
        self._commands: asyncio.Queue[commands.MqttCommand] = asyncio.Queue(MAX_PENDING_COMMANDS)
        self._stopping = asyncio.Event()
        self._stopped = asyncio.Event()

    # --- from the live state to the outbox ------------------------------------------------

    def _put(self, message: Message, *, limited: bool = True) -> None:
        if message.retain:
            if self._retained.get(message.topic) == message:
                return  # the broker has it already (or will on the next connection)
            self._retained[message.topic] = message
        self.outbox.put(message, limited=limited)

    def take_entry(self, entry: Mapping[str, Any]) -> None:
        """A gateway's `/api/live` entry: its discovery configs when its device changed,
        its state and availability."""
        base, name = self.settings.base, str(entry.get("gateway"))
        device = device_info(entry, self.dashboard_url)
        previous = self._devices.get(name)
        if previous != device:
            self._devices[name] = device
            configs = discovery_messages(
                device, base, self.settings.discovery_prefix, self.settings.control, previous
            )
            for message in configs:
                self._put(message, limited=False)
        for message in state_messages(base, entry):
            self._put(message)

    def sweep(self) -> None:
        """Every gateway's entry again: what the live state's queue lost, and gateways whose
        readings grew stale without a push."""
        now = self.live.clock()
        for gateway in self.live.gateways():
            self._take(gateway.to_json(now, self.live.stale_after_s))

    def _take(self, entry: Mapping[str, Any]) -> None:
        """`take_entry`, a failure logged (the log's rate limit keeps it to a line a minute)
        and the other gateways published all the same."""
        try:
            self.take_entry(entry)
        except Exception as exc:
            log.error("MQTT: %s not published: %s", entry.get("gateway"), _short(exc))

    async def _follow_live(self) -> None:
        sweep_s = max(1.0, self.settings.min_interval_s)
        async with self.live.subscribe() as queue:
            self.sweep()
            next_sweep = time.monotonic() + sweep_s
            while True:
                timeout = max(0.0, next_sweep - time.monotonic())
                try:
                    entry = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    self.sweep()
                    next_sweep = time.monotonic() + sweep_s
                    continue
                self._take(entry)

    # --- commands ---------------------------------------------------------------------------

    def _command(self, topic: str, payload: bytes, retained: bool) -> None:
        """A message on a command topic: queued for the worker, or refused with a warning."""
        where = f"MQTT command on {topic}"
        if not self.settings.control:
            self._refuse(f"{where} refused: teg monitor runs without --mqtt-control")
            return
        if retained:  # it would be carried out again at every connection
            self._refuse(f"{where} refused: a retained command (publish it without retain)")
            return
        try:
            command = commands.parse_command(self.settings.base, topic, payload, self.live.names())
        except InvalidInputError as exc:
            self._refuse(f"{where} refused: {exc}")
            return
        try:
            self._commands.put_nowait(command)
        except asyncio.QueueFull:
            self._refuse(f"{where} refused: {MAX_PENDING_COMMANDS} commands are waiting already")

    def _refuse(self, text: str) -> None:
        self.commands_refused_total += 1
        log.warning("%s", text)

    async def _carry_out_commands(self) -> None:
        while True:
            command = await self._commands.get()
            try:
                done = await commands.apply_command(self.pollers, command)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the gateway's or the route's refusal: said, not fatal
                self.commands_refused_total += 1
                log.warning(
                    "%s: MQTT command %s failed: %s",
                    command.gateway,
                    command.setpoints,
                    _short(exc),
                )
                continue
            self.commands_applied_total += 1
            log.info("%s: MQTT command carried out: %s", command.gateway, done)

    def _removed_gateway(self, topic: str, payload: bytes, powerwalls: bool = False) -> None:
        """A retained availability (or Powerwall list) of a gateway this monitor no longer
        watches: its entities (its Powerwalls') are removed from Home Assistant."""
        parts = topic.split("/")
        if len(parts) != 3 or not payload:
            return
        gateway = parts[1]
        if gateway in self._devices or gateway in self.live.names():
            return
        serials = powerwall_serials(payload) if powerwalls else []
        if not powerwalls:
            log.warning("MQTT: gateway %r is no longer watched; removing its entities", gateway)
        for message in removal_messages(
            gateway, self.settings.base, self.settings.discovery_prefix, serials
        ):
            self._put(message, limited=False)

    def forget(self, gateway: str) -> None:
        """A gateway the monitor stopped watching (a fleet reload): its entities and its
        Powerwalls' are removed from Home Assistant, its retained topics cleared."""
        device = self._devices.pop(gateway, None)
        if device is None:
            return
        serials = [p.serial for p in device.powerwalls if p.serial]
        for message in removal_messages(
            gateway, self.settings.base, self.settings.discovery_prefix, serials
        ):
            self._put(message, limited=False)

    # --- the connection ----------------------------------------------------------------------

    async def _read(self, client: aiomqtt.Client) -> None:
        wanted = command_subscription(self.settings.base)
        gone = availability_topic(self.settings.base, "+")
        gone_powerwalls = powerwalls_topic(self.settings.base, "+")
        async for message in client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload or "").encode()
            topic = str(message.topic)
            if message.topic.matches(wanted):
                self._command(topic, data, message.retain)
            elif message.retain and message.topic.matches(gone):
                self._removed_gateway(topic, data)
            elif message.retain and message.topic.matches(gone_powerwalls):
                self._removed_gateway(topic, data, powerwalls=True)

    async def _send(self, client: aiomqtt.Client) -> None:
        while True:
            batch = self.outbox.take_due(WINDOW)
            if not batch:
                await self.outbox.wait()
                continue
            try:
                results = await asyncio.gather(
                    *(client.publish(m.topic, m.payload, qos=1, retain=m.retain) for m in batch),
                    return_exceptions=True,
                )
            except asyncio.CancelledError:
                self.outbox.requeue(batch)  # the connection ended under them
                raise
            failed = [
                m for m, r in zip(batch, results, strict=True) if isinstance(r, BaseException)
            ]
            self.published_total += len(batch) - len(failed)
            if failed:
                self.outbox.requeue(failed)
                error = next(r for r in results if isinstance(r, BaseException))
                raise error

    async def _session(self, client: aiomqtt.Client) -> None:
        base = self.settings.base
        await client.publish(status_topic(base), ONLINE, qos=1, retain=True)
        await client.subscribe(command_subscription(base), qos=1)
        await client.subscribe(availability_topic(base, "+"), qos=1)
        await client.subscribe(powerwalls_topic(base, "+"), qos=1)
        self.outbox.requeue(list(self._retained.values()))  # a restarted broker forgot them
        tasks = [
            asyncio.create_task(self._send(client), name="mqtt-send"),
            asyncio.create_task(self._read(client), name="mqtt-read"),
            asyncio.create_task(self._stopping.wait(), name="mqtt-stop"),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        if not self._stopping.is_set():
            raise aiomqtt.MqttError("the broker ended the connection")
        # a clean stop: the monitor says it is gone before it leaves (no last will then)
        await client.publish(status_topic(base), OFFLINE, qos=1, retain=True)

    async def _connect_loop(self) -> None:
        first_s, most_s = self.reconnect_s
        wait_s = first_s
        where = self.settings.where
        lost_at: float | None = None
        while not self._stopping.is_set():
            try:
                async with make_client(self.settings) as client:
                    self.connections_total += 1
                    self.connected.set()
                    wait_s = first_s
                    if lost_at is not None:
                        log.warning(
                            "MQTT: connected to %s again after %.1f s",
                            where,
                            time.monotonic() - lost_at,
                        )
                        lost_at = None
                    else:
                        log.info("MQTT: connected to %s", where)
                    await self._session(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # aiomqtt.MqttError, OSError, ssl errors...
                refused = refusal(self.settings, exc)
                if refused is not None:
                    log.error("MQTT: %s; trying again in %.1f s", refused, wait_s)
                else:
                    log.warning(
                        "MQTT: no connection to %s (%s); trying again in %.1f s",
                        where,
                        _short(exc),
                        wait_s,
                    )
            finally:
                self.connected.clear()
            if self._stopping.is_set():
                break
            if lost_at is None:
                lost_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait_s)
            wait_s = min(most_s, wait_s * 2)

    async def run(self, follow_live: bool = True) -> None:
        """Until `close()`: follow the live state, keep the connection, carry out commands.
        Returns only after `close()`; a failure of its own is logged and it goes on.
        Without `follow_live` entries come only from `take_entry` (the benchmark)."""
        helpers = [asyncio.create_task(self._carry_out_commands(), name="mqtt-commands")]
        if follow_live:
            helpers.append(asyncio.create_task(self._follow_live(), name="mqtt-live"))
        try:
            while not self._stopping.is_set():
                try:
                    await self._connect_loop()
                except asyncio.CancelledError:
                    raise
                except Exception:  # never: the loop catches its failures; kept going anyway
                    log.exception("MQTT: the connection loop failed; starting it again")
                    await asyncio.sleep(self.reconnect_s[1])
        finally:
            for task in helpers:
                task.cancel()
            for task in helpers:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self._stopped.set()

    async def close(self, timeout_s: float = 5.0) -> None:
        """Publish "offline" (when connected) and disconnect; waits for `run()` to end."""
        self._stopping.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), timeout_s)


__all__ = [
    "DEFAULT_MIN_INTERVAL_S",
    "PASSWORD_ENV",
    "USERNAME_ENV",
    "BrokerRefusedError",
    "MqttBridge",
    "MqttSettings",
    "Outbox",
    "check_broker",
    "parse_url",
    "password_from_env",
    "read_password_file",
]
