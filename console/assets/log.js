// The log: browse by category, stream, type or correlation id, a page at
// a time, with a live tail of what is appended.

import { h, data, onLive, json, time } from "./app.js";

const FIELDS = [
  ["category", "Category", "order, inventory, …"],
  ["stream", "Stream", "order-<uuid>"],
  ["type", "Type", "OrderPlaced"],
  ["correlation", "Correlation id", ""],
];

export function logPage(page) {
  page.append(h("h1", {}, "Log"));
  const inputs = {};
  const form = h("form", { class: "filters", id: "log-filters" },
    FIELDS.map(([name, label, hint]) => {
      inputs[name] = h("input", { id: `log-${name}`, name, placeholder: hint });
      return h("div", { class: "field" }, h("label", { for: `log-${name}` }, label), inputs[name]);
    }),
    h("div", { class: "field buttons" },
      h("button", { type: "submit", name: "from", value: "start" }, "From the start"),
      h("button", { type: "submit", name: "from", value: "latest", class: "quiet" }, "Latest")));
  const tail = h("input", { type: "checkbox", id: "live-tail" });
  const table = h("tbody", { id: "log-rows" });
  const more = h("button", { type: "button", id: "log-more" }, "Next page");
  page.append(form,
    h("p", {}, tail, h("label", { for: "live-tail" }, " Live tail: add new events as they are appended")),
    h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Table, scrolls sideways" }, h("table", { class: "grid", id: "log-table" },
      h("thead", {}, h("tr", {}, ["Position", "Stream", "Version", "Type", "Recorded", "Correlation id", ""].map((l) => h("th", { scope: "col" }, l)))),
      table)),
    more);
  let next = null;

  const filters = () => Object.fromEntries(Object.entries(inputs).map(([k, input]) => [k, input.value.trim()]).filter(([, v]) => v));

  function row(event) {
    const detail = h("tr", { hidden: true }, h("td", { colspan: "7" }, event.data !== undefined ? json(event) : ""));
    const show = h("button", { type: "button", class: "quiet", "aria-expanded": "false" }, "Data");
    show.addEventListener("click", () => {
      detail.hidden = !detail.hidden;
      show.setAttribute("aria-expanded", String(!detail.hidden));
    });
    return [h("tr", { "data-position": event.position },
      h("td", { class: "num" }, event.position), h("td", {}, event.stream_id), h("td", { class: "num" }, event.version),
      h("td", {}, event.type), h("td", {}, time(event.recorded_at)), h("td", { class: "small" }, event.correlation_id || ""),
      h("td", {}, event.data !== undefined ? show : "")), detail];
  }

  async function load(from, append) {
    const query = new URLSearchParams(filters());
    if (from) query.set("after", from);
    const page = await data(`/log?${query}`);
    if (!append) table.replaceChildren();
    table.append(...page.events.flatMap(row));
    next = page.next;
    more.disabled = page.events.length === 0;
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const latest = event.submitter && event.submitter.value === "latest";
    load(latest ? "latest" : null, false).catch((error) => table.replaceChildren(h("tr", {}, h("td", { colspan: "7", class: "error" }, error.message))));
  });
  more.addEventListener("click", () => load(next, true).catch(() => {}));
  load(null, false).catch(() => {});

  return onLive((type, events) => {
    if (type !== "events" || !tail.checked) return;
    const f = filters();
    const matching = events.filter((e) =>
      (!f.category || e.stream_id.startsWith(`${f.category}-`)) && (!f.stream || e.stream_id === f.stream)
      && (!f.type || e.type === f.type) && (!f.correlation || e.correlation_id === f.correlation));
    table.append(...matching.flatMap(row));
  });
}
