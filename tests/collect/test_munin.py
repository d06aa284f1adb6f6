"""The munin source against a real munin-node on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ulm.collect.munin import MuninSource


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def munin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = shutil.which("munin-node") or "/usr/sbin/munin-node"
    if not Path(binary).exists():
        pytest.fail("munin-node is not installed: run scripts/setup.sh (Debian package "
                    "munin-node)")
    d = tmp_path_factory.mktemp("munin")
    port = free_port()
    conf = d / "munin-node.conf"
    conf.write_text(
        f"log_level 4\nlog_file {d}/munin-node.log\npid_file {d}/munin-node.pid\n"
        "background 0\nsetsid 0\nuser root\ngroup root\nhost_name ulmtest\n"
        f"allow ^127\\.0\\.0\\.1$\nhost 127.0.0.1\nport {port}\n")
    proc = subprocess.Popen([binary, "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"munin-node did not listen on {address}")
    yield address
    proc.terminate()
    proc.wait(timeout=10)


def meminfo_total_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no MemTotal")


def test_reads_host_figures(munin: str) -> None:
    src = MuninSource({"me": munin})
    first = src.read("me", 0.0)
    assert first.ok and first.error == ""
    assert first.cores == os.cpu_count()
    assert first.mem_total_mib == pytest.approx(meminfo_total_mib(), rel=0.01)
    assert first.mem_used_mib is not None and 0 < first.mem_used_mib < first.mem_total_mib
    assert first.cpu is None  # a counter needs two readings: no figure rather than a guess
    assert first.load is not None and first.load >= 0


def test_cpu_follows_real_load(munin: str) -> None:
    src = MuninSource({"me": munin})
    src.read("me", 0.0)
    time.sleep(1.5)
    idle = src.read("me", 1.0).cpu
    stop = time.monotonic() + 3.0
    burners = [subprocess.Popen(["python3", "-c", f"import time\nwhile time.monotonic() < "
                                 f"{time.monotonic() + 3.0}: pass"]) for _ in range(2)]
    src.read("me", 2.0)
    time.sleep(max(stop - time.monotonic() - 0.3, 1.0))
    busy = src.read("me", 3.0).cpu
    for b in burners:
        b.wait()
    assert idle is not None and busy is not None
    assert busy > 0.8  # two burners on this machine's two cores
    if idle < 0.5:  # (on a machine already busy, the difference cannot show)
        assert busy > idle + 0.3


def test_silent_host_is_reported_not_guessed() -> None:
    src = MuninSource({"gone": f"127.0.0.1:{free_port()}"}, timeout_s=1.0)
    col = src.collect(5.0)
    assert [h.host for h in col.silent] == ["gone"]
    assert "refused" in col.silent[0].error.lower()
    assert col.silent[0].cpu is None


def test_something_that_is_not_munin() -> None:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def answer() -> None:
        conn, _ = srv.accept()
        conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    reading = MuninSource({"x": f"127.0.0.1:{srv.getsockname()[1]}"}).read("x", 0.0)
    srv.close()
    assert not reading.ok and "not a munin node" in reading.error
