// `node bench/load/capacity.mjs`: the capacity and cost model of docs/capacity.md, computed from
// the per-request figures measured by the load scripts (bench/results/load-*.md; copy new figures
// into MEASURED after a rerun) and Cloudflare's published prices (PRICES, sources in
// docs/capacity.md). Prints markdown tables. Nothing here is measured: it is arithmetic.

/** Per request, by path. Sources: bench/results/load-cached.md, load-uncached.md, load-upload.md. */
export const MEASURED = {
  // CPU ms per request. "upper" = the whole wrangler dev process group (workerd, its Node proxy
  // and the local R2/D1/Cache simulators) from /proc, per request; "worker" = the same minus
  // the static-asset path's CPU per request in the same run (6.7 ms: HTTP, proxy and runtime
  // work every request pays in wrangler dev and that Cloudflare does not bill to the Worker).
  cpuMs: {
    cacheHit: { upper: 12.6, worker: 5.9 }, // load-cached: 12.57 vs static 6.69
    r2Rendition: { upper: 17.2, worker: 10.5 }, // load-cached: 17.15
    render: { upper: 172, worker: 165 }, // load-uncached: 172 under load (w 160-1600, WebP/JPEG)
    upload: { upper: 143, worker: 130 }, // load-upload: 143 per file = 2 requests (CLI check + PUT), minus 2 x 6.7
  },
  // Binding operations per request (bench/load/worker.ts counters). D1 rows written as D1 bills
  // them: the measured rows plus one per index entry a write touches (images: 3 indexes on the
  // insert, none on the placeholder update; rendition_days: its primary-key index, and each row
  // is deleted again on a later day).
  ops: {
    cacheHit: { r2A: 0, r2B: 0, d1Read: 0, d1Write: 0 },
    r2Rendition: { r2A: 0, r2B: 1.04, d1Read: 0, d1Write: 0 },
    render: { r2A: 1.02, r2B: 2.04, d1Read: 11.2, d1Write: 4.1 }, // measured 2.04 rows written
    upload: { r2A: 1, r2B: 1, d1Read: 5.2, d1Write: 5 }, // measured 2 rows written (insert + placeholder)
  },
  /** Mean bytes of an original in the upload run, and of a rendition in the uncached run. */
  originalBytes: 928_000,
  renditionBytes: 50_600,
  /** D1 bytes per image (row + indexes), load-upload: meta.size_after growth / files. */
  d1BytesPerImage: 496,
};

/** Workload and assumptions (docs/capacity.md explains each). */
export const WORKLOAD = {
  uploadsPerDay: 100_000,
  viewsPerDay: 10_000_000,
  peakFactor: 10,
  /** Distinct renditions rendered per uploaded image (thumb, small, large x accept classes...). */
  rendersPerUpload: 4,
  /** Of the views that are not renders: share served by the Cache API of the location. */
  cacheHitShareOfRest: 0.9,
  /** Requests to the API per upload besides the PUT (the CLI's GET ?sha256= check). */
  extraRequestsPerUpload: 1,
  /** Log events per Worker request: the invocation log + one access-log line. */
  logEventsPerRequest: 2,
  daysPerMonth: 30,
};

export const PRICES = {
  workersPaidBase: 5,
  requestsIncluded: 10e6,
  requestsPerM: 0.3,
  cpuMsIncluded: 30e6,
  cpuPerMMs: 0.02,
  r2StorageGbMonth: 0.015,
  r2StorageIncludedGb: 10,
  r2APerM: 4.5,
  r2AIncluded: 1e6,
  r2BPerM: 0.36,
  r2BIncluded: 10e6,
  d1ReadIncluded: 25e9,
  d1ReadPerM: 0.001,
  d1WriteIncluded: 50e6,
  d1WritePerM: 1.0,
  d1StorageIncludedGb: 5,
  d1StorageGbMonth: 0.75,
  queueOpsIncluded: 1e6,
  queueOpsPerM: 0.4,
  logsIncluded: 20e6,
  logsPerM: 0.6,
};

export function model(m = MEASURED, w = WORKLOAD, p = PRICES, cpuKind = "worker") {
  const renders = w.uploadsPerDay * w.rendersPerUpload;
  const rest = w.viewsPerDay - renders;
  const hits = rest * w.cacheHitShareOfRest;
  const r2Views = rest - hits;
  const perDay = {
    cacheHit: hits,
    r2Rendition: r2Views,
    render: renders,
    upload: w.uploadsPerDay,
  };
  const requests = hits + r2Views + renders + w.uploadsPerDay * (1 + w.extraRequestsPerUpload);
  const sum = (f) => Object.entries(perDay).reduce((s, [path, n]) => s + n * f(path), 0);
  const day = {
    requests,
    cpuMs: sum((path) => m.cpuMs[path][cpuKind]),
    r2A: sum((path) => m.ops[path].r2A),
    r2B: sum((path) => m.ops[path].r2B),
    d1Read: sum((path) => m.ops[path].d1Read),
    d1Write: sum((path) => m.ops[path].d1Write),
    logEvents: requests * w.logEventsPerRequest,
    newOriginalGb: (w.uploadsPerDay * m.originalBytes) / 1e9,
    newRenditionGb: (renders * m.renditionBytes) / 1e9,
    newD1Gb: (w.uploadsPerDay * m.d1BytesPerImage) / 1e9,
  };
  const month = Object.fromEntries(Object.entries(day).map(([k, v]) => [k, v * w.daysPerMonth]));
  const over = (used, included, perM) => (Math.max(0, used - included) / 1e6) * perM;
  // Storage: the average over the first month of a store that grows linearly from zero, and
  // the month-12 figure (12 months of uploads kept).
  const storedGb = (months) => (month.newOriginalGb + month.newRenditionGb) * months;
  const cost = {
    "Workers Paid plan": p.workersPaidBase,
    "Workers requests": over(month.requests, p.requestsIncluded, p.requestsPerM),
    "Workers CPU time": over(month.cpuMs, p.cpuMsIncluded, p.cpuPerMMs),
    "Workers Logs (invocation + access log per request)": over(month.logEvents, p.logsIncluded, p.logsPerM),
    "R2 class A": over(month.r2A, p.r2AIncluded, p.r2APerM),
    "R2 class B": over(month.r2B, p.r2BIncluded, p.r2BPerM),
    "D1 rows read": over(month.d1Read, p.d1ReadIncluded, p.d1ReadPerM),
    "D1 rows written": over(month.d1Write, p.d1WriteIncluded, p.d1WritePerM),
    "Queues": 0,
  };
  const storage = (months) => ({
    r2: Math.max(0, storedGb(months) - p.r2StorageIncludedGb) * p.r2StorageGbMonth,
    d1: Math.max(0, month.newD1Gb * months - p.d1StorageIncludedGb) * p.d1StorageGbMonth,
  });
  return { perDay, day, month, cost, storage, storedGb };
}

const isMain = import.meta.url === `file://${process.argv[1]}`;
if (isMain) {
  const w = WORKLOAD;
  const r = model();
  const f = (n, d = 0) => n.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  const avg = (perDay) => perDay / 86_400;
  console.log(`| path | per day | avg req/s | peak req/s (×${w.peakFactor}) |`);
  console.log(`|---|---:|---:|---:|`);
  for (const [path, n] of Object.entries(r.perDay)) console.log(`| ${path} | ${f(n)} | ${f(avg(n), 1)} | ${f(avg(n) * w.peakFactor, 1)} |`);
  console.log(`| all Worker requests | ${f(r.day.requests)} | ${f(avg(r.day.requests), 1)} | ${f(avg(r.day.requests) * w.peakFactor, 1)} |`);
  console.log("");
  console.log(`| quantity | per day | per month (${w.daysPerMonth} d) |`);
  console.log(`|---|---:|---:|`);
  for (const [k, v] of Object.entries(r.day)) console.log(`| ${k} | ${f(v, v < 100 ? 1 : 0)} | ${f(r.month[k], r.month[k] < 100 ? 1 : 0)} |`);
  console.log("");
  console.log(`| line | USD / month |`);
  console.log(`|---|---:|`);
  let total = 0;
  for (const [k, v] of Object.entries(r.cost)) {
    total += v;
    console.log(`| ${k} | ${f(v, 2)} |`);
  }
  const s1 = r.storage(0.5);
  const s12 = r.storage(11.5);
  console.log(`| R2 storage, month 1 (avg ${f(r.storedGb(0.5))} GB) | ${f(s1.r2, 2)} |`);
  console.log(`| D1 storage, month 1 | ${f(s1.d1, 2)} |`);
  console.log(`| **total, month 1** | **${f(total + s1.r2 + s1.d1, 2)}** |`);
  console.log(`| R2 storage, month 12 (avg ${f(r.storedGb(11.5))} GB) | ${f(s12.r2, 2)} |`);
  console.log(`| D1 storage, month 12 | ${f(s12.d1, 2)} |`);
  console.log(`| **total, month 12** | **${f(total + s12.r2 + s12.d1, 2)}** |`);
  const peakCores = (r.day.cpuMs / 86_400 / 1000) * w.peakFactor;
  console.log(`\nCPU busy at the ${w.peakFactor}× peak: ${f(peakCores, 1)} cores' worth (${f(r.day.cpuMs / 86_400 / 1000, 2)} on average), spread by Cloudflare over its machines.`);
  const upper = model(MEASURED, WORKLOAD, PRICES, "upper");
  console.log(`\nCPU with the upper-bound figures: ${f(upper.month.cpuMs / 1e6)} M ms/month -> $${f(upper.cost["Workers CPU time"], 2)}`);
}
