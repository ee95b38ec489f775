"""Certificate refusals name their real cause; credentials inside a URL are refused unseen."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from canned_gateway import CannedGateway, make_certificate
from teg_helpers import SimThread, Teg

from tegkit.sim import Simulator

# The phrase that names each cause; a message names its own and none of the others.
CAUSES = {
    "name_mismatch": "certificate name mismatch",
    "untrusted": "certificate not trusted",
    "expired": "certificate expired",
    "changed": "certificate changed",
}


def _only_cause(stderr: str, cause: str) -> None:
    assert CAUSES[cause] in stderr, stderr
    for other, phrase in CAUSES.items():
        if other != cause:
            assert phrase not in stderr, (cause, stderr)
    assert "Traceback" not in stderr


def test_a_wrong_sni_with_the_right_cafile_is_a_name_mismatch(teg: Teg, sim: Simulator) -> None:
    result = teg("--cafile", str(sim.cafile), "--sni", "nothere", "status", TEG_PIN="")
    assert result.exit_code == 7
    _only_cause(result.stderr, "name_mismatch")
    assert "'nothere'" in result.stderr and "--sni" in result.stderr
    assert "give its file with --cafile" not in result.stderr  # it was given, and is right
    # The same file with a name the certificate carries works.
    ok = teg("--cafile", str(sim.cafile), "--sni", "teg", "status", TEG_PIN="")
    assert ok.exit_code == 0, ok.stderr


def test_a_cafile_of_another_certificate_is_untrusted(
    teg: Teg, sim: Simulator, tmp_path: Path
) -> None:
    other, _key, _sha = make_certificate(tmp_path / "other")
    result = teg("--cafile", str(other), "--sni", "teg", "status", TEG_PIN="")
    assert result.exit_code == 7
    _only_cause(result.stderr, "untrusted")
    assert str(other) in result.stderr  # which file did not vouch for it
    assert "teg cert fetch" in result.stderr


def test_no_pin_and_no_cafile_is_untrusted_and_suggests_both_ways(teg: Teg) -> None:
    result = teg("status", TEG_PIN="")
    assert result.exit_code == 7
    _only_cause(result.stderr, "untrusted")
    assert "teg cert fetch" in result.stderr and "--cafile" in result.stderr


@pytest.fixture()
def expired_gateway(tmp_path: Path) -> Iterator[CannedGateway]:
    gateway = CannedGateway(tmp_path / "gw", expired=True)
    try:
        yield gateway
    finally:
        gateway.close()


def test_an_expired_certificate_says_expired(teg: Teg, expired_gateway: CannedGateway) -> None:
    result = teg(
        "--cafile", str(expired_gateway.cert_path), "--sni", "teg", "status",
        TEG_HOST=expired_gateway.url, TEG_PIN="",
    )  # fmt: skip
    assert result.exit_code == 7
    _only_cause(result.stderr, "expired")
    assert "date and time" in result.stderr and "teg cert fetch" in result.stderr
    # A pin does not depend on dates: the way out the message gives works.
    pinned = teg("status", TEG_HOST=expired_gateway.url, TEG_PIN=expired_gateway.sha256)
    assert pinned.exit_code == 0, pinned.stderr


def test_a_rotated_certificate_is_a_changed_pin(teg: Teg) -> None:
    own = SimThread()  # rotating must not disturb the module's simulator
    try:
        pin = own.sim.fingerprint_sha256
        own.run(own.sim.inject_fault("rotate_cert"))
        result = teg("status", TEG_HOST=own.sim.url, TEG_PIN=pin)
        assert result.exit_code == 7
        _only_cause(result.stderr, "changed")
        assert own.sim.fingerprint_sha256 in result.stderr
    finally:
        own.close()


# --- credentials inside a URL ---------------------------------------------------------------

SECRET = "s3cr3t-Pa55"


def _said(result: object) -> str:
    return result.stdout + result.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url",
    [
        "https://admin:{secret}@{host}",
        "admin:{secret}@{host}",
        "https://{secret}@{host}",
        "https://admin:{secret}@{host}/",
    ],
)
def test_a_password_in_the_host_url_is_refused_and_never_repeated(
    teg: Teg, sim: Simulator, url: str
) -> None:
    host = sim.url.split("://", 1)[1]
    given = url.format(secret=SECRET, host=host)
    for args, env in (
        (["--host", given, "status"], {}),
        (["status"], {"TEG_HOST": given}),
        (["--host", given, "setup", "--yes"], {"TEG_PIN": ""}),
        (["--host", given, "cert", "fetch", "--yes"], {"TEG_PIN": ""}),
        (["--host", given, "login"], {}),
    ):
        result = teg(*args, **env)
        assert result.exit_code == 2, (args, _said(result))
        assert SECRET not in _said(result), args
        assert "user name or password" in result.stderr
        assert "Traceback" not in _said(result)


def test_a_password_in_a_profile_host_is_refused_unseen(teg: Teg, env: dict[str, str]) -> None:
    config = Path(env["TEG_CONFIG"])
    config.parent.mkdir(parents=True)
    config.write_text(f'[profiles.default]\nhost = "https://admin:{SECRET}@127.0.0.1:9"\n')
    result = teg("status", TEG_HOST="")
    assert result.exit_code == 2
    assert SECRET not in _said(result)
    assert "profiles.default.host" in result.stderr


def test_a_password_in_the_cloud_url_is_refused_unseen(teg: Teg) -> None:
    result = teg("cloud", "products", TEG_CLOUD_URL=f"https://u:{SECRET}@127.0.0.1:9")
    assert result.exit_code == 2
    assert SECRET not in _said(result)
    assert "--cloud-url" in result.stderr


def test_an_at_sign_after_the_host_is_not_user_info() -> None:
    from tegkit.cli.app import has_user_info

    assert has_user_info("https://a:b@h") and has_user_info("a@h:443")
    assert not has_user_info("https://h/x@y") and not has_user_info("h?x=a@b")
    assert not has_user_info("[::1]:8443") and not has_user_info("powerwall")
