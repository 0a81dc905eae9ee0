// The forms a person acts through: a paused run's decision (its gate's payload schema) and a
// waiting step's outputs (its output contract). The server checks both; its 400 answers are
// shown next to the fields they name.

import { ApiError, request } from "./api.js";
import { h, replace } from "./dom.js";

/** An API error as shown to people: code, message, the fields it names, the request id. */
export function errorView(error) {
  const details = error.details;
  let more = null;
  if (error instanceof ApiError && error.fieldErrors.length) {
    more = h("ul", {}, error.fieldErrors.map((d) => h("li", {}, h("code", {}, d.field), ": ", d.message || "")));
  } else if (details !== null && details !== undefined && !(Array.isArray(details) && !details.length)) {
    more = h("pre", { class: "json" }, JSON.stringify(details, null, 2));
  }
  return [
    h("strong", { class: "error-code" }, error.code || "ERROR"), " ", h("span", {}, error.message || String(error)),
    more,
    error.requestId ? h("small", { class: "request-id" }, `request ${error.requestId}`) : null,
  ];
}

/** Field errors beside their inputs and the rest in the form's own alert; false if not an API error. */
function showFormError(form, error, prefix) {
  const alert = form.querySelector(".form-error");
  for (const slot of form.querySelectorAll(".field-error")) slot.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  if (!error) {
    replace(alert);
    alert.hidden = true;
    return;
  }
  alert.hidden = false;
  replace(alert, errorView(error));
  if (!(error instanceof ApiError)) return;
  for (const { field, message } of error.fieldErrors) {
    const name = field.startsWith(prefix) ? field.slice(prefix.length).split(/[.[]/)[0] : null;
    const slot = name && form.querySelector(`.field-error[data-field="${CSS.escape(name)}"]`);
    if (!slot) continue;
    slot.textContent = slot.textContent ? `${slot.textContent}; ${message}` : message;
    form.querySelector(`[name="${CSS.escape(name)}"]`)?.setAttribute("aria-invalid", "true");
  }
}

function fieldError(formId, name) {
  return h("p", { class: "field-error", id: `${formId}-${name}-error`, "data-field": name,
    "data-testid": `field-error-${name}`, "aria-live": "polite" });
}

function formAlert() {
  return h("div", { class: "form-error", role: "alert", "data-testid": "form-error", hidden: true });
}

let formCount = 0;

/** Does the gate ask for the usual ``decision`` (approve/reject) and optional ``reason``? */
function isDecisionSchema(schema) {
  const properties = (schema && schema.properties) || {};
  return "decision" in properties && Object.keys(properties).every((k) => k === "decision" || k === "reason");
}

/**
 * Approve or reject a paused run. ``pending`` has run_id, workflow_id and payload_schema;
 * ``onDone(answer)`` runs after the server accepted the decision.
 */
export function decisionForm(pending, ctx, onDone) {
  const id = `decide-${++formCount}`;
  const schema = pending.payload_schema || {};
  const path = `/api/v1/workflows/${encodeURIComponent(pending.workflow_id)}/runs/${encodeURIComponent(pending.run_id)}/resume`;
  let form;

  async function send(payload) {
    for (const button of form.querySelectorAll("button")) button.disabled = true;
    try {
      const answer = await request("POST", path, { payload });
      showFormError(form, null);
      const said = { resuming: "approved, the run goes on", rejected: "rejected",
        approval_recorded: "approval recorded; the gate needs more approvals" }[answer.status] || answer.status;
      ctx.notice(`Run ${pending.run_id}: ${said}.`);
      onDone(answer);
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) ctx.fail(error);
      showFormError(form, error, "payload.");
    } finally {
      for (const button of form.querySelectorAll("button")) button.disabled = false;
    }
  }

  if (isDecisionSchema(schema)) {
    const reason = h("textarea", { id: `${id}-reason`, name: "reason", rows: 2,
      "aria-describedby": `${id}-reason-error` });
    form = h("form", { class: "decision", novalidate: true, "aria-label": `Decision on run ${pending.run_id}`,
      onsubmit: (event) => {
        event.preventDefault();
        const decision = event.submitter?.value || "approve";
        const payload = { decision };
        if (reason.value.trim()) payload.reason = reason.value.trim();
        send(payload);
      } },
    h("div", { class: "field" },
      h("label", { for: reason.id }, "Reason ", h("small", {}, "(required to reject)")), reason,
      fieldError(id, "reason")),
    fieldError(id, "decision"),
    formAlert(),
    h("div", { class: "buttons" },
      h("button", { type: "submit", name: "decision", value: "approve", class: "approve" }, "Approve"),
      h("button", { type: "submit", name: "decision", value: "reject", class: "reject" }, "Reject")));
    return form;
  }

  const text = h("textarea", { id: `${id}-payload`, name: "payload", rows: 6, class: "mono",
    "aria-describedby": `${id}-payload-error` }, JSON.stringify({ decision: "approve" }, null, 2));
  form = h("form", { class: "decision", novalidate: true, "aria-label": `Decision on run ${pending.run_id}`,
    onsubmit: (event) => {
      event.preventDefault();
      let payload;
      try {
        payload = JSON.parse(text.value);
      } catch (error) {
        showFormError(form, new ApiError(0, "INVALID_JSON", `the payload is not JSON: ${error.message}`));
        return;
      }
      send(payload);
    } },
  h("div", { class: "field" },
    h("label", { for: text.id }, "Resume payload (JSON)"), text, fieldError(id, "payload")),
  h("details", {}, h("summary", {}, "The gate's payload schema"), h("pre", { class: "json" }, JSON.stringify(schema, null, 2))),
  formAlert(),
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Submit decision")));
  return form;
}

function hint(spec) {
  const parts = [spec.type];
  if (spec.minimum !== undefined && spec.maximum !== undefined) parts.push(`${spec.minimum} to ${spec.maximum}`);
  else if (spec.minimum !== undefined) parts.push(`at least ${spec.minimum}`);
  else if (spec.maximum !== undefined) parts.push(`at most ${spec.maximum}`);
  parts.push(spec.required === false ? "optional" : "required");
  return `${parts.join(", ")}${spec.description ? ` — ${spec.description}` : ""}`;
}

function outputInput(id, name, spec) {
  const attrs = { id: `${id}-${name}`, name, "aria-describedby": `${id}-${name}-hint ${id}-${name}-error` };
  if (spec.enum) {
    return h("select", attrs, h("option", { value: "" }, "— choose —"),
      spec.enum.map((v) => h("option", { value: JSON.stringify(v) }, String(v))));
  }
  if (spec.type === "boolean") {
    return h("select", attrs, h("option", { value: "" }, "— choose —"),
      h("option", { value: "true" }, "true"), h("option", { value: "false" }, "false"));
  }
  if (spec.type === "object" || spec.type === "array") {
    return h("textarea", { ...attrs, rows: 3, class: "mono", placeholder: spec.type === "array" ? "[ ]" : "{ }" });
  }
  if (spec.type === "number") return h("input", { ...attrs, type: "text", inputmode: "decimal" });
  return h("input", { ...attrs, type: "text" });
}

/** The value to send for one field, or undefined to leave it out; throws on unreadable JSON. */
function outputValue(input, spec) {
  const raw = input.value;
  if (raw.trim() === "") return undefined;
  if (input.tagName === "SELECT") return JSON.parse(raw);
  if (spec.type === "number") {
    const number = Number(raw.trim());
    return Number.isFinite(number) ? number : raw;  // not a number: the server says so
  }
  if (spec.type === "object" || spec.type === "array") return JSON.parse(raw);
  return raw;
}

/** Complete a step that waits for a person (or a model) with the outputs its contract asks for. */
export function stepForm(runId, step, ctx, onDone) {
  const id = `step-${++formCount}`;
  const contract = step.output_contract || {};
  const path = `/api/v1/playbook-runs/${encodeURIComponent(runId)}/complete-step/${encodeURIComponent(step.id)}`;
  const inputs = Object.entries(contract).map(([name, spec]) => [name, spec, outputInput(id, name, spec)]);
  const form = h("form", { class: "step-form", novalidate: true, "data-testid": `step-form-${step.id}`,
    "aria-label": `Complete step ${step.name}`,
    onsubmit: async (event) => {
      event.preventDefault();
      const outputs = {};
      showFormError(form, null);
      for (const [name, spec, input] of inputs) {
        try {
          const value = outputValue(input, spec);
          if (value !== undefined) outputs[name] = value;
        } catch (error) {
          showFormError(form, new ApiError(0, "INVALID_JSON", `${name} is not JSON: ${error.message}`,
            [{ field: `outputs.${name}`, message: "not valid JSON" }]), "outputs.");
          return;
        }
      }
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const answer = await request("POST", path, { outputs });
        ctx.notice(`Step ${step.id} completed; the run is ${answer.data.run_status.replaceAll("_", " ")}.`);
        onDone(answer);
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) ctx.fail(error);
        showFormError(form, error, "outputs.");
      } finally {
        button.disabled = false;
      }
    } },
  inputs.length ? null : h("p", {}, "This step asks for no outputs."),
  inputs.map(([name, spec, input]) => h("div", { class: "field" },
    h("label", { for: input.id }, name), input,
    h("small", { id: `${id}-${name}-hint`, class: "hint" }, hint(spec)),
    fieldError(id, name))),
  formAlert(),
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Complete step")));
  return form;
}
