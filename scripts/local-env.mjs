// Shared by the dev, test and e2e scripts: make a fresh checkout runnable with no manual step.
import { copyFileSync, existsSync } from "node:fs";
import { spawn } from "node:child_process";

/** `.dev.vars` holds local secrets (ignored by git); start from the committed example. */
export function ensureDevVars() {
  if (!existsSync(".dev.vars")) {
    copyFileSync(".dev.vars.example", ".dev.vars");
    console.log("Created .dev.vars from .dev.vars.example (local admin key: dev-admin-key).");
  }
}

/** Environment for wrangler on a machine without network: no Request.cf fetch, no metrics. */
export function offlineEnv(extra = {}) {
  return {
    ...process.env,
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_SEND_METRICS: "false",
    ...extra,
  };
}

/** Runs a command with inherited output; resolves with its exit code. */
export function run(command, args, options = {}) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: "inherit", env: offlineEnv(), ...options });
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on("error", (error) => {
      console.error(error);
      resolve(1);
    });
  });
}

export async function applyLocalMigrations(persistTo) {
  const args = ["d1", "migrations", "apply", "DB", "--local"];
  if (persistTo) args.push("--persist-to", persistTo);
  const code = await run("wrangler", args, { env: offlineEnv({ CI: "true" }) });
  if (code !== 0) throw new Error(`wrangler d1 migrations apply failed with exit code ${code}`);
}
