"""Turn a response body into its typed model: by catalog entry (parse_response) or by type."""

from __future__ import annotations

from typing import Any, TypeVar, overload

import msgspec

from tegkit import catalog
from tegkit.errors import ParseError
from tegkit.models import _lenient, diagnostics, live, setup, site
from tegkit.models._base import keep_raw_bytes, keep_raw_json

__all__ = ["MODELS", "decode", "model_for", "parse_response"]

T = TypeVar("T")

# Every public name of the model modules, by name: what catalog entries' `model` refers to.
MODELS: dict[str, Any] = {
    name: getattr(module, name)
    for module in (live, site, setup, diagnostics)
    for name in module.__all__
}

_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}
_TEXT = (bytes, str)
_BUFFERS = (bytearray, memoryview)


def _decoder(model_type: Any) -> msgspec.json.Decoder[Any]:
    found = _DECODERS.get(model_type)
    if found is None:
        found = _DECODERS[model_type] = msgspec.json.Decoder(model_type)
    return found


def _label(model_type: Any) -> str:
    return getattr(model_type, "__name__", None) or repr(model_type)


@overload
def decode(model_type: type[T], body: object, endpoint: str | None = None) -> T: ...
@overload
def decode(model_type: Any, body: object, endpoint: str | None = None) -> Any: ...
def decode(model_type: Any, body: object, endpoint: str | None = None) -> Any:
    """`body` (JSON bytes or text, or already-decoded JSON) as `model_type`.

    A body that fits exactly takes msgspec's fast path; anything else (keys re-cased, unknown
    keys, null for a list) gets the lenient second reading of `tegkit.models._lenient`.
    Raises ParseError naming `endpoint` (or the type) and the field path when it does not fit.
    Top-level models keep the body for a lazy `.raw`.
    """
    if isinstance(body, _BUFFERS):
        body = bytes(body)  # the caller may reuse its buffer
    try:
        if isinstance(body, _TEXT):
            try:
                result = _decoder(model_type).decode(body)
            except msgspec.ValidationError:
                # Valid JSON of another shape (a newer firmware?): the lenient second reading.
                result = _lenient.convert(msgspec.json.decode(body), model_type)
            keep_raw_bytes(result, body)
        else:
            try:
                result = msgspec.convert(body, model_type)
            except msgspec.ValidationError:
                result = _lenient.convert(body, model_type)
            keep_raw_json(result, body)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError too
        raise ParseError(endpoint or _label(model_type), str(exc)) from exc
    except RecursionError as exc:  # a body nested deeper than any answer: a peer's mischief
        raise ParseError(endpoint or _label(model_type), "JSON nested too deeply") from exc
    return result


def model_for(method: str, path: str) -> Any | None:
    """The model type of a request's catalog entry (None: the entry has no model).

    Raises KeyError naming the request when it is not in the catalog.
    """
    found = catalog.match(method, path)
    if found is None:
        raise KeyError(f"{method.upper()} {path} is not in the endpoint catalog")
    name = found[0].model
    return None if name is None else MODELS[name]


def parse_response(method: str, path: str, body: bytes | str | object) -> object:
    """A response body as the model of its catalog entry, or as plain JSON if it has none.

    `body` is JSON bytes or text, or already-decoded JSON. Raises KeyError when the request is
    not in the catalog and ParseError (naming endpoint and field) when the body does not fit.
    """
    model_type = model_for(method, path)
    endpoint = f"{method.upper()} {path}"
    if model_type is None:
        if isinstance(body, _BUFFERS):
            body = bytes(body)
        if not isinstance(body, _TEXT):
            return body
        try:
            return msgspec.json.decode(body)
        except msgspec.DecodeError as exc:
            raise ParseError(endpoint, str(exc)) from exc
        except RecursionError as exc:
            raise ParseError(endpoint, "JSON nested too deeply") from exc
    return decode(model_type, body, endpoint)
