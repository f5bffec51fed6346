// The console's shell: log-in, the calls to the API (through
// /console/api, which adds the session's token) and to the console's own
// read-only data, the live event source, and the hash router.

import { overviewPage, parkedPage, projectionsPage } from "./ops.js";
import { orderPage } from "./order.js";
import { skuPage } from "./sku.js";
import { logPage } from "./log.js";

import { onLive, emit } from "./bus.js";

export { onLive };

let csrf = null;
let source = null;
let cleanup = null;

export const $ = (selector, root = document) => root.querySelector(selector);

/** An element with attributes and children; text is always text. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function answer(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : await response.text();
  if (response.status === 401) showLogin();
  if (!response.ok) {
    throw new ApiError(response.status, (body && body.detail) || `${response.status} ${response.statusText}`);
  }
  return { body, headers: response.headers, status: response.status };
}

/** A call to the API: `path` as in API.md, e.g. `/subscriptions`. */
export async function api(path, { method = "GET", body } = {}) {
  const headers = { accept: "application/json" };
  if (method !== "GET") headers["x-console-csrf"] = csrf || "";
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/console/api${path}`, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answer(response);
}

/** The console's own read-only data (`/console/data/...`). */
export async function data(path) {
  return (await answer(await fetch(`/console/data${path}`, { credentials: "same-origin" }))).body;
}

/** A server-drawn SVG, put inline so its parts can be focused and clicked. */
export async function svgInto(element, path) {
  const { body } = await answer(await fetch(`/console/data${path}`, { credentials: "same-origin" }));
  element.innerHTML = body;
  return element.firstElementChild;
}

function startLive() {
  if (source) return;
  source = new EventSource("/console/live");
  const state = $("#live-state");
  source.onopen = () => { state.textContent = "live"; state.className = "live-state on"; };
  source.onerror = () => { state.textContent = "reconnecting…"; state.className = "live-state off"; };
  for (const type of ["overview", "events", "resync", "problem"]) {
    source.addEventListener(type, (event) => {
      emit(type, JSON.parse(event.data));
    });
  }
  source.addEventListener("logged-out", () => showLogin());
  source.addEventListener("problem", (event) => {
    state.textContent = `overview unavailable: ${JSON.parse(event.data).detail}`;
    state.className = "live-state off";
  });
  source.addEventListener("overview", () => { state.textContent = "live"; state.className = "live-state on"; });
  // The server is stopping: EventSource reconnects to the next one.
  source.addEventListener("closing", () => { state.textContent = "server stopping…"; state.className = "live-state off"; });
}

function stopLive() {
  if (source) source.close();
  source = null;
}

/** A modal confirmation; resolves true when confirmed. */
export function confirmDialog(text, confirmLabel = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = confirmLabel;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

export function json(value) {
  return h("pre", { class: "json", tabindex: "0" }, JSON.stringify(value, null, 2));
}

export function time(iso) {
  return iso ? iso.replace("T", " ").replace(/(\.\d{3})\d*/, "$1") : "";
}

function showLogin() {
  stopLive();
  csrf = null;
  $("#nav").hidden = true;
  $("#log-out").hidden = true;
  $("#page").replaceChildren();
  $("#login").hidden = false;
  $("#token").focus();
}

async function logIn(event) {
  event.preventDefault();
  const error = $("#login-error");
  error.textContent = "";
  const response = await fetch("/console/session", {
    method: "POST", credentials: "same-origin",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token: $("#token").value }),
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    error.textContent = body.detail || `Log-in failed (${response.status})`;
    return;
  }
  $("#token").value = "";
  enter(body.csrf);
}

function enter(token) {
  csrf = token;
  $("#login").hidden = true;
  $("#nav").hidden = false;
  $("#log-out").hidden = false;
  startLive();
  route();
}

async function logOut() {
  await fetch("/console/session", {
    method: "DELETE", credentials: "same-origin", headers: { "x-console-csrf": csrf || "" },
  });
  showLogin();
}

const ROUTES = [
  [/^#\/overview$/, overviewPage],
  [/^#\/parked(?:\/(.+))?$/, parkedPage],
  [/^#\/order(?:\/(.+))?$/, orderPage],
  [/^#\/sku(?:\/(.+))?$/, skuPage],
  [/^#\/log$/, logPage],
  [/^#\/projections$/, projectionsPage],
];

function route() {
  if (!csrf) return;
  const hash = location.hash.split("?")[0] || "#/overview";
  if (cleanup) cleanup();
  cleanup = null;
  const page = $("#page");
  page.replaceChildren();
  for (const link of document.querySelectorAll("#nav a")) {
    const current = hash.startsWith(link.getAttribute("href"));
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  for (const [pattern, render] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      const argument = match[1] ? decodeURIComponent(match[1]) : null;
      cleanup = render(page, argument) || null;
      return;
    }
  }
  location.hash = "#/overview";
}

async function start() {
  $("#login-form").addEventListener("submit", logIn);
  $("#log-out").addEventListener("click", logOut);
  window.addEventListener("hashchange", route);
  const response = await fetch("/console/session", { credentials: "same-origin" });
  if (response.ok) enter((await response.json()).csrf);
  else showLogin();
}

start();
