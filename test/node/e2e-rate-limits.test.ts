// The rate limits through the real Workers Rate Limiting bindings of a real `wrangler dev`
// (miniflare's emulation: fixed windows aligned to the wall clock), not a stand-in limiter: a
// second `wrangler dev` runs test/wrangler.rate-limits.toml, the service's bindings with low
// limits (3 upload requests, 4 files, 2 renders per 60 s per tenant), and each limit is reached
// from outside: the request over it gets 429, Retry-After (the end of the window) and
// problem+json. test/worker/abuse.test.ts covers what is counted, with counting limiters.
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWranglerDev, type DevServer } from "./wrangler-dev";

const ADMIN_KEY = "rate-limits-admin-key";
const PERIOD_MS = 60_000;
const LIMITS = { uploadRequests: 3, uploadFiles: 4, renders: 2 };

let server: DevServer;
beforeAll(async () => {
  server = await startWranglerDev({ config: "test/wrangler.rate-limits.toml", vars: { ADMIN_API_KEY: ADMIN_KEY } });
});
afterAll(async () => {
  await server?.stop();
});

async function createTenant(name: string): Promise<string> {
  const response = await fetch(`${server.baseUrl}/v1/tenants`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  expect(response.status).toBe(201);
  return ((await response.json()) as { key: { key: string } }).key.key;
}

/** A small PNG, different for each seed (so no upload is a duplicate of another). */
async function png(seed: number): Promise<Uint8Array<ArrayBuffer>> {
  const background = { r: seed % 256, g: (seed * 7) % 256, b: (seed * 13) % 256 };
  return new Uint8Array(await sharp({ create: { width: 16 + (seed % 8), height: 12, channels: 3, background } }).png().toBuffer());
}

function put(key: string, bytes: Uint8Array<ArrayBuffer>): Promise<Response> {
  return fetch(`${server.baseUrl}/v1/images`, { method: "PUT", headers: { authorization: `Bearer ${key}` }, body: bytes });
}

async function uploadedId(response: Response): Promise<string> {
  expect(response.status).toBe(201);
  const id = ((await response.json()) as { images: Array<{ id: string }> }).images[0]?.id;
  if (!id) throw new Error("no image id");
  return id;
}

/** Seconds until the current fixed window ends, as the service computes Retry-After. */
function secondsLeftInWindow(): number {
  return (PERIOD_MS - (Date.now() % PERIOD_MS)) / 1000;
}

/** Runs each case inside one window: waits for the next one when less than `seconds` are left. */
async function windowWithAtLeast(seconds: number): Promise<void> {
  const left = secondsLeftInWindow();
  if (left < seconds) await new Promise((resolve) => setTimeout(resolve, left * 1000 + 500));
}

interface Timed {
  readonly response: Response;
  /** Seconds left in the window before sending and after the answer. */
  readonly before: number;
  readonly after: number;
}

async function sendTimed(send: () => Promise<Response>): Promise<Timed> {
  const before = secondsLeftInWindow();
  const response = await send();
  return { response, before, after: secondsLeftInWindow() };
}

/**
 * Retry-After is the rest of the window at the moment the service answered, in whole seconds
 * rounded up: between the rests before sending and after the answer.
 */
function expectRetryAfterWindowEnd({ response, before, after }: Timed): number {
  const header = response.headers.get("retry-after");
  const retryAfter = Number(header);
  const window = `Retry-After ${header}; the window ended ${after.toFixed(1)}..${before.toFixed(1)} s later`;
  expect(header, window).toMatch(/^\d+$/);
  expect(retryAfter, window).toBeGreaterThanOrEqual(Math.max(1, Math.ceil(after)));
  expect(retryAfter, window).toBeLessThanOrEqual(Math.ceil(before));
  return retryAfter;
}

/** The 429 a limit answers: Retry-After is the rest of the window, the body a rate-limited problem. */
async function expectRateLimited(send: () => Promise<Response>, limit: string): Promise<void> {
  const timed = await sendTimed(send);
  const { response } = timed;
  expect(response.status).toBe(429);
  const retryAfter = expectRetryAfterWindowEnd(timed);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const problem = (await response.json()) as Record<string, unknown>;
  expect(problem).toMatchObject({ type: "https://edge-images.dev/problems/rate-limited", status: 429, limit, retryAfter });
}

describe("rate limits through the bindings of a real wrangler dev (test/wrangler.rate-limits.toml)", () => {
  it(`upload requests: ${LIMITS.uploadRequests} per window per tenant, then 429 with Retry-After and problem+json; other tenants unaffected`, async () => {
    const key = await createTenant("rate-upload-requests");
    const other = await createTenant("rate-upload-requests-other");
    await windowWithAtLeast(20);
    for (let i = 0; i < LIMITS.uploadRequests; i++) expect((await put(key, await png(i))).status, `upload ${i + 1}`).toBe(201);
    const bytes = await png(100);
    await expectRateLimited(() => put(key, bytes), "upload-request");
    const form = new FormData();
    form.append("file", new Blob([await png(101)]), "a.png");
    await expectRateLimited(() => fetch(`${server.baseUrl}/v1/images`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form }), "upload-request");
    expect((await put(other, await png(102))).status).toBe(201);
  });

  it(`uploaded files: ${LIMITS.uploadFiles} per window per tenant; the files of a bulk upload over it get a per-file 429, the answer a 207 with Retry-After`, async () => {
    const key = await createTenant("rate-upload-files");
    await windowWithAtLeast(20);
    const form = new FormData();
    const files = LIMITS.uploadFiles + 2;
    for (let i = 0; i < files; i++) form.append("file", new Blob([await png(200 + i)]), `f${i}.png`);
    const timed = await sendTimed(() => fetch(`${server.baseUrl}/v1/images`, { method: "POST", headers: { authorization: `Bearer ${key}` }, body: form }));
    const { response } = timed;
    expect(response.status).toBe(207);
    expectRetryAfterWindowEnd(timed);
    const body = (await response.json()) as { images: unknown[]; errors: Array<{ index: number; status: number; type: string }> };
    expect(body.images).toHaveLength(LIMITS.uploadFiles);
    expect(body.errors.map((error) => [error.index, error.status, error.type])).toEqual(
      Array.from({ length: files - LIMITS.uploadFiles }, (_, i) => [LIMITS.uploadFiles + i, 429, "https://edge-images.dev/problems/rate-limited"]),
    );
    // The next upload request of the tenant has no file left in the window: a 429 problem.
    const bytes = await png(300);
    const timedNext = await sendTimed(() => put(key, bytes));
    const next = timedNext.response;
    expect(next.status).toBe(429);
    expectRetryAfterWindowEnd(timedNext);
    expect(next.headers.get("content-type")).toBe("application/problem+json");
    expect(await next.json()).toMatchObject({ type: "https://edge-images.dev/problems/rate-limited", status: 429 });
  });

  it(`renders: ${LIMITS.renders} per window per tenant, then 429 with Retry-After and problem+json; cached renditions still served`, async () => {
    const key = await createTenant("rate-renders");
    const id = await uploadedId(await put(key, await png(400)));
    await windowWithAtLeast(20);
    for (let w = 1; w <= LIMITS.renders; w++) {
      const rendered = await fetch(`${server.baseUrl}/i/${id}?w=${w}&fmt=png`);
      expect(rendered.status, `w=${w}`).toBe(200);
      await rendered.body?.cancel();
    }
    await expectRateLimited(() => fetch(`${server.baseUrl}/i/${id}?w=${LIMITS.renders + 1}&fmt=png`), "render");
    const cached = await fetch(`${server.baseUrl}/i/${id}?w=1&fmt=png`);
    expect(cached.status).toBe(200);
    await cached.body?.cancel();
  });
});
