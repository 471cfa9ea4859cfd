"""Headless Chromium for UI tests, with no network but loopback.

Selenium is pointed at Debian's chromedriver so Selenium Manager never
downloads a driver; Chromium runs with a fresh profile and its background
networking (updates, sync, QUIC) off. A missing binary fails the test with
the apt-get command that installs it.

The server requires an auth string, so the UI opens on its login form:
`log_in` fills that form as a person would (Prefect's UI then keeps the
string in the page's local storage for the rest of the session).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import require_binary

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1600,1100",
)
#: The password field of Prefect's login page (shown when the server has an auth string).
LOGIN_FIELD = 'input[type="password"][placeholder="admin:pass"]'


@contextmanager
def chromium(page_load_timeout: float = 120) -> Iterator[webdriver.Chrome]:
    """A headless Chromium driven by chromedriver; quits and removes its profile on exit."""
    binary = require_binary("chromium", "chromium")
    driver_path = require_binary("chromedriver", "chromium-driver")
    profile = tempfile.mkdtemp(prefix="handover-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        driver.set_page_load_timeout(page_load_timeout)
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def log_in(driver: WebDriver, page: str, auth: str, timeout: float = 120) -> str:
    """Open `page`, which must show the login form, log in with `auth`; return what showed first.

    The returned text is the page as an unauthenticated visitor saw it, for
    the caller to check that it shows the login prompt and none of the data.
    """
    driver.get(page)
    field = WebDriverWait(driver, timeout, poll_frequency=0.5).until(_login_field)
    before = driver.find_element(By.TAG_NAME, "body").text
    field.send_keys(auth)
    field.send_keys(Keys.ENTER)
    WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: _login_field(d) is None)
    return before


def _login_field(driver: WebDriver) -> WebElement | None:
    try:
        fields = driver.find_elements(By.CSS_SELECTOR, LOGIN_FIELD)
        return fields[0] if fields and fields[0].is_displayed() else None
    except StaleElementReferenceException:
        return None
