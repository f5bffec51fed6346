// A SKU: on hand / reserved / available over time (server-drawn step
// chart), per warehouse and in total, with an "as of" time picker that
// reads the chart and asks the API's temporal query, and the events
// around that instant.

import { h, api, data, svgInto, onLive, time } from "./app.js";

function skuForm(initial) {
  const input = h("input", { id: "sku-input", value: initial || "", required: true, pattern: "[A-Za-z0-9._\\-]{1,64}" });
  const form = h("form", { class: "inline-form", role: "search" },
    h("label", { for: "sku-input" }, "SKU"), input, h("button", { type: "submit" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    location.hash = `#/sku/${encodeURIComponent(input.value.trim())}`;
  });
  return form;
}

/** The step of the drawn chart that holds at `at` (ISO text). */
export function stepAt(svg, at) {
  const t = Date.parse(at);
  for (const step of svg.querySelectorAll("rect.step")) {
    if (Date.parse(step.dataset.from) <= t && t < Date.parse(step.dataset.to)) return step;
  }
  return null;
}

export function skuPage(page, sku) {
  page.append(h("h1", {}, sku ? `Stock of ${sku}` : "Stock"), skuForm(sku));
  if (!sku) return null;
  let warehouse = "total";
  let series = null;
  let at = null;
  const scopes = h("div", { class: "chips", role: "group", "aria-label": "Warehouse" });
  const chart = h("figure", { id: "stock-chart", class: "card chart-wrap" });
  const atInput = h("input", { id: "as-of", type: "text", placeholder: "2026-11-20T10:00:00Z", size: "32" });
  const picker = h("form", { class: "inline-form", id: "as-of-form" },
    h("label", { for: "as-of" }, "As of (UTC, RFC 3339)"), atInput, h("button", { type: "submit" }, "Show"),
    h("span", { class: "muted small" }, "or click the chart"));
  const readout = h("div", { id: "as-of-readout", "aria-live": "polite" });
  const around = h("div", { id: "events-around", class: "scroll", tabindex: "0", role: "region", "aria-label": "Changes around the instant" });
  page.append(scopes, chart, picker, readout, around);

  picker.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!Number.isNaN(Date.parse(atInput.value))) showAt(new Date(Date.parse(atInput.value)).toISOString());
  });

  function drawScopes() {
    scopes.replaceChildren(...["total", ...series.warehouses].map((name) => {
      const button = h("button", { type: "button", class: "chip", "aria-pressed": String(name === warehouse) },
        name === "total" ? "All warehouses" : name);
      button.addEventListener("click", () => { warehouse = name; drawScopes(); drawChart(); });
      return button;
    }));
  }

  async function drawChart() {
    const query = new URLSearchParams({ warehouse });
    if (at) query.set("at", at);
    const svg = await svgInto(chart, `/sku/${encodeURIComponent(sku)}/chart?${query}`);
    svg.addEventListener("click", (event) => {
      const box = svg.getBoundingClientRect();
      const view = svg.viewBox.baseVal;
      const x = ((event.clientX - box.left) / box.width) * view.width;
      const from = Date.parse(svg.dataset.from), to = Date.parse(svg.dataset.to);
      const left = Number(svg.dataset.plotLeft), right = Number(svg.dataset.plotRight);
      const t = from + ((x - left) / (right - left)) * (to - from);
      if (t >= from && t <= to) showAt(new Date(t).toISOString());
    });
    if (at) await drawReadout(svg);
  }

  async function drawReadout(svg) {
    const step = stepAt(svg, at);
    const chartLine = step
      ? `on hand ${step.dataset.onHand}, reserved ${step.dataset.reserved}, available ${step.dataset.available}`
      : "outside the chart";
    let apiLine = "";
    try {
      const { body } = await api(`/inventory/${encodeURIComponent(sku)}?at=${encodeURIComponent(at)}`);
      const level = warehouse === "total" ? body : (body.warehouses.find((w) => w.warehouse === warehouse)
        || { on_hand: 0, reserved: 0, available: 0 });
      apiLine = `on hand ${level.on_hand}, reserved ${level.reserved}, available ${level.available} (position ${body.position})`;
    } catch (error) {
      apiLine = error.message;
    }
    readout.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, "Instant"), h("dd", { id: "as-of-instant" }, at),
      h("dt", {}, "Chart"), h("dd", { id: "as-of-chart" }, chartLine),
      h("dt", {}, h("code", {}, "GET /inventory/{sku}?at=")), h("dd", { id: "as-of-api" }, apiLine)));
    const t = Date.parse(at);
    const index = series.points.findIndex((p) => Date.parse(p.at) > t);
    const split = index === -1 ? series.points.length : index;
    const near = series.points.slice(Math.max(0, split - 5), split + 5);
    around.replaceChildren(h("table", { class: "grid", id: "around-table" },
      h("caption", {}, "Changes around that instant"),
      h("thead", {}, h("tr", {}, ["At", "Position", "Event", "On hand", "Reserved", "Available"].map((l) => h("th", { scope: "col" }, l)))),
      h("tbody", {}, near.map((p, i) => {
        const level = warehouse === "total" ? p.total : (p.warehouses[warehouse] || { on_hand: 0, reserved: 0, available: 0 });
        return h("tr", { class: Math.max(0, split - 5) + i === split - 1 ? "current" : "" },
          h("td", {}, time(p.at)), h("td", { class: "num" }, p.position), h("td", {}, p.type),
          h("td", { class: "num" }, level.on_hand), h("td", { class: "num" }, level.reserved), h("td", { class: "num" }, level.available));
      }))));
  }

  function showAt(iso) {
    at = iso;
    atInput.value = iso;
    drawChart().catch((error) => readout.replaceChildren(h("p", { class: "error" }, error.message)));
  }

  async function load() {
    series = await data(`/sku/${encodeURIComponent(sku)}/series`);
    drawScopes();
    await drawChart();
  }
  load().catch((error) => chart.replaceChildren(h("p", { class: "error" }, error.message)));
  let timer = null;
  const off = onLive((type, payload) => {
    if (type === "events" && payload.some((e) => e.stream_id === `inventory-${sku}`)) {
      clearTimeout(timer);
      timer = setTimeout(() => load().catch(() => {}), 200);
    }
  });
  return () => { off(); clearTimeout(timer); };
}
