"""The IPMI driver against a real BMC: OpenIPMI's `ipmi_sim` on 127.0.0.1, whose chassis
control hook records every power change in a file (as the lab's hook stops and starts a host).
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.power.conftest import free_port, need, run_power, wait_until
from ulm.drivers.base import PowerState
from ulm.executor import MemoryJournal, Status
from ulm.lab.bmc import emu
from ulm.power.errors import PowerError
from ulm.power.ipmi import IpmiPower

PASSWORD = "Bmc-Pa55word"

LAN_CONF = """name "ulm-test"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {port}
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid 756c6d2d746573742d626d6300000001
  endlan
  chassis_control "{hook}"
  user 2 true  "admin" "{password}" admin  10 none md2 md5 straight
"""


# ipmi_sim calls `HOOK get power` (answer `power:1|0`) and `HOOK set power 0|1`, or
# `set shutdown 1` for a soft off. The "host" is a state file; the log is what the BMC did.
HOOK = """#!/bin/sh
d=$(dirname "$0")
echo "$*" >> "$d/hook.log"
case "$1 $2" in
  "get power") echo "power:$(cat "$d/power")" ;;
  "set power") echo "$3" > "$d/power" ;;
  "set shutdown") echo 0 > "$d/power" ;;
esac
"""


@dataclass
class Bmc:
    port: int
    dir: Path

    def power(self) -> str:
        return (self.dir / "power").read_text().strip()

    def log(self) -> list[str]:
        return (self.dir / "hook.log").read_text().splitlines()

    def driver(self, password: str = PASSWORD, **kw: object) -> IpmiPower:
        return IpmiPower("127.0.0.1", "admin", password, self.port, host="h1",
                         **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bmc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bmc]:
    binary = need("ipmi_sim", "openipmi")
    d = tmp_path_factory.mktemp("bmc")
    port = free_port(socket.SOCK_DGRAM)
    hook = d / "chassis.sh"
    hook.write_text(HOOK)
    hook.chmod(0o755)
    (d / "power").write_text("1\n")
    (d / "hook.log").write_text("")
    (d / "lan.conf").write_text(LAN_CONF.format(port=port, hook=hook, password=PASSWORD))
    (d / "watts").write_text("234\n")  # the BMC's power meter reads this file every second
    (d / "cmd.emu").write_text(emu(d / "watts"))
    (d / "state").mkdir()
    out = (d / "ipmi_sim.out").open("w")
    proc = subprocess.Popen([binary, "-n", "-c", str(d / "lan.conf"), "-f", str(d / "cmd.emu"),
                             "-s", str(d / "state")], stdout=out, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    try:
        bmc = Bmc(port, d)
        wait_until(lambda: proc.poll() is not None or _answers(bmc), 10)
        assert proc.poll() is None, (d / "ipmi_sim.out").read_text()
        yield bmc
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        out.close()


def _answers(bmc: Bmc) -> bool:
    try:
        return bmc.driver(timeout_s=1.0).state() is PowerState.ON
    except PowerError:
        return False


def test_power_off_then_on_through_the_executor(bmc: Bmc) -> None:
    p = bmc.driver()
    assert p.state() is PowerState.ON
    journal = MemoryJournal()
    off = run_power(p, on=False, timeout_s=10, journal=journal)
    assert off.status is Status.DONE, off.detail
    assert bmc.power() == "0" and "set power 0" in bmc.log()  # the BMC's hook really ran
    assert p.state() is PowerState.OFF
    on = run_power(p, on=True, timeout_s=10, journal=journal)
    assert on.status is Status.DONE, on.detail
    assert bmc.power() == "1" and bmc.log().count("set power 1") == 1
    assert p.state() is PowerState.ON
    # every power action is journaled, intent first, then its result
    assert [(e.action.kind, e.state) for e in journal.entries.values()] == [
        ("power_off", "done"), ("power_on", "done")]


def test_soft_off_asks_the_os_to_shut_down(bmc: Bmc) -> None:
    p = bmc.driver(soft=True)
    p.power_off()
    assert bmc.log()[-1] == "set shutdown 1" and p.state() is PowerState.OFF
    p.power_on()
    assert p.state() is PowerState.ON


def test_a_wrong_password_names_the_bmc_but_never_the_password(bmc: Bmc) -> None:
    with pytest.raises(PowerError) as err:
        bmc.driver(password="Wr0ng-S3cret").state()
    text = str(err.value)
    assert f"h1 (BMC 127.0.0.1:{bmc.port})" in text and "password" in text.lower()
    assert "Wr0ng-S3cret" not in text and PASSWORD not in text
    assert "Wr0ng-S3cret" not in repr(bmc.driver(password="Wr0ng-S3cret"))


def test_the_password_is_read_when_the_session_opens(bmc: Bmc, tmp_path: Path) -> None:
    secret = tmp_path / "bmc.pass"
    secret.write_text(PASSWORD + "\n")
    reads: list[int] = []

    def source() -> str:
        reads.append(1)
        return secret.read_text().strip()

    p = IpmiPower("127.0.0.1", "admin", source, bmc.port)
    assert not reads  # nothing read until the BMC is needed
    assert p.state() is PowerState.ON and p.state() is PowerState.ON
    assert len(reads) == 1  # one session, reused


def test_a_silent_bmc_fails_within_the_timeout() -> None:
    port = free_port(socket.SOCK_DGRAM)  # nothing answers there
    p = IpmiPower("127.0.0.1", "admin", "S3cret-x", port, timeout_s=1.5, host="h9")
    started = time.monotonic()
    with pytest.raises(PowerError) as err:
        p.state()
    took = time.monotonic() - started
    assert 1.4 < took < 2.5, took
    assert f"h9 (BMC 127.0.0.1:{port})" in str(err.value) and "no answer" in str(err.value)
    assert "S3cret" not in str(err.value)


def test_a_silent_bmc_fails_the_action_and_the_journal_says_so() -> None:
    p = IpmiPower("127.0.0.1", "admin", "x", free_port(socket.SOCK_DGRAM),
                  timeout_s=0.5, host="h9")
    journal = MemoryJournal()
    outcome = run_power(p, on=True, timeout_s=1, journal=journal)
    assert outcome.status is Status.FAILED and "no answer" in outcome.detail
    assert [e.state for e in journal.entries.values()] == ["failed"]


def test_many_drivers_for_one_bmc_in_one_process(bmc: Bmc) -> None:
    # pyghmi keys its sessions by credentials; a second session to the same BMC used to wait
    # forever (see IpmiPower._command). Each of these must answer at once.
    for _ in range(3):
        started = time.monotonic()
        assert bmc.driver(timeout_s=3).state() is PowerState.ON
        assert time.monotonic() - started < 1


def test_the_bmc_power_meter_is_read(bmc: Bmc) -> None:
    """ipmi_sim's "Pwr Consumption" sensor (a full SDR in watts, 2 W steps) polls a file: the
    driver finds the sensor by its unit and follows the value."""
    p = bmc.driver()
    assert p.reading_w() == 234.0
    (bmc.dir / "watts").write_text("300\n")
    wait_until(lambda: p.reading_w() == 300.0, 10)
    assert bmc.driver(power_sensor="Pwr Consumption").reading_w() == 300.0
    assert bmc.driver(power_sensor="Inlet Temp").reading_w() is None  # no such meter
    (bmc.dir / "watts").write_text("234\n")
