"""The fault injector: latency, dropped connections, 429 bursts and 5xx runs, seeded.

Per-request faults live here and are consulted by the server before it routes a request.
Faults that act on the whole simulator (expiring sessions, rotating the certificate,
rebooting) are carried out by the Simulator; this module only validates and records them.
Whether a probabilistic fault fires comes from a random.Random seeded by the simulator's
seed, so a run with one seed and one request sequence injects the same faults.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

RequestFaultKind = Literal["latency", "drop", "rate_limit", "status"]
SiteFaultKind = Literal["expire_sessions", "rotate_cert", "reboot"]
FAULT_KINDS: tuple[str, ...] = (*get_args(RequestFaultKind), *get_args(SiteFaultKind))
MAX_FAULTS = 64  # armed at once: each request is checked against every one
_MAX_PREFIX_CHARS = 200


@dataclass(slots=True)
class RequestFault:
    """One armed per-request fault; `remaining` None means until cleared."""

    kind: RequestFaultKind
    remaining: int | None = None
    probability: float = 1.0
    latency_ms: float = 0.0
    status: int = 502
    path_prefix: str = "/api/"

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "status": self.status,
            "path_prefix": self.path_prefix,
        }


@dataclass(slots=True)
class Verdict:
    """What the server must do to one request: wait, then drop it or answer with a status."""

    delay_s: float = 0.0
    drop: bool = False
    status: int | None = None  # 429, 502 or 503


@dataclass
class FaultInjector:
    """Armed faults and the seeded random source that decides probabilistic ones."""

    seed: int = 0
    faults: list[RequestFault] = field(default_factory=list)
    injected: int = 0  # how many requests a fault acted on

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def add(
        self,
        kind: str,
        *,
        count: int | None = None,
        probability: float = 1.0,
        latency_ms: float = 0.0,
        status: int = 502,
        path_prefix: str = "/api/",
    ) -> RequestFault:
        """Arm a per-request fault; ValueError names what is wrong with the arguments."""
        if kind not in ("latency", "drop", "rate_limit", "status"):
            raise ValueError(f"kind: {kind!r} is not a per-request fault")
        if count is not None and (
            isinstance(count, bool) or not isinstance(count, int) or count < 1
        ):
            raise ValueError("count: a positive integer, or null for until cleared")
        if not isinstance(probability, int | float) or not 0.0 < probability <= 1.0:
            raise ValueError("probability: a number in (0, 1]")
        if not isinstance(latency_ms, int | float) or not 0 <= latency_ms <= 60_000:
            raise ValueError("latency_ms: a number from 0 to 60000")
        if kind == "status" and status not in (500, 502, 503, 504):
            raise ValueError("status: 500, 502, 503 or 504")
        if (
            not isinstance(path_prefix, str)
            or not path_prefix.startswith("/")
            or len(path_prefix) > _MAX_PREFIX_CHARS
        ):
            raise ValueError(f"path_prefix: a path starting with / of at most {_MAX_PREFIX_CHARS}")
        if len(self.faults) >= MAX_FAULTS:
            raise ValueError(f"kind: at most {MAX_FAULTS} faults armed at once; clear some first")
        if kind == "drop" and count is None and probability == 1.0:
            count = 1  # dropping every request forever would only hang tests
        fault = RequestFault(
            kind=kind,  # type: ignore[arg-type]
            remaining=count,
            probability=float(probability),
            latency_ms=float(latency_ms),
            status=429 if kind == "rate_limit" else status,
            path_prefix=path_prefix,
        )
        self.faults.append(fault)
        return fault

    def clear(self) -> None:
        self.faults.clear()

    def decide(self, path: str) -> Verdict | None:
        """The faults that act on a request to `path` (each armed fault used at most once)."""
        if not self.faults:
            return None
        verdict = Verdict()
        acted = False
        for fault in list(self.faults):
            if not path.startswith(fault.path_prefix):
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            acted = True
            if fault.kind == "latency":
                verdict.delay_s += fault.latency_ms / 1000.0
            elif fault.kind == "drop":
                verdict.drop = True
            elif verdict.status is None:
                verdict.status = fault.status
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
        if acted:
            self.injected += 1
            return verdict
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [f.describe() for f in self.faults]


__all__ = ["FAULT_KINDS", "FaultInjector", "RequestFault", "Verdict"]
