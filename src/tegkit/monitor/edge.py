"""Untrusted input at the HTTP edge: the 400 answer that names the field and what it accepts."""

from __future__ import annotations

import msgspec
from aiohttp import web

#: a refused value is echoed back this long at most (a body can be a megabyte).
ECHO_MAX_CHARS = 80


class BadParameter(web.HTTPBadRequest):
    """400 with {"error", "parameter", "allowed"}: the field, and what it accepts."""

    def __init__(self, name: str, allowed: str, value: object = None) -> None:
        shown = repr(value)
        if len(shown) > ECHO_MAX_CHARS:
            shown = shown[: ECHO_MAX_CHARS - 3] + "..."
        body = {"error": f"{name}: {shown} is not allowed; expected {allowed}"}
        body |= {"parameter": name, "allowed": allowed}
        super().__init__(text=msgspec.json.encode(body).decode(), content_type="application/json")
