"""The Redfish driver against a real Redfish endpoint: sushy-tools' emulator on loopback."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ulm.drivers.base import PowerState
from ulm.power.ipmi import PowerError
from ulm.power.redfish import RedfishPower

UUID = "6c61622d-686f-7374-8000-000000000001"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    d = tmp_path_factory.mktemp("sushy")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = d / "emu.conf"
    conf.write_text(
        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n"
        f"SUSHY_EMULATOR_LISTEN_PORT = {port}\n"
        f"SUSHY_EMULATOR_STATE_DIR = '{d}/state'\n"
        "SUSHY_EMULATOR_FAKE_DRIVER = True\n"
        f"SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '{UUID}', 'name': 'labh1', "
        "'power_state': 'On'}]\n")
    binary = Path(sys.executable).parent / "sushy-emulator"
    if not binary.exists():
        pytest.fail("sushy-tools is not installed: run `bash scripts/setup.sh --dev`")
    proc = subprocess.Popen([str(binary), "--config", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def wait_for(p: RedfishPower, want: PowerState, seconds: float = 30.0) -> bool:
    # the fake driver applies a change 1-11 s later, like a real BMC that takes its time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if p.state() is want:
            return True
        time.sleep(0.5)
    return False


def test_power_off_and_on(emulator: str) -> None:
    p = RedfishPower(emulator, "admin", "secret", verify_tls=False)
    assert p.state() is PowerState.ON
    p.power_off()
    assert wait_for(p, PowerState.OFF)
    p.power_on()
    assert wait_for(p, PowerState.ON)


def test_named_system_and_errors_without_the_password(emulator: str) -> None:
    assert RedfishPower(emulator, "admin", "x", system=UUID).state() is PowerState.ON
    with pytest.raises(PowerError) as err:
        RedfishPower(emulator, "admin", "Sup3rSecret", system="nope").state()
    assert emulator in str(err.value) and "Sup3rSecret" not in str(err.value)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(PowerError, match=r"Redfish http://127\.0\.0\.1"):
        RedfishPower(dead, "admin", "x").state()
