// The runs list: filters by status and workflow (kept in the URL), older pages on demand, and
// rows refreshed as the runs' events arrive.

import { debounced, query, request } from "./api.js";
import { badge, h, link, replace, time } from "./dom.js";

export const STATUSES = ["received", "triaged", "policy_evaluated", "paused", "resumed", "resolving",
  "waiting_for_input", "resolved", "completed", "failed", "rejected", "cancelled", "running"];
/** Topics that change what a row shows: status, severity, playbook. */
export const RUN_TOPICS = "run.*,triage.*,policy.*,dashboard.*,workflow.*,playbook.recalculated,sla.*,schedule.*";

function amount(run) {
  return run.amount ? `${run.amount} ${run.currency || ""}`.trim() : "—";
}

function row(run) {
  return h("tr", { "data-testid": "run-row", "data-run-id": run.id, "data-status": run.status },
    h("td", {}, link(`#/runs/${encodeURIComponent(run.id)}`, run.id, { class: "mono" })),
    h("td", {}, badge(run.status)),
    h("td", {}, run.stage),
    h("td", {}, run.workflow_id),
    h("td", {}, run.domain || "—", run.type ? h("div", { class: "muted" }, run.type) : null),
    h("td", { class: "num" }, amount(run)),
    h("td", {}, run.severity ? h("span", { class: `sev sev-${run.severity}` }, run.severity) : "—"),
    h("td", {}, run.playbook_id ? `${run.playbook_id} v${run.playbook_version}` : "—"),
    h("td", {}, time(run.created_at)));
}

export async function runsPage(main, ctx) {
  const selected = new Set((ctx.query.get("status") || "").split(",").filter(Boolean));
  const workflow = ctx.query.get("workflow_id") || "";
  let shown = 50;
  let cursor = null;

  const go = (statuses, workflowId) => {
    const search = query({ status: [...statuses].join(","), workflow_id: workflowId });
    location.hash = `#/runs${search}`;
  };
  const boxes = STATUSES.map((status) => h("label", { class: "check" },
    h("input", { type: "checkbox", name: "status", value: status, checked: selected.has(status),
      onchange: (event) => {
        if (event.target.checked) selected.add(status);
        else selected.delete(status);
        go(selected, workflowSelect.value);
      } }),
    status.replaceAll("_", " ")));
  const workflowSelect = h("select", { id: "workflow-filter", name: "workflow_id",
    onchange: () => go(selected, workflowSelect.value) }, h("option", { value: "" }, "All workflows"));
  if (workflow) workflowSelect.append(h("option", { value: workflow, selected: true }, workflow));

  const body = h("tbody", {});
  const empty = h("p", { class: "muted", hidden: true }, "No runs match these filters.");
  const older = h("button", { type: "button", hidden: true, onclick: () => loadOlder() }, "Load older runs");
  replace(main,
    h("h1", {}, "Runs"),
    h("form", { class: "filters", "aria-label": "Filters", onsubmit: (e) => e.preventDefault() },
      h("fieldset", {}, h("legend", {}, "Status"), boxes),
      h("div", { class: "field" }, h("label", { for: "workflow-filter" }, "Workflow"), workflowSelect),
      h("button", { type: "button", onclick: () => go(new Set(), "") }, "Clear filters")),
    h("table", { class: "runs", "aria-label": "Runs" },
      h("thead", {}, h("tr", {}, ["Run", "Status", "Stage", "Workflow", "Exception", "Amount", "Severity",
        "Playbook", "Created"].map((name) => h("th", { scope: "col" }, name)))),
      body),
    empty, older);

  request("GET", "/api/v1/workflows").then((answer) => {
    for (const item of answer.items) {
      if (item.id === workflow) continue;
      workflowSelect.append(h("option", { value: item.id }, `${item.name} (${item.total_runs})`));
    }
  }).catch(ctx.fail);

  const filters = () => ({ status: [...selected].join(","), workflow_id: workflow });

  /** The newest ``shown`` runs again: new runs appear, changed ones change, filters still hold. */
  async function refresh() {
    let page;
    try {
      page = await request("GET", `/api/v1/runs${query({ ...filters(), limit: Math.min(shown, 500) })}`);
    } catch (error) {
      ctx.fail(error);
      return;
    }
    replace(body, page.items.map(row));
    cursor = page.next_cursor;
    older.hidden = !cursor;
    empty.hidden = page.items.length > 0;
  }

  async function loadOlder() {
    try {
      const page = await request("GET", `/api/v1/runs${query({ ...filters(), limit: 50, cursor })}`);
      body.append(...page.items.map(row));
      shown += page.items.length;
      cursor = page.next_cursor;
      older.hidden = !cursor;
    } catch (error) {
      ctx.fail(error);
    }
  }

  const soon = debounced(refresh, 200);
  ctx.onLeave(soon.cancel);
  await refresh();
  ctx.live(`/api/v1/events/stream${query({ topics: RUN_TOPICS })}`, { onEvent: soon, onResync: soon });
}
