"""Python code run in a network namespace of the test's own, where a non-loopback address
exists on the namespace's loopback device only: a test can be a client that is not on
loopback without sending a packet to any address of this machine or beyond."""

from __future__ import annotations

import os
import subprocess
import sys

#: an address that exists only inside the namespace (on its `lo`), never outside it
OWN_NETNS_ADDRESS = "10.213.0.1"


def run_in_own_netns(code: str, timeout_s: float = 120.0) -> str:
    """Run `code` with this interpreter in a new network namespace (as root, or as a mapped
    root in a new user namespace) and return its stdout; a failure raises with its stderr."""
    unshare = ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "-Urn"]
    setup = f"ip link set lo up && ip addr add {OWN_NETNS_ADDRESS}/32 dev lo"
    done = subprocess.run(
        [*unshare, "sh", "-c", f'{setup} && exec "$0" -c "$1"', sys.executable, code],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout
