// Shared helpers of the load scripts (bench/load/*.mjs): a bundled snapshot of the Worker served
// by `wrangler dev` with fresh local state, process-group cleanup, CPU accounting from /proc,
// autocannon runs, photo variants, and the markdown report.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CORPUS = resolve(ROOT, process.env.BENCH_CORPUS ?? "../shared/corpus");
const WRANGLER = join(ROOT, "node_modules", ".bin", "wrangler");
export const ADMIN_KEY = "load-admin-key-" + Math.random().toString(36).slice(2);
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const WRANGLER_ENV = { ...process.env, CLOUDFLARE_CF_FETCH_ENABLED: "false", WRANGLER_SEND_METRICS: "false", CI: "true" };

/**
 * Real photos of the corpus, mixed sizes (all JPEG, so a unique trailer after the end marker
 * makes a distinct file with the same pixels). `weight` = copies per 100 uploads.
 */
export const PHOTOS = [
  { file: "photo-small-aero1.jpg", label: "0.3 MP" },
  { file: "photo-small-fruits.jpg", label: "0.25 MP" },
  { file: "orientation-portrait-1.jpg", label: "0.9 MP" },
  { file: "orientation-landscape-6.jpg", label: "2.2 MP, EXIF 6" },
  { file: "photo-medium-storm.jpg", label: "2.5 MP" },
  { file: "photo-panorama-8to1-aitzgorri.jpg", label: "1.2 MP, 8:1" },
  { file: "jpeg-gps-real-colorfulcups.jpg", label: "4.1 MP" },
  { file: "photo-4mp-eveningglow.jpg", label: "4.1 MP" },
  { file: "photo-portrait-friends.jpg", label: "6.3 MP, progressive" },
  { file: "orientation-6-camera-picosdeeuropa.jpg", label: "8 MP, EXIF 6" },
  { file: "photo-large-sunset-12mp.jpg", label: "12.2 MP, progressive" },
  { file: "photo-xlarge-kleiber-20mp.jpg", label: "20.4 MP" },
].filter((p) => existsSync(join(CORPUS, p.file)));

export function loadPhotos() {
  return PHOTOS.map((p) => ({ ...p, bytes: readFileSync(join(CORPUS, p.file)) }));
}

/** A distinct file with the same pixels: bytes after the JPEG end marker are allowed and stored. */
export function variant(bytes, tag) {
  return Buffer.concat([bytes, Buffer.from(`\nedge-images-load-variant ${tag}\n`)]);
}

// ---------------------------------------------------------------------------------------------
// Process handling: one wrangler dev (own process group), always stopped.

let current; // { child, output[] }
let tmpRoot;

export function groupMembers(pgid) {
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

function processTicks(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(fields[11]) + Number(fields[12]); // utime + stime, clock ticks
  } catch {
    return 0;
  }
}
const TICK_MS = 10; // USER_HZ = 100

function machineBusyTicks() {
  const [, ...values] = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = values.map(Number);
  return user + nice + system + irq + softirq + steal;
}

/** CPU snapshot: per process of the server's group (+ this process), and the whole machine. */
export function cpuSnapshot() {
  const perPid = new Map();
  if (current) for (const m of groupMembers(current.child.pid)) perPid.set(m.pid, { comm: m.comm, ticks: processTicks(m.pid) });
  return { at: Date.now(), perPid, self: processTicks(process.pid), machine: machineBusyTicks() };
}

/**
 * CPU used between two snapshots, in ms: by the server's processes (by name: workerd, node =
 * wrangler's proxy/supervisor), by this load-generating process, and by everything else.
 */
export function cpuBetween(a, b) {
  const byComm = {};
  let server = 0;
  for (const [pid, { comm, ticks }] of b.perPid) {
    const before = a.perPid.get(pid)?.ticks ?? 0;
    const ms = (ticks - before) * TICK_MS;
    byComm[comm] = (byComm[comm] ?? 0) + ms;
    server += ms;
  }
  const self = (b.self - a.self) * TICK_MS;
  const machine = (b.machine - a.machine) * TICK_MS;
  const wall = b.at - a.at;
  return { wallMs: wall, serverMs: server, byComm, clientMs: self, othersMs: Math.max(0, machine - server - self), othersCores: Math.max(0, machine - server - self) / wall };
}

async function stopServer() {
  if (!current) return;
  const pgid = current.child.pid;
  current = undefined;
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

function cleanupSync() {
  if (current) {
    try {
      process.kill(-current.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
    current = undefined;
  }
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = undefined;
}
for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    cleanupSync();
    process.exit(130);
  });
}
process.on("exit", cleanupSync);

function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject(new Error("no port"))));
    });
  });
}

/**
 * The wrangler config of the load worker, derived from ../wrangler.toml at run time (same
 * bindings, vars, compatibility settings and queue consumers; nothing to keep in sync):
 * `main` is replaced, the [assets] table is replaced by our own directory.
 */
function loadConfig({ main, extraTopLevel = [], assetsDir }) {
  const source = readFileSync(join(ROOT, "wrangler.toml"), "utf8").split("\n");
  const out = [];
  let inAssets = false;
  for (const line of source) {
    if (/^\s*\[/.test(line)) inAssets = /^\s*\[assets\]\s*$/.test(line);
    if (inAssets) continue;
    if (/^\s*main\s*=/.test(line) || /^#:schema/.test(line)) continue;
    out.push(line.replace(/^(\s*migrations_dir\s*=\s*)"([^"]+)"/, (_, key, dir) => `${key}"${resolve(ROOT, dir)}"`));
  }
  const top = [`main = "${main}"`, ...extraTopLevel];
  const assets = assetsDir ? ["", "[assets]", `directory = "${assetsDir}"`, `run_worker_first = ["/v1/*", "/i/*", "/__bench/*", "/health"]`] : [];
  return [...top, ...out, ...assets, ""].join("\n");
}

export let serverCommand = "";

/**
 * Bundles bench/load/worker.ts (which imports src/) once into a temporary directory and serves
 * that bundle (no_bundle): edits made to src/ by others during the run neither restart the
 * worker nor mix two versions in one table. Fresh local state (--persist-to) per run.
 * Static assets: `assets` = { name: Buffer } written into the assets directory.
 */
export async function startServer({ assets = {} } = {}) {
  tmpRoot = mkdtempSync(join(os.tmpdir(), "edge-images-load-"));
  const buildDir = join(tmpRoot, "build");
  const outDir = join(tmpRoot, "out");
  const assetsDir = join(tmpRoot, "assets");
  const persist = join(tmpRoot, "state");
  for (const d of [buildDir, outDir, assetsDir, persist]) mkdirSync(d, { recursive: true });
  for (const [name, bytes] of Object.entries(assets)) writeFileSync(join(assetsDir, name), bytes);
  writeFileSync(join(buildDir, "wrangler.toml"), loadConfig({ main: join(ROOT, "bench", "load", "worker.ts") }));
  const build = spawnSync(WRANGLER, ["deploy", "--dry-run", "--outdir", outDir, "-c", join(buildDir, "wrangler.toml")], { cwd: ROOT, env: WRANGLER_ENV, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`bundling bench/load/worker.ts failed:\n${build.stdout}${build.stderr}`);
  const devConfig = join(outDir, "wrangler.toml");
  writeFileSync(
    devConfig,
    loadConfig({ main: "worker.js", extraTopLevel: ["no_bundle = true", `rules = [{ type = "CompiledWasm", globs = ["**/*.wasm"], fallthrough = true }]`], assetsDir }),
  );
  const migrate = spawnSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persist, "-c", devConfig], { cwd: ROOT, env: WRANGLER_ENV, encoding: "utf8" });
  if (migrate.status !== 0) throw new Error(`migrations failed:\n${migrate.stdout}${migrate.stderr}`);

  let lastLog = "";
  for (let attempt = 1; attempt <= 3; attempt++) {
    const port = await freePort();
    const inspectorPort = await freePort();
    const args = ["dev", "-c", devConfig, "--port", String(port), "--inspector-port", String(inspectorPort), "--ip", "127.0.0.1", "--persist-to", persist, "--var", `ADMIN_API_KEY:${ADMIN_KEY}`, "--show-interactive-dev-session=false"];
    serverCommand =
      "wrangler deploy --dry-run -c <tmp>/build/wrangler.toml (main = bench/load/worker.ts, rest of ../wrangler.toml), `wrangler d1 migrations apply DB --local --persist-to <tmp>/state`, then " +
      `CLOUDFLARE_CF_FETCH_ENABLED=false WRANGLER_SEND_METRICS=false wrangler dev -c <tmp>/out/wrangler.toml (the bundle, no_bundle = true, [assets] <tmp>/assets) --port <free> --ip 127.0.0.1 --persist-to <tmp>/state --var ADMIN_API_KEY:<random>`;
    const child = spawn(WRANGLER, args, { cwd: ROOT, env: WRANGLER_ENV, stdio: ["ignore", "pipe", "pipe"], detached: true });
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
    lastLog = output.join("");
    await stopServer();
    if (!/already in use/i.test(lastLog)) break;
  }
  throw new Error(`wrangler dev did not start:\n${lastLog}`);
}

/** Bytes of the local D1 database files (SQLite, with its WAL) of the running server. */
export function d1Bytes() {
  if (!tmpRoot) return NaN;
  let total = 0;
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.sqlite(-wal)?$/.test(entry.name)) total += statSync(path).size;
    }
  };
  const d1 = join(tmpRoot, "state", "v3", "d1");
  if (existsSync(d1)) walk(d1);
  return total;
}

export function serverLog() {
  return current ? current.output.join("") : "";
}

export async function stopAll() {
  await stopServer();
  if (tmpRoot) rmSync(tmpRoot, { recursive: true, force: true });
  tmpRoot = undefined;
}

// ---------------------------------------------------------------------------------------------
// API helpers

export async function createTenant(base, name = "load") {
  const response = await fetch(`${base}/v1/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(`POST /v1/tenants: ${response.status} ${JSON.stringify(body)}`);
  return { key: body.key.key, tenantId: body.tenant.id };
}

export async function putImage(base, key, bytes, filename) {
  const response = await fetch(`${base}/v1/images?filename=${encodeURIComponent(filename)}`, {
    method: "PUT",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
    body: bytes,
  });
  const body = await response.json();
  if (response.status !== 201) throw new Error(`PUT /v1/images ${filename}: ${response.status} ${JSON.stringify(body).slice(0, 300)}`);
  return body.images[0];
}

export async function counters(base) {
  return (await fetch(`${base}/__bench/counters`)).json();
}

export async function setMeter(base, on) {
  await (await fetch(`${base}/__bench/meter?on=${on ? 1 : 0}`, { method: "POST" })).json();
}

export async function setCacheBypass(base, on) {
  await (await fetch(`${base}/__bench/cache-bypass?on=${on ? 1 : 0}`, { method: "POST" })).json();
}

export async function countStored(base, tenantId) {
  return (await fetch(`${base}/__bench/count?tenant=${encodeURIComponent(tenantId)}`)).json();
}

/** Per-request deltas of the binding counters between two snapshots. */
export function opsPer(a, b, n) {
  const d = (k) => (b[k] - a[k]) / n;
  return {
    d1Queries: d("d1Queries"),
    d1RowsRead: d("d1RowsRead"),
    d1RowsWritten: d("d1RowsWritten"),
    d1RawUnmetered: d("d1RawUnmetered"),
    d1RawWriteRowsReturned: d("d1RawWriteRowsReturned"),
    d1RawRowsReturnedUnmetered: d("d1RawRowsReturnedUnmetered"),
    r2ClassA: d("r2ClassA"),
    r2ClassB: d("r2ClassB"),
    r2Deletes: d("r2Deletes"),
    r2BytesPut: d("r2BytesPut"),
    queueSent: d("queueSent"),
    cacheMatch: d("cacheMatch"),
    cacheHit: d("cacheHit"),
    cachePut: d("cachePut"),
    requests: d("requests"),
  };
}

/** Runs `n` async tasks with at most `concurrency` at a time. */
export async function pool(items, concurrency, task) {
  let next = 0;
  const results = new Array(items.length);
  await Promise.all(
    Array.from({ length: Math.min(concurrency, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await task(items[i], i);
      }
    }),
  );
  return results;
}

// ---------------------------------------------------------------------------------------------
// autocannon

export function cannon(options) {
  return new Promise((resolveRun, reject) => {
    const instance = autocannon({ timeout: 60, ...options }, (error, result) => (error ? reject(error) : resolveRun(result)));
    // autocannon's own progress bar would mix with our output.
    void instance;
  });
}

export function autocannonVersion() {
  return JSON.parse(readFileSync(join(ROOT, "node_modules", "autocannon", "package.json"), "utf8")).version;
}

/** Statistics of a list of numbers. */
export function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]);
  const mean = sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1);
  return { n: sorted.length, mean, p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? NaN };
}

// ---------------------------------------------------------------------------------------------
// Report

export const fmt = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "n/a");

export function machineLines(command) {
  const cpus = os.cpus();
  const wranglerVersion = JSON.parse(readFileSync(join(ROOT, "node_modules", "wrangler", "package.json"), "utf8")).version;
  return [
    `- Command: \`${command}\``,
    `- Machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, ${os.type()} ${os.release()}; load generator (autocannon ${autocannonVersion()}) on the same machine`,
    `- Node ${process.version}, wrangler ${wranglerVersion}, run ${new Date().toISOString()}; code: ${gitState()}`,
    `- Server: ${serverCommand}`,
  ];
}

function gitState() {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout.trim();
  const dirty = spawnSync("git", ["status", "--porcelain", "--", "src", "wrangler.toml", "migrations"], { cwd: ROOT, encoding: "utf8" }).stdout.split("\n").filter(Boolean).length;
  return `commit ${head || "?"}${dirty ? ` + ${dirty} uncommitted change(s) in src/, wrangler.toml, migrations/ (bundled at the start of the run)` : ""}`;
}

export function othersLine(cpu) {
  return `- Other processes on the machine (not the server, not the load generator) used ${cpu.othersCores.toFixed(2)} of ${os.cpus().length} cores on average during the measured phases${
    cpu.othersCores > 0.25 ? " (**the machine was not idle: figures are lower and noisier than on an idle machine**)" : " (about idle)"
  }`;
}

export function writeReport(name, lines) {
  const text = lines.join("\n");
  console.log(text);
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(join(ROOT, "bench", "results", `${name}.md`), text + "\n");
  console.log(`\nWritten to bench/results/${name}.md`);
}

export function corpusOrExit() {
  if (PHOTOS.length === 0) {
    console.log(`No corpus photos in ${CORPUS} (set BENCH_CORPUS). Nothing to measure.`);
    process.exit(0);
  }
}

export const progress = (text) => process.stderr.write(text);

// ---------------------------------------------------------------------------------------------
// Shared set-up of the read scenarios

/** Uploads one copy of each corpus photo; returns [{ ...photo, id }]. */
export async function seedPhotos(base, key, photos, tag = "seed") {
  return pool(photos, 2, async (photo, i) => ({ ...photo, id: (await putImage(base, key, variant(photo.bytes, `${tag}-${i}`), photo.file)).id }));
}

/** Requests each path twice (render, then a cache hit) and checks the second was a Cache API hit. */
export async function warmCache(base, paths) {
  await pool(paths, 2, async (path) => {
    const first = await fetch(base + path);
    if (!first.ok) throw new Error(`GET ${path}: ${first.status} ${(await first.text()).slice(0, 300)}`);
    await first.arrayBuffer();
  });
  await sleep(500); // cache.put runs in waitUntil
  let bytes = 0;
  for (const path of paths) {
    const again = await fetch(base + path);
    bytes += (await again.arrayBuffer()).byteLength;
    if (again.headers.get("cf-cache-status") !== "HIT") throw new Error(`GET ${path}: not a cache hit after warming (${again.status}, cf-cache-status ${again.headers.get("cf-cache-status")})`);
  }
  return { meanBytes: bytes / paths.length };
}

/** A deterministic random generator (mulberry32), so every run draws the same sequence. */
export function random(seed = 42) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Unique transform paths (never seen before by the server), cycling through the images. */
export function uncachedPaths(images) {
  const WIDTHS = [160, 320, 480, 640, 800, 1024, 1280, 1600];
  const FORMATS = ["webp", "jpeg"];
  let k = 0;
  return () => {
    const n = k++;
    const image = images[n % images.length];
    const j = Math.floor(n / images.length);
    const format = FORMATS[j % FORMATS.length];
    const w = WIDTHS[Math.floor(j / FORMATS.length) % WIDTHS.length];
    const q = 85 - Math.floor(j / (WIDTHS.length * FORMATS.length));
    return { image, format, path: `/i/${image.id}?w=${w}&fmt=${format}&q=${q}` };
  };
}

/** autocannon hands response headers with their original case. */
export function lowerKeys(headers) {
  return Object.fromEntries(Object.entries(headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
}

/** Sum of the Server-Timing durations, and the decode/encode parts. */
export function serverTiming(header) {
  const steps = {};
  let total = 0;
  for (const part of (header ?? "").split(",")) {
    const m = /^\s*([\w-]+).*?dur=([\d.]+)/.exec(part);
    if (m) {
      steps[m[1]] = Number(m[2]);
      total += Number(m[2]);
    }
  }
  return { total, steps, present: header != null && header !== "" };
}
