// `npm run bench:load-mixed`: 95% cached transform reads, 4% uncached transforms, 1% uploads, for
// LOAD_SECONDS (default 60) with LOAD_CONNECTIONS (default 10) connections, closed loop (each
// connection sends its next request when the previous one is answered). Passes when no request
// fails and D1 and R2 hold exactly the images uploaded.
import * as L from "./lib.mjs";

L.corpusOrExit();
const SECONDS = Number(process.env.LOAD_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 10);
const photos = L.loadPhotos();

const started = Date.now();
L.progress("starting wrangler dev… ");
const base = await L.startServer();
L.progress(`up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
try {
  const { key, tenantId } = await L.createTenant(base);
  const images = await L.seedPhotos(base, key, photos);
  const cachedPaths = images.flatMap((image) => [`/i/${image.id}?w=400&fmt=webp`, `/i/${image.id}?w=200&fmt=jpeg`]);
  L.progress(`warming ${cachedPaths.length} cached transforms… `);
  await L.warmCache(base, cachedPaths);
  L.progress("done\n");

  const rand = L.random(7);
  const nextUncached = L.uncachedPaths(images);
  let uploadsSent = 0;
  let cachedIndex = 0;
  const records = [];
  const c0 = await L.counters(base);
  const cpu0 = L.cpuSnapshot();
  L.progress(`mixed load for ${SECONDS} s, ${CONNECTIONS} connections… `);
  const result = await L.cannon({
    url: base,
    connections: CONNECTIONS,
    duration: SECONDS,
    requests: [
      {
        setupRequest: (request, context) => {
          const r = rand();
          context.started = performance.now();
          if (r < 0.95) {
            context.kind = "cached";
            return { ...request, method: "GET", path: cachedPaths[cachedIndex++ % cachedPaths.length], body: undefined, headers: {} };
          }
          if (r < 0.99) {
            context.kind = "uncached";
            return { ...request, method: "GET", path: nextUncached().path, body: undefined, headers: {} };
          }
          context.kind = "upload";
          const n = uploadsSent++;
          const photo = photos[n % photos.length];
          return {
            ...request,
            method: "PUT",
            path: `/v1/images?filename=mixed-${n}-${photo.file}`,
            headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
            body: L.variant(photo.bytes, `mixed-${started}-${n}`),
          };
        },
        onResponse: (status, body, context, rawHeaders) => {
          const headers = L.lowerKeys(rawHeaders);
          records.push({
            kind: context.kind,
            status,
            ms: performance.now() - context.started,
            hit: headers["cf-cache-status"] === "HIT",
            rendered: headers["cf-cache-status"] !== "HIT" && Boolean(headers["server-timing"]),
            bytes: body?.length ?? 0,
          });
        },
      },
    ],
  });
  const cpu = L.cpuBetween(cpu0, L.cpuSnapshot());
  const c1 = await L.counters(base);
  L.progress(`${records.length} answered\n`);
  await L.sleep(500);
  const count = await L.countStored(base, tenantId);

  const served = result.requests.total;
  const errors = result.errors + result.timeouts + result.non2xx;
  const kinds = ["cached", "uncached", "upload"];
  const expectedStatus = { cached: 200, uncached: 200, upload: 201 };
  const rows = kinds.map((kind) => {
    const mine = records.filter((r) => r.kind === kind);
    const bad = mine.filter((r) => r.status !== expectedStatus[kind]);
    const lat = L.stats(mine.map((r) => r.ms));
    const pathOk = kind === "cached" ? mine.filter((r) => r.hit).length : kind === "uncached" ? mine.filter((r) => r.rendered).length : mine.filter((r) => r.status === 201).length;
    return { kind, n: mine.length, share: mine.length / Math.max(1, records.length), bad: bad.length, statuses: [...new Set(bad.map((r) => r.status))].join(", "), lat, pathOk };
  });
  // Uploads answered 201 are stored; an upload still in flight when the run stopped may be stored
  // too (its answer is not counted). Nothing may be lost: D1 = R2, and between the two bounds.
  const uploaded = rows.find((r) => r.kind === "upload").pathOk;
  const low = images.length + uploaded;
  const high = images.length + uploadsSent;
  const consistent = count.d1Images === count.r2Originals && count.d1Images >= low && count.d1Images <= high;
  const anyBad = errors > 0 || rows.some((r) => r.bad > 0) || !consistent;
  const ops = L.opsPer(c0, c1, Math.max(1, served));
  const what = { cached: "cached read (Cache API hit)", uncached: "uncached transform (rendered)", upload: "upload (PUT, 0.06–4.4 MB)" };

  L.writeReport("load-mixed", [
    `# Load: mixed traffic for ${SECONDS} s (95% cached reads, 4% uncached transforms, 1% uploads)`,
    ``,
    ...L.machineLines("npm run bench:load-mixed (node bench/load/mixed.mjs)"),
    `- ${CONNECTIONS} connections, closed loop, ${SECONDS} s; each request drawn at random (fixed seed): cached = ${cachedPaths.length} warmed URLs (\`w=400&fmt=webp\`, \`w=200&fmt=jpeg\` of ${images.length} real photos); uncached = never-seen \`w×fmt×q\` of the same photos (0.25–20 MP); upload = PUT /v1/images of a distinct copy of a corpus photo`,
    L.othersLine(cpu),
    ``,
    `| requests | req/s | p50 ms | p99 ms | errors (non-2xx + socket + timeouts) | server CPU ms/req | D1 images = R2 originals = seeded + uploaded? |`,
    `|---:|---:|---:|---:|---:|---:|---|`,
    `| ${served} | ${L.fmt(served / result.duration, 1)} | ${result.latency.p50} | ${result.latency.p99} | **${errors}** | ${L.fmt(cpu.serverMs / Math.max(1, served), 1)} | ${consistent ? "yes" : "**no**"} (${count.d1Images} rows, ${count.r2Originals} objects; ${images.length} seeded + ${uploaded} uploads answered 201${high > low ? `, + up to ${high - low} in flight at the stop` : ""}) |`,
    ``,
    `| kind | requests | share | p50 ms | p99 ms | wrong status | served by the intended path |`,
    `|---|---:|---:|---:|---:|---:|---:|`,
    ...rows.map((r) => `| ${what[r.kind]} | ${r.n} | ${L.fmt(100 * r.share, 1)}% | ${L.fmt(r.lat.p50, 0)} | ${L.fmt(r.lat.p99, 0)} | ${r.bad}${r.statuses ? ` (${r.statuses})` : ""} | ${r.pathOk} of ${r.n} |`),
    ``,
    `Per request of the mix (bench/load/worker.ts): Cache API hits ${L.fmt(ops.cacheHit, 3)}, R2 class A ${L.fmt(ops.r2ClassA, 3)}, R2 class B ${L.fmt(ops.r2ClassB, 3)}, D1 queries ${L.fmt(ops.d1Queries, 3)}, D1 rows written ${L.fmt(ops.d1RowsWritten + ops.d1RawWriteRowsReturned, 3)}.`,
    ``,
    `Per-kind latencies are measured by the client from building the request to its answer (autocannon's own p50/p99 above cover all kinds). In a closed loop the slow kinds (renders, uploads) hold connections, so the mix served is what the harness sustained, not an offered rate.`,
    ...(anyBad ? [``, `**Failed: errors or inconsistent storage, see above.**`] : []),
  ]);
  if (anyBad) process.exitCode = 1;
} finally {
  await L.stopAll();
}
