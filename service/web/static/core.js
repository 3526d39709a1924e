// Shared helpers of the teacher page: DOM building, the API client, messages, progress, downloads.

export const LOUD = new Set(["needs_review", "indicative_model", "possible_prompt_injection"]);
export const FLAG_TEXT = {
  needs_review: "Needs review",
  indicative_model: "Indicative model: not a reliable marker",
  possible_prompt_injection: "Possible prompt injection",
  too_short: "Too short",
  off_topic: "Off topic",
  inconsistent_samples: "Samples disagree",
  calibration_check: "Check the calibrated mark",
  evidence_missing: "Evidence left out",
  text_replaced: "Model text replaced",
};
export const CALIBRATION_TEXT = { calibrated: "calibrated", not_used: "calibration not used", uncalibrated: "uncalibrated" };
export const COLOURS = 6; // objective colours c0..c5 in teacher.css

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];
export const view = () => $("#view");

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === "") continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** End a message with a full stop unless it already ends a sentence, so messages can be joined. */
export function sentence(text) {
  const trimmed = String(text ?? "").trim();
  if (!trimmed) return "";
  return /[.!?…)"”]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** Show an error; ``items`` (several problems, e.g. a scheme's) become a list under the message. */
export function showError(message, items = []) {
  const box = $("#error");
  box.replaceChildren();
  if (message) box.append(el("p", {}, message));
  if (items.length > 1) box.append(el("ul", {}, items.map((i) => el("li", {}, sentence(i)))));
  box.hidden = !message;
  if (message) box.focus?.();
}
export function status(message) { $("#status").textContent = message || ""; }

export class ApiError extends Error {
  constructor(message, problem) { super(message); this.problem = problem; }
  /** The separate problems the server listed (validation errors, a scheme's several faults). */
  get items() {
    if (Array.isArray(this.problem?.errors) && this.problem.errors.length > 1) return this.problem.errors;
    const parts = String(this.problem?.detail || "").split(/;\s+/).filter(Boolean);
    return parts.length > 1 ? parts : [];
  }
}

export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  const key = localStorage.getItem("draftmark-key");
  if (key) headers.Authorization = `Bearer ${key}`;
  const method = (options.method || "GET").toUpperCase();
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("draftmark_csrf="));
  if (csrf && !["GET", "HEAD"].includes(method)) headers["X-CSRF-Token"] = decodeURIComponent(csrf.split("=")[1]);
  const init = Object.assign({}, options, { headers });
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(options.json); }
  delete init.json;
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("The draftmark server could not be reached. Check your connection and try again.");
  }
  const type = (response.headers.get("content-type") || "").split(";")[0].trim();
  // Only a JSON document is parsed: application/x-ndjson (one document a line) is text.
  const isJson = type === "application/json" || type.endsWith("+json");
  if (!response.ok) {
    let detail = `${response.status} ${response.statusText}`, body = null;
    if (isJson) { body = await response.json(); detail = body.detail || body.title || detail; }
    detail = sentence(detail);
    if (response.status === 401 && path !== "/v1/session" && path !== "/v1/me") detail += " Sign in again (the link at the top of the page).";
    const retry = response.headers.get("retry-after");
    if (retry) detail += ` You can retry in about ${retry} s.`;
    throw new ApiError(detail, body);
  }
  if (response.status === 204) return null;
  return isJson ? response.json() : response.text();
}

/** Hand ``text`` to the browser as a file download. */
export function download(text, type, filename) {
  const link = el("a", { href: URL.createObjectURL(new Blob([text], { type })), download: filename });
  document.body.append(link); link.click(); link.remove();
}

/**
 * Progress where the teacher is looking (a panel fixed to the viewport), with elapsed time and,
 * when ``onCancel`` is given, a Cancel button. Returns {update(text), done()}.
 */
export function progress(text, onCancel) {
  const panel = $("#progress");
  const label = el("span", { id: "progress-text" }, text);
  const clock = el("span", { id: "progress-elapsed", class: "elapsed" }, "0 s");
  const started = Date.now();
  const tick = () => { clock.textContent = `${Math.round((Date.now() - started) / 1000)} s`; };
  const timer = setInterval(tick, 1000);
  panel.replaceChildren(el("span", { class: "spinner", "aria-hidden": "true" }), label, " ", clock,
    onCancel ? el("button", { type: "button", class: "secondary", id: "progress-cancel", onclick: onCancel }, "Cancel") : "");
  panel.hidden = false;
  return {
    update(next) { label.textContent = next; },
    done() { clearInterval(timer); panel.hidden = true; panel.replaceChildren(); },
  };
}

/** Options for a scheme picker: "choose a scheme" first, then the registered schemes by title. */
export async function fillSchemePicker(select, selected = "") {
  const schemes = await api("/v1/schemes");
  schemes.sort((a, b) => a.title.localeCompare(b.title) || a.id.localeCompare(b.id) || a.version.localeCompare(b.version));
  const titles = new Map();
  for (const s of schemes) titles.set(s.title, (titles.get(s.title) || 0) + 1);
  select.replaceChildren(el("option", { value: "" }, schemes.length ? "Choose a scheme…" : "No schemes registered: upload one"),
    ...schemes.map((s) => el("option", { value: `${s.id}@${s.version}` },
      `${s.title} (${s.total_marks} marks${titles.get(s.title) > 1 ? `, version ${s.version}` : ""})`)));
  select.value = selected;
  return schemes;
}

export function splitScheme(value) {
  const at = value.lastIndexOf("@");
  return at < 0 ? [value, undefined] : [value.slice(0, at), value.slice(at + 1)];
}

export function when(iso) { return new Date(iso).toLocaleString(); }
