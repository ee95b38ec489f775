"""The answer templates per firmware, as JSON files derived from real captures.

`<firmware>/<name>.json` holds what that firmware answers; 21.44 is the base, and another
firmware's folder holds only what it answers differently. scripts/derive_sim_captures.py
writes every file from the captures (and spec 001's inline examples). A file is read once;
each `body()` call decodes it afresh, so builders own (and may change) what they get.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import msgspec

BASE = "21.44"
_decoder = msgspec.json.Decoder()


class CaptureSet:
    """The templates one firmware answers with (its own folder over the base folder)."""

    def __init__(self, firmware: str, raw: dict[str, bytes]) -> None:
        self.firmware = firmware
        self._raw = raw

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._raw))

    def body(self, name: str) -> Any:
        """A fresh copy of template `name` (KeyError when this firmware has none)."""
        return _decoder.decode(self._raw[name])


def _folder(firmware: str) -> dict[str, bytes]:
    folder = resources.files(__name__).joinpath(firmware)
    if not folder.is_dir():
        return {}
    return {
        entry.name.removesuffix(".json"): entry.read_bytes()
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    }


@functools.cache
def captures(firmware: str) -> CaptureSet:
    """The templates of `firmware` (a profile name such as "1.40"), loaded once."""
    return CaptureSet(firmware, {**_folder(BASE), **_folder(firmware)})


__all__ = ["BASE", "CaptureSet", "captures"]
