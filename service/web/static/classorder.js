// Working through a class set: which scripts the class view shows (filters), in what order (sort),
// which one to open next, and the order the review page follows for "next unapproved".
import { LOUD } from "./core.js";

/** Marked (it has a result) and not yet approved. */
export const unapproved = (item) => Boolean(item.marking_id) && item.draft_total !== null && item.approved_total === null;

/** Approved with a total, or any objective's mark, other than the model's draft. */
export function changedByTeacher(item, marks) {
  if (item.approved_total === null || item.approved_total === undefined) return false;
  if (item.approved_total !== item.draft_total) return true;
  return (marks?.objectives || []).some((o) => o.approved_mark !== null && o.approved_mark !== o.draft_mark);
}

// [key, label, test, description]
export const FILTERS = [
  ["all", "All", () => true, "every script"],
  ["flagged", "Flagged", (row) => row.flags.length > 0, "scripts with a flag"],
  ["unapproved", "Unapproved", unapproved, "marked scripts not yet approved"],
  ["changed", "Changed by you", (row) => row.changed, "approved with a total or an objective's mark other than the draft's"],
];

// A loud flag (needs review, prompt injection) outweighs any number of quiet ones.
const flagWeight = (flags) => flags.reduce((sum, f) => sum + (LOUD.has(f) ? 100 : 1), 0);

/**
 * ``rows`` sorted by ``key``: numbers as numbers, text in natural order ("s2" before "s10"), the
 * flags column by weight. Scripts without a value (not marked, not approved) go last either way,
 * and ties keep the set's own order.
 */
export function sortRows(rows, key, ascending) {
  const value = (row) => (key === "flags" ? flagWeight(row.flags) : row[key]);
  const absent = (v) => (v === null || v === undefined ? 1 : 0);
  return [...rows].sort((a, b) => {
    const x = value(a), y = value(b);
    if (absent(x) || absent(y)) return absent(x) - absent(y) || a.position - b.position;
    const cmp = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), undefined, { numeric: true });
    return (ascending ? cmp : -cmp) || a.position - b.position;
  });
}

const orderKey = (batchId) => `draftmark-order-${batchId}`;

/** Keep the class view's order (sorted, all scripts) for the review page's "next unapproved", for this browser session. */
export function rememberOrder(batchId, rows) {
  try { sessionStorage.setItem(orderKey(batchId), JSON.stringify(rows.filter((r) => r.marking_id).map((r) => r.marking_id))); }
  catch { /* storage full or blocked: the review page falls back to the set's own order */ }
}

/**
 * The first unapproved script after ``markingId`` (wrapping round to the start), in the order the
 * class view last showed the set, else the set's own order; null when every other script is approved.
 */
export function nextUnapproved(batch, markingId) {
  const marked = batch.items.filter((i) => i.marking_id);
  const byId = new Map(marked.map((i) => [i.marking_id, i]));
  let stored = [];
  try { stored = JSON.parse(sessionStorage.getItem(orderKey(batch.id)) || "[]"); } catch { stored = []; }
  const kept = (Array.isArray(stored) ? stored : []).filter((m) => byId.has(m));
  const order = [...new Set([...kept, ...marked.map((i) => i.marking_id)])];
  const at = order.indexOf(markingId);
  for (let step = 1; step <= order.length; step++) {
    const item = byId.get(order[(at + step) % order.length]);
    if (item.marking_id !== markingId && unapproved(item)) return item;
  }
  return null;
}
