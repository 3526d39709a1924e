"""Review defects of issue 11 in real headless Chromium: quotes, explicit approval, unsaved edits, progress."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from service.errors import ModelUnavailableError
from service.llm.fake import FakeMarker
from tests.api_support import CountingFake, LiveServer
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, screenshot, settings_for, wait  # noqa: F401

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

_LEAVING = "const e = new Event('beforeunload', {cancelable: true}); dispatchEvent(e); return e.defaultPrevented"
_COLLECT_ERRORS = (
    "window.__errors = []; window.addEventListener('error', (e) => window.__errors.push(String(e.message)));"
)


def _marking(live: LiveServer, essay: str, **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"essay": essay, "scheme_id": "stalin-power-1929"} | extra
    response = httpx.post(f"{live.url}/v1/markings", json=body, timeout=30)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]


def _open_review(driver: webdriver.Chrome, live: LiveServer, marking_id: str) -> None:
    driver.get(f"{live.url}/teacher#/markings/{marking_id}")
    wait(driver, EC.presence_of_element_located((By.ID, "review-form")))
    driver.execute_script(_COLLECT_ERRORS)


def test_every_shared_quote_links_and_highlights_lead_to_their_objectives(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
    stalin,  # type: ignore[no-untyped-def]
) -> None:
    # The fake quotes the same two passages for every objective: the case that used to throw.
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        marking = _marking(live, essay[:1500], external_id="s-7")
        _open_review(browser, live, marking["id"])
        links = browser.find_elements(By.CSS_SELECTOR, ".quotes .quote-link")
        per_ao = {ao["ao_id"]: len(ao["evidence"]) for ao in marking["result"]["ao_marks"]}
        assert len(links) == sum(per_ao.values()) and len([n for n in per_ao.values() if n]) >= 2
        for link in links:
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", link)
            link.click()
            active = browser.find_elements(By.CSS_SELECTOR, "#essay-text mark.active")
            assert active, f"{link.get_attribute('data-ev')} highlights nothing"
            assert all(link.get_attribute("data-ev") in m.get_attribute("data-ev").split() for m in active)
        assert browser.execute_script("return window.__errors") == []

        # One colour per objective: each card's swatch differs, a highlight takes its first objective's.
        swatches = [s.get_attribute("class").split()[-1] for s in browser.find_elements(By.CSS_SELECTOR, "h3 .swatch")]
        assert len(set(swatches)) == len(swatches) == 3
        shared = browser.find_element(By.CSS_SELECTOR, "#essay-text mark.multi")
        assert shared.get_attribute("class").split()[0] == swatches[0]
        aos = shared.get_attribute("data-ao").split()
        for ao in aos:  # each click goes to the next objective that quotes the passage
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", shared)
            shared.click()
            wait(browser, lambda d, ao=ao: d.execute_script("return document.activeElement.id") == f"h-{ao}")

        # The scheme beside the mark: the question, and what the current level means.
        assert stalin.question[:40] in browser.find_element(By.CSS_SELECTOR, "details.question").text
        ao1 = stalin.objectives[0]
        mark = browser.find_element(By.ID, "mark-AO1")
        mark.clear()
        mark.send_keys(str(ao1.max_marks))
        top = ao1.level_for_mark(ao1.max_marks)
        wait(browser, lambda d: d.find_element(By.ID, "desc-AO1").text == top.descriptor)
        assert (
            browser.find_element(By.CSS_SELECTOR, f"#card-AO1 .ladder li[data-level='{top.level}']").get_attribute(
                "aria-current"
            )
            is not None
        )


def test_enter_does_not_approve_and_a_flagged_script_asks_first(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker(indicative_only=True, model_id="tiny")) as live:
        marking = _marking(live, essay[:1500])
        _open_review(browser, live, marking["id"])
        assert marking["id"] not in browser.find_element(By.TAG_NAME, "h2").text, "no reference: not titled by its id"
        assert "unnamed script" in browser.find_element(By.TAG_NAME, "h2").text
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        mark = browser.find_element(By.ID, "mark-AO1")
        mark.clear()
        mark.send_keys("2", Keys.ENTER)
        browser.find_element(By.ID, "reviewer").send_keys(Keys.ENTER)
        time.sleep(1)
        stored = httpx.get(f"{live.url}/v1/markings/{marking['id']}").json()
        assert stored["review"] is None, "Enter must not approve"
        assert not browser.find_element(By.ID, "confirm-approve").is_displayed()

        browser.find_element(By.ID, "approve").click()
        dialog = wait(browser, EC.visibility_of_element_located((By.ID, "confirm-approve")))
        assert "Indicative model" in dialog.text
        browser.find_element(By.ID, "confirm-no").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "Not approved.")
        assert httpx.get(f"{live.url}/v1/markings/{marking['id']}").json()["review"] is None

        browser.find_element(By.ID, "approve").click()
        wait(browser, EC.visibility_of_element_located((By.ID, "confirm-approve")))
        browser.find_element(By.ID, "confirm-yes").click()
        wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)
        assert httpx.get(f"{live.url}/v1/markings/{marking['id']}").json()["review"]["reviewer"] == "Ms Reed"
        assert browser.execute_script("return document.activeElement.id") == "approved", "focus stays on the page"


def test_unsaved_changes_are_shown_and_leaving_asks(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        marking = _marking(live, essay[:1500], external_id="s-1")
        draft = {m["ao_id"]: m["mark"] for m in marking["result"]["ao_marks"]}
        httpx.post(
            f"{live.url}/v1/markings/{marking['id']}/review", json={"reviewer": "T", "marks": draft}
        ).raise_for_status()
        _open_review(browser, live, marking["id"])
        unsaved = browser.find_element(By.ID, "unsaved")
        assert not unsaved.is_displayed() and "stale" not in browser.find_element(By.ID, "approved").get_attribute(
            "class"
        )
        assert not browser.execute_script(_LEAVING)

        mark = browser.find_element(By.ID, "mark-AO1")
        mark.clear()
        mark.send_keys(str(draft["AO1"] - 1))
        wait(browser, lambda d: d.find_element(By.ID, "unsaved").is_displayed())
        approved = browser.find_element(By.ID, "approved")
        assert "stale" in approved.get_attribute("class") and "not saved" in approved.text
        assert browser.execute_script(_LEAVING), "closing the tab with unsaved edits warns"

        browser.find_element(By.CSS_SELECTOR, "header nav a[href='#/']").click()
        wait(browser, EC.alert_is_present()).dismiss()
        assert browser.find_element(By.ID, "mark-AO1").get_attribute("value") == str(draft["AO1"] - 1)
        assert browser.current_url.endswith(f"#/markings/{marking['id']}")

        reset = browser.find_element(By.ID, "reset-AO1")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", reset)  # clear of the sticky bar
        reset.click()
        wait(browser, lambda d: not d.find_element(By.ID, "unsaved").is_displayed())
        assert browser.find_element(By.ID, "mark-AO1").get_attribute("value") == str(draft["AO1"])
        assert "stale" not in browser.find_element(By.ID, "approved").get_attribute("class")
        browser.find_element(By.CSS_SELECTOR, "header nav a[href='#/']").click()
        wait(browser, EC.presence_of_element_located((By.ID, "mark-form")))  # no edits: no question


def test_marking_progress_is_on_screen_with_elapsed_time_and_cancel(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    browser.set_window_size(1366, 768)
    with LiveServer(settings_for(tmp_path), CountingFake(delay_s=6)) as live:
        browser.get(f"{live.url}/teacher")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        browser.find_element(By.ID, "essay").send_keys(essay[:800])
        assert browser.execute_script("return localStorage.getItem('draftmark-draft')") is None
        assert browser.execute_script("return sessionStorage.getItem('draftmark-draft')") == essay[:800]
        Select(browser.find_element(By.ID, "scheme")).select_by_value("stalin-power-1929@1.0")
        button = browser.find_element(By.ID, "mark")
        browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", button)
        button.click()
        panel = wait(browser, EC.visibility_of_element_located((By.ID, "progress")))
        assert browser.execute_script("return window.scrollY") > 0, "the Mark button is below the fold at 768 px"
        rect = browser.execute_script("return arguments[0].getBoundingClientRect().toJSON()", panel)
        assert rect["top"] >= 0 and rect["bottom"] <= browser.execute_script("return window.innerHeight")
        assert "Marking" in panel.text
        wait(browser, lambda d: d.find_element(By.ID, "progress-elapsed").text not in ("0 s", ""), timeout=5)
        browser.find_element(By.ID, "progress-cancel").click()
        wait(browser, lambda d: "Marking cancelled" in d.find_element(By.ID, "status").text)
        assert not browser.find_element(By.ID, "progress").is_displayed()
        assert browser.find_element(By.ID, "essay").get_attribute("value") == essay[:800]
        assert "#/markings/" not in browser.current_url


def test_scheme_picker_drafts_and_messages(browser: webdriver.Chrome, tmp_path: Path, stalin, essay: str) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "id: broken\nversion: '1'\ntitle: Broken\nsubject: History\nquestion: Why?\ntotal_marks: 9\n"
        "objectives:\n  - id: AO1\n    name: Knowledge\n    max_marks: 4\n    levels:\n"
        "      - {level: 1, min_mark: 2, max_mark: 3, descriptor: Some}\n"
    )
    failing = CountingFake(error=ModelUnavailableError("the model endpoint is overloaded", retry_after=30))
    with LiveServer(settings_for(tmp_path), failing) as live:
        browser.get(f"{live.url}/teacher")
        wait(browser, lambda d: len(Select(d.find_element(By.ID, "scheme")).options) >= 2)
        picker = Select(browser.find_element(By.ID, "scheme"))
        assert picker.first_selected_option.get_attribute("value") == ""
        assert picker.first_selected_option.text == "Choose a scheme…"
        assert stalin.title in [o.text.split(" (")[0] for o in picker.options], "schemes are listed by title"

        browser.find_element(By.ID, "scheme-file").send_keys(str(broken))
        error = wait(browser, EC.visibility_of_element_located((By.ID, "error")))
        assert len(error.find_elements(By.CSS_SELECTOR, "li")) >= 2, error.text

        picker.select_by_value("stalin-power-1929@1.0")
        browser.find_element(By.ID, "essay").send_keys("Stalin became General Secretary in 1922 and appointed allies.")
        browser.find_element(By.ID, "mark").click()
        wait(browser, lambda d: "still here" in d.find_element(By.ID, "error").text)
        text = browser.find_element(By.ID, "error").text
        assert re.search(r"overloaded\. .*You can retry in about 30 s\. Your essay text is still here\.", text), text


def test_mark_blind_hides_the_draft_until_marks_are_in_and_stores_a_blind_exemplar(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        first = _marking(live, essay[:1500], external_id="s-1")
        second = _marking(live, essay[:1400], external_id="s-2")
        draft = {m["ao_id"]: m["mark"] for m in second["result"]["ao_marks"]}
        _open_review(browser, live, first["id"])
        assert browser.find_element(By.CSS_SELECTOR, ".ao .draft").is_displayed(), "not blind by default"
        browser.find_element(By.ID, "blind-toggle").click()  # from the next script on

        _open_review(browser, live, second["id"])
        hidden = ["#essay-text", ".ao .draft", ".quotes", "#calibration", "#reset-AO1"]
        for selector in hidden:
            for node in browser.find_elements(By.CSS_SELECTOR, selector):
                assert not node.is_displayed(), f"{selector} shows the draft before the marks are in"
        assert browser.find_element(By.ID, "essay-plain").is_displayed()
        assert "model draft" not in browser.find_element(By.ID, "total").text
        page = browser.find_element(By.ID, "review-form").text
        assert "Model draft" not in page and second["result"]["feedback"]["what_went_well"] not in page
        assert all(browser.find_element(By.ID, f"mark-{ao}").get_attribute("value") == "" for ao in draft)
        reveal = browser.find_element(By.ID, "reveal")
        assert not reveal.is_enabled(), "the draft stays hidden until every mark is entered"

        mine = {ao: (mark + 1) % 3 for ao, mark in draft.items()}  # 0-2: inside every objective's range
        for ao, mark in mine.items():
            browser.find_element(By.ID, f"mark-{ao}").send_keys(str(mark))
        wait(browser, lambda d: d.find_element(By.ID, "reveal").is_enabled())
        reveal.click()
        wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".ao .draft").is_displayed())
        assert browser.find_element(By.ID, "essay-text").is_displayed()
        assert not browser.find_element(By.ID, "essay-plain").is_displayed()

        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        browser.find_element(By.ID, "approve").click()
        if browser.find_element(By.ID, "confirm-approve").is_displayed():
            browser.find_element(By.ID, "confirm-yes").click()
        wait(browser, lambda d: "marked blind" in d.find_element(By.ID, "status").text)
        stored = httpx.get(f"{live.url}/v1/markings/{second['id']}").json()["review"]
        assert stored["mode"] == "blind" and {m["ao_id"]: m["mark"] for m in stored["marks"]} == mine
        exemplars = httpx.get(f"{live.url}/v1/schemes/stalin-power-1929/exemplars").json()
        assert [(e["external_id"], e["basis"], e["counted"]) for e in exemplars] == [("s-2", "blind", True)]

        # Changing a mark after the draft was shown makes the approval anchored (the draft was in view).
        _open_review(browser, live, first["id"])
        for ao in draft:
            browser.find_element(By.ID, f"mark-{ao}").send_keys("0")
        browser.find_element(By.ID, "reveal").click()
        mark = browser.find_element(By.ID, "mark-AO1")
        mark.clear()
        mark.send_keys("1")
        browser.find_element(By.ID, "approve").click()
        if browser.find_element(By.ID, "confirm-approve").is_displayed():
            browser.find_element(By.ID, "confirm-yes").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "Approved and saved.")
        assert httpx.get(f"{live.url}/v1/markings/{first['id']}").json()["review"]["mode"] == "anchored"


def test_the_reading_shows_points_addressed_and_missed_beside_each_objective(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        marking = _marking(live, essay)
        _open_review(browser, live, marking["id"])
        coverage = browser.find_element(By.ID, "coverage-AO1")
        assert "2 of 12 addressed" in coverage.text
        summary = coverage.find_element(By.TAG_NAME, "summary")
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)  # clear of the sticky bar
        summary.click()
        addressed = coverage.find_element(By.CSS_SELECTOR, "ul.addressed").text
        assert "General Secretary (1922)" in addressed and "Stalin was rewarded" in addressed
        assert "Lenin's Testament" in coverage.find_element(By.CSS_SELECTOR, "ul.missing").text
        facts = browser.find_element(By.ID, "reading").text
        assert "No concluding judgement" in facts and "latest year in the essay's body is 1922" in facts
        assert "Stalinstayed" in facts
        assert browser.execute_script("return window.__errors") == []


def test_the_teacher_edits_what_the_student_receives_and_the_sheet_shows_exactly_that(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        marking = _marking(live, essay[:1500], external_id="s-9")
        _open_review(browser, live, marking["id"])
        www = browser.find_element(By.ID, "student-www")
        assert www.get_attribute("value") == marking["result"]["feedback"]["what_went_well"], "starts from the draft"
        www.clear()
        www.send_keys("You explain the General Secretary post clearly.")
        ebi = browser.find_element(By.ID, "student-ebi")
        ebi.clear()
        ebi.send_keys("Carry the story on to 1929.")
        wait(browser, lambda d: d.find_element(By.ID, "unsaved").is_displayed())
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        browser.find_element(By.ID, "approve").click()
        if browser.find_element(By.ID, "confirm-approve").is_displayed():
            browser.find_element(By.ID, "confirm-yes").click()
        wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)

        browser.find_element(By.ID, "student-preview").click()
        sheet = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#sheets .sheet")))
        assert (
            sheet.find_element(By.CSS_SELECTOR, ".sheet-www").text == "You explain the General Secretary post clearly."
        )
        assert sheet.find_element(By.CSS_SELECTOR, ".sheet-ebi").text == "Carry the story on to 1929."
        assert "reviewed by your teacher" in sheet.find_element(By.CSS_SELECTOR, ".sheet-label").text
        assert "Analyse the ways in which Stalin came to power" in sheet.text, "the question is on the sheet"
        refused = httpx.get(f"{live.url}/v1/markings/{marking['id']}/exports/lti-score", params={"user_id": "u"})
        assert refused.status_code == 409, "approved, not yet released: nothing leaves"
        _open_review(browser, live, marking["id"])
        wait(browser, EC.element_to_be_clickable((By.ID, "release-script"))).click()
        wait(browser, lambda d: d.find_element(By.ID, "released").text.startswith("Released to the student at"))
        lti = httpx.get(f"{live.url}/v1/markings/{marking['id']}/exports/lti-score", params={"user_id": "u"}).json()
        assert "What went well: You explain the General Secretary post clearly." in lti["payload"][0]["comment"]

        _open_review(browser, live, marking["id"])
        assert browser.find_element(By.ID, "student-www").get_attribute("value").startswith("You explain the General")
        browser.find_element(By.ID, "reset-feedback").click()
        assert (
            browser.find_element(By.ID, "student-www").get_attribute("value")
            == (marking["result"]["feedback"]["what_went_well"])
        )
        assert browser.find_element(By.ID, "unsaved").is_displayed()


def test_total_flags_and_approve_stay_in_view_and_an_empty_mark_is_not_zero(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    browser.set_window_size(1280, 720)
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        marking = _marking(live, essay, external_id="s-3")
        _open_review(browser, live, marking["id"])
        approve = browser.find_element(By.ID, "approve")
        in_view = "const r = arguments[0].getBoundingClientRect(); return r.top >= 0 && r.bottom <= window.innerHeight;"
        assert browser.execute_script(in_view, approve), "Approve is visible at the top of the page"
        browser.execute_script("window.scrollTo(0, document.body.scrollHeight / 3)")
        assert browser.execute_script(in_view, approve), "and while the teacher reads further down"
        assert browser.execute_script(in_view, browser.find_element(By.CSS_SELECTOR, "#action-bar .totals"))
        mark = browser.find_element(By.ID, "mark-AO2")
        mark.clear()
        total = browser.find_element(By.CSS_SELECTOR, "#action-bar .totals").text
        assert total.startswith("Final total: not marked yet (AO2 empty) / 15"), total
