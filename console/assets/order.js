// An order: found by order id, correlation id or customer id; its state
// machine, its swimlanes (server-drawn SVG) and each event's data, kept
// current by the live stream.

import { h, api, data, svgInto, onLive, json, time } from "./app.js";

function findForm() {
  const input = h("input", { id: "find-q", name: "q", required: true, size: "40" });
  const form = h("form", { class: "inline-form", role: "search" },
    h("label", { for: "find-q" }, "Order id, correlation id or customer id"), input,
    h("button", { type: "submit" }, "Find"));
  const results = h("div", { id: "find-results", "aria-live": "polite" });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    results.replaceChildren(h("p", { class: "muted" }, "Searching…"));
    try {
      const found = await data(`/find?q=${encodeURIComponent(input.value.trim())}`);
      if (found.length === 1 && found[0].via !== "customer id") {
        location.hash = `#/order/${found[0].order_id}`;
        return;
      }
      results.replaceChildren(found.length === 0
        ? h("p", {}, "No order found.")
        : h("ul", { class: "found" }, found.map((f) => h("li", {},
          h("a", { href: `#/order/${f.order_id}` }, f.order_id),
          ` — by ${f.via}`, f.status ? ` (${f.status})` : ""))));
    } catch (error) {
      results.replaceChildren(h("p", { class: "error" }, error.message));
    }
  });
  return [form, results];
}

export function orderPage(page, orderId) {
  page.append(h("h1", {}, orderId ? "Order" : "Orders"), ...findForm());
  if (!orderId) return null;
  const summary = h("div", { id: "order-summary", class: "card" });
  const states = h("figure", { id: "order-states", class: "card" });
  const lanes = h("div", { id: "swimlanes", class: "scroll card", tabindex: "0", role: "region", "aria-label": "Swimlanes, scroll sideways" });
  const detail = h("section", { id: "event-detail", class: "card", "aria-live": "polite", "aria-labelledby": "detail-title" },
    h("h2", { id: "detail-title" }, "Event data"), h("p", { class: "muted" }, "Choose an event in the swimlanes."));
  page.append(summary,
    h("h2", {}, "State"), states,
    h("h2", {}, "Timeline"), h("p", { class: "muted small" },
      "One lane per stream, one column per event in log order; arrows go from an event to those it caused, with the time the hop took."),
    lanes, detail);

  let timeline = [];
  const streams = new Set([`order-${orderId}`]);
  const correlations = new Set();
  let chosen = null;

  function showEvent(position) {
    const event = timeline.find((e) => String(e.position) === String(position));
    if (!event) return;
    chosen = event.position;
    for (const node of lanes.querySelectorAll("g.event")) {
      node.classList.toggle("chosen", node.dataset.position === String(position));
    }
    detail.replaceChildren(h("h2", { id: "detail-title" }, `${event.type} — ${event.stream_id} v${event.version}`),
      h("p", { class: "small" }, `position ${event.position}, recorded ${time(event.recorded_at)}`), json(event));
  }

  async function load() {
    const [{ body: order }, { body: events }] = await Promise.all([
      api(`/orders/${orderId}`), api(`/orders/${orderId}/timeline`)]);
    timeline = events;
    for (const event of events) {
      streams.add(event.stream_id);
      if (event.metadata.correlation_id) correlations.add(event.metadata.correlation_id);
    }
    summary.replaceChildren(
      h("p", {}, h("span", { class: `badge status-${order.status}`, id: "order-status" }, order.status),
        ` order ${order.order_id}`),
      h("dl", { class: "facts" },
        h("dt", {}, "Customer"), h("dd", {}, order.customer_id),
        h("dt", {}, "Total"), h("dd", {}, `${order.total} ${order.currency}`),
        h("dt", {}, "Correlation id"), h("dd", {}, order.correlation_id || "—"),
        h("dt", {}, "Lines"), h("dd", {}, order.lines.map((l) => `${l.quantity} × ${l.sku} @ ${l.unit_price}`).join(", ")),
        h("dt", {}, "Updated"), h("dd", {}, time(order.updated_at))));
    await Promise.all([
      svgInto(states, `/orders/${orderId}/states`),
      svgInto(lanes, `/orders/${orderId}/swimlanes`),
    ]);
    for (const node of lanes.querySelectorAll("g.event")) {
      node.addEventListener("click", () => showEvent(node.dataset.position));
      node.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); showEvent(node.dataset.position); }
      });
    }
    if (chosen !== null) showEvent(chosen);
  }

  let timer = null;
  const refresh = () => {
    clearTimeout(timer);
    timer = setTimeout(() => load().catch((error) => summary.replaceChildren(h("p", { class: "error" }, error.message))), 100);
  };
  refresh();
  const off = onLive((type, payload) => {
    if (type === "resync") refresh();
    if (type !== "events") return;
    if (payload.some((e) => streams.has(e.stream_id) || correlations.has(e.correlation_id))) refresh();
  });
  return () => { off(); clearTimeout(timer); };
}
