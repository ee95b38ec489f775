"""Files replaced atomically; private ones (sessions, tokens, the CLI's config) 0600."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

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
    with atomic_file(path, private=True) as out:
        out.write(data)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` as `write_private` does, with the usual mode (0666 less the
    umask) and in a folder that must exist: for files others may read (plans, charts)."""
    with atomic_file(path) as out:
        out.write(data)


@contextlib.contextmanager
def atomic_file(path: Path, *, private: bool = False) -> Iterator[BinaryIO]:
    """A file written beside `path` under a unique temporary name, fsynced and renamed into
    place only when the block ends without an error (removed otherwise): for streams too
    large to hold (exports). Private: 0600 whatever the umask; else 0666 less the umask."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    mode = PRIVATE_MODE if private else 0o666
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        if private:
            os.fchmod(fd, mode)  # the umask must neither widen nor narrow it
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_MODE",
    "atomic_file",
    "make_private_dir",
    "write_atomically",
    "write_private",
]
