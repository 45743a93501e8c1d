// Time-bounded fuzzing against the real `wrangler dev` of the Node-side suite. `npm test` runs
// it for FUZZ_SECONDS (default 20); `npm run fuzz` runs the same file longer (scripts/fuzz.mjs).
import { mkdirSync, writeFileSync } from "node:fs";
import { expect, inject, it } from "vitest";
import { formatReport, runFuzz } from "./fuzz-engine";
import { readReloads } from "./wrangler-dev";

const SECONDS = Number(process.env["FUZZ_SECONDS"] ?? 20);
const SEED = process.env["FUZZ_SEED"] === undefined ? undefined : Number(process.env["FUZZ_SEED"]);

it(
  `fuzzes queries, multipart bodies, headers and mutated images for ${SECONDS} s: no 5xx, no crash, every answer problem+json or a valid image`,
  async () => {
    const report = await runFuzz({
      baseUrl: inject("baseUrl"),
      adminKey: inject("adminKey"),
      seconds: SECONDS,
      concurrency: Number(process.env["FUZZ_CONCURRENCY"] ?? 4),
      ...(SEED === undefined ? {} : { seed: SEED }),
      outDir: "test-results/fuzz",
      reloads: () => readReloads(inject("reloadLog")),
    });
    const text = formatReport(report);
    console.log(text);
    mkdirSync("test-results", { recursive: true });
    writeFileSync("test-results/fuzz-summary.txt", text + "\n");
    const inputs = Object.values(report.stats).reduce((n, s) => n + s.inputs, 0);
    expect(inputs).toBeGreaterThan(SECONDS);
    expect(report.aliveAtEnd).toBe(true);
    expect(report.failures, text).toEqual([]);
  },
  (SECONDS + 120) * 1000,
);
