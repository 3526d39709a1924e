// Mark one essay: choose a scheme (or upload one), paste or upload the essay, mark it.
import { $, api, el, fillSchemePicker, progress, sentence, showError, splitScheme, status, view } from "./core.js";

// Drafts live in sessionStorage: they survive a reload, not the end of the session (shared staff computers).
const DRAFT = "draftmark-draft";

export async function renderMark({ onLeave }) {
  localStorage.removeItem(DRAFT); // drafts kept by earlier versions, indefinitely
  view().replaceChildren($("#mark-template").content.cloneNode(true));
  const essay = $("#essay"), select = $("#scheme"), form = $("#mark-form");
  essay.value = sessionStorage.getItem(DRAFT) || "";
  essay.addEventListener("input", () => sessionStorage.setItem(DRAFT, essay.value));
  try { await fillSchemePicker(select); }
  catch (err) { showError(`Could not load mark schemes: ${err.message}`); }
  $("#scheme-file").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    showError("");
    try {
      const saved = await api("/v1/schemes/import", { method: "POST", body: await file.text(), headers: { "Content-Type": "application/yaml" } });
      await fillSchemePicker(select, `${saved.id}@${saved.version}`);
      const title = select.selectedOptions[0]?.textContent || saved.id;
      status(`Mark scheme “${title}” ${saved.created ? "registered" : "was already registered"} and selected.`);
    } catch (err) { showError(`Could not use ${file.name}: ${err.message}`, err.items || []); }
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
      sessionStorage.setItem(DRAFT, essay.value);
      if (!$("#external-id").value) $("#external-id").value = file.name.replace(/\.[^.]+$/, "");
      status(`Loaded ${file.name}.`);
    } catch (err) { showError(`Could not read ${file.name}: ${err.message}`); }
  });
  let controller = null;
  onLeave(() => controller?.abort());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    const [schemeId, version] = splitScheme(select.value);
    const button = $("#mark");
    button.disabled = true;
    controller = new AbortController();
    const shown = progress("Marking… the model is reading the essay. A local model can take a minute or two.",
      () => controller.abort());
    try {
      const body = { essay: essay.value, scheme_id: schemeId, scheme_version: version };
      const ext = $("#external-id").value.trim();
      if (ext) body.external_id = ext;
      const marking = await api("/v1/markings", { method: "POST", json: body, signal: controller.signal });
      sessionStorage.removeItem(DRAFT);
      location.hash = `#/markings/${marking.id}`;
    } catch (err) {
      if (err.name === "AbortError") {
        status("Marking cancelled. Your essay text is still here. The server may still finish this marking; it will not be opened.");
      } else showError(`Marking failed: ${sentence(err.message)} Your essay text is still here.`);
    } finally { shown.done(); button.disabled = false; controller = null; }
  });
}
