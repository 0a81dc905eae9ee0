// The copilot box: ask a question about the runs; show the answer and the tools it used, and keep
// the conversation for follow-ups. A server without the copilot (404) or without a model
// configured (503) says so.

import { ApiError, request } from "./api.js";
import { h, replace } from "./dom.js";
import { errorView } from "./forms.js";

const ASK = "/api/v1/copilot/ask";

const NOT_CONFIGURED = "The copilot is not configured.";

/** Says so, with the server's own explanation when it gave one (a 503 says what to set). */
function notConfigured(status, error) {
  const message = error?.status === 503 && error.message ? error.message : "";
  const repeats = message.toLowerCase().startsWith(NOT_CONFIGURED.slice(0, -1).toLowerCase());
  replace(status, repeats ? message : [h("strong", {}, NOT_CONFIGURED), message ? ` ${message}` : ""]);
  status.hidden = false;
}

function text(value) {
  return typeof value === "string" ? value : JSON.stringify(value ?? "");
}

function toolCall(tool) {
  return h("li", { "data-testid": "copilot-tool" }, h("code", {}, tool.tool_name || tool.name || "tool"),
    h("dl", { class: "fields" },
      h("dt", {}, "input"), h("dd", {}, text(tool.input_summary ?? tool.input)),
      h("dt", {}, "output"), h("dd", {}, text(tool.output_summary ?? tool.output))));
}

export async function copilotPage(main, ctx) {
  let threadId = null;
  const status = h("div", { class: "card notice-box", "data-testid": "copilot-status", role: "status", hidden: true });
  const answer = h("section", { class: "card", "data-testid": "copilot-answer", "aria-label": "Answer", hidden: true });
  const question = h("textarea", { id: "copilot-query", name: "query", rows: 3, required: true, minlength: 3,
    placeholder: "Why did run … pause? Which runs failed today?" });
  question.value = ctx.query.get("q") || "";
  const restart = h("button", { type: "button", hidden: true, onclick: () => {
    threadId = null;
    restart.hidden = true;
    answer.hidden = true;
  } }, "New conversation");
  const form = h("form", { class: "copilot", "aria-label": "Copilot question",
    onsubmit: async (event) => {
      event.preventDefault();
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      answer.setAttribute("aria-busy", "true");
      try {
        const body = { query: question.value.trim() };
        if (threadId) body.thread_id = threadId;
        const reply = await request("POST", ASK, body);
        status.hidden = true;
        threadId = reply.thread_id || null;
        restart.hidden = !threadId;
        replace(answer, h("h2", {}, "Answer"),
          h("div", { class: "reply", "data-testid": "copilot-reply" }, reply.reply || ""),
          h("h3", {}, "Tools used"),
          (reply.tools_used || []).length ? h("ol", { class: "tools" }, reply.tools_used.map(toolCall))
            : h("p", { class: "muted" }, "None."),
          h("p", { class: "muted" }, `${reply.iterations ?? 0} model turns`,
            reply.limit_reached ? " — stopped at the iteration limit" : "",
            threadId ? "; your next question follows up on this one" : ""));
        answer.hidden = false;
      } catch (error) {
        if (error instanceof ApiError && (error.status === 503 || (error.status === 404 && error.code === "ROUTE_NOT_FOUND"))) {
          notConfigured(status, error);
        } else if (error instanceof ApiError && error.status !== 401) {
          replace(answer, h("div", { class: "form-error", role: "alert" }, errorView(error)));
          answer.hidden = false;
        } else {
          ctx.fail(error);
        }
      } finally {
        button.disabled = false;
        answer.removeAttribute("aria-busy");
      }
    } },
  h("label", { for: question.id }, "Ask the copilot"), question,
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Ask"), restart));
  replace(main, h("h1", {}, "Copilot"), status, form, answer);

  // Say so at once when this server has no copilot route at all.
  try {
    const response = await fetch("/openapi.json");
    if (response.ok && !((await response.json()).paths || {})[ASK]) notConfigured(status);
  } catch {
    /* the question's own answer will say */
  }
}
