"""Headless Chromium: a teacher sets a password from the one-time link, signs in, makes a key, signs out."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.llm.fake import FakeMarker
from service.persistence.db import make_engine
from service.persistence.stores import Store
from service.settings import Settings
from tests.api_support import LiveServer
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

PASSWORD = "correct horse battery"


def test_a_teacher_signs_in_on_the_page(browser: webdriver.Chrome, tmp_path: Path) -> None:  # noqa: F811
    db = f"sqlite:///{tmp_path}/accounts.db"
    with LiveServer(
        Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1", database_url=db), FakeMarker()
    ) as live:
        _, token = Store(make_engine(db)).add_user("reed@school.org")
        browser.get(f"{live.url}/teacher#/set-password/{token}")
        wait(browser, EC.presence_of_element_located((By.ID, "new-password"))).send_keys(PASSWORD)
        browser.find_element(By.ID, "new-password-again").send_keys(PASSWORD)
        browser.find_element(By.ID, "set-password").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "Password set: sign in with it now.")

        browser.find_element(By.ID, "sign-in-email").send_keys("reed@school.org")
        browser.find_element(By.ID, "sign-in-password").send_keys("not the password")
        browser.find_element(By.ID, "sign-in").click()
        error = browser.find_element(By.ID, "error")
        wait(browser, lambda d: error.get_attribute("hidden") is None)
        assert "wrong email or password" in error.text.lower()

        password = browser.find_element(By.ID, "sign-in-password")
        password.clear()
        password.send_keys(PASSWORD)
        browser.find_element(By.ID, "sign-in").click()
        wait(browser, lambda d: d.find_element(By.ID, "signed-in-as").text == "Signed in as reed@school.org")
        assert browser.execute_script("return document.cookie").startswith("draftmark_csrf="), (
            "the session cookie is HttpOnly"
        )
        assert browser.execute_script("return localStorage.getItem('draftmark-key')") is None

        browser.get(f"{live.url}/teacher#/batches")
        wait(browser, EC.presence_of_element_located((By.ID, "set-form")))
        browser.find_element(By.ID, "my-keys-link").click()
        wait(browser, EC.presence_of_element_located((By.ID, "key-name"))).send_keys("Moodle")
        browser.find_element(By.ID, "create-key").click()
        key = wait(browser, EC.presence_of_element_located((By.ID, "new-key-text"))).text
        assert key.startswith("dm_")
        wait(browser, lambda d: "Moodle" in d.find_element(By.ID, "keys-table").text)

        browser.find_element(By.ID, "sign-out").click()
        wait(browser, EC.presence_of_element_located((By.ID, "sign-in-form")))
        browser.get(f"{live.url}/teacher#/batches")
        browser.refresh()
        wait(browser, EC.presence_of_element_located((By.ID, "sign-in-form")))


def test_the_page_warns_when_sign_in_is_off(browser: webdriver.Chrome, tmp_path: Path) -> None:  # noqa: F811
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        browser.get(f"{live.url}/teacher")
        banner = wait(browser, EC.visibility_of_element_located((By.ID, "auth-banner")))
        assert "anyone who can reach it can read and change every result" in banner.text
        assert browser.find_elements(By.ID, "sign-in-form") == []
