// Small DOM helpers: elements are built with h(), never from HTML strings, so text that came
// from the API (an exception's context, an error message) is always shown as text.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className = value;
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A timestamp in the reader's time zone (UTC in the tooltip); ``short`` drops the seconds. */
export function time(value, style = "medium") {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return h("time", { datetime: date.toISOString(), title: date.toISOString() },
    date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: style }));
}

export function badge(status) {
  return h("span", { class: `badge status-${status}`, "data-testid": "status" }, String(status).replaceAll("_", " "));
}

export function json(value) {
  return h("pre", { class: "json" }, JSON.stringify(value, null, 2));
}

/** A definition list of an object's fields; nested values as compact JSON. */
export function fields(object, keys = Object.keys(object || {})) {
  return h("dl", { class: "fields" }, keys.filter((k) => object && object[k] !== undefined).map((key) => [
    h("dt", {}, key.replaceAll("_", " ")),
    h("dd", {}, show(object[key])),
  ]));
}

export function show(value) {
  if (value === null || value === undefined || value === "") return "—";
  if (Array.isArray(value) && value.every((v) => typeof v !== "object" || v === null)) return value.join(", ") || "—";
  if (typeof value === "object") return h("code", { class: "inline-json" }, JSON.stringify(value));
  return String(value);
}

export function link(href, text, attrs = {}) {
  return h("a", { href, ...attrs }, text);
}

/**
 * Make ``container``'s children exactly ``elements``, in order, touching only nodes that are not
 * already in place: moving a node would take the focus from a field someone is typing in.
 */
export function reconcile(container, elements) {
  const wanted = new Set(elements);
  for (const child of [...container.children]) if (!wanted.has(child)) child.remove();
  elements.forEach((element, index) => {
    const current = container.children[index];
    if (current !== element) container.insertBefore(element, current || null);
  });
}
