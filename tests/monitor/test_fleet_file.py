"""The fleet file (`teg monitor --fleet`): a whole file checked at once, every problem named
by its gateway and field with what is allowed, secrets from their sources and never in a
message."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import keyring
import keyring.errors
import pytest
from keyring.backend import KeyringBackend

from tegkit.errors import InvalidInputError
from tegkit.monitor import fleet as fleet_module
from tegkit.monitor.fleet import KEYRING_SERVICE, FleetFileError, load_fleet, parse_fleet
from tegkit.monitor.poller import PollerConfig

PIN = "AB:" * 31 + "AB"
PIN_HEX = "ab" * 32
SECRET = "hunter2-not-for-logs"
TARIFF = """
name = "flat"
currency = "USD"

[[seasons]]
name = "all"
months = [1, 12]

[[seasons.periods]]
name = "all"
start = "00:00"
end = "24:00"
buy_per_kwh = 0.30
sell_per_kwh = 0.05
"""
ENV = {"TEG_PW": SECRET}


class MemoryKeyring(KeyringBackend):
    """A real keyring backend keeping its passwords in a dict (the system's is not here)."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the keyring is locked")


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def gateway(name: str = "home", port: int = 9001, extra: str = "") -> str:
    """A [[gateways]] table; a key of `extra` the table has already replaces its line."""
    lines = [f'name = "{name}"', f'url = "https://127.0.0.1:{port}"', f'pin = "{PIN}"']
    lines.append('password_env = "TEG_PW"')
    for line in extra.splitlines():
        key = line.split("=", 1)[0].strip()
        lines = [old for old in lines if old.split("=", 1)[0].strip() != key] + [line]
    return "\n[[gateways]]\n" + "\n".join(lines) + "\n"


def problems(exc: pytest.ExceptionInfo[FleetFileError]) -> list[str]:
    return [str(e) for e in exc.value.errors]


def refused(tmp_path: Path, text: str, mode: int = 0o600, environ: dict[str, str] = ENV) -> str:
    """The one problem of a fleet file with one, checked to be an InvalidInputError whose
    message names it."""
    path = write(tmp_path / "fleet.toml", text, mode)
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path, environ=environ)
    assert isinstance(caught.value, InvalidInputError)
    found = problems(caught)
    assert len(found) == 1, found
    assert found[0] in str(caught.value)
    assert SECRET not in str(caught.value)
    return found[0]


# --- a good file ---------------------------------------------------------------------------


def test_a_full_file_with_defaults_and_relative_paths(tmp_path: Path) -> None:
    write(tmp_path / "tariffs" / "flat.toml", TARIFF, 0o644)
    write(tmp_path / "certs" / "smith.pem", "-----BEGIN CERTIFICATE-----\n", 0o644)
    write(tmp_path / "secrets" / "smith", SECRET + "\n")
    text = f"""
[defaults]
email = "owner@example.com"
password_env = "TEG_PW"
pin = "sha256:{PIN_HEX}"
fast_interval_s = 10
slow_interval_s = 120
budget_per_minute = 60
tariff = "tariffs/flat.toml"
tz = "Europe/Berlin"

[[gateways]]
name = "smith-home"
url = "https://127.0.0.1:9001/"
sni = "teg"
cafile = "certs/smith.pem"
password_file = "secrets/smith"
tz = "America/Los_Angeles"
cloud_profile = "smith"
via = "cloud"
timeout_s = 4.5
labels = {{ customer = "smith", region = "west" }}

[[gateways]]
name = "jones.garage"
host = "[::1]:9002"
fast_interval_s = 5
labels = {{ region = "east" }}
"""
    fleet = load_fleet(write(tmp_path / "fleet.toml", text, 0o644), environ=ENV)
    smith, jones = fleet.gateways
    assert fleet.names() == ["smith-home", "jones.garage"]
    assert fleet.label_names == ("customer", "region")
    assert fleet.path == tmp_path / "fleet.toml"
    # smith: its own trust (cafile, so the default pin is not taken), password file, zone
    t = smith.target
    assert t.url == "https://127.0.0.1:9001" and t.sni == "teg"
    assert t.pin is None and t.cafile == str(tmp_path / "certs" / "smith.pem")
    assert t.password == SECRET  # the file's one trailing newline dropped
    assert t.email == "owner@example.com"
    assert t.tz == ZoneInfo("America/Los_Angeles") and t.via == "cloud" and t.timeout_s == 4.5
    assert smith.cloud_profile == "smith"
    assert smith.labels == {"customer": "smith", "region": "west"}
    assert smith.config.fast_interval_s == 10 and smith.config.budget_per_minute == 60
    assert smith.tariff is not None and smith.tariff is jones.tariff  # read once
    # jones: the defaults, its own fast interval, every fleet label ("" where unset)
    t = jones.target
    assert t.url == "https://[::1]:9002" and t.pin == PIN_HEX and t.password == SECRET
    assert t.tz == ZoneInfo("Europe/Berlin") and t.via == "auto" and t.cafile is None
    assert jones.config.fast_interval_s == 5 and jones.config.slow_interval_s == 120
    assert jones.labels == {"customer": "", "region": "east"}
    assert smith.tariff.price_at(dt.datetime(2024, 6, 1, 12, tzinfo=dt.UTC)) is not None
    assert SECRET not in repr(fleet)  # a target's repr leaves the password out


def test_the_smallest_file_takes_the_poller_defaults(tmp_path: Path) -> None:
    fleet = load_fleet(write(tmp_path / "f.toml", gateway()), environ=ENV)
    (only,) = fleet.gateways
    assert only.config == PollerConfig()
    assert only.labels == {} and only.tariff is None and only.cloud_profile is None
    assert fleet.alerts is None


# --- every problem, named by gateway and field ---------------------------------------------

BAD_GATEWAY_FIELDS = [
    # (extra TOML in gateway "home", the field named, a part of what is allowed)
    ('sni = "not a host"', "sni", "host name"),
    ("email = 5", "email", "text"),
    ('pin = "abc"', "pin", "64 hex digits"),
    ('cafile = "nowhere.pem"', "pin", "one of pin or cafile"),
    ('pin = "sha256:zz"', "pin", "64 hex digits"),
    ('tz = "Mars/Olympus"', "tz", "IANA time zone"),
    ('tz = "../etc/passwd"', "tz", "IANA time zone"),
    ('tariff = "missing.toml"', "tariff", "a tariff file that exists"),
    ('cloud_profile = "a b"', "cloud_profile", "profile name"),
    ('via = "carrier-pigeon"', "via", "auto, local, cloud"),
    ("fast_interval_s = 0", "fast_interval_s", "above 0"),
    ('fast_interval_s = "5"', "fast_interval_s", "above 0"),
    ("fast_interval_s = true", "fast_interval_s", "above 0"),
    ("fast_interval_s = nan", "fast_interval_s", "above 0"),
    ("slow_interval_s = inf", "slow_interval_s", "at most a day"),
    ("slow_interval_s = 86401", "slow_interval_s", "at most a day"),
    ("budget_per_minute = 2", "budget_per_minute", "from 3 to 10000"),
    ("budget_per_minute = 50.5", "budget_per_minute", "whole number"),
    ("budget_per_minute = 10001", "budget_per_minute", "from 3 to 10000"),
    ("budget_per_minute = 30", "budget_per_minute", "at least 41, or longer intervals"),
    ("timeout_s = 0", "timeout_s", "seconds above 0"),
    ("labels = 5", "labels", "a table"),
    ('labels = { gateway = "x" }', "labels.gateway", "other than the metrics' own"),
    ('labels = { meter = "x" }', "labels.meter", "other than the metrics' own"),
    ('labels = { __meta = "x" }', "labels.__meta", "Prometheus label name"),
    ('labels = { "1st" = "x" }', "labels", "Prometheus label name"),
    ('labels = { "a-b" = "x" }', "labels", "Prometheus label name"),
    ("labels = { region = 5 }", "labels.region", "text of at most 128"),
    (f'labels = {{ region = "{"x" * 129}" }}', "labels.region", "text of at most 128"),
    (
        "labels = { " + ", ".join(f'l{i} = "x"' for i in range(17)) + " }",
        "labels",
        "at most 16",
    ),
    ("colour = 5", "colour", "one of budget_per_minute"),
]


@pytest.mark.parametrize(("extra", "field", "allowed"), BAD_GATEWAY_FIELDS)
def test_a_bad_field_is_named_with_its_gateway_and_what_is_allowed(
    tmp_path: Path, extra: str, field: str, allowed: str
) -> None:
    text = gateway("ok", 9000) + gateway("home", 9001, extra)
    problem = refused(tmp_path, text)
    assert problem.startswith(f'gateways[2] "home": {field}: '), problem
    assert f"expected {allowed}" in problem or allowed in problem.split("; expected ", 1)[1]


BAD_ADDRESSES = [
    ('url = "http://127.0.0.1:9001"', "url", "the scheme http", "HTTPS only"),
    ('url = "https://127.0.0.1:9001/api"', "url", "a path", "https://HOST[:PORT]"),
    ('url = "https://user:pw@127.0.0.1"', "url", "a user or password", "https://HOST[:PORT]"),
    ('url = "https://127.0.0.1:99999"', "url", "out of range", "https://HOST[:PORT]"),
    ('url = "https://"', "url", "no host", "https://HOST[:PORT]"),
    ('url = "https://bad_host!"', "url", "not a host", "https://HOST[:PORT]"),
    ('host = "127.0.0.1/x"', "host", "a path", "HOST or HOST:PORT"),
    ("host = 5", "host", "a number", "text"),
    ('url = "https://a"\nhost = "b"', "url", "both url and host", "one of url"),
    ("", "url", "neither url nor host", "one of url"),
]


@pytest.mark.parametrize(("address", "field", "what", "allowed"), BAD_ADDRESSES)
def test_a_bad_address_is_refused(
    tmp_path: Path, address: str, field: str, what: str, allowed: str
) -> None:
    text = f'[[gateways]]\nname = "home"\n{address}\npin = "{PIN}"\npassword_env = "TEG_PW"\n'
    problem = refused(tmp_path, text)
    assert problem.startswith(f'gateways[1] "home": {field}: '), problem
    assert what in problem and allowed in problem


@pytest.mark.parametrize(
    ("name", "what"),
    [
        ('"has space"', "'has space'"),
        ('"-leading"', "'-leading'"),
        ('"a/b"', "'a/b'"),
        ('"' + "x" * 65 + '"', "'xxx"),
        ('""', "''"),
        ("5", "5"),
    ],
)
def test_a_name_must_be_safe_as_a_label_value(tmp_path: Path, name: str, what: str) -> None:
    text = f'[[gateways]]\nname = {name}\nurl = "https://127.0.0.1:1"\npassword_env = "TEG_PW"\n'
    problem = refused(tmp_path, text)
    assert problem.startswith("gateways[1]: name: " + what), problem
    assert "letters, digits" in problem


def test_a_missing_name_and_a_second_use_of_a_name_or_address(tmp_path: Path) -> None:
    text = (
        gateway("a", 9001)
        + gateway("a", 9002)
        + gateway("b", 9001)
        + '[[gateways]]\nurl = "https://127.0.0.1:9009"\npassword_env = "TEG_PW"\n'
    )
    with pytest.raises(FleetFileError) as caught:
        load_fleet(write(tmp_path / "f.toml", text), environ=ENV)
    assert problems(caught) == [
        'gateways[2] "a": name: gateways[1] has this name too; expected a name no other '
        "gateway has",
        'gateways[3] "b": url: gateways[1] is at https://127.0.0.1:9001 too; expected one '
        "gateway per address (two pollers would share its request budget)",
        "gateways[4]: name: missing; expected 1 to 64 letters, digits, '_', '.' or '-', "
        "starting with a letter or digit",
    ]


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ("colour = 1\n" + gateway(), "colour", "one of alerts, defaults, gateways"),
        ("defaults = 5\n" + gateway(), "defaults", "a table"),
        ('[defaults]\nname = "x"\n' + gateway(), "defaults: name", "other than name"),
        ('[defaults]\nlabels = { a = "b" }\n' + gateway(), "defaults: labels", "other than"),
        ("[defaults]\ncolour = 1\n" + gateway(), "defaults: colour", "one of budget_per"),
        ("", "gateways", "at least one [[gateways]] table"),
        ("gateways = []", "gateways", "at least one [[gateways]] table"),
        ('gateways = "all"', "gateways", "at least one [[gateways]] table"),
        ("gateways = [5]", "gateways[1]", "a [[gateways]] table"),
        ("[[gateways]", "fleet", "TOML"),
    ],
)
def test_the_file_level_problems(tmp_path: Path, text: str, field: str, allowed: str) -> None:
    problem = refused(tmp_path, text)
    assert problem.startswith(f"{field}: "), problem
    assert allowed in problem


def test_more_gateways_than_the_cap_are_refused_without_reading_them(tmp_path: Path) -> None:
    count = fleet_module.MAX_GATEWAYS + 1
    text = "".join(f'[[gateways]]\nname="g{i}"\nhost="h{i}"\n' for i in range(count))
    assert len(text.encode()) <= fleet_module.MAX_FILE_BYTES
    problem = refused(tmp_path, text)
    assert problem == f"gateways: {count} gateways; expected at most 20000"


def test_a_file_too_large_not_utf8_missing_or_a_folder(tmp_path: Path) -> None:
    big = write(tmp_path / "big.toml", "#" * (fleet_module.MAX_FILE_BYTES + 1))
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"# caf\xe9\n")
    for path, what in [
        (big, "fleet: larger than 1 MiB; expected a file of at most 1 MiB"),
        (latin, "fleet: not UTF-8 text; expected a UTF-8 TOML file"),
        (tmp_path / "none.toml", "fleet: cannot be read (No such file or directory)"),
        (tmp_path, "fleet: "),
    ]:
        with pytest.raises(FleetFileError) as caught:
            load_fleet(path, environ=ENV)
        assert problems(caught)[0].startswith(what), problems(caught)
        assert str(path) in str(caught.value)


def test_every_problem_of_a_file_is_listed_at_once(tmp_path: Path) -> None:
    text = (
        gateway("a", 9001, 'tz = "Nowhere"')
        + gateway("b", 9002, "budget_per_minute = 1")
        + gateway("c", 9003, 'pin = "zz"\nlabels = { gateway = "c" }')
    )
    with pytest.raises(FleetFileError) as caught:
        load_fleet(write(tmp_path / "f.toml", text), environ=ENV)
    fields = [re.match(r'(gateways\[\d\] "\w+": [\w.]+):', p) for p in problems(caught)]
    assert [m.group(1) for m in fields if m] == [
        'gateways[1] "a": tz',
        'gateways[2] "b": budget_per_minute',
        'gateways[3] "c": pin',
        'gateways[3] "c": labels.gateway',
    ]
    assert str(caught.value).startswith(f"fleet file {tmp_path / 'f.toml'}: 4 problems:\n")


# --- credentials ------------------------------------------------------------------------------


def test_a_gateway_needs_exactly_one_password_source(tmp_path: Path) -> None:
    none = '[[gateways]]\nname = "home"\nurl = "https://127.0.0.1:1"\n'
    problem = refused(tmp_path, none)
    assert problem.startswith('gateways[1] "home": password_env: no password source; expected')
    assert "password_env, password_file, password_keyring, password" in problem
    two = gateway(extra='password_keyring = "home"')
    problem = refused(tmp_path, two)
    assert problem.startswith(
        'gateways[1] "home": password_env: also password_keyring; expected one password source'
    )


def test_a_source_of_the_gateway_replaces_every_source_of_the_defaults(tmp_path: Path) -> None:
    write(tmp_path / "pw", "from-file\n")
    text = (
        '[defaults]\npassword_env = "UNSET"\ncafile = "missing.pem"\n'
        '[[gateways]]\nname = "home"\nurl = "https://127.0.0.1:1"\n'
        f'password_file = "pw"\npin = "{PIN}"\n'
    )
    (home,) = load_fleet(write(tmp_path / "f.toml", text), environ={}).gateways
    assert home.target.password == "from-file" and home.target.pin == PIN_HEX


def test_password_env_must_name_a_set_variable(tmp_path: Path) -> None:
    problem = refused(tmp_path, gateway(), environ={})
    assert problem == (
        'gateways[1] "home": password_env: TEG_PW is not set; expected a password in TEG_PW '
        "when the fleet file is read"
    )
    assert "is empty" in refused(tmp_path, gateway(), environ={"TEG_PW": ""})
    bad = gateway().replace('password_env = "TEG_PW"', 'password_env = "NOT-A-NAME"')
    assert "environment variable's name" in refused(tmp_path, bad)


def test_teg_password_is_read_only_by_a_gateway_that_names_it(tmp_path: Path) -> None:
    write(tmp_path / "pw", "the-file-one")
    text = gateway("a", 1).replace('password_env = "TEG_PW"', 'password_file = "pw"') + gateway(
        "b", 2
    ).replace("TEG_PW", "TEG_PASSWORD")
    fleet = load_fleet(write(tmp_path / "f.toml", text), environ={"TEG_PASSWORD": "env-one"})
    assert [g.target.password for g in fleet.gateways] == ["the-file-one", "env-one"]


def test_a_password_file_must_be_private_small_and_not_empty(tmp_path: Path) -> None:
    text = gateway().replace('password_env = "TEG_PW"', 'password_file = "secrets/home"')
    secret = tmp_path / "secrets" / "home"
    write(secret, SECRET + "\r\n")
    (home,) = load_fleet(write(tmp_path / "f.toml", text), environ={}).gateways
    assert home.target.password == SECRET  # one CRLF dropped too
    write(secret, SECRET + "\n\n")
    (home,) = load_fleet(tmp_path / "f.toml", environ={}).gateways
    assert home.target.password == SECRET + "\n"  # only one newline is the file's
    for content, mode, what in [
        (SECRET, 0o644, "mode 0644 lets others read it"),
        (SECRET, 0o640, "mode 0640 lets others read it"),
        ("", 0o600, "empty"),
        ("\n", 0o600, "empty"),
        ("x" * 4097, 0o600, "larger than 4096 bytes"),
    ]:
        write(secret, content, mode)
        problem = refused(tmp_path, text, environ={})
        assert problem == (
            f'gateways[1] "home": password_file: {secret}: {what}; expected a file of yours, '
            "mode 0600 (chmod 600), of at most 4096 bytes, holding the password"
        )
    secret.unlink()
    problem = refused(tmp_path, text, environ={})
    assert problem.startswith("gateways[1] \"home\": password_file: 'secrets/home': no such file")


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_a_password_file_of_another_user_is_refused(tmp_path: Path) -> None:
    text = gateway().replace('password_env = "TEG_PW"', 'password_file = "pw"')
    secret = write(tmp_path / "pw", SECRET)
    os.chown(secret, 65534, 65534)
    assert "owned by another user" in refused(tmp_path, text, environ={})


def test_an_inline_password_only_in_a_private_file(tmp_path: Path) -> None:
    text = gateway().replace('password_env = "TEG_PW"', f'password = "{SECRET}"')
    (home,) = load_fleet(write(tmp_path / "f.toml", text, 0o600), environ={}).gateways
    assert home.target.password == SECRET
    for mode in (0o644, 0o640, 0o604):
        problem = refused(tmp_path, text, mode, environ={})
        assert problem.startswith(
            'gateways[1] "home": password: an inline password in a file others can read'
        )
        assert "chmod 600" in problem
    # parse_fleet: the caller says whether the text came from a private file
    with pytest.raises(FleetFileError):
        parse_fleet(text, tmp_path, file_is_private=False, environ={})
    assert parse_fleet(text, tmp_path, file_is_private=True, environ={}).gateways


@pytest.mark.skipif(os.getuid() != 0, reason="giving a file to another user needs root")
def test_an_inline_password_in_a_file_of_another_user_is_refused(tmp_path: Path) -> None:
    text = gateway().replace('password_env = "TEG_PW"', f'password = "{SECRET}"')
    path = write(tmp_path / "f.toml", text, 0o600)
    os.chown(path, 65534, 65534)
    with pytest.raises(FleetFileError) as caught:
        load_fleet(path, environ={})
    assert "an inline password in a file others can read (or not yours)" in str(caught.value)


def test_a_password_from_the_keyring(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    text = gateway().replace('password_env = "TEG_PW"', 'password_keyring = "smith-home"')
    keyring.set_password(KEYRING_SERVICE, "smith-home", SECRET)
    (home,) = load_fleet(write(tmp_path / "f.toml", text), environ={}).gateways
    assert home.target.password == SECRET
    memory_keyring.delete_password(KEYRING_SERVICE, "smith-home")
    problem = refused(tmp_path, text, environ={})
    assert problem == (
        'gateways[1] "home": password_keyring: no password for user "smith-home"; expected a '
        'password in the system keyring (service "tegkit", user "smith-home": keyring set '
        "tegkit smith-home)"
    )


def test_a_keyring_that_fails_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        text = gateway().replace('password_env = "TEG_PW"', 'password_keyring = "home"')
        problem = refused(tmp_path, text, environ={})
    finally:
        keyring.set_keyring(previous)
    assert problem.startswith(
        'gateways[1] "home": password_keyring: the system keyring cannot be read (KeyringLocked)'
    )


def test_no_secret_reaches_a_message(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    keyring.set_password(KEYRING_SERVICE, "k", SECRET)
    write(tmp_path / "pw", SECRET, 0o600)
    text = (
        gateway("env", 1, 'tz = "Nowhere"')
        + gateway("file", 2, 'tz = "Nowhere"').replace(
            'password_env = "TEG_PW"', 'password_file = "pw"'
        )
        + gateway("ring", 3, 'tz = "Nowhere"').replace(
            'password_env = "TEG_PW"', 'password_keyring = "k"'
        )
        + gateway("inline", 4, 'tz = "Nowhere"').replace(
            'password_env = "TEG_PW"', f'password = "{SECRET}"'
        )
    )
    for mode in (0o600, 0o644):
        with pytest.raises(FleetFileError) as caught:
            load_fleet(write(tmp_path / "f.toml", text, mode), environ=ENV)
        assert len(caught.value.errors) == 4 + (mode == 0o644)
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value.errors)


# --- paths, tariffs and alerts --------------------------------------------------------------------


def test_paths_are_relative_to_the_fleet_file_not_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    write(site / "tariff.toml", TARIFF, 0o644)
    write(site / "ca.pem", "x", 0o644)
    text = gateway(extra='tariff = "tariff.toml"').replace(f'pin = "{PIN}"', 'cafile = "ca.pem"')
    monkeypatch.chdir(tmp_path)
    (home,) = load_fleet(write(site / "fleet.toml", text), environ=ENV).gateways
    assert home.tariff is not None and home.target.cafile == str(site / "ca.pem")
    with pytest.raises(FleetFileError):  # from the working folder they are not found
        parse_fleet(text, tmp_path, file_is_private=True, environ=ENV)


def test_a_tariff_file_with_a_problem_names_the_gateway_and_the_tariffs_own_field(
    tmp_path: Path,
) -> None:
    write(tmp_path / "bad.toml", 'name = "x"\ncurrency = 5\n', 0o644)
    problem = refused(tmp_path, gateway(extra='tariff = "bad.toml"'))
    assert problem.startswith(f'gateways[1] "home": tariff: {tmp_path / "bad.toml"}: currency')
    assert problem.endswith("expected a valid tariff file (see `teg tariff`)")


def test_alerts_are_checked_with_the_rest_of_the_file(tmp_path: Path) -> None:
    good = gateway() + '[[alerts.rules]]\nkind = "unreachable"\nminutes = 5\n'
    fleet = load_fleet(write(tmp_path / "f.toml", good), environ=ENV)
    assert fleet.alerts is not None and fleet.alerts.rules[0].kind == "unreachable"
    bad = gateway(extra='tz = "Nowhere"') + '[[alerts.rules]]\nkind = "volcano"\n'
    with pytest.raises(FleetFileError) as caught:
        load_fleet(write(tmp_path / "f.toml", bad), environ=ENV)
    found = problems(caught)
    assert found[0].startswith('gateways[1] "home": tz:')
    assert found[1].startswith("alerts.rules[")
    assert "kind" in found[1]
