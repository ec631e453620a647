// The Node.js example (examples/node/topup.mjs) as the tests' gRPC client:
// the tests run the code the README shows.
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { repoRoot } from "./gateway.js";

export interface Topup {
  id: string;
  account_group_id: string;
  cash_amount: string;
  status: string;
}
export interface TopupEvent {
  id: string;
  type: string;
  topup: Topup;
}
export interface Clients {
  topups: { close(): void };
  cashBalance: { close(): void };
}
interface Example {
  connect(address: string): Clients;
  createTopup(c: Clients, accountGroupId: string, cashAmount: string, requestId?: string): Promise<{ topup: Topup }>;
  getTopup(c: Clients, topupId: string): Promise<{ topup: Topup }>;
  watchTopups(
    c: Clients,
    accountGroupId: string,
    onEvent: (e: TopupEvent) => void,
    opts?: { resumeToken?: string; onMessage?: (m: { resume_token: string }) => void },
  ): () => void;
}

export const examplePath = join(repoRoot, "tests", "clients", "examples", "node", "topup.mjs");

export async function nodeExample(): Promise<Example> {
  return (await import(pathToFileURL(examplePath).href)) as Example;
}
