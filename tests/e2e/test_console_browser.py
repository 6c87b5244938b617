"""The web console in a real browser (Debian's chromium through chromedriver, headless): what a user sees.

A link cut injected from the console turns its ports red, the services over it DISABLED and raises an alarm
(acknowledged from there), all without reloading the page; clearing it brings them back; a PM job started
from the console streams points into its chart; a buyer sees only its own services. The partner is the e2e
tier's test server on a free loopback port; the browser is driven from a worker thread so the server's event
loop keeps serving.

``INTERLUDE_SCREENSHOTS=DIR`` saves a screenshot of each view there (how docs/img/ is made).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp.test_utils import TestClient
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.support.lab import lab_unavailable
from tests.support.partner import ALPHA, ORD, order_body

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,900")  # fmt: skip
PATIENCE_S = 30.0
T = TypeVar("T")


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        lab_unavailable("needs chromium and chromium-driver (apt-get install chromium chromium-driver)")
    profile = tempfile.mkdtemp(prefix="iltest-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def until(driver: WebDriver, what: str, check: Callable[[WebDriver], T]) -> T:
    """Await what the page shows (polling the DOM), failing with ``what`` after the patience runs out."""
    wait = WebDriverWait(driver, PATIENCE_S, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,))
    result: T = wait.until(check, message=what)
    return result


def click(driver: WebDriver, css: str) -> None:
    """Click what ``css`` finds; the page redraws its tables every second, so a stale element is found again."""

    def clicked(d: WebDriver) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        found[0].click()
        return True

    until(driver, f"{css} clicked", clicked)


# The page redraws its tables and its graph every second: read in one script, never through an element
# handle that the next redraw would make stale.
def port_class(driver: WebDriver, port: str) -> str:
    return str(driver.execute_script(
        "const e = document.querySelector(`circle[data-port='${arguments[0]}']`);"
        "return e ? e.getAttribute('class') : '';", port))  # fmt: skip


def service_oper(driver: WebDriver, service: str) -> str:
    return str(driver.execute_script(  # textContent: its view may be hidden
        "const e = document.querySelector(`#services tr[data-service='${arguments[0]}'] td.oper`);"
        "return e ? e.textContent : '';", service))  # fmt: skip


def alarm_states(driver: WebDriver) -> list[str]:
    states = driver.execute_script(
        "return [...document.querySelectorAll('#alarms tbody tr')].map((r) => r.dataset.state);")
    return [str(x) for x in states]


def text_of(driver: WebDriver, element_id: str) -> str:
    return str(driver.execute_script("return document.getElementById(arguments[0]).textContent;", element_id))


def view(driver: WebDriver, name: str) -> None:
    click(driver, f'#tabs button[data-view="{name}"]')


def shoot(driver: WebDriver, name: str) -> None:
    folder = os.environ.get("INTERLUDE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"console-{name}.png"))


def console_session(driver: WebDriver, url: str) -> None:
    """The whole user session, synchronous (run in a thread)."""
    driver.get(url + "/")
    assert driver.current_url == url + "/console/"
    until(driver, "pe1:up1 drawn up", lambda d: "up" in port_class(d, "pe1:up1").split())
    until(driver, "ovc-1001 listed", lambda d: service_oper(d, "ovc-1001") == "ENABLED")
    alarms_before = len(alarm_states(driver))

    Select(driver.find_element(By.ID, "fault-port")).select_by_value("pe1:up1")
    Select(driver.find_element(By.ID, "fault-type")).select_by_value("linkDown")
    driver.find_element(By.ID, "fault-inject").click()
    until(driver, "pe1:up1 drawn down (red)", lambda d: "down" in port_class(d, "pe1:up1").split())
    until(driver, "agg1:dn1 red too", lambda d: "down" in port_class(d, "agg1:dn1").split())  # the link's other end
    until(driver, "the cut listed in force", lambda d: "linkDown" in text_of(d, "faults"))
    shoot(driver, "network")
    view(driver, "services")
    until(driver, "ovc-1001 DISABLED", lambda d: service_oper(d, "ovc-1001") == "DISABLED")
    click(driver, '#services tr[data-service="ovc-1001"]')
    until(driver, "ovc-1001's payload", lambda d: '"id": "ovc-1001"' in text_of(d, "service-payload"))
    shoot(driver, "services")
    view(driver, "alarms")
    until(driver, "a new active alarm row", lambda d: alarm_states(d).count("unAcknowledged") >= 1
          and len(alarm_states(d)) > alarms_before)  # fmt: skip
    click(driver, "#alarms button.ack-alarm")
    until(driver, "the alarm acknowledged", lambda d: "acknowledged" in alarm_states(d))
    shoot(driver, "alarms")

    view(driver, "network")
    click(driver, "#faults button.clear-fault")
    until(driver, "pe1:up1 up again", lambda d: "up" in port_class(d, "pe1:up1").split())
    view(driver, "services")
    until(driver, "ovc-1001 ENABLED again", lambda d: service_oper(d, "ovc-1001") == "ENABLED")
    view(driver, "alarms")
    until(driver, "the alarms cleared", lambda d: not {"unAcknowledged", "acknowledged"} & set(alarm_states(d)))

    view(driver, "network")
    Select(driver.find_element(By.ID, "scenario-name")).select_by_value("cut-pe2-now")
    click(driver, "#scenario-play")
    until(driver, "the scenario's cut drawn red", lambda d: "down" in port_class(d, "pe2:up1").split())
    until(driver, "the scenario's log",
          lambda d: "inject linkDown on pe2:up1" in text_of(d, "scenario-log"))
    click(driver, "#scenario-stop")
    until(driver, "pe2:up1 up once the scenario stopped", lambda d: "up" in port_class(d, "pe2:up1").split())

    view(driver, "orders")
    click(driver, "#orders tbody tr[data-order]")
    until(driver, "its item timeline",
          lambda d: "item 1 modify ovc-1001-uni" in text_of(d, "order-timeline"))
    shoot(driver, "orders")

    view(driver, "tests")
    Select(driver.find_element(By.ID, "test-service")).select_by_value("ovc-1001")
    driver.find_element(By.ID, "test-run").click()
    until(driver, "a test verdict", lambda d: d.execute_script(
        "return [...document.querySelectorAll('#tests tbody td')]"
        ".some((c) => ['pass', 'fail'].includes(c.textContent));"))  # fmt: skip
    shoot(driver, "tests")

    view(driver, "network")
    Select(driver.find_element(By.ID, "fault-type")).select_by_value("delay")
    value = driver.find_element(By.ID, "fault-value")
    value.clear()
    value.send_keys("2")
    driver.find_element(By.ID, "fault-inject").click()
    until(driver, "the delay in force", lambda d: "2 ms" in text_of(d, "faults"))
    view(driver, "performance")
    Select(driver.find_element(By.ID, "pm-service")).select_by_value("ovc-1001")
    driver.find_element(By.ID, "pm-start").click()
    until(driver, "three PM points charted", lambda d: int(text_of(d, "pm-points")) >= 3)
    points = driver.execute_script("return document.querySelector('#pm-chart polyline').dataset.points;")
    assert int(points) >= 3
    last_ms = float(text_of(driver, "pm-last").split()[0])
    assert 4.0 <= last_ms <= 40.0  # two-way: the 2 ms injected each way, plus the host's own scheduling delay
    shoot(driver, "performance")

    Select(driver.find_element(By.ID, "buyer")).select_by_value("sp-beta")
    view(driver, "services")
    until(driver, "sp-beta's own services only",
          lambda d: service_oper(d, "ovc-2001") and not service_oper(d, "ovc-1001"))


async def in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def test_console_fault_round_trip_pm_chart_and_buyer_scope(
    client: TestClient[Any, Any], browser: WebDriver
) -> None:
    cir = order_body({"id": "1", "action": "modify", "service": {"id": "ovc-1001-uni", "serviceConfiguration": {
        "@type": "urn:mef:lso:spec:legato:carrier-ethernet-ovc-end-point:v0.0.1:all",
        "ingressBandwidthProfilePerEndPoint": {"cir": {"irValue": 250, "irUnits": "MBPS"}}}}})  # fmt: skip
    assert (await client.post(f"{ORD}/serviceOrder", json=cir, headers=ALPHA)).status == 201
    await in_thread(console_session, browser, str(client.make_url("")).rstrip("/"))
