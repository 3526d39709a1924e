// Send a class set's approved marks to an LMS assignment (LTI 1.3 AGS), with each student's outcome.
import { api, el, showError, status } from "./core.js";
import { reload } from "./teacher.js";

const OUTCOME_TEXT = { queued: "queued", sending: "sending", sent: "sent", already: "already in the LMS", held_back: "held back", failed: "failed" };
const POLL_MS = 500, POLL_LIMIT_MS = 120000;

export function lmsPanel(batchId, items) {
  const box = el("section", { class: "exports", id: "lms-panel", "aria-label": "Send to the LMS" }, el("h3", {}, "Send to the LMS"));
  const results = el("div", { id: "lms-results" });
  api("/v1/lti/links").then((links) => {
    if (!links.length) {
      box.append(el("p", { class: "hint", id: "lms-none" }, "Open draftmark once from the assignment in your LMS course (LTI 1.3) to send marks there. See docs/LMS.md."));
      return;
    }
    const pick = el("select", { id: "lms-link" }, links.map((l) => el("option", { value: l.id }, `${l.title || l.resource_link_id} (${l.context_id})`)));
    const launched = localStorage.getItem("draftmark-lti-link");
    if (links.some((l) => l.id === launched)) pick.value = launched;  // the assignment the teacher came from
    const names = new Map();
    const roster = async () => {
      showError("");
      try {
        const matches = await api(`/v1/lti/links/${encodeURIComponent(pick.value)}/roster-match?batch_id=${encodeURIComponent(batchId)}`);
        names.clear();
        matches.forEach((m) => { if (m.user_id) names.set(m.user_id, m.name); });
        const byId = matches.filter((m) => m.matched_by === "id"), byName = matches.filter((m) => m.matched_by === "name");
        const none = matches.filter((m) => !m.matched_by);
        const rename = async () => {
          showError("");
          try {
            await api(`/v1/batches/${encodeURIComponent(batchId)}/rename`, { method: "POST", json: { renames: Object.fromEntries(byName.map((m) => [m.external_id, m.user_id])) } });
            status(`${byName.length} script(s) now carry their LMS user id.`);
            reload();
          } catch (err) { showError(`Renaming failed: ${err.message}`); }
        };
        results.replaceChildren(
          el("p", { id: "lms-roster-summary" },
            `${byId.length} of ${matches.length} scripts match a learner on the course roster.` +
            (byName.length ? ` ${byName.length} more match a learner by name.` : "") +
            (none.length ? ` No learner found for: ${none.map((m) => m.external_id).join(", ")}.` : "")),
          byName.length ? el("table", { id: "lms-name-matches" },
            el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Script"), el("th", { scope: "col" }, "Learner"), el("th", { scope: "col" }, "LMS user id"))),
            el("tbody", {}, byName.map((m) => el("tr", {}, el("td", {}, m.external_id), el("td", {}, m.name), el("td", {}, m.user_id))))) : "",
          byName.length ? el("button", { type: "button", class: "secondary", id: "lms-rename", onclick: rename }, `Use the LMS ids for these ${byName.length} script(s)`) : "");
      } catch (err) { showError(`Could not read the roster: ${err.message}`); }
    };
    const draw = (sent) => {
      results.replaceChildren(el("table", { id: "lms-status" },
          el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Student"), el("th", { scope: "col" }, "Name"), el("th", { scope: "col" }, "Outcome"))),
          el("tbody", {}, sent.map((s) => el("tr", { "data-user": s.user_id },
            el("td", {}, s.user_id), el("td", {}, names.get(s.user_id) || ""),
            el("td", { class: `outcome-${s.outcome}` }, OUTCOME_TEXT[s.outcome] + (s.detail ? ` (${s.detail})` : "")))))));
    };
    const pending = (sent) => sent.some((s) => s.outcome === "queued" || s.outcome === "sending");
    const send = async () => {
      showError("");
      button.disabled = true;
      const path = `/v1/lti/links/${encodeURIComponent(pick.value)}/scores?batch_id=${encodeURIComponent(batchId)}`;
      try {
        let sent = await api(path, { method: "POST" });
        const started = Date.now();
        draw(sent);
        while (pending(sent) && Date.now() - started < POLL_LIMIT_MS && box.isConnected) {
          await new Promise((resolve) => setTimeout(resolve, POLL_MS));
          sent = await api(path);
          draw(sent);
        }
        const count = sent.filter((s) => s.outcome === "sent" || s.outcome === "already").length;
        status(pending(sent) ? "Still sending: the LMS is slow to answer; this page shows where each mark stands when you come back."
          : `${count} approved mark(s) are in the LMS gradebook.`);
      } catch (err) { showError(`Sending failed: ${err.message}`); }
      finally { button.disabled = false; }
    };
    const button = el("button", { type: "button", id: "lms-send", onclick: send }, "Send approved marks");
    box.append(
      el("div", {}, el("label", { for: "lms-link" }, "LMS assignment"), pick),
      el("button", { type: "button", class: "secondary", id: "lms-roster", onclick: roster }, "Check the roster"), " ",
      button,
      el("p", { class: "hint" }, "Only approved marks are sent; drafts are held back. Sending again is safe."),
      results);
  }).catch((err) => box.append(el("p", { class: "hint" }, `LMS assignments unavailable: ${err.message}`)));
  return box;
}
