"""Files replaced atomically; private ones (sessions, tokens, the CLI's config) 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PRIVATE_MODE = 0o600
PRIVATE_DIR_MODE = 0o700


def make_private_dir(folder: Path) -> None:
    """Create `folder` and each missing folder above it, 0700 whatever the umask.

    `Path.mkdir(parents=True, mode=...)` gives the mode to the last folder only and leaves
    its parents (say ~/.config/tegkit above sessions/) readable by everyone. Folders that
    exist already keep their mode: they may be shared ones such as ~/.config.
    """
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for created in reversed(missing):
        try:
            os.mkdir(created, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # another writer made it first; its mode is that writer's choice
        os.chmod(created, PRIVATE_DIR_MODE)


def write_private(path: Path, data: bytes) -> None:
    """Write `data` to a 0600 file beside `path`, fsync, then rename it into place.

    The temporary name is unique per call, so concurrent writers never share one; a reader
    sees the old file or the new one, never half of either. Folders it creates are 0700.
    """
    make_private_dir(path.parent)
    _replace(path, data, PRIVATE_MODE, exact=True)  # the umask must neither widen nor narrow it


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` as `write_private` does, with the usual mode (0666 less the
    umask) and in a folder that must exist: for files others may read (plans, charts)."""
    _replace(path, data, 0o666, exact=False)


def _replace(path: Path, data: bytes, mode: int, exact: bool) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if exact:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_MODE",
    "make_private_dir",
    "write_atomically",
    "write_private",
]
