// The class view: upload a class set as a batch, list batches, follow one live, filter and sort it,
// see where the teacher moved the drafts (per objective, and by a level or more), finish it, export.
import { FILTERS, changedByTeacher, rememberOrder, sortRows, unapproved } from "./classorder.js";
import { classExports } from "./exports.js";
import { lmsPanel } from "./lms.js";
import { $, CALIBRATION_TEXT, FLAG_TEXT, api, download, el, fillSchemePicker, progress, sentence, showError, splitScheme, status, view, when } from "./core.js";

const DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
const REFRESH_MS = 1500;
const MAX_SKIPPED = 1000; // what the server keeps with a set (schemas.class_set)

/** One printable line of at most ``max`` characters: file names and messages as the server stores them. */
function line(text, max) {
  const value = String(text ?? "");
  const whole = typeof value.toWellFormed === "function" ? value.toWellFormed() : value;
  return whole.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").replace(/\s+/g, " ").trim().slice(0, max) || "?";
}

/** The skipped files as the server takes them: {name, reason}, at most MAX_SKIPPED (the rest counted in one entry). */
function skippedForServer(skipped) {
  const cleaned = skipped.map((s) => ({ name: line(s.name, 500), reason: line(s.reason, 1000) }));
  if (cleaned.length <= MAX_SKIPPED) return cleaned;
  return [...cleaned.slice(0, MAX_SKIPPED - 1), { name: "…", reason: `${cleaned.length - MAX_SKIPPED + 1} more files not used (not listed)` }];
}

/** Essays from the chosen files: .txt/.docx one by one, a .zip or CSV unpacked by the server. */
async function essaysFrom(files, shown) {
  const essays = [], skipped = [];
  const singles = files.filter((f) => /\.(txt|docx)$/i.test(f.name));
  const sets = files.filter((f) => /\.(zip|csv)$/i.test(f.name));
  for (const f of files) if (!singles.includes(f) && !sets.includes(f)) skipped.push({ name: f.name, reason: "not a .txt, .docx, .zip or .csv file" });
  for (const f of sets) {
    shown.update(`Reading ${f.name}…`);
    const zip = /\.zip$/i.test(f.name);
    const body = await api("/v1/essays/extract-set", { method: "POST", body: f, headers: { "Content-Type": zip ? "application/zip" : "text/csv" } });
    essays.push(...body.essays.map((e) => ({ external_id: e.external_id, essay: e.text })));
    skipped.push(...body.skipped.map((s) => ({ name: `${f.name}: ${s.name}`, reason: s.reason })));
    if (body.skipped_count > body.skipped.length) skipped.push({ name: f.name, reason: `${body.skipped_count - body.skipped.length} more entries without an essay (not listed)` });
  }
  let done = 0;
  const queue = [...singles];
  const read = async () => {
    for (let f = queue.shift(); f; f = queue.shift()) {
      try {
        const docx = /\.docx$/i.test(f.name);
        const body = await api("/v1/essays/extract", { method: "POST", body: f, headers: { "Content-Type": docx ? DOCX : "text/plain" } });
        essays.push({ external_id: f.name.replace(/\.[^.]+$/, ""), essay: body.text, order: f.name });
      } catch (err) { skipped.push({ name: f.name, reason: err.message }); }
      shown.update(`Reading files: ${++done} of ${singles.length}…`);
    }
  };
  await Promise.all([read(), read(), read(), read()]);
  essays.sort((a, b) => (a.order && b.order ? a.order.localeCompare(b.order, undefined, { numeric: true }) : 0));
  const taken = new Set();
  for (const e of essays) {
    delete e.order;
    let name = e.external_id, n = 2;
    while (taken.has(name)) name = `${e.external_id} (${n++})`;
    taken.add(name); e.external_id = name;
  }
  return { essays, skipped };
}

export async function renderBatches() {
  view().replaceChildren($("#batches-template").content.cloneNode(true));
  const select = $("#set-scheme"), form = $("#set-form"), list = $("#batch-list");
  let schemes = [];
  try { schemes = await fillSchemePicker(select); } catch (err) { showError(`Could not load mark schemes: ${err.message}`); }
  const titles = new Map(schemes.map((s) => [`${s.id}@${s.version}`, s.title]));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const files = [...$("#set-files").files];
    if (!files.length) { showError("Choose the class set's files first."); return; }
    const [schemeId, version] = splitScheme(select.value);
    const button = $("#upload-set");
    button.disabled = true;
    const shown = progress("Reading files…");
    try {
      const { essays, skipped } = await essaysFrom(files, shown);
      if (!essays.length) { showError("No essays were found in those files.", skipped.map((s) => `${s.name}: ${s.reason}`)); return; }
      shown.update(`Queueing ${essays.length} scripts…`);
      const body = { scheme_id: schemeId, scheme_version: version, items: essays, skipped: skippedForServer(skipped) };
      const name = $("#set-name").value.trim();
      if (name) body.name = name;
      const batch = await api("/v1/batches", { method: "POST", json: body });
      location.hash = `#/batches/${batch.id}`;
    } catch (err) { showError(`Could not upload the class set: ${err.message}`, err.items || []); }
    finally { shown.done(); button.disabled = false; }
  });
  let batches;
  try { batches = await api("/v1/batches"); } catch (err) { showError(`Could not list batches: ${err.message}`); return; }
  if (!batches.length) { list.replaceChildren(el("p", { class: "empty" }, "No class sets yet: upload one above.")); return; }
  list.replaceChildren(el("table", { id: "batches-table" },
    el("thead", {}, el("tr", {}, ["Class set", "Scheme", "Uploaded", "Scripts", "Marked", "Approved", "Status"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, batches.map((b) => el("tr", {},
      el("td", {}, el("a", { href: `#/batches/${b.id}` }, b.name || `Unnamed set of ${when(b.created_at)}`)),
      el("td", {}, titles.get(`${b.scheme_id}@${b.scheme_version}`) || b.scheme_id), el("td", {}, when(b.created_at)),
      el("td", {}, b.counts.total), el("td", {}, b.counts.done), el("td", {}, b.counts.approved),
      el("td", {}, b.status.replaceAll("_", " ")))))));
}

function objectiveCell(o) {
  if (!o) return "—";
  if (o.approved_mark === null) return el("span", { title: "model draft" }, `${o.draft_mark}`);
  const delta = o.approved_mark - o.draft_mark;
  return el("span", { class: delta ? "moved" : "kept", title: `draft ${o.draft_mark}, approved ${o.approved_mark}` },
    `${o.draft_mark} → ${o.approved_mark}` + (delta ? ` (${delta > 0 ? "+" : ""}${delta})` : ""));
}

/** The teacher's own measure of the drafts: how often approval changed them, and by how much. */
function moderation(marks) {
  const approved = marks.items.filter((i) => i.reviewer !== null);
  const section = el("section", { id: "moderation", "aria-labelledby": "moderation-h" }, el("h3", { id: "moderation-h" }, "Moderation"));
  if (!approved.length) { section.append(el("p", { class: "empty" }, "No approved scripts yet: the figures appear as you approve.")); return section; }
  const ids = approved[0].objectives.map((o) => o.ao_id);
  const rows = ids.map((ao) => {
    const pairs = approved.map((i) => i.objectives.find((o) => o.ao_id === ao));
    const changed = pairs.filter((o) => o.approved_mark !== o.draft_mark).length;
    const levels = pairs.filter((o) => o.approved_level !== o.draft_level).length;
    return el("tr", { "data-ao": ao }, el("th", { scope: "row" }, ao),
      el("td", {}, `${changed} of ${pairs.length} (${Math.round((100 * changed) / pairs.length)}%)`),
      el("td", {}, `${levels}`));
  });
  const moved = approved.flatMap((i) => i.objectives.filter((o) => o.approved_level !== o.draft_level)
    .map((o) => el("li", {}, el("a", { href: `#/markings/${i.marking_id}` }, i.external_id),
      `: ${o.ao_id} level ${o.draft_level} → ${o.approved_level} (mark ${o.draft_mark} → ${o.approved_mark})`)));
  section.append(
    el("p", { class: "hint" }, `${approved.length} approved script(s). The share of approvals that changed the model's draft, per objective:`),
    el("table", { id: "moderation-table" }, el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Objective"),
      el("th", { scope: "col" }, "Draft changed"), el("th", { scope: "col" }, "Moved a level or more"))), el("tbody", {}, rows)),
    el("h4", {}, "Scripts moved by a level or more"),
    moved.length ? el("ul", { id: "moved" }, moved) : el("p", { class: "empty", id: "moved" }, "None: every approved mark stayed in the draft's level."));
  return section;
}

/** Unreadable files sent with the set, listed with their reasons until the teacher dismisses them. */
function skippedNotice(batch, onDismiss) {
  const files = batch.skipped || [];
  if (!files.length) return "";
  if (batch.skipped_dismissed_at) {
    return el("p", { id: "skipped-dismissed", class: "hint" }, `${files.length} file(s) sent with this set were not used (dismissed ${when(batch.skipped_dismissed_at)}).`);
  }
  return el("section", { id: "skipped-files", class: "notice", "aria-labelledby": "skipped-h" },
    el("h3", { id: "skipped-h" }, `${files.length} file(s) in this class set were not used`),
    el("p", {}, "No essay could be read from these. Mark them by hand, or save them as .txt or .docx and upload them as a new set."),
    el("ul", {}, files.map((f) => el("li", {}, el("strong", {}, f.name), `: ${sentence(f.reason)}`))),
    el("button", { type: "button", class: "secondary", id: "dismiss-skipped", onclick: onDismiss }, "Dismiss"));
}

/** The cue after the last approval: what was done to the set, and the next step. */
function finishedSummary(batch, rows, { onRelease }) {
  const marked = rows.filter((r) => r.marking_id && r.draft_total !== null);
  if (!batch.status.startsWith("done") || !marked.length || marked.some(unapproved)) return "";
  const changed = marked.filter((r) => r.changed).length;
  const released = marked.filter((r) => r.released).length;
  const mean = (key) => (marked.reduce((sum, r) => sum + r[key], 0) / marked.length).toFixed(1);
  const max = marked[0].marks?.objectives.reduce((sum, o) => sum + o.max_marks, 0);
  const failed = batch.counts.failed;
  const lms = () => {
    const panel = $("#lms-panel");
    if (!panel) return;
    panel.setAttribute("tabindex", "-1");
    panel.scrollIntoView({ block: "start" });
    panel.focus({ preventScroll: true });
  };
  return el("section", { id: "set-finished", class: "finished", "aria-labelledby": "set-finished-h" },
    el("h3", { id: "set-finished-h" }, "Set finished: every marked script is approved"),
    el("ul", {},
      el("li", { id: "finished-approved" }, `${marked.length} script(s) approved` + (failed ? `; ${failed} could not be marked (retry them or mark them by hand)` : "")),
      el("li", { id: "finished-changed" }, `${changed} changed by you (a total or an objective's mark other than the draft's)`),
      el("li", { id: "finished-means" }, `Mean total: draft ${mean("draft_total")}, approved ${mean("approved_total")}` + (max ? ` (out of ${max})` : "")),
      el("li", { id: "finished-released" }, `Released to students: ${released} of ${marked.length}`)),
    released < marked.length
      ? el("p", {}, "Next: release the approved scripts, so students and your LMS receive them. ",
        el("button", { type: "button", id: "finished-release", "data-focus": "finished-next", onclick: onRelease }, "Release approved scripts"))
      : el("p", {}, "Next: send the marks to your LMS, or download the class report below. ",
        el("button", { type: "button", id: "finished-lms", "data-focus": "finished-next", onclick: lms }, "Send to the LMS")));
}

export async function renderBatch(id, { onLeave, live }) {
  let timer = null, sortKey = "external_id", ascending = true, filter = "all";
  onLeave(() => clearTimeout(timer));
  const notice = el("div"), head = el("div"), done = el("div"), body = el("div"), mod = el("div");
  view().replaceChildren(el("h2", { id: "batch-title", tabindex: "-1" }, "Class view"), notice, head, done, body, mod);
  let calibration = "", schemeTitle = "";
  const load = () => Promise.all([api(`/v1/batches/${encodeURIComponent(id)}`), api(`/v1/batches/${encodeURIComponent(id)}/marks`)]);
  // Redrawn from fresh figures (after a release); the answer is dropped if the teacher has moved on.
  const reload = async () => { try { const [batch, marks] = await load(); if (live()) draw(batch, marks); } catch (err) { showError(`Could not refresh the class set: ${err.message}`); } };
  const dismiss = async () => {
    try {
      const batch = await api(`/v1/batches/${encodeURIComponent(id)}/skipped/dismiss`, { method: "POST" });
      notice.replaceChildren(skippedNotice(batch, dismiss));
      status("Dismissed: the files not used are no longer listed here.");
      $("#batch-title").focus({ preventScroll: true });
    } catch (err) { showError(`Could not dismiss the list: ${err.message}`); }
  };
  const draw = (batch, marks) => {
    // A redraw replaces the controls: the one the teacher was using gets the focus back.
    const focused = document.activeElement?.dataset?.focus;
    const byMarking = Object.fromEntries(marks.items.map((m) => [m.marking_id, m]));
    const aoIds = marks.items[0]?.objectives.map((o) => o.ao_id) || [];
    const c = batch.counts, finished = batch.status.startsWith("done");
    $("#batch-title").textContent = `${batch.name || `Class set uploaded ${when(batch.created_at)}`} · ${schemeTitle || batch.scheme_id}`;
    head.replaceChildren(
      el("p", { id: "batch-progress" }, `${c.total} scripts: ${c.done} marked, ${c.failed} failed, ${c.queued + c.running} in progress.`,
        finished ? "" : el("progress", { max: c.total, value: c.done + c.failed, "aria-label": "Marking progress" })),
      calibration ? el("p", { id: "batch-calibration", class: "hint" }, "Calibration: ", calibration, " ",
        el("a", { href: `#/calibration/${batch.scheme_id}@${batch.scheme_version}` }, "manage")) : "");
    const columns = [["external_id", "Student / submission"], ["status", "Status"], ["draft_total", "Draft total"], ["approved_total", "Approved total"]];
    const all = batch.items.map((item, position) => {
      const marked = byMarking[item.marking_id];
      return { ...item, position, marks: marked, changed: changedByTeacher(item, marked) };
    });
    const sorted = sortRows(all, sortKey, ascending);
    rememberOrder(id, sorted);
    const test = FILTERS.find(([key]) => key === filter)[2];
    const rows = sorted.filter(test);
    const next = rows.find(unapproved) || sorted.find(unapproved);
    const sortButton = (key, label) => el("button", { type: "button", "data-focus": `sort-${key}`, onclick: () => { ascending = sortKey === key ? !ascending : true; sortKey = key; draw(batch, marks); } }, label);
    const sortState = (key) => (key === sortKey ? (ascending ? "ascending" : "descending") : "none");
    const header = el("tr", {}, columns.map(([key, label]) => el("th", { scope: "col", "data-key": key, "aria-sort": sortState(key) }, sortButton(key, label))),
      aoIds.map((ao) => el("th", { scope: "col", title: "draft → approved" }, ao)),
      el("th", { scope: "col" }, "Calibration"), el("th", { scope: "col", "data-key": "flags", "aria-sort": sortState("flags") }, sortButton("flags", "Flags")));
    const filters = el("div", { class: "filters", id: "filters", role: "group", "aria-label": "Show" },
      FILTERS.map(([key, label, pick, description]) => el("button", {
        type: "button", class: "secondary small", "data-filter": key, "data-focus": `filter-${key}`, "aria-pressed": String(key === filter), title: description,
        onclick: () => { filter = key; draw(batch, marks); },
      }, `${label} (${sorted.filter(pick).length})`)),
      next ? el("a", { class: "button small", id: "next-unapproved", "data-focus": "next", href: `#/markings/${next.marking_id}` }, `Next unapproved: ${next.external_id}`) : "");
    done.replaceChildren(finishedSummary(batch, all, { onRelease: () => releaseAll(id, reload) }));
    body.replaceChildren(batch.items.length ? filters : "", batch.items.length ? el("table", { id: "batch-table" },
      el("caption", { class: "hint" }, "Select a column heading to sort. Objective columns show the draft mark, then the approved one."),
      el("thead", {}, header),
      el("tbody", {}, rows.length ? rows.map((item) => el("tr", { "data-id": item.external_id },
        el("td", {}, item.marking_id ? el("a", { href: `#/markings/${item.marking_id}` }, item.external_id) : item.external_id),
        el("td", {}, item.status + (item.error ? ` (${item.error.message})` : "")),
        el("td", {}, item.draft_total ?? "—"), el("td", {}, item.approved_total ?? "—"),
        aoIds.map((ao) => el("td", { "data-ao": ao }, objectiveCell(item.marks?.objectives.find((o) => o.ao_id === ao)))),
        el("td", {}, item.marks ? CALIBRATION_TEXT[item.marks.calibration] || item.marks.calibration : "—"),
        el("td", {}, item.flags.map((f) => FLAG_TEXT[f] || f).join(", "))))
        : el("tr", {}, el("td", { colspan: String(columns.length + aoIds.length + 2), class: "empty", id: "no-match" }, "No script matches this filter."))))
      : el("p", { class: "empty" }, "This batch has no scripts."),
    el("p", { class: "actions" },
      el("button", { type: "button", id: "release-all", onclick: () => releaseAll(id, reload) }, `Release approved scripts (${batch.items.filter((i) => i.approved_total !== null).length})`), " ",
      el("button", { type: "button", class: "secondary", id: "export-csv", onclick: () => exportCsv(id) }, "Class report (CSV)"), " ",
      el("button", { type: "button", class: "secondary", id: "export-approved", onclick: () => exportApproved(batch.scheme_id) }, "Export approved scripts as an eval dataset"), " ",
      el("a", { class: "button secondary", id: "print-all", href: `#/batches/${id}/sheets` }, "Feedback sheets (print all)")),
    classExports(id),
    finished ? lmsPanel(id, batch.items) : "");
    mod.replaceChildren(moderation(marks));
    if (focused) view().querySelector(`[data-focus="${focused}"]`)?.focus();
    return finished;
  };
  const refresh = async (first) => {
    let batch, marks;
    try {
      [batch, marks] = await load();
      if (first) {
        const [cal, scheme] = await Promise.all([
          api(`/v1/schemes/${encodeURIComponent(batch.scheme_id)}/calibration?version=${encodeURIComponent(batch.scheme_version)}`).catch(() => null),
          api(`/v1/schemes/${encodeURIComponent(batch.scheme_id)}?version=${encodeURIComponent(batch.scheme_version)}`).catch(() => null)]);
        calibration = cal ? sentence(cal.message) : "";
        schemeTitle = scheme?.title || "";
      }
    } catch (err) {
      if (first) { view().replaceChildren(el("p", {}, el("a", { href: "#/batches" }, "All class sets"))); showError(`Could not open batch ${id}: ${err.message}`); }
      else timer = setTimeout(() => refresh(false), REFRESH_MS * 2);
      return;
    }
    if (!live()) return;
    if (first) notice.replaceChildren(skippedNotice(batch, dismiss));
    const finished = draw(batch, marks);
    if (!finished) timer = setTimeout(() => refresh(false), REFRESH_MS);
    else if (!first) status(`All ${batch.counts.total} scripts are marked.`);
  };
  await refresh(true);
}

async function releaseAll(id, then) {
  showError("");
  try {
    const done = await api(`/v1/batches/${encodeURIComponent(id)}/release`, { method: "POST" });
    status(`${done.released} script(s) released to students.` + (done.not_approved.length ? ` Not approved yet (not released): ${done.not_approved.join(", ")}.` : ""));
    await then();
  } catch (err) { showError(`Release failed: ${err.message}`); }
}

async function exportCsv(id) {
  try { download(await api(`/v1/batches/${id}/export.csv`), "text/csv", `${id}.csv`); }
  catch (err) { showError(`Export failed: ${err.message}`); }
}

async function exportApproved(schemeId) {
  try { download(await api(`/v1/reviews/export.jsonl?scheme_id=${encodeURIComponent(schemeId)}`), "application/x-ndjson", "approved.jsonl"); }
  catch (err) { showError(`Export failed: ${err.message}`); }
}
