"""Memory of a long-running process holding many TLS connections (`teg monitor` following a
fleet).

asyncio's TLS layer gives every connection a zero-filled read buffer of 256 KiB (the
`max_size` of asyncio.sslproto.SSLProtocol, a class attribute): with two connections per
gateway a thousand gateways would hold 500 MB in buffers alone. Answers of the gateway's
local API are a few kilobytes; 16 KiB (one TLS record) reads them in one pass, a larger
one in a few. On uvloop (tegkit.cli._loop) that class is not used and the setting changes
nothing: uvloop's TLS layer allocates its 256 KiB read buffer without filling it, so only the
pages a read touches take memory (1,000 gateways: RSS 334 MB on uvloop, 365 MB on asyncio).

The objects made at import time (the modules, scipy's, aiohttp's...) live as long as the
process: frozen out of the garbage collector's generations, a full collection no longer walks
them every time (a pause of the event loop that shows as late polls in a large fleet).
"""

from __future__ import annotations

import asyncio.sslproto
import gc

TLS_READ_BUFFER_BYTES = 16 * 1024


def small_tls_read_buffers() -> None:
    """Make each new TLS connection of this process read into TLS_READ_BUFFER_BYTES."""
    protocol = asyncio.sslproto.SSLProtocol
    if isinstance(getattr(protocol, "max_size", None), int):  # CPython 3.11 to 3.13
        protocol.max_size = TLS_READ_BUFFER_BYTES


def prepare_long_run() -> None:
    """Before the event loop of a long-running command: small TLS read buffers, and the
    objects made so far left out of later garbage collections."""
    small_tls_read_buffers()
    gc.collect()
    gc.freeze()
