// `npm run bench:load-cached`: cached transform hits (Cache API) against a static asset served by
// the same `wrangler dev` in the same run (the ceiling of this harness), and the same URLs when
// the Cache API misses (a location whose cache lacks them: served from the stored R2 rendition,
// no render). Rounds alternate static / cached / R2 so that load from other processes hits all alike.
// Env: LOAD_SECONDS (per round, default 10), LOAD_ROUNDS (default 2), LOAD_CONNECTIONS (default 10).
import sharp from "sharp";
import * as L from "./lib.mjs";

L.corpusOrExit();
const SECONDS = Number(process.env.LOAD_SECONDS ?? 10);
const ROUNDS = Number(process.env.LOAD_ROUNDS ?? 2);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 10);
const photos = L.loadPhotos();

// The ceiling asset: a 400 px WebP of a corpus photo, the same kind and size class of bytes as
// the cached transforms (w=400&fmt=webp), so the ratio compares paths, not payloads.
// Made from every photo; the one of median size is served.
const candidates = await Promise.all(photos.map((p) => sharp(p.bytes).rotate().resize({ width: 400 }).webp({ quality: 80 }).toBuffer()));
const ceilingBytes = candidates.sort((a, b) => a.byteLength - b.byteLength)[Math.floor(candidates.length / 2)];

const started = Date.now();
L.progress("starting wrangler dev… ");
const base = await L.startServer({ assets: { "ceiling.webp": ceilingBytes } });
L.progress(`up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
try {
  const { key } = await L.createTenant(base);
  const images = await L.seedPhotos(base, key, photos);
  const paths = images.map((image) => `/i/${image.id}?w=400&fmt=webp`);
  const warm = await L.warmCache(base, paths);
  const staticCheck = await fetch(`${base}/ceiling.webp`);
  const staticBytes = (await staticCheck.arrayBuffer()).byteLength;
  if (!staticCheck.ok || staticCheck.headers.get("content-type") !== "image/webp") throw new Error(`static asset: ${staticCheck.status} ${staticCheck.headers.get("content-type")}`);

  const rows = [];
  const KINDS = ["static", "cached", "r2"];
  const LABEL = { static: "static asset (ceiling)", cached: "cached transform (Cache API hit)", r2: "transform from R2 rendition (Cache API miss)" };
  const totals = Object.fromEntries(KINDS.map((k) => [k, { requests: 0, seconds: 0, cpu: 0, lat: [] }]));
  const opsBy = {};
  let others = 0;
  let wall = 0;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const kind of KINDS) {
      await L.setCacheBypass(base, kind === "r2");
      L.progress(`round ${round} ${kind}… `);
      const c0 = await L.counters(base);
      const cpu0 = L.cpuSnapshot();
      const requests = kind === "static" ? [{ method: "GET", path: "/ceiling.webp" }] : paths.map((path) => ({ method: "GET", path }));
      const result = await L.cannon({ url: base, connections: CONNECTIONS, duration: SECONDS, requests });
      const cpu = L.cpuBetween(cpu0, L.cpuSnapshot());
      const c1 = await L.counters(base);
      const errors = result.errors + result.timeouts + result.non2xx;
      const served = result.requests.total;
      const perReq = L.opsPer(c0, c1, Math.max(1, served));
      opsBy[kind] = perReq;
      others += cpu.othersMs;
      wall += cpu.wallMs;
      const rps = served / (result.duration || SECONDS);
      totals[kind].requests += served;
      totals[kind].seconds += result.duration || SECONDS;
      totals[kind].cpu += cpu.serverMs;
      totals[kind].lat.push(result.latency);
      rows.push({
        round,
        kind,
        served,
        rps,
        p50: result.latency.p50,
        p99: result.latency.p99,
        errors,
        cpuPerReq: cpu.serverMs / Math.max(1, served),
        byComm: cpu.byComm,
        clientCores: cpu.clientMs / cpu.wallMs,
        hitShare: kind !== "static" ? perReq.cacheHit : NaN,
        r2: kind !== "static" ? perReq.r2ClassB : NaN,
        d1: kind !== "static" ? perReq.d1Queries : NaN,
      });
      L.progress(`${rps.toFixed(0)} req/s\n`);
    }
  }
  await L.setCacheBypass(base, false);
  const rate = (k) => totals[k].requests / totals[k].seconds;
  const medianOf = (k, field) => {
    const v = totals[k].lat.map((l) => l[field]).sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)];
  };
  const anyErrors = rows.some((r) => r.errors > 0);
  const cachedRate = rate("cached");
  const staticRate = rate("static");
  const comm = (r) => Object.entries(r.byComm).map(([name, ms]) => `${name} ${(ms / Math.max(1, r.served)).toFixed(2)}`).join(", ");
  L.writeReport("load-cached", [
    `# Load: cached transform hits vs a static asset (same wrangler dev, same run)`,
    ``,
    ...L.machineLines("npm run bench:load-cached (node bench/load/cached.mjs)"),
    `- ${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s per path, alternating static / cached / R2 rendition; ${images.length} images (real corpus photos), cached URL \`/i/<id>?w=400&fmt=webp\` (mean ${Math.round(warm.meanBytes)} B); static asset \`/ceiling.webp\` (${staticBytes} B, a 400 px WebP q80 made with sharp from the corpus photo of median output size), served by wrangler's assets (never reaches the Worker)`,
    L.othersLine({ othersCores: others / wall }),
    ``,
    `| path | round | requests | req/s | p50 ms | p99 ms | errors (non-2xx + socket + timeouts) | server CPU ms/req (by process) | load generator cores | Cache API hits/req | R2 reads/req | D1 queries/req |`,
    `|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|`,
    ...rows.map(
      (r) =>
        `| ${LABEL[r.kind]} | ${r.round} | ${r.served} | ${L.fmt(r.rps, 0)} | ${r.p50} | ${r.p99} | ${r.errors} | ${L.fmt(r.cpuPerReq, 2)} (${comm(r)}) | ${L.fmt(r.clientCores, 2)} | ${L.fmt(r.hitShare, 2)} | ${L.fmt(r.r2, 2)} | ${L.fmt(r.d1, 2)} |`,
    ),
    ``,
    `| | req/s (all rounds) | p50 ms (median of rounds) | p99 ms (median of rounds) | server CPU ms/req |`,
    `|---|---:|---:|---:|---:|`,
    `| static asset (ceiling) | ${L.fmt(staticRate, 0)} | ${medianOf("static", "p50")} | ${medianOf("static", "p99")} | ${L.fmt(totals.static.cpu / totals.static.requests, 2)} |`,
    `| cached transform (Cache API hit) | ${L.fmt(cachedRate, 0)} | ${medianOf("cached", "p50")} | ${medianOf("cached", "p99")} | ${L.fmt(totals.cached.cpu / totals.cached.requests, 2)} |`,
    `| transform from R2 rendition (Cache API miss) | ${L.fmt(rate("r2"), 0)} | ${medianOf("r2", "p50")} | ${medianOf("r2", "p99")} | ${L.fmt(totals.r2.cpu / totals.r2.requests, 2)} |`,
    `| **ratio cached / ceiling** | **${L.fmt(cachedRate / staticRate, 2)}** | | | |`,
    `| ratio R2 rendition / ceiling | ${L.fmt(rate("r2") / staticRate, 2)} | | | |`,
    ``,
    ...["cached", "r2"].map((k) => `Binding calls per request, ${LABEL[k]} (counted by bench/load/worker.ts around the real bindings): Cache API match ${L.fmt(opsBy[k].cacheMatch, 2)}, hits ${L.fmt(opsBy[k].cacheHit, 2)}, puts ${L.fmt(opsBy[k].cachePut, 2)}; R2 class B ${L.fmt(opsBy[k].r2ClassB, 2)}, class A ${L.fmt(opsBy[k].r2ClassA, 2)}; D1 queries ${L.fmt(opsBy[k].d1Queries, 3)} (the tenant config is remembered 30 s per isolate).`),
    ``,
    `The R2 rows are the same URLs with Cache API lookups forced to miss (POST /__bench/cache-bypass in bench/load/worker.ts): the Worker finds the rendition stored in R2, streams it and puts it back into the cache, without rendering.`,
    ``,
    `How to read: both paths run through wrangler dev's Node proxy and workerd on the same 2 cores as the load generator, so the absolute req/s are this harness's, not Cloudflare's; the ratio says how much of the harness's capacity the Worker's cached path leaves. Server CPU = utime+stime of wrangler dev's process group (workerd + its Node supervisor/proxy) from /proc, divided by requests: an upper bound for the Worker's own CPU (it includes HTTP parsing, the proxy and the local Cache/R2/D1 simulators).`,
    ...(anyErrors ? [``, `**Errors occurred: see the errors column.**`] : []),
  ]);
  if (anyErrors) process.exitCode = 1;
} finally {
  await L.stopAll();
}
