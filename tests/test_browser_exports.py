"""Downloads from the teacher page in real headless Chromium: the files a teacher gets carry approved marks."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from service.llm.fake import FakeMarker
from tests.api_support import LiveServer, wait_for_batch
from tests.lms_rules import moodle_csv_errors
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

# Keep every Blob the page turns into a download, so the test can read the file the teacher would get.
_CAPTURE = """
window.__downloads = [];
const original = URL.createObjectURL;
URL.createObjectURL = (blob) => { window.__downloads.push(blob); return original(blob); };
"""
_READ_LAST = """
const done = arguments[arguments.length - 1];
window.__downloads[window.__downloads.length - 1].text().then(done);
"""


def _download(driver: webdriver.Chrome, button_id: str) -> str:
    before = driver.execute_script("return window.__downloads.length")
    driver.find_element(By.ID, button_id).click()
    wait(driver, lambda d: d.execute_script("return window.__downloads.length") > before)
    return str(driver.execute_async_script(_READ_LAST))


def test_class_view_downloads_carry_approved_marks(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    from evals.dataset import load_jsonl
    from evals.loaders import eval_schemes

    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": f"s{i}", "essay": essay[: 600 + 300 * i]} for i in range(3)]
            batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            batch = wait_for_batch(client, batch_id)
            approvals = ({"AO1": 4, "AO2": 4, "AO3": 1}, {"AO1": 1, "AO2": 2, "AO3": 0})
            for item, marks in zip(batch["items"][:2], approvals, strict=True):
                client.post(
                    f"/v1/markings/{item['marking_id']}/review", json={"reviewer": "Ms Reed", "marks": marks}
                ).raise_for_status()
                client.post(f"/v1/markings/{item['marking_id']}/release").raise_for_status()
        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "batch-table")))
        browser.execute_script(_CAPTURE)

        jsonl = _download(browser, "export-approved")
        assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None, "the export must not fail"
        path = tmp_path / "approved.jsonl"
        path.write_text(jsonl, encoding="utf-8")
        dataset = load_jsonl(path, {s.id: s for s in eval_schemes().list()})
        assert sorted((i.id, i.human_total) for i in dataset.items) == [("s0", 9), ("s1", 3)]

        rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(_download(browser, "export-csv")))}
        assert (rows["s0"]["source"], rows["s0"]["total"], rows["s0"]["AO1_approved"]) == ("approved", "9", "4")
        assert (rows["s1"]["source"], rows["s1"]["total"]) == ("approved", "3")
        assert rows["s2"]["source"] == "draft" and rows["s2"]["approved_total"] == ""

        browser.find_element(By.ID, "approved-only").click()
        moodle = list(csv.DictReader(io.StringIO(_download(browser, "export-moodle-csv"))))
        assert [(r["username"], r["grade"]) for r in moodle] == [("s0", "9"), ("s1", "3")], "approved scripts only"
        assert moodle_csv_errors(_as_csv(moodle), {"s0", "s1"}) == []
        browser.find_element(By.ID, "canvas-assignment").send_keys("55")
        browser.find_element(By.ID, "export-canvas-csv").click()
        error = browser.find_element(By.ID, "error")
        wait(browser, lambda d: error.get_attribute("hidden") is None)
        assert "'s0' is not a Canvas user id" in error.text, "a file Canvas would refuse is not downloaded"


def _as_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
