// Log in (by keyboard), see the live overview, browse the log with a live
// tail, refuse a state change without the CSRF token, log out; the same
// overview on a narrow screen.

import { base, token, check, until, launch, shot, apiCall, scenario, accessible } from "./lib.mjs";

scenario("login", async () => {
  const { page, close } = await launch();
  await page.goto(`${base}/console`);
  await page.waitForSelector("#login:not([hidden])");
  await accessible(page, "the log-in page");
  // A wrong token: the API's refusal, shown; no session.
  await page.fill("#token", "not-the-token");
  await page.press("#token", "Enter");
  await until("the refusal is shown", async () => (await page.textContent("#login-error")).includes("not the admin token"));

  // The right one, typed and submitted from the keyboard alone.
  await page.fill("#token", "");
  await page.focus("#token");
  await page.keyboard.type(token);
  await page.keyboard.press("Enter");
  await page.waitForSelector("#subscriptions");
  const names = await page.$$eval("#subscriptions tbody th", (cells) => cells.map((c) => c.textContent));
  for (const name of ["orders", "stock", "payments", "inventory-reactor", "payment-reactor"]) {
    check(names.some((n) => n.startsWith(name)), `${name} in the overview: ${names}`);
  }
  check((await page.textContent("#finance-row")).includes("not configured (ORDERSTREAM_FINANCE_URL)"), "Finance's row says it is not configured");
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === "orderstream_console");
  check(session && session.httpOnly && session.sameSite === "Strict", `an HttpOnly Strict cookie: ${JSON.stringify(session)}`);
  check(!(await page.evaluate(() => document.cookie)).includes("orderstream_console"), "scripts cannot read the session");
  await shot(page, "overview");
  await accessible(page, "the overview");

  // Live: an event appended by another client moves the log head.
  const before = Number(await page.textContent("#subscriptions caption").then((t) => t.match(/\d+/)[0]));
  const receipt = await apiCall("POST", "/inventory/LOGIN-1/receipts", { quantity: 1, warehouse: "main" });
  check(receipt.status === 201, `receipt: ${receipt.status}`);
  await until("the overview shows the new head", async () => {
    const head = Number((await page.textContent("#subscriptions caption")).match(/\d+/)[0]);
    return head > before;
  });

  await until("the lag chart draws its samples", async () => (await page.$("#overview-body svg.sparkline polyline")) !== null);
  // A page opened now starts from the server's samples of the last minutes.
  const second = await page.context().newPage();
  await second.goto(`${base}/console#/overview`);
  await second.waitForSelector("#overview-body svg.sparkline polyline", { state: "attached" });
  await second.close();

  // A state change without the CSRF token is refused, with the cookie.
  const forged = await page.evaluate(async () => (await fetch("/console/api/projections/orders/rebuild", { method: "POST" })).status);
  check(forged === 403, `a POST without the CSRF token is 403, got ${forged}`);

  // Keyboard: Tab reaches the navigation; Enter follows a link.
  await page.focus("#nav a[href='#/log']");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#log-rows tr");
  await page.fill("#log-category", "inventory");
  await page.click("#log-filters button[value=start]");
  await until("the inventory events are listed", async () => {
    const streams = await page.$$eval("#log-rows tr[data-position] td:nth-child(2)", (cells) => cells.map((c) => c.textContent));
    return streams.length >= 2 && streams.every((s) => s.startsWith("inventory-"));
  });
  // By type, then by stream.
  await page.fill("#log-category", "");
  await page.fill("#log-type", "StockReceived");
  await page.click("#log-filters button[value=start]");
  await until("only receipts are listed", async () => {
    const types = await page.$$eval("#log-rows tr[data-position] td:nth-child(4)", (cells) => cells.map((c) => c.textContent));
    return types.length >= 2 && types.every((t) => t === "StockReceived");
  });
  await page.fill("#log-type", "");
  await page.fill("#log-stream", "inventory-LOGIN-1");
  await page.click("#log-filters button[value=start]");
  await until("only that stream is listed", async () => {
    const versions = await page.$$eval("#log-rows tr[data-position] td:nth-child(3)", (cells) => cells.map((c) => c.textContent));
    return versions.join(",") === "1,2";
  });
  await page.click("#log-rows tr[data-position] button");
  await until("an event's data opens", async () => (await page.textContent("#log-rows")).includes("\"quantity\": 5"));
  await page.fill("#log-stream", "");
  await page.fill("#log-category", "inventory");
  await page.click("#log-filters button[value=start]");
  await page.check("#live-tail");
  const rowsBefore = await page.$$eval("#log-rows tr[data-position]", (rows) => rows.length);
  await apiCall("POST", "/inventory/LOGIN-2/receipts", { quantity: 3, warehouse: "east" });
  await until("the live tail adds the new event", async () => {
    const streams = await page.$$eval("#log-rows tr[data-position] td:nth-child(2)", (cells) => cells.map((c) => c.textContent));
    return streams.length > rowsBefore && streams.includes("inventory-LOGIN-2");
  });
  await shot(page, "log");
  await accessible(page, "the log");

  // Log out: the session is gone on the server too.
  await page.click("#log-out");
  await page.waitForSelector("#login:not([hidden])");
  const after = await page.evaluate(async () => (await fetch("/console/api/subscriptions")).status);
  check(after === 401, `after logging out the console answers 401, got ${after}`);
  await close();

  // A narrow screen: the same overview, nothing cut off sideways.
  const narrow = await launch({ width: 390, height: 844 });
  await narrow.page.goto(`${base}/console`);
  await narrow.page.fill("#token", token);
  await narrow.page.press("#token", "Enter");
  await narrow.page.waitForSelector("#subscriptions");
  const overflow = await narrow.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the page fits a narrow screen (tables scroll inside it), overflow ${overflow}px`);
  await shot(narrow.page, "overview-narrow");
  await accessible(narrow.page, "the overview on a narrow screen");
  await narrow.close();
});
