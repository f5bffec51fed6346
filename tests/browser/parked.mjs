// A parked event (the test injected a fault, then removed it): the overview
// shows it standing out, the parked page lists it with its error and JSON,
// "Replay all" (confirmed) replays it, and it disappears.

import { check, until, launch, logIn, shot, apiCall, scenario, accessible } from "./lib.mjs";

const orderId = process.env.ORDER_ID;

scenario("parked", async () => {
  const { page, close } = await launch();
  await logIn(page);
  await until("the overview shows the parked events", async () =>
    Number(await page.textContent("#parked-total .big").catch(() => "0")) > 0);
  check(await page.$eval("#parked-total", (tile) => tile.classList.contains("alert")), "non-zero parked stands out");
  check(await page.$("#subscriptions tr[data-subscription=orders].alert a.badge.parked") !== null, "the orders row links to its parked events");
  await shot(page, "overview-parked");

  await page.click("#subscriptions tr[data-subscription=orders] a.badge.parked");
  await page.waitForSelector("#parked-table");
  const parked = (await apiCall("GET", "/subscriptions/orders/parked")).body;
  const rows = await page.$$eval("#parked-table tr[data-position]", (trs) => trs.map((tr) => Number(tr.dataset.position)));
  check(JSON.stringify(rows) === JSON.stringify(parked.map((p) => p.position)), `every parked event is listed: ${rows}`);
  check((await page.textContent("#parked-table")).includes("injected fault"), "its error is shown");
  check(parked[0].stream_id === `order-${orderId}`, "the parked event is the order's");
  await page.click("#parked-table tr[data-position] button");
  await until("its JSON is shown", async () => (await page.textContent("#parked-table")).includes(parked[0].event_id));
  await shot(page, "parked");
  await accessible(page, "the parked page");

  // Cancel first: nothing happens.
  await page.click("#replay-all");
  await page.click("#confirm button[value=cancel]");
  check((await apiCall("GET", "/subscriptions/orders/parked")).body.length === parked.length, "cancelling replays nothing");

  await page.click("#replay-all");
  await page.click("#confirm-ok");
  await until("the parked events disappear", async () => (await page.$("#nothing-parked")) !== null);
  await until("the outcome is shown", async () => (await page.textContent("#replay-outcome")).startsWith("Replayed"));
  const after = (await apiCall("GET", "/subscriptions/orders/parked")).body;
  check(after.length === 0, `nothing parked any more: ${JSON.stringify(after)}`);
  await shot(page, "parked-replayed");
  await close();
});
