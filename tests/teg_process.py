"""A real `teg` process for the CLI tests (monitor, simulator, `teg auto run`).

Its stdout and stderr are read by threads into lists of lines, so a test waits for a line
(a condition with a deadline, never a sleep) and then looks at everything printed.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

TEG = str(Path(sys.executable).with_name("teg"))
DEADLINE_S = 60.0


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any TEG_ setting of the user's, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEG_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class TegProcess:
    """`teg ARGS...` (or `python -c CODE`) running, its output collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            args,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @classmethod
    def teg(cls, *args: str, env: dict[str, str]) -> TegProcess:
        return cls([TEG, *args], env)

    def _read(self, stream: IO[str] | None, lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._changed:
                lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        self.proc.wait()  # the stream ended: so does the process; waiters see its code
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self, what: str, found: Callable[[], object], deadline_s: float = DEADLINE_S
    ) -> object:
        """Until found() is truthy (checked whenever a line arrives); fails at the deadline
        or when the process ends first."""
        with self._changed:
            ok = self._changed.wait_for(
                lambda: found() or self.proc.poll() is not None, timeout=deadline_s
            )
            value = found()
        if not value:
            raise AssertionError(
                f"waited for {what}; exit code {self.proc.poll()}\n"
                "stdout:\n" + "\n".join(self.out) + "\nstderr:\n" + "\n".join(self.err)
            )
        assert ok
        return value

    def poll_until(
        self, what: str, check: Callable[[], object], deadline_s: float = DEADLINE_S
    ) -> object:
        """Call check() every tenth of a second until it is truthy; fails at the deadline
        or when the process ends first (for state seen over HTTP, not in the output)."""
        end = time.monotonic() + deadline_s
        pause = threading.Event()
        while time.monotonic() < end and self.proc.poll() is None:
            value = check()
            if value:
                return value
            pause.wait(0.1)
        raise AssertionError(
            f"waited for {what}; exit code {self.proc.poll()}\nstderr:\n" + "\n".join(self.err)
        )

    def line(self, pattern: str, stream: str = "err") -> re.Match[str]:
        """The first line of stdout/stderr matching `pattern`, waiting for it."""
        lines = self.err if stream == "err" else self.out
        regex = re.compile(pattern)

        def first() -> re.Match[str] | None:
            for text in lines:
                m = regex.search(text)
                if m:
                    return m
            return None

        found = self.wait_for(f"a line matching {pattern!r} on std{stream}", first)
        assert isinstance(found, re.Match)
        return found

    def stop(self, timeout_s: float = DEADLINE_S, sig: int = signal.SIGINT) -> int:
        """`sig` (SIGINT), then the exit code (the process is killed if it does not end)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish(timeout_s)

    def finish(self, timeout_s: float = DEADLINE_S) -> int:
        """The exit code once the process ends by itself (killed after `timeout_s`)."""
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(
                "the process did not end\nstderr:\n" + "\n".join(self.err)
            ) from None
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class SimProcess:
    """`teg sim` on free loopback ports; what it prints to reach it, parsed."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        self.process = TegProcess.teg(
            "sim",
            "--port",
            "0",
            "--cloud-port",
            "0",
            "--speed",
            "0",
            "--state-dir",
            str(state_dir),
            *args,
            env=clean_env(),
        )
        self.url = self.process.line(r"^local API:\s+(\S+)", "out").group(1)
        self.fingerprint = self.process.line(r"^fingerprint: sha256:(\w{64})", "out").group(1)
        self.password = self.process.line(r"^login:.* password=(\S+)", "out").group(1)
        self.control_token = self.process.line(r"Bearer ([^)\s]+)\)", "out").group(1)

    def control(self, path: str, body: dict[str, object]) -> dict[str, object]:
        """POST to the simulator's control API (/sim/...) with its token."""
        import json
        import ssl
        import urllib.request

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the simulator's own loopback certificate
        request = urllib.request.Request(
            f"{self.url}/sim{path}",
            data=json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.control_token}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, context=context, timeout=30) as reply:
            return dict(json.loads(reply.read()))

    def close(self) -> None:
        self.process.stop()
