"""The endpoint catalog: one table of every endpoint, read by client, simulator, CLI and docs.

>>> find("GET", "/api/meters/aggregates").model
'MetersAggregates'
>>> find("POST", "/api/meters/ABC123/verify").path
'/api/meters/{serial}/verify'
"""

from __future__ import annotations

from tegkit.catalog._table import CLOUD, LOCAL
from tegkit.catalog._types import Api, Auth, Effect, Endpoint, Firmware

ENDPOINTS: tuple[Endpoint, ...] = LOCAL + CLOUD

# Static paths are looked up in a dict; templates are tried with the most specific first,
# so /api/meters/aggregates never falls into /api/{resource}.
_STATIC: dict[tuple[str, str], Endpoint] = {
    (e.method, e.path): e for e in ENDPOINTS if not e.params
}
_TEMPLATES: tuple[Endpoint, ...] = tuple(
    sorted((e for e in ENDPOINTS if e.params), key=lambda e: (len(e.params), -len(e.path)))
)


def _strip(path: str) -> str:
    path = path.split("?", 1)[0].split("#", 1)[0]
    return path.rstrip("/") or "/"


def match(method: str, path: str) -> tuple[Endpoint, dict[str, str]] | None:
    """The catalog entry for a concrete request and its path parameters, or None."""
    method = method.upper()
    path = _strip(path)
    static = _STATIC.get((method, path))
    if static is not None:
        return static, {}
    for endpoint in _TEMPLATES:
        if endpoint.method == method:
            params = endpoint.match(path)
            if params is not None:
                return endpoint, params
    return None


def find(method: str, path: str) -> Endpoint:
    """Like `match`, but raise KeyError naming the request when it is not in the catalog."""
    found = match(method, path)
    if found is None:
        raise KeyError(f"{method.upper()} {path} is not in the endpoint catalog")
    return found[0]


def methods_for(path: str) -> list[str]:
    """Every method the catalog has for a concrete path (empty: the path is unknown)."""
    path = _strip(path)
    methods = {e.method for e in ENDPOINTS if (e.path == path or e.match(path) is not None)}
    return sorted(methods)


def endpoints(api: Api | None = None) -> tuple[Endpoint, ...]:
    """All endpoints, or those of one API ("local" or "cloud")."""
    return ENDPOINTS if api is None else tuple(e for e in ENDPOINTS if e.api == api)


__all__ = [
    "ENDPOINTS",
    "Api",
    "Auth",
    "Effect",
    "Endpoint",
    "Firmware",
    "endpoints",
    "find",
    "match",
    "methods_for",
]
