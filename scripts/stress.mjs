// `npm run stress [-- SECONDS]`: the concurrency test of test/node/stress.test.ts for longer
// (default 60 s): 20 clients uploading and deleting in parallel against a fresh `wrangler dev`,
// then D1 (the API listing) and R2 (every original served) must agree, with no 5xx.
import { mkdirSync } from "node:fs";
import { offlineEnv, run } from "./local-env.mjs";

const seconds = Number(process.argv[2] ?? process.env.STRESS_SECONDS ?? 60);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`usage: npm run stress -- SECONDS (got ${process.argv[2]})`);
mkdirSync("test-results", { recursive: true });
const code = await run("vitest", ["run", "--config", "vitest.node.config.ts", "test/node/stress.test.ts"], {
  env: offlineEnv({ STRESS_SECONDS: String(seconds) }),
});
process.exit(code);
