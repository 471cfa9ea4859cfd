"""Headless Chromium for UI tests, with no network but loopback.

Selenium is pointed at Debian's chromedriver so Selenium Manager never
downloads a driver; Chromium runs with a fresh profile and its background
networking (updates, sync, QUIC) off. A missing binary fails the test with
the apt-get command that installs it.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

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
