// `npm run dev [-- wrangler dev flags]`: local secrets, D1 migrations, then wrangler dev
// on local R2/D1/Queues persisted under .wrangler/state.
import { spawn } from "node:child_process";
import { applyLocalMigrations, ensureDevVars, offlineEnv } from "./local-env.mjs";

ensureDevVars();
await applyLocalMigrations();

const child = spawn("wrangler", ["dev", ...process.argv.slice(2)], { stdio: "inherit", env: offlineEnv() });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
