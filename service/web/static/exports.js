// The per-script exports (Canvas, Moodle, LTI): exactly what the platform accepts, once the script is approved.
// Drafts are refused by the server (409 naming the script); the message is shown here.
import { api, download, el, showError, status } from "./core.js";

export function exportsPanel(id) {
  const user = el("input", { id: "lms-user", placeholder: "numeric id in Canvas/Moodle" });
  const assignment = el("input", { id: "moodle-assignment", inputmode: "numeric", placeholder: "e.g. 17" });
  const criteria = el("input", { id: "lms-criteria", placeholder: "AO1=_123, AO2=_456 (optional)" });
  const query = (extra) => {
    const params = new URLSearchParams(extra);
    if (user.value.trim()) params.set("user_id", user.value.trim());
    criteria.value.split(",").map((c) => c.trim()).filter(Boolean).forEach((c) => params.append("criterion", c));
    return params;
  };
  const open = (name, path, needs = []) => async () => {
    showError("");
    const missing = needs.find(([input]) => !input.value.trim());
    if (missing) { showError(missing[1]); missing[0].focus(); return; }
    try {
      const body = await api(path());
      download(JSON.stringify(body, null, 2), "application/json", `${id}-${name}.json`);
      status("Export downloaded: the platform's request is under “payload”.");
    } catch (err) { showError(`Export failed: ${err.message}`); }
  };
  const canvasPath = () => {
    const params = query({});
    if (!params.has("criterion")) params.set("rubric", "false");
    return `/v1/markings/${id}/exports/canvas?${params}`;
  };
  return el("section", { class: "exports", "aria-label": "Export to an LMS" },
    el("p", { class: "hint" }, "Only approved marks leave draftmark. See docs/LMS.md for where each file goes."),
    el("div", {}, el("label", { for: "lms-user" }, "Student's LMS user id"), user),
    el("div", {}, el("label", { for: "lms-criteria" }, "Rubric / marking guide criteria"), criteria),
    el("div", {}, el("label", { for: "moodle-assignment" }, "Moodle assignment id"), assignment),
    el("button", { type: "button", class: "secondary", id: "export-canvas", onclick: open("canvas", canvasPath) }, "Canvas"),
    el("button", { type: "button", class: "secondary", id: "export-moodle", onclick: open("moodle", () => `/v1/markings/${id}/exports/moodle?${query({ assignment_id: assignment.value.trim() })}`, [[assignment, "Enter the Moodle assignment id (a number, in the assignment's address: mod/assign/view.php?id=…)."]]) }, "Moodle"),
    el("button", { type: "button", class: "secondary", id: "export-lti", onclick: open("lti-score", () => `/v1/markings/${id}/exports/lti-score?${query({})}`, [[user, "Enter the student's LMS user id first."]]) }, "LTI score"));
}

// The class set's LMS files: Canvas and Moodle gradebook CSVs (approved scripts only).
export function classExports(batchId) {
  const canvasId = el("input", { id: "canvas-assignment", inputmode: "numeric", placeholder: "e.g. 55" });
  const title = el("input", { id: "canvas-title", placeholder: "as in Canvas" });
  const identifier = el("select", { id: "moodle-identifier" },
    el("option", { value: "username" }, "username"), el("option", { value: "idnumber" }, "ID number"), el("option", { value: "email" }, "email"));
  const approvedOnly = el("input", { type: "checkbox", id: "approved-only" });
  const get = (name, path) => async () => {
    showError("");
    try {
      download(await api(path()), "text/csv", `${batchId}-${name}.csv`);
      status("Gradebook file downloaded.");
    } catch (err) { showError(`Export failed: ${err.message}`); }
  };
  const flag = () => (approvedOnly.checked ? "&released_only=true" : "");
  return el("section", { class: "exports", "aria-label": "Gradebook files" },
    el("h3", {}, "Gradebook files"),
    el("p", { class: "hint" }, "The class set's ids must be the LMS's user ids (Canvas: numeric id; Moodle: the column you choose)."),
    el("div", {}, el("label", { for: "approved-only" }, approvedOnly, " Leave out scripts not yet approved and released")),
    el("div", {}, el("label", { for: "canvas-assignment" }, "Canvas assignment id"), canvasId,
      el("label", { for: "canvas-title" }, "Canvas assignment title"), title),
    el("button", { type: "button", class: "secondary", id: "export-canvas-csv", onclick: get("canvas", () => `/v1/batches/${batchId}/exports/canvas.csv?assignment_id=${encodeURIComponent(canvasId.value.trim())}&assignment=${encodeURIComponent(title.value.trim())}${flag()}`) }, "Canvas gradebook CSV"), " ",
    el("div", {}, el("label", { for: "moodle-identifier" }, "Moodle users matched by"), identifier),
    el("button", { type: "button", class: "secondary", id: "export-moodle-csv", onclick: get("moodle", () => `/v1/batches/${batchId}/exports/moodle.csv?identifier=${identifier.value}${flag()}`) }, "Moodle gradebook CSV"));
}
