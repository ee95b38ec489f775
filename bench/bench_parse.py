"""Parse speed: microseconds per parse of the 21.44 aggregates capture, typed and via catalog."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from tegkit.models import MetersAggregates, decode, parse_response

CAPTURE = (
    Path(__file__).resolve().parents[1]
    / ".."
    / "shared"
    / "reference"
    / "vloschiavo-powerwall2"
    / "samples"
    / "21.44-foogod"
    / "running"
    / "meters.aggregates.json"
).resolve()
PATH = "/api/meters/aggregates"


def _per_call_us(call: Callable[[], object], iterations: int) -> float:
    """Best of five runs of `iterations` calls, in microseconds per call."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(iterations):
            call()
        best = min(best, time.perf_counter() - start)
    return best / iterations * 1e6


def run(iterations: int = 20_000) -> list[tuple[str, float, str]]:
    """(name, value, unit) rows for the aggregates capture (2965 bytes)."""
    body = CAPTURE.read_bytes()
    typed = msgspec.json.Decoder(MetersAggregates)
    parsed = decode(MetersAggregates, body)
    doc = json.loads(body)
    newer = json.dumps({k: {**v, "firmware_new_key": 1} for k, v in doc.items()}).encode()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("aggregates: msgspec Decoder alone", lambda: typed.decode(body)),
        ("aggregates: decode(MetersAggregates)", lambda: decode(MetersAggregates, body)),
        ("aggregates: parse_response (catalog)", lambda: parse_response("GET", PATH, body)),
        ("aggregates: json.loads to dict (reference)", lambda: json.loads(body)),
        ("aggregates: decode + first .raw read", lambda: decode(MetersAggregates, body).raw),
        ("aggregates: encode model to JSON", lambda: msgspec.json.encode(parsed)),
        # A newer firmware's body (a new key in every meter) takes the lenient second reading.
        ("aggregates: parse_response, new keys", lambda: parse_response("GET", PATH, newer)),
    ]
    return [(name, _per_call_us(call, iterations), "us") for name, call in cases]


if __name__ == "__main__":
    width = max(len(name) for name, _, _ in run(200))
    for name, value, unit in run():
        print(f"{name:<{width}}  {value:8.2f} {unit}")
