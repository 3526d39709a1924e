"""Headless Chromium through LTI: an instructor launched into the teacher page, marks sent back, a learner's view."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from service.llm.fake import FakeMarker
from service.persistence.db import make_engine
from service.persistence.stores import Store
from service.settings import Settings
from tests.api_support import LiveServer, wait_for_batch
from tests.lti_platform import LEARNER, Platform, PlatformServer
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402


def _login_url(tool: str, platform: Platform, hint: str) -> str:
    query = {
        "iss": platform.url,
        "login_hint": hint,
        "client_id": platform.client_id,
        "lti_deployment_id": platform.deployment_id,
        "target_link_uri": f"{tool}/lti/launch",
    }
    return f"{tool}/lti/login?{urlencode(query)}"


def test_a_class_marked_in_draftmark_lands_in_the_lms_gradebook(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    db = f"sqlite:///{tmp_path}/lti-ui.db"
    settings = Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1", database_url=db, lti_allow_private=True)
    with LiveServer(settings, FakeMarker()) as live:
        key = Store(make_engine(db)).create_api_key("history department")[1]
        with PlatformServer(Platform(tool_url=live.url)) as platform:
            platform.roster = [
                {"user_id": f"s-{i}", "name": name, "roles": [LEARNER], "status": "Active"}
                for i, name in enumerate(("Ada Lovelace", "Alan Turing", "Grace Hopper"))
            ]
            with httpx.Client(base_url=live.url, timeout=30, headers={"Authorization": f"Bearer {key}"}) as api:
                api.post("/v1/lti/platforms", json=platform.registration()).raise_for_status()
                ids = ["s-0", "s-1", "Grace Hopper.docx"]  # the third named by its file, as uploaded
                items = [{"external_id": ext, "essay": essay[: 800 + 100 * i]} for i, ext in enumerate(ids)]
                batch_id = api.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
                batch = wait_for_batch(api, batch_id)

            browser.get(_login_url(live.url, platform, "t-1:instructor"))
            wait(browser, lambda d: d.current_url.endswith("/teacher#/batches"))
            stored = browser.execute_script("return localStorage.getItem('draftmark-key')")
            assert stored and stored.startswith("dms_"), "the launch signed the teacher in"
            launched_from = browser.execute_script("return localStorage.getItem('draftmark-lti-link')")
            wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, f"a[href='#/batches/{batch_id}']")))

            for item in batch["items"][:2]:
                browser.get(f"{live.url}/teacher#/markings/{item['marking_id']}")
                wait(browser, EC.element_to_be_clickable((By.ID, "reviewer"))).send_keys("Ms Reed")
                browser.find_element(By.ID, "approve").click()
                wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)

            browser.get(f"{live.url}/teacher#/batches/{batch_id}")
            wait(browser, EC.element_to_be_clickable((By.ID, "release-all"))).click()
            wait(
                browser, lambda d: d.find_element(By.ID, "status").text.startswith("2 script(s) released to students.")
            )
            picked = wait(browser, EC.element_to_be_clickable((By.ID, "lms-link")))
            assert picked.get_attribute("value") == launched_from, "the assignment the teacher launched from"
            browser.find_element(By.ID, "lms-roster").click()
            summary = wait(browser, EC.presence_of_element_located((By.ID, "lms-roster-summary")))
            assert (
                summary.text == "2 of 3 scripts match a learner on the course roster. 1 more match a learner by name."
            )
            assert "Grace Hopper.docx Grace Hopper s-2" in browser.find_element(By.ID, "lms-name-matches").text
            browser.find_element(By.ID, "lms-rename").click()
            wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#batch-table a[href]")))
            wait(browser, lambda d: "s-2" in d.find_element(By.ID, "batch-table").text)
            wait(browser, EC.element_to_be_clickable((By.ID, "lms-roster"))).click()
            summary = wait(browser, EC.presence_of_element_located((By.ID, "lms-roster-summary")))
            wait(browser, lambda d: d.find_element(By.ID, "lms-roster-summary").text.startswith("3 of 3"))
            browser.find_element(By.ID, "lms-send").click()
            wait(browser, lambda d: "are in the LMS gradebook" in d.find_element(By.ID, "status").text)
            table = browser.find_element(By.ID, "lms-status")
            rows = {r.get_attribute("data-user"): r.text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
            assert "Ada Lovelace" in rows["s-0"] and rows["s-0"].endswith("sent")
            assert rows["s-2"].endswith("held back (not approved)")
            assert set(platform.gradebook) == {"s-0", "s-1"}, "approved marks only reach the gradebook"
            assert "reviewed by your teacher" in str(platform.gradebook["s-0"]["comment"])

            browser.delete_all_cookies()
            browser.execute_script("localStorage.clear()")
            browser.get(_login_url(live.url, platform, "s-0:learner"))
            body = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "section.released")))
            assert f"{platform.gradebook['s-0']['score']} / 15" in body.text
            browser.get(_login_url(live.url, platform, "s-2:learner"))
            wait(browser, EC.presence_of_element_located((By.ID, "none")))
            assert browser.execute_script("return localStorage.getItem('draftmark-key')") is None
