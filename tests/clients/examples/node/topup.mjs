// A Node.js client of the gateway's gRPC face with @grpc/grpc-js: create a
// top-up (idempotent: one request_id per operation, the same on every
// retry), read it back, and follow the account group's top-up events,
// resuming after a disconnect with the last resume_token.
//
//   npm install @grpc/grpc-js @grpc/proto-loader
//   node topup.mjs 127.0.0.1:9090 2596db3b-0d03-4651-9eda-970910479dfb
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "proto");

/** The gateway's services, from the .proto files. */
export function connect(address, credentials = grpc.credentials.createInsecure()) {
  const def = protoLoader.loadSync(
    ["upvest/gateway/v1/topups.proto", "upvest/gateway/v1/cash_balance.proto"],
    { includeDirs: [protoDir], keepCase: true, enums: String, longs: String, defaults: true, oneofs: true },
  );
  const v1 = grpc.loadPackageDefinition(def).upvest.gateway.v1;
  return {
    topups: new v1.TopupService(address, credentials),
    cashBalance: new v1.CashBalanceService(address, credentials),
  };
}

const unary = (client, method, req) =>
  new Promise((resolve, reject) =>
    client[method](req, { deadline: Date.now() + 30_000 }, (err, resp) => (err ? reject(err) : resolve(resp))),
  );

/** Creates a top-up; retry with the same requestId, never a new one. */
export function createTopup(clients, accountGroupId, cashAmount, requestId = randomUUID()) {
  return unary(clients.topups, "CreateTopup", { request_id: requestId, account_group_id: accountGroupId, cash_amount: cashAmount, currency: "EUR" });
}

export function getTopup(clients, topupId) {
  return unary(clients.topups, "GetTopup", { topup_id: topupId });
}

/**
 * Follows the top-up events of an account group, calling onEvent with each
 * event (and onMessage with every message, heartbeats too); on UNAVAILABLE
 * (a restart, a deploy) it resumes after the last resume_token it saw.
 * Returns a function that stops it.
 */
export function watchTopups(clients, accountGroupId, onEvent, { resumeToken = "", onMessage = () => {} } = {}) {
  let stopped = false;
  let call;
  const open = () => {
    call = clients.topups.WatchTopupEvents({ account_group_id: accountGroupId, resume_token: resumeToken });
    call.on("data", (msg) => {
      resumeToken = msg.resume_token; // heartbeats advance it too
      onMessage(msg);
      if (msg.event) onEvent(msg.event);
    });
    call.on("error", (err) => {
      if (!stopped && (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.RESOURCE_EXHAUSTED)) {
        setTimeout(open, 500);
      }
    });
  };
  open();
  return () => {
    stopped = true;
    call.cancel();
  };
}

// As a program: create a top-up, read it back, print both.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [address = "127.0.0.1:9090", accountGroupId = randomUUID()] = process.argv.slice(2);
  const clients = connect(address);
  const created = await createTopup(clients, accountGroupId, "100.00");
  const read = await getTopup(clients, created.topup.id);
  console.log(JSON.stringify({ created: created.topup, read: read.topup }));
  clients.topups.close();
  clients.cashBalance.close();
}
