"""Driving the dashboard in Debian's headless chromium (chromium-driver, via Selenium): the
browser, waits, screenshots and the page steps the browser tests share, on the simulated
cluster (tests/api/test_browser.py) and on the real lab (tests/lab/test_dashboard_lab.py).

A screenshot goes to the test's tmp dir and, with ULM_SCREENSHOTS=DIR, also to DIR
(`ULM_SCREENSHOTS=docs/screenshots` refreshes the docs' pictures, docs/api.md)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
WINDOW = "1280,900"  # a laptop screen; its screenshots stay around 100 KB


@contextlib.contextmanager
def chromium(profile: Path) -> Iterator[WebDriver]:
    """A headless chromium with its own profile directory, quit on leaving the `with`."""
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("the dashboard tests need chromium and chromium-driver "
                    "(scripts/debian-packages.txt)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                f"--user-data-dir={profile}", f"--window-size={WINDOW}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(DRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: WebDriver, css: str, text: str = "", timeout: float = 15) -> None:
    cond = (ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text) if text
            else ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    # the flash shows for 0.8 s before the page reloads: look often
    WebDriverWait(driver, timeout, poll_frequency=0.1).until(cond)


def shot(driver: WebDriver, tmp: Path, name: str) -> None:
    driver.save_screenshot(str(tmp / f"{name}.png"))
    extra = os.environ.get("ULM_SCREENSHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / f"{name}.png", Path(extra) / f"{name}.png")


def no_console_errors(driver: WebDriver) -> None:
    """A CSP violation, a missing script or a JS exception shows up here."""
    severe = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def confirm(driver: WebDriver) -> None:
    """Accepts the page's "are you sure?" dialog."""
    WebDriverWait(driver, 10).until(ec.alert_is_present())
    driver.switch_to.alert.accept()


def local_time(driver: WebDriver, from_now_s: float) -> str:
    """The browser's local time `from_now_s` ahead, to the minute, as a datetime-local field
    takes it (the page reads the field in the browser's time zone)."""
    return str(driver.execute_script("""
        const t = new Date(Date.now() + arguments[0] * 1000);
        const p = (n) => String(n).padStart(2, '0');
        return `${t.getFullYear()}-${p(t.getMonth() + 1)}-${p(t.getDate())}` +
               `T${p(t.getHours())}:${p(t.getMinutes())}`;""", from_now_s))


def book(driver: WebDriver, url: str, host: str, start: str, end: str, reason: str) -> int:
    """Books a window on the Maintenance page (`start`, `end`: datetime-local values, the
    browser's time); returns the new booking's number, once the reloaded page lists it."""
    driver.get(f"{url}/maintenance")
    wait(driver, "#book")
    before = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR,
                                                                   "#bookings tr[id]")}
    Select(driver.find_element(By.NAME, "host")).select_by_visible_text(host)
    # typing into datetime-local depends on the locale: set the values
    driver.execute_script("""const f = document.getElementById('book');
        f.start.value = arguments[0]; f.end.value = arguments[1];
        f.reason.value = arguments[2];""", start, end, reason)
    driver.find_element(By.CSS_SELECTOR, "#book button").click()
    said = flashed(driver)  # the API's answer: "#N booked: ..." (or "blocked")
    assert said.startswith("#"), said
    wait(driver, "#bookings", reason)  # the page reloaded with it
    rows = {e.get_attribute("id") for e in driver.find_elements(By.CSS_SELECTOR,
                                                                 "#bookings tr[id]")}
    (new,) = rows - before
    return int(str(new).removeprefix("booking-"))


def cancel(driver: WebDriver, url: str, booking: int) -> str:
    """Cancel on the Maintenance page, after its confirm: what the API answered, in words."""
    driver.get(f"{url}/maintenance")
    wait(driver, f"#booking-{booking} button")
    driver.find_element(By.CSS_SELECTOR, f"#booking-{booking} button").click()
    confirm(driver)
    return flashed(driver)


def plan_now(driver: WebDriver, url: str) -> str:
    """The Overview's Plan now button (one round now): what the API answered, in words."""
    driver.get(f"{url}/")
    wait(driver, "button[data-post='/api/v1/plan-now']")
    driver.find_element(By.CSS_SELECTOR, "button[data-post='/api/v1/plan-now']").click()
    confirm(driver)
    return flashed(driver, timeout=120)  # "new plan ID", "nothing to do"


def flashed(driver: WebDriver, timeout: float = 30) -> str:
    """The API's answer to a button, as the page flashes it (for 0.8 s, then it reloads)."""
    said: str = WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: d.find_element(By.ID, "flash").text)
    return said
