"""The comment bank on the review page, in headless Chromium: save on one script, insert with Alt+K on another."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from service.llm.fake import FakeMarker
from tests.api_support import LiveServer
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

BANK = "/v1/schemes/stalin-power-1929/comments"
SAVED = "Date each example: 1928, the Lenin Enrolment, the Congress of 1927."


def _marking(live: LiveServer, essay: str) -> str:
    response = httpx.post(
        f"{live.url}/v1/markings", json={"essay": essay, "scheme_id": "stalin-power-1929"}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["id"])


def _open(driver: webdriver.Chrome, live: LiveServer, marking_id: str) -> None:
    driver.get(f"{live.url}/teacher#/markings/{marking_id}")
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, "#review-form .bank-tools")))


def _click(driver: webdriver.Chrome, element) -> None:  # type: ignore[no-untyped-def]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _approve(driver: webdriver.Chrome) -> None:
    reviewer = driver.find_element(By.ID, "reviewer")
    if not reviewer.get_attribute("value"):
        reviewer.send_keys("Ms Reed")
    _click(driver, driver.find_element(By.ID, "approve"))
    confirm = driver.find_elements(By.ID, "confirm-yes")
    if confirm and confirm[0].is_displayed():
        confirm[0].click()
    wait(driver, lambda d: "Approved" in d.find_element(By.ID, "status").text)
    wait(driver, lambda d: not d.find_element(By.ID, "unsaved").is_displayed())


def test_save_on_one_script_insert_with_alt_k_on_another_and_approve(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        first, second = _marking(live, essay[:1500]), _marking(live, essay[:1200])
        _open(browser, live, first)
        box = browser.find_element(By.ID, "comment-AO1")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.send_keys(SAVED)
        tools = box.find_element(By.XPATH, "following-sibling::div[@class='bank-tools']")
        _click(browser, tools.find_element(By.CSS_SELECTOR, ".bank-save"))
        wait(browser, lambda d: "Saved to the comment bank" in tools.find_element(By.CSS_SELECTOR, ".bank-said").text)
        assert [c["text"] for c in httpx.get(f"{live.url}{BANK}", timeout=30).json()] == [SAVED]

        box.send_keys(Keys.CONTROL, "a")
        box.send_keys(Keys.DELETE)  # saved to the bank, not approved here: leave the script without edits
        _open(browser, live, second)
        box = browser.find_element(By.ID, "comment-AO2")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
        box.click()
        box.send_keys("Good range. ", Keys.ENTER, "More detail.")
        _approve(browser)  # approved first, so the insertion alone is what makes the page unsaved again
        assert not browser.find_element(By.ID, "unsaved").is_displayed()
        browser.execute_script(
            "arguments[0].focus(); arguments[0].setSelectionRange(12, 12)", box
        )  # after "Good range. "
        ActionChains(browser).key_down(Keys.ALT).send_keys("k").key_up(Keys.ALT).perform()
        choice = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, "#comment-bank[open] .bank-insert")))
        assert browser.switch_to.active_element == choice and choice.text == SAVED
        choice.send_keys(Keys.ENTER)
        wait(browser, lambda d: not d.find_element(By.ID, "comment-bank").get_attribute("open"))
        assert browser.switch_to.active_element == box, "focus goes back to the comment box"
        assert box.get_attribute("value") == f"Good range. {SAVED}\nMore detail."
        assert browser.find_element(By.ID, "unsaved").is_displayed(), "an inserted comment is an unsaved edit"

        _approve(browser)
        review = httpx.get(f"{live.url}/v1/markings/{second}", timeout=30).json()["review"]
        comment = next(m["comment"] for m in review["marks"] if m["ao_id"] == "AO2")
        assert comment == f"Good range. {SAVED}\nMore detail."

        # Deleted from the picker (opened with its button this time), it is gone from the bank.
        _click(browser, browser.find_element(By.CSS_SELECTOR, "#student-feedback .bank-open"))
        delete = wait(browser, EC.element_to_be_clickable((By.CSS_SELECTOR, "#comment-bank[open] .bank-delete")))
        delete.click()
        wait(browser, lambda d: not d.find_elements(By.CSS_SELECTOR, "#comment-bank .bank-item"))
        assert "empty" in browser.find_element(By.ID, "bank-note").text
        assert httpx.get(f"{live.url}{BANK}", timeout=30).json() == []
