"""Customer login for the local API: cookies and bearer token, one re-login, no login storms.

The gateway's POST /api/login/Basic sets the AuthCookie and UserRecord cookies and (on older
firmware the only thing that counts) returns a bearer token in the body; both are sent on
every later request. Login is lazy unless asked for. A request that meets 401/403 with a
session logs in again once and is retried once. Concurrent callers share one login in
flight; failed logins back off exponentially and a 429 on login cools login down, so a wrong
password never turns into a loop.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import msgspec

from tegkit._private_file import write_private
from tegkit.client._transport import DEFAULT_COOL_DOWN_S, Reply, Transport, base_url, error_for
from tegkit.errors import ApiError, AuthenticationError, ParseError, RateLimitedError

_LOG = logging.getLogger("tegkit.client")
LOGIN_PATH = "/api/login/Basic"
LOGOUT_PATH = "/api/logout"
_SESSION_COOKIES = ("AuthCookie", "UserRecord")
# A session value goes back to the gateway in a header: only visible ASCII, bounded. The real
# ones are base64 of a few hundred bytes; CR/LF or controls would break (or forge) headers.
MAX_SESSION_VALUE_CHARS = 4096
_TOKEN_CHARS = frozenset(chr(code) for code in range(0x21, 0x7F))
# A cookie value also may not carry the separators of the Cookie header (RFC 6265 cookie-octet).
_COOKIE_CHARS = _TOKEN_CHARS - frozenset('",;\\')
_MAX_SESSION_FILE_BYTES = 64 * 1024  # a kept session is a few hundred bytes


def check_token(token: object) -> str | None:
    """Why `token` cannot be sent as a Bearer token, or None when it can (never echoes it)."""
    if not isinstance(token, str):
        return "the token is not a string"
    if not token or len(token) > MAX_SESSION_VALUE_CHARS:
        return f"the token is empty or longer than {MAX_SESSION_VALUE_CHARS} characters"
    if not set(token) <= _TOKEN_CHARS:
        return "the token holds characters a header may not carry (spaces, CR/LF, controls)"
    return None


def check_cookie(name: object, value: object) -> str | None:
    """Why a session cookie cannot be sent back, or None when it can (never echoes it)."""
    if not isinstance(name, str) or name not in _SESSION_COOKIES:
        return f"unexpected session cookie name (expected {' or '.join(_SESSION_COOKIES)})"
    if not isinstance(value, str):
        return f"the {name} cookie is not a string"
    if not value or len(value) > MAX_SESSION_VALUE_CHARS:
        return f"the {name} cookie is empty or longer than {MAX_SESSION_VALUE_CHARS} characters"
    if not set(value) <= _COOKIE_CHARS:
        return f"the {name} cookie holds characters a Cookie header may not carry"
    return None


@dataclass(frozen=True, slots=True)
class Credentials:
    """Who logs in. The password never shows in repr."""

    password: str | None = field(default=None, repr=False)
    email: str = ""
    username: str = "customer"


@dataclass(slots=True)
class SessionState:
    """What a login gave us: the bearer token and the session cookies."""

    token: str | None = field(default=None, repr=False)
    cookies: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def active(self) -> bool:
        return bool(self.token or self.cookies)

    def headers(self) -> dict[str, str]:
        """Request headers that carry this session."""
        headers: dict[str, str] = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers


class _LoginBody(msgspec.Struct):
    token: str | None = None


class SessionFile:
    """A session (token and cookies) persisted as JSON, mode 0600, for one gateway URL."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url

    def load(self) -> SessionState | None:
        """The kept session for this URL, or None.

        A file that does not parse, or whose token or cookies could not be sent back, is
        removed with a warning: it would fail every later request (logout included).
        """
        try:
            with self.path.open("rb") as file:
                raw = file.read(_MAX_SESSION_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return self._discard(f"cannot be read ({exc.__class__.__name__})")
        if len(raw) > _MAX_SESSION_FILE_BYTES:
            return self._discard(f"is larger than {_MAX_SESSION_FILE_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return self._discard("is not UTF-8 text")
        try:
            data = jsonlib.loads(text)
        except ValueError:
            return self._discard("is not JSON")
        if not isinstance(data, dict):
            return self._discard("is not a JSON object")
        if data.get("url") != self.url:
            return None  # another gateway's session: not ours to judge or remove
        token = data.get("token")
        cookies = data.get("cookies")
        if cookies is None:
            cookies = {}
        if not isinstance(cookies, dict):
            return self._discard("has cookies that are not an object")
        problem = None if token is None else check_token(token)
        for name, value in cookies.items():
            problem = problem or check_cookie(name, value)
        if problem is not None:
            return self._discard(problem)
        return SessionState(token=token, cookies=dict(cookies))

    def _discard(self, problem: str) -> SessionState | None:
        try:
            self.remove()
        except OSError as exc:  # not ours to fix here: ignoring the file is enough
            _LOG.warning(
                "session file %s %s; ignored (cannot remove it: %s)", self.path, problem, exc
            )
        else:
            _LOG.warning(
                "session file %s %s; removed it, the next login makes a new one", self.path, problem
            )
        return None

    def save(self, state: SessionState) -> None:
        data = {"url": self.url, "token": state.token, "cookies": state.cookies}
        write_private(self.path, jsonlib.dumps(data, indent=2).encode())

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except IsADirectoryError:
            _LOG.warning("session file %s is a folder; left as it is", self.path)


def has_kept_session(session_file: Path, host: str) -> bool:
    """True when `session_file` keeps a session (token or cookies) for the gateway at `host`.

    `host` is given as to `Gateway` (name, address, host:port or https:// URL); a session kept
    for another gateway does not count. A kept file that cannot be used is removed with a
    warning, as the client's next request would do.
    """
    kept = SessionFile(session_file, str(base_url(host))).load()
    return kept is not None and kept.active


class Authenticator:
    """Logs in when needed and sends requests with the session attached."""

    def __init__(
        self,
        transport: Transport,
        credentials: Credentials,
        *,
        session_file: Path | None = None,
        login_backoff_s: float = 1.0,
        max_login_backoff_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._transport = transport
        self._credentials = credentials
        self._file = None if session_file is None else SessionFile(session_file, str(transport.url))
        self._file_loaded = self._file is None
        self._file_task: asyncio.Task[SessionState | None] | None = None
        self._login_backoff_s = login_backoff_s
        self._max_login_backoff_s = max_login_backoff_s
        self._clock = clock
        self.state = SessionState()
        self._headers: tuple[SessionState, Mapping[str, str]] | None = None
        self.generation = 0  # bumped by every successful login
        self.logins_sent = 0
        self._failures = 0
        self._blocked_until = 0.0
        self._block_error: ApiError | None = None
        self._login_task: asyncio.Task[None] | None = None
        # Run around every login, inside the shared login task: the first reads what the
        # login may change (whether the system runs), the second repairs it afterwards.
        self.before_login: Callable[[], Awaitable[bool]] | None = None
        self.after_login: Callable[[bool], Awaitable[None]] | None = None

    def __repr__(self) -> str:
        active = "yes" if self.state.active else "no"
        return f"<Authenticator {self._transport.url} session={active}>"

    @property
    def can_login(self) -> bool:
        return self._credentials.password is not None

    def change_password(self, password: str) -> None:
        """Use `password` for later logins (after the gateway accepted a change)."""
        self._credentials = replace(self._credentials, password=password)

    def _session_headers(self) -> Mapping[str, str]:
        """The session's request headers, built once per session: every request sends them."""
        if self._headers is None or self._headers[0] is not self.state:
            self._headers = (self.state, self.state.headers())
        return self._headers[1]

    async def _load_file(self) -> None:
        if self._file_loaded or self._file is None:
            return
        # Callers that arrive while the file is read wait for it: none may go out without
        # the kept session (and so log in again) just because it came second.
        if self._file_task is None:
            self._file_task = asyncio.ensure_future(asyncio.to_thread(self._file.load))
        loaded = await asyncio.shield(self._file_task)
        if self._file_loaded:
            return
        self._file_loaded = True
        if loaded is not None and loaded.active and not self.state.active:
            self.state = loaded
            _LOG.debug("session loaded from %s", self._file.path)

    async def login(self) -> None:
        """Log in now; concurrent callers share one login, failures back off."""
        task = self._login_task
        if task is None or task.done():
            self._check_blocked()
            task = asyncio.ensure_future(self._login_once())
            self._login_task = task
        await asyncio.shield(task)

    def _check_blocked(self) -> None:
        remaining_s = self._blocked_until - self._clock()
        if remaining_s <= 0 or self._block_error is None:
            return
        error = self._block_error
        if isinstance(error, RateLimitedError):
            raise RateLimitedError(
                error.status,
                "POST",
                LOGIN_PATH,
                error.code,
                error.error,
                f"login cooling down after HTTP 429; {remaining_s:.1f} s left",
                retry_after_s=remaining_s,
            )
        raise type(error)(
            error.status,
            "POST",
            LOGIN_PATH,
            error.code,
            error.error,
            f"login failed {self._failures} time(s); next try allowed in {remaining_s:.1f} s",
        )

    async def _login_once(self) -> None:
        if self._credentials.password is None:
            raise AuthenticationError(
                401, "POST", LOGIN_PATH, message="this gateway needs a login: give a password"
            )
        body = {
            "username": self._credentials.username,
            "email": self._credentials.email,
            "password": self._credentials.password,
            "force_sm_off": False,
        }
        noted = False if self.before_login is None else await self.before_login()
        self.logins_sent += 1
        reply = await self._transport.round_trip("POST", LOGIN_PATH, json=body)
        if not 200 <= reply.status < 300:
            error = error_for("POST", LOGIN_PATH, reply)
            self._note_failure(error)
            raise error
        try:
            token = msgspec.json.decode(reply.body, type=_LoginBody).token if reply.body else None
        except msgspec.DecodeError as exc:
            raise ParseError(f"POST {LOGIN_PATH}", str(exc)) from None
        cookies = {k: v for k, v in reply.cookies.items() if k in _SESSION_COOKIES}
        problem = None if not token else check_token(token)
        for name, value in cookies.items():
            problem = problem or check_cookie(name, value)
        if problem is not None:
            # Never sent back, never saved: the gateway (or whatever answers) is broken.
            error = AuthenticationError(
                reply.status, "POST", LOGIN_PATH, message=f"unusable login answer: {problem}"
            )
            self._note_failure(error)
            raise error
        self.state = SessionState(token=token or None, cookies=cookies)
        self.generation += 1
        # `_failures` stays until a request with the session succeeds: a session that is
        # refused at once must not reset the back-off (see `send`).
        self._blocked_until = 0.0
        self._block_error = None
        _LOG.debug("logged in to %s", self._transport.url)
        if self._file is not None:
            await asyncio.to_thread(self._file.save, self.state)
        if self.after_login is not None:
            await self.after_login(noted)

    def _note_failure(self, error: ApiError) -> None:
        if isinstance(error, RateLimitedError):
            wait_s = error.retry_after_s
            self._blocked_until = self._clock() + (
                DEFAULT_COOL_DOWN_S if wait_s is None else wait_s
            )
        else:
            self._failures += 1
            wait_s = min(
                self._max_login_backoff_s, self._login_backoff_s * 2 ** (self._failures - 1)
            )
            self._blocked_until = self._clock() + wait_s
        self._block_error = error
        _LOG.warning(
            "login to %s failed (HTTP %s): %s", self._transport.url, error.status, error.message
        )

    async def logout(self) -> None:
        """End the session on the gateway and forget it here (and in the session file)."""
        await self._load_file()
        headers = self.state.headers()
        self.state = SessionState()
        self.generation += 1
        if self._file is not None:
            await asyncio.to_thread(self._file.remove)
        host = self._transport.url.host
        if host:
            self._transport.session.cookie_jar.clear_domain(host)
        if headers:
            reply = await self._transport.round_trip("GET", LOGOUT_PATH, headers=headers)
            if reply.status >= 400 and reply.status != 401:
                raise error_for("GET", LOGOUT_PATH, reply)

    async def send(
        self,
        send: Callable[[Mapping[str, str]], Awaitable[Reply]],
        *,
        needs_login: bool = False,
        relogin_on_403: bool = True,
    ) -> Reply:
        """Send with the session attached; log in and retry once on 401/403.

        `needs_login` logs in before the first try when there is no session yet (the
        firmware is known to need it); otherwise the first 401/403 asks for the login.
        """
        await self._load_file()
        if needs_login and not self.state.active and self.can_login:
            await self.login()
        generation = self.generation
        had_session = self.state.active
        reply = await send(self._session_headers())
        denied = reply.status == 401 or (
            reply.status == 403 and (relogin_on_403 or not had_session)
        )
        if not denied or not self.can_login:
            if self._failures and reply.status != 401:
                self._failures = 0  # the session works: back-off starts afresh
            return reply
        if self.generation == generation:
            # Nobody renewed the session while we waited: this caller logs in (shared).
            await self.login()
        retried = await send(self._session_headers())
        if retried.status != 401:
            self._failures = 0
        elif self._clock() >= self._blocked_until:
            # A session fresh from a login was refused as well: another login would not
            # help, and the gateway locks out repeated logins, so later ones back off.
            self._note_failure(
                AuthenticationError(401, "POST", LOGIN_PATH, message="the new session was refused")
            )
        return retried


__all__ = [
    "LOGIN_PATH",
    "LOGOUT_PATH",
    "MAX_SESSION_VALUE_CHARS",
    "Authenticator",
    "Credentials",
    "SessionFile",
    "SessionState",
    "check_cookie",
    "check_token",
    "has_kept_session",
]
