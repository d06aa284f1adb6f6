"""The Redfish driver against a real Redfish endpoint: sushy-tools' emulator on 127.0.0.1 with
its fake driver (two systems) and basic auth. The fake driver applies a power change 1-11 s
after the request, like a slow BMC: the executor's polling with a deadline has to wait."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.power.conftest import free_port, run_power, wait_until
from ulm.drivers.base import PowerState
from ulm.executor import MemoryJournal, Status
from ulm.lab.redfish import emulator_config
from ulm.power.errors import PowerError
from ulm.power.redfish import RedfishPower

UUID1 = "6c61622d-686f-7374-8000-000000000001"
UUID2 = "6c61622d-686f-7374-8000-000000000002"
PASSWORD = "Redf1sh-Pa55"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = Path(sys.executable).parent / "sushy-emulator"
    if not binary.exists():
        pytest.fail("sushy-emulator is missing: bash scripts/setup.sh (sushy-tools, lab extra), "
                    "or set ULM_SKIP_POWER=1")
    d = tmp_path_factory.mktemp("sushy")
    port = free_port()
    conf = emulator_config(d, "127.0.0.1", port, "admin", PASSWORD, [
        {"uuid": UUID1, "name": "h1", "power_state": "On"},
        {"uuid": UUID2, "name": "h2", "power_state": "On"}])
    log = (d / "emulator.log").open("w")
    proc = subprocess.Popen([str(binary), "--config", str(conf)], stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: proc.poll() is not None or _listening(port), 30)
        assert proc.poll() is None, (d / "emulator.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def driver(url: str, password: str = PASSWORD, **kw: object) -> RedfishPower:
    return RedfishPower(url, "admin", password, verify_tls=False, timeout_s=5, host="h1",
                        **kw)  # type: ignore[arg-type]


def test_power_off_and_on_through_the_executor(emulator: str) -> None:
    first = driver(emulator)  # no system given: the BMC's first one
    second = driver(emulator, system="h2", soft=True)  # by name; GracefulShutdown
    assert first.state() is PowerState.ON and second.state() is PowerState.ON
    journal = MemoryJournal()
    second.power_off()  # runs alongside: both waits overlap, the test stays short
    off = run_power(first, on=False, timeout_s=20, journal=journal)
    assert off.status is Status.DONE, off.detail
    assert first.state() is PowerState.OFF  # done means the BMC says off, not "asked"
    wait_until(lambda: second.state() is PowerState.OFF, 15)
    assert driver(emulator, system=UUID1).state() is PowerState.OFF  # first = UUID1 (h1)
    assert driver(emulator, system=UUID2).state() is PowerState.OFF
    second.power_on()
    on = run_power(first, on=True, timeout_s=20, journal=journal)
    assert on.status is Status.DONE, on.detail
    wait_until(lambda: second.state() is PowerState.ON, 15)
    assert [(e.action.kind, e.state) for e in journal.entries.values()] == [
        ("power_off", "done"), ("power_on", "done")]


def test_a_wrong_password_names_the_bmc_but_never_the_password(emulator: str) -> None:
    with pytest.raises(PowerError) as err:
        driver(emulator, password="Wr0ng-S3cret").state()
    text = str(err.value)
    assert f"h1 (Redfish {emulator})" in text
    assert "Wr0ng-S3cret" not in text and PASSWORD not in text
    assert "Wr0ng-S3cret" not in repr(driver(emulator, password="Wr0ng-S3cret"))


def test_an_unknown_system_is_a_clear_error(emulator: str) -> None:
    with pytest.raises(PowerError, match=r"h1 \(Redfish http://127\.0\.0\.1:\d+\): power state"):
        driver(emulator, system="nope").state()


def test_a_dead_endpoint_fails_fast() -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(PowerError, match=r"Redfish http://127\.0\.0\.1"):
        RedfishPower(dead, "admin", "S3cret-x", timeout_s=2).state()
    assert time.monotonic() - started < 3
