import { Hono, type Context } from "hono";
import { z } from "zod";
import { enforceRateLimit, RATE_LIMIT_PERIOD_SECONDS, retryAfterSeconds } from "../abuse/rate-limit";
import { tenantOf } from "../auth/middleware";
import { limitsFrom } from "../config";
import { deleteImageRow, findImage, listImages, updateImageMetadata, type ImageListQuery } from "../db/images";
import type { AppEnv } from "../env";
import { invalidParameter, ProblemError, problemResponse, PROBLEM_TYPE_BASE } from "../errors";
import { readJson } from "../http/json";
import { detachedBody } from "../http/request-limits";
import { docs } from "../http/openapi";
import { imageView } from "../images/view";
import { deleteImageEverywhere } from "../images/delete";
import { ingestMultipart, outcomeStatus, type UploadOutcome } from "../upload/bulk";
import { processUploadedImages } from "../processing/after-upload";
import { variantsOf, variantView } from "../processing/variants";
import { tenantConfig } from "../tenants/config";
import { ingestImage, type IngestDeps } from "../upload/ingest";
import { applyPlanField, type ProcessingPlan } from "../upload/processing-plan";
import { isMetadataKey, METADATA_KEY_PATTERN, parseMetadataJson, validateMetadata, validateMetadataPatch } from "../upload/metadata";

export const imageRoutes = new Hono<AppEnv>();

imageRoutes.post("/images", docs.uploadMultipart, async (c) => {
  const tenant = tenantOf(c.var.principal);
  await limitUploadRequest(c, tenant.id);
  const contentType = c.req.header("content-type") ?? "";
  const body = detachedBody(c.req.raw);
  if (!/^multipart\/form-data\b/i.test(contentType) || !body) {
    throw new ProblemError(415, "unsupported-media-type", "POST /v1/images takes multipart/form-data; use PUT /v1/images for a raw image body.", {
      expected: "multipart/form-data",
      received: contentType || "(none)",
    });
  }
  const deps = ingestDeps(c);
  const config = await tenantConfig(c.var.db, tenant.id, c.env.PRESETS);
  const plan: ProcessingPlan = {};
  const outcome = await ingestMultipart(
    deps,
    tenant.id,
    body,
    contentType,
    origin(c),
    (field, text) => applyPlanField(plan, field, text, config, deps.limits),
    logError,
  );
  return finishUpload(c, tenant.id, outcome, plan);
});

imageRoutes.put("/images", docs.uploadRaw, async (c) => {
  const tenant = tenantOf(c.var.principal);
  await limitUploadRequest(c, tenant.id);
  const deps = ingestDeps(c);
  // Whatever ingest leaves unread when it refuses the file is drained by requestBodies, never cancelled.
  const body = detachedBody(c.req.raw);
  const declared = Number(c.req.header("content-length") ?? "NaN");
  if (Number.isFinite(declared) && declared > deps.limits.maxFileBytes) {
    throw new ProblemError(413, "payload-too-large", `The file is larger than the limit of ${deps.limits.maxFileBytes} bytes.`);
  }
  if (!body) throw new ProblemError(400, "bad-request", "The request has no body: send the image bytes.");
  const metadataText = c.req.header("x-metadata") ?? c.req.query("metadata");
  const metadata = metadataText === undefined ? {} : parseMetadataJson(metadataText, "metadata", deps.limits.maxMetadataBytes);
  const filename = c.req.query("filename") ?? filenameFromDisposition(c.req.header("content-disposition"));
  const plan: ProcessingPlan = {};
  const config = await tenantConfig(c.var.db, tenant.id, c.env.PRESETS);
  const variantsText = c.req.header("x-variants") ?? c.req.query("variants");
  if (variantsText !== undefined) applyPlanField(plan, "variants", variantsText, config, deps.limits);
  const mode = c.req.query("mode");
  if (mode !== undefined) applyPlanField(plan, "mode", mode, config, deps.limits);
  const callbackUrl = c.req.query("callback_url");
  if (callbackUrl !== undefined) applyPlanField(plan, "callback_url", callbackUrl, config, deps.limits);
  const { row, duplicate } = await ingestImage(deps, tenant.id, { filename, body, metadata });
  return finishUpload(c, tenant.id, { images: [imageView(row, origin(c), duplicate)], errors: [] }, plan);
});

const LIST_PARAMS = new Set(["limit", "cursor", "filename_prefix", "created_after", "created_before", "sha256"]);

imageRoutes.get("/images", docs.listImages, async (c) => {
  const tenant = tenantOf(c.var.principal);
  const query = parseListQuery(new URL(c.req.url).searchParams);
  const { rows, more } = await listImages(c.var.db, tenant.id, query);
  const last = rows.at(-1);
  return c.json({
    images: rows.map((row) => imageView(row, origin(c))),
    nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null,
  });
});

imageRoutes.get("/images/:id", docs.getImage, async (c) => {
  const tenant = tenantOf(c.var.principal);
  const row = await findImage(c.var.db, tenant.id, c.req.param("id"));
  if (!row) throw imageNotFound();
  const variants = (await variantsOf(c.var.db, [row.id])).get(row.id) ?? [];
  return c.json({ ...imageView(row, origin(c)), variants: variants.map((variant) => variantView(variant, origin(c))) });
});

const patchBody = z.object({ metadata: z.record(z.string(), z.string().nullable()) }).strict();

/** JSON merge patch of the metadata: a string sets a key, null removes it. */
imageRoutes.patch("/images/:id", docs.patchImage(patchBody), async (c) => {
  const tenant = tenantOf(c.var.principal);
  // The keys are checked on the parsed JSON itself: the schema would drop a "__proto__" key.
  const body = await readJson(c, patchBody, { inspect: (raw) => inspectPatch(raw) });
  const row = await findImage(c.var.db, tenant.id, c.req.param("id"));
  if (!row) throw imageNotFound();
  const merged: Record<string, string> = { ...row.metadata };
  for (const [key, value] of Object.entries(body.metadata)) {
    if (value === null) delete merged[key];
    else merged[key] = value;
  }
  const metadata = validateMetadata(merged, "metadata");
  const updated = await updateImageMetadata(c.var.db, tenant.id, row.id, metadata);
  if (!updated) throw imageNotFound();
  return c.json(imageView(updated, origin(c)));
});

function inspectPatch(raw: unknown): void {
  if (raw === null || typeof raw !== "object" || !Object.hasOwn(raw, "metadata")) return; // the schema says what is wrong
  validateMetadataPatch((raw as { metadata: unknown }).metadata, "metadata");
}

/** Idempotent: deleting a missing image is a 204 too (and reveals nothing about other tenants). */
imageRoutes.delete("/images/:id", docs.deleteImage, async (c) => {
  const tenant = tenantOf(c.var.principal);
  await deleteImageEverywhere({ db: c.var.db, bucket: c.env.IMAGES, cache: caches.default }, tenant.id, c.req.param("id"), origin(c));
  return c.body(null, 204);
});

function ingestDeps(c: Context<AppEnv>): IngestDeps {
  const principal = c.var.principal;
  return {
    db: c.var.db,
    bucket: c.env.IMAGES,
    limits: limitsFrom(c.env),
    background: (task) => c.executionCtx.waitUntil(task),
    // Every file counts (a bulk request of 100 files is 100), after its header passed the probe.
    ...(principal.kind === "tenant" ? { beforeStore: () => enforceRateLimit(c.env.UPLOAD_FILE_LIMITER, "upload-file", principal.tenant.id) } : {}),
  };
}

/** The per-request upload limit; over it a 429 problem answers before the body is read (left alone: see app.ts). */
async function limitUploadRequest(c: Context<AppEnv>, tenantId: string): Promise<void> {
  await enforceRateLimit(c.env.UPLOAD_REQUEST_LIMITER, "upload-request", tenantId);
}

function origin(c: Context<AppEnv>): string {
  return new URL(c.req.url).origin;
}

/** Makes the asked-for variants (sync or as a job), then answers 201, 202, 207 or the 4xx problem. */
async function finishUpload(c: Context<AppEnv>, tenantId: string, outcome: UploadOutcome, plan: ProcessingPlan): Promise<Response> {
  if (outcome.images.length === 0) return uploadResponse(outcome);
  const deps = ingestDeps(c);
  const processed = await processUploadedImages(
    { db: c.var.db, bucket: c.env.IMAGES, queue: c.env.JOBS, limits: deps.limits },
    tenantId,
    outcome.images,
    plan,
    origin(c),
  );
  if (processed.job) {
    return Response.json(
      { job: processed.job, images: processed.images, errors: outcome.errors },
      { status: 202, headers: { location: `/v1/jobs/${processed.job.id}` } },
    );
  }
  return uploadResponse({ images: processed.images, errors: outcome.errors });
}

function uploadResponse(outcome: UploadOutcome): Response {
  const status = outcomeStatus(outcome);
  if (status === 201 || status === 207) {
    return Response.json(outcome, { status, headers: retryAfterOf(outcome) });
  }
  const types = new Set(outcome.errors.map((error) => error.type));
  const [onlyType] = types;
  const code = types.size === 1 && onlyType ? onlyType.slice(PROBLEM_TYPE_BASE.length) : "bad-request";
  const detail =
    outcome.errors.length === 1 && outcome.errors[0] ? outcome.errors[0].detail : `None of the ${outcome.errors.length} files was stored.`;
  const problem = new ProblemError(
    status === 413 ? 413 : status === 415 ? 415 : status === 422 ? 422 : status === 429 ? 429 : 400,
    code as ProblemError["code"],
    detail,
    { images: outcome.images, errors: outcome.errors },
  );
  return problemResponse(problem, undefined, retryAfterOf(outcome));
}

/** Retry-After when some file met a rate limit (the per-file 429 of a bulk upload). */
function retryAfterOf(outcome: UploadOutcome): Record<string, string> {
  return outcome.errors.some((error) => error.status === 429) ? { "retry-after": String(retryAfterSeconds(RATE_LIMIT_PERIOD_SECONDS)) } : {};
}

function parseListQuery(params: URLSearchParams): ImageListQuery {
  const metadata: Array<[string, string]> = [];
  for (const [name, value] of params) {
    if (name.startsWith("metadata.")) {
      const key = name.slice("metadata.".length);
      if (!isMetadataKey(key)) throw invalidParameter(name, `a metadata key matching ${METADATA_KEY_PATTERN.source} (other than __proto__)`, key);
      metadata.push([key, value]);
    } else if (!LIST_PARAMS.has(name)) {
      throw new ProblemError(400, "unknown-parameter", `Unknown parameter ${name}: expected one of ${[...LIST_PARAMS].join(", ")} or metadata.<key>.`, {
        parameter: name,
      });
    }
  }
  const limitText = params.get("limit");
  const limit = limitText === null ? 50 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw invalidParameter("limit", "an integer between 1 and 100", limitText ?? "");
  const cursorText = params.get("cursor");
  const filenamePrefix = params.get("filename_prefix");
  const createdAfter = params.get("created_after");
  const createdBefore = params.get("created_before");
  const sha256 = params.get("sha256");
  if (sha256 !== null && !/^[0-9a-f]{64}$/i.test(sha256)) throw invalidParameter("sha256", "64 hexadecimal digits (the SHA-256 of the file's bytes)", sha256.slice(0, 80));
  return {
    limit,
    ...(cursorText ? { cursor: decodeCursor(cursorText) } : {}),
    ...(filenamePrefix ? { filenamePrefix } : {}),
    ...(sha256 !== null ? { sha256: sha256.toLowerCase() } : {}),
    ...(metadata.length > 0 ? { metadata } : {}),
    ...(createdAfter ? { createdAfter: parseTime("created_after", createdAfter) } : {}),
    ...(createdBefore ? { createdBefore: parseTime("created_before", createdBefore) } : {}),
  };
}

/** ISO 8601 or milliseconds since the epoch. */
function parseTime(name: string, value: string): number {
  const time = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(time)) throw invalidParameter(name, "an ISO 8601 date-time or epoch milliseconds", value);
  return time;
}

function encodeCursor(createdAt: number, id: string): string {
  return btoa(`${createdAt}:${id}`).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function decodeCursor(text: string): { createdAt: number; id: string } {
  try {
    const [time, id] = atob(text.replace(/-/g, "+").replace(/_/g, "/")).split(":");
    const createdAt = Number(time);
    if (Number.isSafeInteger(createdAt) && id && /^[0-9a-z]{1,64}$/.test(id)) return { createdAt, id };
  } catch {
    // fall through to the 400 below
  }
  throw invalidParameter("cursor", "a cursor returned as nextCursor by this endpoint", text);
}

function filenameFromDisposition(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(header);
  if (star?.[1]) {
    try {
      return decodeURIComponent(star[1]);
    } catch {
      return undefined;
    }
  }
  return /filename\s*=\s*"?([^";]+)"?/i.exec(header)?.[1];
}

export function imageNotFound(): ProblemError {
  return new ProblemError(404, "not-found", "No image with this id.");
}

function logError(error: unknown): void {
  console.error(JSON.stringify({ level: "error", message: "upload failed", error: String(error) }));
}
