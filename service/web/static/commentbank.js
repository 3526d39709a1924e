// The comment bank of one scheme: save what a comment box holds, and insert a saved comment at the
// cursor of a box (Alt+K in the box, or its "Comment bank" button). The teacher's own API: /v1/schemes/{id}/comments.
import { $, $$, api, el, sentence } from "./core.js";

export function commentBank(schemeId) {
  const path = `/v1/schemes/${encodeURIComponent(schemeId)}/comments`;
  let target = null; // the box a chosen comment goes into, and where its cursor was
  let range = [0, 0];
  const list = el("ul", { class: "bank-list", id: "bank-list", "aria-labelledby": "bank-title" });
  const filter = el("input", { type: "search", id: "bank-filter", "aria-describedby": "bank-note" });
  const note = el("p", { id: "bank-note", class: "hint", role: "status" });
  const dialog = el("dialog", { id: "comment-bank", class: "comment-bank", "aria-labelledby": "bank-title" },
    el("h3", { id: "bank-title" }, "Comment bank"),
    el("p", {}, el("label", { for: "bank-filter" }, "Filter saved comments"), filter),
    note, list,
    el("p", {}, el("button", { type: "button", class: "secondary", id: "bank-close", onclick: () => dialog.close() }, "Close")));
  dialog.addEventListener("close", () => { if (target && document.body.contains(target)) target.focus(); });

  function insert(text) {
    const [start, end] = range;
    target.setRangeText(text, start, end, "end");
    target.dispatchEvent(new Event("input", { bubbles: true })); // the review counts it as an edit
    dialog.close();
  }
  async function remove(comment, item) {
    try {
      await api(`${path}/${encodeURIComponent(comment.id)}`, { method: "DELETE" });
      const next = item.nextElementSibling || item.previousElementSibling;
      item.remove();
      note.textContent = "Deleted from the comment bank.";
      $("button", next || dialog)?.focus();
      if (!$$("li", list).length) note.textContent = "Deleted. The comment bank is empty.";
    } catch (err) { note.textContent = `Could not delete it: ${sentence(err.message)}`; }
  }
  function draw(comments) {
    list.replaceChildren(...comments.map((comment) => {
      const item = el("li", { class: "bank-item", "data-text": comment.text.toLowerCase() });
      item.append(
        el("button", { type: "button", class: "bank-insert", onclick: () => insert(comment.text) }, comment.text),
        el("button", { type: "button", class: "secondary small bank-delete", "aria-label": `Delete from the comment bank: ${comment.text.slice(0, 60)}`,
          onclick: () => remove(comment, item) }, "Delete"));
      return item;
    }));
    note.textContent = comments.length ? `${comments.length} saved comment(s): choose one to insert it at the cursor.`
      : "No saved comments for this scheme yet: use “Save to comment bank” beside a comment box.";
  }
  filter.addEventListener("input", () => {
    const words = filter.value.trim().toLowerCase();
    $$("li", list).forEach((li) => { li.hidden = Boolean(words) && !li.dataset.text.includes(words); });
  });

  async function open(box) {
    target = box;
    range = [box.selectionStart, box.selectionEnd];
    filter.value = "";
    list.replaceChildren();
    note.textContent = "Loading…";
    dialog.showModal();
    try { draw(await api(path)); } catch (err) { note.textContent = `Could not load the comment bank: ${sentence(err.message)}`; }
    ($(".bank-insert", list) || filter).focus();
  }
  async function save(box, said) {
    const text = box.value.trim();
    if (!text) { said.textContent = "Write a comment first, then save it."; return; }
    try {
      await api(path, { method: "POST", json: { text } });
      said.textContent = "Saved to the comment bank.";
    } catch (err) { said.textContent = `Not saved: ${sentence(err.message)}`; }
  }

  /** The bank's buttons for one comment box (and Alt+K in it). */
  function tools(box, what) {
    box.setAttribute("aria-keyshortcuts", "Alt+K");
    box.addEventListener("keydown", (event) => {
      if (event.altKey && !event.ctrlKey && !event.metaKey && event.code === "KeyK") { event.preventDefault(); open(box); }
    });
    const said = el("span", { class: "bank-said hint", role: "status" });
    return el("div", { class: "bank-tools" },
      el("button", { type: "button", class: "secondary small bank-save", "aria-label": `Save to comment bank: ${what}`, onclick: () => save(box, said) }, "Save to comment bank"),
      el("button", { type: "button", class: "secondary small bank-open", "aria-label": `Comment bank (Alt+K): insert into ${what}`, onclick: () => open(box) },
        "Comment bank (", el("kbd", {}, "Alt"), "+", el("kbd", {}, "K"), ")"),
      said);
  }
  return { dialog, tools };
}
