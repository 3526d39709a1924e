"""axe-core on every view of the teacher page: zero violations (WCAG 2 A/AA rules and axe's best practices)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from service.llm.fake import FakeMarker
from service.persistence.db import make_engine
from service.persistence.stores import Store
from service.settings import Settings
from tests.api_support import LiveServer, wait_for_batch
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
axe_package = pytest.importorskip("axe_selenium_python")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

AXE = (Path(axe_package.__file__).parent / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
RUN = "const done = arguments[arguments.length - 1]; axe.run(document).then((r) => done(r.violations));"


def _violations(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    driver.execute_script(AXE)
    found: list[dict[str, Any]] = driver.execute_async_script(RUN)
    return [{"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:3]} for v in found]


def _check(driver: webdriver.Chrome, url: str, ready: str) -> list[dict[str, Any]]:
    driver.get(url)
    wait(driver, EC.presence_of_element_located((By.CSS_SELECTOR, ready)))
    return _violations(driver)


def test_every_view_has_no_axe_violations(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    browser.set_script_timeout(30)
    problems: dict[str, list[dict[str, Any]]] = {}
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": f"s{i}", "essay": essay[: 800 + 200 * i]} for i in range(2)]
            skipped = [{"name": "photo.png", "reason": "not a .txt, .docx, .zip or .csv file"}]
            named = {"scheme_id": "stalin-power-1929", "items": items, "name": "10B History", "skipped": skipped}
            batch_id = client.post("/v1/batches", json=named).json()["id"]
            batch = wait_for_batch(client, batch_id)
            first = batch["items"][0]["marking_id"]
            client.post(f"/v1/markings/{first}/review", json={"reviewer": "T", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}})
            one = {"scheme_id": "stalin-power-1929", "items": items[:1]}
            finished_id = client.post("/v1/batches", json=one).json()["id"]
            only = wait_for_batch(client, finished_id)["items"][0]["marking_id"]
            client.post(f"/v1/markings/{only}/review", json={"reviewer": "T", "marks": {"AO1": 4, "AO2": 4, "AO3": 1}})
        base = f"{live.url}/teacher"
        views = {
            "mark": ("#/", "#mark-form"),
            "class sets": ("#/batches", "#set-form"),
            "class view": (f"#/batches/{batch_id}", "#skipped-files"),
            "finished class view": (f"#/batches/{finished_id}", "#set-finished"),
            "review": (f"#/markings/{first}", "#review-form"),
            "sheet": (f"#/markings/{first}/sheet", "#sheets .sheet"),
            "sheets": (f"#/batches/{batch_id}/sheets", "#sheets .sheet"),
            "calibration": ("#/calibration/stalin-power-1929", "#main h2"),
        }
        for name, (hash_, ready) in views.items():
            problems[name] = _check(browser, base + hash_, ready)
        bank = f"{live.url}/v1/schemes/stalin-power-1929/comments"
        httpx.post(bank, json={"text": "Date each example."}, timeout=30).raise_for_status()
        _check(browser, f"{base}#/markings/{first}", "#review-form .bank-open")
        browser.execute_script("document.querySelector('.bank-open').click()")
        wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#comment-bank[open] .bank-insert")))
        problems["comment bank picker"] = _violations(browser)
    db = f"sqlite:///{tmp_path}/a11y-auth.db"
    with LiveServer(
        Settings(backend="openai", llm_base_url="http://127.0.0.1:9/v1", database_url=db), FakeMarker()
    ) as live:
        _, token = Store(make_engine(db)).add_user("reed@school.org")
        problems["set password"] = _check(browser, f"{live.url}/teacher#/set-password/{token}", "#set-password-form")
        problems["sign in"] = _check(browser, f"{live.url}/teacher#/sign-in", "#sign-in-form")
        Store(make_engine(db)).add_user("khan@school.org", "correct horse battery")
        browser.find_element(By.ID, "sign-in-email").send_keys("khan@school.org")
        browser.find_element(By.ID, "sign-in-password").send_keys("correct horse battery")
        browser.find_element(By.ID, "sign-in").click()
        wait(browser, EC.presence_of_element_located((By.ID, "signed-in-as")))
        problems["my keys"] = _check(browser, f"{live.url}/teacher#/keys", "#keys-table")
    failing = {k: v for k, v in problems.items() if v}
    assert failing == {}, "\n".join(f"{k}: {v}" for k, v in failing.items())
