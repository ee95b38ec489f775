"""Request bodies a peer sends: bounded in size and nesting before any handler sees them.

Both the local API and the /sim control API read bodies through `decode_json`, so a body
that is too large, not JSON, or nested deeper than any real request is refused the same way
(a ValueError naming what is allowed) and never reaches code that would recurse on it.
"""

from __future__ import annotations

from typing import Any

import msgspec

MAX_BODY_BYTES = 64 * 1024
# The deepest real request (a CT list inside an object) is three levels; 32 leaves room.
MAX_DEPTH = 32

_decoder = msgspec.json.Decoder()


class BodyError(ValueError):
    """A request body we refuse; the message says what is allowed."""


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether `value` nests lists / objects more than `limit` levels (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def decode_json(raw: bytes) -> Any:
    """The decoded body (None when blank); BodyError when too large, malformed or too deep."""
    if len(raw) > MAX_BODY_BYTES:
        raise BodyError(f"body: at most {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        return None
    # Fewer openers than the limit cannot nest deeper than it: skip the walk (the usual case).
    openers = raw.count(b"[") + raw.count(b"{")
    try:
        value = _decoder.decode(raw)
    except RecursionError as exc:
        raise BodyError(f"body: JSON nested at most {MAX_DEPTH} levels deep") from exc
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise BodyError(f"body: malformed JSON ({exc})") from exc
    if openers > MAX_DEPTH and too_deep(value):
        raise BodyError(f"body: JSON nested at most {MAX_DEPTH} levels deep")
    return value


__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "BodyError", "decode_json", "too_deep"]
