"""Redaction of gateway JSON for sharing: serials, DIN, emails, names, IP/MAC addresses, tokens.

Only strings are replaced, so a redacted body still parses with the same models. The same
value always gets the same placeholder (`<<SERIAL_1>>`, `<<IP_ADDR_2>>` ...), so what links
one file to another (a meter serial in /api/meters and in a path) stays visible.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

# Keys whose string values are personal or identify the installation, by placeholder kind.
_KEY_KINDS: Final = (
    (re.compile(r"serial|^din$|^vin$|^short_id$|gateway_id|site_uid|^id$", re.I), "SERIAL"),
    (re.compile(r"e-?mail", re.I), "EMAIL"),
    (
        re.compile(r"site_name|^(first|last|full|customer|contact|owner)_?name$|^name$", re.I),
        "NAME",
    ),
    (re.compile(r"ssid|^network_name$", re.I), "WIFI_SSID"),
    (re.compile(r"^mac$|hw_address|mac_address", re.I), "MAC_ADDR"),
    (re.compile(r"phone|^address$|street|zip|postal", re.I), "CONTACT"),
    (re.compile(r"token|password|secret|cookie|^authorization$", re.I), "TOKEN"),
)
# Keys left alone even when a pattern below would match their value.
_KEEP_KEYS: Final = re.compile(r"mask$", re.I)

_DIN: Final = re.compile(r"\b\d{7}-\d{2}-[A-Z]--[A-Za-z0-9]+\b")
_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_MAC: Final = re.compile(r"\b[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\b")
_IPV4: Final = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
# Names the gateway gives its own built-in networks: nothing personal in them.
_INTERNAL: Final = re.compile(r"^\w+_tesla_internal_default$")
_PLACEHOLDER: Final = re.compile(r"^<<[A-Z_]+(_\d+)?>>$")


class Redactor:
    """Replaces identifying strings with numbered placeholders, consistently across calls."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._count: dict[str, int] = {}
        self._by_value: dict[str, str] = {}

    def placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        found = self._seen.get(key)
        if found is None:
            self._count[kind] = self._count.get(kind, 0) + 1
            found = self._seen[key] = f"<<{kind}_{self._count[kind]}>>"
            self._by_value.setdefault(value, found)
        return found

    def _key(self, key: str) -> str:
        """An object key: replaced only where it is a value already known to identify."""
        return self._by_value.get(key, key)

    def text(self, value: str) -> str:
        """A free-text string with addresses, emails and DINs inside it replaced."""
        if _PLACEHOLDER.match(value):
            return value
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return self.placeholder("IP_ADDR", value)
        value = _DIN.sub(lambda m: self.placeholder("SERIAL", m.group(0)), value)
        value = _EMAIL.sub(lambda m: self.placeholder("EMAIL", m.group(0)), value)
        value = _MAC.sub(lambda m: self.placeholder("MAC_ADDR", m.group(0)), value)
        return _IPV4.sub(lambda m: self.placeholder("IP_ADDR", m.group(0)), value)

    def value(self, data: Any, key: str | None = None) -> Any:
        """A decoded JSON value with identifying strings replaced (other types untouched)."""
        if isinstance(data, dict):
            # Values come before keys: /api/meters/readings is keyed by meter serial.
            values = {k: self.value(v, k) for k, v in data.items()}
            return {self._key(k): v for k, v in values.items()}
        if isinstance(data, list):
            return [self.value(v, key) for v in data]
        if not isinstance(data, str):
            return data
        if key is not None and _KEEP_KEYS.search(key):
            return data
        if key is not None and data and not _INTERNAL.match(data):
            for pattern, kind in _KEY_KINDS:
                if pattern.search(key):
                    return self.placeholder(kind, data)
        return self.text(data)


__all__ = ["Redactor"]
