"""The dashboard in a real browser (Debian's headless chromium + chromium-driver, via Selenium)
against the real server: log in with a token, see hosts and VMs, approve the advised plan,
book maintenance from the page. A screenshot of every page goes to the test's tmp dir, and with
ULM_SCREENSHOTS=DIR also to DIR (tests/api/pages.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.conftest import TOKENS, Server
from tests.api.server import BMC_PASSWORD

pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.api import pages

wait, no_console_errors = pages.wait, pages.no_console_errors


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with pages.chromium(tmp_path / "profile") as driver:
        yield driver


def shot(driver: WebDriver, tmp: Path, name: str) -> None:
    pages.shot(driver, tmp, f"dashboard-{name}")


def test_log_in_look_approve_and_book(fresh: Server, browser: WebDriver,
                                      tmp_path: Path) -> None:
    d = browser
    d.get(f"{fresh.url}/")
    assert d.current_url.endswith("/login")  # no session: the login page
    d.find_element(By.ID, "token").send_keys(TOKENS["operator"])
    d.find_element(By.CSS_SELECTOR, "form button").click()
    wait(d, "#hosts")
    assert "ADVISE" in d.find_element(By.ID, "mode").text
    hosts = d.find_element(By.ID, "hosts").text
    for h in ("h1", "h2", "h3"):
        assert h in hosts
    assert "web1, web2, web3" in hosts
    shot(d, tmp_path, "overview")
    d.execute_cdp_cmd("Emulation.setEmulatedMedia",
                      {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
    shot(d, tmp_path, "overview-dark")
    d.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})
    no_console_errors(d)
    wait(d, "body[data-live]")  # the page's event stream is connected
    d.execute_script("window.notReloaded = true;")
    with fresh.client("operator") as c:  # a round elsewhere: the page hears of it live
        r = c.post("/api/v1/plan-now")
        assert r.status_code == 200
    wait(d, "#live", "live · round")
    wait(d, "#live", f"live · plan {r.json()['plan_id']}")
    wait(d, "body[data-refreshed]")  # ... and swaps in the new figures without a reload
    wait(d, "#latest-plan", r.json()["plan_id"])
    assert d.execute_script("return window.notReloaded === true;")
    no_console_errors(d)

    d.get(f"{fresh.url}/hosts")
    wait(d, "#vms", "web1")
    wait(d, "#host-h1 .chart.cpu canvas")  # uPlot drew the CPU chart from the API's series
    wait(d, "#host-h1 .chart.mem canvas")  # ... and the memory chart beside it
    assert "memory h1" in d.find_element(By.CSS_SELECTOR, "#host-h1 .chart.mem").text
    power = d.find_element(By.CSS_SELECTOR, "#host-h2 .power").text
    assert "redfish" in power and "***" in power and BMC_PASSWORD not in d.page_source
    assert "no maintenance booked" in d.find_element(By.CSS_SELECTOR, "#host-h3").text
    assert "cache1" in d.find_element(By.ID, "vms").text
    shot(d, tmp_path, "hosts")

    def first_vm() -> str:
        return str(d.find_elements(By.CSS_SELECTOR, "#vms tr")[1].text.split()[0])

    cpu = d.find_elements(By.CSS_SELECTOR, "#vms tr:first-child th")[3]
    assert cpu.text == "CPU"
    cpu.click()  # the tables sort by a column: CPU as numbers, the quietest first ...
    assert first_vm() == "cache1"
    cpu.click()  # ... and the busiest first
    assert first_vm() == "web1"
    no_console_errors(d)

    d.get(f"{fresh.url}/plans/latest")
    wait(d, "#actions", "web1")
    assert d.find_element(By.ID, "plan-state").text == "READY"
    assert d.find_element(By.ID, "plan-status").text == "proposed"
    row = d.find_element(By.CSS_SELECTOR, "#actions tr.action")
    for cell in ("src-load", "dst-load"):  # both hosts' CPU and memory, before -> after
        text = row.find_element(By.CLASS_NAME, cell).text
        assert "CPU" in text and "mem" in text and "→" in text, text
    assert " s" in row.find_element(By.CLASS_NAME, "estimate").text
    for button in ("approve-all", "approve", "reject"):
        assert d.find_element(By.ID, button).is_displayed()
    shot(d, tmp_path, "plan")
    d.find_element(By.ID, "approve").click()  # the checked ones: all of them here
    wait(d, "#flash", "plan applied")
    wait(d, "#plan-state", "DONE")  # the page reloaded with the stored outcome
    wait(d, "#outcomes", "done")
    assert not d.find_elements(By.ID, "approve")  # nothing left to approve
    shot(d, tmp_path, "plan-done")

    booking = pages.book(d, fresh.url, "h3", "2030-06-01T22:00", "2030-06-02T02:00", "firmware")
    assert booking == 1
    listed = d.find_element(By.ID, "booking-1").text
    assert "h3" in listed and "booked" in listed and "2030-06-01 22:00" in listed
    shot(d, tmp_path, "maintenance")
    no_console_errors(d)
    d.get(f"{fresh.url}/hosts")  # the window shows on its host's card too
    line = d.find_element(By.CSS_SELECTOR, "#host-h3 .next-maintenance").text
    assert "next maintenance: 2030-06-01 22:00" in line and "2030-06-02 02:00" in line, line
    assert "booked" in line
    assert pages.cancel(d, fresh.url, booking) == "#1 cancelled"  # Cancel, after a confirm
    wait(d, "#booking-1", "cancelled")

    d.get(f"{fresh.url}/energy")
    wait(d, ".chart[data-energy] canvas")  # kWh per hour, from the energy series
    assert float(d.find_element(By.ID, "kwh").text) > 0
    shot(d, tmp_path, "energy")
    no_console_errors(d)
    for page, name, shows in (("/history", "history", "web1"), ("/why?vm=web1", "why", "web1")):
        d.get(f"{fresh.url}{page}")
        wait(d, "main", shows)
        shot(d, tmp_path, name)
    d.get(f"{fresh.url}/history")
    Select(d.find_element(By.NAME, "about")).select_by_visible_text("db1")  # filters at once
    WebDriverWait(d, 10).until(ec.url_contains("about=db1"))
    no_console_errors(d)

    with fresh.client("viewer") as c:  # what the page did, the API confirms
        assert c.get("/api/v1/plans/latest").json()["status"] == "applied"
        (b,) = c.get("/api/v1/maintenance", params={"all": True}).json()
        assert (b["host"], b["reason"], b["status"]) == ("h3", "firmware", "cancelled")
    assert TOKENS["operator"] not in d.page_source


def test_the_hosts_charts_range_picker(shared: Server, browser: WebDriver) -> None:
    """Clicking 24 h then 30 d draws every chart again over that range (the x scale uPlot
    drew, read back from the chart), keeps it in the address, and a reload keeps it."""
    d = browser
    d.get(f"{shared.url}/login?token={TOKENS['viewer']}")
    d.get(f"{shared.url}/hosts")
    wait(d, "#host-h1 .chart.cpu[data-to]")

    def span(css: str) -> float:
        el = d.find_element(By.CSS_SELECTOR, css)
        return float(el.get_attribute("data-to") or 0) - float(el.get_attribute("data-from") or 0)

    assert span("#host-h1 .chart.cpu") == pytest.approx(6 * 3600, rel=1e-3)  # the default
    assert d.find_element(By.CSS_SELECTOR, "#range a.on").text == "6h"
    for label, seconds in (("24h", 86400), ("30d", 30 * 86400)):
        d.find_element(By.CSS_SELECTOR, f'#range a[data-range="{label}"]').click()
        for chart in ("#host-h1 .chart.cpu", "#host-h2 .chart.mem"):
            WebDriverWait(d, 15).until(lambda _, c=chart, s=seconds: span(c) == pytest.approx(
                s, rel=1e-3))
        assert d.current_url.endswith(f"/hosts?range={label}")
        assert d.find_element(By.CSS_SELECTOR, "#range a.on").text == label
        assert "canvas" in d.find_element(By.CSS_SELECTOR, "#host-h1 .chart.cpu") \
            .get_attribute("innerHTML")  # one chart, drawn again (not stacked)
        assert len(d.find_elements(By.CSS_SELECTOR, "#host-h1 .chart.cpu .uplot")) == 1
    d.refresh()
    wait(d, "#host-h1 .chart.cpu[data-to]")
    assert span("#host-h1 .chart.cpu") == pytest.approx(30 * 86400, rel=1e-3)
    no_console_errors(d)
