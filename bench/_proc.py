"""What the benchmarks read about a process from /proc, and a free loopback port."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def rss_mb(pid: int) -> float:
    """The resident set of process `pid` in MB (nan when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """CPU seconds process `pid` has used so far (user + system)."""
    # the command name in parentheses may hold spaces: the fields follow the last ")"
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A loopback port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
