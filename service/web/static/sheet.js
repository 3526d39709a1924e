// Student feedback sheets: a clean page per student (no editing controls), printed by the browser.
import { api, el, showError, view } from "./core.js";

// Rendered from GET /v1/markings/{id}/student: the one definition of what the student receives.
function sheet(marking, scheme, student) {
  const when = student.approved_at ? new Date(student.approved_at).toLocaleDateString() : "";
  const comments = student.marks.filter((m) => m.comment);
  return el("article", { class: "sheet", "data-marking": marking.id },
    el("h2", {}, marking.external_id || "Student"),
    el("p", { class: "sheet-scheme" }, scheme.title, when ? ` · ${when}` : ""),
    el("p", { class: "sheet-question" }, scheme.question),
    student.source === "approved" ? "" : el("p", { class: "draft-banner" }, "Draft: these marks have not been approved by your teacher yet."),
    el("table", { class: "sheet-marks" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Objective"), el("th", { scope: "col" }, "Level"), el("th", { scope: "col" }, "Mark"))),
      el("tbody", {}, student.marks.map((m) => el("tr", {}, el("td", {}, `${m.ao_id} · ${m.ao_name}`), el("td", {}, m.level),
        el("td", {}, `${m.mark} / ${m.max_marks}`)))),
      el("tfoot", {}, el("tr", {}, el("th", { scope: "row", colspan: "2" }, "Total"),
        el("td", { class: "sheet-total" }, `${student.total} / ${student.max_total}`)))),
    el("h3", {}, "What went well"), el("p", { class: "sheet-www" }, student.what_went_well),
    el("h3", {}, "Even better if"), el("p", { class: "sheet-ebi" }, student.even_better_if),
    student.teacher_note || comments.length ? el("h3", {}, "Your teacher's comments") : "",
    student.teacher_note ? el("p", {}, student.teacher_note) : "",
    comments.length ? el("ul", {}, comments.map((m) => el("li", {}, el("strong", {}, `${m.ao_id}: `), m.comment))) : "",
    student.label ? el("p", { class: "sheet-label" }, student.label) : "");
}

const studentOf = (id) => api(`/v1/markings/${encodeURIComponent(id)}/student?preview=true`);

const printBar = (back, note) => el("div", { class: "no-print sheet-bar" },
  el("a", { href: back }, "← Back"), " ",
  el("button", { type: "button", id: "print", onclick: () => window.print() }, "Print"),
  note ? el("p", { class: "hint" }, note) : "");

const schemes = new Map();
async function schemeOf(result) {
  const key = `${result.provenance.scheme_id}@${result.provenance.scheme_version}`;
  if (!schemes.has(key)) {
    schemes.set(key, api(`/v1/schemes/${encodeURIComponent(result.provenance.scheme_id)}?version=${encodeURIComponent(result.provenance.scheme_version)}`));
  }
  return schemes.get(key);
}

export async function renderSheet(id) {
  try {
    const marking = await api(`/v1/markings/${encodeURIComponent(id)}`);
    view().replaceChildren(printBar(`#/markings/${id}`), el("div", { id: "sheets" }, sheet(marking, await schemeOf(marking.result), await studentOf(id))));
  } catch (err) { view().replaceChildren(); showError(`Could not open marking ${id}: ${err.message}`); }
}

export async function renderSheets(batchId) {
  try {
    const batch = await api(`/v1/batches/${encodeURIComponent(batchId)}`);
    const approved = batch.items.filter((i) => i.marking_id && i.approved_total !== null);
    const markings = await Promise.all(approved.map((i) => api(`/v1/markings/${encodeURIComponent(i.marking_id)}`)));
    const sheets = await Promise.all(markings.map(async (m) => sheet(m, await schemeOf(m.result), await studentOf(m.id))));
    const left = batch.items.length - approved.length;
    view().replaceChildren(
      printBar(`#/batches/${batchId}`, `${approved.length} approved script(s), one page each.` + (left ? ` ${left} not yet approved: their sheets are left out.` : "")),
      el("div", { id: "sheets" }, sheets.length ? sheets : el("p", { class: "empty" }, "No approved scripts yet.")));
  } catch (err) { view().replaceChildren(); showError(`Could not open batch ${batchId}: ${err.message}`); }
}
