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

The collector's youngest generation is made larger (YOUNG_GENERATION_OBJECTS instead of
700). Python counts containers made less those freed; a thousand requests in flight keep
more than 700 alive at any moment, so the default collected the young generation 25 times a
second, promoted each request's objects into the older generations and ran a full
collection every few seconds: 6 % of a core with 1,000 gateways, for garbage that reference
counting frees anyway. With the larger generation a collection runs every few minutes;
cyclic garbage is still reclaimed, just in larger, rarer batches.
"""

from __future__ import annotations

import asyncio.sslproto
import gc

TLS_READ_BUFFER_BYTES = 16 * 1024
YOUNG_GENERATION_OBJECTS = 20_000


def small_tls_read_buffers() -> None:
    """Make each new TLS connection of this process read into TLS_READ_BUFFER_BYTES."""
    protocol = asyncio.sslproto.SSLProtocol
    if isinstance(getattr(protocol, "max_size", None), int):  # CPython 3.11 to 3.13
        protocol.max_size = TLS_READ_BUFFER_BYTES


def prepare_long_run() -> None:
    """Before the event loop of a long-running command: small TLS read buffers, the objects
    made so far left out of later garbage collections, and a larger young generation."""
    small_tls_read_buffers()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_OBJECTS)  # the older generations keep their defaults
