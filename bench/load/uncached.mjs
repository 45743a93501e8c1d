// `npm run bench:load-uncached`: transforms that are in neither the Cache API nor R2 (every URL is
// new to the server: w x fmt x q never repeat), over real photos of mixed sizes (0.25-20 MP).
// Env: LOAD_SECONDS (default 40), LOAD_CONNECTIONS (default 4: two per core).
import * as L from "./lib.mjs";

L.corpusOrExit();
const SECONDS = Number(process.env.LOAD_SECONDS ?? 40);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 4);
const photos = L.loadPhotos();

const started = Date.now();
L.progress("starting wrangler dev… ");
const base = await L.startServer();
L.progress(`up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
try {
  const { key } = await L.createTenant(base);
  const images = await L.seedPhotos(base, key, photos);
  // Warm-up: codecs compiled and instantiated once (not a cached path: w=50 is never asked again).
  for (const format of ["webp", "jpeg"]) {
    const r = await fetch(`${base}/i/${images[0].id}?w=50&fmt=${format}`);
    await r.arrayBuffer();
  }

  const next = L.uncachedPaths(images);

  // One request at a time first: per photo, Server-Timing of `w=800&fmt=webp&q=80` without
  // queueing or overlap, and the CPU (from /proc) of exactly these renders. (The load below
  // never asks for q=80 at w=800, so these stay uncached for it too.)
  const sequential = [];
  const seqCpu0 = L.cpuSnapshot();
  for (const image of images) {
    const path = `/i/${image.id}?w=800&fmt=webp&q=80`;
    const r = await fetch(base + path);
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    sequential.push({ image, timing: L.serverTiming(r.headers.get("server-timing")) });
  }
  const seqCpu = L.cpuBetween(seqCpu0, L.cpuSnapshot());

  const records = [];
  const c0 = await L.counters(base);
  const cpu0 = L.cpuSnapshot();
  L.progress(`uncached transforms for ${SECONDS} s, ${CONNECTIONS} connections… `);
  const result = await L.cannon({
    url: base,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        setupRequest: (request, context) => {
          const { image, format, path } = next();
          context.image = image;
          context.format = format;
          context.started = performance.now();
          return { ...request, method: "GET", path };
        },
        onResponse: (status, body, context, rawHeaders) => {
          const headers = L.lowerKeys(rawHeaders);
          const timing = L.serverTiming(headers["server-timing"]);
          records.push({
            image: context.image,
            format: context.format,
            status,
            ms: performance.now() - context.started,
            cache: headers["cf-cache-status"],
            timing,
            bytes: body?.length ?? 0,
          });
        },
      },
    ],
  });
  const cpu = L.cpuBetween(cpu0, L.cpuSnapshot());
  const c1 = await L.counters(base);
  L.progress(`${records.length} done\n`);

  const served = result.requests.total;
  const ok = records.filter((r) => r.status === 200);
  const notRendered = ok.filter((r) => r.cache === "HIT" || !r.timing.present).length;
  const errors = result.errors + result.timeouts + result.non2xx;
  const ops = L.opsPer(c0, c1, Math.max(1, served));
  const st = L.stats(ok.map((r) => r.timing.total));
  const comm = Object.entries(cpu.byComm).map(([name, ms]) => `${name} ${(ms / Math.max(1, served)).toFixed(0)}`).join(", ");

  const perPhoto = images.map((image) => {
    const mine = ok.filter((r) => r.image.id === image.id);
    const lat = L.stats(mine.map((r) => r.ms));
    const t = L.stats(mine.map((r) => r.timing.total));
    const decode = L.stats(mine.map((r) => r.timing.steps.decode ?? 0));
    const encode = L.stats(mine.map((r) => r.timing.steps.encode ?? 0));
    const alone = sequential.find((r) => r.image.id === image.id)?.timing;
    return `| ${image.file} | ${image.label} | ${alone ? `${L.fmt(alone.total, 0)} (${L.fmt(alone.steps.decode ?? 0, 0)} / ${L.fmt(alone.steps.encode ?? 0, 0)})` : "n/a"} | ${mine.length} | ${L.fmt(lat.p50, 0)} | ${L.fmt(lat.max, 0)} | ${L.fmt(t.mean, 0)} | ${L.fmt(decode.mean, 0)} | ${L.fmt(encode.mean, 0)} |`;
  });
  const byFormat = ["webp", "jpeg"].map((format) => {
    const mine = ok.filter((r) => r.format === format);
    const t = L.stats(mine.map((r) => r.timing.total));
    return `${format}: ${mine.length} requests, Server-Timing mean ${L.fmt(t.mean, 0)} ms, p50 ${L.fmt(t.p50, 0)} ms`;
  });

  L.writeReport("load-uncached", [
    `# Load: uncached transforms of real photos (mixed sizes)`,
    ``,
    ...L.machineLines("npm run bench:load-uncached (node bench/load/uncached.mjs)"),
    `- ${CONNECTIONS} connections for ${SECONDS} s; every request is a URL the server has never seen (\`/i/<id>?w=<160…1600>&fmt=<webp|jpeg>&q=<85…>\`, cycling through ${images.length} corpus photos of 0.25–20 MP): each one reads the original from R2, decodes, resizes, encodes, stores the rendition in R2 and puts it in the Cache API`,
    L.othersLine(cpu),
    ``,
    `| requests | req/s | p50 ms | p99 ms | errors | rendered (Server-Timing present, no cache hit) | Server-Timing sum ms/req: mean / p50 / p99 | server CPU ms/req (workerd + proxy, from /proc) |`,
    `|---:|---:|---:|---:|---:|---:|---|---:|`,
    `| ${served} | ${L.fmt(served / result.duration, 2)} | ${result.latency.p50} | ${result.latency.p99} | ${errors} | ${ok.length - notRendered} of ${ok.length} | ${L.fmt(st.mean, 0)} / ${L.fmt(st.p50, 0)} / ${L.fmt(st.p99, 0)} | ${L.fmt(cpu.serverMs / Math.max(1, served), 0)} (${comm}) |`,
    ``,
    `Per source photo (latency measured by the client per request; Server-Timing = the pipeline's step times reported by the service):`,
    ``,
    `| photo | size | alone, w=800 WebP: Server-Timing sum ms (decode / encode) | under load: requests | p50 ms | max ms | Server-Timing sum mean ms | decode mean ms | encode mean ms |`,
    `|---|---|---:|---:|---:|---:|---:|---:|---:|`,
    ...perPhoto,
    ``,
    `By output format: ${byFormat.join("; ")}.`,
    ``,
    `One at a time (the "alone" column: \`w=800&fmt=webp&q=80\` of each photo, ${sequential.length} renders before the load): Server-Timing sum mean ${L.fmt(L.stats(sequential.map((r) => r.timing.total)).mean, 0)} ms; server CPU ${L.fmt(seqCpu.serverMs / sequential.length, 0)} ms per render (${Object.entries(seqCpu.byComm).map(([n, ms]) => `${n} ${(ms / sequential.length).toFixed(0)}`).join(", ")}).`,
    ``,
    `Binding calls per uncached transform (bench/load/worker.ts): R2 class B (get) ${L.fmt(ops.r2ClassB, 2)}, R2 class A (put) ${L.fmt(ops.r2ClassA, 2)}, rendition bytes put ${L.fmt(ops.r2BytesPut / 1024, 1)} KiB, Cache API match ${L.fmt(ops.cacheMatch, 2)} / put ${L.fmt(ops.cachePut, 2)}, D1 queries ${L.fmt(ops.d1Queries, 3)} (rows read ${L.fmt(ops.d1RowsRead, 2)}, rows written ${L.fmt(ops.d1RowsWritten, 2)}: the per-image daily rendition cap, one D1 batch per render; the tenant config is remembered 30 s).`,
    ``,
    `How to read: Server-Timing gives each pipeline step's wall time. One request at a time on an idle machine that is close to the CPU time a render is billed for; under load it also counts time spent waiting (other requests interleaved at the pipeline's awaits, other processes holding the cores), so it can exceed the CPU. The /proc figure is CPU time of the whole wrangler dev process group (workerd incl. the local R2/D1/Cache simulators, and the Node proxy): an upper bound of the Worker's CPU per render. Output formats: WebP and JPEG only; AVIF encoding (what \`fmt=auto\` gives browsers that accept it) costs several times more and is not in this mix.`,
    ...(errors > 0 || notRendered > 0 ? [``, `**${errors} errors, ${notRendered} responses not rendered.**`] : []),
  ]);
  if (errors > 0 || notRendered > 0) process.exitCode = 1;
} finally {
  await L.stopAll();
}
