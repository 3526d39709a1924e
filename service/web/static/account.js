// Who is signed in: email and password (a session cookie), or an API key kept in this browser; sign-in,
// set-password (the one-time link from `draftmark users add`), sign-out and the teacher's own API keys.
import { $, api, el, showError, status, view } from "./core.js";

export async function whoAmI() {
  try { return await api("/v1/me"); } catch { return null; }
}

export function drawAccount(me) {
  const box = $("#account");
  if (!box) return;
  if (me?.via === "auth_disabled") {
    $("#auth-banner").hidden = false;
    box.replaceChildren();
    return;
  }
  if (!me) {
    box.replaceChildren(el("a", { href: "#/sign-in", id: "sign-in-link" }, "Sign in"));
    return;
  }
  const who = me.email || `API key ${me.principal}`;
  const signOut = async () => {
    try {
      if (me.via === "session") await api("/v1/session", { method: "DELETE" });
      localStorage.removeItem("draftmark-key");
      status("Signed out.");
      location.hash = "#/sign-in";
      drawAccount(null);
    } catch (err) { showError(`Sign-out failed: ${err.message}`); }
  };
  box.replaceChildren(
    el("span", { id: "signed-in-as" }, `Signed in as ${who}`), " ",
    me.email ? el("a", { href: "#/keys", id: "my-keys-link" }, "My API keys") : "", " ",
    el("button", { type: "button", class: "secondary small", id: "sign-out", onclick: signOut }, "Sign out"));
}

export function renderSignIn(onSignedIn) {
  const email = el("input", { id: "sign-in-email", type: "text", inputmode: "email", autocomplete: "username", required: true });
  const password = el("input", { id: "sign-in-password", type: "password", autocomplete: "current-password", required: true });
  const key = el("input", { id: "api-key", type: "password" });
  const form = el("form", { id: "sign-in-form", class: "panel" },
    el("h2", {}, "Sign in"),
    el("p", {}, el("label", { for: "sign-in-email" }, "Email"), email),
    el("p", {}, el("label", { for: "sign-in-password" }, "Password"), password),
    el("button", { type: "submit", id: "sign-in" }, "Sign in"),
    el("details", { id: "key-box" }, el("summary", {}, "Use an API key instead"),
      el("label", { for: "api-key" }, "API key (kept in this browser only)"), key,
      el("button", { type: "button", id: "save-key", onclick: async () => {
        localStorage.setItem("draftmark-key", key.value.trim());
        const me = await whoAmI();
        if (!me) { localStorage.removeItem("draftmark-key"); showError("That API key is not valid or has been revoked."); return; }
        onSignedIn(me);
      } }, "Use this key")));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    try {
      localStorage.removeItem("draftmark-key");
      onSignedIn(await api("/v1/session", { method: "POST", json: { email: email.value, password: password.value } }));
    } catch (err) { showError(err.message); password.select(); }
  });
  view().replaceChildren(form);
  email.focus();
}

export function renderSetPassword(token) {
  const first = el("input", { id: "new-password", type: "password", autocomplete: "new-password", minlength: "10", required: true });
  const again = el("input", { id: "new-password-again", type: "password", autocomplete: "new-password", required: true });
  const form = el("form", { id: "set-password-form", class: "panel" },
    el("h2", {}, "Set your password"),
    el("p", { class: "hint" }, "At least 10 characters. This link works once."),
    el("p", {}, el("label", { for: "new-password" }, "New password"), first),
    el("p", {}, el("label", { for: "new-password-again" }, "The same again"), again),
    el("button", { type: "submit", id: "set-password" }, "Set password"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    if (first.value !== again.value) { showError("The two passwords differ."); return; }
    try {
      await api("/v1/users/password", { method: "POST", json: { token, password: first.value } });
      status("Password set: sign in with it now.");
      history.replaceState(null, "", "#/sign-in");
      renderSignIn(() => { location.hash = "#/"; location.reload(); });
    } catch (err) { showError(err.message); }
  });
  view().replaceChildren(form);
}

export async function renderKeys() {
  const list = el("tbody", {});
  const shown = el("p", { id: "new-key", role: "status" });
  const draw = async () => {
    const keys = await api("/v1/me/keys");
    list.replaceChildren(...keys.map((k) => el("tr", { "data-key": k.id },
      el("td", {}, k.name), el("td", {}, k.id), el("td", {}, k.revoked ? "revoked" : "active"),
      el("td", {}, k.revoked ? "" : el("button", { type: "button", class: "secondary small", onclick: async () => {
        await api(`/v1/me/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
        status(`Revoked ${k.name}.`);
        draw();
      } }, `Revoke ${k.name}`)))));
  };
  const name = el("input", { id: "key-name", maxlength: "200", required: true, placeholder: "e.g. Moodle" });
  const form = el("form", { id: "key-form" },
    el("label", { for: "key-name" }, "What the key is for"), name, el("button", { type: "submit", id: "create-key" }, "Create key"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const made = await api("/v1/me/keys", { method: "POST", json: { name: name.value } });
      shown.replaceChildren("Copy this key now; it is not shown again: ", el("code", { id: "new-key-text" }, made.key));
      name.value = "";
      draw();
    } catch (err) { showError(err.message); }
  });
  view().replaceChildren(el("section", { class: "panel" },
    el("h2", {}, "My API keys"),
    el("p", { class: "hint" }, "Keys let an LMS integration or a script act as you. Revoke one you no longer use."),
    form, shown,
    el("table", { id: "keys-table" },
      el("thead", {}, el("tr", {}, ["Name", "Id", "State", "Revoke"].map((h) => el("th", { scope: "col" }, h)))), list)));
  await draw();
}
