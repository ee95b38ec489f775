"""A gateway double for client tests: the 21.44 captures over real TLS on 127.0.0.1.

The server runs on its own event loop in a thread, so async and plain sync tests talk to it
alike. It serves the running or the stopped capture set with their real status codes and
bodies, logs in with cookies and a token like the gateway, refuses unknown SNI names, counts
every request, and plays scripted faults (status, delay, dropped connection) per endpoint.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import secrets
import socket
import ssl
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tegkit import catalog

SNI_NAMES = ("teg", "powerwall", "powerpack", "localhost")
JSON = "application/json"
PASSWORD = "hunter2-secret"
HOLD_MAX_S = 10.0
CAPTURES = Path(__file__).resolve().parents[3] / "shared/reference/vloschiavo-powerwall2/samples"
FIRMWARE = "21.44-foogod"
# Older single captures fill the endpoints the 21.44 set lacks.
FALLBACKS = {
    "/api/meters/site": "meters.site.json",
    "/api/meters/solar": "meters.solar.json",
    "/api/site_info/grid_codes": "api_site_info_grid_codes.json",
    "/api/solars/brands": "api_solars_brands.json",
    "/api/solars/brands/SolarEdge Technologies": "solar_edge_models.json",
}


@dataclass(frozen=True)
class Canned:
    """One captured answer."""

    status: int
    body: bytes
    content_type: str | None = "application/json"


def parse_err(text: str) -> Canned:
    """A raw HTTP response capture (.err): status line, headers, blank line, body."""
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    status = int(head.split()[1])
    has_type = "content-type:" in head.lower()
    return Canned(status, body.strip().encode(), "application/json" if has_type else None)


def load_captures(state: str) -> dict[str, Canned]:
    """Path -> canned answer for one capture set ("running" or "stopped")."""
    found: dict[str, Canned] = {}
    for path_s, name in FALLBACKS.items():
        found[path_s] = Canned(200, (CAPTURES / name).read_bytes())
    for file in sorted((CAPTURES / FIRMWARE / state).iterdir()):
        stem, _, ext = file.name.rpartition(".")
        path = "/api/" + stem.replace(".", "/")
        text = file.read_text()
        found[path] = parse_err(text) if ext == "err" else Canned(200, text.encode())
    return found


@dataclass
class Fault:
    """A scripted answer for the next request to one endpoint."""

    status: int | None = None
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    drop: bool = False  # close the connection without answering
    endless: bool = False  # 200 and a body that never ends (chunked, as fast as it is read)
    # Set when the request reaches the double, so a test knows it is in flight.
    arrived: threading.Event | None = None
    # The answer waits until the test sets this (at most HOLD_MAX_S, so a test cannot hang it).
    hold: threading.Event | None = None


@dataclass
class Streamed:
    """What an endless answer managed to send before the client hung up."""

    sent_bytes: int = 0
    done: threading.Event = field(default_factory=threading.Event)


def _error(status: int, error: str, message: str) -> web.Response:
    body = {"code": status, "error": error, "message": message}
    return web.json_response(body, status=status)


class FakeGateway:
    """State and handlers of the double; tests read its counters and script its faults."""

    def __init__(self) -> None:
        self.captures = {s: load_captures(s) for s in ("running", "stopped")}
        self.state = "running"
        self.password = PASSWORD
        self.accept = "either"  # "cookie", "token" or "either": what counts as a session
        self.hits: Counter[str] = Counter()
        self.bodies: list[tuple[str, object]] = []
        self.faults: dict[str, list[Fault]] = {}
        self.tokens: set[str] = set()
        self.cookies: set[str] = set()
        self.streamed = Streamed()
        # What the next logins answer instead of fresh random values (hostile gateways).
        self.login_tokens: list[str] = []
        self.login_cookies: list[str] = []

    @property
    def logins(self) -> int:
        return self.hits["POST /api/login/Basic"]

    @property
    def total(self) -> int:
        return sum(self.hits.values())

    def fault(self, key: str, *faults: Fault) -> None:
        self.faults.setdefault(key, []).extend(faults)

    def expire_sessions(self) -> None:
        self.tokens.clear()
        self.cookies.clear()

    def _has_session(self, request: web.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        by_token = token in self.tokens
        by_cookie = request.cookies.get("AuthCookie") in self.cookies
        if self.accept == "token":
            return by_token
        if self.accept == "cookie":
            return by_cookie
        return by_token or by_cookie

    async def handle(self, request: web.Request) -> web.StreamResponse:
        key = f"{request.method} {request.path}"
        self.hits[key] += 1
        if request.can_read_body:
            self.bodies.append((key, await request.json()))
        scripted = self.faults.get(key)
        if scripted:
            fault = scripted.pop(0)
            if fault.arrived is not None:
                fault.arrived.set()
            if fault.hold is not None:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, fault.hold.wait, HOLD_MAX_S)
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.drop:
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError
            if fault.endless:
                return await self._endless(request)
            if fault.status is not None:
                return web.Response(status=fault.status, body=fault.body, headers=fault.headers)
        if key == "POST /api/login/Basic":
            return self._login(request)
        brand = request.raw_path.removeprefix("/api/solars/brands/")
        if brand != request.raw_path and "/" not in brand and self._has_session(request):
            # One segment, whatever the decoded brand holds ("A/B" arrives as A%2FB).
            canned = self.captures[self.state].get(request.path)
            return web.Response(body=canned.body if canned else b"[]", content_type=JSON)
        found = catalog.match(request.method, request.path)
        if found is None:
            return _error(404, "not found", f"{key} does not exist")
        if found[0].auth.needs_login("modern") and not self._has_session(request):
            return _error(401, "bad credentials", "Login Error")
        return self._answer(request, key)

    async def _endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        chunk = b"[" + b"0," * 32767
        try:
            await response.prepare(request)
            # Writes to a lost connection neither fail nor wait: yield to the loop after each
            # one, so that the loss is noticed, and look before the next.
            while request.transport is not None and not request.transport.is_closing():
                await response.write(chunk)
                self.streamed.sent_bytes += len(chunk)
                await asyncio.sleep(0)
        except ConnectionError:
            pass
        finally:
            self.streamed.done.set()
        raise asyncio.CancelledError  # the client hung up: no answer to finish

    def _login(self, request: web.Request) -> web.Response:
        body = self.bodies[-1][1] if self.bodies else {}
        if not isinstance(body, dict) or body.get("password") != self.password:
            return _error(401, "bad credentials", "Login Error")
        token = self.login_tokens.pop(0) if self.login_tokens else secrets.token_urlsafe(16)
        cookie = self.login_cookies.pop(0) if self.login_cookies else secrets.token_urlsafe(16)
        self.tokens.add(token)
        self.cookies.add(cookie)
        reply = {
            "email": body.get("email", ""),
            "firstname": "Tesla",
            "lastname": "Energy",
            "roles": ["Home_Owner"],
            "token": token,
            "provider": "Basic",
            "loginTime": "2021-12-26T13:09:22-07:00",
        }
        response = web.json_response(reply)
        response.set_cookie("AuthCookie", cookie, path="/", secure=True, httponly=True)
        response.set_cookie("UserRecord", "record", path="/", secure=True)
        return response

    def _answer(self, request: web.Request, key: str) -> web.Response:
        if key == "GET /api/logout":
            self.expire_sessions()
            return web.Response(status=204)
        if key in ("GET /api/config/completed", "GET /api/sitemaster/run"):
            return web.Response(status=202)
        if key == "GET /api/sitemaster/stop":
            return web.Response(status=202)
        if request.method == "POST":
            body = self.bodies[-1][1]
            return web.json_response(body if isinstance(body, dict) else {})
        canned = self.captures[self.state].get(request.path)
        if canned is None:
            return _error(404, "not found", f"{key} is not captured")
        return web.Response(
            status=canned.status, body=canned.body, content_type=canned.content_type
        )


@dataclass
class CertFiles:
    cert: Path
    key: Path
    sha256_hex: str


def make_cert(
    directory: Path,
    name: str,
    dns_names: tuple[str, ...] = ("teg", "powerwall", "powerpack"),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
    valid_days: tuple[float, float] = (-1, 3650),
) -> CertFiles:
    """A self-signed certificate like the gateway's (teg, powerwall, powerpack), plus the
    loopback address the tests dial; `valid_days` is its validity from/to, in days from now.

    "localhost" is not named: the double accepts it as SNI, so it is the name that the
    certificate does not carry (a name mismatch with a trusted certificate).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "teg")])
    now = dt.datetime.now(dt.UTC)
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + dt.timedelta(days=valid_days[0]))
        .not_valid_after(now + dt.timedelta(days=valid_days[1]))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    der = certificate.public_bytes(serialization.Encoding.DER)
    return CertFiles(cert_path, key_path, hashlib.sha256(der).hexdigest())


def server_ssl_context(cert: CertFiles) -> ssl.SSLContext:
    """Server TLS that, like the gateway, aborts handshakes naming an unknown server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert.cert, cert.key)

    def check_name(_sock: object, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        if name is None or name in SNI_NAMES:
            return None
        return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME

    context.sni_callback = check_name
    return context


class ServerThread:
    """Runs the double's HTTPS server on its own loop in a daemon thread."""

    def __init__(self, fake: FakeGateway, context: ssl.SSLContext) -> None:
        self.fake = fake
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner: web.AppRunner | None = None
        self.port = self._call(self._start(context))

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    async def _start(self, context: ssl.SSLContext) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.fake.handle)
        self.runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        return int(self.runner.addresses[0][1])

    def stop(self) -> None:
        if self.runner is not None:
            self._call(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[CertFiles, CertFiles]:
    """The server's certificate and a second, unrelated one (for mismatch tests)."""
    directory = tmp_path_factory.mktemp("certs")
    return make_cert(directory, "gateway"), make_cert(directory, "other")


@pytest.fixture(scope="session")
def cert(certs: tuple[CertFiles, CertFiles]) -> CertFiles:
    return certs[0]


@pytest.fixture
def fake() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def server(fake: FakeGateway, cert: CertFiles) -> Any:
    running = ServerThread(fake, server_ssl_context(cert))
    yield running
    running.stop()


@pytest.fixture
def new_cert(tmp_path: Path) -> Any:
    """Makes a certificate: new_cert("name", valid_days=(-30, -1)) (see make_cert)."""

    def make(name: str, **options: Any) -> CertFiles:
        return make_cert(tmp_path, name, **options)

    return make


@pytest.fixture
def serve() -> Any:
    """Starts another double with a given certificate: serve(cert) -> (server, fake)."""
    started: list[ServerThread] = []

    def start(cert: CertFiles) -> tuple[ServerThread, FakeGateway]:
        fake = FakeGateway()
        started.append(ServerThread(fake, server_ssl_context(cert)))
        return started[-1], fake

    yield start
    for running in started:
        running.stop()


@pytest.fixture
def address(server: ServerThread) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def pinned(cert: CertFiles) -> Any:
    from tegkit.client import PinnedCertificate

    return PinnedCertificate(cert.sha256_hex)


@pytest.fixture
def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def capture() -> Any:
    """Reads one capture file of the served set as JSON: capture("running", "x.json")."""

    def read(state: str, name: str) -> Any:
        return json.loads((CAPTURES / FIRMWARE / state / name).read_text())

    return read


@pytest.fixture
def fault() -> Any:
    """Builds a Fault: fault(status=429, headers={...}), fault(drop=True), fault(delay_s=5),
    fault(arrived=threading.Event(), hold=threading.Event())."""
    return Fault
