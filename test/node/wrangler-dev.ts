// Starts one real `wrangler dev` (fresh local R2/D1 in a temp dir) for all Node-side tests, and
// the helpers a test uses to start one of its own (another config, e.g. low rate limits).
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

export const E2E_ADMIN_KEY = "e2e-admin-key";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    adminKey: string;
    /** File where the suite's `wrangler dev` reloads are logged as they are printed (see readReloads). */
    reloadLog: string;
  }
}

/**
 * The lines `wrangler dev` (4.164) prints when it rebuilds and restarts the worker after a change
 * to its sources or static assets, and when the new one answers. Seen by starting `wrangler dev`
 * and touching a file under src/ and under web/dist: "⎔ Reloading local server..." then
 * "⎔ Local server updated and ready". (The first start prints "⎔ Starting local server...".)
 */
export const RELOAD_STARTED = "Reloading local server...";
export const RELOAD_READY = "Local server updated and ready";

/** One reload reported by wrangler dev: when its two lines were read (ms since the epoch). */
export interface Reload {
  readonly started: number;
  /** Absent while the new worker is not ready yet (or never became ready). */
  readonly ready?: number;
}

export interface DevServer {
  readonly baseUrl: string;
  /** Everything wrangler dev printed so far. */
  readonly output: string[];
  /** The reload log (readReloads). */
  readonly reloadLog: string;
  stop(): Promise<void>;
}

const OFFLINE_ENV = { CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" };

/**
 * Applies the D1 migrations to a fresh state directory and starts `wrangler dev` on a free port
 * of 127.0.0.1; resolves once it answers. `config` is a wrangler config file (default
 * wrangler.toml); `vars` are passed with --var. The state directory is deleted by stop().
 */
export async function startWranglerDev(options: { config?: string; vars?: Record<string, string> } = {}): Promise<DevServer> {
  const persistDir = mkdtempSync(join(tmpdir(), "edge-images-e2e-"));
  const env = { ...process.env, ...OFFLINE_ENV };
  const configArgs = options.config ? ["--config", options.config] : [];
  await runToEnd("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir, ...configArgs], env);

  const port = await freePort();
  const varArgs = Object.entries(options.vars ?? {}).flatMap(([name, value]) => ["--var", `${name}:${value}`]);
  const child = spawn(
    "wrangler",
    ["dev", ...configArgs, "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persistDir, ...varArgs, "--show-interactive-dev-session=false"],
    { env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  const output: string[] = [];
  const reloadLog = join(persistDir, "reloads.log");
  writeFileSync(reloadLog, "");
  let pending = "";
  const read = (chunk: Buffer): void => {
    const text = chunk.toString();
    output.push(text);
    // Whole lines only: a chunk may end in the middle of one.
    const lines = (pending + text).split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) {
      if (line.includes(RELOAD_STARTED)) appendFileSync(reloadLog, `started ${Date.now()}\n`);
      else if (line.includes(RELOAD_READY)) appendFileSync(reloadLog, `ready ${Date.now()}\n`);
    }
  };
  child.stdout?.on("data", read);
  child.stderr?.on("data", read);

  const stop = async (): Promise<void> => {
    if (child.pid && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      try {
        process.kill(-child.pid, "SIGTERM");
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      } catch {
        // already gone
      }
    }
    rmSync(persistDir, { recursive: true, force: true });
  };
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntilUp(baseUrl, child, output);
  } catch (error) {
    await stop();
    throw error;
  }
  return { baseUrl, output, reloadLog, stop };
}

/** The reloads logged so far, oldest first. */
export function readReloads(reloadLog: string): Reload[] {
  if (!existsSync(reloadLog)) return [];
  const reloads: Array<{ started: number; ready?: number }> = [];
  for (const line of readFileSync(reloadLog, "utf8").split("\n")) {
    const [what, at] = line.split(" ");
    const time = Number(at);
    if (what === "started") reloads.push({ started: time });
    else if (what === "ready") {
      const open = reloads.findLast((reload) => reload.ready === undefined);
      if (open) open.ready = time;
    }
  }
  return reloads;
}

/**
 * Slack around a reload's two lines: they reach this process through a pipe and an event loop,
 * so a failure the restart caused may be seen a little before the first or after the second.
 */
const RELOAD_SLACK_MS = 2_000;
/** A reload that never printed its "ready" line covers at most this long. */
const RELOAD_MAX_MS = 30_000;

/** The reload, if any, that was in progress at `time` (a failure's time, ms since the epoch). */
export function reloadAt(reloads: readonly Reload[], time: number): Reload | undefined {
  return reloads.find((reload) => time >= reload.started - RELOAD_SLACK_MS && time <= (reload.ready ?? reload.started + RELOAD_MAX_MS) + RELOAD_SLACK_MS);
}

/** The reloads that started between two times. */
export function reloadsBetween(reloads: readonly Reload[], from: number, to: number): Reload[] {
  return reloads.filter((reload) => reload.started >= from && reload.started <= to);
}

let server: DevServer | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  server = await startWranglerDev({ vars: { ADMIN_API_KEY: E2E_ADMIN_KEY, ALLOW_INSECURE_OUTBOUND: "true", RETRY_BASE_SECONDS: "0" } });
  project.provide("baseUrl", server.baseUrl);
  project.provide("adminKey", E2E_ADMIN_KEY);
  project.provide("reloadLog", server.reloadLog);

  return async () => {
    if (process.env["E2E_SHOW_LOG"]) console.log(server?.output.join(""));
    await server?.stop();
  };
}

async function waitUntilUp(baseUrl: string, child: ChildProcess, output: string[]): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const response = await fetch(`${baseUrl}/__health`);
      await response.body?.cancel();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  throw new Error(`wrangler dev did not start:\n${output.join("")}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

function runToEnd(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    proc.stdout?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    proc.stderr?.on("data", (chunk: Buffer) => (log += chunk.toString()));
    proc.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(" ")} failed:\n${log}`))));
  });
}
