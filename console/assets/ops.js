// Operations: the overview of every subscription (live), parked events
// with replay (all, or one), and projections (rebuild with progress, reset).

import { h, api, confirmDialog, json, time } from "./app.js";
import { onLive } from "./bus.js";

// Lag samples survive page changes: the sparkline shows the last minutes.
const WINDOW_MS = 10 * 60 * 1000;
const samples = [];
let lastOverview = null;
let actionsSeen = 0;

onLive((type, payload) => {
  if (type !== "overview") return;
  lastOverview = payload.overview;
  actionsSeen = payload.actions;
  const now = Date.now();
  if (payload.lag_history && samples.length === 0) {
    // The server's samples of the last minutes, this one included.
    for (const s of payload.lag_history) samples.push({ t: Date.parse(s.at), events: s.events, seconds: s.seconds });
  } else {
    const subs = payload.overview.subscriptions;
    samples.push({
      t: Date.parse(payload.overview.at) || now,
      events: subs.reduce((max, s) => Math.max(max, s.lag), 0),
      seconds: subs.reduce((max, s) => Math.max(max, s.lag_seconds), 0),
    });
  }
  while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
});

function sparkline(values, label) {
  const width = 240, height = 48;
  const max = Math.max(1, ...values.map((v) => v.y));
  const points = values.map((v) => `${(v.x * width).toFixed(1)},${(height - 4 - (v.y / max) * (height - 8)).toFixed(1)}`);
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "sparkline");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points.join(" "));
  line.setAttribute("fill", "none");
  svg.append(line);
  return svg;
}

function lagChart() {
  const now = Date.now();
  const values = samples.map((s) => ({ x: 1 - (now - s.t) / WINDOW_MS, y: s.events }));
  const latest = samples.length ? samples[samples.length - 1] : { events: 0, seconds: 0 };
  return h("figure", { class: "lag" },
    values.length < 2
      ? h("p", { class: "sparkline muted small" }, "collecting lag samples…")
      : sparkline(values, `Largest lag over the last 10 minutes; now ${latest.events} events`),
    h("figcaption", {}, `Largest lag, last 10 min: now ${latest.events} events, ${latest.seconds.toFixed(1)} s`));
}

function stateBadge(state) {
  return h("span", { class: `badge state-${state}` }, state.replace("_", " "));
}

function overviewTable(overview) {
  const rows = overview.subscriptions.map((s) => h("tr", { "data-subscription": s.name, class: s.parked > 0 ? "alert" : "" },
    h("th", { scope: "row" }, s.name, h("span", { class: "muted small" }, ` ${s.kind}`)),
    h("td", { class: "num" }, s.position),
    h("td", { class: "num" }, s.head),
    h("td", { class: "num lag-events" }, s.lag),
    h("td", { class: "num" }, s.lag_seconds.toFixed(1)),
    h("td", { class: "num" }, s.parked > 0
      ? h("a", { href: `#/parked/${encodeURIComponent(s.name)}`, class: "badge parked" }, `${s.parked} parked`)
      : "0"),
    h("td", {}, s.owner || h("span", { class: "muted" }, "none")),
    h("td", {}, stateBadge(s.state))));
  return h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Table, scrolls sideways" }, h("table", { class: "grid", id: "subscriptions" },
    h("caption", {}, `Subscriptions at log head ${overview.head}`),
    h("thead", {}, h("tr", {}, ["Subscription", "Position", "Head", "Lag (events)", "Lag (s)", "Parked", "Owner", "State"]
      .map((label) => h("th", { scope: "col" }, label)))),
    h("tbody", {}, rows, financeRow(overview.finance))));
}

// Finance is another process: the server asks its /finance/ready and
// /finance/metrics (ORDERSTREAM_FINANCE_URL). Its dead letters go in the
// Parked column, where a non-zero count stands out the same way.
function financeRow(finance) {
  const name = h("th", { scope: "row" }, "Finance consumer", h("span", { class: "muted small" }, " finance"));
  const dash = () => h("td", { class: "num muted" }, "—");
  if (!finance || finance.status === "not_configured") {
    return h("tr", { id: "finance-row", "data-finance": "not_configured" }, name,
      h("td", { colspan: "7", class: "muted" }, "not configured (ORDERSTREAM_FINANCE_URL)"));
  }
  if (finance.status === "unreachable") {
    return h("tr", { id: "finance-row", "data-finance": "unreachable", class: "alert" }, name,
      dash(), dash(), dash(), dash(), dash(), h("td", {}, finance.url),
      h("td", {}, h("span", { class: "badge state-stopped", title: finance.error }, "unreachable")));
  }
  const up = finance.ready && finance.consuming !== false;
  const dead = finance.dead_letters;
  return h("tr", { id: "finance-row", "data-finance": up ? "up" : "down", class: dead > 0 || !up ? "alert" : "" }, name,
    dash(), dash(), dash(),
    h("td", { class: "num" }, finance.lag_seconds === null ? "—" : finance.lag_seconds.toFixed(1)),
    h("td", { class: "num", id: "finance-dead-letters", title: "dead letters" }, dead === null ? "—" : dead > 0
      ? h("span", { class: "badge parked" }, `${dead} dead letters`)
      : "0"),
    h("td", {}, finance.url),
    h("td", {}, h("span", { class: `badge ${up ? "state-running" : "state-stopped"}` }, up ? "up" : "down")));
}

export function overviewPage(page) {
  page.append(h("h1", {}, "Overview"));
  const body = h("div", { id: "overview-body" }, h("p", { class: "muted" }, "Waiting for the live overview…"));
  page.append(body);
  const draw = () => {
    if (!lastOverview) return;
    const parked = lastOverview.subscriptions.reduce((sum, s) => sum + s.parked, 0);
    body.replaceChildren(
      h("div", { class: "tiles" },
        h("div", { class: `tile ${parked > 0 ? "alert" : ""}`, id: "parked-total" },
          h("span", { class: "big" }, parked), " parked events"),
        h("div", { class: "tile" }, h("span", { class: "big" }, lastOverview.head), " events in the log"),
        lagChart()),
      overviewTable(lastOverview));
  };
  draw();
  return onLive((type) => { if (type === "overview") draw(); });
}

async function showParkedEvent(event, target) {
  try {
    const { body } = await api(`/streams/${encodeURIComponent(event.stream_id)}?from_version=${event.stream_version}&limit=1`);
    target.replaceChildren(json(body.events[0]));
  } catch (error) {
    target.replaceChildren(h("p", { class: "error" }, error.message));
  }
}

// How long the page waits for the owner to carry out a replay of one event.
const REPLAY_PATIENCE_MS = 30 * 1000;
const REPLAY_CHECK_MS = 250;

/** Waits for request `id` of `name` to be carried out; its status. */
async function requestOutcome(name, id) {
  const deadline = Date.now() + REPLAY_PATIENCE_MS;
  for (;;) {
    const { body } = await api(`/subscriptions/${encodeURIComponent(name)}/requests/${id}`);
    if (body.status !== "pending" || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, REPLAY_CHECK_MS));
  }
}

export function parkedPage(page, name) {
  page.append(h("h1", {}, "Parked events"));
  const picker = h("nav", { class: "chips", "aria-label": "Subscriptions" });
  const list = h("div", { id: "parked-list" });
  const outcome = h("p", { id: "replay-outcome", role: "status", "aria-live": "polite" });
  page.append(picker, outcome, list);
  let waitingFor = null;
  let shownCount = null;

  async function load() {
    if (!name) {
      list.replaceChildren(h("p", { class: "muted" }, "Choose a subscription."));
      return;
    }
    const { body } = await api(`/subscriptions/${encodeURIComponent(name)}/parked?limit=100`);
    shownCount = body.length;
    if (waitingFor !== null && actionsSeen >= waitingFor) {
      outcome.textContent = body.length === 0
        ? `Replayed: nothing of ${name} is parked any more.`
        : `Replayed; ${body.length} still parked (see their errors).`;
      waitingFor = null;
    }
    const replay = h("button", { type: "button", id: "replay-all", disabled: body.length === 0 }, "Replay all");
    replay.addEventListener("click", async () => {
      if (!(await confirmDialog(`Replay the ${body.length} parked events of ${name}?`, "Replay"))) return;
      const answer = await api(`/subscriptions/${encodeURIComponent(name)}/parked/replay`, { method: "POST" });
      waitingFor = Number(answer.headers.get("x-console-action") || 0);
      outcome.textContent = "Replay requested; waiting for the owner…";
    });
    const firstOfStream = new Set();
    const seenStreams = new Set();
    for (const event of body) {
      if (!seenStreams.has(event.stream_id)) firstOfStream.add(event.position);
      seenStreams.add(event.stream_id);
    }
    async function replayOne(event, button) {
      const what = `the ${event.type} event at position ${event.position} (${event.stream_id} v${event.stream_version})`;
      if (!(await confirmDialog(`Replay ${what} alone?`, "Replay"))) return;
      button.disabled = true;
      outcome.textContent = `Replay of position ${event.position} requested; waiting for the owner…`;
      try {
        const answer = await api(`/subscriptions/${encodeURIComponent(name)}/parked/${event.position}/replay`, { method: "POST" });
        const done = await requestOutcome(name, answer.body.request);
        outcome.textContent = done.status === "done"
          ? `Replayed position ${event.position}: it is no longer parked.`
          : done.status === "failed"
            ? `Replay of position ${event.position} failed: ${done.outcome}`
            : `The owner has not replayed position ${event.position} yet; it will when it runs.`;
      } catch (error) {
        outcome.textContent = `Replay of position ${event.position} refused: ${error.message}`;
      }
      await load();
    }
    const rows = body.map((event) => {
      const first = firstOfStream.has(event.position);
      const replayButton = h("button", {
        type: "button", class: "replay-one", "data-replay": event.position, disabled: !first,
        "aria-label": `Replay position ${event.position}`,
        title: first ? "Replay this event alone" : "Earlier events of its stream are parked: replay those first",
      }, "Replay");
      replayButton.addEventListener("click", () => replayOne(event, replayButton).catch(() => {}));
      const detail = h("td", { colspan: "7", class: "detail" });
      const show = h("button", { type: "button", class: "quiet", "aria-expanded": "false" }, "Show JSON");
      show.addEventListener("click", () => {
        const open = show.getAttribute("aria-expanded") === "true";
        show.setAttribute("aria-expanded", String(!open));
        if (open) detail.replaceChildren(); else showParkedEvent(event, detail);
      });
      return [
        h("tr", { "data-position": event.position },
          h("td", { class: "num" }, event.position),
          h("td", {}, event.stream_id, h("span", { class: "muted" }, ` v${event.stream_version}`)),
          h("td", {}, event.type),
          h("td", { class: "num" }, event.attempts),
          h("td", { class: "error-text" }, event.blocked_by ? `waits behind position ${event.blocked_by}` : event.error),
          h("td", {}, time(event.parked_at), " ", show),
          h("td", {}, replayButton)),
        h("tr", {}, detail),
      ];
    });
    list.replaceChildren(
      h("div", { class: "toolbar" }, replay),
      body.length === 0
        ? h("p", { id: "nothing-parked" }, `Nothing of ${name} is parked.`)
        : h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Table, scrolls sideways" }, h("table", { class: "grid", id: "parked-table" },
          h("thead", {}, h("tr", {}, ["Position", "Stream", "Type", "Attempts", "Error", "Parked at", "Replay"].map((l) => h("th", { scope: "col" }, l)))),
          h("tbody", {}, rows.flat()))));
  }

  const drawPicker = () => {
    if (!lastOverview) return;
    picker.replaceChildren(...lastOverview.subscriptions.map((s) => h("a", {
      href: `#/parked/${encodeURIComponent(s.name)}`, class: `chip ${s.parked > 0 ? "alert" : ""}`,
      "aria-current": s.name === name ? "page" : false,
    }, `${s.name} (${s.parked})`)));
  };
  drawPicker();
  load().catch((error) => list.replaceChildren(h("p", { class: "error" }, error.message)));
  return onLive((type) => {
    if (type !== "overview") return;
    drawPicker();
    const current = lastOverview.subscriptions.find((s) => s.name === name);
    // Reload when the count moved or a replay waits for its outcome; else
    // keep what the operator has opened.
    if (waitingFor !== null || (current && current.parked !== shownCount)) load().catch(() => {});
  });
}

export function projectionsPage(page) {
  page.append(h("h1", {}, "Projections"));
  const body = h("div", { id: "projections-body" });
  const outcome = h("p", { id: "projection-outcome", role: "status", "aria-live": "polite" });
  page.append(outcome, body);
  const pending = new Map(); // projection -> action number it waits for
  let formDrawn = false;

  function row(s) {
    const rebuild = h("button", { type: "button", "data-rebuild": s.name }, "Rebuild");
    rebuild.addEventListener("click", async () => {
      if (!(await confirmDialog(`Rebuild the ${s.name} read model from the log? The old one serves until the new one is swapped in.`, "Rebuild"))) return;
      const answer = await api(`/projections/${encodeURIComponent(s.name)}/rebuild`, { method: "POST" });
      pending.set(s.name, Number(answer.headers.get("x-console-action") || 0));
      outcome.textContent = `Rebuild of ${s.name} requested.`;
      draw();
    });
    const progress = s.rebuild
      ? h("div", { class: "progress-wrap" },
        h("progress", {
          id: `progress-${s.name}`, max: s.rebuild.total || 1, value: s.rebuild.done || 0,
          "aria-label": `Rebuild of ${s.name}`,
        }),
        // The owner's total is an estimate (the table's statistics).
        h("span", { class: "small" }, s.rebuild.total === null ? "waiting for the owner…" : `${s.rebuild.done} events rebuilt, about ${s.rebuild.total} in all`))
      : h("span", { class: "muted" }, "—");
    return h("tr", { "data-projection": s.name },
      h("th", { scope: "row" }, s.name), h("td", {}, stateBadge(s.state)), h("td", { class: "num" }, s.position),
      h("td", {}, progress), h("td", {}, rebuild));
  }

  function resetForm(subscriptions) {
    const select = h("select", { id: "reset-name" }, subscriptions.map((s) => h("option", { value: s.name }, s.name)));
    const position = h("input", { id: "reset-position", type: "number", min: "0", value: "0", inputmode: "numeric" });
    const form = h("form", { class: "inline-form" },
      h("label", { for: "reset-name" }, "Subscription"), select,
      h("label", { for: "reset-position" }, "Re-deliver after position"), position,
      h("button", { type: "submit" }, "Reset"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = select.value;
      const at = Number(position.value);
      if (!(await confirmDialog(`Reset ${name}? It re-delivers every event after position ${at}.`, "Reset"))) return;
      try {
        await api(`/subscriptions/${encodeURIComponent(name)}/reset`, { method: "POST", body: { position: at } });
        outcome.textContent = `${name} will re-deliver the events after position ${at}.`;
      } catch (error) {
        outcome.textContent = error.message;
      }
    });
    return h("section", { "aria-labelledby": "reset-title" }, h("h2", { id: "reset-title" }, "Reset a subscription"), form);
  }

  function draw() {
    if (!lastOverview) return;
    const projections = lastOverview.subscriptions.filter((s) => s.kind === "projection");
    for (const s of projections) {
      if (pending.has(s.name) && actionsSeen >= pending.get(s.name) && !s.rebuild) {
        pending.delete(s.name);
        outcome.textContent = `Rebuild of ${s.name} completed.`;
      }
    }
    const focused = document.activeElement && document.activeElement.dataset.rebuild;
    body.replaceChildren(
      h("div", { class: "scroll", tabindex: "0", role: "region", "aria-label": "Table, scrolls sideways" }, h("table", { class: "grid", id: "projections" },
        h("thead", {}, h("tr", {}, ["Projection", "State", "Position", "Rebuild", ""].map((l) => h("th", { scope: "col" }, l)))),
        h("tbody", {}, projections.map(row)))));
    if (focused) {
      const button = body.querySelector(`[data-rebuild="${focused}"]`);
      if (button) button.focus();
    }
    if (!formDrawn) {
      page.append(resetForm(lastOverview.subscriptions));
      formDrawn = true;
    }
  }
  draw();
  return onLive((type) => { if (type === "overview") draw(); });
}
