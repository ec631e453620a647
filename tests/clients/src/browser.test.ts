// A real browser (headless Chromium) on a page of another origin
// (examples/browser/index.html): its EventSource follows top-up events
// created over gRPC, survives a gateway restart, and resumes with
// Last-Event-ID with no event lost and none repeated; and it makes a
// gRPC-Web call. The page reaches the gateway through a proxy the test can
// cut, so that events are certainly made while the page is away.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer as createHTTPServer, type Server as HTTPServer } from "node:http";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { Gateway, repoRoot, uuid } from "./gateway.js";
import { nodeExample, type TopupEvent } from "./grpc.js";

/** A TCP proxy to the gateway's HTTP port that can refuse connections. */
class Proxy {
  target = "";
  down = false;
  private sockets = new Set<Socket>();
  readonly server: Server = createServer((client) => {
    if (this.down || !this.target) return void client.destroy();
    const [host, port] = this.target.split(":");
    const upstream = connect(Number(port), host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  /** Cuts every connection and refuses new ones. */
  cut(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
  }
}

const listen = (s: Server | HTTPServer) => new Promise<void>((r) => s.listen(0, "127.0.0.1", r));

interface Seen {
  lastEventId: string;
  id: string;
  type: string;
  topup: string;
}
interface Dashboard {
  events: Seen[];
  opens: number;
  errors: number;
  ends: { code: string }[];
  lastId?: string;
}
declare global {
  interface Window {
    dashboard: Dashboard;
    refreshBalance(): Promise<{ cash_balance: { balance: string; currency: string; account_group_id: string } }>;
  }
}

let pages: HTTPServer, proxy: Proxy, gw: Gateway, browser: Browser;

before(async () => {
  const html = readFileSync(join(repoRoot, "tests", "clients", "examples", "browser", "index.html"));
  pages = createHTTPServer((_, res) => res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(html));
  await listen(pages);
  proxy = new Proxy();
  await listen(proxy.server);
  const origin = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
  gw = await Gateway.start({ corsOrigins: origin });
  proxy.target = gw.httpAddr;
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
    timeout: 60_000,
  });
});

after(async () => {
  await browser?.close();
  await gw?.close();
  proxy?.server.close();
  pages?.close();
});

const dashboard = (page: Page) => page.evaluate(() => window.dashboard);

async function until(what: string, cond: () => Promise<boolean> | boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- gateway ---\n${gw.output.slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test("EventSource across a gateway restart, and gRPC-Web, from another origin", async () => {
  const ex = await nodeExample();
  const ag = uuid();
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Network failures while the proxy is cut are expected; script errors not.
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith("Failed to load resource") && pageErrors.push(m.text()));
  await page.goto(`http://127.0.0.1:${(pages.address() as AddressInfo).port}/?gateway=${encodeURIComponent(proxy.url)}&account_group_id=${ag}`);
  await until("the stream to open", async () => (await dashboard(page)).opens >= 1);

  // Before the restart: events of top-ups created over gRPC.
  let clients = ex.connect(gw.grpcAddr);
  const a1 = (await ex.createTopup(clients, ag, "10.00")).topup.id;
  const a2 = (await ex.createTopup(clients, ag, "15.00")).topup.id;
  await until("4 events before the restart", async () => (await dashboard(page)).events.length >= 4);
  clients.topups.close();
  clients.cashBalance.close();

  // The page loses the gateway, which restarts; while the page cannot
  // reconnect, top-ups are created and their events stored.
  proxy.cut();
  await gw.restart();
  proxy.target = gw.httpAddr;
  const lastId = (await dashboard(page)).lastId;
  assert.ok(lastId, "the page has no last event id");
  clients = ex.connect(gw.grpcAddr);
  const b1 = (await ex.createTopup(clients, ag, "20.00")).topup.id;
  const b2 = (await ex.createTopup(clients, ag, "25.00")).topup.id;
  const stored: TopupEvent[] = [];
  const stop = ex.watchTopups(clients, ag, (e) => stored.push(e), { resumeToken: lastId });
  await until("the new events in the log", () => stored.length >= 4);
  stop();

  // The page comes back: its EventSource resumes from Last-Event-ID.
  proxy.down = false;
  await until("8 events after the restart", async () => (await dashboard(page)).events.length >= 8, 90_000);
  const d = await dashboard(page);
  assert.ok(d.opens >= 2, `the EventSource opened ${d.opens} times`);
  const seen = d.events.map((e) => `${e.topup} ${e.type}`);
  const before = seen.slice(0, 4).sort();
  assert.deepEqual(before, [
    `${a1} TOPUP_EVENT_TYPE_CONFIRMED`, `${a1} TOPUP_EVENT_TYPE_SETTLED`,
    `${a2} TOPUP_EVENT_TYPE_CONFIRMED`, `${a2} TOPUP_EVENT_TYPE_SETTLED`,
  ].sort());
  // After the restart, exactly what was stored, in the log's order.
  assert.deepEqual(seen.slice(4), stored.map((e) => `${e.topup.id} ${e.type}`));
  assert.deepEqual(new Set(stored.map((e) => e.topup.id)), new Set([b1, b2]));
  assert.equal(new Set(d.events.map((e) => e.id)).size, d.events.length, "an event came twice");

  // gRPC-Web, across origins, through the same interceptors.
  const resp = await page.evaluate(() => window.refreshBalance());
  assert.equal(resp.cash_balance.account_group_id, ag);
  assert.equal(resp.cash_balance.currency, "EUR");
  assert.equal(Number(resp.cash_balance.balance), 45);
  clients.topups.close();
  clients.cashBalance.close();
  assert.deepEqual(pageErrors, []);
});
