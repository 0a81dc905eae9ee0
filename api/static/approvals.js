// Paused runs awaiting a human decision, each with its gate's form; the queue follows the
// events live.

import { debounced, query, request } from "./api.js";
import { h, link, reconcile, replace, time } from "./dom.js";
import { decisionForm } from "./forms.js";

function card(item, ctx, onDone) {
  const exception = item.exception || {};
  const amount = exception.amount ? ` · ${exception.amount} ${exception.currency || ""}` : "";
  return h("article", { class: "card pending", "data-testid": `pending-${item.run_id}`, "data-run-id": item.run_id,
    "aria-label": `Run ${item.run_id}` },
  h("h2", {}, link(`#/runs/${encodeURIComponent(item.run_id)}`, item.run_id, { class: "mono" })),
  h("p", {}, h("strong", {}, `${exception.domain || "?"} / ${exception.type || "?"}`), amount,
    item.severity ? [" · ", h("span", { class: `sev sev-${item.severity}` }, item.severity)] : null,
    item.playbook_id ? ` · ${item.playbook_id} v${item.playbook_version}` : ""),
  h("dl", { class: "fields" },
    h("dt", {}, "gate"), h("dd", {}, item.gate),
    h("dt", {}, "reason"), h("dd", {}, item.reason),
    h("dt", {}, "paused step"), h("dd", {}, item.paused_step),
    h("dt", {}, "requested"), h("dd", {}, time(item.requested_at)),
    h("dt", {}, "expires"), h("dd", {}, time(item.expires_at))),
  decisionForm(item, ctx, onDone));
}

export async function approvalsPage(main, ctx) {
  const list = h("div", { class: "pending-list", "data-testid": "pending-list" });
  const empty = h("p", { class: "muted", hidden: true, "data-testid": "pending-empty" }, "Nothing is waiting for a decision.");
  const more = h("button", { type: "button", hidden: true, onclick: () => loadMore() }, "Load more");
  replace(main, h("h1", {}, "Pending approvals"), empty, list, more);
  const cards = new Map();
  let shown = 100;
  let cursor = null;

  /** Cards keyed by run and pause, so a form someone is filling in survives a refresh. */
  function show(items, append = false) {
    const keep = new Map(append ? cards : []);
    for (const item of items) {
      const key = `${item.run_id}:${item.requested_at}`;
      keep.set(key, cards.get(key) || card(item, ctx, () => soon.now()));
    }
    cards.clear();
    for (const [key, element] of keep) cards.set(key, element);
    reconcile(list, [...keep.values()]);
    empty.hidden = cards.size > 0;
  }

  async function refresh() {
    try {
      const page = await request("GET", `/api/v1/runs/pending-action${query({ limit: Math.min(shown, 500) })}`);
      show(page.items);
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      ctx.fail(error);
    }
  }

  async function loadMore() {
    try {
      const page = await request("GET", `/api/v1/runs/pending-action${query({ limit: 100, cursor })}`);
      show(page.items, true);
      shown += page.items.length;
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (error) {
      ctx.fail(error);
    }
  }

  const soon = debounced(refresh, 200);
  ctx.onLeave(soon.cancel);
  await refresh();
  ctx.live(`/api/v1/events/stream${query({ topics: "run.*,dashboard.*,approval.*" })}`, { onEvent: soon, onResync: soon });
}
