// draftmark teacher page: a thin client of the REST API (/v1). No framework, no CDN.
"use strict";

const LOUD = new Set(["needs_review", "indicative_model", "possible_prompt_injection"]);
const FLAG_TEXT = {
  needs_review: "Needs review",
  indicative_model: "Indicative model: not a reliable marker",
  possible_prompt_injection: "Possible prompt injection",
  too_short: "Too short",
  off_topic: "Off topic",
  inconsistent_samples: "Samples disagree",
  calibration_check: "Check the calibrated mark",
};
const $ = (sel, root = document) => root.querySelector(sel);
const view = () => $("#view");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
  if (message) box.focus?.();
}
function status(message) { $("#status").textContent = message || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = localStorage.getItem("draftmark-key");
  if (key) headers.Authorization = `Bearer ${key}`;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  let response;
  try {
    response = await fetch(path, Object.assign({}, options, { headers }));
  } catch (err) {
    throw new Error("The draftmark server could not be reached. Check your connection and try again.");
  }
  const type = (response.headers.get("content-type") || "").split(";")[0].trim();
  // Only a JSON document is parsed: application/x-ndjson (one document a line) is text.
  const isJson = type === "application/json" || type.endsWith("+json");
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`;
    if (isJson) { const body = await response.json(); detail = body.detail || body.title || detail; }
    if (response.status === 401) detail += " — enter your API key under “API key” at the top of the page.";
    const retry = response.headers.get("retry-after");
    if (retry) detail += ` You can retry in about ${retry} s.`;
    throw new Error(detail);
  }
  return isJson ? response.json() : response.text();
}

// ---------------------------------------------------------------- mark an essay
async function renderMark() {
  view().replaceChildren($("#mark-template").content.cloneNode(true));
  const essay = $("#essay"), select = $("#scheme"), form = $("#mark-form");
  essay.value = localStorage.getItem("draftmark-draft") || "";
  essay.addEventListener("input", () => localStorage.setItem("draftmark-draft", essay.value));
  try {
    const schemes = await api("/v1/schemes");
    if (!schemes.length) select.append(el("option", { value: "" }, "No schemes registered"));
    for (const s of schemes) select.append(el("option", { value: `${s.id}@${s.version}` }, `${s.title} (${s.total_marks} marks)`));
    select.value = localStorage.getItem("draftmark-scheme") || select.value;
  } catch (err) { showError(`Could not load mark schemes: ${err.message}`); }
  $("#scheme-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError("");
    try {
      const saved = await api("/v1/schemes/import", { method: "POST", body: await file.text(), headers: { "Content-Type": "application/yaml" } });
      const value = `${saved.id}@${saved.version}`;
      if (![...select.options].some((o) => o.value === value)) select.append(el("option", { value }, `${saved.id} ${saved.version} (uploaded)`));
      select.value = value;
      status(`Mark scheme ${saved.id} ${saved.version} ${saved.created ? "registered" : "already registered"} and selected.`);
    } catch (err) { showError(`Could not use ${file.name}: ${err.message}`); }
  });
  $("#file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError("");
    const docx = file.name.toLowerCase().endsWith(".docx");
    try {
      const body = await api("/v1/essays/extract", {
        method: "POST", body: file,
        headers: { "Content-Type": docx ? "application/vnd.openxmlformats-officedocument.wordprocessingml.document" : "text/plain" },
      });
      essay.value = body.text;
      localStorage.setItem("draftmark-draft", essay.value);
      status(`Loaded ${file.name}.`);
    } catch (err) { showError(`Could not read ${file.name}: ${err.message}`); }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const [schemeId, version] = select.value.split("@");
    localStorage.setItem("draftmark-scheme", select.value);
    const button = $("#mark");
    button.disabled = true;
    status("Marking… the model is reading the essay. A local model can take a minute or two.");
    try {
      const body = { essay: essay.value, scheme_id: schemeId, scheme_version: version };
      const ext = $("#external-id").value.trim();
      if (ext) body.external_id = ext;
      const marking = await api("/v1/markings", { method: "POST", json: body });
      localStorage.removeItem("draftmark-draft");
      status("");
      location.hash = `#/markings/${marking.id}`;
    } catch (err) {
      status("");
      showError(`Marking failed: ${err.message} Your essay text is still here.`);
    } finally { button.disabled = false; }
  });
}

// ---------------------------------------------------------------- review
function highlightedEssay(text, marks) {
  const spans = [];
  for (const ao of marks) ao.evidence.forEach((ev, i) => spans.push({ start: ev.start, end: ev.end, ao: ao.ao_id, id: `ev-${ao.ao_id}-${i}` }));
  const cuts = new Set([0, text.length]);
  for (const s of spans) { cuts.add(s.start); cuts.add(s.end); }
  const points = [...cuts].sort((a, b) => a - b);
  const container = el("div", { class: "essay", id: "essay-text", tabindex: "0", "aria-label": "Essay with highlighted evidence" });
  const started = new Set();
  for (let i = 0; i < points.length - 1; i++) {
    const [a, b] = [points[i], points[i + 1]];
    const covering = spans.filter((s) => s.start <= a && s.end >= b);
    const piece = text.slice(a, b);
    if (!covering.length) { container.append(piece); continue; }
    const first = covering.find((s) => !started.has(s.id));
    if (first) started.add(first.id);
    const aos = [...new Set(covering.map((s) => s.ao))];
    container.append(el("mark", {
      id: first ? first.id : null, class: aos.length > 1 ? "multi" : null, tabindex: first ? "-1" : null,
      "data-ao": aos.join(" "), title: `Evidence for ${aos.join(", ")}`,
    }, piece));
  }
  return container;
}

function levelFor(objective, mark) {
  return objective.levels.find((lv) => lv.min_mark <= mark && mark <= lv.max_mark);
}

async function renderReview(id) {
  view().replaceChildren(el("p", {}, "Loading…"));
  let marking, scheme;
  try {
    marking = await api(`/v1/markings/${encodeURIComponent(id)}`);
    const p = marking.result.provenance;
    scheme = await api(`/v1/schemes/${encodeURIComponent(p.scheme_id)}?version=${encodeURIComponent(p.scheme_version)}`);
  } catch (err) { view().replaceChildren(); showError(`Could not open marking ${id}: ${err.message}`); return; }
  const essayText = marking.essay ?? "";
  const r = marking.result, review = marking.review;
  const objectives = Object.fromEntries(scheme.objectives.map((o) => [o.id, o]));
  const flags = el("ul", { class: "flags", "aria-label": "Flags" },
    r.flags.map((f) => el("li", { class: `flag ${LOUD.has(f.code) ? "loud" : ""}` }, `${FLAG_TEXT[f.code] || f.code}: ${f.detail}`)));
  const total = el("output", { id: "total", "aria-live": "polite" });
  const cards = r.ao_marks.map((ao) => {
    const objective = objectives[ao.ao_id];
    const reviewed = review?.marks.find((m) => m.ao_id === ao.ao_id);
    const input = el("input", { type: "number", id: `mark-${ao.ao_id}`, min: objective.levels[0].min_mark, max: ao.max_marks,
      value: reviewed ? reviewed.mark : ao.mark, required: true, "aria-describedby": `level-${ao.ao_id}` });
    const level = el("output", { id: `level-${ao.ao_id}`, class: "level", for: `mark-${ao.ao_id}` });
    const update = () => {
      let value = Number(input.value);
      if (!Number.isFinite(value)) value = ao.mark;
      const clamped = Math.min(Math.max(Math.round(value), Number(input.min)), Number(input.max));
      if (clamped !== value) input.value = clamped;
      const lv = levelFor(objective, clamped);
      level.textContent = `Level ${lv.level} (${lv.min_mark}–${lv.max_mark})`;
      updateTotal();
    };
    input.addEventListener("input", update);
    input.addEventListener("change", update);
    const quotes = el("ul", { class: "quotes" }, ao.evidence.map((ev, i) => el("li", {},
      el("a", { href: `#ev-${ao.ao_id}-${i}`, onclick: (e) => { e.preventDefault(); const m = document.getElementById(`ev-${ao.ao_id}-${i}`);
        document.querySelectorAll("mark.active").forEach((x) => x.classList.remove("active")); m.classList.add("active");
        m.scrollIntoView({ block: "center" }); m.focus(); } }, `“${ev.quote}”`))));
    const card = el("section", { class: "ao", "aria-labelledby": `h-${ao.ao_id}` },
      el("h3", { id: `h-${ao.ao_id}` }, `${ao.ao_id} · ${ao.ao_name}`),
      el("p", { class: "draft" }, `Model draft: level ${ao.level}, ${ao.mark}/${ao.max_marks}` + (ao.sample_marks.length ? ` (samples ${ao.sample_marks.join(", ")})` : "")),
      el("div", { class: "edit" }, el("div", {}, el("label", { for: `mark-${ao.ao_id}` }, `Final mark (0–${ao.max_marks})`), input), level),
      el("p", {}, ao.rationale),
      ao.evidence.length ? el("div", {}, el("strong", {}, "Evidence"), quotes) : el("p", { class: "empty" }, "No quotation given."),
      ao.strengths.length ? el("div", {}, el("strong", {}, "Strengths"), el("ul", {}, ao.strengths.map((s) => el("li", {}, s)))) : "",
      ao.improvements.length ? el("div", {}, el("strong", {}, "Next steps"), el("ul", {}, ao.improvements.map((s) => el("li", {}, s)))) : "",
      el("label", { for: `comment-${ao.ao_id}` }, "Your comment"),
      el("textarea", { id: `comment-${ao.ao_id}`, rows: "2" }, reviewed ? reviewed.comment : ""));
    card.update = update;
    return card;
  });
  function updateTotal() {
    const sum = r.ao_marks.reduce((acc, ao) => acc + Number($(`#mark-${ao.ao_id}`).value || 0), 0);
    total.textContent = `Final total: ${sum} / ${r.max_total} (model draft ${r.total})`;
  }
  const approvedBox = el("div", { id: "approved", role: "status" });
  const showApproved = (rv) => {
    approvedBox.className = "approved";
    approvedBox.textContent = `Approved by ${rv.reviewer} at ${new Date(rv.approved_at).toLocaleString()}: final total ${rv.total}/${rv.max_total} (model draft ${rv.draft_total}).`;
  };
  const reviewer = el("input", { id: "reviewer", value: localStorage.getItem("draftmark-reviewer") || "", required: true, autocomplete: "name" });
  const approve = el("button", { type: "submit", id: "approve" }, review ? "Approve again" : "Approve");
  const form = el("form", { id: "review-form", onsubmit: async (event) => {
    event.preventDefault();
    showError("");
    localStorage.setItem("draftmark-reviewer", reviewer.value);
    const marks = {}, comments = {};
    for (const ao of r.ao_marks) { marks[ao.ao_id] = Number($(`#mark-${ao.ao_id}`).value); comments[ao.ao_id] = $(`#comment-${ao.ao_id}`).value; }
    approve.disabled = true;
    try {
      const saved = await api(`/v1/markings/${encodeURIComponent(id)}/review`, { method: "POST",
        json: { reviewer: reviewer.value, marks, comments, overall_comment: $("#overall-comment").value } });
      showApproved(saved);
      status("Approved and saved.");
    } catch (err) { showError(`Could not approve: ${err.message} Your edits are still on the page.`); }
    finally { approve.disabled = false; }
  } },
    el("h2", {}, `Review ${marking.external_id || marking.id}`),
    flags,
    el("div", { class: "review" },
      el("div", {}, el("h3", {}, "Essay"), highlightedEssay(essayText, r.ao_marks)),
      el("div", {}, cards,
        el("section", { class: "ao" }, el("h3", {}, "Feedback for the student"),
          el("p", {}, el("strong", {}, "What went well: "), r.feedback.what_went_well),
          el("p", {}, el("strong", {}, "Even better if: "), r.feedback.even_better_if),
          r.teacher_notes ? el("p", {}, el("strong", {}, "Model's notes for you: "), r.teacher_notes) : "",
          el("label", { for: "overall-comment" }, "Your overall comment"),
          el("textarea", { id: "overall-comment", rows: "3" }, review ? review.overall_comment : "")),
        el("p", { class: "totals" }, total),
        el("div", { class: "edit" }, el("div", {}, el("label", { for: "reviewer" }, "Approved by"), reviewer), approve),
        approvedBox,
        exportsPanel(id))));
  view().replaceChildren(form);
  cards.forEach((c) => c.update());
  if (review) showApproved(review);
}

function exportsPanel(id) {
  const user = el("input", { id: "lti-user", placeholder: "LTI user id" });
  const open = (path) => async () => {
    showError("");
    try {
      const body = await api(path());
      const blob = new Blob([JSON.stringify(body, null, 2)], { type: "application/json" });
      const link = el("a", { href: URL.createObjectURL(blob), download: `${id}-${path().split("/").pop().split("?")[0]}.json` });
      document.body.append(link); link.click(); link.remove();
      status("Export downloaded.");
    } catch (err) { showError(`Export failed: ${err.message}`); }
  };
  return el("section", { class: "exports", "aria-label": "Export" },
    el("button", { type: "button", class: "secondary", id: "export-moodle", onclick: open(() => `/v1/markings/${id}/exports/moodle`) }, "Moodle"),
    el("button", { type: "button", class: "secondary", id: "export-canvas", onclick: open(() => `/v1/markings/${id}/exports/canvas`) }, "Canvas"),
    el("div", {}, el("label", { for: "lti-user" }, "LTI user id"), user),
    el("button", { type: "button", class: "secondary", id: "export-lti", onclick: open(() => `/v1/markings/${id}/exports/lti-score?user_id=${encodeURIComponent(user.value)}`) }, "LTI score"));
}

// ---------------------------------------------------------------- class view
function renderBatchPicker() {
  view().replaceChildren($("#batches-template").content.cloneNode(true));
  $("#batch-form").addEventListener("submit", (event) => { event.preventDefault(); location.hash = `#/batches/${$("#batch-id").value.trim()}`; });
}

async function renderBatch(id) {
  let batch;
  try { batch = await api(`/v1/batches/${encodeURIComponent(id)}`); }
  catch (err) { renderBatchPicker(); showError(`Could not open batch ${id}: ${err.message}`); return; }
  const columns = [["external_id", "Student / submission"], ["status", "Status"], ["draft_total", "Draft total"],
    ["approved_total", "Approved total"], ["flags", "Flags"]];
  let sortKey = "external_id", ascending = true;
  const tbody = el("tbody");
  const headRow = el("tr");
  const draw = () => {
    const rows = [...batch.items].sort((a, b) => {
      const x = a[sortKey] ?? "", y = b[sortKey] ?? "";
      const cmp = Array.isArray(x) ? x.length - y.length : (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y)));
      return ascending ? cmp : -cmp;
    });
    tbody.replaceChildren(...rows.map((item) => el("tr", {},
      el("td", {}, item.marking_id ? el("a", { href: `#/markings/${item.marking_id}` }, item.external_id) : item.external_id),
      el("td", {}, item.status + (item.error ? ` (${item.error.message})` : "")),
      el("td", {}, item.draft_total ?? "—"), el("td", {}, item.approved_total ?? "—"),
      el("td", {}, item.flags.map((f) => FLAG_TEXT[f] || f).join(", ")))));
    headRow.querySelectorAll("th").forEach((th) => th.setAttribute("aria-sort", th.dataset.key === sortKey ? (ascending ? "ascending" : "descending") : "none"));
  };
  for (const [key, label] of columns) {
    headRow.append(el("th", { scope: "col", "data-key": key }, el("button", { type: "button", onclick: () => {
      ascending = sortKey === key ? !ascending : true; sortKey = key; draw(); } }, label)));
  }
  const download = async () => {
    try {
      const text = await api(`/v1/batches/${id}/export.csv`);
      const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "text/csv" })), download: `${id}.csv` });
      document.body.append(link); link.click(); link.remove();
    } catch (err) { showError(`Export failed: ${err.message}`); }
  };
  const c = batch.counts;
  view().replaceChildren(
    el("h2", {}, `Class view · ${batch.scheme_id}`),
    el("p", {}, `${c.total} scripts: ${c.done} marked, ${c.failed} failed, ${c.queued + c.running} in progress.`),
    batch.items.length ? el("table", { id: "batch-table" }, el("caption", { class: "hint" }, "Select a column heading to sort."), el("thead", {}, headRow), tbody)
      : el("p", { class: "empty" }, "This batch has no scripts."),
    el("p", {}, el("button", { type: "button", class: "secondary", id: "export-csv", onclick: download }, "Export CSV"), " ",
      el("button", { type: "button", class: "secondary", id: "export-approved", onclick: async () => {
        try {
          const text = await api(`/v1/reviews/export.jsonl?scheme_id=${encodeURIComponent(batch.scheme_id)}`);
          const link = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-ndjson" })), download: "approved.jsonl" });
          document.body.append(link); link.click(); link.remove();
        } catch (err) { showError(`Export failed: ${err.message}`); } } }, "Export approved scripts as an eval dataset")));
  if (batch.items.length) draw();
}

// ---------------------------------------------------------------- routing
async function route() {
  showError(""); status("");
  const hash = location.hash || "#/";
  let match;
  if ((match = hash.match(/^#\/markings\/([\w-]+)$/))) await renderReview(match[1]);
  else if ((match = hash.match(/^#\/batches\/([\w-]+)$/))) await renderBatch(match[1]);
  else if (hash === "#/batches") renderBatchPicker();
  else await renderMark();
  $("#main").focus({ preventScroll: true });
}

document.addEventListener("DOMContentLoaded", () => {
  const keyInput = $("#api-key");
  keyInput.value = localStorage.getItem("draftmark-key") || "";
  $("#save-key").addEventListener("click", () => { localStorage.setItem("draftmark-key", keyInput.value.trim()); status("API key saved in this browser."); route(); });
  if (document.body.dataset.authDisabled === "true") $("#key-box").hidden = true;
  window.addEventListener("hashchange", route);
  route();
});
