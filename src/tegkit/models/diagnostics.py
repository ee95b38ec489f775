"""Diagnostic reports: the checks of connection tests, commissioning and firmware updates."""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from tegkit.models._base import UNSET, Model, Part, UnsetType, field

__all__ = [
    "CheckStatus",
    "ConnTestResult",
    "ConnTestResults",
    "Diagnostic",
    "DiagnosticCheck",
    "DiagnosticPart",
    "Diagnostics",
]


class CheckStatus:
    """Known values of a check's `status` (others are kept as sent)."""

    NOT_RUN: Final = "not_run"
    SCHEDULED: Final = "scheduled"
    RUNNING: Final = "running"
    PASS: Final = "pass"
    FAIL: Final = "fail"
    KNOWN: Final = (NOT_RUN, SCHEDULED, RUNNING, PASS, FAIL)


class DiagnosticCheck(Part, kw_only=True):
    """One check of a diagnostic; checks may nest."""

    name: str | None = None
    status: str | None = None  # CheckStatus
    start_time: dt.datetime | UnsetType | None = UNSET
    end_time: dt.datetime | UnsetType | None = UNSET
    message: str | None = None
    progress: float | None = None  # 0..1
    results: dict[str, Any] | UnsetType | None = UNSET
    debug: dict[str, Any] | UnsetType | None = UNSET
    checks: list[DiagnosticCheck] | UnsetType | None = UNSET


class DiagnosticPart(Part, kw_only=True):
    """A diagnostic nested in another response (a Powerwall's commissioning or update report)."""

    name: str | None = None
    category: str | None = None
    disruptive: bool | None = None
    inputs: Any | UnsetType = UNSET  # null in every capture; shape unknown
    checks: list[DiagnosticCheck] | UnsetType | None = UNSET
    alert: bool | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(c.status == CheckStatus.PASS for c in self.checks or ())


class Diagnostic(Model, kw_only=True):
    """GET /api/system/networks/conn_tests: the network connection diagnostic."""

    name: str | None = None
    category: str | None = None
    disruptive: bool | None = None
    inputs: Any | UnsetType = UNSET
    checks: list[DiagnosticCheck] | UnsetType | None = UNSET
    alert: bool | None = None

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return bool(self.checks) and all(c.status == CheckStatus.PASS for c in self.checks or ())


class ConnTestResult(Part, kw_only=True):
    """One named test of the older connection-test answer."""

    passed: bool = field(name="pass")
    error: str | None = None


class ConnTestResults(Model, kw_only=True):
    """The older answer of POST /api/system/networks/conn_tests (spec 001).

    `results` is null while the tests run; `timestamp` is Go's zero time until then.
    """

    results: dict[str, ConnTestResult] | UnsetType | None = UNSET
    timestamp: dt.datetime | None = None


# Newer firmware answers a list of diagnostics; older firmware the results object.
Diagnostics = list[DiagnosticPart] | ConnTestResults
