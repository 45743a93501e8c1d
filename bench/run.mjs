// `npm run bench`: our pipeline (in workerd, through `wrangler dev`) against sharp
// (single-threaded), on corpus photos of 0.3 / 2.5 / 12 / 20 / 24 MP, for two operations:
//   webp800  w=800&fmt=webp&q=80   (-> 800 px WebP q80)
//   jpeg200  w=200&fmt=jpeg        (-> 200 px JPEG thumbnail, q80)
//   webp2048 w=2048&fmt=webp&q=80  (only with BENCH_OPS=...,webp2048: the 50 MP -> 2048 px memory target)
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
// BENCH_CORPUS (default ../shared/corpus from the repo root), BENCH_FRESH=1 (a fresh
// `wrangler dev` per case: slower, adds the workerd peak-RSS cross-check, which a shared
// process cannot give because freed memory is reused without showing in RSS).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

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
  { op: "webp800", name: "→ 800 px WebP q80" },
  { op: "jpeg200", name: "→ 200 px JPEG" },
  { op: "webp2048", name: "→ 2048 px WebP q80" },
];
const OPS = ALL_OPS.filter(({ op }) => (process.env.BENCH_OPS ?? "webp800,jpeg200").split(",").includes(op));

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
  for (let i = 0; i < runCount; i++) {
    const response = await fetch(`${base}/run?op=${op}&path=${path}`, { method: "POST", body: bytes, headers: { "content-type": "application/octet-stream" } });
    const body = await response.json();
    if (!response.ok || body.error) throw new Error(`POST /run?op=${op}: ${response.status} ${body.error ?? ""}`);
    runs.push(body);
    // Peak RSS of the first request after the reset. Later runs add garbage that workerd has
    // no reason to collect (no memory pressure locally), so their peak RSS says little.
    if (i === 0) firstRequest = grown();
  }
  return { runs, rss: { firstRequest, allRuns: grown() } };
}

function runSharp(file, op) {
  const result = spawnSync(process.execPath, [join(ROOT, "bench", "sharp-case.mjs"), file, op, String(RUNS)], { cwd: ROOT, encoding: "utf8" });
  if (result.status !== 0) throw new Error(`sharp case ${op} ${file} failed:\n${result.stderr}`);
  const parsed = JSON.parse(result.stdout.trim().split("\n").at(-1));
  ourTicks += parsed.cpuMs / TICK_MS;
  return parsed;
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
  console.log(`Benchmark corpus is absent: ${CORPUS} does not exist (set BENCH_CORPUS to its path). Nothing to measure.`);
  process.exit(0);
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
  console.log(`No benchmark photos in ${CORPUS}. Nothing to measure.`);
  process.exit(0);
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
    for (const { op, name } of OPS) {
      let sharpResult;
      await runCase(`${photo.file} ${op} sharp`, async () => {
        sharpResult = runSharp(path, op);
        process.stderr.write(`sharp ${since(t)}`);
      });
      if (sharpResult === undefined) continue;
      for (const codecPath of PATHS) {
        await runCase(`${photo.file} ${op} ${codecPath}`, async () => {
          t = Date.now();
          if (FRESH && results.length > 0) {
            await stopServer();
            base = await startServer();
          }
          const ours = await runOurs(base, bytes, op, RUNS, codecPath);
          process.stderr.write(`ours ${since(t)}`);
          results.push({ photo, op, name, path: codecPath, ours, sharp: sharpResult });
        });
      }
    }
  }
  for (const file of FIT_PHOTOS.filter((f) => existsSync(join(CORPUS, f)) && !only)) {
    await runCase(`fit check ${file}`, async () => {
      if (FRESH) {
        await stopServer();
        base = await startServer();
      }
      const ours = await runOurs(base, readFileSync(join(CORPUS, file)), "webp800", 2);
      process.stderr.write(`ours ${since(t)}`);
      fitResults.push({ file, ours });
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
  };
  const s = r.summary;
  rows.push(
    `| ${r.photo.file} | ${mp.toFixed(2)} | ${r.name} | ${PATH_LABEL[r.path]} | ${last.output.width}×${last.output.height} | ${ms(s.decode)} | ${ms(s.resize)} | ${ms(s.encode)} | **${ms(s.total)}** | ${ms(s.cold)} | **${mib(s.peak)}** | ${rssText(s.rssDelta)} | **${ms(s.sharpTotal)}** | ${ms(s.sharpDecode)} | ${mib(s.sharpRssDelta)} | **${s.ratio.toFixed(1)}×** | ${fits(s.peak)} |`,
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

const fitRows = fitResults.map(({ file, ours }) => {
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
  `## Time and peak memory (median of ${RUNS - 1} warm runs; a warm-up run first)`,
  ``,
  `| photo | MP | op | path | out px | ours decode ms | ours resize ms | ours encode ms | ours total ms | ours 1st run ms | ours peak MiB (WASM + JS) | workerd RSS Δ 1st request MiB | sharp total ms | sharp full decode ms | sharp RSS Δ MiB | ours/sharp | fits 128 MB? |`,
  `|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|`,
  ...rows,
  ``,
  `## Where our peak memory goes (the run with the highest peak, usually a warm one)`,
  ``,
  `| photo | op | path | peak during step | WASM memories then (MiB) | JS buffers then (MiB) | peak MiB | no-GC bound MiB | 1st request: no-GC bound / workerd RSS Δ MiB | WASM kept by the isolate after the run (MiB) |`,
  `|---|---|---|---|---|---:|---:|---:|---:|---|`,
  ...memRows,
  ``,
  `## Fits the Worker's 128 MB today?`,
  ``,
  ...verdicts.map((v) => `- ${v}`),
  ``,
  `Fit check on the corpus's other large images (→ 800 px WebP, memory only, codecs reset first, the larger of two runs):`,
  ``,
  `| file | stored | MP | peak during step | WASM memories then (MiB) | JS buffers then (MiB) | peak MiB | workerd RSS Δ 1st request MiB | fits 128 MB? |`,
  `|---|---|---:|---|---|---:|---:|---:|---|`,
  ...fitRows,
  ``,
  ...(failures.length > 0 ? [`## Cases that failed`, ``, ...failures.map((f) => `- ${f}`), ``] : []),
  ...([...results, ...fitResults].some((r) => r.ours.runs.some((x) => x.memory.unknownModules > 0))
    ? [`**Warning:** a WASM module missing from MODULE_LABELS in bench/worker.ts was instantiated; memory it keeps between steps is not counted. Add it there.`, ``]
    : []),
  `## How to read this`,
  ``,
  `- **ours**: \`runPipeline\` inside workerd (\`wrangler dev\`, bench/worker.ts), options parsed from \`w=800&fmt=webp&q=80\` / \`w=200&fmt=jpeg\`. ms from the pipeline's \`trace\`: decode = decode step; resize = orient + crop + rotate + resize + blur + sharpen (on the native path JPEGs and non-interlaced PNGs are decoded inside the resize step, their rows streamed into the resampler, so their decode column is ~0 and resize includes the decode); encode = format + flatten + encode; total = runPipeline wall time (request upload and response excluded). 1st run = the first run after the reset: codec instantiation and WASM memory growth from scratch included, which requests for large images pay anyway (src/codecs drops instances after a call to keep its WASM budget, WASM_RETAIN_BYTES); compiled code is already warm except in the very first case, so this is not a cold-isolate time.`,
  `- **ours peak** = the largest, over the pipeline's steps, of (WebAssembly memory in use during the step + large JS buffers held during it), from bench/worker.ts: it wraps \`WebAssembly.Instance\` to see every codec memory (src/codecs drops instances after a call to keep its WASM budget, so the memory left after a run is not the peak), and counts a codec's memory in a step when the codec was held at the step's start or created in it, at its size at the step's end (memory only grows). JS buffers: request bytes + decoded RGBA (+ upright copy when EXIF-rotated) + box-shrunk copy + resized RGBA during resize; input + decoded during decode; input + resized + output during encode. The max is over the runs, so codecs a warm isolate keeps within that budget (e.g. the WebP encoder, the resizer) count. Not counted: the isolate's own JS heap and code, and garbage awaiting GC (the **no-GC bound** counts all memories and buffers of the request as if nothing were collected). "fits": yes ≤ ${mib(LIMIT - HEADROOM)} MiB (${mib(HEADROOM)} MiB left for the isolate's own heap and code, an assumption), tight up to 128 MiB, no above.`,
  `- **workerd RSS Δ 1st request**: peak RSS (VmHWM, reset with \`clear_refs\`) of the workerd process running the worker during the first request of the case in a fresh \`wrangler dev\`, minus its RSS just before: a cross-check of the first request's no-GC bound (garbage and allocator slack included; pages never touched are not). Later requests are not measured this way: locally nothing forces a GC, so garbage piles up (see latest.json, rss.allRuns). Only with BENCH_FRESH=1 (else n/a): in a shared process, memory freed by the previous case is reused without showing in RSS. wrangler dev does not enforce 128 MB.`,
  `- **sharp**: a fresh Node process per case, \`sharp.concurrency(1)\`, \`sharp.cache(false)\`; one call \`sharp(buf).rotate().resize({ width, withoutEnlargement: true }).webp({ quality: 80 })\` (or \`.jpeg({ quality: 80, progressive: true })\`), which shrinks on load (JPEG DCT scaling). sharp's decode/resize/encode are one streaming pass, so only its total is comparable; "sharp full decode" is \`sharp(buf).raw().toBuffer()\` (whole image, no shrink-on-load), an approximation to set beside our decode column. sharp RSS Δ = the process's VmHWM during the runs minus its RSS before them (libvips' own allocations; n/a as a like-for-like "isolate" figure).`,
  `- **ours/sharp** = ours total / sharp total (warm medians, same machine, run one after the other).`,
  ``,
];
const text = report.join("\n");
console.log(text);
mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
writeFileSync(join(ROOT, "bench", "results", "latest.md"), text);
writeFileSync(join(ROOT, "bench", "results", "latest.json"), JSON.stringify({ runs: RUNS, corpus: CORPUS, results, fitResults, failures }, null, 2));
console.log(`Written to bench/results/latest.md (raw runs: bench/results/latest.json).`);
if (failures.length > 0) process.exitCode = 1;
