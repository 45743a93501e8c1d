import { applyD1Migrations, createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { createDb } from "../../src/db/client";
import worker from "../../src/index";
import { requeueStaleItems, STALE_AFTER_MS } from "../../src/jobs/requeue";
import { createJob } from "../../src/jobs/store";
import { probeImage } from "../../src/images/probe";
import { deliverWebhook, SIGNATURE_HEADER, signWebhook } from "../../src/jobs/webhook";
import { loadCorpus } from "./fixtures";
import { call, createTenant, expectProblem, form } from "./helpers";

interface JobJson {
  id: string;
  state: string;
  total: number;
  counts: Record<string, number>;
  items: Array<{ position: number; imageId: string | null; state: string; error: string | null; attempts: number }>;
}
interface VariantJson {
  name: string;
  state: string;
  width: number | null;
  height: number | null;
  format: string | null;
  bytes: number | null;
  url: string;
}
interface ImageJson {
  id: string;
  variants?: VariantJson[];
}

let tenant: { tenantId: string; key: string };
let photos: Uint8Array[];

beforeAll(async () => {
  tenant = await createTenant("jobs");
  photos = await Promise.all(["photo-small-aero1.jpg", "photo-small-fruits.jpg", "pngsuite-basn2c08.png"].map((name) => loadCorpus(name)));
});

const VARIANTS = { thumb: "w=100&h=100&fit=cover&fmt=webp", small: "w=200" };

async function uploadWith(fields: Record<string, string>, files: Uint8Array[]): Promise<Response> {
  const entries = [
    ...Object.entries(fields).map(([name, value]) => ({ name, value })),
    ...files.map((bytes, i) => ({ name: "file", bytes, filename: `f${i}.img` })),
  ];
  return call("/v1/images", { method: "POST", key: tenant.key, body: form(entries) });
}

async function waitForJob(id: string, timeoutMs = 20_000): Promise<JobJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await (await call(`/v1/jobs/${id}`, { key: tenant.key })).json<JobJson>();
    if (["succeeded", "failed", "partial"].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function imageSize(path: string): Promise<{ width: number; height: number; format: string; etag: string | null }> {
  const response = await call(path);
  if (response.status !== 200) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  const probe = probeImage(new Uint8Array(await response.arrayBuffer()));
  return { width: probe.width, height: probe.height, format: probe.format, etag: response.headers.get("etag") };
}

describe("variants at upload", () => {
  it("makes them in the request (sync) and serves them by name and by parameters", async () => {
    const response = await uploadWith({ variants: JSON.stringify(VARIANTS) }, [photos[0]!]);
    expect(response.status).toBe(201);
    const body = await response.json<{ images: ImageJson[] }>();
    const image = body.images[0]!;
    const thumb = image.variants!.find((variant) => variant.name === "thumb")!;
    expect(thumb).toMatchObject({ state: "ready", width: 100, height: 100, format: "webp" });
    expect(thumb.bytes).toBeGreaterThan(0);
    expect(image.variants!.find((variant) => variant.name === "small")).toMatchObject({ state: "ready", width: 200, height: 150, format: "jpeg" });

    const byName = await imageSize(`/i/${image.id}/thumb`);
    const byParams = await imageSize(`/i/${image.id}?fmt=webp&fit=cover&h=100&w=100`);
    expect([byName.width, byName.height, byName.format]).toEqual([100, 100, "webp"]);
    expect(byParams.etag).toBe(byName.etag);
    const renditions = await env.IMAGES.list({ prefix: `${tenant.tenantId}/${image.id}/t/` });
    expect(renditions.objects).toHaveLength(2);

    const listed = await (await call(`/v1/images/${image.id}`, { key: tenant.key })).json<ImageJson>();
    expect(listed.variants!.map((variant) => variant.name).sort()).toEqual(["small", "thumb"]);
    await expectProblem(await call(`/i/${image.id}/nosuch`), 404);
  });

  it("refuses bad variants before storing anything", async () => {
    const before = (await env.IMAGES.list({ prefix: `${tenant.tenantId}/` })).objects.length;
    const bad = await uploadWith({ variants: JSON.stringify({ thumb: "w=abc" }) }, [photos[2]!]);
    expect(bad.status).toBe(400);
    const badMode = await uploadWith({ mode: "later" }, [photos[2]!]);
    expect(badMode.status).toBe(400);
    expect((await env.IMAGES.list({ prefix: `${tenant.tenantId}/` })).objects.length).toBe(before);
  });

  it("runs them as a job through the queue (async)", async () => {
    const response = await uploadWith({ variants: JSON.stringify(VARIANTS), mode: "async" }, [photos[1]!, photos[2]!]);
    expect(response.status).toBe(202);
    const body = await response.json<{ job: JobJson; images: ImageJson[] }>();
    expect(response.headers.get("location")).toBe(`/v1/jobs/${body.job.id}`);
    expect(body.job.state).toBe("queued");
    expect(body.images[0]!.variants!.every((variant) => variant.state === "pending")).toBe(true);

    const job = await waitForJob(body.job.id);
    expect(job.state).toBe("succeeded");
    expect(job.counts).toMatchObject({ succeeded: 2, failed: 0 });
    for (const image of body.images) {
      const listed = await (await call(`/v1/images/${image.id}`, { key: tenant.key })).json<ImageJson>();
      expect(listed.variants!.every((variant) => variant.state === "ready")).toBe(true);
    }
    const jobs = await (await call("/v1/jobs", { key: tenant.key })).json<{ jobs: Array<{ id: string }> }>();
    expect(jobs.jobs.map((listedJob) => listedJob.id)).toContain(body.job.id);
  });

  it("goes async by itself when the upload needs many renditions", async () => {
    const many = Object.fromEntries(Array.from({ length: 7 }, (_, i) => [`w${i}`, `w=${20 + i}`]));
    const response = await uploadWith({ variants: JSON.stringify(many) }, [photos[0]!, photos[1]!]);
    expect(response.status).toBe(202); // 2 files x 7 variants = 14 > AUTO_ASYNC_RENDITIONS (12)
    await waitForJob((await response.json<{ job: JobJson }>()).job.id);
  });
});

describe("jobs", () => {
  it("dead-letters a poison image while its siblings succeed, and ignores redelivery", async () => {
    const upload = await uploadWith({}, [photos[0]!, photos[1]!, photos[2]!]);
    const ids = (await upload.json<{ images: ImageJson[] }>()).images.map((image) => image.id);
    // The poison: a row whose original has vanished from storage (processing keeps failing).
    await env.IMAGES.delete(`${tenant.tenantId}/${ids[1]}/original`);

    const created = await call("/v1/jobs", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageIds: ids, variants: { tiny: "w=40" } }),
    });
    expect(created.status).toBe(202);
    const job = await waitForJob((await created.json<JobJson>()).id);
    expect(job.state).toBe("partial");
    expect(job.items.map((item) => item.state)).toEqual(["succeeded", "failed", "succeeded"]);
    expect(job.items[1]!.error).toMatch(/gave up after repeated failures.*missing from storage/);
    expect(job.items[1]!.attempts).toBeGreaterThanOrEqual(2);

    // Redelivering a finished item's message changes nothing.
    const variantsBefore = await env.DB.prepare("select count(*) as n from variants").first<{ n: number }>();
    const objectsBefore = (await env.IMAGES.list({ prefix: `${tenant.tenantId}/` })).objects.length;
    const batch = createMessageBatch("edge-images-jobs", [
      { id: "m1", timestamp: new Date(), attempts: 1, body: { kind: "process", jobId: job.id, position: 0 } },
      { id: "m2", timestamp: new Date(), attempts: 3, body: { kind: "process", jobId: job.id, position: 1 } },
      { id: "m3", timestamp: new Date(), attempts: 1, body: { nonsense: true } },
    ]);
    const ctx = createExecutionContext();
    await worker.queue(batch, env);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks.sort()).toEqual(["m1", "m2", "m3"]);
    expect(result.retryMessages).toEqual([]);
    const after = await (await call(`/v1/jobs/${job.id}`, { key: tenant.key })).json<JobJson>();
    expect(after.items.map((item) => item.state)).toEqual(["succeeded", "failed", "succeeded"]);
    expect((await env.DB.prepare("select count(*) as n from variants").first<{ n: number }>())?.n).toBe(variantsBefore?.n);
    expect((await env.IMAGES.list({ prefix: `${tenant.tenantId}/` })).objects.length).toBe(objectsBefore);
  });

  it("reprocesses existing images with new variants", async () => {
    const upload = await uploadWith({}, [photos[2]!]);
    const id = (await upload.json<{ images: ImageJson[] }>()).images[0]!.id;
    const created = await call("/v1/jobs", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageIds: [id], variants: { square: "w=16&h=16&fit=cover" } }),
    });
    const job = await waitForJob((await created.json<JobJson>()).id);
    expect(job.state).toBe("succeeded");
    expect(await imageSize(`/i/${id}/square`)).toMatchObject({ width: 16, height: 16 });
  });

  it("finishes a job whose queue message was lost, through the hourly re-queue", async () => {
    const upload = await uploadWith({}, [photos[0]!]);
    const imageId = (await upload.json<{ images: ImageJson[] }>()).images[0]!.id;
    const db = createDb(env.DB);
    // As if the Worker stopped after writing the job and before queueing it.
    const { job } = await createJob(db, { tenantId: tenant.tenantId, kind: "reprocess", variants: { lost: "w=30" }, callbackUrl: null, origin: "http://img.test", items: [{ imageId }] }, Date.now() - 2 * STALE_AFTER_MS);
    expect(await requeueStaleItems(db, env.JOBS)).toBeGreaterThanOrEqual(1);
    expect((await waitForJob(job.id)).state).toBe("succeeded");
    expect(await requeueStaleItems(db, env.JOBS)).toBe(0);
  });

  it("validates job requests", async () => {
    const post = (body: unknown) =>
      call("/v1/jobs", { method: "POST", key: tenant.key, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    await expectProblem(await post({}), 400);
    await expectProblem(await post({ imageIds: ["nope"], variants: { a: "w=1" } }), 404);
    await expectProblem(await post({ urls: ["http://example.com/a.jpg"] }), 400);
    await expectProblem(await post({ urls: ["https://127.0.0.1/a.jpg"] }), 400);
    await expectProblem(await post({ urls: ["https://example.com/a.jpg"], callback_url: "https://10.0.0.1/hook" }), 400);
    await expectProblem(await call("/v1/jobs/job_nosuch", { key: tenant.key }), 404);
  });
});

describe("webhook signatures", () => {
  it("signs the body with the tenant secret, verifiable by a receiver", async () => {
    const secret = "ab".repeat(32);
    let received: Request | undefined;
    const receiver = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      received = new Request(input, init);
      return new Response("ok");
    };
    const body = JSON.stringify({ type: "job.finished", job: { id: "job_x" } });
    const result = await deliverWebhook("https://hooks.example/x", secret, body, 1_700_000_000_000, receiver as typeof fetch);
    expect(result.ok).toBe(true);
    const header = received!.headers.get(SIGNATURE_HEADER)!;
    const [t, v1] = header.split(",").map((part) => part.split("=")[1]);
    // The receiver's side: recompute over "<t>.<raw body>".
    const key = await crypto.subtle.importKey("raw", new Uint8Array(32).fill(0xab), { name: "HMAC", hash: "SHA-256" }, false, ["verify"]);
    const mac = Uint8Array.from(v1!.match(/../g)!.map((pair) => parseInt(pair, 16)));
    expect(await crypto.subtle.verify("HMAC", key, mac, new TextEncoder().encode(`${t}.${await received!.text()}`))).toBe(true);
    expect(header).toBe(await signWebhook(secret, body, 1_700_000_000));
  });
});

interface CallbackJson {
  id: string;
  state: string;
  callbackState: string;
  callbackError: string | null;
}

async function waitForCallback(key: string, id: string, timeoutMs = 20_000): Promise<CallbackJson> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = await (await call(`/v1/jobs/${id}`, { key })).json<CallbackJson>();
    if (["delivered", "failed"].includes(job.callbackState)) return job;
    if (Date.now() > deadline) throw new Error(`callback of job ${id} still ${job.callbackState}: ${JSON.stringify(job)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe("webhook secrets and undeliverable callbacks", () => {
  afterEach(() => vi.restoreAllMocks());

  it("gives every tenant made before webhook secrets existed its own secret", async () => {
    const now = Date.now();
    // The old way: a row without webhook_secret (the column was added by migration 0002).
    for (const id of ["t_oldsecret1", "t_oldsecret2"]) {
      await env.DB.prepare("insert into tenants (id, name, signing_secret, require_signed_urls, created_at) values (?, 'old', ?, 0, ?)").bind(id, "cd".repeat(32), now).run();
    }
    const before = await env.DB.prepare("select webhook_secret as s from tenants where id = ?").bind(tenant.tenantId).first<{ s: string }>();
    expect((await env.DB.prepare("select webhook_secret as s from tenants where id = 't_oldsecret1'").first<{ s: string | null }>())?.s).toBeNull();
    // Run the backfill as the migration runner does, as if this database predated it.
    await env.DB.prepare("delete from d1_migrations where name = '0007_webhook_secret_backfill.sql'").run();
    await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
    const rows = (await env.DB.prepare("select id, webhook_secret as s from tenants where id like 't_oldsecret%' order by id").all<{ id: string; s: string | null }>()).results;
    expect(rows.map((row) => row.s)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), expect.stringMatching(/^[0-9a-f]{64}$/)]);
    expect(rows[0]!.s).not.toBe(rows[1]!.s);
    expect((await env.DB.prepare("select count(*) as n from tenants where webhook_secret is null").first<{ n: number }>())?.n).toBe(0);
    // Tenants that had a secret keep it.
    expect((await env.DB.prepare("select webhook_secret as s from tenants where id = ?").bind(tenant.tenantId).first<{ s: string }>())?.s).toBe(before?.s);
  });

  async function jobWithCallback(key: string, callbackUrl: string): Promise<string> {
    const upload = await call("/v1/images", { method: "POST", key, body: form([{ name: "file", bytes: photos[2]!, filename: "cb.png" }]) });
    const imageId = (await upload.json<{ images: ImageJson[] }>()).images[0]!.id;
    const created = await call("/v1/jobs", {
      method: "POST",
      key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageIds: [imageId], variants: { cb: "w=10" }, callback_url: callbackUrl }),
    });
    expect(created.status).toBe(202);
    return (await created.json<JobJson>()).id;
  }

  it("ends the callback as failed, with the reason, when the tenant has no secret", async () => {
    const orphan = await createTenant("no-secret");
    await env.DB.prepare("update tenants set webhook_secret = null where id = ?").bind(orphan.tenantId).run();
    const fetchSpy = vi.spyOn(globalThis, "fetch");
    const id = await jobWithCallback(orphan.key, "https://hooks.example.com/no-secret");
    const job = await waitForCallback(orphan.key, id);
    expect(job).toMatchObject({ state: "succeeded", callbackState: "failed", callbackError: expect.stringMatching(/no webhook secret/) });
    expect(fetchSpy.mock.calls.filter(([input]) => String(input instanceof Request ? input.url : input).includes("hooks.example.com"))).toEqual([]);
  });

  it("ends the callback as failed after its retries, with the last error", async () => {
    const hook = vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url.startsWith("https://hooks.example.com/")) return new Response("down", { status: 503 });
      throw new Error(`unexpected fetch of ${url}`);
    });
    const id = await jobWithCallback(tenant.key, "https://hooks.example.com/down");
    const job = await waitForCallback(tenant.key, id);
    expect(job.callbackState).toBe("failed");
    expect(job.callbackError).toMatch(/gave up after repeated failures \(last: attempt \d+: HTTP 503\)/);
    expect(hook.mock.calls.length).toBeGreaterThanOrEqual(2);
  });

  it("ends the callback as failed at once when its URL may no longer be called", async () => {
    const upload = await uploadWith({}, [photos[0]!]);
    const imageId = (await upload.json<{ images: ImageJson[] }>()).images[0]!.id;
    const db = createDb(env.DB);
    // A URL the route would refuse today (stored before the rule, or by hand).
    const { job } = await createJob(db, { tenantId: tenant.tenantId, kind: "reprocess", variants: { cburl: "w=12" }, callbackUrl: "https://169.254.169.254/hook", origin: "http://img.test", items: [{ imageId }] });
    await env.JOBS.send({ kind: "process", jobId: job.id, position: 0 });
    const finished = await waitForCallback(tenant.key, job.id);
    expect(finished).toMatchObject({ state: "succeeded", callbackState: "failed", callbackError: expect.stringMatching(/callback URL cannot be called.*public host/) });
  });

  it("delivers, then clears the error, when the receiver answers", async () => {
    let calls = 0;
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => (++calls === 1 ? new Response("busy", { status: 500 }) : new Response("ok")));
    const id = await jobWithCallback(tenant.key, "https://hooks.example.com/flaky");
    expect(await waitForCallback(tenant.key, id)).toMatchObject({ callbackState: "delivered", callbackError: null });
    expect(calls).toBe(2);
  });

  it("re-sends a webhook whose message was lost, through the hourly re-queue", async () => {
    vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("ok"));
    const upload = await uploadWith({}, [photos[1]!]);
    const imageId = (await upload.json<{ images: ImageJson[] }>()).images[0]!.id;
    const db = createDb(env.DB);
    const old = Date.now() - 2 * STALE_AFTER_MS;
    const { job } = await createJob(db, { tenantId: tenant.tenantId, kind: "reprocess", variants: { lostcb: "w=14" }, callbackUrl: "https://hooks.example.com/lost", origin: "http://img.test", items: [{ imageId }] }, old);
    // As if the Worker stopped after finishing the job and before queueing its webhook.
    await env.DB.prepare("update job_items set state = 'succeeded' where job_id = ?").bind(job.id).run();
    await env.DB.prepare("update jobs set state = 'succeeded', callback_state = 'pending', finished_at = ? where id = ?").bind(old, job.id).run();
    expect(await requeueStaleItems(db, env.JOBS)).toBe(1);
    expect(await waitForCallback(tenant.key, job.id)).toMatchObject({ callbackState: "delivered", callbackError: null });
  });
});
