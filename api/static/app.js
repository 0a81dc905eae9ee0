// The dashboard: log-in with a pasted bearer token, hash routes for each page, one place that
// shows API errors and notices, and the live-update indicator.

import { ApiError, LiveStream, claims, request, setToken, token } from "./api.js";
import { approvalsPage } from "./approvals.js";
import { copilotPage } from "./copilot.js";
import { h, replace } from "./dom.js";
import { errorView } from "./forms.js";
import { runPage } from "./run.js";
import { runsPage } from "./runs.js";
import { schedulesPage } from "./schedules.js";
import { webhooksPage } from "./webhooks.js";

const main = document.getElementById("main");
const errors = document.getElementById("errors");
const notices = document.getElementById("notices");
const live = document.getElementById("live");
const who = document.getElementById("who");
const nav = document.getElementById("nav");
const logout = document.getElementById("logout");

const PAGES = [
  [/^\/runs\/([^/]+)$/, runPage, "Run"],
  [/^\/runs$/, runsPage, "Runs"],
  [/^\/approvals$/, approvalsPage, "Approvals"],
  [/^\/schedules$/, schedulesPage, "Schedules"],
  [/^\/webhooks$/, webhooksPage, "Webhooks"],
  [/^\/copilot$/, copilotPage, "Copilot"],
];

const LIVE_TEXT = {
  connecting: "Connecting to live updates…",
  live: "Live",
  reconnecting: "Reconnecting… (refreshing every 5 s meanwhile)",
  unavailable: "Live updates unavailable — refreshing every 5 s",
};

let teardown = [];

function showError(error) {
  const key = `${error.code}|${error.message}`;
  for (const old of errors.querySelectorAll(".message")) if (old.dataset.key === key) old.remove();
  const item = h("div", { class: "message error", "data-testid": "api-error", dataset: { key } }, errorView(error),
    h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss error", onclick: () => item.remove() }, "×"));
  errors.append(item);
  while (errors.children.length > 5) errors.firstElementChild.remove();
}

function notice(text) {
  const item = h("div", { class: "message notice" }, text,
    h("button", { type: "button", class: "dismiss", "aria-label": "Dismiss notice", onclick: () => item.remove() }, "×"));
  notices.append(item);
  while (notices.children.length > 3) notices.firstElementChild.remove();
}

/** Any failure a page could not handle itself: shown; a refused token means logging in again. */
function fail(error) {
  if (!(error instanceof ApiError)) error = new ApiError(0, "CLIENT_ERROR", error?.message || String(error));
  if (error.status === 401 && token()) {
    setToken(null);
    render();
  }
  showError(error);
}

function setLive(state) {
  live.hidden = !state;
  live.dataset.state = state || "off";
  live.textContent = state ? LIVE_TEXT[state] : "";
}

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/runs";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

function context(params, query) {
  const ctx = {
    params,
    query,
    fail,
    notice,
    left: false,
    /** A live stream for this page, stopped when the page is left (none once it was left). */
    live(path, handlers) {
      if (ctx.left) return null;
      const stream = new LiveStream(path, { ...handlers, onState: setLive, onError: fail }).start();
      teardown.push(() => stream.stop());
      return stream;
    },
    onLeave(fn) {
      if (ctx.left) fn();
      else teardown.push(fn);
    },
  };
  teardown.push(() => { ctx.left = true; });
  return ctx;
}

function leavePage() {
  for (const fn of teardown) fn();
  teardown = [];
  setLive(null);
}

function render() {
  leavePage();
  replace(errors);
  const jwt = token();
  const signedIn = Boolean(jwt);
  nav.hidden = logout.hidden = !signedIn;
  if (!signedIn) {
    replace(who);
    document.title = "Autopilot — sign in";
    replace(main, loginForm());
    return;
  }
  const c = claims(jwt) || {};
  replace(who, `${c.sub || "?"} @ ${c.tenant || "?"}`, h("small", {}, ` (${(c.roles || []).join(", ")})`));
  const { path, query } = parseHash();
  for (const link of nav.querySelectorAll("a")) {
    const current = path === link.getAttribute("href").slice(1) || path.startsWith(`${link.getAttribute("href").slice(1)}/`);
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, page, title] of PAGES) {
    const match = pattern.exec(path);
    if (!match) continue;
    document.title = `Autopilot — ${title}`;
    replace(main);
    Promise.resolve(page(main, context(match.slice(1).map(decodeURIComponent), query))).catch(fail);
    return;
  }
  replace(main, h("h1", {}, "Not found"), h("p", {}, "No page here. ", h("a", { href: "#/runs" }, "See the runs.")));
}

function loginForm() {
  const input = h("textarea", { id: "token", name: "token", rows: 4, class: "mono", autocomplete: "off",
    spellcheck: "false", required: true });
  const form = h("form", { class: "login", "aria-labelledby": "login-title",
    onsubmit: async (event) => {
      event.preventDefault();
      const value = input.value.trim().replace(/^Bearer\s+/i, "");
      if (!value) return;
      try {
        await request("GET", "/api/v1/runs?limit=1", undefined, value);
      } catch (error) {
        replace(errors);
        showError(error);
        return;
      }
      setToken(value);
      render();
    } },
  h("h1", { id: "login-title" }, "Sign in"),
  h("p", {}, "Paste a bearer token: the demo token that ", h("code", {}, "./dev serve"),
    " printed, or one from ", h("code", {}, "autopilot token --tenant acme --sub you --role admin"), "."),
  h("label", { for: "token" }, "Bearer token"), input,
  h("div", { class: "buttons" }, h("button", { type: "submit" }, "Sign in")));
  return form;
}

// A link such as http://host/#token=<jwt> signs in at once; the token is then dropped from the URL.
const fromLink = /^#token=([^&]+)/.exec(location.hash);
if (fromLink) {
  setToken(decodeURIComponent(fromLink[1]));
  history.replaceState(null, "", `${location.pathname}#/runs`);
}

logout.addEventListener("click", () => {
  setToken(null);
  location.hash = "#/runs";
  render();
});
window.addEventListener("hashchange", render);
window.addEventListener("unhandledrejection", (event) => fail(event.reason));
render();
