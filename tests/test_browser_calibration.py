"""Calibration on the teacher page in headless Chromium: import marked scripts, see the figures beside the mark."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import httpx
import pytest

from schemas.scheme import MarkScheme
from service.llm.fake import FakeMarker
from tests.api_support import LiveServer, wait_for_batch
from tests.calibration_support import synthetic_essay, synthetic_scripts
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, screenshot, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402


def _marked_csv(path: Path, holistic: MarkScheme, n: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "essay", "mark"])
        for i, script in enumerate(synthetic_scripts(holistic, n, 2, "vocabulary")):
            writer.writerow([f"stu-{i}", script.essay, script.marks["overall"]])
    return path


def test_import_marked_scripts_then_the_mark_shows_its_calibration(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    holistic: MarkScheme,
) -> None:
    ref = f"{holistic.id}@{holistic.version}"
    with LiveServer(settings_for(tmp_path), FakeMarker(policy=lambda *_: 1)) as live:
        browser.get(f"{live.url}/teacher#/calibration")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "cal-scheme")).options) >= 2)
        Select(browser.find_element(By.ID, "cal-scheme")).select_by_value(ref)
        wait(browser, lambda d: "Not calibrated yet" in d.find_element(By.ID, "calibration-figures").text)

        browser.find_element(By.ID, "exemplar-file").send_keys(str(_marked_csv(tmp_path / "marked.csv", holistic, 40)))
        wait(browser, lambda d: "40 added" in d.find_element(By.ID, "status").text, timeout=120)
        # The import answers before the refit; the page shows the refit pending, then its figures.
        wait(browser, lambda d: "calibration refitted" in d.find_element(By.ID, "status").text, timeout=120)
        message = browser.find_element(By.ID, "calibration-message").text
        assert "Calibrated." in message and "calibrated on 40 of your marked scripts" in message
        plain = browser.find_element(By.CSS_SELECTOR, "#calibration-plain li[data-ao='overall']").text
        assert "within one mark of yours" in plain and "of the time" in plain, plain
        browser.find_element(By.CSS_SELECTOR, "#calibration-details summary").click()
        row = browser.find_element(By.CSS_SELECTOR, "#calibration-table tbody tr[data-ao='overall']")
        calibrated_qwk = float(row.find_element(By.CSS_SELECTOR, ".qwk").text)
        assert 0 < calibrated_qwk <= 1 and "yes" in row.text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#exemplars-table tbody tr")) == 40
        screenshot(browser, "calibration")

        browser.find_element(By.CSS_SELECTOR, "#exemplars-table tbody tr button").click()
        wait(browser, EC.alert_is_present()).accept()
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#exemplars-table tbody tr")) == 39, timeout=120)
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "Removed; calibration refitted.", timeout=120)
        assert "39 marked script(s)" in browser.find_element(By.ID, "calibration-message").text
        assert "Calibrated." in browser.find_element(By.ID, "calibration-message").text
        browser.find_element(By.ID, "refit-now").click()  # approvals refit every 10 scripts; the teacher can ask
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "Calibration refitted.", timeout=120)

        # The mark of a new essay carries the calibration's figures, beside the total.
        browser.get(f"{live.url}/teacher#/")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        Select(browser.find_element(By.ID, "scheme")).select_by_value(ref)
        browser.find_element(By.ID, "essay").send_keys(synthetic_essay(5, random.Random(3), "vocabulary"))
        browser.find_element(By.ID, "mark").click()
        line = wait(browser, EC.visibility_of_element_located((By.ID, "calibration")))
        assert "calibrated on 39 of your marked scripts" in line.text and "word count alone" in line.text
        beside = (
            "return document.getElementById('calibration-line').nextElementSibling"
            ".contains(document.getElementById('total'))"
        )
        assert browser.execute_script(beside), "just above the total's action bar"

        # The class view says, per script, whether calibration set its marks.
        with httpx.Client(base_url=live.url, timeout=60) as client:
            items = [
                {"external_id": f"new-{i}", "essay": synthetic_essay(i, random.Random(i), "vocabulary")} for i in (1, 4)
            ]
            batch_id = client.post("/v1/batches", json={"scheme_id": holistic.id, "items": items}).json()["id"]
            wait_for_batch(client, batch_id)
        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "batch-table")))
        assert "calibrated on 39" in browser.find_element(By.ID, "batch-calibration").text
        statuses = [
            r.find_elements(By.TAG_NAME, "td")[-2].text
            for r in browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")
        ]
        assert statuses == ["calibrated", "calibrated"]
