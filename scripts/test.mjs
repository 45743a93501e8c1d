// `npm test`: everything CI checks, in order, with one summary line at the end.
// Stages: the Debian packages the tests need (installed when missing), the committed WASM module
// rebuilt and compared, the web app build, binding types up to date, typecheck, tests inside
// workerd, Node-side and end-to-end tests against a real `wrangler dev`, and a deploy dry run.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { ensureDevVars, run } from "./local-env.mjs";

ensureDevVars();
rmSync("test-results", { recursive: true, force: true });
mkdirSync("test-results", { recursive: true });

const started = Date.now();
const vitestJson = (name) => ["--reporter=default", "--reporter=json", `--outputFile.json=test-results/${name}.json`];
const stages = [
  { name: "Debian packages (chromium, the pinned WASM toolchain)", command: "bash", args: ["scripts/system-packages.sh"] },
  { name: "wasm/jpeg/jpeg.wasm rebuilt from its C, byte for byte", command: "sh", args: ["wasm/jpeg/build.sh", "--check"] },
  // Before any wrangler stage: wrangler (types, the workerd pool, wrangler dev, the dry run) reads web/dist as the assets directory.
  { name: "web app build (typecheck + vite)", command: "npm", args: ["run", "--silent", "build:web"] },
  { name: "binding types up to date", command: "wrangler", args: ["types", "--check"] },
  { name: "typecheck", command: "tsc", args: ["--noEmit"] },
  { name: "typecheck (node-side tests)", command: "tsc", args: ["--noEmit", "-p", "test/node"] },
  { name: "tests in workerd", command: "vitest", args: ["run", ...vitestJson("worker")] },
  { name: "node-side and end-to-end tests", command: "vitest", args: ["run", "--config", "vitest.node.config.ts", ...vitestJson("node")] },
  { name: "deploy dry run", command: "wrangler", args: ["deploy", "--dry-run", "--outdir", "dist"] },
];

const failedStages = [];
for (const stage of stages) {
  console.log(`\n=== ${stage.name} ===`);
  const code = await run(stage.command, stage.args);
  if (code !== 0) failedStages.push(stage.name);
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const name of ["worker", "node"]) {
  const file = `test-results/${name}.json`;
  if (!existsSync(file)) continue;
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
}

const seconds = ((Date.now() - started) / 1000).toFixed(1);
console.log(`\nWall time ${seconds} s.${failedStages.length ? ` Failed stages: ${failedStages.join(", ")}.` : ""}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failedStages.length > 0 || failed > 0 ? 1 : 0);
