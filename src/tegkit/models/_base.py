"""The two Struct bases of every model: top-level responses that keep their raw JSON, and parts.

Conventions shared by all models:

- Attribute names carry units where the gateway's names do not (`instant_power` ->
  `instant_power_w`); `msgspec.field(name=...)` keeps the gateway's name on the wire, so
  `msgspec.json.encode(model)` writes the gateway's JSON.
- A field some captures lack defaults to None and is left out when encoding (omit_defaults).
- A field the gateway sends as `null` defaults to `UNSET` instead, so that "sent as null" and
  "not sent" stay distinct and a model encodes back to the keys it was parsed from. UNSET is
  falsy, like None.
- Enumerations are plain strings, so values a newer firmware adds are kept.
- Only the fields an endpoint's purpose depends on are required (a reading's power, a state
  of energy's percentage); every other field is optional and accepts null.
- Unknown keys are forbidden on the fast path only: an exact body decodes at msgspec speed,
  and a body with unknown or re-cased keys gets the lenient second reading described in
  `tegkit.models._lenient` (unknown keys stay in `.raw`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET, UnsetType

__all__ = ["UNSET", "Model", "Part", "UnsetType", "field", "present"]

field = msgspec.field

# Attribute names in the instance __dict__ (Struct dict=True); never encoded.
_RAW_BYTES = "_tegkit_raw_bytes"
_RAW_JSON = "_tegkit_raw_json"


class Part(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=True):
    """A nested object of a response."""


class Model(
    msgspec.Struct, kw_only=True, omit_defaults=True, dict=True, forbid_unknown_fields=True
):
    """A top-level response object; `.raw` gives the JSON it was parsed from, unknown keys too."""

    @property
    def raw(self) -> dict[str, Any]:
        """The decoded JSON object this model came from (its own encoding if built in code).

        Kept as the response bytes and decoded on first read, so parsing stays fast.
        """
        found = self.__dict__.get(_RAW_JSON)
        if found is None:
            source = self.__dict__.get(_RAW_BYTES)
            # Built in code (no source): its own encoding stands in.
            found = msgspec.json.decode(source) if source is not None else msgspec.to_builtins(self)
            self.__dict__[_RAW_JSON] = found
        if not isinstance(found, dict):  # only from a caller that bypassed parse_response
            return {}
        return found


def has_source(model: Model) -> bool:
    """True when the model was parsed from a response (so `.raw` may hold unknown keys)."""
    return _RAW_BYTES in model.__dict__ or _RAW_JSON in model.__dict__


def keep_raw_bytes(model: object, body: bytes | bytearray | memoryview | str) -> None:
    """Remember the response bytes of a top-level model for a later `.raw`."""
    if isinstance(model, Model):
        model.__dict__[_RAW_BYTES] = body


def keep_raw_json(model: object, decoded: object) -> None:
    """Remember the decoded JSON of a top-level model for `.raw`."""
    if isinstance(model, Model):
        model.__dict__[_RAW_JSON] = decoded


def present(value: object) -> bool:
    """True when a field holds a value: neither None nor UNSET."""
    return value is not None and value is not UNSET
