"""A real Prometheus server on loopback scraping a real node-exporter and a real libvirt
exporter (against libvirt's test driver), every second. Optional basic auth and TLS through
Prometheus' own web config."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BINARIES = {"prometheus": "prometheus", "prometheus-node-exporter": "prometheus-node-exporter",
            "prometheus-libvirt-exporter": "prometheus-libvirt-exporter"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not listen on 127.0.0.1:{port}")


def need(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} is not installed: run `bash scripts/setup.sh --dev` "
                    f"(Debian package {BINARIES[binary]})")
    return path


@dataclass
class Exporter:
    argv: list[str]
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc, self.argv[0])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


@dataclass
class Prom:
    url: str
    node: Exporter
    libvirt: Exporter
    procs: list[Exporter] = field(default_factory=list)


def start_prometheus(d: Path, web_config: str = "", scheme: str = "http"
                     ) -> tuple[subprocess.Popen[bytes], str]:
    node, lv, port = free_port(), free_port(), free_port()
    (d / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n"
        f"  - job_name: node\n    static_configs:\n      - targets: ['127.0.0.1:{node}']\n"
        f"  - job_name: libvirt\n    static_configs:\n      - targets: ['127.0.0.1:{lv}']\n")
    argv = [need("prometheus"), f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'data'}", f"--web.listen-address=127.0.0.1:{port}"]
    if web_config:
        (d / "web.yml").write_text(web_config)
        argv.append(f"--web.config.file={d / 'web.yml'}")
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc, "prometheus")
    (d / "ports").write_text(f"{node} {lv}")
    return proc, f"{scheme}://127.0.0.1:{port}"


def exporters(d: Path) -> tuple[Exporter, Exporter]:
    node, lv = (int(p) for p in (d / "ports").read_text().split())
    n = Exporter([need("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{node}",
                  "--collector.disable-defaults", "--collector.cpu", "--collector.meminfo"],
                 node)
    v = Exporter([need("prometheus-libvirt-exporter"), f"--web.listen-address=127.0.0.1:{lv}",
                  "--libvirt.uri=test:///default"], lv)
    return n, v


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prom]:
    d = tmp_path_factory.mktemp("prom")
    proc, url = start_prometheus(d)
    node, lv = exporters(d)
    node.start()
    lv.start()
    try:
        yield Prom(url, node, lv)
    finally:
        node.stop()
        lv.stop()
        proc.terminate()
        proc.wait(20)
