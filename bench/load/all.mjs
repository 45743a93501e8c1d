// `npm run bench:load`: the four load scripts one after the other (each starts and stops its own
// wrangler dev); exits non-zero when any of them failed.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const failed = [];
const started = Date.now();
for (const name of ["cached", "uncached", "upload", "mixed"]) {
  const t = Date.now();
  const run = spawnSync(process.execPath, [join(here, `${name}.mjs`)], { stdio: "inherit" });
  process.stderr.write(`-- ${name}: exit ${run.status ?? run.signal} in ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
  if (run.status !== 0) failed.push(name);
}
process.stderr.write(`-- all: ${((Date.now() - started) / 1000).toFixed(0)} s${failed.length ? `, failed: ${failed.join(", ")}` : ""}\n`);
process.exitCode = failed.length ? 1 : 0;
