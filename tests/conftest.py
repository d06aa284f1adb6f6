"""Shared fixtures. `lab` brings up ONE real libvirt lab for the whole session (3 hosts)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator

import pytest

from ulm.lab.lab import Lab, missing_tools

LAB_HOSTS = 3
LAB_REDFISH = True  # the session lab has a Redfish BMC too (tests/lab/test_power_lab.py)
# ... and sshd + TLS listeners (tests/lab/test_secure_lab.py): ~1 s more than a second lab
LAB_SECURE = True


def _lab_prerequisites() -> str:
    if os.geteuid() != 0:
        return "the lab tests need root"
    gone = missing_tools(LAB_SECURE)
    if gone:
        return f"the lab tests need {', '.join(gone)}: run `bash scripts/setup.sh --dev`"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is missing"
    return ""


def uses_the_lab(item: pytest.Item) -> bool:
    return item.get_closest_marker("lab") is not None or \
        "lab" in getattr(item, "fixturenames", ())


@pytest.hookimpl(tryfirst=True)  # before pytest's `-m` and xdist's own hook read the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that needs the machine's one lab gets the `lab` mark, also where it only
    uses the fixture: the README's command runs `-m "not lab"` on two workers, then `-m lab`
    alone, so no lab test shares the 2 cores with other tests (their timings assume a lab
    that answers in seconds). Under pytest-xdist with `--dist loadgroup` the lab tests are
    one group as well: one worker runs them all, in one process, with one `lab` fixture."""
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        if uses_the_lab(item):
            item.add_marker(pytest.mark.lab)
            if xdist:
                item.add_marker(pytest.mark.xdist_group("lab"))


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> Iterator[Lab]:
    if os.environ.get("ULM_SKIP_LAB") == "1":
        pytest.skip("ULM_SKIP_LAB=1: real-lab tests skipped on request")
    if hasattr(request.config, "workerinput") and not request.config.getoption("loadgroup"):
        # two workers would each build the same lab (namespaces, libvirtd) over the other's
        pytest.fail("the lab tests under pytest-xdist need --dist loadgroup (one worker owns "
                    "the lab): run `pytest -n 2 --dist loadgroup`")
    why = _lab_prerequisites()
    if why:
        pytest.fail(why)  # CI installs everything: a missing piece is a failure, not a skip
    lab = Lab()
    if lab.is_up():
        lab.down()
    lab.up(LAB_HOSTS, redfish=LAB_REDFISH, secure=LAB_SECURE)
    try:
        yield lab
    finally:
        lab.down()


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The shared lab, with every guest removed and every load back to auto afterwards."""
    yield lab
    for i in range(1, lab.n_hosts + 1):
        lab.power(f"labh{i}", True)
        lab.set_load(f"labh{i}", "auto")
    for vm in sorted({vm for vms in lab.vms().values() for vm in vms}):
        lab.vm_rm(vm)  # removes it from every host (a failed migration may leave a copy)


# Every test's captured output (stdout, stderr, log records), searched for the test secrets.
_leaks: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    from tests import secrets

    for title, text in report.sections:
        for secret in secrets.ALL:
            if secret in text:
                note = f"{report.nodeid} ({title}) shows test secret {secret[:6]}..."
                if note not in _leaks:
                    _leaks.append(note)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests import warm_ulm

    warm_ulm.close()
    if _leaks:
        print("\nsecrets leaked into test output:\n  " + "\n  ".join(_leaks), file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
