"""A real MQTT broker for the tests: Debian's Mosquitto on loopback, and a listening client.

`MosquittoBroker(folder)` writes a configuration of its own into `folder` (a test's
temporary directory) and serves, on free 127.0.0.1 ports:

- `port`: plain MQTT, user and password from a `mosquitto_passwd` file;
- `tls_port`: MQTT over TLS, the same password file, a server certificate for 127.0.0.1
  issued by a CA made here (`ca_path`);
- `cert_port`: MQTT over TLS that requires a client certificate issued by the same CA
  (`client_cert`, `client_key`); the certificate's name is the user.

Anonymous clients are refused everywhere. `restart()` stops and starts it on the same ports
(the restart test), `stop()` always ends it. When Mosquitto is not installed the fixture
fails and says how to install it (`make test` does): a broker test never skips.

`Listener` subscribes and keeps every message (retained ones included); a test waits for a
message with a deadline (`wait_for`), never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from tegkit.sim.certs import CertificateFiles, generate_certificate, issue_loopback_certificate

MOSQUITTO = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = "/usr/bin/mosquitto_passwd"
INSTALL = "Mosquitto is not installed: `make sysdeps` (run by `make test`) installs it, or "
INSTALL += "`apt-get install mosquitto` (Debian's package, with mosquitto_passwd)"
USERNAME = "tegkit-test"
PASSWORD = "broker-password-for-tests"
DEADLINE_S = 30.0


def _free_ports(n: int) -> list[int]:
    """`n` distinct free ports: the sockets stay bound until all are chosen (one after
    another, the OS may hand the same port out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]


def _accepts(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class MosquittoBroker:
    """Mosquitto with a password file and two TLS listeners, in `folder`; see the module."""

    def __init__(self, folder: Path) -> None:
        if not (os.access(MOSQUITTO, os.X_OK) and os.access(MOSQUITTO_PASSWD, os.X_OK)):
            pytest.fail(INSTALL)
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port, self.cert_port = _free_ports(3)
        self.username, self.password = USERNAME, PASSWORD
        ca = CertificateFiles(folder / "ca.pem", folder / "ca-key.pem")
        generate_certificate(ca.cert_path, ca.key_path, "tegkit test CA")
        server = CertificateFiles(folder / "server.pem", folder / "server-key.pem")
        issue_loopback_certificate(ca, server)
        client = CertificateFiles(folder / "client.pem", folder / "client-key.pem")
        issue_loopback_certificate(ca, client)  # its name ("localhost") is the user
        self.ca_path, self.client_cert, self.client_key = (
            ca.cert_path,
            client.cert_path,
            client.key_path,
        )
        #: a CA that did not issue the server's certificate (the wrong-CA test)
        self.other_ca_path = folder / "other-ca.pem"
        generate_certificate(self.other_ca_path, folder / "other-ca-key.pem", "another CA")
        passwords = folder / "passwords"
        passwords.write_text("")
        done = subprocess.run(
            [MOSQUITTO_PASSWD, "-b", str(passwords), USERNAME, PASSWORD],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.fail(f"mosquitto_passwd failed: {done.stderr or done.stdout}")
        self.config = folder / "mosquitto.conf"
        tls = f"cafile {ca.cert_path}\ncertfile {server.cert_path}\nkeyfile {server.key_path}\n"
        self.config.write_text(
            # root keeps its rights (the files are the test's); persistence off: a restart
            # forgets retained messages, so what arrives after it was published again
            "user root\n"
            "per_listener_settings true\n"
            "persistence false\n"
            "log_dest stderr\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous false\npassword_file {passwords}\n"
            f"listener {self.tls_port} 127.0.0.1\n"
            f"allow_anonymous false\npassword_file {passwords}\n{tls}"
            f"listener {self.cert_port} 127.0.0.1\n"
            f"allow_anonymous false\n{tls}require_certificate true\nuse_identity_as_username true\n"
        )
        self.log_path = folder / "mosquitto.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.tls_port}"

    @property
    def cert_url(self) -> str:
        return f"mqtts://127.0.0.1:{self.cert_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> None:
        """Start Mosquitto; returns once every listener accepts connections."""
        assert self.process is None or self.process.poll() is not None
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [MOSQUITTO, "-c", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        end = time.monotonic() + DEADLINE_S
        ports = (self.port, self.tls_port, self.cert_port)
        while not all(_accepts(p) for p in ports):
            if self.process.poll() is not None or time.monotonic() > end:
                self.stop()
                pytest.fail(f"mosquitto did not start on {ports}:\n{self.log()[-3000:]}")
            time.sleep(0.02)  # polling a condition (the port) with a deadline

    def stop(self) -> None:
        """End Mosquitto (SIGTERM, then SIGKILL); waits until it is gone."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: object) -> aiomqtt.Client:
        """A client of the plain listener with the test user (a subscriber of the tests)."""
        return aiomqtt.Client(
            "127.0.0.1",
            self.port,
            username=self.username,
            password=self.password,
            **kwargs,  # type: ignore[arg-type]
        )


@contextlib.contextmanager
def running_broker(folder: Path) -> Iterator[MosquittoBroker]:
    broker = MosquittoBroker(folder)
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True, slots=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    @property
    def text(self) -> str:
        return self.payload.decode()


class Listener:
    """Every message on `topics` (retained ones too), kept in order of arrival."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._changed = asyncio.Condition()

    async def _keep(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            async with self._changed:
                self.messages.append(Received(str(message.topic), bytes(data), message.retain))
                self._changed.notify_all()

    def latest(self, topic: str) -> Received | None:
        for message in reversed(self.messages):
            if message.topic == topic:
                return message
        return None

    async def wait_for(
        self,
        what: str,
        found: Callable[[], object],
        deadline_s: float = DEADLINE_S,
    ) -> object:
        """Until found() is truthy (checked as each message arrives); fails at the deadline."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(found), deadline_s)
            except TimeoutError:
                seen = "\n".join(f"  {m.topic} {m.payload[:200]!r}" for m in self.messages[-40:])
                raise AssertionError(
                    f"waited {deadline_s} s for {what}; last seen:\n{seen}"
                ) from None
            return found()

    async def message(
        self,
        topic: str,
        check: Callable[[Received], bool] = lambda m: True,
        *,
        after: int = 0,
        deadline_s: float = DEADLINE_S,
    ) -> Received:
        """The first message on `topic` from index `after` on that passes `check`."""

        def first() -> Received | None:
            for m in self.messages[after:]:
                if m.topic == topic and check(m):
                    return m
            return None

        found = await self.wait_for(f"a message on {topic}", first, deadline_s)
        assert isinstance(found, Received)
        return found


@contextlib.asynccontextmanager
async def listening(broker: MosquittoBroker, *topics: str) -> AsyncIterator[Listener]:
    """A Listener subscribed to `topics` (wildcards allowed) until the block ends."""
    listener = Listener()
    async with broker.client() as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        task = asyncio.create_task(listener._keep(client))
        try:
            yield listener
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await task


__all__ = [
    "INSTALL",
    "Listener",
    "MosquittoBroker",
    "Received",
    "listening",
    "running_broker",
]
