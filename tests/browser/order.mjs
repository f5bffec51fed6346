// An order placed through the API by another client: found in the console
// by its correlation id, watched from `reserved` to `paid` without a
// reload, its swimlanes showing every event of its timeline, each event's
// data on click.

import { check, until, launch, logIn, shot, apiCall, scenario, accessible } from "./lib.mjs";

scenario("order", async () => {
  const { page, close } = await launch();
  await logIn(page);
  const correlation = `console-test/${Date.now()}`;
  const placed = await apiCall("POST", "/orders", {
    customer_id: "c-console", currency: "USD", payment_method: "card_ok",
    lines: [{ sku: "ORDER-1", quantity: 2, unit_price: "9.99" }],
  }, { "x-correlation-id": correlation });
  check(placed.status === 201, `order placed: ${placed.status} ${JSON.stringify(placed.body)}`);
  const orderId = placed.body.order_id;
  await until("the order is reserved", async () => (await apiCall("GET", `/orders/${orderId}`)).body.status === "reserved");

  // Found by its correlation id (one order: straight to its page).
  await page.click("#nav a[href='#/order']");
  await page.fill("#find-q", correlation);
  await page.press("#find-q", "Enter");
  await page.waitForURL(`**/console#/order/${orderId}`);
  await until("the page shows reserved", async () => (await page.textContent("#order-status").catch(() => "")) === "reserved");
  check(await page.getAttribute("#order-states g.state.current", "data-state") === "reserved", "the state machine marks reserved");

  // Ship it from outside; the open page follows to paid by itself.
  await page.evaluate(() => { window.notReloaded = true; });
  const shipping = Date.now();
  const shipped = await apiCall("POST", `/orders/${orderId}/ship`);
  check(shipped.status === 200, `shipped: ${shipped.status}`);
  await until("the page shows paid", async () => (await page.textContent("#order-status")) === "paid");
  console.log(`from POST /ship to "paid" on the open page: ${Date.now() - shipping} ms`);
  check(await page.evaluate(() => window.notReloaded === true), "the page was not reloaded");
  await until("the state machine marks paid", async () =>
    (await page.getAttribute("#order-states g.state.current", "data-state")) === "paid");

  // Every event of the timeline is in the swimlanes, in its stream's lane.
  const timeline = (await apiCall("GET", `/orders/${orderId}/timeline`)).body;
  check(timeline.some((e) => e.type === "OrderPaid"), "the timeline has OrderPaid");
  await until("the swimlanes show every event of the timeline", async () => {
    const drawn = await page.$$eval("#swimlanes g.event", (nodes) => nodes.map((n) => `${n.dataset.position} ${n.dataset.stream} ${n.dataset.type}`));
    const expected = timeline.map((e) => `${e.position} ${e.stream_id} ${e.type}`);
    return drawn.length === expected.length && expected.every((e, i) => drawn[i] === e);
  });
  const lanes = await page.$$eval("#swimlanes g.lane", (nodes) => nodes.map((n) => n.dataset.stream));
  for (const stream of new Set(timeline.map((e) => e.stream_id))) check(lanes.includes(stream), `a lane for ${stream}`);
  // An arrow for every event caused by another event of the timeline (the
  // others were caused by a request).
  const ids = new Map(timeline.map((e) => [e.event_id, e.position]));
  const expected = timeline.filter((e) => ids.has(e.metadata.causation_id))
    .map((e) => `${ids.get(e.metadata.causation_id)}->${e.position}`).sort();
  const hops = await page.$$eval("#swimlanes g.hop", (nodes) => nodes.map((n) => `${n.dataset.from}->${n.dataset.to}`));
  check(expected.length >= 5 && JSON.stringify(hops.sort()) === JSON.stringify(expected),
    `causation links ${hops} are ${expected}`);

  // An event's data, by click and by keyboard.
  const paid = timeline.find((e) => e.type === "OrderPaid");
  await page.click(`#swimlanes g.event[data-position="${paid.position}"]`);
  await until("its data is shown", async () => (await page.textContent("#event-detail")).includes(paid.event_id));
  const captured = timeline.find((e) => e.type === "PaymentCaptured");
  await page.focus(`#swimlanes g.event[data-position="${captured.position}"]`);
  await page.keyboard.press("Enter");
  await until("Enter shows the focused event", async () => (await page.textContent("#event-detail")).includes(captured.event_id));
  // The picture from the lanes' start (focus scrolled the region).
  await page.$eval("#swimlanes", (region) => { region.scrollLeft = 0; });
  await shot(page, "order");
  await accessible(page, "the order page");

  // Found by customer id: listed with its status.
  await page.click("#nav a[href='#/order']");
  await page.fill("#find-q", "c-console");
  await page.press("#find-q", "Enter");
  await until("the customer's order is listed", async () =>
    (await page.textContent("#find-results")).includes(orderId));
  await close();

  // On a narrow screen the page fits; the lanes scroll inside their region.
  const narrow = await launch({ width: 390, height: 844 });
  await logIn(narrow.page);
  await narrow.page.goto(`${narrow.page.url().split("#")[0]}#/order/${orderId}`);
  await narrow.page.waitForSelector("#swimlanes g.event");
  const overflow = await narrow.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the order page fits a narrow screen, overflow ${overflow}px`);
  await shot(narrow.page, "order-narrow");
  await accessible(narrow.page, "the order page on a narrow screen");
  await narrow.close();
});
