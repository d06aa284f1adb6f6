"""Issue 12's "done means" on the real lab, in a real browser: `ulm run --mode advise --http`
in the controller namespace (its dashboard relayed to this machine's loopback by
`ulm.lab.forward`, as `scripts/demo.sh` does), an operator logs in with a token, reads why the
hot host's guest would move, approves the plan on the Plan page, and the guest really moves
(checked with libvirt), its outcome on the page; then books maintenance for a host on the
Maintenance page, the daemon starts draining it ahead of the window (the guest leaves it, as
libvirt shows), and the booking is cancelled on the page.

One daemon and one browser serve the module's tests (`dashboard`). The daemon's own interval
is long: its rounds are asked for by "plan now" (`POST /api/v1/plan-now`, the Overview's
button), the same `run_round` the loop runs, so the test waits for no timer and no advice is
superseded by a round of its own while the operator reads it.

With ULM_SCREENSHOTS=DIR the pages' screenshots (lab-*.png) also go to DIR:
`ULM_SCREENSHOTS=docs/screenshots` refreshes the docs' pictures (docs/api.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import free_port
from tests.lab.helpers import daemon, eventually
from tests.lab.test_daemon_lab import configure, hot_host, ulm
from ulm.lab.lab import Lab
from ulm.store import Store

pytestmark = pytest.mark.lab
pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402

from tests.api import pages  # noqa: E402

TOKEN = "lab-operator-token-of-this-test"
#: The daemon's own rounds: one at its start, the next after the module's tests are done.
INTERVAL_S = 900


@dataclass
class Dashboard:
    url: str
    tmp: Path
    cfg: Path
    driver: WebDriver

    def api(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, f"{self.url}/api/v1{path}", timeout=300,
                          headers={"Authorization": f"Bearer {TOKEN}"}, **kw)
        assert r.status_code == 200, (path, r.status_code, r.text, self.err())
        return r.json()

    def round(self) -> Any:
        """One daemon round now: collect, step the bookings, plan (advise: stored)."""
        return self.api("POST", "/plan-now")

    def err(self) -> str:
        return (self.tmp / "daemon.err").read_text()[-3000:]

    def shot(self, name: str) -> None:
        pages.shot(self.driver, self.tmp, f"lab-{name}")

    def listed(self, *flags: str) -> list[dict[str, Any]]:
        """What `ulm maintenance list --format json` reads from the daemon's store."""
        out = ulm("maintenance", "list", "-c", str(self.cfg), "--format", "json", *flags)
        assert out.returncode == 0, out.stderr
        rows: list[dict[str, Any]] = json.loads(out.stdout)
        return rows

    def bookings(self, everything: bool = False) -> list[dict[str, Any]]:
        """The same, read from the store here: a command starts in seconds on a busy machine,
        so it is asked once (`listed`)."""
        store = Store.open(f"sqlite:///{self.tmp}/ulm.db", mode="read")
        return [asdict(b) for b in store.bookings(active_only=not everything)]


@pytest.fixture(scope="module")
def dashboard(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp = tmp_path_factory.mktemp("dashboard-lab")
    cfg = configure(tmp, lab)
    token = tmp / "operator.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    text = cfg.read_text().replace("interval_s = 2\n", f"interval_s = {INTERVAL_S}\n")
    assert f"interval_s = {INTERVAL_S}\n" in text
    cfg.write_text(text + '\n[[api.tokens]]\nname = "lab"\nrole = "operator"\n'
                   f'token_file = "{token}"\n')
    port = free_port()  # this machine's 127.0.0.1:PORT relayed to labctl's 127.0.0.1:PORT
    relay = subprocess.Popen([sys.executable, "-m", "ulm.lab.forward", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        with daemon(cfg, "--mode", "advise", "--http", f"127.0.0.1:{port}") as proc, \
                pages.chromium(tmp / "profile") as driver:
            def up() -> bool:
                try:
                    return httpx.get(f"{url}/api/v1/openapi.json", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            assert eventually(up, timeout=90, step=0.2), (tmp / "daemon.err").read_text()[-3000:]
            driver.get(f"{url}/login?token={TOKEN}")  # the login link `scripts/demo.sh` prints
            pages.wait(driver, "#hosts", "labh1")
            yield Dashboard(url, tmp, cfg, driver)
            assert TOKEN not in driver.page_source
    finally:
        relay.terminate()
        relay.wait(timeout=30)
    err = (tmp / "daemon.err").read_text()
    assert proc.returncode == 0, err[-3000:]
    assert TOKEN not in err


def test_approve_in_the_browser_and_the_guest_really_moves(
        clean_lab: Lab, dashboard: Dashboard) -> None:
    dash, d = dashboard, dashboard.driver
    hot_host(clean_lab)  # labh1 at 90 %: relief would move "hungry" to labh2 (first fit)

    # Sustained: 2 of the policy's 3 samples over 75 %, so the second round or so advises.
    # A round a second: each collects a new reading (back to back, a busy machine gave six
    # rounds within one second and no advice); the last round's answer says why not.
    answers: list[Any] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        answers.append(dash.round())
        if answers[-1]["plan_id"]:
            break
        time.sleep(1)
    plan_id = str(answers[-1]["plan_id"] or "")
    assert plan_id, (len(answers), answers[-1], dash.err())
    assert clean_lab.find("hungry") == "labh1"  # advise: nothing moved yet

    d.get(f"{dash.url}/")
    pages.wait(d, "#hosts", "hungry")
    assert "ADVISE" in d.find_element(By.ID, "mode").text
    for name in ("labh1", "labh2", "labh3", "hungry"):
        assert name in d.find_element(By.ID, "hosts").text
    pages.wait(d, "#latest-plan", plan_id)
    dash.shot("overview")
    d.get(f"{dash.url}/plans/{plan_id}")
    pages.wait(d, "#actions", "hungry")
    assert d.find_element(By.ID, "plan-state").text == "READY"
    rows = d.find_elements(By.CSS_SELECTOR, "#actions tr.action")
    assert rows and all("labh1" in r.text for r in rows)
    dash.shot("plan")
    # The forced 90 % does not follow the guests, so the relief may move "quiet" too: the
    # operator approves only the move of "hungry" (Approve selected), the rest is skipped.
    for r in rows:
        if "hungry" not in r.text:
            r.find_element(By.CSS_SELECTOR, "input.approve").click()
    d.find_element(By.ID, "approve").click()
    pages.wait(d, "#flash", "plan applied", timeout=300)  # the POST returns with the outcome
    d.get(f"{dash.url}/plans/{plan_id}")
    pages.wait(d, "#plan-state", "DONE")
    pages.wait(d, "#outcomes", "done")
    dash.shot("plan-done")
    d.get(f"{dash.url}/why?vm=hungry")  # why it moved: the plan's explain row
    pages.wait(d, "#why", "moved to labh2")
    # what libvirt says: the guest runs on labh2, and is gone from labh1
    assert clean_lab.find("hungry") == "labh2"
    assert "hungry" not in [x.name() for x in clean_lab.connect(1).listAllDomains()]
    detail = dash.api("GET", f"/plans/{plan_id}")
    moved = {o["vm"]: (o["dst"], o["status"]) for o in detail["outcomes"]}
    assert moved.pop("hungry") == ("labh2", "done")
    for vm, (_, status) in moved.items():  # the unticked ones: on record, and did not move
        assert status == "skipped" and clean_lab.find(vm) == "labh1", (vm, status)
    dash.round()  # the charts get a point after the move
    d.get(f"{dash.url}/hosts")
    pages.wait(d, "#vms", "hungry")
    pages.wait(d, "#host-labh1 .chart.cpu canvas")  # uPlot drew the store's samples
    pages.wait(d, "#host-labh2 .chart.mem canvas")
    dash.shot("hosts")
    d.get(f"{dash.url}/energy")
    pages.wait(d, ".chart[data-energy] canvas")
    # the page's figure, to more places than its 0.00 after a few minutes of samples
    energy = dash.api("GET", "/energy", params={"since": str(time.time() - 3600)})
    assert energy["kwh"] > 0, energy
    dash.shot("energy")
    pages.no_console_errors(d)


def test_book_maintenance_in_the_browser_and_the_host_is_drained_before_it(
        clean_lab: Lab, dashboard: Dashboard) -> None:
    dash, d = dashboard, dashboard.driver
    clean_lab.vm_add("tenant", "labh3", 64, "idle")
    for _ in range(2):  # the daemon knows "tenant" on labh3, with a CPU figure (two readings):
        dash.round()    # the booking's drain check counts it

    # A window in two hours: booked, nothing happens yet; cancelled on the page.
    later = pages.book(d, dash.url, "labh3", pages.local_time(d, 7200),
                       pages.local_time(d, 10800), "firmware, later")
    (row,) = [b for b in dash.listed() if b["id"] == later]
    assert (row["host"], row["status"], row["reason"]) == ("labh3", "booked", "firmware, later")
    assert 7000 < row["start"] - time.time() < 7300, row
    assert "drain of labh3 fits: 1 VM(s)" in row["detail"], row  # the daemon counted tenant
    assert "drain of labh3 fits" in d.find_element(By.ID, f"booking-{later}").text
    assert pages.cancel(d, dash.url, later) == f"#{later} cancelled"
    pages.wait(d, f"#booking-{later}", "cancelled")
    assert later not in [b["id"] for b in dash.bookings()]  # gone from the active ones
    (row,) = [b for b in dash.bookings(everything=True) if b["id"] == later]
    assert row["status"] == "cancelled"

    # A window in 3-4 minutes: inside the drain's lead time (maintenance.lead_time: at least
    # 5 minutes ahead), so the next round starts draining labh3, in advise mode as advice.
    soon = pages.book(d, dash.url, "labh3", pages.local_time(d, 240),
                      pages.local_time(d, 3600), "disk swap")
    (row,) = [b for b in dash.bookings() if b["id"] == soon]
    start = float(row["start"])
    assert row["status"] == "booked" and start > time.time() + 120, row
    said = pages.plan_now(d, dash.url)  # the Overview's button: a round now
    assert said.startswith("new plan p-"), said
    plan_id = said.removeprefix("new plan ")
    assert dash.bookings()[0]["status"] == "draining"
    d.get(f"{dash.url}/plans/{plan_id}")
    pages.wait(d, "#actions", "tenant")
    assert "labh3" in d.find_element(By.CSS_SELECTOR, "#actions tr.action").text
    d.find_element(By.ID, "approve-all").click()
    pages.wait(d, "#flash", "plan applied", timeout=300)
    where = clean_lab.find("tenant")
    assert where in ("labh1", "labh2"), where  # libvirt: off labh3 ...
    assert "tenant" not in [x.name() for x in clean_lab.connect(3).listAllDomains()]
    assert time.time() < start  # ... before the window opened
    dash.round()  # the host is empty: closed, down for its window
    (row,) = dash.bookings()
    assert row["status"] == "down", row
    d.get(f"{dash.url}/maintenance")
    pages.wait(d, f"#booking-{soon}", "down")
    dash.shot("maintenance")

    said = pages.cancel(d, dash.url, soon)  # a window in progress ends now: the host returns
    assert said == f"#{soon}: ended now; the daemon brings labh3 back", said
    for _ in range(4):  # down -> returning -> done, a step a round
        dash.round()
        if not dash.bookings():
            break
    assert dash.bookings() == [], dash.err()  # gone from the active ones
    (row,) = [b for b in dash.bookings(everything=True) if b["id"] == soon]
    assert row["status"] == "done", row
    d.get(f"{dash.url}/maintenance")
    pages.wait(d, f"#booking-{soon}", "done")
    assert not d.find_elements(By.CSS_SELECTOR, f"#booking-{soon} button")  # nothing to cancel
    assert clean_lab.find("tenant") == where  # no "return home" asked: it stays
    pages.no_console_errors(d)
