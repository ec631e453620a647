// A client generated from the gateway's OpenAPI description
// (openapi-typescript's types, used by openapi-fetch) against a running
// gateway: it must parse a success, an error (application/problem+json)
// and a stream (NDJSON and Server-Sent Events). tsc checks the types
// first: a field the description lacks does not compile.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import createClient from "openapi-fetch";
import type { components, paths } from "../generated/gateway.js";
import { Gateway, repoRoot, uuid } from "./gateway.js";

type Problem = components["schemas"]["Problem"];
type TopupRecord = components["schemas"]["WatchTopupEventsRecord"];
type TopupMessage = components["schemas"]["WatchTopupEventsResponse"];

let gw: Gateway;
before(async () => {
  gw = await Gateway.start();
});
after(async () => {
  await gw?.close();
});

const client = () => createClient<paths>({ baseUrl: gw.baseURL });

test("the served description is the committed one", async () => {
  const res = await fetch(gw.baseURL + "/openapi.json");
  assert.equal(res.status, 200);
  const committed = readFileSync(join(repoRoot, "gen", "openapi", "gateway.openapi.json"), "utf8");
  assert.deepEqual(await res.json(), JSON.parse(committed));
});

test("a success", async () => {
  const ag = uuid();
  const key = uuid();
  const { data, error, response } = await client().POST("/v1/payments/topups", {
    params: { header: { "Idempotency-Key": key } },
    body: { account_group_id: ag, cash_amount: "120.00", currency: "EUR" },
  });
  assert.equal(error, undefined);
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("idempotency-key"), key);
  assert.ok(response.headers.get("upvest-request-id"));
  const topup = data?.topup;
  assert.equal(topup?.account_group_id, ag);
  assert.equal(topup?.cash_amount, "120.00");
  assert.equal(topup?.status, "TOPUP_STATUS_CONFIRMED");

  const list = await client().GET("/v1/account_groups/{account_group_id}/payments/topups", {
    params: { path: { account_group_id: ag }, query: { page_size: 10, order_by: "created_at desc" } },
  });
  assert.equal(list.data?.topups?.[0]?.id, topup?.id);
  assert.equal(list.data?.total_size, 1);
});

test("an error", async () => {
  const { data, error, response } = await client().POST("/v1/payments/topups", {
    params: { header: { "Idempotency-Key": uuid() } },
    body: { account_group_id: uuid(), cash_amount: "1.5", currency: "EUR" },
  });
  assert.equal(data, undefined);
  assert.equal(response.status, 400);
  assert.equal(response.headers.get("content-type"), "application/problem+json");
  const problem: Problem | undefined = error;
  assert.equal(problem?.status, 400);
  assert.equal(problem?.code, "INVALID_ARGUMENT");
  assert.equal(problem?.type, "urn:upvest-gateway:problem:invalid_argument");
  assert.deepEqual(problem?.field_violations?.map((v) => v.field), ["cash_amount"]);
  assert.ok(problem?.details?.some((d) => d["@type"].endsWith("google.rpc.ErrorInfo")));

  // Upvest's own 404, with Upvest's problem type and request id.
  const missing = await client().GET("/v1/payments/topups/{topup_id}", { params: { path: { topup_id: uuid() } } });
  assert.equal(missing.response.status, 404);
  assert.equal(missing.error?.code, "NOT_FOUND");
  assert.ok(missing.response.headers.get("upvest-request-id"));
});

/** Reads lines from a fetch body. */
async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buf = "";
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    buf += decoder.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
}

test("a stream, as NDJSON", async () => {
  const ag = uuid();
  const abort = new AbortController();
  const { response } = await client().GET("/v1/payments/topups:watch", {
    params: { query: { account_group_id: ag } },
    parseAs: "stream",
    signal: abort.signal,
  });
  assert.equal(response.status, 200);
  assert.equal(response.headers.get("content-type"), "application/x-ndjson");
  let created: string | undefined;
  const seen: string[] = [];
  for await (const line of lines(response.body!)) {
    const record = JSON.parse(line) as TopupRecord;
    assert.equal(record.error, undefined);
    const msg = record.result!;
    assert.ok(msg.resume_token);
    if (!created) {
      // The stream is live (its first message, a heartbeat, came): act.
      const { data } = await client().POST("/v1/payments/topups", {
        params: { header: { "Idempotency-Key": uuid() } },
        body: { account_group_id: ag, cash_amount: "7.00", currency: "EUR" },
      });
      created = data?.topup?.id;
    }
    if (msg.event) {
      assert.equal(msg.event.topup?.id, created);
      seen.push(msg.event.type ?? "");
      if (seen.length === 2) break;
    }
  }
  abort.abort();
  assert.deepEqual(seen, ["TOPUP_EVENT_TYPE_CONFIRMED", "TOPUP_EVENT_TYPE_SETTLED"]);
});

test("a stream, as Server-Sent Events", async () => {
  const ag = uuid();
  const abort = new AbortController();
  const { response } = await client().GET("/v1/payments/topups:watch", {
    params: { query: { account_group_id: ag } },
    headers: { Accept: "text/event-stream" },
    parseAs: "stream",
    signal: abort.signal,
  });
  assert.equal(response.headers.get("content-type"), "text/event-stream");
  let created: string | undefined;
  let event: { id?: string; event?: string; data?: string } = {};
  for await (const line of lines(response.body!)) {
    if (line !== "") {
      const [field, ...rest] = line.split(":");
      event = { ...event, [field!]: rest.join(":").trimStart() };
      continue;
    }
    const msg = JSON.parse(event.data!) as TopupMessage;
    assert.equal(event.id, msg.resume_token);
    if (!created) {
      const { data } = await client().POST("/v1/payments/topups", {
        params: { header: { "Idempotency-Key": uuid() } },
        body: { account_group_id: ag, cash_amount: "8.00", currency: "EUR" },
      });
      created = data?.topup?.id;
    }
    if (event.event === "event") {
      assert.equal(msg.event?.topup?.id, created);
      break;
    }
    assert.equal(event.event, "heartbeat");
    event = {};
  }
  abort.abort();
});
