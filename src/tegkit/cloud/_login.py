"""Log in to Tesla's cloud: OAuth's authorization-code flow with PKCE and a loopback redirect.

The user opens the authorize URL in a browser, signs in and approves the application; the
auth host then sends the browser to `http://127.0.0.1:PORT/callback?code=...&state=...`,
where a small aiohttp server (on the loopback address only) takes exactly one answer and
closes. The code is exchanged at the token endpoint with the PKCE verifier (S256), over the
cloud transport (HTTP/2), and the tokens are written 0600 atomically, with the flavour and
client id they belong to.

The `state` check makes sure the answer belongs to this login: a page elsewhere cannot
slip its own code to us. Nothing here logs or repeats a code, verifier or token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import httpx
from aiohttp import web

from tegkit.cloud._tokens import TokenOrigin, Tokens, request_grant, write_token_file
from tegkit.cloud._transport import CloudTransport
from tegkit.errors import GatewayError, InvalidInputError

#: How long we wait for the browser to come back, unless told otherwise.
LOGIN_TIMEOUT_S = 300.0
CALLBACK_PATH = "/callback"
LOOPBACK_HOST = "127.0.0.1"
# What the callback page shows of the auth host's error text, at most.
_MAX_ERROR_CHARS = 200

_LOGIN_AGAIN = "run `teg cloud login` again"


class LoginError(GatewayError):
    """The login did not complete: no answer in time, a foreign answer, or a refusal."""


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE pair (RFC 7636, S256): the verifier stays here, the challenge travels."""

    verifier: str = field(repr=False)
    challenge: str


def s256(verifier: str) -> str:
    """The S256 code challenge of a verifier: base64url(sha256(verifier)), no padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def new_pkce() -> Pkce:
    """A fresh verifier (86 unreserved characters, 512 random bits) and its challenge."""
    verifier = secrets.token_urlsafe(64)
    return Pkce(verifier, s256(verifier))


def authorize_url(
    base_url: str, *, client_id: str, redirect_uri: str, scope: str, state: str, challenge: str
) -> str:
    """The URL the user opens to sign in and approve the application."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": scope,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    return f"{base_url}?{query}"


def _printable(text: str) -> str:
    clean = "".join(ch if ch.isprintable() else "?" for ch in text)
    return clean[:_MAX_ERROR_CHARS]


class _Callback:
    """The loopback server: one answer accepted (a code, or why not), then it is done."""

    def __init__(self, state: str) -> None:
        self._state = state
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def handle(self, request: web.Request) -> web.Response:
        if self.answer.done():
            return web.Response(status=410, text="This login is over; close this window.\n")
        query = request.query
        if not hmac.compare_digest(query.get("state", "").encode(), self._state.encode()):
            self.answer.set_exception(
                LoginError(
                    "the answer that reached the callback does not carry this login's state "
                    f"(another page or an old login sent it); nothing was saved: {_LOGIN_AGAIN}"
                )
            )
            return web.Response(status=400, text="This answer is not for this login.\n")
        if "error" in query:
            why = _printable(query.get("error_description") or query["error"])
            self.answer.set_exception(
                LoginError(f"the authorization was refused ({why}); {_LOGIN_AGAIN}")
            )
            return web.Response(status=400, text="The authorization was refused.\n")
        code = query.get("code", "")
        if not code:
            self.answer.set_exception(
                LoginError(f"the answer that reached the callback has no code; {_LOGIN_AGAIN}")
            )
            return web.Response(status=400, text="No authorization code in this answer.\n")
        self.answer.set_result(code)
        return web.Response(text="Logged in: you can close this window.\n")


async def _wait_for_code(
    state: str, port: int, timeout_s: float, on_ready: Callable[[str], None]
) -> str:
    """Serve the callback on 127.0.0.1:port; `on_ready(redirect_uri)`; the one code sent."""
    callback = _Callback(state)
    app = web.Application(client_max_size=16 * 1024)
    app.router.add_get(CALLBACK_PATH, callback.handle)
    runner = web.AppRunner(app, access_log=None)  # the query holds the code: never logged
    await runner.setup()
    try:
        site = web.TCPSite(runner, LOOPBACK_HOST, port)
        try:
            await site.start()
        except OSError as exc:
            raise LoginError(
                f"cannot listen on {LOOPBACK_HOST}:{port} for the login's answer: "
                f"{exc.strerror or exc}; choose another --redirect-port"
            ) from None
        bound = int(runner.addresses[0][1])
        on_ready(f"http://{LOOPBACK_HOST}:{bound}{CALLBACK_PATH}")
        try:
            async with asyncio.timeout(timeout_s):
                return await callback.answer
        except TimeoutError:
            raise LoginError(
                f"no answer from the browser within {timeout_s:g} s; {_LOGIN_AGAIN} "
                "(--timeout to wait longer)"
            ) from None
    finally:
        await runner.cleanup()


async def login(
    *,
    origin: TokenOrigin,
    authorize_base_url: str,
    auth_url: str,
    token_file: Path,
    show_url: Callable[[str], None],
    scope: str,
    client_secret: str | None = None,
    audience: str | None = None,
    redirect_port: int = 0,
    timeout_s: float = LOGIN_TIMEOUT_S,
    ssl_context: ssl.SSLContext | bool | None = None,
    http1: bool = False,
    http_client: httpx.AsyncClient | None = None,
    clock_s: Callable[[], float] = time.time,
    pkce: Pkce | None = None,
) -> Tokens:
    """Run the whole login; the tokens, already saved (0600) in `token_file` with `origin`.

    `show_url(url)` is called with the authorize URL once the callback listens (print it,
    open a browser). `audience` (the Fleet API host) is sent with the code exchange, as the
    Fleet API's token host asks. `pkce` is for tests; a fresh pair otherwise.
    """
    if isinstance(redirect_port, bool) or not 0 <= redirect_port <= 65535:
        raise InvalidInputError(
            "redirect_port", "a port number from 0 (any) to 65535", redirect_port
        )
    if not timeout_s > 0:
        raise InvalidInputError("timeout_s", "a number of seconds > 0", timeout_s)
    pair = pkce or new_pkce()
    state = secrets.token_urlsafe(24)
    redirect: list[str] = []

    def ready(redirect_uri: str) -> None:
        redirect.append(redirect_uri)
        show_url(
            authorize_url(
                authorize_base_url,
                client_id=origin.client_id,
                redirect_uri=redirect_uri,
                scope=scope,
                state=state,
                challenge=pair.challenge,
            )
        )

    code = await _wait_for_code(state, redirect_port, timeout_s, ready)
    body = {
        "grant_type": "authorization_code",
        "client_id": origin.client_id,
        "code": code,
        "code_verifier": pair.verifier,
        "redirect_uri": redirect[0],
    }
    if audience is not None:
        body["audience"] = audience
    if client_secret is not None:
        body["client_secret"] = client_secret
    transport = CloudTransport(
        verify=True if ssl_context is None else ssl_context,
        timeout_s=20.0,
        http1=http1,
        client=http_client,
    )
    try:
        tokens = await request_grant(
            transport,
            auth_url,
            body,
            form=origin.flavour == "fleet",
            secrets=tuple(s for s in (code, pair.verifier, client_secret) if s),
            now_s=clock_s(),
            previous=None,
            hint=f"the login could not be completed; {_LOGIN_AGAIN}",
        )
    finally:
        await transport.aclose()
    await asyncio.to_thread(write_token_file, token_file, tokens, origin)
    return tokens


__all__ = [
    "CALLBACK_PATH",
    "LOGIN_TIMEOUT_S",
    "LoginError",
    "Pkce",
    "authorize_url",
    "login",
    "new_pkce",
    "s256",
]
