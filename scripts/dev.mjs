// `npm run dev [-- wrangler dev flags]`: local secrets, D1 migrations, the web app build
// (web/dist, served as static assets), then wrangler dev on local R2/D1/Queues persisted
// under .wrangler/state.
import { spawn } from "node:child_process";
import { applyLocalMigrations, ensureDevVars, offlineEnv, run } from "./local-env.mjs";

ensureDevVars();
await applyLocalMigrations();
if ((await run("npm", ["run", "--silent", "build:web"])) !== 0) process.exit(1);

const child = spawn("wrangler", ["dev", ...process.argv.slice(2)], { stdio: "inherit", env: offlineEnv() });
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
