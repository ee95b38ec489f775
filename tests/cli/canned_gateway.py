"""A gateway that answers what a test tells it to: the 21.44 captures, edited, over real TLS.

The simulator computes its answers; some behaviours of `teg` need answers no healthy gateway
gives (a meter reading -0.0, a certificate that expired). This server runs aiohttp on
127.0.0.1 in its own thread with a certificate made for the test, serves the captured
21.44 bodies of the endpoints `teg status` reads, and lets a test replace any of them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CAPTURES = (
    Path(__file__).resolve().parents[3]
    / "shared/reference/vloschiavo-powerwall2/samples/21.44-foogod/running"
)
STATUS_PATHS = (
    "/api/status",
    "/api/meters/aggregates",
    "/api/system_status/soe",
    "/api/system_status/grid_status",
    "/api/operation",
    "/api/site_info/site_name",
)


def make_certificate(
    folder: Path,
    *,
    names: tuple[str, ...] = ("teg", "powerwall", "powerpack"),
    expired: bool = False,
) -> tuple[Path, Path, str]:
    """A self-signed certificate and key in `folder`: (cert path, key path, SHA-256 hex)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        if expired
        else (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
    )
    alt: list[x509.GeneralName] = []
    for name in names:
        try:
            alt.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            alt.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    sha256 = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()
    return cert_path, key_path, sha256


@dataclass(frozen=True)
class Answer:
    """An answer with a status other than 200 (put it in `CannedGateway.bodies`)."""

    status: int
    body: Any


class CannedGateway:
    """Serves `bodies` (path -> JSON, or an Answer) over HTTPS on 127.0.0.1 until `close()`."""

    def __init__(self, folder: Path, *, expired: bool = False) -> None:
        self.cert_path, key_path, self.sha256 = make_certificate(folder, expired=expired)
        self.bodies: dict[str, Any] = {
            path: json.loads((CAPTURES / f"{path[5:].replace('/', '.')}.json").read_text())
            for path in STATUS_PATHS
        }
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, key_path)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None
        self.port: int = self._call(self._start(context))

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self, context: ssl.SSLContext) -> int:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=context)
        await site.start()
        port: int = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return port

    async def _answer(self, request: web.Request) -> web.Response:
        body = self.bodies.get(request.path)
        if body is None:
            return web.json_response({"code": 404, "error": "Not Found"}, status=404)
        status = 200
        if isinstance(body, Answer):
            status, body = body.status, body.body
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    def close(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
