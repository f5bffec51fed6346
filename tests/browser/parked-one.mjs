// One parked event replayed alone: only the first parked event of a stream
// offers Replay (the rest wait behind it), the confirmation can be
// cancelled, and once confirmed the page shows the owner's outcome, the
// event disappears and the next one of its stream may be replayed.

import { base, check, until, launch, logIn, shot, apiCall, scenario, accessible } from "./lib.mjs";

const orderId = process.env.ORDER_ID;

const enabledReplays = (page) => page.$$eval("#parked-table button.replay-one",
  (buttons) => buttons.filter((b) => !b.disabled).map((b) => Number(b.dataset.replay)));

scenario("parked-one", async () => {
  const { page, close } = await launch();
  await logIn(page);
  await page.goto(`${base}/console#/parked/orders`);
  await page.waitForSelector("#parked-table");
  const parked = (await apiCall("GET", "/subscriptions/orders/parked")).body;
  check(parked.length >= 2 && parked.every((p) => p.stream_id === `order-${orderId}`), `the order's events are parked: ${parked.length}`);
  const [head, next] = parked;
  check(JSON.stringify(await enabledReplays(page)) === JSON.stringify([head.position]),
    "only the stream's first parked event can be replayed alone");
  await accessible(page, "the parked page with replay buttons");

  // Cancel first: nothing happens.
  await page.click(`button[data-replay="${head.position}"]`);
  check((await page.textContent("#confirm-text")).includes(`position ${head.position}`), "the confirmation names the event");
  await page.click("#confirm button[value=cancel]");
  check((await apiCall("GET", "/subscriptions/orders/parked")).body.length === parked.length, "cancelling replays nothing");

  await page.click(`button[data-replay="${head.position}"]`);
  await page.click("#confirm-ok");
  await until("the outcome is shown", async () =>
    (await page.textContent("#replay-outcome")).startsWith(`Replayed position ${head.position}`));
  await until("the replayed event disappears", async () =>
    (await page.$(`#parked-table tr[data-position="${head.position}"]`)) === null);
  await until("the next event of the stream may be replayed", async () =>
    JSON.stringify(await enabledReplays(page)) === JSON.stringify([next.position]));
  const after = (await apiCall("GET", "/subscriptions/orders/parked")).body;
  check(after.length === parked.length - 1 && after[0].position === next.position, `one fewer parked: ${JSON.stringify(after)}`);
  await shot(page, "parked-one-replayed");
  await close();
});
