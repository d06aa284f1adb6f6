"""munin-node as a host metrics source: its line protocol over TCP (port 4949).

munin reports host figures only (no per-VM data): CPU from the `cpu` plugin's DERIVE counters
(jiffies, so busy = 1 - d(idle + iowait) / d(total) between two readings), memory from the
`memory` plugin (used = total - free - buffers - cached; total from `config memory`).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass

from ulm.collect.base import Collection, HostReading


class MuninError(Exception):
    pass


class MuninClient:
    def __init__(self, address: str, timeout_s: float = 5.0) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise MuninError(f"munin address {address!r} is not host:port")
        self.addr = (host, int(port))
        self.timeout_s = timeout_s

    def query(self, *commands: str) -> dict[str, list[str]]:
        """Runs `fetch X` / `config X` / `list` commands in one session."""
        out: dict[str, list[str]] = {}
        with socket.create_connection(self.addr, timeout=self.timeout_s) as sock:
            f = sock.makefile("rw", encoding="utf-8", newline="\n")
            banner = f.readline()
            if not banner.startswith("# munin node"):
                raise MuninError(f"not a munin node: {banner.strip()!r}")
            for cmd in commands:
                f.write(cmd + "\n")
                f.flush()
                out[cmd] = self._read(f, multiline=not cmd.startswith(("list", "version")))
            f.write("quit\n")
            f.flush()
        return out

    @staticmethod
    def _read(f: object, multiline: bool) -> list[str]:
        from io import TextIOWrapper
        assert isinstance(f, TextIOWrapper)
        lines: list[str] = []
        while True:
            line = f.readline()
            if not line:
                raise MuninError("connection closed mid-answer")
            line = line.rstrip("\n")
            if not multiline:
                return [line]
            if line == ".":
                return lines
            if line.startswith("# Unknown service"):
                raise MuninError("unknown munin plugin")
            lines.append(line)


def values(lines: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for line in lines:
        key, _, value = line.partition(" ")
        if key.endswith(".value"):
            try:
                out[key.removesuffix(".value")] = float(value)
            except ValueError:
                continue  # "U" = unknown: left out, not guessed
    return out


def upper_limit(config: list[str]) -> float | None:
    for line in config:
        if line.startswith("graph_args"):
            parts = line.split()
            for flag in ("--upper-limit", "-u"):
                if flag in parts and parts.index(flag) + 1 < len(parts):
                    return float(parts[parts.index(flag) + 1])
    return None


@dataclass
class _Prev:
    busy: float
    total: float


class MuninSource:
    name = "munin"

    def __init__(self, nodes: Mapping[str, str], timeout_s: float = 5.0) -> None:
        self.nodes = dict(nodes)  # host name -> "address:port"
        self.timeout_s = timeout_s
        self._prev: dict[str, _Prev] = {}

    def collect(self, now: float) -> Collection:
        return Collection(now, tuple(self.read(host, now) for host in self.nodes))

    def read(self, host: str, now: float) -> HostReading:
        try:
            ans = MuninClient(self.nodes[host], self.timeout_s).query(
                "config cpu", "fetch cpu", "config memory", "fetch memory", "fetch load")
        except (OSError, MuninError) as exc:
            return HostReading(host, now, False, f"munin {self.nodes[host]}: {exc}",
                               source=self.name)
        cpu = values(ans["fetch cpu"])
        mem = values(ans["fetch memory"])
        cores = int((upper_limit(ans["config cpu"]) or 100) // 100)
        total_b = upper_limit(ans["config memory"])
        used = None
        if total_b is not None and {"free", "buffers", "cached"} <= mem.keys():
            used = (total_b - mem["free"] - mem["buffers"] - mem["cached"]) / 2**20
        return HostReading(host, now, True, "", cores, (total_b or 0) / 2**20,
                           self._busy(host, cpu), used, values(ans["fetch load"]).get("load"),
                           self.name)

    def _busy(self, host: str, cpu: dict[str, float]) -> float | None:
        # guest time is already counted in user (as in /proc/stat), so it is not added again
        total = sum(v for k, v in cpu.items() if k not in ("guest", "guest_nice"))
        idle = cpu.get("idle", 0.0) + cpu.get("iowait", 0.0)
        prev = self._prev.get(host)
        self._prev[host] = _Prev(total - idle, total)
        if prev is None or total <= prev.total:
            return None  # first reading, or counters restarted (host rebooted): no delta yet
        return min(max((total - idle - prev.busy) / (total - prev.total), 0.0), 1.0)
