"""Files replaced whole: a private one is 0600 whatever the umask, a shared one follows it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tegkit._private_file import write_atomically, write_private


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_private_file_is_0600_and_a_shared_one_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_private(tmp_path / "secret" / "token.json", b"{}")
        write_atomically(tmp_path / "plan.toml", b'name = "p"\n')
    finally:
        os.umask(old)
    assert _mode(tmp_path / "secret" / "token.json") == 0o600
    assert _mode(tmp_path / "secret") == 0o700
    assert _mode(tmp_path / "plan.toml") == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "plan.toml"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        write_atomically(target, "not bytes")  # type: ignore[arg-type]
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["plan.toml"]


def test_a_shared_file_needs_its_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_atomically(tmp_path / "missing" / "plan.toml", b"")
