"""The teacher page in real headless Chromium (Debian chromium + chromedriver) against a real uvicorn server."""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.errors import ModelUnavailableError
from service.llm.fake import FakeMarker
from service.settings import Settings
from tests.api_support import CountingFake, LiveServer, wait_for_batch

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Read at import: conftest clears DRAFTMARK_* from the environment before each test runs.
TAKE_SCREENSHOTS = os.environ.get("DRAFTMARK_SCREENSHOTS") == "1"

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


def start_chrome(profile: Path) -> webdriver.Chrome:
    """Headless Chromium with its own profile: a second one is a new browser session (no shared storage)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1366,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = start_chrome(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()


def settings_for(tmp_path: Path) -> Settings:
    return Settings(
        backend="openai",
        llm_base_url="http://127.0.0.1:9/v1",
        database_url=f"sqlite:///{tmp_path}/ui.db",
        auth_disabled=True,
    )


def wait(driver: webdriver.Chrome, condition, timeout: float = 20):  # type: ignore[no-untyped-def]
    """Poll ``condition`` until it holds; an element the page re-rendered mid-check (the scheme list
    after an upload) is looked up again on the next poll instead of failing the test."""
    return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)


def screenshot(driver: webdriver.Chrome, name: str) -> None:
    """Write docs/screenshots/<name>.png only when asked (DRAFTMARK_SCREENSHOTS=1): they are tracked files."""
    if TAKE_SCREENSHOTS:
        driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))


def test_mark_review_edit_approve_export(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:
    fake = FakeMarker(indicative_only=True, model_id="tiny-local-model")
    with LiveServer(settings_for(tmp_path), fake) as live:
        browser.get(f"{live.url}/teacher")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        Select(browser.find_element(By.ID, "scheme")).select_by_value("stalin-power-1929@1.0")
        browser.find_element(By.ID, "essay").send_keys(essay[:1500])
        browser.find_element(By.ID, "external-id").send_keys("student-42")
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, "mark")
        browser.find_element(By.ID, "mark").click()

        wait(browser, EC.presence_of_element_located((By.ID, "review-form")))
        marking_id = browser.current_url.rsplit("/", 1)[-1]
        flags = browser.find_element(By.CSS_SELECTOR, ".flags").text
        assert "Indicative model" in flags and "Needs review" in flags
        highlights = browser.find_elements(By.CSS_SELECTOR, "#essay-text mark")
        assert highlights, "evidence must be highlighted in the essay"
        link = browser.find_element(By.CSS_SELECTOR, ".quotes .quote-link")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)  # clear of the sticky bar
        link.click()
        target = browser.find_element(By.CSS_SELECTOR, f"mark[data-ev~='{link.get_attribute('data-ev')}']")
        assert "active" in target.get_attribute("class")

        mark = browser.find_element(By.ID, "mark-AO1")
        mark.clear()
        mark.send_keys("9")
        wait(browser, lambda d: d.find_element(By.ID, "mark-AO1").get_attribute("value") == "5")
        assert browser.find_element(By.ID, "level-AO1").text == "Level 3 (5–5)"
        mark.clear()
        mark.send_keys("2")
        wait(browser, lambda d: d.find_element(By.ID, "level-AO1").text == "Level 1 (1–2)")
        assert "Final total:" in browser.find_element(By.ID, "total").text
        browser.find_element(By.ID, "comment-AO1").send_keys("Knowledge stops in 1922.")
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, "review")
        browser.find_element(By.ID, "approve").click()
        wait(browser, EC.visibility_of_element_located((By.ID, "confirm-approve")))  # it is flagged: confirm first
        browser.find_element(By.ID, "confirm-yes").click()
        wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)

        stored = httpx.get(f"{live.url}/v1/markings/{marking_id}").json()
        assert stored["review"]["reviewer"] == "Ms Reed"
        assert next(m for m in stored["review"]["marks"] if m["ao_id"] == "AO1") == {
            "ao_id": "AO1",
            "mark": 2,
            "level": 1,
            "draft_mark": stored["result"]["ao_marks"][0]["mark"],
            "comment": "Knowledge stops in 1922.",
        }
        assert stored["external_id"] == "student-42"

        downloaded = "Export downloaded: the platform's request is under “payload”."
        browser.find_element(By.ID, "export-moodle").click()  # no assignment id: said in words, nothing sent
        error = browser.find_element(By.ID, "error")
        wait(browser, lambda d: error.get_attribute("hidden") is None)
        assert error.text.startswith("Enter the Moodle assignment id")
        browser.find_element(By.ID, "moodle-assignment").send_keys("7")
        browser.find_element(By.ID, "export-moodle").click()  # approved, not released: refused, and said why
        wait(browser, lambda d: "not released" in error.text)
        wait(browser, lambda d: error.get_attribute("hidden") is None)
        assert "not released" in error.text
        release = browser.find_element(By.ID, "release-script")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", release)
        release.click()
        wait(browser, lambda d: d.find_element(By.ID, "released").text.startswith("Released to the student at"))
        browser.find_element(By.ID, "lms-user").send_keys("42")
        browser.find_element(By.ID, "export-moodle").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == downloaded)
        browser.find_element(By.ID, "export-lti").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == downloaded)
        browser.find_element(By.ID, "export-canvas").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == downloaded)
        assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None

        browser.refresh()
        wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)
        assert browser.find_element(By.ID, "mark-AO1").get_attribute("value") == "2"


def test_class_view_sort_and_export(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": f"s{i}", "essay": essay[: 400 + 200 * i]} for i in range(4)]
            batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            batch = wait_for_batch(client, batch_id)
            first = batch["items"][0]["marking_id"]
            client.post(
                f"/v1/markings/{first}/review", json={"reviewer": "T", "marks": {"AO1": 1, "AO2": 1, "AO3": 0}}
            ).raise_for_status()
        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "batch-table")))
        rows = browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")
        assert len(rows) == 4
        assert [td.text for td in rows[0].find_elements(By.TAG_NAME, "td")][0:4:3] == ["s0", "2"], "s0 approved at 2"
        header = browser.find_element(By.CSS_SELECTOR, "th[data-key='external_id'] button")
        header.click()
        wait(
            browser,
            lambda d: (
                d.find_element(By.CSS_SELECTOR, "th[data-key='external_id']").get_attribute("aria-sort") == "descending"
            ),
        )
        assert browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")[0].text.startswith("s3")
        # Keep the Blob the page turns into the download, so the test reads the file the teacher gets.
        browser.execute_script(
            "window.__downloads = []; const original = URL.createObjectURL;"
            "URL.createObjectURL = (blob) => { window.__downloads.push(blob); return original(blob); };"
        )
        browser.find_element(By.ID, "export-csv").click()
        wait(browser, lambda d: d.execute_script("return window.__downloads.length") == 1)
        exported = browser.execute_async_script(
            "const done = arguments[arguments.length - 1]; window.__downloads[0].text().then(done);"
        )
        assert browser.find_element(By.ID, "error").get_attribute("hidden") is not None
        rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(exported))}
        assert sorted(rows) == ["s0", "s1", "s2", "s3"], exported
        assert (rows["s0"]["source"], rows["s0"]["total"], rows["s0"]["approved_total"]) == ("approved", "2", "2")
        drafts = {item["external_id"]: item["draft_total"] for item in batch["items"]}
        for sid in ("s1", "s2", "s3"):
            assert (rows[sid]["source"], rows[sid]["total"]) == ("draft", str(drafts[sid])), rows[sid]
        browser.find_element(By.CSS_SELECTOR, "#batch-table tbody a").click()
        wait(browser, EC.presence_of_element_located((By.ID, "review-form")))


def test_model_failure_shows_a_clear_message_and_keeps_the_text(browser: webdriver.Chrome, tmp_path: Path) -> None:
    failing = CountingFake(error=ModelUnavailableError("the model endpoint is overloaded", retry_after=30))
    with LiveServer(settings_for(tmp_path), failing) as live:
        browser.get(f"{live.url}/teacher")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        text = "Stalin became General Secretary in 1922 and used the post to appoint his supporters."
        Select(browser.find_element(By.ID, "scheme")).select_by_value("stalin-power-1929@1.0")
        browser.find_element(By.ID, "essay").send_keys(text)
        browser.find_element(By.ID, "mark").click()
        error = wait(browser, EC.visibility_of_element_located((By.ID, "error")))
        assert "overloaded" in error.text and "retry in about 30 s" in error.text and "still here" in error.text
        assert browser.find_element(By.ID, "essay").get_attribute("value") == text
        screenshot(browser, "error")
        browser.refresh()
        wait(browser, lambda d: d.find_element(By.ID, "essay").get_attribute("value") == text)


def test_upload_a_scheme_then_mark_with_it(browser: webdriver.Chrome, tmp_path: Path, holistic) -> None:  # type: ignore[no-untyped-def]
    import yaml

    scheme_file = tmp_path / "letter.yaml"
    scheme_file.write_text(yaml.safe_dump(holistic.model_dump(mode="json") | {"id": "class-letter", "version": "1"}))
    essay_file = tmp_path / "essay.txt"
    essay_file.write_text("Phones distract pupils in lessons. " * 20)
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        browser.get(f"{live.url}/teacher")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        browser.find_element(By.ID, "scheme-file").send_keys(str(scheme_file))
        wait(
            browser,
            lambda d: (
                Select(d.find_element(By.ID, "scheme")).first_selected_option.get_attribute("value") == "class-letter@1"
            ),
        )
        browser.find_element(By.ID, "file").send_keys(str(essay_file))
        wait(browser, lambda d: d.find_element(By.ID, "essay").get_attribute("value").startswith("Phones distract"))
        browser.find_element(By.ID, "mark").click()
        wait(browser, EC.presence_of_element_located((By.ID, "review-form")))
        assert browser.find_element(By.ID, "mark-overall").get_attribute("max") == "6"


def test_unknown_marking_and_empty_states(browser: webdriver.Chrome, tmp_path: Path) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        browser.get(f"{live.url}/teacher#/markings/mk_missing")
        error = wait(browser, EC.visibility_of_element_located((By.ID, "error")))
        assert "no marking with id" in error.text
        browser.get(f"{live.url}/teacher#/batches")
        wait(browser, EC.presence_of_element_located((By.ID, "set-form")))
        wait(browser, lambda d: "No class sets yet" in d.find_element(By.ID, "batch-list").text)
