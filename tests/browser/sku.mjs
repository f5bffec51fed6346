// A SKU's step chart: at three instants between its changes, the values
// drawn (the step under the instant) equal what GET /inventory/{sku}?at=
// answers, in total and for one warehouse; the time picker's read-out and
// the events around the instant agree.

import { check, until, launch, logIn, shot, apiCall, scenario, accessible } from "./lib.mjs";

const sku = process.env.SKU;

/** The values of the drawn step under `at` (ISO text). */
async function drawnAt(page, at) {
  return page.$$eval("#stock-chart rect.step", (steps, instant) => {
    const t = Date.parse(instant);
    const step = steps.find((s) => Date.parse(s.dataset.from) <= t && t < Date.parse(s.dataset.to));
    return step && {
      on_hand: Number(step.dataset.onHand), reserved: Number(step.dataset.reserved), available: Number(step.dataset.available),
    };
  }, at);
}

async function asOf(page, at) {
  await page.fill("#as-of", at);
  await page.press("#as-of", "Enter");
  await until(`the read-out is for ${at}`, async () =>
    (await page.textContent("#as-of-instant").catch(() => "")) === at
    && (await page.getAttribute("#stock-chart g.marker", "data-at").catch(() => null)) !== null);
}

function levelOf(body, warehouse) {
  const level = warehouse === "total" ? body : (body.warehouses.find((w) => w.warehouse === warehouse) || { on_hand: 0, reserved: 0, available: 0 });
  return { on_hand: level.on_hand, reserved: level.reserved, available: level.available };
}

scenario("sku", async () => {
  const { page, close } = await launch();
  await logIn(page);
  const history = (await apiCall("GET", `/inventory/${sku}/history`)).body;
  check(history.length >= 6, `the SKU has its changes: ${history.length}`);
  // Midway between changes: one early, one while stock is reserved, one
  // after the last change.
  const mid = (a, b) => new Date((Date.parse(a.at) + Date.parse(b.at)) / 2).toISOString();
  const reservedAt = history.findIndex((row) => row.reserved > 0);
  check(reservedAt > 0 && reservedAt < history.length - 1, "a change reserves stock");
  const instants = [
    mid(history[0], history[1]),
    mid(history[reservedAt], history[reservedAt + 1]),
    new Date(Date.parse(history[history.length - 1].at) + 1).toISOString(),
  ];

  await page.goto(`${page.url().split("#")[0]}#/sku/${sku}`);
  await page.waitForSelector("#stock-chart rect.step");
  for (const warehouse of ["total", "main"]) {
    if (warehouse !== "total") {
      await page.click(`text=${warehouse}`);
      await until(`the chart is of ${warehouse}`, async () =>
        (await page.getAttribute("#stock-chart svg", "data-warehouse")) === warehouse);
    }
    for (const at of instants) {
      await asOf(page, at);
      const drawn = await drawnAt(page, at);
      const answer = await apiCall("GET", `/inventory/${sku}?at=${encodeURIComponent(at)}`);
      check(answer.status === 200, `?at= answers: ${answer.status}`);
      const expected = levelOf(answer.body, warehouse);
      check(JSON.stringify(drawn) === JSON.stringify(expected),
        `${warehouse} at ${at}: the chart shows ${JSON.stringify(drawn)}, the API says ${JSON.stringify(expected)}`);
      const readout = await page.textContent("#as-of-chart");
      check(readout.includes(`on hand ${expected.on_hand}, reserved ${expected.reserved}, available ${expected.available}`),
        `the read-out says the same: ${readout}`);
      check((await page.textContent("#as-of-api")).includes(`on hand ${expected.on_hand}, reserved ${expected.reserved}`),
        "the read-out shows the API's answer");
      const current = await page.$$eval("#around-table tr.current td:nth-child(2)", (cells) => cells.map((c) => Number(c.textContent)));
      check(current.length === 1 && current[0] === answer.body.position || warehouse !== "total",
        `the change in force is marked among the events around: ${current} vs ${answer.body.position}`);
    }
  }
  // A click on the chart picks the instant under the pointer.
  const box = await page.locator("#stock-chart svg").boundingBox();
  const before = await page.textContent("#as-of-instant");
  await page.mouse.click(box.x + box.width * 0.6, box.y + box.height * 0.5);
  await until("the click picks an instant", async () => (await page.textContent("#as-of-instant").catch(() => before)) !== before);
  await until("the chart and the API agree there", async () => {
    const drawn = await page.textContent("#as-of-chart");
    return (await page.textContent("#as-of-api")).startsWith(drawn);
  });

  // The picture for the README: all warehouses, the reservation marked.
  await page.click("text=All warehouses");
  await asOf(page, instants[1]);
  await shot(page, "sku");
  await accessible(page, "the SKU page");
  await close();
});
