import { createMessageBatch, getQueueResult, createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { limitsFrom } from "../../src/config";
import { createDb } from "../../src/db/client";
import worker from "../../src/index";
import { processUploadedImages } from "../../src/processing/after-upload";
import { sweepOrphans } from "../../src/storage/sweeper";
import { countTransform, flushUsage, pendingUsage } from "../../src/usage/counters";
import { ingestMultipart } from "../../src/upload/bulk";
import { failingQueue, faultyBucket, faultyD1 } from "./faults";
import { loadCorpus } from "./fixtures";
import { call, createTenant, form } from "./helpers";

let tenant: { tenantId: string; key: string };
let files: Uint8Array[];

beforeAll(async () => {
  tenant = await createTenant("faults");
  files = await Promise.all(
    ["pngsuite-basn0g01.png", "pngsuite-basn0g02.png", "pngsuite-basn0g04.png", "pngsuite-basn0g08.png", "pngsuite-basn2c08.png", "pngsuite-basn3p08.png"].map(
      (name) => loadCorpus(name),
    ),
  );
});

function multipart(count: number, offset = 0): Request {
  const entries = files.slice(offset, offset + count).map((bytes, i) => ({ name: "file", bytes, filename: `f${offset + i}.png` }));
  return new Request("http://x/", { method: "POST", body: form(entries) });
}

async function tenantObjects(): Promise<string[]> {
  return (await env.IMAGES.list({ prefix: `${tenant.tenantId}/` })).objects.map((object) => object.key).filter((key) => key.endsWith("/original"));
}

async function tenantRows(): Promise<string[]> {
  const rows = await env.DB.prepare("select id from images where tenant_id = ?").bind(tenant.tenantId).all<{ id: string }>();
  return rows.results.map((row) => row.id);
}

async function expectStorageAgrees(): Promise<void> {
  const objects = (await tenantObjects()).map((key) => key.split("/")[1]).sort();
  expect(objects).toEqual((await tenantRows()).sort());
}

describe("fault injection", () => {
  it("a bulk upload with R2 and D1 failures in the middle answers per file and leaves storage in agreement", async () => {
    let puts = 0;
    const bucket = faultyBucket(env.IMAGES, (operation) => (operation === "put" && ++puts === 2 ? "fail" : undefined));
    let inserts = 0;
    const db = createDb(faultyD1(env.DB, (sql) => sql.startsWith("insert into \"images\"") && ++inserts === 3));
    const request = multipart(5);
    const outcome = await ingestMultipart(
      { db, bucket, limits: limitsFrom(env) },
      tenant.tenantId,
      request.body!,
      request.headers.get("content-type")!,
      "http://x",
    );
    // put #2 failed (file 1); insert #3 failed (file 3, the third file whose object was stored).
    expect(outcome.images.map((image) => image.filename)).toEqual(["f0.png", "f2.png", "f4.png"]);
    expect(outcome.errors.map((error) => [error.index, error.status, error.type.split("/").pop()])).toEqual([
      [1, 503, "storage-failure"],
      [3, 503, "storage-failure"],
    ]);
    await expectStorageAgrees();
  });

  it("a multipart R2 upload failing midway leaves no parts or object behind", async () => {
    const big = new Uint8Array(files[0]!.byteLength + 11 * 1024 * 1024);
    big.set(files[0]!);
    // A PNG with 11 MiB after IEND: accepted as a trailer, stored in three parts.
    const bucket = faultyBucket(env.IMAGES, (operation) => (operation === "multipart.uploadPart" ? "fail" : undefined));
    const request = new Request("http://x/", { method: "POST", body: form([{ name: "file", bytes: big, filename: "big.png" }]) });
    const outcome = await ingestMultipart({ db: createDb(env.DB), bucket, limits: limitsFrom(env) }, tenant.tenantId, request.body!, request.headers.get("content-type")!, "http://x");
    expect(outcome.images).toEqual([]);
    expect(outcome.errors[0]).toMatchObject({ index: 0, status: 503 });
    await expectStorageAgrees();
  });

  it("an orphan left by a failed cleanup is removed by the sweeper; rows keep their objects", async () => {
    // The D1 insert fails, and so does the cleanup delete: an orphan object remains.
    const bucket = faultyBucket(env.IMAGES, (operation) => (operation === "delete" ? "fail" : undefined));
    const db = createDb(faultyD1(env.DB, (sql) => sql.startsWith("insert into \"images\"")));
    const request = multipart(1, 5);
    const outcome = await ingestMultipart({ db, bucket, limits: limitsFrom(env) }, tenant.tenantId, request.body!, request.headers.get("content-type")!, "http://x");
    expect(outcome.errors).toHaveLength(1);
    expect((await tenantObjects()).length).toBe((await tenantRows()).length + 1);

    const young = await sweepOrphans(createDb(env.DB), env.IMAGES); // too recent: maybe an upload in flight
    expect(young.removed).toEqual([]);
    const swept = await sweepOrphans(createDb(env.DB), env.IMAGES, 0);
    expect(swept.removed).toHaveLength(1);
    await expectStorageAgrees();
    for (const id of await tenantRows()) expect((await call(`/i/${id}`)).status).toBe(200);
  });

  it("an async upload whose queue sends fail reports its job as failed, with the originals stored", async () => {
    const request = multipart(1, 0);
    const db = createDb(env.DB);
    const deps = { db, bucket: env.IMAGES, limits: limitsFrom(env) };
    const outcome = await ingestMultipart(deps, tenant.tenantId, request.body!, request.headers.get("content-type")!, "http://x");
    const processed = await processUploadedImages({ ...deps, queue: failingQueue() }, tenant.tenantId, outcome.images, { variants: { t: "w=8" }, mode: "async" }, "http://x");
    expect(processed.job?.state).toBe("failed");
    expect(processed.job?.items?.[0]?.error).toMatch(/could not be queued/);
    expect(processed.images).toHaveLength(1);
  });

  it("a failed variant write is retried, then recorded as ready; nothing is duplicated", async () => {
    const upload = await call("/v1/images", {
      method: "POST",
      key: tenant.key,
      body: form([{ name: "file", bytes: await loadCorpus("photo-small-aero1.jpg"), filename: "v.jpg" }]),
    });
    const imageId = (await upload.json<{ images: Array<{ id: string }> }>()).images[0]!.id;
    const created = await call("/v1/jobs", {
      method: "POST",
      key: tenant.key,
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ imageIds: [imageId], variants: { small: "w=50" } }),
    });
    const jobId = (await created.json<{ id: string }>()).id;
    // Let the real consumer finish the job first, then redo it by hand with failures injected.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await env.DB.prepare("update job_items set state = 'queued' where job_id = ?").bind(jobId).run();
    await env.DB.prepare("update jobs set state = 'running' where id = ?").bind(jobId).run();
    await env.DB.prepare("delete from variants where image_id = ?").bind(imageId).run();
    for (const object of (await env.IMAGES.list({ prefix: `${tenant.tenantId}/${imageId}/t/` })).objects) await env.IMAGES.delete(object.key);

    const failingEnv = { ...env, IMAGES: faultyBucket(env.IMAGES, (operation, key) => (operation === "put" && key.includes("/t/") ? "fail" : undefined)) };
    const first = createMessageBatch("edge-images-jobs", [{ id: "a", timestamp: new Date(), attempts: 1, body: { kind: "process", jobId, position: 0 } }]);
    await worker.queue(first, failingEnv);
    const firstResult = await getQueueResult(first, createExecutionContext());
    expect(firstResult.retryMessages.map((message) => message.msgId)).toEqual(["a"]);
    const noted = await env.DB.prepare("select state, error from job_items where job_id = ?").bind(jobId).first<{ state: string; error: string }>();
    expect(noted).toMatchObject({ state: "running" });
    expect(noted?.error).toMatch(/injected R2 put failure/);

    const second = createMessageBatch("edge-images-jobs", [{ id: "b", timestamp: new Date(), attempts: 2, body: { kind: "process", jobId, position: 0 } }]);
    await worker.queue(second, env);
    expect((await getQueueResult(second, createExecutionContext())).explicitAcks).toEqual(["b"]);
    const variants = await env.DB.prepare("select state from variants where image_id = ?").bind(imageId).all<{ state: string }>();
    expect(variants.results).toEqual([{ state: "ready" }]);
    expect((await env.IMAGES.list({ prefix: `${tenant.tenantId}/${imageId}/t/` })).objects).toHaveLength(1);
    const job = await (await call(`/v1/jobs/${jobId}`, { key: tenant.key })).json<{ state: string }>();
    expect(job.state).toBe("succeeded");
  });
});

describe("usage counters", () => {
  async function stored(tenantId: string): Promise<{ served: number; rendered: number } | null> {
    return env.DB.prepare("select transforms_served as served, transforms_rendered as rendered from usage_daily where tenant_id = ?").bind(tenantId).first();
  }

  it("a flush whose D1 write fails keeps the counts, and the next flush writes them", async () => {
    const tenantId = "t_usage_fault";
    for (let i = 0; i < 5; i++) countTransform(tenantId, i < 2);
    const broken = createDb(faultyD1(env.DB, (sql) => sql.includes("usage_daily")));
    expect(await flushUsage(broken, Date.now(), true)).toBe(false);
    expect(await stored(tenantId)).toBeNull();
    expect(pendingUsage(tenantId)).toEqual({ served: 5, rendered: 2 });

    countTransform(tenantId, true); // arrives between the failed flush and the next
    expect(await flushUsage(createDb(env.DB), Date.now(), true)).toBe(true);
    expect(await stored(tenantId)).toEqual({ served: 6, rendered: 3 });
    expect(pendingUsage(tenantId)).toEqual({ served: 0, rendered: 0 });
  });

  it("overlapping flushes write each count once", async () => {
    const tenantId = "t_usage_overlap";
    const db = createDb(env.DB);
    for (let i = 0; i < 4; i++) countTransform(tenantId, false);
    const first = flushUsage(db, Date.now(), true);
    for (let i = 0; i < 3; i++) countTransform(tenantId, true); // while the first write is in flight
    const second = flushUsage(db, Date.now(), true);
    const third = flushUsage(db, Date.now(), true);
    await Promise.all([first, second, third]);
    expect(await stored(tenantId)).toEqual({ served: 7, rendered: 3 });
    expect(pendingUsage(tenantId)).toEqual({ served: 0, rendered: 0 });
  });
});
