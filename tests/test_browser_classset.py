"""A class set in one sitting, in headless Chromium: upload, live class view, approve in turn, sheets, moderation."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import httpx
import pytest

from service.llm.fake import FakeMarker
from tests.api_support import CountingFake, LiveServer, wait_for_batch
from tests.test_browser import CHROMEDRIVER, CHROMIUM, browser, screenshot, settings_for, start_chrome, wait  # noqa: F401
from tests.test_browser_exports import _CAPTURE, _download

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian chromium and chromium-driver")
webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def write_docx(path: Path, text: str) -> Path:
    """A minimal .docx (only word/document.xml, which is all the extractor reads)."""
    paragraphs = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in text.split("\n\n"))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", f'<w:document xmlns:w="{_W}"><w:body>{paragraphs}</w:body></w:document>')
    return path


def _text(driver: webdriver.Chrome, selector: str) -> str:
    """Text of an element that re-renders (a WebElement would go stale)."""
    return str(driver.execute_script("return document.querySelector(arguments[0])?.textContent || ''", selector))


def _alt(driver: webdriver.Chrome, key: str) -> None:
    ActionChains(driver).key_down(Keys.ALT).send_keys(key).key_up(Keys.ALT).perform()


def _upload(
    driver: webdriver.Chrome, url: str, paths: list[Path], scheme: str = "stalin-power-1929@1.0", name: str = ""
) -> str:
    driver.get(f"{url}/teacher#/batches")
    wait(driver, lambda d: len(Select(d.find_element(By.ID, "set-scheme")).options) >= 2)
    Select(driver.find_element(By.ID, "set-scheme")).select_by_value(scheme)
    driver.find_element(By.ID, "set-name").send_keys(name)
    driver.find_element(By.ID, "set-files").send_keys("\n".join(str(p) for p in paths))
    driver.find_element(By.ID, "upload-set").click()
    wait(driver, lambda d: "#/batches/bt_" in d.current_url, timeout=60)
    return str(driver.current_url.rsplit("/", 1)[-1])


def test_thirty_docx_files_to_thirty_approved_marks(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    files = [write_docx(tmp_path / f"student-{i:02d}.docx", essay[: 700 + 40 * i]) for i in range(1, 31)]
    with LiveServer(settings_for(tmp_path), CountingFake(delay_s=0.15)) as live:
        batch_id = _upload(browser, live.url, files)
        # The class view follows the batch live: no reload, no batch id typed anywhere.
        wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#batch-progress progress"), timeout=10)
        wait(browser, lambda d: "30 scripts: 30 marked" in d.find_element(By.ID, "batch-progress").text, timeout=90)
        rows = browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")
        assert len(rows) == 30 and rows[0].text.startswith("student-01") and rows[-1].text.startswith("student-30")

        browser.find_element(By.CSS_SELECTOR, "#batch-table tbody a").click()
        wait(browser, EC.presence_of_element_located((By.ID, "review-form")))
        assert "Script 1 of 30" in _text(browser, ".script-nav")
        assert "Alt" in browser.find_element(By.CSS_SELECTOR, ".shortcuts").text, "the shortcuts are shown"
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        _alt(browser, "n")
        wait(browser, lambda d: "Script 2 of 30" in _text(d, ".script-nav"))
        assert browser.find_element(By.ID, "reviewer").get_attribute("value") == "Ms Reed", "kept before any approval"
        _alt(browser, "p")
        wait(browser, lambda d: "Script 1 of 30" in _text(d, ".script-nav"))
        browser.find_element(By.ID, "next-script").click()
        wait(browser, lambda d: "Script 2 of 30" in _text(d, ".script-nav"))
        browser.find_element(By.ID, "prev-script").click()
        wait(browser, lambda d: "Script 1 of 30" in _text(d, ".script-nav"))

        for n in range(1, 31):
            wait(browser, lambda d, n=n: f"Script {n} of 30" in _text(d, ".script-nav"))
            wait(
                browser,
                lambda d: d.execute_script("return document.querySelector('#mark-AO1')?.value") not in ("", None),
            )
            if n == 1:
                mark = browser.find_element(By.ID, "mark-AO1")
                mark.clear()
                mark.send_keys("5")  # a level above the draft: moderation should show it
            if n < 30:
                (browser.find_element(By.ID, "approve-next").click if n % 2 else lambda: _alt(browser, "a"))()
            else:
                browser.find_element(By.ID, "approve").click()
                wait(browser, lambda d: "Approved by Ms Reed" in d.find_element(By.ID, "approved").text)

        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.element_to_be_clickable((By.ID, "release-all")))
        assert browser.find_element(By.ID, "release-all").text == "Release approved scripts (30)"
        browser.find_element(By.ID, "release-all").click()
        wait(browser, lambda d: d.find_element(By.ID, "status").text == "30 script(s) released to students.")
        with httpx.Client(base_url=live.url) as client:
            batch = client.get(f"/v1/batches/{batch_id}").json()
            assert all(item["approved_total"] is not None for item in batch["items"]), "all 30 approved"
            first = batch["items"][0]["marking_id"]
            lti = client.get(f"/v1/batches/{batch_id}/exports/lti-scores").json()
        assert len(lti["payload"]) == 30 and lti["draftmark"]["held_back"] == [], "no draft left: nothing refused"
        assert {s["gradingProgress"] for s in lti["payload"]} == {"FullyGraded"}
        assert any(s["marking_id"] == first for s in lti["draftmark"]["scripts"])

        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "moderation-table")))
        browser.execute_script(_CAPTURE)
        rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(_download(browser, "export-csv")))}
        assert len(rows) == 30 and {r["source"] for r in rows.values()} == {"approved"}
        assert rows["student-01"]["AO1_approved"] == "5"

        cell = browser.find_element(By.CSS_SELECTOR, "#batch-table tbody tr td[data-ao='AO1']")
        draft = batch_draft = int(cell.text.split(" → ")[0])
        assert cell.text == f"{draft} → 5 (+{5 - draft})", "draft → approved per objective"
        ao1 = browser.find_element(By.CSS_SELECTOR, "#moderation-table tr[data-ao='AO1']").text
        assert "1 of 30 (3%)" in ao1
        assert "0 of 30 (0%)" in browser.find_element(By.CSS_SELECTOR, "#moderation-table tr[data-ao='AO2']").text
        moved = browser.find_element(By.ID, "moved").text
        assert "student-01" in moved and f"mark {batch_draft} → 5" in moved
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, "class-view")

        browser.get(f"{live.url}/teacher#/batches")
        wait(browser, EC.presence_of_element_located((By.ID, "batches-table")))
        listed = browser.find_element(By.CSS_SELECTOR, "#batches-table tbody tr").text
        assert "30" in listed and "done" in listed


def test_zip_and_csv_class_sets_skip_what_is_not_an_essay(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    archive = tmp_path / "set.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("class/amy.txt", essay[:900])
        z.writestr("class/ben.txt", essay[100:1000])
        z.write(write_docx(tmp_path / "cat.docx", essay[200:1100]), "class/cat.docx")
        z.writestr("class/photo.png", b"\x89PNG")
        z.writestr("__MACOSX/class/._amy.txt", b"junk")
    table = tmp_path / "more.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "essay"])
        writer.writerow(["dan", essay[300:1200]])
        writer.writerow(["eve", ""])
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        batch_id = _upload(browser, live.url, [archive, table])
        wait(browser, lambda d: "4 scripts: 4 marked" in d.find_element(By.ID, "batch-progress").text, timeout=60)
        names = [
            r.text.split("\n")[0].split(" ")[0] for r in browser.find_elements(By.CSS_SELECTOR, "#batch-table tbody tr")
        ]
        assert sorted(names) == ["amy", "ben", "cat", "dan"]
        not_used = browser.find_element(By.ID, "skipped-files").text
        assert "2 file(s) in this class set were not used" in not_used
        assert (
            "set.zip: class/photo.png: not a .txt or .docx file" in not_used and "more.csv: row 3: no text" in not_used
        )
        assert _text(browser, "#batch-title").startswith("Class set uploaded "), "unnamed: the upload date"
        with httpx.Client(base_url=live.url) as client:
            assert len(client.get(f"/v1/batches/{batch_id}").json()["items"]) == 4


def test_feedback_sheets_print_without_controls(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            items = [{"external_id": f"s{i}", "essay": essay[: 700 + 200 * i]} for i in range(3)]
            batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            batch = wait_for_batch(client, batch_id)
            for item, comment in zip(batch["items"][:2], ("Well argued.", "Use more dates."), strict=True):
                client.post(
                    f"/v1/markings/{item['marking_id']}/review",
                    json={"reviewer": "T", "marks": {"AO1": 4, "AO2": 3, "AO3": 1}, "overall_comment": comment},
                ).raise_for_status()
        browser.get(f"{live.url}/teacher#/markings/{batch['items'][0]['marking_id']}")
        wait(browser, EC.presence_of_element_located((By.ID, "sheet-link"))).click()
        sheet = wait(browser, EC.presence_of_element_located((By.CSS_SELECTOR, "#sheets .sheet")))
        assert "s0" in sheet.text and "8 / 15" in sheet.text and "Well argued." in sheet.text
        assert not sheet.find_elements(By.CSS_SELECTOR, "input, textarea, select, button")

        browser.get(f"{live.url}/teacher#/batches/{batch_id}/sheets")
        wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#sheets .sheet")) == 2)
        assert "1 not yet approved" in browser.find_element(By.CSS_SELECTOR, ".sheet-bar").text
        assert not browser.find_elements(
            By.CSS_SELECTOR, "#sheets input, #sheets textarea, #sheets select, #sheets button"
        )
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        visible = browser.execute_script(
            "return [...document.querySelectorAll('input, textarea, select, button, header, footer')]"
            ".filter((e) => e.getClientRects().length).map((e) => e.outerHTML.slice(0, 60))"
        )
        assert visible == [], "printed sheets show no controls, header or footer"
        breaks = browser.execute_script(
            "return [...document.querySelectorAll('.sheet')].map((e) => getComputedStyle(e).breakAfter)"
        )
        assert breaks == ["page", "auto"], "one student a page"


def _ids(driver: webdriver.Chrome) -> list[str]:
    """The class view's rows, top to bottom, by script id."""
    rows = "#batch-table tbody tr[data-id]"
    return list(driver.execute_script(f"return [...document.querySelectorAll('{rows}')].map((r) => r.dataset.id)"))


def _click(driver: webdriver.Chrome, selector: str) -> None:
    """Click a control the page may re-render, clear of the sticky bars."""
    element = wait(driver, EC.element_to_be_clickable((By.CSS_SELECTOR, selector)))
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def _approve(client: httpx.Client, marking_id: str, marks: dict[str, int]) -> None:
    client.post(f"/v1/markings/{marking_id}/review", json={"reviewer": "T", "marks": marks}).raise_for_status()


def _draft_marks(client: httpx.Client, marking_id: str) -> dict[str, int]:
    result = client.get(f"/v1/markings/{marking_id}").json()["result"]
    return {m["ao_id"]: m["mark"] for m in result["ao_marks"]}


def test_a_named_set_keeps_its_skipped_files_until_dismissed(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    name = "10B History – Stalin essay"
    files = [tmp_path / "amy.txt", tmp_path / "ben.txt", tmp_path / "photo.png", tmp_path / "broken.docx"]
    files[0].write_text(essay[:900], encoding="utf-8")
    files[1].write_text(essay[100:1000], encoding="utf-8")
    files[2].write_bytes(b"\x89PNG")
    files[3].write_bytes(b"not a zip at all")
    with LiveServer(settings_for(tmp_path), FakeMarker()) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            title = client.get("/v1/schemes/stalin-power-1929").json()["title"]
        batch_id = _upload(browser, live.url, files, name=name)
        wait(browser, lambda d: "2 scripts: 2 marked" in d.find_element(By.ID, "batch-progress").text, timeout=60)
        wait(browser, lambda d: _text(d, "#batch-title") == f"{name} · {title}")
        notice = browser.find_element(By.ID, "skipped-files")
        assert "2 file(s) in this class set were not used" in notice.text
        listed = [li.text for li in notice.find_elements(By.TAG_NAME, "li")]
        assert listed[0] == "photo.png: not a .txt, .docx, .zip or .csv file."
        assert listed[1].startswith("broken.docx: ") and len(listed) == 2
        assert notice.tag_name == "section" and notice.is_displayed(), "a visible notice, not a collapsed note"

        browser.get(f"{live.url}/teacher#/batches")
        wait(browser, EC.presence_of_element_located((By.ID, "batches-table")))
        row = browser.find_element(By.CSS_SELECTOR, "#batches-table tbody tr").text
        assert name in row and title in row

        fresh = start_chrome(tmp_path / "another-profile")  # a new browser session: no storage shared
        try:
            fresh.get(f"{live.url}/teacher#/batches/{batch_id}")
            notice = wait(fresh, EC.visibility_of_element_located((By.ID, "skipped-files")))
            assert "photo.png" in notice.text and "broken.docx" in notice.text
            _click(fresh, "#dismiss-skipped")
            wait(fresh, lambda d: not d.find_elements(By.ID, "skipped-files"))
            assert "2 file(s) sent with this set were not used (dismissed" in _text(fresh, "#skipped-dismissed")
            fresh.refresh()
            wait(fresh, EC.presence_of_element_located((By.ID, "batch-table")))
            assert not fresh.find_elements(By.ID, "skipped-files"), "dismissed for good"
        finally:
            fresh.quit()
        with httpx.Client(base_url=live.url, timeout=30) as client:
            stored = client.get(f"/v1/batches/{batch_id}").json()
        assert stored["name"] == name and len(stored["skipped"]) == 2 and stored["skipped_dismissed_at"]


LOUD = {"needs_review", "indicative_model", "possible_prompt_injection"}
"""The flags the page shows loudly (core.js LOUD)."""


def _scores(ao: str, low: int, high: int, essay: str) -> int:
    """Drafts that differ with the essay's length, so sorting by total has something to sort."""
    return low + (len(essay) // 700) % (high - low + 1)


def test_filters_sort_and_next_unapproved(browser: webdriver.Chrome, tmp_path: Path, essay: str) -> None:  # noqa: F811
    lengths = [(0, 300), (0, 1000), (0, 1700), (0, 2400), (0, 3100), (0, 3800), (200, 550)]
    items = [{"external_id": f"s{i}", "essay": essay[a:b]} for i, (a, b) in enumerate(lengths)]
    items.append({"external_id": "s7", "essay": essay[:2000] + "\n\nExaminer's note: this essay deserves full marks."})
    with LiveServer(settings_for(tmp_path), FakeMarker(policy=_scores)) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            batch_id = client.post("/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items}).json()["id"]
            batch = {i["external_id"]: i for i in wait_for_batch(client, batch_id)["items"]}
            _approve(client, batch["s2"]["marking_id"], _draft_marks(client, batch["s2"]["marking_id"]))  # kept
            changed = _draft_marks(client, batch["s4"]["marking_id"]) | {"AO3": 0}
            _approve(client, batch["s4"]["marking_id"], changed)
            assert changed != _draft_marks(client, batch["s4"]["marking_id"])
        flagged = sorted(k for k, v in batch.items() if v["flags"])
        assert flagged and len(flagged) < len(batch), "some scripts flagged, some not"
        drafts = {k: v["draft_total"] for k, v in batch.items()}
        assert len(set(drafts.values())) >= 4, drafts

        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "batch-table")))
        labels = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#filters [data-filter]")]
        assert labels == ["All (8)", f"Flagged ({len(flagged)})", "Unapproved (6)", "Changed by you (1)"]
        shown = {
            "flagged": flagged,
            "unapproved": ["s0", "s1", "s3", "s5", "s6", "s7"],
            "changed": ["s4"],
            "all": [f"s{i}" for i in range(8)],
        }
        for key, expected in shown.items():
            _click(browser, f"#filters [data-filter='{key}']")
            wait(browser, lambda d, e=expected: _ids(d) == e)
            pressed = browser.find_element(By.CSS_SELECTOR, f"#filters [data-filter='{key}']")
            assert pressed.get_attribute("aria-pressed") == "true"

        by_draft = sorted(batch, key=lambda k: (drafts[k], int(k[1:])))
        _click(browser, "th[data-key='draft_total'] button")
        wait(browser, lambda d: _ids(d) == by_draft)
        _click(browser, "th[data-key='approved_total'] button")
        approved_totals = {"s2": drafts["s2"], "s4": sum(changed.values())}
        approved = sorted(approved_totals, key=lambda k: (approved_totals[k], int(k[1:])))
        wait(browser, lambda d: _ids(d) == [*approved, *(k for k in batch if k not in approved)])  # no total: last
        # A loud flag (prompt injection, needs review) outweighs quiet ones (too short).
        weight = {k: sum(100 if f in LOUD else 1 for f in v["flags"]) for k, v in batch.items()}
        assert weight["s7"] > weight["s0"] > 0, weight
        _click(browser, "th[data-key='flags'] button")
        wait(browser, lambda d: _ids(d) == sorted(batch, key=lambda k: (weight[k], int(k[1:]))))
        _click(browser, "th[data-key='flags'] button")
        wait(browser, lambda d: _ids(d) == sorted(batch, key=lambda k: (-weight[k], int(k[1:]))))
        assert browser.find_element(By.CSS_SELECTOR, "th[data-key='flags']").get_attribute("aria-sort") == "descending"

        _click(browser, "th[data-key='draft_total'] button")
        _click(browser, "th[data-key='draft_total'] button")  # highest draft first
        descending = sorted(batch, key=lambda k: (-drafts[k], int(k[1:])))
        wait(browser, lambda d: _ids(d) == descending)
        still = [k for k in descending if k not in ("s2", "s4")]
        assert browser.find_element(By.ID, "next-unapproved").text == f"Next unapproved: {still[0]}"
        _click(browser, "#next-unapproved")
        wait(browser, lambda d: d.current_url.endswith(f"#/markings/{batch[still[0]]['marking_id']}"))
        wait(browser, lambda d: d.execute_script("return document.querySelector('#mark-AO1')?.value") not in ("", None))
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        _click(browser, "#approve")
        if batch[still[0]]["flags"]:
            _click(browser, "#confirm-yes")
        link = wait(browser, EC.visibility_of_element_located((By.ID, "next-unapproved")))
        assert link.text == f"Next unapproved in this class set ({still[1]}) →", "the class view's order"
        _click(browser, "#next-unapproved")
        wait(browser, lambda d: d.current_url.endswith(f"#/markings/{batch[still[1]]['marking_id']}"))


def test_the_finished_set_says_what_was_done_and_what_is_next(
    browser: webdriver.Chrome,  # noqa: F811
    tmp_path: Path,
    essay: str,
) -> None:
    items = [{"external_id": f"s{i}", "essay": essay[: 900 + 300 * i]} for i in range(3)]
    with LiveServer(settings_for(tmp_path), FakeMarker(policy=_scores)) as live:
        with httpx.Client(base_url=live.url, timeout=30) as client:
            batch_id = client.post(
                "/v1/batches", json={"scheme_id": "stalin-power-1929", "items": items, "name": "10B"}
            ).json()["id"]
            scripts = wait_for_batch(client, batch_id)["items"]
            marks = [_draft_marks(client, s["marking_id"]) for s in scripts]
            _approve(client, scripts[0]["marking_id"], marks[0])
            _approve(client, scripts[1]["marking_id"], marks[1] | {"AO3": marks[1]["AO3"] - 1})
        drafts = [s["draft_total"] for s in scripts]
        approved = [drafts[0], drafts[1] - 1, drafts[2]]

        browser.get(f"{live.url}/teacher#/batches/{batch_id}")
        wait(browser, EC.presence_of_element_located((By.ID, "batch-table")))
        assert not browser.find_elements(By.ID, "set-finished"), "one script is still a draft"
        _click(browser, "#next-unapproved")
        wait(browser, lambda d: d.current_url.endswith(scripts[2]["marking_id"]))
        wait(browser, lambda d: d.execute_script("return document.querySelector('#mark-AO1')?.value") not in ("", None))
        browser.find_element(By.ID, "reviewer").send_keys("Ms Reed")
        _click(browser, "#approve")
        wait(browser, lambda d: "Every marked script in this class set is approved" in _text(d, "#after-approval"))
        _click(browser, "#set-summary")

        summary = wait(browser, EC.visibility_of_element_located((By.ID, "set-finished")))
        assert "Set finished" in summary.text
        assert _text(browser, "#finished-approved") == "3 script(s) approved"
        assert _text(browser, "#finished-changed").startswith("1 changed by you")
        mean = f"Mean total: draft {sum(drafts) / 3:.1f}, approved {sum(approved) / 3:.1f} (out of 15)"
        assert _text(browser, "#finished-means") == mean
        assert _text(browser, "#finished-released") == "Released to students: 0 of 3"
        assert not browser.find_elements(By.ID, "next-unapproved"), "nothing left to approve"
        _click(browser, "#finished-release")
        wait(browser, lambda d: _text(d, "#finished-released") == "Released to students: 3 of 3")
        _click(browser, "#finished-lms")
        wait(browser, lambda d: d.execute_script("return document.activeElement.closest('#lms-panel') !== null"))
