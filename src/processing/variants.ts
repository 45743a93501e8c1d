import { and, eq, inArray, sql } from "drizzle-orm";
import type { Db } from "../db/client";
import { variants, type Variant } from "../db/schema";
import { ProblemError, toProblem } from "../errors";
import type { TenantConfig } from "../tenants/config";
import { canonicalString, parseTransform } from "../transform/params";
import { renderTransform, type RenderLimits } from "../transform/render";

/** Variant definitions: name -> canonical transform parameters. */
export type VariantSpec = Record<string, string>;

const VARIANT_NAME = /^[a-z0-9_-]{1,64}$/;
export const MAX_VARIANTS = 20;

/**
 * Validates `variants` as sent by a client: a JSON object of name -> transform parameters
 * in the URL grammar (`"w=400&h=400&fit=cover"`) or a preset name (`"thumb"`).
 */
export function parseVariantSpec(value: unknown, config: TenantConfig | undefined, limits: Pick<RenderLimits, "maxSide" | "maxPixels">): VariantSpec {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProblemError(400, "invalid-parameter", 'Expected a JSON object of name -> transform parameters for variants, e.g. {"thumb": "w=400&h=400&fit=cover"}.', {
      parameter: "variants",
    });
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_VARIANTS) {
    throw new ProblemError(400, "invalid-parameter", `At most ${MAX_VARIANTS} variants per request.`, { parameter: "variants" });
  }
  const spec: VariantSpec = {};
  for (const [name, params] of entries) {
    // "__proto__" matches the pattern but cannot be an ordinary key of the spec object (it would be dropped).
    if (!VARIANT_NAME.test(name) || name === "__proto__") {
      throw new ProblemError(400, "invalid-parameter", `Expected a variant name matching ${VARIANT_NAME.source} (other than __proto__) but received ${JSON.stringify(name.slice(0, 64))}.`, {
        parameter: "variants",
      });
    }
    if (typeof params !== "string") {
      throw new ProblemError(400, "invalid-parameter", `Expected transform parameters (a string) for variant ${name}.`, { parameter: `variants.${name}` });
    }
    // A bare preset name stands for that preset.
    const query = config?.presets.has(params) ? `p=${params}` : params;
    const { options } = parseTransform(new URLSearchParams(query), {
      resolvePreset: (preset) => config?.presets.get(preset)?.params,
      limits,
    });
    spec[name] = canonicalString(options);
  }
  return spec;
}

export interface VariantDeps {
  readonly db: Db;
  readonly bucket: R2Bucket;
  readonly limits: RenderLimits;
}

export interface VariantView {
  readonly name: string;
  readonly params: string;
  readonly url: string;
  readonly state: Variant["state"];
  readonly format: string | null;
  readonly width: number | null;
  readonly height: number | null;
  readonly bytes: number | null;
  readonly error: string | null;
}

export function variantView(variant: Variant, origin: string): VariantView {
  return {
    name: variant.name,
    params: variant.params,
    url: `${origin}/i/${variant.imageId}/${variant.name}`,
    state: variant.state,
    format: variant.format,
    width: variant.width,
    height: variant.height,
    bytes: variant.bytes,
    error: variant.error,
  };
}

/**
 * Makes one stored variant: the same rendition (same R2 object, same cache key) that the
 * equivalent URL parameters produce. Idempotent: a variant already ready with the same
 * parameters is not made again, so redelivered queue messages never duplicate work or rows.
 * `fmt=auto` variants are stored as WebP (what every current browser accepts); their URL
 * still negotiates AVIF for clients that ask, rendering it on first request.
 */
export async function generateVariant(deps: VariantDeps, tenantId: string, imageId: string, name: string, params: string, now = Date.now()): Promise<Variant> {
  const existing = await deps.db.query.variants.findFirst({ where: and(eq(variants.imageId, imageId), eq(variants.name, name)) });
  if (existing?.state === "ready" && existing.params === params) return existing;

  const { options } = parseTransform(new URLSearchParams(params), { limits: deps.limits });
  const accept = options.format === "auto" ? "webp" : undefined;
  const cacheKeyPath = `/i/${imageId}?${params}${accept ? `&accept=${accept}` : ""}`;
  try {
    const rendition = await renderTransform(deps.bucket, deps.limits, { imageId, options, canonical: params, accept }, cacheKeyPath);
    if (rendition.body instanceof ReadableStream) await rendition.body.cancel();
    return await upsertVariant(deps.db, {
      imageId,
      tenantId,
      name,
      params,
      state: "ready",
      format: rendition.format,
      width: rendition.width,
      height: rendition.height,
      bytes: rendition.bytes,
      error: null,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    });
  } catch (error) {
    const problem = toProblem(error);
    // Only failures the image itself guarantees are final; the rest are retried by the caller.
    if (problem.status < 500) {
      await upsertVariant(deps.db, {
        imageId,
        tenantId,
        name,
        params,
        state: "failed",
        format: null,
        width: null,
        height: null,
        bytes: null,
        error: problem.detail,
        createdAt: existing?.createdAt ?? now,
        updatedAt: now,
      });
    }
    throw error;
  }
}

/** Makes every variant of the spec for one image; returns them all (failed ones included). */
export async function generateVariants(deps: VariantDeps, tenantId: string, imageId: string, spec: VariantSpec): Promise<{ variants: Variant[]; failures: ProblemError[] }> {
  const made: Variant[] = [];
  const failures: ProblemError[] = [];
  for (const [name, params] of Object.entries(spec)) {
    try {
      made.push(await generateVariant(deps, tenantId, imageId, name, params));
    } catch (error) {
      const problem = toProblem(error);
      if (problem.status >= 500) throw error;
      failures.push(problem);
      const failed = await deps.db.query.variants.findFirst({ where: and(eq(variants.imageId, imageId), eq(variants.name, name)) });
      if (failed) made.push(failed);
    }
  }
  return { variants: made, failures };
}

/** Records variants as pending before a job makes them, so the image lists them at once. */
export async function recordPendingVariants(db: Db, tenantId: string, imageId: string, spec: VariantSpec, now = Date.now()): Promise<void> {
  for (const [name, params] of Object.entries(spec)) {
    await db
      .insert(variants)
      .values({ imageId, tenantId, name, params, state: "pending", createdAt: now, updatedAt: now })
      .onConflictDoUpdate({
        target: [variants.imageId, variants.name],
        set: { params, state: "pending", error: null, updatedAt: now },
        // A ready variant with the same parameters stays ready.
        setWhere: sql`not (${variants.state} = 'ready' and ${variants.params} = excluded.params)`,
      });
  }
}

export async function variantsOf(db: Db, imageIds: readonly string[]): Promise<Map<string, Variant[]>> {
  const byImage = new Map<string, Variant[]>();
  if (imageIds.length === 0) return byImage;
  for (let i = 0; i < imageIds.length; i += 50) {
    const rows = await db.select().from(variants).where(inArray(variants.imageId, imageIds.slice(i, i + 50)));
    for (const row of rows) byImage.set(row.imageId, [...(byImage.get(row.imageId) ?? []), row]);
  }
  return byImage;
}

export async function findVariant(db: Db, imageId: string, name: string): Promise<Variant | undefined> {
  return db.query.variants.findFirst({ where: and(eq(variants.imageId, imageId), eq(variants.name, name)) });
}

async function upsertVariant(db: Db, row: Variant): Promise<Variant> {
  const rows = await db
    .insert(variants)
    .values(row)
    .onConflictDoUpdate({
      target: [variants.imageId, variants.name],
      set: {
        params: row.params,
        state: row.state,
        format: row.format,
        width: row.width,
        height: row.height,
        bytes: row.bytes,
        error: row.error,
        updatedAt: row.updatedAt,
      },
    })
    .returning();
  return rows[0] ?? row;
}
