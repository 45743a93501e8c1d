// Starts one real `wrangler dev` (fresh local R2/D1 in a temp dir) for all Node-side tests.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";

export const E2E_ADMIN_KEY = "e2e-admin-key";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
    adminKey: string;
  }
}

let child: ChildProcess | undefined;
let persistDir: string | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  persistDir = mkdtempSync(join(tmpdir(), "edge-images-e2e-"));
  const env = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" };
  await runToEnd("wrangler", ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], env);

  const port = await freePort();
  const output: string[] = [];
  child = spawn(
    "wrangler",
    ["dev", "--port", String(port), "--ip", "127.0.0.1", "--persist-to", persistDir, "--var", `ADMIN_API_KEY:${E2E_ADMIN_KEY}`, "--var", "ALLOW_INSECURE_OUTBOUND:true", "--var", "RETRY_BASE_SECONDS:0", "--show-interactive-dev-session=false"],
    { env, stdio: ["ignore", "pipe", "pipe"], detached: true },
  );
  child.stdout?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));

  const baseUrl = `http://127.0.0.1:${port}`;
  await waitUntilUp(baseUrl, output);
  project.provide("baseUrl", baseUrl);
  project.provide("adminKey", E2E_ADMIN_KEY);

  return async () => {
    if (child?.pid) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // already gone
      }
    }
    if (process.env["E2E_SHOW_LOG"]) console.log(output.join(""));
    if (persistDir) rmSync(persistDir, { recursive: true, force: true });
  };
}

async function waitUntilUp(baseUrl: string, output: string[]): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (child?.exitCode !== null && child?.exitCode !== undefined) break;
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
