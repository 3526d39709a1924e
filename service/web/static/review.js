// Review one marked script: evidence in the essay, the scheme's descriptors beside each mark,
// the teacher's marks and comments, explicit approval, and next / previous within a class set.
import { $, $$, COLOURS, FLAG_TEXT, LOUD, api, el, sentence, showError, status, view, when } from "./core.js";
import { exportsPanel } from "./exports.js";
import { nextUnapproved } from "./classorder.js";
import { commentBank } from "./commentbank.js";

function highlightedEssay(text, marks, colour) {
  const spans = [];
  for (const ao of marks) ao.evidence.forEach((ev, i) => spans.push({ start: ev.start, end: ev.end, ao: ao.ao_id, id: `ev-${ao.ao_id}-${i}` }));
  const cuts = new Set([0, text.length]);
  for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
  const points = [...cuts].sort((a, b) => a - b);
  const container = el("div", { class: "essay", id: "essay-text", tabindex: "0", "aria-label": "Essay with highlighted evidence" });
  for (let i = 0; i < points.length - 1; i++) {
    const [a, b] = [points[i], points[i + 1]];
    const covering = spans.filter((s) => s.start <= a && s.end >= b);
    const piece = text.slice(a, b);
    if (!covering.length) { container.append(piece); continue; }
    // Every quote that covers this piece can find it (two objectives may quote the same passage).
    const aos = [...new Set(covering.map((s) => s.ao))];
    container.append(el("mark", {
      class: `c${colour[aos[0]]}${aos.length > 1 ? " multi" : ""}`, tabindex: "-1",
      "data-ao": aos.join(" "), "data-ev": covering.map((s) => s.id).join(" "),
      title: `Evidence for ${aos.join(", ")}: select to go to the objective`,
    }, piece));
  }
  return container;
}

// What code found in the essay (no model): indicative points addressed, with their sentences, and missed.
function coverageOf(reading, aoId) {
  const c = reading?.coverage?.find((x) => x.ao_id === aoId);
  if (!c || !(c.addressed.length + c.missing.length)) return "";
  const total = c.addressed.length + c.missing.length;
  return el("details", { class: "coverage", id: `coverage-${aoId}` },
    el("summary", {}, `Indicative points: ${c.addressed.length} of ${total} addressed`),
    c.addressed.length ? el("ul", { class: "addressed" }, c.addressed.map((p) => el("li", {}, el("strong", {}, "✓ "), p.point,
      el("span", { class: "hint" }, ` (${p.sentences.map((s) => `${s.ref}: “${s.quote.split(" ").slice(0, 12).join(" ")}…”`).join("; ")})`)))) : "",
    c.missing.length ? el("ul", { class: "missing" }, c.missing.map((p) => el("li", {}, el("strong", {}, "✗ "), p))) : "");
}

function readingFacts(reading) {
  if (!reading) return "";
  const facts = [];
  facts.push(reading.conclusion ? `Concluding judgement: “${reading.conclusion.quote}”` : "No concluding judgement found in the last paragraph.");
  if (reading.period && reading.latest_year) {
    facts.push(reading.stops_short
      ? `Stops short: the latest year in the essay's body is ${reading.latest_year}; the question runs ${reading.period[0]}–${reading.period[1]}.`
      : `Reaches ${reading.latest_year} (the question runs ${reading.period[0]}–${reading.period[1]}).`);
  }
  if (reading.run_together.length) facts.push(`Words run together: ${reading.run_together.join(", ")}.`);
  return el("section", { class: "ao", id: "reading" }, el("h3", {}, "Found in the essay (by draftmark's reading, not the model)"),
    el("ul", {}, facts.map((f) => el("li", {}, f))));
}

function levelFor(objective, mark) {
  return objective.levels.find((lv) => lv.min_mark <= mark && mark <= lv.max_mark);
}

/** The scripts of the same batch, in order, for next / previous. */
async function neighbours(marking) {
  if (!marking.batch_id) return null;
  try {
    const batch = await api(`/v1/batches/${encodeURIComponent(marking.batch_id)}`);
    const scripts = batch.items.filter((i) => i.marking_id);
    const at = scripts.findIndex((i) => i.marking_id === marking.id);
    return at < 0 ? null : { batchId: batch.id, at, count: scripts.length, prev: scripts[at - 1], next: scripts[at + 1] };
  } catch { return null; }
}

function titleOf(marking) {
  if (marking.external_id) return `Review ${marking.external_id}`;
  return `Review of an unnamed script (marked ${when(marking.result.provenance.created_at)})`;
}

function calibrationLine(calibration, schemeRef) {
  const line = el("p", { id: "calibration", class: `calibration ${calibration.status}` },
    el("strong", {}, calibration.status === "calibrated" ? "Calibrated: " : "Calibration: "), calibration.summary, " ",
    el("a", { href: `#/calibration/${schemeRef}` }, "Calibration for this scheme"));
  const own = Object.entries(calibration.uncalibrated_marks || {});
  if (calibration.status === "calibrated" && own.length) line.append(el("span", { class: "hint" }, ` The model's own marks: ${own.map(([k, v]) => `${k} ${v}`).join(", ")}.`));
  if (calibration.discounted?.length) line.append(el("span", { class: "hint" }, ` Not counted: ${calibration.discounted.join("; ")}.`));
  return line;
}

export async function renderReview(id, { setGuard, onLeave, live }) {
  view().replaceChildren(el("p", {}, "Loading…"));
  let marking, scheme;
  try {
    marking = await api(`/v1/markings/${encodeURIComponent(id)}`);
    const p = marking.result.provenance;
    scheme = await api(`/v1/schemes/${encodeURIComponent(p.scheme_id)}?version=${encodeURIComponent(p.scheme_version)}`);
  } catch (err) { view().replaceChildren(); showError(`Could not open marking ${id}: ${err.message}`); return; }
  const near = await neighbours(marking);
  if (!live()) return; // the teacher has moved on while this script loaded
  const essayText = marking.essay ?? "";
  const r = marking.result;
  let review = marking.review;
  // Mark blind: the teacher's marks go in before anything the model wrote is shown, so they are
  // independent evidence for calibration (an approval with the draft in view is "anchored").
  let blind = !review && localStorage.getItem("draftmark-blind") === "1";
  let blindMarks = null; // the marks entered before the draft was shown
  const bank = commentBank(scheme.id);
  const objectives = Object.fromEntries(scheme.objectives.map((o) => [o.id, o]));
  const colour = Object.fromEntries(r.ao_marks.map((ao, i) => [ao.ao_id, i % COLOURS]));
  const flags = el("ul", { class: "flags model-draft", id: "flags", "aria-label": "Flags" },
    r.flags.map((f) => el("li", { class: `flag ${LOUD.has(f.code) ? "loud" : ""}` }, `${FLAG_TEXT[f.code] || f.code}: ${f.detail}`)));
  const total = el("output", { id: "total", "aria-live": "polite" });
  const essayBox = highlightedEssay(essayText, r.ao_marks, colour);
  essayBox.classList.add("model-draft");
  const plainEssay = el("div", { class: "essay blind-only", id: "essay-plain", tabindex: "0", "aria-label": "Essay" }, essayText);
  const jump = (evId) => {
    const pieces = $$(`mark[data-ev~="${evId}"]`, essayBox);
    $$("mark.active", essayBox).forEach((x) => x.classList.remove("active"));
    pieces.forEach((m) => m.classList.add("active"));
    if (!pieces.length) return;
    pieces[0].scrollIntoView({ block: "center" }); pieces[0].focus({ preventScroll: true });
  };
  essayBox.addEventListener("click", (event) => {
    const piece = event.target.closest("mark");
    if (!piece) return;
    // Several objectives on one passage: each click goes to the next of them.
    const aos = piece.dataset.ao.split(" ");
    const turn = Number(piece.dataset.turn || 0);
    piece.dataset.turn = String((turn + 1) % aos.length);
    const card = document.getElementById(`card-${aos[turn]}`);
    card.scrollIntoView({ block: "start" }); $("h3", card).focus({ preventScroll: true });
  });

  const cards = r.ao_marks.map((ao) => {
    const objective = objectives[ao.ao_id];
    const input = el("input", { type: "number", id: `mark-${ao.ao_id}`, min: objective.levels[0].min_mark, max: ao.max_marks,
      required: true, "aria-describedby": `level-${ao.ao_id} desc-${ao.ao_id}` });
    const level = el("output", { id: `level-${ao.ao_id}`, class: "level", for: `mark-${ao.ao_id}` });
    const descriptor = el("p", { id: `desc-${ao.ao_id}`, class: "descriptor" });
    const ladder = el("ol", { class: "ladder" }, objective.levels.map((lv) => el("li", { "data-level": lv.level },
      el("strong", {}, `Level ${lv.level} (${lv.min_mark}–${lv.max_mark}): `), lv.descriptor)));
    const update = () => {
      // An emptied box is being retyped: leave it (approval asks for every mark).
      if (input.value === "") { level.textContent = "—"; descriptor.textContent = ""; changed(); return; }
      let value = Number(input.value);
      if (!Number.isFinite(value)) value = ao.mark;
      const clamped = Math.min(Math.max(Math.round(value), Number(input.min)), Number(input.max));
      if (clamped !== value) input.value = clamped;
      const lv = levelFor(objective, clamped);
      level.textContent = `Level ${lv.level} (${lv.min_mark}–${lv.max_mark})`;
      descriptor.textContent = lv.descriptor;
      $$("li", ladder).forEach((li) => li.dataset.level === String(lv.level) ? li.setAttribute("aria-current", "true") : li.removeAttribute("aria-current"));
      changed();
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
    const quotes = el("ul", { class: "quotes" }, ao.evidence.map((ev, i) => el("li", {},
      el("button", { type: "button", class: "quote-link", "data-ev": `ev-${ao.ao_id}-${i}`, onclick: () => jump(`ev-${ao.ao_id}-${i}`) },
        `“${ev.quote}”`))));
    const comment = el("textarea", { id: `comment-${ao.ao_id}`, rows: "2", oninput: () => changed() });
    const card = el("section", { class: "ao", id: `card-${ao.ao_id}`, "aria-labelledby": `h-${ao.ao_id}` },
      el("h3", { id: `h-${ao.ao_id}`, tabindex: "-1" }, el("span", { class: `swatch c${colour[ao.ao_id]}`, "aria-hidden": "true" }), `${ao.ao_id} · ${ao.ao_name}`),
      objective.description ? el("p", { class: "hint" }, objective.description) : "",
      el("p", { class: "draft model-draft" }, `Model draft: level ${ao.level}, ${ao.mark}/${ao.max_marks}` + (ao.sample_marks.length ? ` (samples ${ao.sample_marks.join(", ")})` : "")),
      el("div", { class: "edit" }, el("div", {}, el("label", { for: `mark-${ao.ao_id}` }, `Final mark (${objective.levels[0].min_mark}–${ao.max_marks})`), input), level,
        el("button", { type: "button", class: "secondary small model-draft", id: `reset-${ao.ao_id}`, onclick: () => { input.value = ao.mark; update(); input.focus(); } }, "Reset to draft")),
      descriptor,
      el("details", { class: "levels" }, el("summary", {}, `All levels for ${ao.ao_id}`), ladder),
      coverageOf(r.reading, ao.ao_id),
      el("div", { class: "model-draft" },
        el("p", {}, ao.rationale),
        ao.evidence.length ? el("div", {}, el("strong", {}, "Evidence"), quotes) : el("p", { class: "empty" }, "No quotation given."),
        ao.strengths.length ? el("div", {}, el("strong", {}, "Strengths"), el("ul", {}, ao.strengths.map((s) => el("li", {}, s)))) : "",
        ao.improvements.length ? el("div", {}, el("strong", {}, "Next steps"), el("ul", {}, ao.improvements.map((s) => el("li", {}, s)))) : ""),
      el("label", { for: `comment-${ao.ao_id}` }, "Your comment"), comment, bank.tools(comment, `your comment for ${ao.ao_id}`));
    card.update = update;
    return card;
  });
  const overall = el("textarea", { id: "overall-comment", rows: "3", oninput: () => changed() });
  const www = el("textarea", { id: "student-www", rows: "2", oninput: () => changed() });
  const ebi = el("textarea", { id: "student-ebi", rows: "2", oninput: () => changed() });

  // What is on the page now, and what was last saved (the approval, or the draft before any).
  const current = () => ({
    marks: Object.fromEntries(r.ao_marks.map((ao) => [ao.ao_id, Number($(`#mark-${ao.ao_id}`).value)])),
    comments: Object.fromEntries(r.ao_marks.map((ao) => [ao.ao_id, $(`#comment-${ao.ao_id}`).value])),
    overall_comment: overall.value,
    what_went_well: www.value,
    even_better_if: ebi.value,
  });
  const savedOf = (rv) => ({
    marks: Object.fromEntries(r.ao_marks.map((ao) => [ao.ao_id, rv ? rv.marks.find((m) => m.ao_id === ao.ao_id).mark : ao.mark])),
    comments: Object.fromEntries(r.ao_marks.map((ao) => [ao.ao_id, rv ? rv.marks.find((m) => m.ao_id === ao.ao_id).comment : ""])),
    overall_comment: rv ? rv.overall_comment : "",
    what_went_well: rv?.what_went_well ?? r.feedback.what_went_well,
    even_better_if: rv?.even_better_if ?? r.feedback.even_better_if,
  });
  let saved = savedOf(review);
  const dirty = () => JSON.stringify(current()) !== JSON.stringify(saved);
  setGuard(() => document.body.contains(form) && dirty());

  const unsaved = el("p", { id: "unsaved", class: "unsaved", role: "status", hidden: true });
  const approvedBox = el("div", { id: "approved", role: "status", tabindex: "-1", hidden: true });
  const releaseBox = el("div", { id: "release", class: "release", hidden: true });
  const nextBox = el("p", { id: "after-approval", class: "after-approval", hidden: true });
  // After an approval in a class set: the next script still to approve (in the class view's order), or the set's summary.
  async function offerNext() {
    if (!marking.batch_id) return;
    let batch;
    try { batch = await api(`/v1/batches/${encodeURIComponent(marking.batch_id)}`); } catch { return; }
    if (!live() || dirty()) return;
    const next = nextUnapproved(batch, id);
    nextBox.replaceChildren(next
      ? el("a", { class: "button", id: "next-unapproved", href: `#/markings/${next.marking_id}` }, `Next unapproved in this class set (${next.external_id}) →`)
      : el("span", { id: "set-done" }, "Every marked script in this class set is approved. ",
        el("a", { href: `#/batches/${batch.id}`, id: "set-summary" }, "See the class set's summary")));
    nextBox.hidden = false;
  }
  const setRelease = async (release) => {
    showError("");
    try {
      if (release) review = await api(`/v1/markings/${encodeURIComponent(id)}/release`, { method: "POST" });
      else { await api(`/v1/markings/${encodeURIComponent(id)}/release`, { method: "DELETE" }); review = { ...review, released_at: null }; }
      status(release ? "Released to the student." : "Release withdrawn: the student no longer sees it here.");
      changed();
    } catch (err) { showError(`Could not change the release: ${sentence(err.message)}`); }
  };
  function drawRelease(isDirty) {
    releaseBox.hidden = !review || isDirty;
    if (releaseBox.hidden) return;
    releaseBox.replaceChildren(review.released_at
      ? el("p", { id: "released" }, `Released to the student at ${when(review.released_at)}. `,
        el("button", { type: "button", class: "secondary small", id: "withdraw-release", onclick: () => setRelease(false) }, "Withdraw"))
      : el("p", {}, "Approved, not yet released: the student and the LMS get nothing until you release it. ",
        el("button", { type: "button", id: "release-script", onclick: () => setRelease(true) }, "Release to the student")));
  }
  function changed() {
    const blanks = r.ao_marks.filter((ao) => $(`#mark-${ao.ao_id}`)?.value === "").map((ao) => ao.ao_id);
    const sum = Object.values(current().marks).reduce((acc, m) => acc + (m || 0), 0);
    total.textContent = (blanks.length ? `Final total: not marked yet (${blanks.join(", ")} empty) / ${r.max_total}` : `Final total: ${sum} / ${r.max_total}`)
      + (blind ? "" : ` (model draft ${r.total})`);
    revealButton.disabled = r.ao_marks.some((ao) => $(`#mark-${ao.ao_id}`)?.value === "");
    const isDirty = dirty();
    if (isDirty) nextBox.hidden = true;
    unsaved.hidden = !isDirty;
    unsaved.textContent = review ? "Unsaved changes since approval: approve again to save them." : "Unsaved changes: approve to save them.";
    if (review) {
      approvedBox.hidden = false;
      approvedBox.className = isDirty ? "approved stale" : "approved";
      approvedBox.textContent = `Approved by ${review.reviewer} at ${when(review.approved_at)}: final total ${review.total}/${review.max_total} (model draft ${review.draft_total}).`
        + (isDirty ? " The marks on the page have changed since: they are not saved." : "");
    }
    drawRelease(isDirty);
  }

  const reviewer = el("input", { id: "reviewer", value: localStorage.getItem("draftmark-reviewer") || "", required: true, autocomplete: "name" });
  // The approver's name is kept as it is typed, so moving with Alt+N / Alt+P before approving keeps it.
  reviewer.addEventListener("input", () => localStorage.setItem("draftmark-reviewer", reviewer.value));
  const dialog = el("dialog", { id: "confirm-approve", "aria-labelledby": "confirm-title" });
  const confirmFlagged = () => new Promise((resolve) => {
    if (!r.flags.length) { resolve(true); return; }
    dialog.replaceChildren(el("h3", { id: "confirm-title" }, "This script is flagged"),
      el("ul", {}, r.flags.map((f) => el("li", {}, `${FLAG_TEXT[f.code] || f.code}: ${f.detail}`))),
      el("p", {}, "Approve these marks anyway?"),
      el("p", {}, el("button", { type: "button", id: "confirm-yes", onclick: () => { dialog.close(); resolve(true); } }, "Approve"), " ",
        el("button", { type: "button", class: "secondary", id: "confirm-no", onclick: () => { dialog.close(); resolve(false); } }, "Cancel")));
    dialog.onclose = () => resolve(false);
    dialog.showModal();
    $("#confirm-no", dialog).focus();
  });
  let approving = false; // one approval at a time (a double click, a repeated key)
  async function approve(thenNext) {
    if (approving) return false;
    showError("");
    const blank = r.ao_marks.find((ao) => $(`#mark-${ao.ao_id}`).value === "");
    if (blank) { showError(`Give a mark for ${blank.ao_id} first.`); $(`#mark-${blank.ao_id}`).focus(); return false; }
    if (!reviewer.value.trim()) { showError("Enter your name under “Approved by” first."); reviewer.focus(); return false; }
    approving = true;
    if (!(await confirmFlagged())) { approving = false; status("Not approved."); approveButton.focus(); return false; }
    localStorage.setItem("draftmark-reviewer", reviewer.value);
    approveButton.disabled = true;
    try {
      const now = current();
      // Blind when the marks were entered (and kept) before the draft was shown; else the draft was in view.
      const mode = blind || (blindMarks && JSON.stringify(blindMarks) === JSON.stringify(now.marks)) ? "blind" : "anchored";
      review = await api(`/v1/markings/${encodeURIComponent(id)}/review`, { method: "POST", json: { reviewer: reviewer.value, ...now, mode } });
      if (blind && !thenNext) reveal();
      saved = savedOf(review);
      approveButton.textContent = "Approve again";
      changed();
      status(review.mode === "blind" ? "Approved and saved (marked blind)." : "Approved and saved.");
      if (thenNext && near?.next) location.hash = `#/markings/${near.next.marking_id}`;
      else { approvedBox.focus(); offerNext(); }
      return true;
    } catch (err) { showError(`Could not approve: ${sentence(err.message)} Your edits are still on the page.`); return false; }
    finally { approveButton.disabled = false; approving = false; }
  }
  const approveButton = el("button", { type: "button", id: "approve", onclick: () => approve(false) }, review ? "Approve again" : "Approve");
  const approveNext = near?.next ? el("button", { type: "button", id: "approve-next", class: "secondary", onclick: () => approve(true) }, "Approve and go to next") : "";

  const revealButton = el("button", { type: "button", id: "reveal", class: "secondary", onclick: () => reveal() }, "Show the draft");
  const blindToggle = el("input", { type: "checkbox", id: "blind-toggle", checked: blind || localStorage.getItem("draftmark-blind") === "1",
    onchange: () => { localStorage.setItem("draftmark-blind", blindToggle.checked ? "1" : "0"); } });
  const blindBar = el("div", { class: "blind-bar", id: "blind-bar" },
    el("label", { for: "blind-toggle" }, blindToggle, " Mark blind: enter your marks before the draft is shown (from the next script; your marks then count fully for calibration)"),
    el("span", { class: "blind-only", id: "blind-note" }, "The draft is hidden until you have entered every mark. "), el("span", { class: "blind-only" }, revealButton));
  function reveal() {
    if (!blind) return;
    blindMarks = current().marks;
    blind = false;
    applyBlind();
    changed();
    status("The draft is shown. Marks you keep as entered count as blind marks.");
  }
  function applyBlind() {
    $$(".model-draft", form).forEach((node) => { node.hidden = blind; });
    $$(".blind-only", form).forEach((node) => { node.hidden = !blind; });
  }

  const go = (item) => { if (item) location.hash = `#/markings/${item.marking_id}`; };
  const navBar = near ? el("nav", { class: "script-nav", "aria-label": "Scripts in this class set" },
    near.prev ? el("a", { id: "prev-script", href: `#/markings/${near.prev.marking_id}` }, `← Previous (${near.prev.external_id})`) : el("span", { class: "hint" }, "First script"),
    el("span", {}, `Script ${near.at + 1} of ${near.count} · `, el("a", { href: `#/batches/${near.batchId}` }, "class view")),
    near.next ? el("a", { id: "next-script", href: `#/markings/${near.next.marking_id}` }, `Next (${near.next.external_id}) →`) : el("span", { class: "hint" }, "Last script"),
    el("p", { class: "hint shortcuts" }, "Keys: ", el("kbd", {}, "Alt"), "+", el("kbd", {}, "N"), " next · ",
      el("kbd", {}, "Alt"), "+", el("kbd", {}, "P"), " previous · ", el("kbd", {}, "Alt"), "+", el("kbd", {}, "A"), " approve and go to next · ", el("kbd", {}, "Alt"), "+", el("kbd", {}, "K"), " comment bank (in a comment box)")) : "";
  const keys = (event) => {
    if (!event.altKey || event.ctrlKey || event.metaKey || !near || dialog.open) return;
    const action = { KeyN: () => go(near.next), KeyP: () => go(near.prev), KeyA: () => approve(true) }[event.code];
    if (action) { event.preventDefault(); action(); }
  };
  document.addEventListener("keydown", keys);
  onLeave(() => document.removeEventListener("keydown", keys));

  const form = el("form", { id: "review-form", onsubmit: (event) => event.preventDefault() },
    navBar,
    el("h2", {}, titleOf(marking)),
    blindBar,
    el("p", { class: "hint" }, `${scheme.title} · `, el("a", { href: `#/markings/${id}/sheet`, id: "sheet-link" }, "Student feedback sheet")),
    flags,
    el("div", { class: "review" },
      el("div", {},
        el("details", { class: "question", open: true }, el("summary", {}, "Question"), el("p", {}, scheme.question)),
        el("h3", {}, "Essay"), essayBox, plainEssay),
      el("div", {}, cards,
        readingFacts(r.reading),
        el("section", { class: "ao model-draft", id: "student-feedback" }, el("h3", {}, "What the student receives"),
          el("p", { class: "hint" }, "Starts from the draft; edit it as you wish. The student sees exactly this, with the marks and your comments above (",
            el("a", { href: `#/markings/${id}/sheet`, id: "student-preview" }, "preview"), ")."),
          el("label", { for: "student-www" }, "What went well"), www, bank.tools(www, "what went well"),
          el("label", { for: "student-ebi" }, "Even better if"), ebi, bank.tools(ebi, "even better if"),
          el("button", { type: "button", class: "secondary small", id: "reset-feedback", onclick: () => { www.value = r.feedback.what_went_well; ebi.value = r.feedback.even_better_if; changed(); } }, "Reset to draft"),
          r.teacher_notes ? el("p", {}, el("strong", {}, "Model's notes for you (not shown to the student): "), r.teacher_notes) : "",
          el("label", { for: "overall-comment" }, "Your overall comment"), overall, bank.tools(overall, "your overall comment")),
        el("div", { class: "model-draft", id: "calibration-line" }, calibrationLine(r.provenance.calibration, `${scheme.id}@${scheme.version}`)),
        el("div", { class: "action-bar", id: "action-bar", role: "region", "aria-label": "Total and approval" },
          el("p", { class: "totals" }, total,
            r.flags.length ? el("a", { href: "#flags", class: "bar-flags", id: "bar-flags" }, ` · ${r.flags.length} flag(s)`) : ""),
          unsaved,
          el("div", { class: "edit" }, el("div", {}, el("label", { for: "reviewer" }, "Approved by"), reviewer), approveButton, approveNext)),
        approvedBox,
        nextBox,
        releaseBox,
        exportsPanel(id))),
    dialog, bank.dialog);
  view().replaceChildren(form);
  const values = savedOf(review);
  for (const ao of r.ao_marks) {
    $(`#mark-${ao.ao_id}`).value = values.marks[ao.ao_id];
    $(`#comment-${ao.ao_id}`).value = values.comments[ao.ao_id];
  }
  overall.value = values.overall_comment;
  www.value = values.what_went_well;
  ebi.value = values.even_better_if;
  if (blind) for (const ao of r.ao_marks) $(`#mark-${ao.ao_id}`).value = "";
  applyBlind();
  cards.forEach((c) => c.update());
  if (blind) saved = current(); // empty boxes are where a blind review starts, not unsaved edits
  changed();
}
