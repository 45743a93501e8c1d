import { Hono, type Context } from "hono";
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { enforceRateLimit } from "../abuse/rate-limit";
import { tenantOf } from "../auth/middleware";
import { limitsFrom } from "../config";
import { images } from "../db/schema";
import type { AppEnv } from "../env";
import { invalidParameter, ProblemError } from "../errors";
import { readJson } from "../http/json";
import { docs } from "../http/openapi";
import { checkOutboundUrl } from "../jobs/outbound";
import { createJob, findJob, jobItemsOf, listJobs } from "../jobs/store";
import { countStates, jobView } from "../jobs/view";
import { enqueueItems } from "../processing/after-upload";
import { parseVariantSpec } from "../processing/variants";
import { tenantConfig } from "../tenants/config";
import { renderLimitsFrom } from "../transform/render";

export const jobRoutes = new Hono<AppEnv>();

export const MAX_JOB_IMAGES = 10_000;
export const MAX_JOB_URLS = 1_000;

const createJobBody = z
  .object({
    /** Existing images to (re)process with `variants`. */
    imageIds: z.array(z.string().max(64)).max(MAX_JOB_IMAGES).optional(),
    /** Process every image of the tenant (up to MAX_JOB_IMAGES, newest first). */
    all: z.boolean().optional(),
    /** https URLs to ingest (then process with `variants`, if any). */
    urls: z.array(z.string().max(2048)).max(MAX_JOB_URLS).optional(),
    variants: z.record(z.string(), z.string()).optional(),
    callback_url: z.string().max(2048).optional(),
  })
  .strict();

jobRoutes.post("/jobs", docs.createJob(createJobBody), async (c) => {
  const tenant = tenantOf(c.var.principal);
  // A job is an upload request (URL ingest) or a batch of renders: the upload request limit applies.
  await enforceRateLimit(c.env.UPLOAD_REQUEST_LIMITER, "upload-request", tenant.id);
  const body = await readJson(c, createJobBody);
  const limits = limitsFrom(c.env);
  const config = await tenantConfig(c.var.db, tenant.id, c.env.PRESETS);
  const variants = body.variants === undefined ? {} : parseVariantSpec(body.variants, config, renderLimitsFrom(limits));
  const callbackUrl = body.callback_url === undefined ? null : checkOutboundUrl(body.callback_url, "callback_url", limits.allowInsecureOutbound).href;
  const urls = (body.urls ?? []).map((url) => checkOutboundUrl(url, "urls", limits.allowInsecureOutbound).href);

  const imageIds = body.all ? await allImageIds(c, tenant.id) : await ownImageIds(c, tenant.id, body.imageIds ?? []);
  if (imageIds.length + urls.length === 0) {
    throw new ProblemError(400, "invalid-parameter", "Name the work: imageIds, all or urls.", { parameter: "imageIds" });
  }
  if (imageIds.length > 0 && Object.keys(variants).length === 0) {
    throw invalidParameter("variants", "at least one variant to make for the images", "none");
  }
  const { job, items } = await createJob(c.var.db, {
    tenantId: tenant.id,
    kind: urls.length > 0 ? "ingest" : "reprocess",
    variants,
    callbackUrl,
    origin: new URL(c.req.url).origin,
    items: [...imageIds.map((imageId) => ({ imageId })), ...urls.map((sourceUrl) => ({ sourceUrl }))],
  });
  await enqueueItems(c.env.JOBS, job.id, items.length);
  return c.json(jobView(job, items), 202, { location: `/v1/jobs/${job.id}` });
});

jobRoutes.get("/jobs/:id", docs.getJob, async (c) => {
  const tenant = tenantOf(c.var.principal);
  const job = await findJob(c.var.db, tenant.id, c.req.param("id"));
  if (!job) throw new ProblemError(404, "not-found", "No job with this id.");
  return c.json(jobView(job, await jobItemsOf(c.var.db, job.id)));
});

jobRoutes.get("/jobs", docs.listJobs, async (c) => {
  const tenant = tenantOf(c.var.principal);
  const limitText = c.req.query("limit");
  const limit = limitText === undefined ? 20 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidParameter("limit", "an integer between 1 and 100", limitText ?? "");
  const cursor = c.req.query("cursor");
  const before = cursor ? decodeJobCursor(cursor) : undefined;
  const { rows, more } = await listJobs(c.var.db, tenant.id, limit, before);
  const last = rows.at(-1);
  return c.json({
    jobs: await Promise.all(rows.map(async (job) => jobView(job, undefined, countStates(await jobItemsOf(c.var.db, job.id))))),
    nextCursor: more && last ? btoa(`${last.createdAt}:${last.id}`) : null,
  });
});

function decodeJobCursor(text: string): { createdAt: number; id: string } {
  try {
    const [time, id] = atob(text).split(":");
    if (id && Number.isSafeInteger(Number(time))) return { createdAt: Number(time), id };
  } catch {
    // fall through
  }
  throw invalidParameter("cursor", "a cursor returned as nextCursor", text.slice(0, 64));
}

async function ownImageIds(c: Context<AppEnv>, tenantId: string, ids: readonly string[]): Promise<string[]> {
  const found = new Set<string>();
  for (let i = 0; i < ids.length; i += 90) {
    const rows = await c.var.db
      .select({ id: images.id })
      .from(images)
      .where(and(eq(images.tenantId, tenantId), inArray(images.id, ids.slice(i, i + 90))));
    for (const row of rows) found.add(row.id);
  }
  const missing = ids.find((id) => !found.has(id));
  if (missing !== undefined) throw new ProblemError(404, "not-found", `No image with id ${missing}.`, { parameter: "imageIds" });
  return [...new Set(ids)];
}

async function allImageIds(c: Context<AppEnv>, tenantId: string): Promise<string[]> {
  const rows = await c.var.db.select({ id: images.id }).from(images).where(eq(images.tenantId, tenantId)).limit(MAX_JOB_IMAGES);
  return rows.map((row) => row.id);
}
