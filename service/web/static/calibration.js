// Calibration for a scheme: import marked scripts, see what calibration learnt from them, remove scripts.
import { $, api, el, fillSchemePicker, showError, splitScheme, status, view, when } from "./core.js";

const fmt = (x) => (x === null || x === undefined ? "—" : Number(x).toFixed(2));

const BASIS = { imported: "imported", blind: "marked blind", anchored: "marked with the draft in view", unchanged_draft: "draft approved unchanged: not counted" };

function figures(cal, onRefit) {
  const counted = cal.counted_exemplars === cal.exemplars ? "" : ` (${cal.counted_exemplars} counted)`;
  const parts = [el("p", { id: "calibration-message", class: `calibration ${cal.status}` },
    el("strong", {}, { calibrated: "Calibrated. ", not_used: "Calibration not used. ", too_few_exemplars: "Not calibrated yet. " }[cal.status] || ""),
    `${cal.exemplars} marked script(s) for this scheme${counted}. `, cal.message)];
  // Approvals refit every `refit_every` new scripts, so marks do not shift during a sitting; the teacher can refit now.
  if (cal.counted_exemplars >= cal.min_exemplars && !cal.refit_pending) {
    parts.push(el("p", { class: "hint" }, cal.new_since_fit
      ? `${cal.new_since_fit} new marked script(s) since the last fit. Approvals refit after every ${cal.refit_every} new scripts, so marks stay put while you work through a class. `
      : `Approvals refit after every ${cal.refit_every} new marked scripts, so marks stay put while you work through a class. `,
      el("button", { type: "button", id: "refit-now", class: "secondary small", onclick: onRefit }, "Refit now")));
  }
  if (cal.objectives.length) {
    const pct = (x) => (x === null || x === undefined ? null : `${Math.round(100 * x)}%`);
    const by = { calibrator: "the calibrator", length: "the length of what counts", model: "the model's own marks" };
    // Plain words first: how often the marks were within one of the teacher's, tried on scripts they had not seen.
    parts.push(el("ul", { id: "calibration-plain" }, cal.objectives.map((o) => el("li", { "data-ao": o.ao_id },
      el("strong", {}, `${o.ao_id}: `),
      o.used && pct(o.cv.delivered_within_one)
        ? `within one mark of yours ${pct(o.cv.delivered_within_one)} of the time (exactly yours ${pct(o.cv.delivered_exact)})`
          + (pct(o.cv.word_count_within_one) ? `; marking by length alone, ${pct(o.cv.word_count_within_one)}` : "")
          + `. Marked by ${by[o.cv.delivered] || "calibration"}.`
        : o.summary))));
    parts.push(el("details", { id: "calibration-details" },
      el("summary", {}, "Details: agreement figures (QWK)"),
      el("table", { id: "calibration-table" },
        el("caption", { class: "hint" }, `Quadratic weighted kappa with your marks, each script scored by a fit that did not see it (${cal.objectives[0].cv.repeats || 1} × ${cal.objectives[0].cv.folds} folds): 1 is full agreement, 0 no better than chance, below 0 worse than chance. "—": not measurable (the marks do not vary).`),
        el("thead", {}, el("tr", {}, ["Objective", "Used", "Delivered", "Full calibrator", "Length of what counts", "Word count alone", "The model alone", "Scripts"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, cal.objectives.map((o) => el("tr", { "data-ao": o.ao_id },
          el("th", { scope: "row" }, o.ao_id), el("td", {}, o.used ? "yes" : "no"), el("td", { class: "qwk" }, fmt(o.cv.delivered_qwk ?? o.cv.calibrated_qwk)),
          el("td", {}, fmt(o.cv.calibrated_qwk)), el("td", {}, fmt(o.cv.length_qwk)),
          el("td", {}, fmt(o.cv.word_count_qwk)), el("td", {}, fmt(o.cv.llm_qwk)), el("td", {}, o.cv.n_scripts)))))));
    if (cal.fitted_at) parts.push(el("p", { class: "hint" }, `Fitted ${when(cal.fitted_at)} (${cal.version})` + (cal.signals_from_model ? `; the model's marks from ${cal.signals_from_model} are a signal.` : ".")));
  }
  return parts;
}

export async function renderCalibration(ref) {
  view().replaceChildren($("#calibration-template").content.cloneNode(true));
  const select = $("#cal-scheme"), panel = $("#calibration-panel");
  try { await fillSchemePicker(select, ref); } catch (err) { showError(`Could not load mark schemes: ${err.message}`); return; }
  select.addEventListener("change", () => { location.hash = select.value ? `#/calibration/${select.value}` : "#/calibration"; });
  if (!ref || select.value !== ref) { panel.hidden = true; return; }
  const [schemeId, version] = splitScheme(ref);
  const base = `/v1/schemes/${encodeURIComponent(schemeId)}`, q = `?version=${encodeURIComponent(version)}`;
  const summary = $("#calibration-figures"), list = $("#exemplar-list");
  const show = (cal) => summary.replaceChildren(...figures(cal, async () => {
    showError("");
    status("Refitting the calibration…");
    try { await settle(await api(`${base}/calibration/refit${q}`, { method: "POST" })); status("Calibration refitted."); }
    catch (err) { status(""); showError(`Could not refit: ${err.message}`); }
  }));
  const listExemplars = async () => {
    const rows = await api(`${base}/exemplars${q}`);
    if (!rows.length) { list.replaceChildren(el("p", { class: "empty" }, "No marked scripts yet: import some, or approve scripts marked with this scheme.")); return; }
    list.replaceChildren(el("table", { id: "exemplars-table" },
      el("thead", {}, el("tr", {}, ["Reference", "Source", "Marks", "Words", "Opening", "Remove"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.map((x) => el("tr", { "data-id": x.id, "data-basis": x.basis, class: x.counted ? "" : "not-counted" },
        el("td", {}, x.external_id || "—"), el("td", {}, `${x.source} (${BASIS[x.basis] || x.basis})`), el("td", {}, Object.entries(x.marks).map(([k, v]) => `${k} ${v}`).join(", ")),
        el("td", {}, x.words), el("td", { class: "preview" }, x.preview),
        el("td", {}, el("button", { type: "button", class: "secondary small", "aria-label": `Remove ${x.external_id || x.preview}`, onclick: async () => {
          if (!window.confirm("Remove this marked script? Calibration is refitted without it.")) return;
          try { await api(`${base}/exemplars/${encodeURIComponent(x.id)}${q}`, { method: "DELETE" }); status("Removed; refitting the calibration…"); await refresh(); status("Removed; calibration refitted."); }
          catch (err) { showError(`Could not remove it: ${err.message}`); } } }, "Remove")))))));
  };
  // Imports and removals answer at once and refit in the background: show the previous figures
  // (marked as such), then ask again until the refit has finished.
  const settle = async (cal) => {
    show(cal);
    for (let waited = 0; cal.refit_pending && waited < 600; waited++) {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      cal = await api(`${base}/calibration${q}`);
      show(cal);
    }
  };
  const refresh = async () => { await listExemplars(); await settle(await api(`${base}/calibration${q}`)); };
  $("#exemplar-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError("");
    const type = /\.(jsonl|ndjson)$/i.test(file.name) ? "application/x-ndjson" : "text/csv";
    status(`Importing ${file.name} and refitting the calibration…`);
    try {
      const body = await api(`${base}/exemplars${q}`, { method: "POST", body: file, headers: { "Content-Type": type } });
      await listExemplars();
      status(`Imported ${file.name}: ${body.added} added, ${body.updated} updated; refitting the calibration…`);
      await settle(body.calibration);
      status(`Imported ${file.name}: ${body.added} added, ${body.updated} updated; calibration refitted.`);
    } catch (err) { status(""); showError(`Could not import ${file.name}: ${err.message}`, err.items || []); }
    event.target.value = "";
  });
  try { await refresh(); } catch (err) { showError(`Could not load the calibration: ${err.message}`); }
}
