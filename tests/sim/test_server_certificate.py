"""The simulator's certificates over real TLS: the gateway port names what a gateway's names
(teg, powerwall, powerpack), so `cafile` works through SNI and fails with an address, as on
a real gateway; the loopback names only when asked; one cafile for both ports."""

from __future__ import annotations

import signal
import ssl
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from gateway_sim_helpers import simulator

from tegkit.client import Gateway, VerifyCertificate
from tegkit.errors import CertificateError
from tegkit.sim.certs import certificate_names, ensure_certificate

GATEWAY_NAMES = {"teg", "powerwall", "powerpack"}
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


async def _status(url: str, cafile: Path, server_hostname: str | None = None) -> int:
    context = ssl.create_default_context(cafile=str(cafile))
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + "/api/status", ssl=context, server_hostname=server_hostname) as r,
    ):
        return r.status


async def test_the_gateway_certificate_names_only_what_a_gateway_names() -> None:
    async with simulator() as sim:
        assert certificate_names(sim.cafile) == GATEWAY_NAMES
        for name in sorted(GATEWAY_NAMES):
            assert await _status(sim.url, sim.cafile, server_hostname=name) == 200
        # Dialled by address with the right cafile: the name check fails, as on a gateway.
        with pytest.raises(aiohttp.ClientConnectorCertificateError) as caught:
            await _status(sim.url, sim.cafile)
        assert "127.0.0.1" in str(caught.value)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await _status(sim.url, sim.cafile, server_hostname="localhost")


async def test_the_client_verifies_through_sni_and_names_a_mismatch() -> None:
    async with simulator() as sim:
        tls = VerifyCertificate(sim.cafile)
        async with Gateway(sim.url, tls=tls, sni="powerwall") as gw:
            assert (await gw.status()).version == sim.gateway.profile.version
        async with Gateway(sim.url, tls=tls) as gw:
            with pytest.raises(CertificateError) as caught:
                await gw.status()
            assert caught.value.reason == "name_mismatch"


async def test_loopback_names_are_added_on_request() -> None:
    async with simulator(cert_loopback_names=True) as sim:
        assert certificate_names(sim.cafile) == GATEWAY_NAMES | LOOPBACK_NAMES
        assert await _status(sim.url, sim.cafile) == 200
        assert await _status(sim.url, sim.cafile, server_hostname="teg") == 200


@pytest.mark.parametrize("loopback", [False, True])
async def test_one_cafile_verifies_the_owner_api_port_by_address(loopback: bool) -> None:
    async with simulator(cert_loopback_names=loopback) as sim:
        context = ssl.create_default_context(cafile=str(sim.cafile))
        headers = {"Authorization": f"Bearer {sim.cloud_tokens.access_token}"}
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.get(sim.cloud_url + "/api/1/products", ssl=context) as r,
        ):
            assert r.status == 200
        await sim.inject_fault("rotate_cert")  # both ports change, the names stay
        assert certificate_names(sim.cafile) == GATEWAY_NAMES | (
            LOOPBACK_NAMES if loopback else set()
        )
        context = ssl.create_default_context(cafile=str(sim.cafile))
        async with (
            aiohttp.ClientSession(headers=headers) as session,
            session.get(sim.cloud_url + "/api/1/products", ssl=context) as r,
        ):
            assert r.status == 200
        assert await _status(sim.url, sim.cafile, server_hostname="teg") == 200


async def test_a_kept_certificate_is_reused_unless_the_names_asked_for_change(
    tmp_path: Path,
) -> None:
    async with simulator(state_dir=tmp_path) as sim:
        first = sim.fingerprint_sha256
    async with simulator(state_dir=tmp_path) as sim:
        assert sim.fingerprint_sha256 == first  # pinned clients still trust it
    async with simulator(state_dir=tmp_path, cert_loopback_names=True) as sim:
        assert sim.fingerprint_sha256 != first
        assert certificate_names(sim.cafile) == GATEWAY_NAMES | LOOPBACK_NAMES
        assert await _status(sim.url, sim.cafile) == 200
    async with simulator(state_dir=tmp_path) as sim:
        assert certificate_names(sim.cafile) == GATEWAY_NAMES


@pytest.mark.parametrize("flag", [[], ["--cert-loopback-names"]])
def test_teg_sim_cert_loopback_names_option(tmp_path: Path, flag: list[str]) -> None:
    command = [sys.executable, "-m", "tegkit.sim", "--port", "0", "--state-dir", str(tmp_path)]
    process = subprocess.Popen([*command, *flag], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        certificate = None
        while certificate is None:
            line = process.stdout.readline()
            assert line, "the simulator exited before printing its certificate"
            if line.startswith("certificate:"):
                certificate = Path(line.partition(":")[2].strip())
        expected = GATEWAY_NAMES | (LOOPBACK_NAMES if flag else set())
        assert certificate_names(certificate) == expected
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def test_the_kept_key_is_0600_in_folders_made_0700(tmp_path: Path) -> None:
    state = tmp_path / "a" / "sim-state"
    files = ensure_certificate(state)
    assert files.key_path.stat().st_mode & 0o777 == 0o600
    for folder in (state, state.parent):
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert certificate_names(files.cert_path) == GATEWAY_NAMES
