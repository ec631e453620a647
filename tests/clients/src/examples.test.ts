// The README's gRPC client examples, run as a user would run them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Gateway, repoRoot, uuid } from "./gateway.js";
import { examplePath, nodeExample, type TopupEvent } from "./grpc.js";

let gw: Gateway;
before(async () => {
  gw = await Gateway.start();
});
after(async () => {
  await gw?.close();
});

test("Node.js (@grpc/grpc-js): create, read", () => {
  const ag = uuid();
  const r = spawnSync(process.execPath, [examplePath, gw.grpcAddr, ag], { encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.created.account_group_id, ag);
  assert.equal(out.read.id, out.created.id);
});

test("Node.js (@grpc/grpc-js): watch, resuming across a restart", async () => {
  const ex = await nodeExample();
  const clients = ex.connect(gw.grpcAddr);
  const ag = uuid();
  const events: TopupEvent[] = [];
  let messages = 0;
  const until = (what: string, cond: () => boolean) =>
    new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const poll = () => (cond() ? resolve() : Date.now() > deadline ? reject(new Error(`timed out waiting for ${what}`)) : setTimeout(poll, 20));
      poll();
    });
  const got = (n: number) => until(`${n} events (have ${events.length})`, () => events.length >= n);
  const stop = ex.watchTopups(clients, ag, (e) => events.push(e), { onMessage: () => messages++ });
  // The subscription starts with new events: create once it is live (its
  // first message, a heartbeat, came).
  await until("the first message", () => messages > 0);
  const first = await ex.createTopup(clients, ag, "10.00");
  await got(2);
  await gw.restart();
  const second = await ex.createTopup(clients, ag, "20.00");
  await got(4);
  stop();
  clients.topups.close();
  clients.cashBalance.close();
  assert.deepEqual(
    events.map((e) => [e.topup.id, e.type]),
    [
      [first.topup.id, "TOPUP_EVENT_TYPE_CONFIRMED"],
      [first.topup.id, "TOPUP_EVENT_TYPE_SETTLED"],
      [second.topup.id, "TOPUP_EVENT_TYPE_CONFIRMED"],
      [second.topup.id, "TOPUP_EVENT_TYPE_SETTLED"],
    ],
  );
  assert.equal(new Set(events.map((e) => e.id)).size, 4, "an event came twice");
});

// Python's grpcio is Debian's python3-grpcio here (PyPI is not reachable
// from CI): the system interpreter has it, a pyenv one may not.
const python = ["/usr/bin/python3", "python3"].find(
  (p) => spawnSync(p, ["-c", "import grpc, google.protobuf"], { encoding: "utf8" }).status === 0,
);

test("Python (grpcio): create, read", { skip: python ? false : "no python3 with grpcio and protobuf" }, () => {
  const descriptors = join(mkdtempSync(join(tmpdir(), "gateway-py-")), "gateway.binpb");
  const b = spawnSync("go", ["tool", "buf", "build", "--as-file-descriptor-set", "-o", descriptors], { cwd: repoRoot, encoding: "utf8" });
  assert.equal(b.status, 0, b.stderr);
  const ag = uuid();
  const r = spawnSync(python!, [join(repoRoot, "tests", "clients", "examples", "python", "topup.py"), descriptors, gw.grpcAddr, ag], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.created.account_group_id, ag);
  assert.equal(out.read.id, out.created.id);
  assert.match(out.idempotency_key, /^[0-9a-f-]{36}$/);
});
