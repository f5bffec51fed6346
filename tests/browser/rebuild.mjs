// A rebuild of the stock projection from the console: confirmed, it shows
// a progress bar that moves up to the number of events, then says it
// completed; the projection is running again.

import { check, until, launch, logIn, shot, apiCall, scenario, accessible } from "./lib.mjs";

scenario("rebuild", async () => {
  const { page, close } = await launch();
  await logIn(page);
  await page.click("#nav a[href='#/projections']");
  await page.waitForSelector("#projections button[data-rebuild=stock]");
  // Every value the progress bar takes, as the page draws it.
  await page.evaluate(() => {
    window.progressSeen = [];
    new MutationObserver(() => {
      const bar = document.querySelector("#progress-stock");
      if (bar) window.progressSeen.push([Number(bar.value), Number(bar.max), bar.nextSibling.textContent]);
    }).observe(document.querySelector("#projections-body"), { childList: true, subtree: true });
  });
  await page.click("#projections button[data-rebuild=stock]");
  await page.click("#confirm-ok");
  let pictured = false;
  await until("the rebuild completes", async () => {
    const seen = await page.evaluate(() => window.progressSeen);
    if (!pictured && seen.some(([value]) => value > 0)) {
      pictured = true;
      await shot(page, "rebuild-progress", false);
    }
    return (await page.textContent("#projection-outcome")) === "Rebuild of stock completed.";
  });
  const seen = await page.evaluate(() => window.progressSeen);
  console.log(`progress seen: ${JSON.stringify(seen.map(([value, max]) => `${value}/${max}`))}`);
  check(seen.length > 0, "a progress bar was shown");
  const counted = seen.filter(([value, max, text]) => value > 0 && max >= value && /\d+ events rebuilt/.test(text));
  check(counted.length > 0, `the bar counted events: ${JSON.stringify(seen)}`);
  check(counted.some(([value, max]) => value < max), `the bar showed the rebuild part-way: ${JSON.stringify(seen)}`);
  for (let i = 1; i < counted.length; i++) check(counted[i][0] >= counted[i - 1][0], "progress never goes back");
  check(await page.$("#progress-stock") === null, "the bar is gone once done");
  await until("stock runs again", async () =>
    (await apiCall("GET", "/subscriptions")).body.find((s) => s.name === "stock").state === "running");
  // Reset, confirmed: the API's answer is shown.
  await page.selectOption("#reset-name", "payments");
  await page.fill("#reset-position", "0");
  await page.click("#reset-name ~ button[type=submit]");
  await page.click("#confirm-ok");
  await until("the reset is acknowledged", async () =>
    (await page.textContent("#projection-outcome")) === "payments will re-deliver the events after position 0.");
  await shot(page, "projections");
  await accessible(page, "the projections page");
  await close();
});
