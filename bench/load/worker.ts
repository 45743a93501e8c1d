/**
 * Load-test entry: the real Worker (../../src/index.ts) unchanged, with its bindings wrapped to
 * count what a request costs on Cloudflare's meters, and a few /__bench/ routes for the load
 * scripts (bench/load/*.mjs). The counting is a few integer additions per call.
 *
 *   GET  /__bench/counters        -> the counters below (cumulative since start)
 *   POST /__bench/meter?on=1|0    -> exact D1 metering: a SELECT that drizzle runs with raw()
 *                                    (which returns no meta) is run once more with all() to
 *                                    read meta.rows_read. Only for short sampling phases.
 *   POST /__bench/cache-bypass?on=1|0 -> Cache API lookups miss (a location without the entry), so
 *                                    transforms are served from their stored R2 rendition
 *   GET  /__bench/count?tenant=ID -> images rows in D1 and `original` objects in R2 of a tenant
 *   GET  /health                  -> "ok"
 *
 * R2 operation classes follow Cloudflare's R2 pricing page: class A = put, list,
 * createMultipartUpload, uploadPart, complete (and copy); class B = get, head; delete is free.
 */
import worker from "../../src/index";

interface Counters {
  d1Queries: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  /** meta.size_after of the latest D1 result: the database size in bytes. */
  d1SizeAfter: number;
  /** Rows returned by writes (INSERT/UPDATE/DELETE … RETURNING) run through raw(), which gives no meta. */
  d1RawWriteRowsReturned: number;
  /** raw() SELECTs whose rows_read was not metered (meter off): their rows returned are added here. */
  d1RawRowsReturnedUnmetered: number;
  d1RawUnmetered: number;
  r2ClassA: number;
  r2ClassB: number;
  r2Deletes: number;
  r2BytesPut: number;
  r2Ops: Record<string, number>;
  queueSent: number;
  queueDelivered: number;
  cacheMatch: number;
  cacheHit: number;
  cachePut: number;
  cacheWrapped: boolean;
  requests: number;
}

const counters: Counters = {
  d1Queries: 0,
  d1RowsRead: 0,
  d1RowsWritten: 0,
  d1SizeAfter: 0,
  d1RawWriteRowsReturned: 0,
  d1RawRowsReturnedUnmetered: 0,
  d1RawUnmetered: 0,
  r2ClassA: 0,
  r2ClassB: 0,
  r2Deletes: 0,
  r2BytesPut: 0,
  r2Ops: {},
  queueSent: 0,
  queueDelivered: 0,
  cacheMatch: 0,
  cacheHit: 0,
  cachePut: 0,
  cacheWrapped: false,
  requests: 0,
};
let meterExactly = false;
/** When on, Cache API lookups miss (as in a location whose cache lacks the entry): the R2 rendition path. */
let cacheBypass = false;

function addMeta(meta: { rows_read?: number; rows_written?: number; size_after?: number } | undefined): void {
  if (typeof meta?.size_after === "number" && meta.size_after > 0) counters.d1SizeAfter = meta.size_after;
  counters.d1RowsRead += meta?.rows_read ?? 0;
  counters.d1RowsWritten += meta?.rows_written ?? 0;
}

// ---------------------------------------------------------------------------------------------
// D1

const REAL = Symbol("real statement");
type Wrapped = D1PreparedStatement & { [REAL]: D1PreparedStatement };

function wrapStatement(real: D1PreparedStatement, sql: string): Wrapped {
  const wrapped = {
    [REAL]: real,
    bind: (...values: unknown[]) => wrapStatement(real.bind(...values), sql),
    first: async (column?: string) => {
      counters.d1Queries++;
      const result = await real.all();
      addMeta(result.meta);
      const row = result.results[0] as Record<string, unknown> | undefined;
      if (row === undefined) return null;
      return column === undefined ? row : row[column];
    },
    all: async () => {
      counters.d1Queries++;
      const result = await real.all();
      addMeta(result.meta);
      return result;
    },
    run: async () => {
      counters.d1Queries++;
      const result = await real.run();
      addMeta(result.meta);
      return result;
    },
    raw: async (options?: { columnNames?: boolean }) => {
      counters.d1Queries++;
      const rows = options?.columnNames ? await real.raw({ columnNames: true }) : await real.raw();
      const returned = Math.max(0, rows.length - (options?.columnNames ? 1 : 0));
      if (!/^\s*select\b/i.test(sql)) {
        // A write with RETURNING through raw(): no meta; each row returned is a row written.
        counters.d1RawWriteRowsReturned += returned;
      } else if (meterExactly) {
        addMeta((await real.all()).meta);
      } else {
        counters.d1RawUnmetered++;
        counters.d1RawRowsReturnedUnmetered += returned;
      }
      return rows;
    },
  };
  return wrapped as unknown as Wrapped;
}

function wrapD1(db: D1Database): D1Database {
  return new Proxy(db, {
    get(target, property) {
      if (property === "prepare") return (sql: string) => wrapStatement(target.prepare(sql), sql);
      if (property === "batch") {
        return async (statements: Wrapped[]) => {
          counters.d1Queries += statements.length;
          const results = await target.batch(statements.map((statement) => statement[REAL] ?? statement));
          for (const result of results) addMeta(result.meta);
          return results;
        };
      }
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

// ---------------------------------------------------------------------------------------------
// R2

function r2(op: string, cls: "A" | "B" | "free"): void {
  counters.r2Ops[op] = (counters.r2Ops[op] ?? 0) + 1;
  if (cls === "A") counters.r2ClassA++;
  else if (cls === "B") counters.r2ClassB++;
  else counters.r2Deletes++;
}

function wrapUpload(upload: R2MultipartUpload): R2MultipartUpload {
  return new Proxy(upload, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const fn = value.bind(target) as (...args: unknown[]) => unknown;
      if (property === "uploadPart" || property === "complete") {
        return (...args: unknown[]) => {
          r2(String(property), "A");
          return fn(...args);
        };
      }
      return fn;
    },
  });
}

const R2_CLASSES: Record<string, "A" | "B" | "free"> = {
  put: "A",
  list: "A",
  createMultipartUpload: "A",
  get: "B",
  head: "B",
  delete: "free",
};

function wrapR2(bucket: R2Bucket): R2Bucket {
  return new Proxy(bucket, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const fn = value.bind(target) as (...args: unknown[]) => unknown;
      const cls = R2_CLASSES[String(property)];
      if (cls === undefined) {
        if (property === "resumeMultipartUpload") return (...args: unknown[]) => wrapUpload(fn(...args) as R2MultipartUpload);
        return fn;
      }
      return async (...args: unknown[]) => {
        r2(String(property), cls);
        const result = await fn(...args);
        if (property === "put" && result && typeof result === "object" && "size" in result) counters.r2BytesPut += Number(result.size);
        if (property === "createMultipartUpload") return wrapUpload(result as R2MultipartUpload);
        return result;
      };
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Queues and the Cache API

function wrapQueue(queue: Queue): Queue {
  return new Proxy(queue, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const fn = value.bind(target) as (...args: unknown[]) => unknown;
      if (property === "send") {
        return (...args: unknown[]) => {
          counters.queueSent++;
          return fn(...args);
        };
      }
      if (property === "sendBatch") {
        return (messages: unknown[], ...rest: unknown[]) => {
          counters.queueSent += messages.length;
          return fn(messages, ...rest);
        };
      }
      return fn;
    },
  });
}

function wrapCache(): void {
  if (counters.cacheWrapped) return;
  const cache = caches.default;
  const match = cache.match.bind(cache);
  const put = cache.put.bind(cache);
  try {
    Object.defineProperty(cache, "match", {
      configurable: true,
      value: async (...args: Parameters<Cache["match"]>) => {
        counters.cacheMatch++;
        if (cacheBypass) return undefined;
        const response = await match(...args);
        if (response) counters.cacheHit++;
        return response;
      },
    });
    Object.defineProperty(cache, "put", {
      configurable: true,
      value: (...args: Parameters<Cache["put"]>) => {
        counters.cachePut++;
        return put(...args);
      },
    });
    // Only counted when caches.default hands out the same object every time.
    counters.cacheWrapped = caches.default.match !== match;
  } catch {
    counters.cacheWrapped = false;
  }
}

function wrapEnv(env: Env): Env {
  return { ...env, DB: wrapD1(env.DB), IMAGES: wrapR2(env.IMAGES), JOBS: wrapQueue(env.JOBS) };
}

// ---------------------------------------------------------------------------------------------

async function benchRoute(request: Request, env: Env, url: URL): Promise<Response> {
  if (url.pathname === "/__bench/counters") return Response.json(counters);
  if (url.pathname === "/__bench/meter" && request.method === "POST") {
    meterExactly = url.searchParams.get("on") === "1";
    return Response.json({ meterExactly });
  }
  if (url.pathname === "/__bench/cache-bypass" && request.method === "POST") {
    cacheBypass = url.searchParams.get("on") === "1";
    return Response.json({ cacheBypass });
  }
  if (url.pathname === "/__bench/count") {
    const tenant = url.searchParams.get("tenant") ?? "";
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM images WHERE tenant_id = ?").bind(tenant).first<{ n: number }>();
    let r2Originals = 0;
    let r2Objects = 0;
    let r2Bytes = 0;
    let cursor: string | undefined;
    do {
      const page = await env.IMAGES.list({ prefix: `${tenant}/`, cursor, limit: 1000 });
      for (const object of page.objects) {
        r2Objects++;
        if (object.key.endsWith("/original")) {
          r2Originals++;
          r2Bytes += object.size;
        }
      }
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return Response.json({ d1Images: row?.n ?? 0, r2Originals, r2Objects, r2OriginalBytes: r2Bytes });
  }
  return new Response("not found", { status: 404 });
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    wrapCache();
    const url = new URL(request.url);
    if (url.pathname.startsWith("/__bench/")) return benchRoute(request, env, url);
    if (url.pathname === "/health") return new Response("ok");
    counters.requests++;
    return worker.fetch(request, wrapEnv(env), ctx);
  },
  async queue(batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext): Promise<void> {
    counters.queueDelivered += batch.messages.length;
    const handler = worker.queue as unknown as (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => Promise<void>;
    return handler(batch, wrapEnv(env), ctx);
  },
  async scheduled(controller: ScheduledController, env: Env, ctx: ExecutionContext): Promise<void> {
    const handler = (worker as { scheduled?: (c: ScheduledController, e: Env, x: ExecutionContext) => Promise<void> }).scheduled;
    if (handler) await handler(controller, wrapEnv(env), ctx);
  },
} satisfies ExportedHandler<Env>;
