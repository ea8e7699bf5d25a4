// The web inbox in a real browser: Debian's Chromium, headless, driven by playwright-core,
// against a fresh local runner at $BASE (scripts/test starts one). Fails (never skips) when
// something is missing, saying what to install.
//
//   BASE=http://127.0.0.1:PORT node tools/browser/inbox.test.mjs [--screenshots DIR]
//
// What a person does: signs in as u1 → a group send and app notifications arrive live as toasts,
// High above Normal → a Timed toast leaves after about 4 s, a Hidden one never shows → markdown
// renders, a body with markup shows as text and runs nothing → a url action opens its dialog, a
// side-pane action its pane → a delivery and a mark reach an open page with no read → dismiss and
// mark-all-read reach a second open page → a reload shows the same state → on API Gateway's
// WebSocket (emulated in the page: 10-minute idle timeout, 2-hour limit), an idle page stays
// connected for two hours with one new connection and no gap, its clock run through them. With
// --screenshots, the inbox at desktop and phone width.

import { existsSync } from "node:fs";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const BASE = process.env.BASE;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const U1 = "11111111-1111-4111-8111-111111111111";
const shots = process.argv.includes("--screenshots") ? process.argv[process.argv.indexOf("--screenshots") + 1] : null;

function fail(message) {
  console.error(`browser test: FAILED: ${message}`);
  process.exit(1);
}

if (!BASE) fail("BASE is not set (the local runner's URL)");
if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing: apt-get install -y chromium (scripts/test does)`);

const steps = [];
function step(name) {
  steps.push(name);
  console.log(`  - ${name}`);
}
function check(ok, message) {
  if (!ok) throw new Error(message);
}

async function post(path, token, body, headers = {}) {
  const resp = await fetch(BASE + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const text = await resp.text();
  if (!resp.ok) throw new Error(`POST ${path}: ${resp.status} ${text}`);
  return text;
}

const appNotification = (fields) => post("/api/data/v9.2/SendAppNotification", "demo-admin-token", {
  Recipient: `/systemusers(${U1})`, ...fields,
});

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
});

let failed = null;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const a = await context.newPage();
  const dialogs = [];
  a.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  const errors = [];
  a.on("pageerror", (e) => errors.push(String(e)));

  step("sign in as u1");
  await a.goto(BASE + "/");
  await a.fill("#token", "demo-user-1-token");
  await a.click("#signin button[type=submit]");
  await a.waitForSelector("#live:text('Live')", { timeout: 10000 });
  const before = await a.locator("#list > li").count();

  step("a group send and app notifications arrive live as toasts, High above Normal");
  await post("/rest/notification/send", null,
    { version: 3, type: "GT", key: "3", values: ["23"], message: "Team meeting moved to 3pm" },
    { "x-nextinteract-authtoken": "demo-admin-token", "x-nextinteract-company-api-key": "00000000-0000-4000-8000-000000000003" });
  await appNotification({
    Title: "SLA critical", Body: "plain", Priority: 200000001, IconType: 100000003,
    OverrideContent: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", title: "**SLA critical**",
      body: "Case **CAS-01** is _late_:\n- call the customer\n- escalate\n1. first\n2. second\n[the case](https://example.com/case) [bad](javascript:alert(1))" },
    Actions: { "@odata.type": "Microsoft.Dynamics.CRM.expando", actions: [
      { title: "Open case", data: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", type: "url", url: "https://example.com/case", navigationTarget: "dialog" } },
      { title: "View task", data: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", type: "sidepane",
        paneOptions: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", title: "Task Record", width: 400 },
        navigationTarget: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", pageType: "entityrecord", entityName: "task", entityId: "t-1" } } },
    ] },
  });
  await a.waitForFunction(() => document.querySelectorAll("#toasts .toast").length >= 2, null, { timeout: 10000 });
  const toastTitles = await a.locator("#toasts .toast .title").allTextContents();
  check(toastTitles[0] === "SLA critical", `the High toast first: ${JSON.stringify(toastTitles)}`);
  check(toastTitles.includes("Team notification"), `the group send's toast: ${JSON.stringify(toastTitles)}`);
  check(await a.locator("#list > li").count() === before + 2, "both in the center without a reload");
  check(await a.locator("#list > li").first().getAttribute("class").then((c) => c.includes("high")), "High first in the center");

  step("a Timed toast leaves after about 4 s; a Hidden one never shows");
  const shown = Date.now();
  await appNotification({ Title: "Quiet one", Body: "no toast", ToastType: 200000001 });
  await a.waitForFunction(() => [...document.querySelectorAll("#list .title")].some((t) => t.textContent === "Quiet one"), null, { timeout: 10000 });
  check(!(await a.locator("#toasts .toast .title", { hasText: "Quiet one" }).count()), "a Hidden notification shows no toast");
  await a.waitForFunction(() => document.querySelectorAll("#toasts .toast").length === 0, null, { timeout: 8000 });
  const gone = (Date.now() - shown) / 1000;
  check(gone >= 2 && gone <= 7, `Timed toasts leave after about 4 s (${gone.toFixed(1)} s)`);

  step("markdown renders (the spec's own list examples too); markup in a body is text and runs nothing");
  await appNotification({ Title: "Markup", Body: "<img src=x onerror=alert(1)><script>alert(2)</script>" });
  // app-notification.txt's examples, as written there: items apart by a bare carriage return.
  await appNotification({ Title: "Spec lists", Body: "lists",
    OverrideContent: { "@odata.type": "#Microsoft.Dynamics.CRM.expando", body: "- Item 1\r- Item 2\r- Item 3\n1. Green\r2. Orange\r3. Blue" } });
  await a.waitForFunction(() => [...document.querySelectorAll("#list .title")].some((t) => t.textContent === "Markup"), null, { timeout: 10000 });
  await a.waitForFunction(() => [...document.querySelectorAll("#list .title")].some((t) => t.textContent === "Spec lists"), null, { timeout: 10000 });
  const specLists = a.locator("#list > li", { hasText: "Spec lists" });
  const bullets = await specLists.locator(".body ul > li").allTextContents();
  const numbered = await specLists.locator(".body ol > li").allTextContents();
  check(JSON.stringify(bullets) === JSON.stringify(["Item 1", "Item 2", "Item 3"]), `the spec's bullet list: ${JSON.stringify(bullets)}`);
  check(JSON.stringify(numbered) === JSON.stringify(["Green", "Orange", "Blue"]), `the spec's numbered list: ${JSON.stringify(numbered)}`);
  const sla = a.locator("#list > li", { hasText: "SLA critical" });
  check(await sla.locator(".title strong").textContent() === "SLA critical", "bold title");
  check(await sla.locator(".body strong").textContent() === "CAS-01", "bold in the body");
  check(await sla.locator(".body em").textContent() === "late", "italic");
  check(await sla.locator(".body ul > li").count() === 2 && await sla.locator(".body ol > li").count() === 2, "bullet and numbered lists");
  check(await sla.locator(".body a").count() === 1 && await sla.locator(".body a").getAttribute("href") === "https://example.com/case", "only the http(s) link is a link");
  check((await sla.locator(".body").textContent()).includes("[bad](javascript:alert(1))"), "a javascript: link stays text");
  const markup = a.locator("#list > li", { hasText: "Markup" });
  check(await markup.locator(".body").textContent() === "<img src=x onerror=alert(1)><script>alert(2)</script>", "markup shown as text");
  check(await markup.locator("img, script").count() === 0, "no element made from it");
  await a.waitForTimeout(300);
  check(dialogs.length === 0, `no dialog opened: ${JSON.stringify(dialogs)}`);

  step("a url action opens its dialog; a side-pane action its pane");
  await sla.locator(".actions button", { hasText: "Open case" }).click();
  await a.waitForSelector("dialog[open]", { timeout: 5000 });
  check(await a.locator("#dialog-frame").getAttribute("src") === "https://example.com/case", "the dialog shows the url");
  await a.click("#dialog-close");
  await sla.locator(".actions button", { hasText: "View task" }).click();
  await a.waitForSelector("#pane:not([hidden])", { timeout: 5000 });
  check(await a.locator("#pane-title").textContent() === "Task Record", "the pane's title");
  const width = await a.locator("#pane").evaluate((p) => p.getBoundingClientRect().width);
  check(Math.abs(width - 400) < 2, `the pane's width (${width})`);
  check((await a.locator("#pane-body").textContent()).includes("t-1"), "the pane shows what it opens");
  await a.click("#pane-close");

  if (shots) {
    mkdirSync(shots, { recursive: true });
    await a.screenshot({ path: `${shots}/inbox-desktop.png` });
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const p = await phone.newPage();
    await p.goto(BASE + "/");
    await p.fill("#token", "demo-user-1-token");
    await p.click("#signin button[type=submit]");
    await p.waitForSelector("#live:text('Live')", { timeout: 10000 });
    await p.screenshot({ path: `${shots}/inbox-phone.png` });
    await phone.close();
  }

  step("a delivery and a mark reach an open page with no read (events carry what it shows)");
  const requests = [];
  a.on("request", (r) => requests.push(`${r.method()} ${new URL(r.url()).pathname}`));
  await appNotification({ Title: "No stampede", Body: "shown from the event" });
  await a.waitForFunction(() => [...document.querySelectorAll("#list .title")].some((t) => t.textContent === "No stampede"), null, { timeout: 10000 });
  const unreadBefore = Number(await a.locator("#badge").textContent());
  await a.locator("#list > li", { hasText: "No stampede" }).locator("button", { hasText: "Mark read" }).click();
  await a.waitForFunction((n) => Number(document.getElementById("badge").textContent) === n - 1, unreadBefore, { timeout: 5000 });
  // Longer than any gap read's random wait (5 s): a read would have happened by now.
  await a.waitForTimeout(6000);
  check(JSON.stringify(requests) === JSON.stringify([`POST /users/me/notifications/${await a.locator("#list > li", { hasText: "No stampede" }).getAttribute("data-id")}/read`]),
    `only the mark itself, no read: ${JSON.stringify(requests)}`);

  step("a correction and a retraction reach an open page: replaced in place, then gone and uncounted");
  const sender = { "x-nextinteract-authtoken": "demo-admin-token", "x-nextinteract-company-api-key": "00000000-0000-4000-8000-000000000003" };
  const sent = JSON.parse(await post("/rest/notification/send", null,
    { version: 3, type: "GT", key: "3", values: ["23"], message: "Meet in room 1" }, sender));
  const shows = (text) => [...document.querySelectorAll("#list > li")].some((li) => li.textContent.includes(text));
  await a.waitForFunction(shows, "Meet in room 1", { timeout: 10000 });
  const unreadWith = Number(await a.locator("#badge").textContent());
  await post(`/rest/notification/send/${sent.notificationScheduleId}/correct`, null, { message: "Meet in room 2" }, sender);
  await a.waitForFunction((t) => [...document.querySelectorAll("#list > li")].some((li) => li.textContent.includes(t)), "Meet in room 2", { timeout: 10000 });
  check(!(await a.evaluate(shows, "Meet in room 1")), "the corrected text replaced the first");
  check(Number(await a.locator("#badge").textContent()) === unreadWith, "a correction leaves it unread");
  const readsOfA = [];
  const countReads = (r) => { if (r.method() === "GET") readsOfA.push(new URL(r.url()).pathname); };
  a.on("request", countReads);
  await post(`/rest/notification/send/${sent.notificationScheduleId}/retract`, null, {}, sender);
  await a.waitForFunction((t) => ![...document.querySelectorAll("#list > li")].some((li) => li.textContent.includes(t)), "Meet in room 2", { timeout: 10000 });
  await a.waitForFunction((n) => Number(document.getElementById("badge").textContent) === n - 1, unreadWith, { timeout: 5000 });
  // Longer than a gap read's wait after a drop (5 s): a shown item's retraction needs no read.
  await a.waitForTimeout(6000);
  a.off("request", countReads);
  check(readsOfA.length === 0, `the retraction applied with no read: ${JSON.stringify(readsOfA)}`);

  step("dismiss and mark-all-read reach a second open page");
  const b = await context.newPage();
  await b.goto(BASE + "/");
  // The token lives in the tab's session storage: a second tab signs in too.
  await b.fill("#token", "demo-user-1-token");
  await b.click("#signin button[type=submit]");
  await b.waitForSelector("#live:text('Live')", { timeout: 10000 });
  const badge = async (page) => ((await page.locator("#badge").isHidden()) ? "0" : await page.locator("#badge").textContent());
  check((await badge(b)) !== "0", "unread before");
  await b.waitForTimeout(200);
  const readsOfB = [];
  b.on("request", (r) => { if (r.method() === "GET") readsOfB.push(new URL(r.url()).pathname); });
  await markup.locator("button[aria-label=Dismiss]").click();
  await b.waitForFunction(() => ![...document.querySelectorAll("#list .title")].some((t) => t.textContent === "Markup"), null, { timeout: 5000 });
  await a.click("#readall");
  await b.waitForFunction(() => document.getElementById("badge").hidden, null, { timeout: 5000 });
  check(await b.locator("#list > li.unread").count() === 0, "everything read in the second page");
  await b.waitForTimeout(6000);
  check(readsOfB.length === 0, `the second page applied both with no read: ${JSON.stringify(readsOfB)}`);

  step("a reload shows the same state");
  await a.reload();
  await a.waitForSelector("#live:text('Live')", { timeout: 10000 });
  check(await a.locator("#badge").isHidden(), "no unread after reload");
  check(!(await a.locator("#list .title", { hasText: "Markup" }).count()), "the dismissed one stays gone");
  check(await a.locator("#list > li").first().locator(".title").textContent() === "SLA critical", "same order");
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);

  step("an idle page on API Gateway's WebSocket stays connected two hours: one new connection, no gap");
  const ws = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  await ws.addInitScript(() => {
    // API Gateway as a page sees it: open after a moment; closed after 10 minutes without a
    // message from the page, and after 2 hours whatever it does.
    const gw = { opened: 0, open: 0, idleClosed: 0, limitClosed: 0, pings: 0, gaps: 0 };
    window.__gateway = gw;
    const IDLE = 10 * 60000, LIMIT = 2 * 3600000;
    class GatewaySocket {
      constructor(url) {
        this.url = url;
        this.readyState = 0;
        gw.opened += 1;
        this.limit = setTimeout(() => this.drop("limitClosed"), LIMIT);
        this.idle = setTimeout(() => this.drop("idleClosed"), IDLE);
        setTimeout(() => {
          if (this.readyState !== 0) return;
          this.readyState = 1;
          gw.open += 1;
          if (this.onopen) this.onopen({});
        }, 50);
      }
      send(data) {
        if (this.readyState !== 1) throw new Error("not open");
        if (JSON.parse(data).action === "ping") gw.pings += 1;
        clearTimeout(this.idle);
        this.idle = setTimeout(() => this.drop("idleClosed"), IDLE);
      }
      close() { this.end(); }
      drop(why) { if (this.readyState === 1) gw[why] += 1; this.end(); }
      end() {
        if (this.readyState === 3) return;
        const was = this.readyState;
        this.readyState = 3;
        clearTimeout(this.idle);
        clearTimeout(this.limit);
        if (was === 1) { gw.open -= 1; if (gw.open === 0) gw.gaps += 1; }
        setTimeout(() => { if (this.onclose) this.onclose({ code: 1001 }); }, 0);
      }
    }
    window.WebSocket = GatewaySocket;
    document.addEventListener("DOMContentLoaded", () => {
      const meta = document.querySelector('meta[name="realtime-url"]');
      if (meta) meta.content = "wss://gateway.invalid/live";
    });
  });
  const w = await ws.newPage();
  w.on("pageerror", (e) => errors.push(String(e)));
  await w.clock.install();
  await w.goto(BASE + "/");
  await w.fill("#token", "demo-user-1-token");
  await w.click("#signin button[type=submit]");
  await w.waitForSelector("#live:text('Live')", { timeout: 10000 });
  for (let minute = 0; minute < 120; minute++) {
    await w.clock.runFor(60000);
    await w.waitForTimeout(20); // a renewal's ticket request completes in real time
  }
  const gw = await w.evaluate(() => window.__gateway);
  check(gw.idleClosed === 0, `never closed for idleness: ${JSON.stringify(gw)}`);
  check(gw.limitClosed === 0, `never cut off at two hours: ${JSON.stringify(gw)}`);
  check(gw.opened === 2, `one connection and one renewal in two hours: ${JSON.stringify(gw)}`);
  check(gw.gaps === 0 && gw.open === 1, `never without a connection: ${JSON.stringify(gw)}`);
  check(gw.pings >= 20 && gw.pings <= 30, `a ping every 4 to 6 minutes: ${JSON.stringify(gw)}`);
  check(await w.locator("#live").textContent() === "Live", "still live");
  await ws.close();
  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) fail(`${steps[steps.length - 1]}: ${failed.message}`);
console.log(`browser test: ${steps.length} steps passed`);
