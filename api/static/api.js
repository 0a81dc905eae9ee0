// Talking to /api/v1: the stored token, requests that turn every error into an ApiError carrying
// the envelope's code, message and details, and the live event stream with its polling fallback.

const TOKEN_KEY = "autopilot.token";

export function token() {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
}

/** The token's claims (sub, tenant, roles, exp), read without checking: the server checks. */
export function claims(jwt) {
  try {
    const part = jwt.split(".")[1].replaceAll("-", "+").replaceAll("_", "/");
    return JSON.parse(atob(part.padEnd(part.length + ((4 - (part.length % 4)) % 4), "=")));
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, code, message, details = null, requestId = null) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
    this.requestId = requestId;
  }

  /** ``[{field, message}]`` when the server named the fields that were wrong. */
  get fieldErrors() {
    return Array.isArray(this.details) ? this.details.filter((d) => d && typeof d === "object" && d.field) : [];
  }
}

async function errorFrom(response) {
  const requestId = response.headers.get("X-Request-Id");
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: described below by its status */
  }
  const error = body && body.error;
  if (error && error.code) {
    return new ApiError(response.status, error.code, error.message || "", error.details ?? null,
      body.request_id || requestId);
  }
  return new ApiError(response.status, `HTTP_${response.status}`, response.statusText || "request failed",
    null, requestId);
}

/** ``request("GET", "/api/v1/runs")``: the decoded JSON body, or throws ApiError. */
export async function request(method, path, body, bearer = token()) {
  const headers = { Accept: "application/json" };
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (cause) {
    throw new ApiError(0, "NETWORK_ERROR", `the server did not answer (${cause.message})`);
  }
  if (!response.ok) throw await errorFrom(response);
  if (response.status === 204) return null;
  return response.json();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * A server-sent event stream read with fetch, so the token goes in the Authorization header,
 * every event name (a topic) is received, and an error answer's envelope can be shown.
 * While the stream is not connected the page polls (``onResync`` every ``pollMs``); each time it
 * connects it resyncs once, so nothing that happened while it was away is missed. After a drop it
 * reconnects with Last-Event-ID.
 *
 * States: connecting, live, reconnecting, unavailable (no stream on this server: polling only).
 */
export class LiveStream {
  constructor(path, { onEvent, onResync, onState = () => {}, onError = () => {}, pollMs = 5000 }) {
    Object.assign(this, { path, onEvent, onResync, onState, onError, pollMs });
    this.lastEventId = null;
    this.retryMs = 1000;
    this.poller = null;
    this.controller = new AbortController();
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    this.controller.abort();
    this.stopPolling();
  }

  setState(state) {
    this.state = state;
    this.onState(state);
    if (state === "live") this.stopPolling();
    else if (state !== "connecting") this.startPolling();
  }

  startPolling() {
    if (!this.poller && !this.stopped) this.poller = setInterval(() => this.onResync(), this.pollMs);
  }

  stopPolling() {
    clearInterval(this.poller);
    this.poller = null;
  }

  async wait(ms) {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.controller.signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }

  async loop() {
    this.setState("connecting");
    let backoff = this.retryMs;
    while (!this.stopped) {
      let response;
      try {
        const headers = { Accept: "text/event-stream", Authorization: `Bearer ${token()}` };
        if (this.lastEventId !== null) headers["Last-Event-ID"] = this.lastEventId;
        response = await fetch(this.path, { headers, signal: this.controller.signal, cache: "no-store" });
      } catch {
        if (this.stopped) return;
        this.setState("reconnecting");
        await this.wait(backoff);
        backoff = Math.min(backoff * 2, 15000);
        continue;
      }
      const type = response.headers.get("Content-Type") || "";
      if (!response.ok || !type.startsWith("text/event-stream")) {
        if (response.ok) response.body?.cancel().catch(() => {});
        else {
          const error = await errorFrom(response);
          if (!(error.status === 404 && error.code === "ROUTE_NOT_FOUND")) this.onError(error);
        }
        this.setState("unavailable");
        await this.wait(30000);  // try the stream again now and then; polling carries on meanwhile
        continue;
      }
      backoff = this.retryMs;
      this.setState("live");
      this.onResync();
      try {
        await this.read(response.body);
      } catch {
        /* a dropped connection: reconnect below */
      }
      if (this.stopped) return;
      this.setState("reconnecting");
      await this.wait(backoff);
    }
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { type: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) this.dispatch(event);
          event = { type: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue;  // a comment: keep-alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event.type = text;
        else if (field === "data") event.data.push(text);
        else if (field === "id") this.lastEventId = text;
        else if (field === "retry" && /^\d+$/.test(text)) this.retryMs = Number(text);
      }
    }
  }

  dispatch(event) {
    let data;
    try {
      data = JSON.parse(event.data.join("\n"));
    } catch {
      return;
    }
    this.onEvent({ id: this.lastEventId, topic: event.type, data });
  }
}

/** Calls ``fn`` once after a burst of calls settles, never two at once, again if asked meanwhile. */
export function debounced(fn, ms = 250) {
  let timer = null;
  let running = false;
  let again = false;
  const run = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await fn();
    } finally {
      running = false;
      if (again) {
        again = false;
        trigger();
      }
    }
  };
  const trigger = () => {
    clearTimeout(timer);
    timer = setTimeout(run, ms);
  };
  trigger.now = run;
  trigger.cancel = () => clearTimeout(timer);
  return trigger;
}
