// `npm run bench:load-upload`: a bulk of LOAD_FILES (default 1,000) distinct real photos through the
// CLI (bin/edge-images.mjs upload <folder>), or, when the CLI is absent, direct PUT /v1/images with
// the same concurrency. Then the count in D1 and in R2 must equal the number of files sent.
// Distinct files: each is a corpus photo (12 real JPEGs, 0.06-4.4 MB, 0.25-20 MP, taken in turn)
// with a unique trailer appended after the JPEG end marker (bytes after FFD9 are allowed and
// stored): same pixels, different SHA-256, so the per-tenant de-duplication does not apply.
// Env: LOAD_FILES (default 1000), LOAD_CONCURRENCY (default 4), LOAD_UPLOAD_TIMEOUT (s, default 900).
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import * as L from "./lib.mjs";

L.corpusOrExit();
const FILES = Number(process.env.LOAD_FILES ?? 1000);
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY ?? 4);
const TIMEOUT_S = Number(process.env.LOAD_UPLOAD_TIMEOUT ?? 900);
const SAMPLE = 10;
const CLI = join(L.ROOT, "bin", "edge-images.mjs");
const useCli = existsSync(CLI) && process.env.LOAD_NO_CLI !== "1";
const photos = L.loadPhotos();

function makeFolder(dir, count, tag) {
  mkdirSync(dir, { recursive: true });
  let bytes = 0;
  const sizes = {};
  for (let i = 0; i < count; i++) {
    const photo = photos[i % photos.length];
    const data = L.variant(photo.bytes, `${tag}-${i}`);
    bytes += data.byteLength;
    sizes[photo.file] = (sizes[photo.file] ?? 0) + 1;
    writeFileSync(join(dir, `${String(i).padStart(5, "0")}-${photo.file}`), data);
  }
  return { bytes, sizes };
}

/** Runs the CLI; polls its CPU time from /proc while it runs. */
function runCli(base, key, folder) {
  return new Promise((resolveRun, reject) => {
    const args = [CLI, "upload", folder, "--endpoint", base, "--concurrency", String(CONCURRENCY), "--json", "--no-state", "--no-progress"];
    const child = spawn(process.execPath, args, { cwd: L.ROOT, env: { ...process.env, EDGE_IMAGES_KEY: key }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let ticks = 0;
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const poll = setInterval(() => {
      try {
        const f = readFileSync(`/proc/${child.pid}/stat`, "utf8");
        const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
        ticks = Number(fields[11]) + Number(fields[12]);
      } catch {
        // exited
      }
    }, 200);
    const killer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_S * 1000);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearInterval(poll);
      clearTimeout(killer);
      let parsed;
      try {
        parsed = JSON.parse(stdout);
      } catch {
        parsed = undefined;
      }
      resolveRun({ code, signal, parsed, stderr, cpuMs: ticks * 10, command: `EDGE_IMAGES_KEY=… node bin/edge-images.mjs ${args.slice(1).join(" ").replace(folder, "<folder>").replace(base, "<wrangler dev>")}` });
    });
  });
}

/** The fallback: PUT /v1/images per file, bounded concurrency, no retries. */
async function runDirect(base, key, folder, count) {
  const files = Array.from({ length: count }, (_, i) => i);
  const { readdirSync } = await import("node:fs");
  const names = readdirSync(folder).sort();
  const results = await L.pool(names.slice(0, files.length), CONCURRENCY, async (name) => {
    try {
      await L.putImage(base, key, readFileSync(join(folder, name)), name);
      return { outcome: "uploaded" };
    } catch (error) {
      return { outcome: "failed", reason: String(error) };
    }
  });
  const failed = results.filter((r) => r.outcome !== "uploaded");
  return { code: failed.length ? 1 : 0, parsed: { summary: { uploaded: results.length - failed.length, failed: failed.length }, files: results }, cpuMs: NaN, command: `PUT /v1/images?filename=… per file, ${CONCURRENCY} at a time (bench/load/upload.mjs; bin/edge-images.mjs absent)` };
}

const started = Date.now();
L.progress("starting wrangler dev… ");
const base = await L.startServer();
L.progress(`up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
const work = mkdtempSync(join(os.tmpdir(), "edge-images-upload-"));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
try {
  const { key, tenantId } = await L.createTenant(base);
  L.progress(`writing ${FILES} files… `);
  const bulk = makeFolder(join(work, "bulk"), FILES, `bulk-${Date.now()}`);
  const sample = makeFolder(join(work, "sample"), SAMPLE, `sample-${Date.now()}`);
  L.progress(`${(bulk.bytes / 1e6).toFixed(0)} MB; uploading with ${useCli ? "the CLI" : "direct PUTs"}, concurrency ${CONCURRENCY}… `);

  const dbBytes0 = L.d1Bytes();
  const c0 = await L.counters(base);
  const cpu0 = L.cpuSnapshot();
  const t0 = performance.now();
  const run = useCli ? await runCli(base, key, join(work, "bulk")) : await runDirect(base, key, join(work, "bulk"), FILES);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = L.cpuBetween(cpu0, L.cpuSnapshot());
  const c1 = await L.counters(base);
  L.progress(`${seconds.toFixed(1)} s\n`);
  const count = await L.countStored(base, tenantId);
  const dbBytesPerImage = (L.d1Bytes() - dbBytes0) / FILES;

  // Exact per-upload D1 rows on a small sample (meter on: raw() SELECTs are run once more for meta).
  await L.setMeter(base, true);
  const m0 = await L.counters(base);
  const sampleRun = useCli ? await runCli(base, key, join(work, "sample")) : await runDirect(base, key, join(work, "sample"), SAMPLE);
  const m1 = await L.counters(base);
  await L.setMeter(base, false);
  const metered = L.opsPer(m0, m1, SAMPLE);

  const summary = run.parsed?.summary ?? {};
  const files = run.parsed?.files ?? [];
  const uploaded = files.filter((f) => f.outcome === "uploaded").length;
  const retried = files.filter((f) => (f.attempts ?? 1) > 1).length;
  const failed = files.filter((f) => f.outcome !== "uploaded");
  const ops = L.opsPer(c0, c1, FILES);
  const lost = FILES - Math.min(count.d1Images, count.r2Originals);
  const allGood = run.code === 0 && uploaded === FILES && count.d1Images === FILES && count.r2Originals === FILES && sampleRun.code === 0;
  const mix = Object.entries(bulk.sizes).map(([file, n]) => `${n} × ${photos.find((p) => p.file === file)?.label ?? file}`).join(", ");

  L.writeReport("load-upload", [
    `# Load: bulk upload of ${FILES} real photos ${useCli ? "through the CLI" : "(direct PUTs: the CLI was absent)"}`,
    ``,
    ...L.machineLines("npm run bench:load-upload (node bench/load/upload.mjs)"),
    `- Uploader: \`${run.command}\` (client on the same machine)`,
    `- Files: ${FILES} distinct JPEGs, ${(bulk.bytes / 1e6).toFixed(1)} MB in all (mean ${(bulk.bytes / FILES / 1e3).toFixed(0)} kB): the corpus's 12 real photos in turn (${mix}), each copy with a unique trailer after the JPEG end marker so its SHA-256 differs (same pixels; the service keeps trailing bytes). Each upload: SHA-256 streamed, header probe, integrity check, R2 put, D1 insert, and a ThumbHash placeholder rendered from the stored original.`,
    L.othersLine(cpu),
    ``,
    `| uploader | concurrency | files sent | uploaded | failed | retried (attempts > 1) | wall s | files/s | MB/s | D1 images rows | R2 originals | lost | server CPU ms/file | uploader CPU ms/file |`,
    `|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
    `| ${useCli ? "CLI" : "direct PUT"} | ${CONCURRENCY} | ${FILES} | ${uploaded} | ${failed.length} | ${retried} | ${L.fmt(seconds, 1)} | **${L.fmt(FILES / seconds, 2)}** | **${L.fmt(bulk.bytes / 1e6 / seconds, 2)}** | ${count.d1Images} | ${count.r2Originals} | **${lost}** | ${L.fmt(cpu.serverMs / FILES, 0)} | ${L.fmt(run.cpuMs / FILES, 1)} |`,
    ``,
    `Per upload, counted around the real bindings (bench/load/worker.ts): requests to the Worker ${L.fmt(ops.requests, 2)} (the CLI asks by SHA-256 before sending), R2 class A ${L.fmt(ops.r2ClassA, 2)} (${Object.entries(c1.r2Ops).map(([op, n]) => `${op} ${L.fmt((n - (c0.r2Ops[op] ?? 0)) / FILES, 2)}`).join(", ")}), R2 class B ${L.fmt(ops.r2ClassB, 2)}, D1 queries ${L.fmt(ops.d1Queries, 2)}, D1 rows written ${L.fmt(ops.d1RowsWritten + ops.d1RawWriteRowsReturned, 2)} (${L.fmt(ops.d1RowsWritten, 2)} from D1's meta + ${L.fmt(ops.d1RawWriteRowsReturned, 2)} rows returned by INSERT … RETURNING, which drizzle runs through raw() without meta; locally an index entry is not counted, D1 bills each index a write touches as one more row); exact D1 metering on ${SAMPLE} more files: rows read ${L.fmt(metered.d1RowsRead, 2)}, queries ${L.fmt(metered.d1Queries, 2)} per upload; queue messages ${L.fmt(ops.queueSent, 2)}. D1 database size (meta.size_after) grew by ${L.fmt((c1.d1SizeAfter - c0.d1SizeAfter) / FILES, 0)} bytes per image (${c0.d1SizeAfter} → ${c1.d1SizeAfter} B; table row + its indexes), the local SQLite files (incl. WAL) by ${L.fmt(dbBytesPerImage, 0)}.`,
    `CLI summary: ${JSON.stringify(summary)}`,
    ...(failed.length > 0 ? [``, `Failures (first 5): ${failed.slice(0, 5).map((f) => `${f.path ?? ""}: ${f.reason ?? f.status ?? ""}`).join("; ")}`] : []),
    ...(run.stderr && run.code !== 0 ? [``, "```", run.stderr.slice(-2000), "```"] : []),
    ...(allGood ? [] : [``, `**Not every file was stored: see above.**`]),
  ]);
  if (!allGood) process.exitCode = 1;
} finally {
  await L.stopAll();
  rmSync(work, { recursive: true, force: true });
}
