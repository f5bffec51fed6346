// The overview's Finance row against a real `finance serve`: up, its lag,
// no dead letters (so nothing stands out), and where it runs.

import { check, until, launch, logIn, shot, scenario, accessible } from "./lib.mjs";

scenario("finance", async () => {
  const { page, close } = await launch();
  await logIn(page);
  await until("the overview shows Finance up", async () =>
    (await page.$("#subscriptions #finance-row[data-finance=up]")) !== null);
  const row = "#subscriptions #finance-row";
  check((await page.textContent(row)).includes("Finance consumer"), "the row is named");
  check((await page.textContent(`${row} #finance-dead-letters`)).trim() === "0", "no dead letters");
  check(!(await page.$eval(row, (tr) => tr.classList.contains("alert"))), "nothing stands out");
  check((await page.textContent(row)).includes(process.env.FINANCE_URL), "where Finance runs is shown");
  check((await page.textContent(`${row} .badge`)).trim() === "up", "the state badge says up");
  await shot(page, "overview-finance");
  await accessible(page, "the overview with Finance");
  await close();
});
