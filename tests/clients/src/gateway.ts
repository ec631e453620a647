// A gateway process for the tests: `gateway --simulate` (the Upvest
// simulator in process, which delivers its webhooks to the gateway) on
// loopback ports, with its event log in a data directory that outlives a
// restart.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const repoRoot = resolve(import.meta.dirname, "..", "..", "..");

let built: string | undefined;

/** The gateway binary: GATEWAY_BIN, or built once from cmd/gateway. */
export function gatewayBinary(): string {
  if (process.env.GATEWAY_BIN) return process.env.GATEWAY_BIN;
  if (built) return built;
  const out = join(mkdtempSync(join(tmpdir(), "gateway-bin-")), "gateway");
  const r = spawnSync("go", ["build", "-o", out, "./cmd/gateway"], { cwd: repoRoot, stdio: "inherit" });
  if (r.status !== 0) throw new Error("go build ./cmd/gateway failed");
  built = out;
  return out;
}

export interface GatewayOptions {
  /** GATEWAY_CORS_ALLOWED_ORIGINS */
  corsOrigins?: string;
  /** Listen on these addresses (host:port); default: any free port. */
  httpAddr?: string;
  grpcAddr?: string;
}

export class Gateway {
  readonly dataDir: string;
  private proc?: ChildProcess;
  private log = "";
  httpAddr = "";
  grpcAddr = "";

  private constructor(private readonly opts: GatewayOptions, dataDir?: string) {
    this.dataDir = dataDir ?? mkdtempSync(join(tmpdir(), "gateway-data-"));
  }

  static async start(opts: GatewayOptions = {}): Promise<Gateway> {
    const g = new Gateway(opts);
    await g.run();
    return g;
  }

  get baseURL(): string {
    return `http://${this.httpAddr}`;
  }

  /** Everything the process has logged, for failure messages. */
  get output(): string {
    return this.log;
  }

  private async run(): Promise<void> {
    const env: NodeJS.ProcessEnv = { ...process.env, GATEWAY_CORS_ALLOWED_ORIGINS: this.opts.corsOrigins ?? "" };
    delete env.GATEWAY_NATS_URL; // the embedded log: its data directory survives a restart
    const proc = spawn(
      gatewayBinary(),
      [
        "--simulate",
        "--data-dir", this.dataDir,
        "--http-addr", this.httpAddr || this.opts.httpAddr || "127.0.0.1:0",
        "--grpc-addr", this.grpcAddr || this.opts.grpcAddr || "127.0.0.1:0",
        // Its own admin port, and a shutdown without the delay for load
        // balancers, which a restart here does not need.
        "--admin-addr", "127.0.0.1:0",
        "--shutdown-delay", "0s",
      ],
      { env, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.proc = proc;
    await new Promise<void>((resolveStart, reject) => {
      const timer = setTimeout(() => reject(new Error("the gateway did not start in 30 s:\n" + this.log)), 30_000);
      const onData = (b: Buffer) => {
        this.log += b.toString();
        const m = /msg="gateway serving" grpc=(\S+) http=(\S+)/.exec(this.log);
        if (m && m[1] && m[2]) {
          clearTimeout(timer);
          [this.grpcAddr, this.httpAddr] = [m[1], m[2]];
          resolveStart();
        }
      };
      proc.stdout?.on("data", onData);
      proc.stderr?.on("data", onData);
      proc.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited (${code}):\n` + this.log));
      });
    });
  }

  /** Stops the process (SIGTERM: a graceful shutdown) and waits for it. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((done) => {
      proc.once("exit", () => done());
      proc.kill("SIGTERM");
      setTimeout(() => proc.kill("SIGKILL"), 20_000).unref();
    });
  }

  /** Stops the gateway and starts it again on the same ports and log. */
  async restart(): Promise<void> {
    await this.stop();
    this.log += "\n--- restart ---\n";
    await this.run();
  }

  /** Stops the gateway for good and removes its data. */
  async close(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export function uuid(): string {
  return crypto.randomUUID();
}
