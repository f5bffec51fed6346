// What the scenarios share: the browser, logging in, screenshots, waiting
// on a condition with a deadline, and calls to the API from outside the
// browser (the "other client" whose effects the console must show).

import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

export const base = process.env.CONSOLE_URL;
export const token = process.env.CONSOLE_TOKEN;
const shots = process.env.CONSOLE_SCREENSHOTS || "screenshots";
const PATIENCE_MS = 45_000;

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Polls `fn` until it returns something truthy; fails after the deadline. */
export async function until(what, fn, timeout = PATIENCE_MS) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export async function launch(viewport = { width: 1280, height: 800 }) {
  const browser = await chromium.launch({
    executablePath: process.env.CONSOLE_CHROMIUM || "/usr/bin/chromium",
    // Chromium refuses its sandbox to root.
    args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
  });
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.setDefaultTimeout(PATIENCE_MS);
  return {
    browser, context, page,
    /** Fails on any uncaught script error of the page, then closes. */
    async close() {
      await browser.close();
      check(errors.length === 0, `no script errors on the page: ${errors.join("; ")}`);
    },
  };
}

export async function logIn(page) {
  await page.goto(`${base}/console`);
  await page.fill("#token", token);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#nav:not([hidden])");
}

export async function shot(page, name, fullPage = true) {
  mkdirSync(shots, { recursive: true });
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage });
  console.log(`screenshot: ${path}`);
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/**
 * The axe basics on the page as it is now (WCAG 2 A and AA rules: labels,
 * names, contrast, landmarks...): fails on any serious or critical
 * violation. Evaluated through the debugging protocol, so the page's CSP
 * stays as served.
 */
export async function accessible(page, name) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { runOnly: ["wcag2a", "wcag2aa", "wcag21aa"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  check(serious.length === 0, `${name} passes the axe basics: ${JSON.stringify(serious.map((v) => ({
    id: v.id, impact: v.impact, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
  })))}`);
  console.log(`axe: ${name}: ${result.passes.length} rules pass, ${result.violations.length} minor findings`);
}

export async function apiCall(method, path, body, headers = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${token}`, ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let json = null;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: response.status, body: json };
}

/** Runs a scenario; any failure exits non-zero with its message. */
export function scenario(name, body) {
  body().then(
    () => console.log(`${name}: passed`),
    (error) => {
      console.error(`${name}: ${error.stack || error}`);
      process.exit(1);
    },
  );
}
