"""Redaction of gateway JSON for sharing: by what a field means, then by value, everywhere.

Two passes, so that a value redacted in one place cannot survive in another:

1. `value()` (once per document) replaces what identifies the site or a person by the key it
   sits under (serials, DIN/VIN, ids, customer_id, emails, names, phone, street address,
   latitude/longitude, Wi-Fi names, MAC and IP addresses and host names, tokens, passwords,
   keys) and by its shape anywhere in text (DINs, emails, MAC and IPv4 addresses, URL hosts).
   Every value replaced is remembered.
2. `scrub()` (once per document, after every document went through pass 1) replaces every
   remembered value wherever it occurs: a whole string or key, or inside one ("Neurio-39546"
   once the meter's short id 39546 is known). Values shorter than 4 characters are replaced
   only where they are a whole string or key (inside text they would hit unrelated digits).
   Model field names ("instant_power") are never rewritten, so a redacted body still parses.

Kept on purpose: a bare `name` (checks, grid settings and devices are named, people are not),
installer `company` names (businesses, the same list on every gateway), the gateway's own
network names (`*_tesla_internal_default`), part numbers, firmware versions and git hashes.

Only strings (and latitude/longitude numbers) are replaced, so a redacted body parses with
the same models. The same value always gets the same placeholder (`<<SERIAL_1>>`,
`<<IP_ADDR_2>>` ...), so what links one file to another stays visible.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Any, Final

import msgspec.inspect as mi

from tegkit import catalog, models

__all__ = ["MAX_DEPTH", "MIN_INNER_LENGTH", "TOO_DEEP", "Redactor", "kind_of_key"]

# Below this length a value is replaced only where it is a whole string or key.
MIN_INNER_LENGTH: Final = 4
# Real answers nest a few levels; deeper data (a hostile peer) is left out, not recursed into.
MAX_DEPTH: Final = 64
TOO_DEEP: Final = "<<NESTED_TOO_DEEPLY>>"

# By the words of a key ("PackageSerialNumber" -> package, serial, number), first match wins.
_SECRET_WORDS: Final = frozenset(
    {"token", "password", "passwd", "secret", "cookie", "authorization", "key", "credentials"}
)
_EMAIL_WORDS: Final = frozenset({"email", "mail"})
_MAC_WORDS: Final = frozenset({"mac", "bssid", "hwaddress", "macaddress"})
_IP_WORDS: Final = frozenset({"ip", "ipv4", "ipv6", "host", "hostname", "dns", "ipaddress"})
_SERIAL_WORDS: Final = frozenset({"serial", "din", "vin", "leader", "followers", "sn"})
_ID_LAST_WORDS: Final = frozenset({"id", "ids", "uid", "uuid", "guid"})
_NAME_KEYS: Final = frozenset(
    {"firstname", "lastname", "fullname", "username", "displayname", "nickname", "sitename"}
)
_NAME_QUALIFIERS: Final = frozenset(
    {"first", "last", "full", "user", "display", "nick", "site", "customer", "contact", "owner"}
)
_CONTACT_WORDS: Final = frozenset(
    {"phone", "mobile", "address", "street", "city", "zip", "zipcode", "postcode", "postal"}
)
_LOCATION_WORDS: Final = frozenset(
    {"lat", "latitude", "lon", "lng", "long", "longitude", "coordinates", "gps", "geo"}
)
_WORD: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")

_MAYBE_ADDRESS: Final = re.compile(r"[\d@:-]")
_DIN: Final = re.compile(r"\b\d{7}-\d{2}-[A-Z]--[A-Za-z0-9]+\b")
_EMAIL: Final = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_MAC: Final = re.compile(r"\b[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}\b")
_IPV4: Final = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_URL_HOST: Final = re.compile(r"(?<=://)(?:[^/\s:@<>]+@)?([^/\s:<>\[\]]+|\[[0-9A-Fa-f:.]+\])")
# Keys left alone even when a value pattern would match (a netmask looks like an address).
_KEEP_KEYS: Final = re.compile(r"mask$", re.I)
# Names the gateway gives its own built-in networks: nothing personal in them.
_INTERNAL: Final = re.compile(r"^\w+_tesla_internal_default$")
_PLACEHOLDER: Final = re.compile(r"^<<[A-Z_ ]+(_\d+)?>>$")
_PLACEHOLDERS: Final = re.compile(r"(<<[A-Z_ ]+(?:_\d+)?>>)")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(key)]


@functools.lru_cache(maxsize=4096)
def kind_of_key(key: str) -> str | None:
    """The placeholder kind of values under `key`, or None when the key says nothing personal.

    >>> kind_of_key("PackageSerialNumber"), kind_of_key("customer_id"), kind_of_key("p_W")
    ('SERIAL', 'ID', None)
    """
    words = _words(key)
    if not words:
        return None
    joined = "".join(words)
    found = set(words) | {joined}
    if joined.endswith("mask"):
        return None  # netmasks are not addresses
    if found & _SECRET_WORDS:
        return "TOKEN"
    if found & _EMAIL_WORDS:
        return "EMAIL"
    if found & _MAC_WORDS or joined.endswith("hwaddress"):
        return "MAC_ADDR"
    if found & _IP_WORDS or joined == "gateway":
        return "IP_ADDR"
    if "ssid" in found or joined == "networkname":
        return "WIFI_SSID"
    if found & _SERIAL_WORDS:
        return "SERIAL"
    if words[-1] in _ID_LAST_WORDS:
        return "ID"
    if joined in _NAME_KEYS or ("name" in words and found & _NAME_QUALIFIERS):
        return "NAME"
    if found & _CONTACT_WORDS:
        return "CONTACT"
    if found & _LOCATION_WORDS:
        return "LOCATION"
    return None


@functools.cache
def _field_names() -> frozenset[str]:
    """Every wire name of every model: schema, never data, so never rewritten."""
    names: set[str] = set()
    seen: set[type] = set()

    def walk(t: mi.Type) -> None:
        for member in t.types if isinstance(t, mi.UnionType) else (t,):
            if isinstance(member, mi.ListType):
                walk(member.item_type)
            elif isinstance(member, mi.DictType):
                walk(member.value_type)
            elif isinstance(member, mi.StructType) and member.cls not in seen:
                seen.add(member.cls)
                for f in member.fields:
                    names.add(f.encode_name)
                    walk(f.type)

    for name in {e.model for e in catalog.ENDPOINTS if e.model}:
        walk(mi.type_info(models.MODELS[name]))
    return frozenset(names)


def _alternation(values: Iterable[str]) -> str:
    """A regex matching any of `values`, longest first, built as a trie so it stays fast."""
    trie: dict[str, Any] = {}
    for value in values:
        node = trie
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        # A run of single-child nodes is plain text: walked in a loop, so a long token does
        # not recurse once per character.
        run = ""
        while len(node) == 1 and "" not in node:
            ((char, node),) = node.items()
            run += re.escape(char)
        branches = [re.escape(char) + pattern(child) for char, child in node.items() if char]
        if not branches:
            return run
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return run + (f"(?:{body})?" if "" in node else body)

    return pattern(trie)


class Redactor:
    """Replaces identifying strings with numbered placeholders, consistently across calls."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._count: dict[str, int] = {}
        self._by_value: dict[str, str] = {}
        self._inner: re.Pattern[str] | None = None

    def placeholder(self, kind: str, value: str) -> str:
        """The placeholder of `value`; remembered, so `scrub()` replaces it everywhere."""
        key = (kind, value)
        found = self._seen.get(key)
        if found is None:
            self._count[kind] = self._count.get(kind, 0) + 1
            found = self._seen[key] = f"<<{kind}_{self._count[kind]}>>"
            if value not in self._by_value:
                self._by_value[value] = found
                self._inner = None
        return found

    def redacted(self) -> dict[str, str]:
        """Every value redacted so far, with its placeholder."""
        return dict(self._by_value)

    # --- pass 1: by meaning and by shape -------------------------------------------------

    def text(self, value: str) -> str:
        """A free-text string with addresses, emails, DINs and URL hosts inside it replaced."""
        if not _MAYBE_ADDRESS.search(value) or _PLACEHOLDER.match(value):
            return value  # no digit, "@", ":" or "-": none of the shapes below can be inside
        try:
            ipaddress.ip_address(value)
        except ValueError:
            pass
        else:
            return self.placeholder("IP_ADDR", value)
        value = _DIN.sub(lambda m: self.placeholder("SERIAL", m.group(0)), value)
        value = _EMAIL.sub(lambda m: self.placeholder("EMAIL", m.group(0)), value)
        value = _MAC.sub(lambda m: self.placeholder("MAC_ADDR", m.group(0)), value)
        value = _IPV4.sub(lambda m: self.placeholder("IP_ADDR", m.group(0)), value)
        return _URL_HOST.sub(self._url_host, value)

    def _url_host(self, found: re.Match[str]) -> str:
        host = found.group(1)
        if _PLACEHOLDER.match(host):
            return found.group(0)
        return found.group(0).replace(host, self.placeholder("IP_ADDR", host))

    def value(self, data: Any, key: str | None = None, depth: int = 0) -> Any:
        """Pass 1 over a decoded JSON value: identifying strings replaced, and remembered."""
        if isinstance(data, dict | list) and depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(data, dict):
            return {self._key(k): self.value(v, k, depth + 1) for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v, key, depth + 1) for v in data]
        kind = kind_of_key(key) if key is not None else None
        if kind == "LOCATION" and isinstance(data, int | float) and not isinstance(data, bool):
            return self.placeholder(kind, repr(data))
        if not isinstance(data, str) or (key is not None and _KEEP_KEYS.search(key)):
            return data
        if kind is not None and data and not _INTERNAL.match(data):
            if _PLACEHOLDER.match(data):
                return data
            return self.placeholder(kind, data)
        return self.text(data)

    def _key(self, key: str) -> str:
        # Keys are mostly schema; a DIN or an address in one (device maps) is still data.
        return key if key in _field_names() else self.text(key)

    def document(self, path: str, body: Any) -> Any:
        """Pass 1 over the body of `path`: maps keyed by meter serial have their keys redacted."""
        if path.rstrip("/") == "/api/meters/readings" and isinstance(body, dict):
            return {self.placeholder("SERIAL", k): self.value(v, None, 1) for k, v in body.items()}
        return self.value(body)

    # --- pass 2: every remembered value, everywhere ------------------------------------

    def _pattern(self) -> re.Pattern[str] | None:
        if self._inner is None:
            inner = [v for v in self._by_value if len(v) >= MIN_INNER_LENGTH]
            if not inner:
                return None
            self._inner = re.compile(_alternation(inner))
        return self._inner

    def scrub_text(self, text: str) -> str:
        """`text` with every remembered value replaced, placeholders left as they are."""
        whole = self._by_value.get(text)
        if whole is not None:
            return whole
        pattern = self._pattern()
        if pattern is None:
            return text
        parts = _PLACEHOLDERS.split(text)
        for index in range(0, len(parts), 2):  # odd indexes are placeholders
            if parts[index]:
                parts[index] = pattern.sub(lambda m: self._by_value[m.group(0)], parts[index])
        return "".join(parts)

    def scrub(self, data: Any, depth: int = 0) -> Any:
        """Pass 2 over a document from pass 1: no remembered value is left in it anywhere."""
        if isinstance(data, dict | list) and depth >= MAX_DEPTH:
            return TOO_DEEP
        if isinstance(data, dict):
            names = _field_names()
            return {
                (k if k in names else self.scrub_text(k)): self.scrub(v, depth + 1)
                for k, v in data.items()
            }
        if isinstance(data, list):
            return [self.scrub(v, depth + 1) for v in data]
        if isinstance(data, str):
            return self.scrub_text(data)
        return data
