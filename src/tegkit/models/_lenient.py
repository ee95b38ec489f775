"""The second reading of a body that did not fit its model exactly: what newer firmware sends.

Models forbid unknown keys, so an exact body (every capture, every simulator answer) takes
msgspec's fast path and anything else comes here, already decoded, to be made to fit:

- A key that is not a field name but matches one after re-casing is read as that field:
  keys compare with case, `_` and `-` ignored ("Instant_Power", "instantPower" and
  "INSTANT-POWER" all read as `instant_power`). An exact key always wins; a folded key that
  two fields share (Powerwall's "Type" and "type") matches neither.
- Other unknown keys are dropped here; `.raw` still has them.
- `null` where a list or a dict is expected (Go's nil slice or map) reads as empty.

Renamed keys cannot be guessed: the field reads as missing (None, or a ParseError naming it
when the endpoint's purpose needs it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import msgspec
import msgspec.inspect as mi

__all__ = ["convert", "fold"]

_AMBIGUOUS: Final = ""

# Turns a decoded JSON value into what a type can take; None where the value is left alone.
Adapter = Callable[[Any], Any]


def fold(key: str) -> str:
    """A key as compared when it is not an exact field name: lower case, no `_` or `-`."""
    return key.lower().replace("_", "").replace("-", "")


class _StructKeys:
    """A Struct's wire names, their adapters, and the folded names that point at one of them.

    Adapters are looked up on first use, so a Struct that contains itself is fine.
    """

    __slots__ = ("_adapters", "folded", "info")

    def __init__(self, info: mi.StructType) -> None:
        self.info = info
        self._adapters: dict[str, Adapter | None] | None = None
        self.folded: dict[str, str] = {}
        for f in info.fields:
            key = fold(f.encode_name)
            self.folded[key] = _AMBIGUOUS if key in self.folded else f.encode_name

    def adapters(self) -> dict[str, Adapter | None]:
        if self._adapters is None:
            self._adapters = {f.encode_name: _adapter(f.type) for f in self.info.fields}
        return self._adapters

    def adapt(self, value: dict[str, Any]) -> dict[str, Any]:
        adapters = self.adapters()
        out: dict[str, Any] = {}
        others: list[tuple[str, Any]] = []
        for key, item in value.items():
            if key in adapters:
                adapt = adapters[key]
                out[key] = item if adapt is None else adapt(item)
            else:
                others.append((key, item))
        for key, item in others:
            name = self.folded.get(fold(key))
            if name and name not in out:  # an exact key wins, then the first re-cased one
                adapt = adapters[name]
                out[name] = item if adapt is None else adapt(item)
        return out


# By id() of the inspected type, with the type kept alive beside its adapter.
_ADAPTERS: dict[int, tuple[mi.Type, Adapter | None]] = {}
_INFOS: dict[Any, mi.Type] = {}


def _adapter(info: mi.Type) -> Adapter | None:
    found = _ADAPTERS.get(id(info))
    if found is not None:
        return found[1]
    members = info.types if isinstance(info, mi.UnionType) else (info,)
    struct = next((m for m in members if isinstance(m, mi.StructType)), None)
    mapping = next((m for m in members if isinstance(m, mi.DictType)), None)
    array = next((m for m in members if isinstance(m, mi.ListType)), None)
    if struct is None and mapping is None and array is None:
        _ADAPTERS[id(info)] = (info, None)
        return None
    # Null fits a nullable type as it is; otherwise an empty container is the reading.
    nullable = any(isinstance(m, mi.NoneType | mi.AnyType) for m in members)
    empty: Any = None if nullable else ([] if array is not None else {})
    keys = _StructKeys(struct) if struct is not None else None
    items: list[Adapter | None] = []  # filled below, after this adapter is registered

    def adapt(value: Any) -> Any:
        kind = type(value)
        if kind is dict:
            if keys is not None:
                return keys.adapt(value)
            if mapping is not None and items[0] is not None:
                each = items[0]
                return {key: each(item) for key, item in value.items()}
            return value
        if kind is list:
            if array is not None and items[1] is not None:
                each = items[1]
                return [each(item) for item in value]
            return value
        if value is None and empty is not None:
            return type(empty)()
        return value

    _ADAPTERS[id(info)] = (info, adapt)
    items.append(None if mapping is None else _adapter(mapping.value_type))
    items.append(None if array is None else _adapter(array.item_type))
    return adapt


def _info(model_type: Any) -> mi.Type:
    found = _INFOS.get(model_type)
    if found is None:
        found = _INFOS[model_type] = mi.type_info(model_type)
    return found


def convert(decoded: Any, model_type: Any) -> Any:
    """Decoded JSON as `model_type`, read the lenient way (raises msgspec.ValidationError)."""
    adapt = _adapter(_info(model_type))
    return msgspec.convert(decoded if adapt is None else adapt(decoded), model_type)
