"""docs/faults.md names the test behind each fault: every name it gives must exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAULTS = ROOT / "docs" / "faults.md"
# `folder/file.py`, `folder/file.py::test_name`, or `::test_name` for the file named before;
# a trailing … means "the test whose name starts so"
TEST_FILE = re.compile(r"^((?:\w+/)*test_\w+\.py|(?:\w+/)*_store_contract\.py)(?:::(\w+)(…)?)?$")
SAME_FILE = re.compile(r"^::(\w+)(…)?$")


def _references() -> list[tuple[str, str | None, bool]]:
    found: list[tuple[str, str | None, bool]] = []
    for line in FAULTS.read_text().splitlines():
        last_file: str | None = None
        for code in re.findall(r"`([^`]+)`", line):
            if match := TEST_FILE.match(code):
                last_file = match.group(1)
                found.append((last_file, match.group(2), match.group(3) is not None))
            elif (match := SAME_FILE.match(code)) and last_file is not None:
                found.append((last_file, match.group(1), match.group(2) is not None))
    return found


def test_every_test_the_fault_table_names_exists() -> None:
    references = _references()
    assert len(references) > 40
    for file, name, prefix in references:
        path = ROOT / "tests" / file
        assert path.is_file(), f"docs/faults.md names {file}, which is not under tests/"
        if name is None:
            continue
        end = "" if prefix else r"\b"
        pattern = rf"^\s*(?:async )?def {re.escape(name)}{end}"
        assert re.search(pattern, path.read_text(), re.M), f"docs/faults.md names {file}::{name}"
