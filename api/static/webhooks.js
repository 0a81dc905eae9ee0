// Webhooks: the tenant's endpoints (add one, its secret shown once; test, rotate, enable or
// disable, send the dead again, delete), and recent deliveries with their attempts.

import { request } from "./api.js";
import { badge, h, link, replace, time } from "./dom.js";

const STATUSES = ["", "pending", "delivered", "dead", "cancelled"];

export async function webhooksPage(main, ctx) {
  const endpoints = h("tbody", {});
  const deliveries = h("tbody", {});
  const noEndpoints = h("p", { class: "muted", hidden: true }, "No endpoints yet.");
  const noDeliveries = h("p", { class: "muted", hidden: true }, "No deliveries.");
  const secretBox = h("div", { class: "message notice", role: "status", "data-testid": "new-secret", hidden: true });
  const status = h("select", { id: "delivery-status", "aria-label": "Show deliveries", onchange: () => loadDeliveries() },
    STATUSES.map((s) => h("option", { value: s }, s || "all")));

  const url = h("input", { id: "webhook-url", name: "url", type: "url", required: true, placeholder: "https://…" });
  const topics = h("input", { id: "webhook-topics", name: "topics", required: true, value: "run.paused, run.failed",
    "aria-describedby": "topics-help" });
  const description = h("input", { id: "webhook-description", name: "description", maxlength: 500 });
  const form = h("form", { class: "card webhook-form", "aria-labelledby": "add-webhook", onsubmit: async (event) => {
    event.preventDefault();
    const list = topics.value.split(",").map((t) => t.trim()).filter(Boolean);
    try {
      const created = await request("POST", "/api/v1/webhooks",
        { url: url.value.trim(), topics: list, description: description.value });
      showSecret(`Endpoint ${created.id} added. Its signing secret, shown this once:`, created.secret);
      form.reset();
    } catch (error) {
      ctx.fail(error);
    }
    await refresh();
  } },
  h("h2", { id: "add-webhook" }, "Add an endpoint"),
  h("label", { for: "webhook-url" }, "URL"), url,
  h("label", { for: "webhook-topics" }, "Topics"), topics,
  h("p", { id: "topics-help", class: "muted" }, "Comma-separated patterns, as on the streams: ",
    h("code", {}, "*"), " is one segment, ", h("code", {}, "#"), " any, e.g. ", h("code", {}, "run.*"), "."),
  h("label", { for: "webhook-description" }, "Description"), description,
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Add endpoint")));

  replace(main,
    h("div", { class: "title" }, h("h1", {}, "Webhooks"),
      h("button", { type: "button", onclick: () => refresh() }, "Refresh")),
    secretBox, form,
    h("h2", {}, "Endpoints"),
    h("table", { "aria-label": "Webhook endpoints" },
      h("thead", {}, h("tr", {}, ["Endpoint", "Topics", "State", ""].map((n) => h("th", { scope: "col" }, n)))),
      endpoints),
    noEndpoints,
    h("div", { class: "title" }, h("h2", {}, "Recent deliveries"), h("label", { for: "delivery-status" }, "Show "), status),
    h("table", { "aria-label": "Deliveries" },
      h("thead", {}, h("tr", {}, ["Delivery", "To", "Topic", "Run", "Status", "Attempts", "Last answer", "Created", ""]
        .map((n) => h("th", { scope: "col" }, n)))),
      deliveries),
    noDeliveries);

  function showSecret(text, secret) {
    replace(secretBox, h("p", {}, text), h("code", { class: "mono", "data-testid": "secret" }, secret),
      h("p", { class: "muted" }, "Receivers verify the webhook-signature header with it (Standard Webhooks)."),
      h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss the secret",
        onclick: () => { secretBox.hidden = true; replace(secretBox); } }, "×"));
    secretBox.hidden = false;
  }

  async function act(label, method, path, body, after) {
    try {
      const answer = await request(method, path, body);
      if (after) after(answer);
      else ctx.notice(label);
    } catch (error) {
      ctx.fail(error);
    }
    await refresh();
  }

  function endpointRow(e) {
    const one = `/api/v1/webhooks/${encodeURIComponent(e.id)}`;
    return h("tr", { "data-testid": "webhook-row", "data-webhook-id": e.id, "data-enabled": String(e.enabled) },
      h("td", {}, h("div", { class: "mono" }, e.url), h("div", { class: "muted" }, e.id, e.description ? ` · ${e.description}` : "")),
      h("td", {}, e.topics.map((t) => [h("code", { class: "topic" }, t), " "])),
      h("td", {}, e.enabled ? badge("enabled") : [badge("disabled"), h("div", { class: "muted" }, e.disabled_reason || "")],
        e.consecutive_failures ? h("div", { class: "muted" }, `${e.consecutive_failures} failed in a row`) : null),
      h("td", {}, h("div", { class: "buttons" },
        h("button", { type: "button", "aria-label": `Send a test to ${e.id}`,
          onclick: () => act(`Test message queued for ${e.id}.`, "POST", `${one}/test`) }, "Send test"),
        h("button", { type: "button", "aria-label": `Rotate the secret of ${e.id}`,
          onclick: () => act("", "POST", `${one}/rotate-secret`, {},
            (a) => showSecret(`New secret for ${e.id}; the old one signs beside it until ${a.previous_secret_until || "now"}:`, a.secret)) },
        "Rotate secret"),
        h("button", { type: "button", "aria-label": `${e.enabled ? "Disable" : "Enable"} ${e.id}`,
          onclick: () => act(`${e.id} ${e.enabled ? "disabled" : "enabled"}.`, "PATCH", one, { enabled: !e.enabled }) },
        e.enabled ? "Disable" : "Enable"),
        h("button", { type: "button", "aria-label": `Redeliver the dead deliveries of ${e.id}`,
          onclick: () => act("", "POST", `${one}/redeliver-dead`, undefined,
            (a) => ctx.notice(`${a.redelivered} dead ${a.redelivered === 1 ? "delivery" : "deliveries"} of ${e.id} queued again.`)) },
        "Redeliver dead"),
        h("button", { type: "button", class: "danger", "aria-label": `Delete ${e.id}`,
          onclick: () => confirm(`Delete ${e.url}? Its waiting deliveries are cancelled.`)
            && act(`${e.id} deleted.`, "DELETE", one) }, "Delete"))));
  }

  function deliveryRow(d) {
    const attempts = h("td", { colspan: 9, hidden: true });
    const detail = h("tr", { class: "detail" }, attempts);
    const row = h("tr", { "data-testid": "delivery-row", "data-delivery-id": d.id, "data-status": d.status },
      h("td", { class: "mono small" }, d.id),
      h("td", { class: "mono small" }, d.endpoint_id),
      h("td", {}, h("code", {}, d.topic)),
      h("td", {}, d.run_id ? link(`#/runs/${encodeURIComponent(d.run_id)}`, d.run_id, { class: "mono" }) : "—"),
      h("td", {}, badge(d.status)),
      h("td", {}, String(d.attempts)),
      h("td", {}, d.last_status_code ? String(d.last_status_code) : "", d.last_error ? h("div", { class: "muted" }, d.last_error) : null),
      h("td", {}, time(d.created_at)),
      h("td", {}, h("div", { class: "buttons" },
        h("button", { type: "button", "aria-label": `Attempts of ${d.id}`, onclick: () => showAttempts(d.id, attempts) }, "Attempts"),
        d.status === "pending" ? null : h("button", { type: "button", "aria-label": `Redeliver ${d.id}`,
          onclick: () => act(`${d.id} queued again.`, "POST", `/api/v1/deliveries/${encodeURIComponent(d.id)}/redeliver`) },
        "Redeliver"))));
    return [row, detail];
  }

  async function showAttempts(id, cell) {
    if (!cell.hidden) {
      cell.hidden = true;
      return;
    }
    try {
      const d = await request("GET", `/api/v1/deliveries/${encodeURIComponent(id)}`);
      replace(cell, d.attempts_made.length
        ? h("ol", { class: "attempts", "aria-label": `Attempts of ${id}` }, d.attempts_made.map((a) => h("li", {},
          time(a.started_at), ` · ${a.status_code ?? "no answer"} · ${a.duration_ms} ms`,
          a.error ? h("div", { class: "muted" }, a.error) : null,
          a.response_snippet ? h("pre", { class: "json" }, a.response_snippet) : null)))
        : h("p", { class: "muted" }, "Not tried yet."));
      cell.hidden = false;
    } catch (error) {
      ctx.fail(error);
    }
  }

  async function loadDeliveries() {
    const query = status.value ? `&status=${status.value}` : "";
    const answer = await request("GET", `/api/v1/deliveries?limit=50${query}`);
    replace(deliveries, answer.items.map(deliveryRow));
    noDeliveries.hidden = answer.items.length > 0;
  }

  async function refresh() {
    try {
      const answer = await request("GET", "/api/v1/webhooks");
      replace(endpoints, answer.items.map(endpointRow));
      noEndpoints.hidden = answer.items.length > 0;
      await loadDeliveries();
    } catch (error) {
      ctx.fail(error);
    }
  }

  await refresh();
}
