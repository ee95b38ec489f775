"""MQTT publishing speed: 1,000 gateways' readings through the bridge to a local Mosquitto.

A `LiveState` of 1,000 synthetic gateways is driven through the bridge's publish path
(`MqttBridge.take_entry`: state document, availability, discovery when a device changes)
to Debian's mosquitto on loopback (started here on a free port, QoS 1, so each message
counts once the broker acknowledged it). Rows:

- discovery + first state of every gateway (Home Assistant configs, availability, state)
  in messages per second;
- steady readings: a new reading for every gateway per round, messages per second;
- the rate limit: five readings per gateway within one interval (1 s here, 5 s by default)
  publish two state messages per gateway, the first at once and the latest when the
  interval ends; the ones in between are replaced, never queued.

``TEGKIT_BENCH_MQTT_GATEWAYS`` (default 1000) and ``TEGKIT_BENCH_MQTT_ROUNDS`` (default 5)
change the size.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tegkit.monitor.live import LiveState
from tegkit.monitor.mqtt.bridge import MqttBridge, MqttSettings
from tegkit.monitor.readings import Reading

MOSQUITTO = "/usr/sbin/mosquitto"
GATEWAYS = int(os.environ.get("TEGKIT_BENCH_MQTT_GATEWAYS", "1000"))
ROUNDS = int(os.environ.get("TEGKIT_BENCH_MQTT_ROUNDS", "5"))
T0 = 1_750_000_000.0


@contextlib.contextmanager
def mosquitto() -> Iterator[int]:
    """A throwaway anonymous broker on 127.0.0.1; yields its port."""
    if not os.access(MOSQUITTO, os.X_OK):
        raise SystemExit("bench_mqtt: mosquitto is not installed (make sysdeps installs it)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with tempfile.TemporaryDirectory(prefix="tegkit-bench-mqtt-") as folder:
        config = Path(folder) / "mosquitto.conf"
        config.write_text(
            f"user root\npersistence false\nlog_dest none\n"
            f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        )
        process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stderr=subprocess.DEVNULL)
        try:
            end = time.monotonic() + 30
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > end or process.poll() is not None:
                    raise SystemExit("bench_mqtt: mosquitto did not start")
                time.sleep(0.02)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=10)


def _reading(name: str, n: int, i: int) -> Reading:
    wh = 1000.0 * n + i
    return Reading(
        gateway=name,
        taken_at=T0 + 5.0 * n,
        site_w=100.0 + i,
        battery_w=-250.0,
        load_w=900.0 + n,
        solar_w=1050.0,
        soe_raw_percent=60.0,
        grid_status="SystemGridConnected",
        site_imported_wh=wh,
        site_exported_wh=wh / 2,
        battery_imported_wh=wh / 3,
        battery_exported_wh=wh / 4,
        load_imported_wh=wh * 2,
        solar_exported_wh=wh * 1.5,
    )


class Fleet:
    """Synthetic gateways in a LiveState: each round gives every one a new reading."""

    def __init__(self, count: int) -> None:
        self.now_s = T0
        self.live = LiveState(clock=lambda: self.now_s, stale_after_s=1e9)
        self.gateways = [
            self.live.add(f"gw{i:04d}", f"https://10.0.{i // 250}.{i % 250}") for i in range(count)
        ]
        for i, g in enumerate(self.gateways):
            g.mode, g.backup_reserve_raw_percent = "self_consumption", 24.0
            g.version, g.din = "24.4.0", f"1232100-00-E--TG12{i:010d}"
            g.site_name = f"Site {i}"
        self.round = 0

    def step(self) -> list[dict[str, object]]:
        self.round += 1
        self.now_s = T0 + 5.0 * self.round
        for i, g in enumerate(self.gateways):
            g.reading = _reading(g.name, self.round, i)
        return [g.to_json(self.now_s, 1e9) for g in self.gateways]


async def _drain(bridge: MqttBridge, target: int, deadline_s: float = 300.0) -> None:
    end = time.monotonic() + deadline_s
    while bridge.published_total < target:
        if time.monotonic() > end:
            raise SystemExit(f"bench_mqtt: {bridge.published_total} of {target} published")
        await asyncio.sleep(0.005)


async def _bench(port: int) -> list[tuple[str, float, str]]:
    rows: list[tuple[str, float, str]] = []
    fleet = Fleet(GATEWAYS)
    settings = MqttSettings(f"mqtt://127.0.0.1:{port}", min_interval_s=0.0)
    bridge = MqttBridge(settings, fleet.live, {}, dashboard_url="http://127.0.0.1:8675/")
    # the connection only: readings are handed to take_entry here, not through the queue
    task = asyncio.create_task(bridge.run(follow_live=False))
    try:
        await asyncio.wait_for(bridge.connected.wait(), 30)
        start = time.perf_counter()
        before = bridge.published_total
        for entry in fleet.step():
            bridge.take_entry(entry)
        queued = len(bridge.outbox)
        await _drain(bridge, before + queued)
        elapsed = time.perf_counter() - start
        rows.append((f"mqtt discovery+state {GATEWAYS} gateways", queued / elapsed, "msg/s"))
        rows.append(("mqtt messages per gateway at start", queued / GATEWAYS, "msg"))
        sent = 0
        start = time.perf_counter()
        for _ in range(ROUNDS):
            before = bridge.published_total
            entries = fleet.step()
            for entry in entries:
                bridge.take_entry(entry)
            queued = len(bridge.outbox)
            await _drain(bridge, before + queued)
            sent += queued
        elapsed = time.perf_counter() - start
        rows.append((f"mqtt steady readings {GATEWAYS} gateways", sent / elapsed, "msg/s"))
        rows.append((f"mqtt one round of {GATEWAYS} readings", elapsed / ROUNDS * 1000, "ms"))
    finally:
        await bridge.close()
        await task

    # the rate limit: 5 readings per gateway within the interval -> 2 messages per gateway
    fleet = Fleet(GATEWAYS)
    limited = MqttSettings(f"mqtt://127.0.0.1:{port}", min_interval_s=1.0, base="limited")
    bridge = MqttBridge(limited, fleet.live, {})
    task = asyncio.create_task(bridge.run(follow_live=False))
    try:
        await asyncio.wait_for(bridge.connected.wait(), 30)
        for entry in fleet.step():  # discovery, availability and the first state
            bridge.take_entry(entry)
        await _drain(bridge, len(bridge.outbox))
        before = bridge.published_total
        for _ in range(5):
            for entry in fleet.step():
                bridge.take_entry(entry)
        await _drain(bridge, before + GATEWAYS)  # the latest of each, when the interval ends
        rows.append(
            (
                "mqtt rate limit: state msgs per gateway for 5 readings in 1 s",
                1 + (bridge.published_total - before) / GATEWAYS,
                "msg",
            )
        )
    finally:
        await bridge.close()
        await task
    return rows


def run() -> list[tuple[str, float, str]]:
    with mosquitto() as port:
        return asyncio.run(_bench(port))


if __name__ == "__main__":
    for row in run():
        print(*row)
