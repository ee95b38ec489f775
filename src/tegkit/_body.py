"""Reading an HTTP body with a size limit, for both clients (gateway and cloud).

A peer decides how much it sends; reading `response.read()` whole lets a broken or hostile
one (an endless stream, a gzip bomb) take all the memory. The limit applies to the decoded
body, so compression cannot hide a large answer.
"""

from __future__ import annotations

import aiohttp

from tegkit.errors import InvalidInputError, ResponseTooLargeError

#: The largest documented answer (the solar brands list) is a few tens of KiB, and the
#: cloud's answers are smaller still; past this a peer is broken or hostile.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


def checked_max_response_bytes(value: object) -> int:
    """`max_response_bytes` as both clients take it: a whole number of bytes >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError("max_response_bytes", "a whole number of bytes >= 1", value)
    return value


async def read_capped(response: aiohttp.ClientResponse, limit_bytes: int, endpoint: str) -> bytes:
    """The whole body, or ResponseTooLargeError as soon as it passes `limit_bytes`."""
    announced = response.content_length
    if announced is not None and announced > limit_bytes:
        response.close()  # the connection still holds the unread body: never reuse it
        raise ResponseTooLargeError(endpoint, limit_bytes, announced)
    if announced is not None and "Content-Encoding" not in response.headers:
        # the parser stops at the announced length, which fits: one read, no chunk loop
        # (a fleet's monitor reads hundreds of answers a second)
        return await response.read()
    body = bytearray()
    async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
        body += chunk
        if len(body) > limit_bytes:
            response.close()
            raise ResponseTooLargeError(endpoint, limit_bytes)
    return bytes(body)


__all__ = ["DEFAULT_MAX_RESPONSE_BYTES", "checked_max_response_bytes", "read_capped"]
