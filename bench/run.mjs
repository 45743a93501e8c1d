// `npm run bench`: our pipeline (in workerd, through `wrangler dev`) against sharp
// (single-threaded), on corpus photos of 0.3 / 2.5 / 12 / 20 / 24 MP, for two operations:
//   webp800    w=800&fmt=webp&q=80   (-> 800 px WebP q80, method 4 on both sides)
//   jpeg200q79 w=200&fmt=jpeg&q=79   (-> 200 px baseline JPEG, 4:2:0 on both sides)
// and, with BENCH_OPS=..., also
//   jpeg200q80 w=200&fmt=jpeg&q=80   (the service's default quality: ours is 4:2:2 there, which
//                                     sharp cannot write, so sharp's is 4:2:0 and the row says so)
//   jpeg200q90 w=200&fmt=jpeg&q=90   (4:4:4 on both sides)
//   webp2048   w=2048&fmt=webp&q=80  (the 50 MP -> 2048 px memory target)
// Like with like: sharp gets our encoder settings (bench/sharp-case.mjs), and for every row the
// output bytes of both sides and their SSIM / PSNR against one reference (bench/quality.mjs).
// Each case runs both codec paths of the pipeline (PipelineContext.codecPath): "before" = the
// @jsquash decoders + @jsquash/resize, "after" = our native module (JPEG shrink-on-load +
// resampler in one WASM memory); BENCH_PATHS=native (or jsquash) runs one. Two generated
// 10000×5000 (50 MP) JPEGs, baseline and progressive, are added (BENCH_50MP=0 skips them).
// Prints a markdown table and writes it to bench/results/latest.md (+ latest.json, raw runs).
//
// One `wrangler dev` serves every case; before each, POST /reset drops the worker's codec
// instances and collects garbage (V8 runs with --expose-gc), so WASM memory (which never
// shrinks) starts as in a fresh isolate and belongs to that case alone. (A wrangler dev per
// case, BENCH_FRESH=1, costs 3-10 s each on this 2-core machine.) sharp runs in a fresh Node
// process per case, so its peak RSS belongs to that case.
//
// Environment: BENCH_RUNS (default 5; the first run is a warm-up, medians are of the rest),
// BENCH_CORPUS (default ../shared/corpus from the repo root; the bench reads photos only from
// there and stops with an error when it is missing), BENCH_OPS, BENCH_PATHS, BENCH_PHOTOS,
// BENCH_50MP=0, BENCH_FRESH=1 (a fresh
// `wrangler dev` per case: slower, adds the workerd peak-RSS cross-check, which a shared
// process cannot give because freed memory is reused without showing in RSS).
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { codingOf, qualityReference } from "./quality.mjs";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CORPUS = resolve(ROOT, process.env.BENCH_CORPUS ?? "../shared/corpus");
const RUNS = Math.max(2, Number(process.env.BENCH_RUNS ?? 5));
const FRESH = process.env.BENCH_FRESH === "1";
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
const MiB = 1024 * 1024;
const LIMIT = 128 * MiB;
/** Left for the isolate's own JS heap and code when deciding "fits" (an assumption, see notes). */
const HEADROOM = 16 * MiB;

const PHOTOS = [
  { file: "photo-small-aero1.jpg", label: "0.3 MP" },
  { file: "photo-medium-storm.jpg", label: "the ~3 MP row: 2.46 MP" },
  { file: "photo-large-sunset-12mp.jpg", label: "12 MP (progressive)" },
  { file: "photo-xlarge-kleiber-20mp.jpg", label: "20 MP (extra)" },
  { file: "photo-xlarge-bridge-24mp-upscaled.jpg", label: "24 MP (upscaled)" },
];
/**
 * Memory-only fit check on the other large photos of the corpus: "→ 800 px WebP" (the op that
 * needs more memory in every row above), codec instances reset before each, two runs.
 */
const FIT_PHOTOS = [
  "photo-4mp-eveningglow.jpg",
  "jpeg-gps-real-colorfulcups.jpg",
  "photo-portrait-friends.jpg",
  "orientation-6-camera-picosdeeuropa.jpg",
  "webp-real-gnome-truchet.webp",
  // Last: should a codec ever be unable to drop its instance, its memory would stay for good.
  "png-large-cascade.png",
];
/** Both codec paths of src/pipeline (PipelineContext.codecPath): before (@jsquash) and after (ours). */
const PATHS = (process.env.BENCH_PATHS ?? "jsquash,native").split(",").filter((p) => p === "jsquash" || p === "native");
const PATH_LABEL = { jsquash: "before: @jsquash", native: "after: native" };
/** Generated 50 MP JPEGs (10000×5000, gradient + noise), baseline and progressive; BENCH_50MP=0 skips them. */
const GENERATED = process.env.BENCH_50MP === "0" ? [] : [
  { file: "gen-50mp-baseline.jpg", label: "50 MP generated (baseline)", progressive: false },
  { file: "gen-50mp-progressive.jpg", label: "50 MP generated (progressive)", progressive: true },
];
/** The issue's two operations; BENCH_OPS=webp800,jpeg200,webp2048 picks others (webp2048: the 50 MP -> 2048 px target). */
const ALL_OPS = [
  { op: "webp800", query: "w=800&fmt=webp&q=80", name: "→ 800 px WebP q80" },
  { op: "jpeg200q79", query: "w=200&fmt=jpeg&q=79", name: "→ 200 px JPEG q79" },
  { op: "jpeg200q80", query: "w=200&fmt=jpeg&q=80", name: "→ 200 px JPEG q80" },
  { op: "jpeg200q90", query: "w=200&fmt=jpeg&q=90", name: "→ 200 px JPEG q90" },
  { op: "webp2048", query: "w=2048&fmt=webp&q=80", name: "→ 2048 px WebP q80" },
];
const FIT_OP = ALL_OPS[0];
const wantedOps = (process.env.BENCH_OPS ?? "webp800,jpeg200q79").split(",");
const unknownOps = wantedOps.filter((op) => !ALL_OPS.some((o) => o.op === op));
if (unknownOps.length > 0) {
  console.error(`BENCH_OPS: unknown ${unknownOps.join(", ")}; known: ${ALL_OPS.map((o) => o.op).join(", ")}`);
  process.exit(2);
}
const OPS = ALL_OPS.filter(({ op }) => wantedOps.includes(op));

// ---------------------------------------------------------------------------------------------
// Process handling: one wrangler dev at a time, always stopped (also on Ctrl-C or an error).

let current; // { child, output[] }

function groupMembers(pgid) {
  const pids = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) === pgid) pids.push({ pid: Number(entry), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// CPU time (clock ticks) of the processes this script started, to tell how busy others were.
let ourTicks = 0;
const TICK_MS = 10; // USER_HZ = 100 on Linux

function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime
  } catch {
    return 0;
  }
}

function machineBusyTicks() {
  const [, ...values] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = values.map(Number);
  return user + nice + system + irq + softirq + steal;
}

async function stopServer() {
  if (!current) return;
  const { child } = current;
  for (const member of groupMembers(child.pid)) ourTicks += processTicks(member.pid);
  current = undefined;
  const pgid = child.pid;
  try {
    process.kill(-pgid, "SIGTERM");
  } catch {
    // already gone
  }
  const deadline = Date.now() + 8000;
  while (groupMembers(pgid).length > 0) {
    if (Date.now() > deadline) {
      try {
        process.kill(-pgid, "SIGKILL");
      } catch {
        // already gone
      }
      await sleep(300);
      break;
    }
    await sleep(100);
  }
  const left = groupMembers(pgid);
  if (left.length > 0) throw new Error(`processes left running in group ${pgid}: ${left.map((p) => `${p.pid} ${p.comm}`).join(", ")}`);
}

function stopServerSync() {
  if (!current) return;
  try {
    process.kill(-current.child.pid, "SIGKILL");
  } catch {
    // already gone
  }
  current = undefined;
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    stopServerSync();
    process.exit(130);
  });
}
process.on("exit", () => {
  stopServerSync();
  removeSnapshot();
});

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const WRANGLER_ENV = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" };

/**
 * Bundles bench/worker.ts (with src/) once, into a temporary directory, and returns a wrangler
 * config that serves that bundle unchanged (no_bundle). wrangler dev watches its sources and
 * restarts the worker when one changes; serving a snapshot keeps edits made to src/ during the
 * run from restarting the worker mid-request or mixing two versions in one table.
 */
let snapshotDir;
const BUILD_COMMAND = "wrangler deploy --dry-run --outdir <tmp> -c bench/wrangler.toml";
function buildSnapshot() {
  snapshotDir = mkdtempSync(join(os.tmpdir(), "edge-images-bench-"));
  const build = spawnSync(WRANGLER, ["deploy", "--dry-run", "--outdir", snapshotDir, "-c", "bench/wrangler.toml"], { cwd: ROOT, env: WRANGLER_ENV, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`bundling the bench worker failed:\n${build.stdout}${build.stderr}`);
  // Same compatibility settings as bench/wrangler.toml (and so as ../wrangler.toml).
  const source = readFileSync(join(ROOT, "bench", "wrangler.toml"), "utf8");
  const keep = source.split("\n").filter((line) => /^(name|compatibility_date|compatibility_flags)\s*=/.test(line));
  const config = [
    ...keep,
    `main = "worker.js"`,
    `no_bundle = true`,
    `rules = [{ type = "CompiledWasm", globs = ["**/*.wasm"], fallthrough = true }]`,
    ``,
  ].join("\n");
  writeFileSync(join(snapshotDir, "wrangler.toml"), config);
  return join(snapshotDir, "wrangler.toml");
}
function removeSnapshot() {
  if (snapshotDir) rmSync(snapshotDir, { recursive: true, force: true });
  snapshotDir = undefined;
}
let snapshotConfig;

let wranglerCommand = "";

/** Starts `wrangler dev` for the bench worker; retries when a port was taken meanwhile (other servers may start at the same time). */
async function startServer() {
  let lastLog = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    const base = await tryStartServer();
    if (typeof base === "string") return base;
    lastLog = base.log;
    if (!/already in use/i.test(lastLog)) break;
  }
  throw new Error(`wrangler dev did not start:\n${lastLog}`);
}

async function tryStartServer() {
  const port = await freePort();
  const inspectorPort = await freePort();
  const args = ["dev", "-c", snapshotConfig, "--port", String(port), "--inspector-port", String(inspectorPort), "--ip", "127.0.0.1", "--show-interactive-dev-session=false"];
  wranglerCommand = `${BUILD_COMMAND}, then MINIFLARE_WORKERD_V8_FLAGS=--expose-gc CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false wrangler ${args
    .join(" ")
    .replace(snapshotConfig, "<tmp>/wrangler.toml")
    .replace(String(port), "<free port>")
    .replace(String(inspectorPort), "<free port>")}`;
  // --expose-gc lets POST /reset collect garbage between cases.
  const env = { ...WRANGLER_ENV, MINIFLARE_WORKERD_V8_FLAGS: "--expose-gc" };
  const child = spawn(WRANGLER, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const output = [];
  child.stdout.on("data", (chunk) => output.push(chunk.toString()));
  child.stderr.on("data", (chunk) => output.push(chunk.toString()));
  current = { child, output };
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null) {
    try {
      const response = await fetch(`${base}/health`);
      if ((await response.text()) === "ok") return base;
    } catch {
      // not up yet
    }
    if (/already in use/i.test(output.join(""))) break;
    await sleep(150);
  }
  await stopServer();
  return { log: output.join("") };
}

// ---------------------------------------------------------------------------------------------
// Memory of the workerd processes (peak RSS, from /proc)

function procStatus(pid, field) {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/**
 * CPU time (ns) used so far by all threads of a process: the first field of each thread's
 * /proc/<pid>/task/<tid>/schedstat (time on CPU, in ns), summed. Threads that ended meanwhile
 * are missed, which only undercounts.
 */
function cpuNs(pid) {
  let total = 0;
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const tid of tasks) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // thread ended
    }
  }
  return total;
}

function workerdPids() {
  return current ? groupMembers(current.child.pid).filter((p) => p.comm === "workerd").map((p) => p.pid) : [];
}

// ---------------------------------------------------------------------------------------------
// The cases

/** Drops the worker's codec instances and collects its garbage: WASM memory starts as in a fresh isolate. */
async function resetWorker(base) {
  const response = await fetch(`${base}/reset`, { method: "POST" });
  const body = await response.json();
  if (!body.gc) throw new Error("the bench worker cannot collect garbage (MINIFLARE_WORKERD_V8_FLAGS=--expose-gc not applied)");
  await sleep(200); // let the freed pages go back before RSS is read
}

/**
 * One request to the bench worker, timed from here: wall clock with Node's performance.now()
 * (sub-millisecond) around fetch + reading the answer, and the CPU time of each workerd process
 * meanwhile (schedstat, ns). The worker's process is the one that used the most.
 */
async function timedRequest(url, bytes, pids) {
  const cpuBefore = pids.map(cpuNs);
  const started = performance.now();
  const response = await fetch(url, { method: "POST", body: bytes, headers: { "content-type": "application/octet-stream" } });
  const body = await response.json();
  const roundTripMs = performance.now() - started;
  const cpuMs = Math.max(...pids.map((pid, i) => (cpuNs(pid) - cpuBefore[i]) / 1e6));
  return { response, body, roundTripMs, cpuMs };
}

async function runOurs(base, bytes, op, runCount = RUNS, path = "native") {
  await resetWorker(base);
  const pids = workerdPids();
  const idle = new Map(pids.map((pid) => [pid, procStatus(pid, "VmRSS")]));
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, "5"); // VmHWM := current RSS
  // The process running the user worker is the one that grows (the other is wrangler's proxy).
  const grown = () => {
    let best = { pid: 0, idle: NaN, peak: NaN, delta: -Infinity };
    for (const pid of pids) {
      const peak = procStatus(pid, "VmHWM");
      const delta = peak - idle.get(pid);
      if (delta > best.delta) best = { pid, idle: idle.get(pid), peak, delta };
    }
    return best;
  };
  const runs = [];
  let firstRequest;
  const url = `${base}/run?op=${op.op}&query=${encodeURIComponent(op.query)}&path=${path}`;
  for (let i = 0; i < runCount; i++) {
    const { response, body, roundTripMs, cpuMs } = await timedRequest(url, bytes, pids);
    if (!response.ok || body.error) {
      const error = new Error(`POST /run?op=${op.op}: ${response.status} ${body.error ?? ""}`);
      error.refused = body.refused === true;
      throw error;
    }
    runs.push({ ...body, roundTripMs, cpuMs });
    // Peak RSS of the first request after the reset. Later runs add garbage that workerd has
    // no reason to collect (no memory pressure locally), so their peak RSS says little.
    if (i === 0) firstRequest = grown();
  }
  const allRuns = grown();
  // The same body to a handler that only reads it: the round trip's share that is not the pipeline.
  const echoes = [];
  for (let i = 0; i < runCount; i++) echoes.push((await timedRequest(`${base}/echo`, bytes, pids)).roundTripMs);
  // One more run, untimed, that answers the output itself (for the size and quality columns).
  const outResponse = await fetch(`${url}&out=1`, { method: "POST", body: bytes, headers: { "content-type": "application/octet-stream" } });
  if (!outResponse.ok) throw new Error(`POST /run?op=${op.op}&out=1: ${outResponse.status} ${await outResponse.text()}`);
  const output = Buffer.from(await outResponse.arrayBuffer());
  return { runs, echoes, output, rss: { firstRequest, allRuns } };
}

function runSharp(file, op) {
  const result = spawnSync(process.execPath, [join(ROOT, "bench", "sharp-case.mjs"), file, op.query, String(RUNS)], { cwd: ROOT, encoding: "utf8", maxBuffer: 64 * MiB });
  if (result.status !== 0) throw new Error(`sharp case ${op.op} ${file} failed:\n${result.stderr}`);
  const parsed = JSON.parse(result.stdout.trim().split("\n").at(-1));
  ourTicks += parsed.cpuMs / TICK_MS;
  const output = Buffer.from(parsed.output.base64, "base64");
  delete parsed.output.base64;
  return { ...parsed, outputBytes: output };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const warm = (values) => values.slice(1);

// ---------------------------------------------------------------------------------------------
// Main

if (!existsSync(CORPUS)) {
  console.error(`npm run bench: the photo corpus is missing: ${CORPUS} does not exist. Put the shared corpus there (../shared/corpus from the repo root) or set BENCH_CORPUS to its path. The bench reads no other photos.`);
  process.exit(1);
}
const only = process.env.BENCH_PHOTOS?.split(","); // e.g. BENCH_PHOTOS=gen-50mp-baseline.jpg,gen-50mp-progressive.jpg
const photos = PHOTOS.filter((p) => existsSync(join(CORPUS, p.file)) && (!only || only.includes(p.file)));
if (GENERATED.length > 0) {
  // 10000×5000: a diagonal colour gradient plus ±24 of noise (so it does not compress to nothing).
  const genDir = mkdtempSync(join(os.tmpdir(), "bench-50mp-"));
  const sharpGen = (await import("sharp")).default;
  const W = 10000;
  const H = 5000;
  const raw = Buffer.alloc(W * H * 3);
  let seed = 12345;
  for (let y = 0, i = 0; y < H; y++) {
    for (let x = 0; x < W; x++, i += 3) {
      seed = (seed * 1103515245 + 12345) >>> 0;
      const n = ((seed >>> 16) % 49) - 24;
      raw[i] = Math.max(0, Math.min(255, ((x * 255) / W) | 0) + n);
      raw[i + 1] = Math.max(0, Math.min(255, ((y * 255) / H) | 0) + n);
      raw[i + 2] = Math.max(0, Math.min(255, (((x + y) * 255) / (W + H)) | 0) - n);
    }
  }
  for (const g of GENERATED) {
    g.path = join(genDir, g.file);
    await sharpGen(raw, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 85, progressive: g.progressive }).toFile(g.path);
    photos.push(g);
  }
  process.on("exit", () => rmSync(genDir, { recursive: true, force: true }));
}
for (const p of PHOTOS.filter((p) => !existsSync(join(CORPUS, p.file)))) console.log(`(corpus photo ${p.file} is absent: row skipped)`);
if (photos.length === 0) {
  console.error(`npm run bench: none of the benchmark photos (${PHOTOS.map((p) => p.file).join(", ")}) is in ${CORPUS}${only ? ` among BENCH_PHOTOS=${only.join(",")}` : ""}.`);
  process.exit(1);
}

/** Which build of our codec module the run used: the bundle takes the working tree's file. */
function wasmState() {
  const file = "wasm/jpeg/jpeg.wasm";
  const sha = createHash("sha256").update(readFileSync(join(ROOT, file))).digest("hex").slice(0, 12);
  const git = (...args) => spawnSync("git", args, { cwd: ROOT, encoding: "utf8" }).stdout.trim();
  const commit = git("log", "-1", "--format=%h", "--", file) || "?";
  const changed = git("status", "--porcelain", "--", file) !== "";
  return `${file}: sha256 ${sha}…, last commit touching it ${commit}${changed ? " (**the working tree's copy differs from that commit**)" : " (unchanged since)"}`;
}

const sharpModule = (await import("sharp")).default;
const wranglerVersion = JSON.parse(readFileSync(join(ROOT, "node_modules", "wrangler", "package.json"), "utf8")).version;
const cpus = os.cpus();
const header = [
  `# Benchmark: our pipeline (workerd) vs sharp`,
  ``,
  `- Command: \`npm run bench\` (= \`node bench/run.mjs\`), BENCH_RUNS=${RUNS}; ours: \`${"{wrangler}"}\`, ${FRESH ? "a fresh one per case (BENCH_FRESH=1)" : "one for all cases, codecs reset and garbage collected between cases"}`,
  `- Machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}`,
  `- Node ${process.version}, wrangler ${wranglerVersion}, sharp ${sharpModule.versions.sharp} (libvips ${sharpModule.versions.vips}), run ${new Date().toISOString()}`,
  `- Corpus: ${CORPUS}`,
  `- ${wasmState()}`,
];

const busyBefore = machineBusyTicks();
const selfBefore = processTicks(process.pid);
const started = Date.now();
const results = [];
const fitResults = [];
const since = (t) => `${((Date.now() - t) / 1000).toFixed(1)} s`;
let t = Date.now();
process.stderr.write(`bundling bench/worker.ts… `);
snapshotConfig = buildSnapshot();
process.stderr.write(`${since(t)}; starting wrangler dev… `);
t = Date.now();
let base = await startServer();
process.stderr.write(`up in ${since(t)}\n`);
const failures = [];
/** Runs one case; a failure is reported in the table's notes, and the server is restarted. */
async function runCase(title, body) {
  process.stderr.write(`${title}: `);
  t = Date.now();
  try {
    await body();
    process.stderr.write(` (at ${since(started)})\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    failures.push(`${title}: ${message.split("\n")[0]}`);
    process.stderr.write(`FAILED: ${message}\n`);
    await stopServer();
    base = await startServer();
  }
}

try {
  for (const photo of photos) {
    const path = photo.path ?? join(CORPUS, photo.file);
    const bytes = readFileSync(path);
    const reference = qualityReference(bytes);
    for (const op of OPS) {
      let sharpResult;
      await runCase(`${photo.file} ${op.op} sharp`, async () => {
        sharpResult = runSharp(path, op);
        process.stderr.write(`sharp ${since(t)}`);
        // Measured here, outside every timed section.
        sharpResult.quality = await reference.measure(sharpResult.outputBytes);
        sharpResult.coding = await codingOf(sharpResult.outputBytes);
      });
      if (sharpResult === undefined) continue;
      for (const codecPath of PATHS) {
        await runCase(`${photo.file} ${op.op} ${codecPath}`, async () => {
          t = Date.now();
          if (FRESH && results.length > 0) {
            await stopServer();
            base = await startServer();
          }
          const ours = await runOurs(base, bytes, op, RUNS, codecPath);
          process.stderr.write(`ours ${since(t)}`);
          ours.quality = await reference.measure(ours.output);
          ours.coding = await codingOf(ours.output);
          results.push({ photo, op: op.op, name: op.name, path: codecPath, ours, sharp: sharpResult });
        });
      }
    }
    reference.release();
  }
  for (const file of FIT_PHOTOS.filter((f) => existsSync(join(CORPUS, f)) && !only)) {
    await runCase(`fit check ${file}`, async () => {
      if (FRESH) {
        await stopServer();
        base = await startServer();
      }
      try {
        const ours = await runOurs(base, readFileSync(join(CORPUS, file)), FIT_OP, 2);
        process.stderr.write(`ours ${since(t)}`);
        fitResults.push({ file, ours });
      } catch (error) {
        if (!error.refused) throw error;
        process.stderr.write(`refused by the service (by design): ${error.message}`);
        fitResults.push({ file, refused: error.message.replace(/^POST \S+ /, "") });
      }
    });
  }
} finally {
  await stopServer();
  removeSnapshot();
}

// ---------------------------------------------------------------------------------------------
// Report

const ms = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
const mib = (v) => (v / MiB).toFixed(1);
/** The workerd RSS cross-check means something only in a fresh process (BENCH_FRESH=1). */
const rssText = (bytes) => (FRESH ? mib(bytes) : "n/a");
function fits(peak) {
  if (peak > LIMIT) return "**no**";
  if (peak > LIMIT - HEADROOM) return "tight";
  return "yes";
}

const rows = [];
const qualityRows = [];
const peakRows = [];
const memRows = [];
const label = (wasm) =>
  Object.entries(wasm)
    .map(([name, bytes]) => `${name} ${mib(bytes)}`)
    .join(" + ") || "none";
for (const r of results) {
  const { runs, rss } = r.ours;
  const first = runs[0];
  const last = runs.at(-1);
  const med = (key) => median(warm(runs).map((x) => x.ms[key]));
  const peakRun = runs.reduce((best, x) => (x.memory.peak > best.memory.peak ? x : best));
  const sharpTotal = median(warm(r.sharp.totals));
  const sharpDecode = median(warm(r.sharp.decodes));
  const input = first.input;
  const mp = (input.width * input.height) / 1e6;
  r.summary = {
    decode: med("decode"),
    resize: med("resize"),
    encode: med("encode"),
    total: med("total"),
    cold: first.ms.total,
    peak: peakRun.memory.peak,
    noGcBound: Math.max(...runs.map((x) => x.memory.noGcBound)),
    rssDelta: rss.firstRequest.delta,
    coldNoGcBound: runs[0].memory.noGcBound,
    sharpTotal,
    sharpDecode,
    sharpRssDelta: r.sharp.rssPeak - r.sharp.rssBefore,
    ratio: med("total") / sharpTotal,
    roundTrip: median(warm(runs).map((x) => x.roundTripMs)),
    echo: median(warm(r.ours.echoes)),
    cpu: median(warm(runs).map((x) => x.cpuMs)),
    ourBytes: r.ours.output.byteLength,
    sharpBytes: r.sharp.outputBytes.byteLength,
  };
  const s = r.summary;
  const oq = r.ours.quality;
  const sq = r.sharp.quality;
  rows.push(
    `| ${r.photo.file} | ${mp.toFixed(2)} | ${r.name} | ${PATH_LABEL[r.path]} | ${last.output.width}×${last.output.height} | ${ms(s.decode)} | ${ms(s.resize)} | ${ms(s.encode)} | **${ms(s.total)}** | ${ms(s.cold)} | ${ms(s.roundTrip)} | ${ms(s.echo)} | ${ms(s.cpu)} | **${ms(s.sharpTotal)}** | ${ms(s.sharpDecode)} | **${s.ratio.toFixed(1)}×** |`,
  );
  const sameSize = oq.width === sq.width && oq.height === sq.height;
  const sameCoding = r.ours.coding === r.sharp.coding;
  qualityRows.push(
    `| ${r.photo.file} | ${r.name} | ${PATH_LABEL[r.path]} | ${oq.width}×${oq.height} / ${sq.width}×${sq.height}${sameSize ? "" : " (rounding differs)"} | ${r.ours.coding} / ${r.sharp.coding}${sameCoding ? "" : " **(differ)**"} | ${s.ourBytes} | ${s.sharpBytes} | ${(s.ourBytes / s.sharpBytes).toFixed(2)} | ${oq.ssim.toFixed(4)} | ${sq.ssim.toFixed(4)} | ${oq.psnr.toFixed(2)} | ${sq.psnr.toFixed(2)} |`,
  );
  peakRows.push(
    `| ${r.photo.file} | ${r.name} | ${PATH_LABEL[r.path]} | ${rssText(s.rssDelta)} | ${mib(s.sharpRssDelta)} | ${mib(s.peak)} | ${fits(s.peak)} |`,
  );
  const m = peakRun.memory;
  memRows.push(
    `| ${r.photo.file} | ${r.op} | ${r.path} | ${m.peakStep} | ${label(m.peakWasm)} | ${mib(m.peakJs)} | ${mib(m.peak)} | ${mib(s.noGcBound)} | ${mib(s.coldNoGcBound)} / ${rssText(s.rssDelta)} | ${label(last.memory.retainedAtEnd)} |`,
  );
}

// Which photos fit: a photo fits when both operations do.
const verdicts = photos.flatMap((photo) =>
  PATHS.filter((path) => results.some((r) => r.photo === photo && r.path === path)).map((path) => {
    const peaks = results.filter((r) => r.photo === photo && r.path === path).map((r) => r.summary.peak);
    const worst = Math.max(...peaks);
    return `${photo.file} (${photo.label}), ${PATH_LABEL[path]}: ${fits(worst).replaceAll("*", "")}, worst case ${mib(worst)} MiB`;
  }),
);

const fitRows = fitResults.map(({ file, ours, refused }) => {
  if (refused !== undefined) return `| ${file} | | | refused, as designed: ${refused} | | | | | n/a |`;
  const peakRun = ours.runs.reduce((best, x) => (x.memory.peak > best.memory.peak ? x : best));
  const { input, memory } = peakRun;
  const mp = (input.width * input.height) / 1e6;
  return `| ${file} | ${input.format} ${input.width}×${input.height}${input.orientation > 1 ? ` (EXIF ${input.orientation})` : ""} | ${mp.toFixed(2)} | ${memory.peakStep} | ${label(memory.peakWasm)} | ${mib(memory.peakJs)} | **${mib(memory.peak)}** | ${rssText(ours.rss.firstRequest.delta)} | ${fits(memory.peak)} |`;
});

const wallMs = Date.now() - started;
ourTicks += processTicks(process.pid) - selfBefore;
const othersCores = Math.max(0, ((machineBusyTicks() - busyBefore - ourTicks) * TICK_MS) / wallMs);
const wallSeconds = ((Date.now() - started) / 1000).toFixed(0);
const report = [
  ...header.map((line) => line.replace("{wrangler}", wranglerCommand)),
  `- Wall time of the run: ${wallSeconds} s. Other processes on the machine used ${othersCores.toFixed(2)} of ${cpus.length} cores on average meanwhile${
    othersCores > 0.25 ? " (**the machine was not idle: times are inflated and noisier than on an idle machine**)" : " (about idle)"
  }`,
  ``,
  `## Time (median of ${RUNS - 1} warm runs; a warm-up run first)`,
  ``,
  `Clocks: **[W]** = workerd's \`performance.now()\` inside the bench worker (whole milliseconds: workerd advances its clocks in 1 ms steps); **[N]** = Node's \`performance.now()\` in bench/run.mjs (sub-millisecond wall clock); **[C]** = CPU time of the workerd process running the worker, all its threads, from /proc schedstat (ns); **[S]** = Node's \`performance.now()\` in sharp's own process (sub-millisecond).`,
  ``,
  `| photo | MP | op | path | out px | ours decode ms [W] | ours resize ms [W] | ours encode ms [W] | ours total ms [W] | ours 1st run ms [W] | ours round trip ms [N] | no-op round trip ms [N] | ours workerd CPU ms [C] | sharp total ms [S] | sharp full decode ms [S] | ours/sharp (total [W] / [S]) |`,
  `|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|`,
  ...rows,
  ``,
  `## Output size and quality (both outputs against one reference)`,
  ``,
  `Reference: sharp's Lanczos3 resize of the fully decoded source (EXIF orientation applied, no shrink-on-load) to the output's exact size; both outputs decoded by sharp (bench/quality.mjs, metrics from test/node/image-compare.ts: luma SSIM over 8×8 windows, RGB PSNR). Coding is read from each output file (the JPEG frame header's sampling factors; **(differ)** marks a row where the two sides are not coded alike). Where the two sides round the output height differently, each is compared with the reference of its own size. Encoder settings given to sharp: JPEG baseline, optimised Huffman tables, chroma 4:2:0 below q90 and 4:4:4 from q90 (sharp has no 4:2:2, which ours uses from q80 to q89); WebP lossy, method 4, default preset, no sharp YUV, no auto filter (src/codecs/webp.ts's settings).`,
  ``,
  `| photo | op | path | out px ours / sharp | coding ours / sharp | ours bytes | sharp bytes | ours/sharp bytes | ours SSIM | sharp SSIM | ours PSNR dB | sharp PSNR dB |`,
  `|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|`,
  ...qualityRows,
  ``,
  `## Peak memory`,
  ``,
  `**Measured**: workerd RSS Δ (peak RSS of the workerd process during the first request after a fresh start, minus its RSS before; only with BENCH_FRESH=1, else n/a) and sharp RSS Δ (the sharp process's peak RSS during its runs minus its RSS before). **Modelled**: "ours peak (modelled)" adds the measured sizes of the WebAssembly memories in use during each pipeline step to the sizes of the large JS buffers the pipeline is known to hold then (a model, not a reading), and takes the largest step; "fits" judges that modelled figure.`,
  ``,
  `| photo | op | path | workerd RSS Δ 1st request MiB (measured) | sharp RSS Δ MiB (measured) | ours peak MiB (modelled: WASM + JS) | fits 128 MB? (modelled) |`,
  `|---|---|---|---:|---:|---:|---|`,
  ...peakRows,
  ``,
  `## Where our peak memory goes (modelled; the run with the highest peak, usually a warm one)`,
  ``,
  `| photo | op | path | peak during step | WASM memories then (MiB) | JS buffers then (MiB) | peak MiB | no-GC bound MiB | 1st request: no-GC bound / workerd RSS Δ MiB | WASM kept by the isolate after the run (MiB) |`,
  `|---|---|---|---|---|---:|---:|---:|---:|---|`,
  ...memRows,
  ``,
  `## Fits the Worker's 128 MB today? (on the modelled peak)`,
  ``,
  ...verdicts.map((v) => `- ${v}`),
  ``,
  `Fit check on the corpus's other large images (→ 800 px WebP, memory only, codecs reset first, the larger of two runs):`,
  ``,
  `| file | stored | MP | peak during step | WASM memories then (MiB) | JS buffers then (MiB) | peak MiB (modelled) | workerd RSS Δ 1st request MiB (measured) | fits 128 MB? |`,
  `|---|---|---:|---|---|---:|---:|---:|---|`,
  ...fitRows,
  ``,
  ...(fitResults.some((f) => f.refused !== undefined)
    ? [`A source refused above is one the service answers with a 4xx by design (a decode limit, see README "How images are processed"), not a failure of the bench.`, ``]
    : []),
  ...(failures.length > 0 ? [`## Cases that failed`, ``, ...failures.map((f) => `- ${f}`), ``] : []),
  ...([...results, ...fitResults].some((r) => r.ours?.runs.some((x) => x.memory.unknownModules > 0))
    ? [`**Warning:** a WASM module missing from MODULE_LABELS in bench/worker.ts was instantiated; memory it keeps between steps is not counted. Add it there.`, ``]
    : []),
  `## How to read this`,
  ``,
  `- **ours**: \`runPipeline\` inside workerd (\`wrangler dev\`, bench/worker.ts), options parsed from the op's query (${OPS.map((o) => `\`${o.query}\``).join(", ")}). ms [W] from the pipeline's \`trace\` and a \`performance.now()\` pair around \`runPipeline\` in bench/worker.ts; workerd's clocks move in whole milliseconds, so a median of a few ms is ±1 ms: decode = decode step; resize = orient + crop + rotate + resize + blur + sharpen (on the native path JPEGs and non-interlaced PNGs are decoded inside the resize step, their rows streamed into the resampler, so their decode column is ~0 and resize includes the decode); encode = format + flatten + encode; total = runPipeline wall time (request upload and response excluded). **round trip** [N] = Node's clock around the whole request to \`wrangler dev\` (upload of the source, its proxy, the pipeline, the JSON answer); **no-op round trip** [N] = the same body posted to a handler that only reads it, so round trip − no-op ≈ the pipeline at sub-millisecond resolution; **workerd CPU** [C] = CPU time of the workerd process that ran the request, all threads (the pipeline, request handling, and any GC that ran meanwhile). 1st run = the first run after the reset: codec instantiation and WASM memory growth from scratch included, which requests for large images pay anyway (src/codecs drops instances after a call to keep its WASM budget, WASM_RETAIN_BYTES); compiled code is already warm except in the very first case, so this is not a cold-isolate time.`,
  `- **ours peak (modelled)** = the largest, over the pipeline's steps, of (WebAssembly memory in use during the step + large JS buffers held during it), from bench/worker.ts: it wraps \`WebAssembly.Instance\` to see every codec memory (src/codecs drops instances after a call to keep its WASM budget, so the memory left after a run is not the peak), and counts a codec's memory in a step when the codec was held at the step's start or created in it, at its size at the step's end (memory only grows). JS buffers: request bytes + decoded RGBA (+ upright copy when EXIF-rotated) + box-shrunk copy + resized RGBA during resize; input + decoded during decode; input + resized + output during encode. The max is over the runs, so codecs a warm isolate keeps within that budget (e.g. the WebP encoder, the resizer) count. Not counted: the isolate's own JS heap and code, and garbage awaiting GC (the **no-GC bound** counts all memories and buffers of the request as if nothing were collected). "fits": yes ≤ ${mib(LIMIT - HEADROOM)} MiB (${mib(HEADROOM)} MiB left for the isolate's own heap and code, an assumption), tight up to 128 MiB, no above.`,
  `- **workerd RSS Δ 1st request (measured)**: peak RSS (VmHWM, reset with \`clear_refs\`) of the workerd process running the worker during the first request of the case in a fresh \`wrangler dev\`, minus its RSS just before: a cross-check of the first request's no-GC bound (garbage and allocator slack included; pages never touched are not). Later requests are not measured this way: locally nothing forces a GC, so garbage piles up (see latest.json, rss.allRuns). Only with BENCH_FRESH=1 (else n/a): in a shared process, memory freed by the previous case is reused without showing in RSS. wrangler dev does not enforce 128 MB.`,
  `- **sharp**: a fresh Node process per case, \`sharp.concurrency(1)\`, \`sharp.cache(false)\`; one call \`sharp(buf).rotate().resize({ width, withoutEnlargement: true }).webp({ quality, effort: 4, preset: "default", smartSubsample: false, smartDeblock: false, alphaQuality: 100 })\` (or \`.jpeg({ quality, progressive: false, optimiseCoding: true, chromaSubsampling })\`, see the size and quality notes), which shrinks on load (JPEG DCT scaling). sharp's decode/resize/encode are one streaming pass, so only its total is comparable; "sharp full decode" is \`sharp(buf).raw().toBuffer()\` (whole image, no shrink-on-load), an approximation to set beside our decode column. sharp RSS Δ = the process's VmHWM during the runs minus its RSS before them (libvips' own allocations; n/a as a like-for-like "isolate" figure).`,
  `- **ours/sharp** = ours total [W] / sharp total [S] (warm medians, same machine, run one after the other; neither includes moving the bytes in or out).`,
  ``,
];
const text = report.join("\n");
console.log(text);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "latest.md"), text);
// Output images stay out of the JSON (a Buffer's toJSON runs before the replacer: look at the holder).
function withoutImages(key, value) {
  return Buffer.isBuffer(this[key]) ? undefined : value;
}
writeFileSync(join(ROOT, "bench", "results", "latest.json"), JSON.stringify({ runs: RUNS, corpus: CORPUS, results, fitResults, failures }, withoutImages, 2));
console.log(`Written to bench/results/latest.md (raw runs: bench/results/latest.json).`);
if (failures.length > 0) process.exitCode = 1;
