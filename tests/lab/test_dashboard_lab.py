"""Issue 12's "done means" on the real lab, in a real browser: `ulm run --mode advise --http`
in the controller namespace (its dashboard relayed to this machine's loopback by
`ulm.lab.forward`, as `scripts/demo.sh` does), an operator logs in with a token, reads why the
hot host's guest would move, approves the plan on the Plan page, and the guest really moves
(checked with libvirt), its outcome on the page."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port
from tests.api.test_browser import _shot, _wait, browser  # noqa: F401  (the fixture)
from tests.lab.helpers import daemon, eventually
from tests.lab.test_daemon_lab import configure, hot_host
from ulm.lab.lab import Lab

pytestmark = pytest.mark.lab
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

TOKEN = "lab-operator-token-of-this-test"


@pytest.fixture
def relay() -> Iterator[int]:
    """This machine's 127.0.0.1:PORT relayed to labctl's (the daemon's) 127.0.0.1:PORT."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "ulm.lab.forward", str(port)])
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_approve_in_the_browser_and_the_guest_really_moves(
        clean_lab: Lab, tmp_path: Path, relay: int, browser: WebDriver) -> None:  # noqa: F811
    hot_host(clean_lab)  # labh1 at 90 %: relief would move "hungry" to labh2 (first fit)
    cfg = configure(tmp_path, clean_lab)
    token = tmp_path / "operator.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    # Rounds of 30 s: in advise mode each round's advice supersedes the last (the store marks
    # it), so the operator approves within a round, as one would at a real interval.
    text = cfg.read_text().replace("interval_s = 2\n", "interval_s = 30\n")
    assert "interval_s = 30\n" in text
    cfg.write_text(text + '\n[[api.tokens]]\nname = "lab"\nrole = "operator"\n'
                   f'token_file = "{token}"\n')
    url = f"http://127.0.0.1:{relay}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with daemon(cfg, "--mode", "advise", "--http", f"127.0.0.1:{relay}") as proc:
        def up() -> bool:
            try:
                return httpx.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        assert eventually(up, timeout=90), (tmp_path / "daemon.err").read_text()[-3000:]

        def advised() -> str:
            plans = httpx.get(f"{url}/api/v1/plans", headers=auth, timeout=10).json()
            return next((p["id"] for p in plans if p["state"] == "READY" and p["actions"]), "")

        assert eventually(lambda: bool(advised()), timeout=240, step=2.0), \
            (tmp_path / "daemon.err").read_text()[-3000:]
        plan_id = advised()
        assert clean_lab.find("hungry") == "labh1"  # advise: nothing moved yet

        d = browser
        d.get(f"{url}/login?token={TOKEN}")  # the login link `scripts/demo.sh` prints
        _wait(d, "#hosts", "labh1")
        assert "ADVISE" in d.find_element(By.ID, "mode").text
        for name in ("labh1", "labh2", "labh3", "hungry"):
            assert name in d.find_element(By.ID, "hosts").text
        d.get(f"{url}/plans/{plan_id}")
        _wait(d, "#actions", "hungry")
        assert d.find_element(By.ID, "plan-state").text == "READY"
        assert "labh1" in d.find_element(By.CSS_SELECTOR, "#actions tr.action").text
        _shot(d, tmp_path, "lab-plan")
        d.find_element(By.ID, "approve-all").click()
        _wait(d, "#flash", "plan applied", timeout=300)  # the POST returns with the outcome
        d.get(f"{url}/plans/{plan_id}")
        _wait(d, "#plan-state", "DONE")
        _wait(d, "#outcomes", "done")
        _shot(d, tmp_path, "lab-plan-done")
        d.get(f"{url}/why?vm=hungry")  # why it moved: the plan's explain row
        _wait(d, "#why", "moved to labh2")
        # what libvirt says: the guest runs on labh2, and is gone from labh1
        assert clean_lab.find("hungry") == "labh2"
        assert "hungry" not in [x.name() for x in clean_lab.connect(1).listAllDomains()]
        detail = httpx.get(f"{url}/api/v1/plans/{plan_id}", headers=auth, timeout=10).json()
        moved = {o["vm"]: (o["dst"], o["status"]) for o in detail["outcomes"]}
        assert moved["hungry"] == ("labh2", "done")  # (the forced 90 % may move "quiet" too)
        for vm, (dst, status) in moved.items():  # every outcome is what libvirt shows
            assert status == "done" and clean_lab.find(vm) == dst, (vm, dst, status)
        assert TOKEN not in d.page_source
    assert proc.returncode == 0, (tmp_path / "daemon.err").read_text()[-3000:]
    assert TOKEN not in (tmp_path / "daemon.err").read_text()
