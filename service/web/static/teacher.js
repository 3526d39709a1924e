// draftmark teacher page: a thin client of the REST API (/v1). No framework, no CDN.
import { $, showError, status } from "./core.js";
import { drawAccount, renderKeys, renderSetPassword, renderSignIn, whoAmI } from "./account.js";
import { renderMark } from "./mark.js";
import { renderReview } from "./review.js";
import { renderBatch, renderBatches } from "./classview.js";
import { renderSheet, renderSheets } from "./sheet.js";
import { renderCalibration } from "./calibration.js";

// A view may register a guard (unsaved edits) and cleanups (timers, key listeners); both end with
// the view. A view still loading when the teacher moves on is stale: what it registers is undone at once.
const current = { guard: null, cleanups: [], hash: null, token: 0 };
function context() {
  const token = ++current.token;
  const live = () => token === current.token;
  return {
    live,
    setGuard: (guard) => { if (live()) current.guard = guard; },
    onLeave: (cleanup) => { if (live()) current.cleanups.push(cleanup); else cleanup(); },
  };
}
const UNSAVED = "You have unsaved changes to this script. Leave without approving them?";

async function route() {
  const hash = location.hash || "#/";
  if (hash === current.hash) return;
  if (current.guard?.() && !window.confirm(UNSAVED)) {
    history.replaceState(null, "", current.hash || "#/");
    return;
  }
  current.cleanups.splice(0).forEach((cleanup) => cleanup());
  Object.assign(current, { guard: null, hash });
  const ctx = context();
  showError(""); status("");
  let match;
  if ((match = hash.match(/^#\/markings\/([\w-]+)\/sheet$/))) await renderSheet(match[1]);
  else if ((match = hash.match(/^#\/markings\/([\w-]+)$/))) await renderReview(match[1], ctx);
  else if ((match = hash.match(/^#\/batches\/([\w-]+)\/sheets$/))) await renderSheets(match[1]);
  else if ((match = hash.match(/^#\/batches\/([\w-]+)$/))) await renderBatch(match[1], ctx);
  else if (hash === "#/batches") await renderBatches();
  else if ((match = hash.match(/^#\/calibration(?:\/([\w.@+-]+))?$/))) await renderCalibration(match[1] || "");
  else if ((match = hash.match(/^#\/set-password\/([\w-]+)$/))) renderSetPassword(match[1]);
  else if (hash === "#/sign-in") renderSignIn(signedIn);
  else if (hash === "#/keys") await renderKeys();
  else await renderMark(ctx);
  if (ctx.live()) $("#main").focus({ preventScroll: true });
}
export function reload() { current.hash = null; return route(); }

window.addEventListener("beforeunload", (event) => {
  if (current.guard?.()) { event.preventDefault(); event.returnValue = ""; }
});

function signedIn(me) {
  drawAccount(me);
  status(`Signed in as ${me.email || me.principal}.`);
  if (location.hash === "#/sign-in" || !location.hash) { location.hash = "#/"; } else reload();
}

document.addEventListener("DOMContentLoaded", async () => {
  window.addEventListener("hashchange", route);
  const open = /^#\/set-password\//.test(location.hash);
  const me = open ? null : await whoAmI();
  drawAccount(me);
  if (!me && !open) history.replaceState(null, "", "#/sign-in");
  route();
});
