// One run: summary, triage and policy results, decisions, the playbook's steps, what was sent
// for it (deliveries), the timeline (live), and the forms for what it waits on: a decision at its
// gate, or a step's outputs.

import { debounced, query, request } from "./api.js";
import { badge, fields, h, json, link, reconcile, replace, show, time } from "./dom.js";
import { decisionForm, stepForm } from "./forms.js";

const WAITING_STEP = new Set(["waiting_for_input", "waiting_for_signal"]);
const SUMMARY_KEYS = ["step_id", "status", "decision", "gate", "reason", "playbook_id", "playbook_version", "severity", "error",
  "message", "channel", "to", "comment", "approvals"];

function summarise(payload) {
  const parts = [];
  for (const key of SUMMARY_KEYS) {
    const value = payload?.[key];
    if (value === undefined || value === null || typeof value === "object") continue;
    parts.push(`${key.replaceAll("_", " ")}: ${value}`);
  }
  const text = parts.join(" · ");
  return text.length > 240 ? `${text.slice(0, 237)}…` : text;
}

function eventItem(event) {
  return h("li", { "data-seq": event.seq, "data-topic": event.topic, "data-testid": "timeline-event" },
    h("span", { class: "seq" }, `#${event.seq}`), " ", time(event.created_at), " ",
    h("code", { class: "topic" }, event.topic), " ", h("span", { class: "actor" }, event.actor), " ",
    h("span", { class: "summary" }, summarise(event.payload)),
    h("details", {}, h("summary", {}, "payload"), json(event.payload)));
}

function section(title, testid, ...content) {
  return h("section", { class: "card", "data-testid": testid, "aria-label": title }, h("h2", {}, title), ...content);
}

export async function runPage(main, ctx) {
  const [runId] = ctx.params;
  const path = `/api/v1/runs/${encodeURIComponent(runId)}`;
  const title = h("h1", {}, "Run ", h("span", { class: "mono" }, runId));
  const status = h("span", { "data-testid": "run-status" });
  const actions = h("div", { class: "actions" });
  const details = h("div", { class: "grid" });
  const steps = h("div", {});
  const sent = h("div", {});
  const timeline = h("ol", { class: "timeline", "data-testid": "timeline", "aria-label": "Timeline" });
  const panels = new Map();
  const events = new Map();
  let run = null;

  replace(main,
    h("p", {}, link("#/runs", "← Runs")),
    h("div", { class: "title" }, title, status),
    actions, details,
    section("Playbook", "playbook", steps),
    section("Deliveries", "deliveries", sent),
    section("Timeline", "timeline-section", timeline));

  function addEvents(items) {
    for (const event of items) {
      if (events.has(event.seq)) continue;
      events.set(event.seq, event);
      const item = eventItem(event);
      const after = [...timeline.children].find((li) => Number(li.dataset.seq) > event.seq);
      timeline.insertBefore(item, after || null);
    }
  }

  const lastSeq = () => Math.max(0, ...events.keys());

  async function catchUp() {
    for (;;) {
      const page = await request("GET", `${path}/events${query({ after_seq: lastSeq(), limit: 1000 })}`);
      addEvents(page.items);
      if (!page.next_after_seq) return;
    }
  }

  /** Reuse a form that is still wanted (so typing is not lost), build the new ones, drop the rest. */
  function renderActions(wanted) {
    const keep = new Map();
    for (const [key, build] of wanted) keep.set(key, panels.get(key) || build());
    panels.clear();
    for (const [key, element] of keep) panels.set(key, element);
    reconcile(actions, [...keep.values()]);
  }

  /** A link from a notification (``?decide=approve`` or ``reject``) brings the reader to the
   *  decision, ready to give it: focus only, never a decision taken by opening a link. */
  function pointedAt(form) {
    const wanted = ctx.query.get("decide");
    if (!wanted) return form;
    const target = wanted === "reject" ? form.querySelector("textarea") : form.querySelector('button[value="approve"]');
    setTimeout(() => { form.scrollIntoView({ block: "center" }); target?.focus(); }, 0);
    return form;
  }

  function render(playbook) {
    replace(status, badge(run.status), " ", h("span", { class: "muted" }, `stage: ${run.stage}`));
    const wanted = [];
    if (run.status === "paused" && run.pause) {
      const pause = run.pause;
      wanted.push([`pause:${pause.gate}:${pause.requested_at}`, () => section("Waiting for approval", "pause-panel",
        fields({ gate: pause.gate, reason: pause.reason, paused_step: run.paused_step,
          approvals: `${(pause.approvals || []).length} of ${pause.approvals_required || 1}`,
          decided_by: (pause.deciders || []).join(", ") || undefined }),
        h("dl", { class: "fields" }, h("dt", {}, "requested"), h("dd", {}, time(pause.requested_at)),
          h("dt", {}, "expires"), h("dd", {}, time(pause.expires_at))),
        pointedAt(decisionForm({ run_id: run.id, workflow_id: run.workflow_id, payload_schema: pause.payload_schema },
          ctx, () => soon.now())))]);
    }
    const progress = playbook?.playbook;
    for (const step of progress?.steps || []) {
      if (run.status !== "waiting_for_input" || !WAITING_STEP.has(step.status)) continue;
      wanted.push([`step:${step.id}:${step.waiting_since}`, () => section(`Step waiting: ${step.name}`,
        `step-panel-${step.id}`,
        h("p", { class: "muted" }, `${step.type} step ${step.id}`,
          step.assignee ? `, assigned to ${step.assignee}` : "", ", waiting since ", time(step.waiting_since)),
        step.instructions ? h("p", { class: "instructions", "data-testid": `step-instructions-${step.id}` },
          step.instructions) : null,
        stepForm(run.id, step, ctx, () => soon.now()))]);
    }
    renderActions(wanted);

    const exception = run.exception || {};
    replace(details,
      section("Summary", "summary",
        fields(run, ["status", "stage", "workflow_id", "trigger_type", "trigger_ref", "started_by", "severity",
          "playbook_id", "playbook_version", "error"]),
        h("dl", { class: "fields" }, h("dt", {}, "created"), h("dd", {}, time(run.created_at)),
          h("dt", {}, "updated"), h("dd", {}, time(run.updated_at))),
        h("p", {}, link(`#/copilot${query({ q: `Why is run ${run.id} ${run.status.replaceAll("_", " ")}?` })}`,
          "Ask the copilot about this run"))),
      section("Exception", "exception",
        fields(exception, ["source", "source_id", "domain", "type", "code", "amount", "currency", "sla_deadline"]),
        h("details", {}, h("summary", {}, "everything"), json(exception))),
      section("Triage", "triage", run.triage ? [
        fields(run.triage, ["rule_id", "source", "domain", "exception_type", "severity", "confidence",
          "sla_minutes_remaining", "tags", "reasons", "suggested_playbook_id", "suggested_playbook_version"]),
        (run.triage.candidates || []).length ? h("ul", {}, run.triage.candidates.map((c) =>
          h("li", {}, h("strong", {}, `${c.playbook_id} v${c.playbook_version}`), " — ", c.reasoning || ""))) : null,
      ] : h("p", { class: "muted" }, "Not triaged yet.")),
      section("Policy", "policy", run.policy
        ? fields(run.policy, ["playbook_id", "playbook_version", "playbook_name", "requires_approval", "approval_reasons",
          "gate", "reasoning", "notes"])
        : h("p", { class: "muted" }, "No policy result yet.")),
      run.decisions?.length ? section("Decisions", "decisions", h("table", {},
        h("thead", {}, h("tr", {}, ["Gate", "Decision", "By", "Reason", "At"].map((n) => h("th", { scope: "col" }, n)))),
        h("tbody", {}, run.decisions.map((d) => h("tr", {}, h("td", {}, d.gate), h("td", {}, d.decision),
          h("td", {}, d.by), h("td", {}, d.reason || "—"), h("td", {}, time(d.at))))))) : null,
      run.feedback ? section("Feedback", "feedback", fields(run.feedback)) : null);

    if (!progress) {
      replace(steps, h("p", { class: "muted" }, {
        no_playbook: "No playbook assigned.", playbook_missing: `Playbook ${playbook?.playbook_id} v${playbook?.playbook_version} is not in the library.`,
      }[playbook?.state] || "No playbook."));
      return;
    }
    replace(steps,
      h("p", {}, h("strong", {}, progress.name), ` (${progress.playbook_id} v${progress.playbook_version}) — `,
        `${progress.completed_steps} of ${progress.total_steps} steps completed `,
        h("progress", { max: 100, value: progress.progress_percent, "aria-label": "Playbook progress" })),
      h("table", { "aria-label": "Playbook steps" },
        h("thead", {}, h("tr", {}, ["#", "Step", "Type", "Action", "Assignee", "Status", "Outputs", "Completed"]
          .map((n) => h("th", { scope: "col" }, n)))),
        h("tbody", {}, progress.steps.map((step) => h("tr", { "data-testid": "step-row", "data-step-id": step.id,
          "data-status": step.status },
        h("td", {}, step.sequence), h("td", {}, step.name, h("div", { class: "muted mono" }, step.id)),
        h("td", {}, step.type), h("td", {}, step.action), h("td", {}, step.assignee || "—"),
        h("td", {}, badge(step.status)), h("td", {}, show(step.outputs)),
        h("td", {}, step.completed_at ? [time(step.completed_at), h("div", { class: "muted" }, step.completed_by || "")]
          : "—"))))));
  }

  /** What notify steps and webhook subscriptions sent for this run; a role without
   *  ``webhooks:read`` sees a note instead. */
  async function loadDeliveries() {
    let answer;
    try {
      answer = await request("GET", `/api/v1/deliveries${query({ run_id: runId, limit: 50 })}`);
    } catch (error) {
      if (error.status !== 403) throw error;
      replace(sent, h("p", { class: "muted" }, "Your role does not show deliveries."));
      return;
    }
    replace(sent, answer.items.length ? h("table", { "aria-label": "Deliveries of this run" },
      h("thead", {}, h("tr", {}, ["To", "Topic", "Status", "Attempts", "Last answer", "Created"]
        .map((n) => h("th", { scope: "col" }, n)))),
      h("tbody", {}, answer.items.map((d) => h("tr", { "data-testid": "run-delivery", "data-status": d.status },
        h("td", { class: "mono" }, d.endpoint_id), h("td", {}, h("code", {}, d.topic)), h("td", {}, badge(d.status)),
        h("td", {}, String(d.attempts)),
        h("td", {}, d.last_status_code ? String(d.last_status_code) : "", d.last_error ? h("div", { class: "muted" }, d.last_error) : null),
        h("td", {}, time(d.created_at))))))
      : h("p", { class: "muted" }, "Nothing sent for this run."));
  }

  async function refresh() {
    try {
      const [detail, playbook] = await Promise.all([request("GET", path), request("GET", `${path}/playbook`)]);
      run = detail;
      render(playbook);
      await loadDeliveries();
      await catchUp();
    } catch (error) {
      ctx.fail(error);
    }
  }

  const soon = debounced(refresh, 150);
  ctx.onLeave(soon.cancel);
  await refresh();
  if (!run) return;
  ctx.live(`${path}/events/stream`, {
    onEvent: ({ data }) => {
      if (data && data.run_id === runId && data.seq === lastSeq() + 1) addEvents([data]);
      soon();  // the run's row and steps changed too; a gap in seq is fetched by catchUp
    },
    onResync: soon,
  });
}
