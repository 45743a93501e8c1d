// `npm run fuzz [-- SECONDS]`: the fuzzer of test/node/fuzz.test.ts for longer (default 300 s)
// against a fresh `wrangler dev` started for the run (the Node-side global setup, temp state).
// Environment: FUZZ_SEED to replay a run, FUZZ_CONCURRENCY (default 4). Prints the summary
// table; reproducers of any failure are written to test-results/fuzz/.
import { mkdirSync } from "node:fs";
import { offlineEnv, run } from "./local-env.mjs";

const seconds = Number(process.argv[2] ?? process.env.FUZZ_SECONDS ?? 300);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`usage: npm run fuzz -- SECONDS (got ${process.argv[2]})`);
mkdirSync("test-results", { recursive: true });
const code = await run("vitest", ["run", "--config", "vitest.node.config.ts", "test/node/fuzz.test.ts"], {
  env: offlineEnv({ FUZZ_SECONDS: String(seconds) }),
});
process.exit(code);
