import { eq } from "drizzle-orm";
import type { Db } from "../db/client";
import { renditionDays } from "../db/schema";
import { ProblemError } from "../errors";

/**
 * Per-tenant abuse limits.
 *
 * Rates: Workers Rate Limiting bindings (`[[ratelimits]]` in wrangler.toml), keyed by tenant
 * id. Miniflare emulates them in `wrangler dev` and the vitest pool (a fixed window aligned
 * to the wall clock, counted in a local Durable Object), so the same code runs everywhere.
 * The binding is eventually consistent across Cloudflare locations: a ceiling against
 * floods, not an exact quota.
 *
 * Renditions: at most `MAX_RENDITIONS_PER_IMAGE_PER_DAY` distinct renditions of one image per
 * UTC day through unsigned, non-preset URLs, counted in D1 (`rendition_days`).
 */

/** The binding's interface (a subset of workers-types' RateLimit), so tests can pass their own. */
export interface Limiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

export type LimitKind = "upload-request" | "upload-file" | "render";

/** Window of every limiter, as `simple.period` in wrangler.toml. */
export const RATE_LIMIT_PERIOD_SECONDS = 60;

const WHAT: Record<LimitKind, string> = {
  "upload-request": "upload requests",
  "upload-file": "uploaded files",
  render: "transforms rendered (cached results do not count)",
};

/** Seconds until the current fixed window ends (at least 1). */
export function retryAfterSeconds(periodSeconds: number, now = Date.now()): number {
  const periodMs = periodSeconds * 1000;
  return Math.max(1, Math.ceil((periodMs - (now % periodMs)) / 1000));
}

/** Counts one event of `kind` for the tenant; over the limit, throws a 429 problem with Retry-After. */
export async function enforceRateLimit(limiter: Limiter, kind: LimitKind, tenantId: string, now = Date.now()): Promise<void> {
  const { success } = await limiter.limit({ key: `${kind}:${tenantId}` });
  if (success) return;
  const retryAfter = retryAfterSeconds(RATE_LIMIT_PERIOD_SECONDS, now);
  throw new ProblemError(
    429,
    "rate-limited",
    `Too many ${WHAT[kind]} for this tenant; retry in ${retryAfter} s.`,
    { limit: kind, retryAfter },
    { headers: { "retry-after": String(retryAfter) } },
  );
}

/** The UTC day of a time, YYYY-MM-DD. */
export function utcDay(now: number): string {
  return new Date(now).toISOString().slice(0, 10);
}

/** Seconds until the next UTC midnight (at least 1). */
export function secondsToUtcMidnight(now: number): number {
  return retryAfterSeconds(24 * 3600, now);
}

/**
 * Records that this rendition of the image is made today; throws a 429 when the image
 * already has `cap` other distinct renditions today. A rendition counted once stays allowed
 * for the day (re-rendering after a cache eviction costs nothing more). One D1 batch (one
 * transaction): prune earlier days, insert if under the cap, read back.
 */
export async function claimRendition(d1: D1Database, imageId: string, renditionId: string, cap: number, now = Date.now()): Promise<void> {
  const day = utcDay(now);
  const results = await d1.batch([
    d1.prepare("DELETE FROM rendition_days WHERE image_id = ?1 AND day < ?2").bind(imageId, day),
    d1
      .prepare(
        `INSERT OR IGNORE INTO rendition_days (image_id, day, rendition_id)
         SELECT ?1, ?2, ?3 WHERE (SELECT count(*) FROM rendition_days WHERE image_id = ?1 AND day = ?2) < ?4`,
      )
      .bind(imageId, day, renditionId, cap),
    d1.prepare("SELECT 1 AS one FROM rendition_days WHERE image_id = ?1 AND day = ?2 AND rendition_id = ?3").bind(imageId, day, renditionId),
  ]);
  const found = results[2]?.results ?? [];
  if (found.length > 0) return;
  const retryAfter = secondsToUtcMidnight(now);
  throw new ProblemError(
    429,
    "rendition-limit",
    `This image already has ${cap} distinct renditions today (UTC) through unsigned URLs; use a preset, a variant or a signed URL, or retry tomorrow.`,
    { cap, retryAfter },
    { headers: { "retry-after": String(retryAfter) } },
  );
}

/** Drops an image's rendition counts (when the image is deleted). */
export async function forgetRenditions(db: Db, imageId: string): Promise<void> {
  await db.delete(renditionDays).where(eq(renditionDays.imageId, imageId));
}
