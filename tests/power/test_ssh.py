"""The ssh power-off driver against a real sshd on loopback (key-only, private host key)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ulm.power.ipmi import PowerError
from ulm.power.ssh import SshPower


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    if shutil.which("ssh") is None or not Path("/usr/sbin/sshd").exists():
        pytest.fail("openssh is not installed: run `bash scripts/setup.sh --dev`")
    d = tmp_path_factory.mktemp("sshd")
    d.chmod(0o700)
    for name in ("host", "user"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)],
                       check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (d / "authorized_keys").write_text((d / "user.pub").read_text())
    (d / "authorized_keys").chmod(0o600)
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        "StrictModes no\nUsePAM no\n")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    proc = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", str(d / "sshd_config")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    known = d / "known_hosts"
    known.write_text(f"[127.0.0.1]:{port} {(d / 'host.pub').read_text()}")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield d, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_power_off_runs_the_configured_command(sshd: tuple[Path, int]) -> None:
    d, port = sshd
    marker = d / "powered-off"
    SshPower("127.0.0.1", "root", str(d / "user"), port, f"touch {marker}",
             known_hosts=str(d / "known_hosts")).power_off()
    assert marker.exists()


def test_an_unknown_host_key_is_refused(sshd: tuple[Path, int], tmp_path: Path) -> None:
    d, port = sshd
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(PowerError, match="Host key verification failed"):
        SshPower("127.0.0.1", "root", str(d / "user"), port, "true",
                 known_hosts=str(empty)).power_off()


def test_ssh_cannot_wake() -> None:
    with pytest.raises(NotImplementedError):
        SshPower("127.0.0.1").power_on()
