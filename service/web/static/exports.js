// The per-script exports (Moodle, Canvas, LTI): the approved marks once a script is approved.
import { api, download, el, showError, status } from "./core.js";

export function exportsPanel(id) {
  const user = el("input", { id: "lti-user", placeholder: "LTI user id" });
  const open = (path) => async () => {
    showError("");
    try {
      const body = await api(path());
      download(JSON.stringify(body, null, 2), "application/json", `${id}-${path().split("/").pop().split("?")[0]}.json`);
      status("Export downloaded.");
    } catch (err) { showError(`Export failed: ${err.message}`); }
  };
  return el("section", { class: "exports", "aria-label": "Export" },
    el("button", { type: "button", class: "secondary", id: "export-moodle", onclick: open(() => `/v1/markings/${id}/exports/moodle`) }, "Moodle"),
    el("button", { type: "button", class: "secondary", id: "export-canvas", onclick: open(() => `/v1/markings/${id}/exports/canvas`) }, "Canvas"),
    el("div", {}, el("label", { for: "lti-user" }, "LTI user id"), user),
    el("button", { type: "button", class: "secondary", id: "export-lti", onclick: open(() => `/v1/markings/${id}/exports/lti-score?user_id=${encodeURIComponent(user.value)}`) }, "LTI score"));
}
