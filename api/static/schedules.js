// Schedules with their next fire times, paused state, and pause / resume / run-now.

import { request } from "./api.js";
import { h, link, replace, time } from "./dom.js";

function trigger(spec) {
  if (spec.type === "cron") return [h("code", {}, spec.expression), ` (${spec.timezone})`];
  if (spec.type === "interval") return `every ${spec.seconds} s`;
  return JSON.stringify(spec);
}

export async function schedulesPage(main, ctx) {
  const body = h("tbody", {});
  const empty = h("p", { class: "muted", hidden: true }, "No schedules.");
  replace(main,
    h("div", { class: "title" }, h("h1", {}, "Schedules"),
      h("button", { type: "button", onclick: () => refresh() }, "Refresh")),
    h("table", { "aria-label": "Schedules" },
      h("thead", {}, h("tr", {}, ["Schedule", "Workflow", "Trigger", "State", "Next fires", "Last fire", ""]
        .map((n) => h("th", { scope: "col" }, n)))),
      body),
    empty);

  async function act(id, verb, label) {
    try {
      const answer = await request("POST", `/api/v1/schedules/${encodeURIComponent(id)}/${verb}`,
        verb === "pause" ? {} : undefined);
      if (verb === "run-now") {
        ctx.notice(h("span", {}, `Schedule ${id} fired: run `,
          link(`#/runs/${encodeURIComponent(answer.run_id)}`, answer.run_id), ` (${answer.status}).`));
      } else {
        ctx.notice(`Schedule ${id} ${label}.`);
      }
    } catch (error) {
      ctx.fail(error);
    }
    await refresh();
  }

  function row(s) {
    return h("tr", { "data-testid": "schedule-row", "data-schedule-id": s.id, "data-paused": String(s.paused) },
      h("td", {}, h("strong", {}, s.id), h("div", { class: "muted" }, s.description || "")),
      h("td", {}, s.workflow),
      h("td", {}, trigger(s.trigger)),
      h("td", {}, s.paused ? [h("span", { class: "badge status-paused" }, "paused"),
        s.paused_reason ? h("div", { class: "muted" }, s.paused_reason) : null]
        : h("span", { class: "badge status-running" }, "active"),
      s.consecutive_failures ? h("div", { class: "muted" }, `${s.consecutive_failures} failed in a row`) : null,
      s.running ? h("div", { class: "muted" }, `${s.running} running`) : null),
      h("td", {}, s.next_fires.length
        ? h("ol", { class: "fires", "aria-label": `Next fires of ${s.id}` }, s.next_fires.map((t) => h("li", {}, time(t, "short"))))
        : h("span", { class: "muted" }, s.paused ? "none while paused" : "none")),
      h("td", {}, time(s.last_fire_at),
        s.last_run_id ? h("div", {}, link(`#/runs/${encodeURIComponent(s.last_run_id)}`, s.last_run_id, { class: "mono" })) : null),
      h("td", {}, h("div", { class: "buttons" },
        s.paused
          ? h("button", { type: "button", "aria-label": `Resume ${s.id}`, onclick: () => act(s.id, "resume", "resumed") }, "Resume")
          : h("button", { type: "button", "aria-label": `Pause ${s.id}`, onclick: () => act(s.id, "pause", "paused") }, "Pause"),
        h("button", { type: "button", "aria-label": `Run ${s.id} now`, onclick: () => act(s.id, "run-now") }, "Run now"))));
  }

  async function refresh() {
    try {
      const answer = await request("GET", "/api/v1/schedules");
      replace(body, answer.items.map(row));
      empty.hidden = answer.items.length > 0;
    } catch (error) {
      ctx.fail(error);
    }
  }

  await refresh();
}
