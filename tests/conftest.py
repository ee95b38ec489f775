"""Shared test fixtures: where the specification and the captures live."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SPEC = SHARED / "spec"
CAPTURES = SHARED / "reference" / "vloschiavo-powerwall2" / "samples"


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    assert SPEC.is_dir(), f"the specification must sit beside the repo at {SPEC}"
    return SPEC


@pytest.fixture(scope="session")
def captures_dir() -> Path:
    assert CAPTURES.is_dir(), f"the captures must sit beside the repo at {CAPTURES}"
    return CAPTURES
