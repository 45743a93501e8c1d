import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** Secret for signed transform URLs (hex); never returned by list endpoints. */
  signingSecret: text("signing_secret").notNull(),
  requireSignedUrls: integer("require_signed_urls", { mode: "boolean" }).notNull().default(false),
  /**
   * Secret for webhook signatures (hex); shown to the tenant so receivers can verify. Every
   * tenant has one (migration 0007 gave one to tenants made before the column existed); the
   * column stays nullable because SQLite can only add NOT NULL by rebuilding the table, and
   * dropping `tenants` would cascade-delete every key, image and job.
   */
  webhookSecret: text("webhook_secret"),
  createdAt: integer("created_at").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    /** SHA-256 of the secret key, hex. The key itself is shown once and never stored. */
    keyHash: text("key_hash").notNull(),
    /** First characters of the key, to help people tell keys apart. */
    prefix: text("prefix").notNull(),
    name: text("name"),
    createdAt: integer("created_at").notNull(),
    revokedAt: integer("revoked_at"),
  },
  (t) => [uniqueIndex("api_keys_hash").on(t.keyHash), index("api_keys_tenant").on(t.tenantId)],
);

export const images = sqliteTable(
  "images",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    objectKey: text("object_key").notNull(),
    filename: text("filename"),
    format: text("format", { enum: ["jpeg", "png", "webp", "avif", "gif"] }).notNull(),
    width: integer("width").notNull(),
    height: integer("height").notNull(),
    /** EXIF orientation 1..8 as stored in the file (width/height above are as stored, before orientation). */
    orientation: integer("orientation").notNull().default(1),
    frames: integer("frames").notNull().default(1),
    hasAlpha: integer("has_alpha", { mode: "boolean" }).notNull().default(false),
    bytes: integer("bytes").notNull(),
    sha256: text("sha256").notNull(),
    metadata: text("metadata", { mode: "json" }).$type<Record<string, string>>().notNull().default(sql`'{}'`),
    /** ThumbHash (base64) shown while the image loads; null when it could not be made. */
    placeholder: text("placeholder"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("images_tenant_sha256").on(t.tenantId, t.sha256),
    index("images_tenant_created").on(t.tenantId, t.createdAt, t.id),
    index("images_tenant_filename").on(t.tenantId, t.filename),
  ],
);

export type Tenant = typeof tenants.$inferSelect;
export type ApiKey = typeof apiKeys.$inferSelect;
export type ImageRow = typeof images.$inferSelect;
export type NewImageRow = typeof images.$inferInsert;

/** Named transform parameter sets of a tenant (`?p=name`). Config presets (PRESETS var) apply to every tenant. */
export const presets = sqliteTable(
  "presets",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Canonical transform query string (as produced by canonicalString). */
    params: text("params").notNull(),
    /** Public presets work without a signature even when the tenant requires signed URLs. */
    public: integer("public", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.name] })],
);

export type Preset = typeof presets.$inferSelect;

/** Named renditions of an image made once and stored (upload `variants`, jobs). */
export const variants = sqliteTable(
  "variants",
  {
    imageId: text("image_id")
      .notNull()
      .references(() => images.id, { onDelete: "cascade" }),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    /** Canonical transform query string. */
    params: text("params").notNull(),
    state: text("state", { enum: ["pending", "ready", "failed"] }).notNull(),
    format: text("format"),
    width: integer("width"),
    height: integer("height"),
    bytes: integer("bytes"),
    error: text("error"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.imageId, t.name] }), index("variants_tenant").on(t.tenantId)],
);

export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    kind: text("kind", { enum: ["upload", "reprocess", "ingest"] }).notNull(),
    state: text("state", { enum: ["queued", "running", "succeeded", "failed", "partial"] }).notNull(),
    /** Variant definitions of the job: JSON object name -> canonical params. */
    variants: text("variants", { mode: "json" }).$type<Record<string, string>>().notNull(),
    total: integer("total").notNull(),
    /** Origin the job was created through, for absolute URLs in webhooks. */
    origin: text("origin").notNull(),
    callbackUrl: text("callback_url"),
    callbackState: text("callback_state", { enum: ["none", "pending", "delivered", "failed"] }).notNull().default("none"),
    /** Why the last delivery attempt failed (kept while retrying, final once `callbackState` is `failed`). */
    callbackError: text("callback_error"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    finishedAt: integer("finished_at"),
  },
  (t) => [index("jobs_tenant_created").on(t.tenantId, t.createdAt)],
);

/** One image (or one URL to ingest) of a job: the unit of a queue message. */
export const jobItems = sqliteTable(
  "job_items",
  {
    jobId: text("job_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    position: integer("position").notNull(),
    imageId: text("image_id"),
    sourceUrl: text("source_url"),
    state: text("state", { enum: ["queued", "running", "succeeded", "failed"] }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    error: text("error"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.jobId, t.position] }), index("job_items_state").on(t.jobId, t.state)],
);

export type Variant = typeof variants.$inferSelect;
export type Job = typeof jobs.$inferSelect;
export type JobItem = typeof jobItems.$inferSelect;

/**
 * Distinct renditions made of an image per UTC day through unsigned, non-preset URLs: the
 * cap that stops one image from being rendered in endless sizes (cache explosion). Rows of
 * earlier days are pruned as new ones arrive; no foreign key, because the serving path
 * renders from R2 without reading the image's row.
 */
export const renditionDays = sqliteTable(
  "rendition_days",
  {
    imageId: text("image_id").notNull(),
    /** UTC day as YYYY-MM-DD. */
    day: text("day").notNull(),
    renditionId: text("rendition_id").notNull(),
  },
  (t) => [primaryKey({ columns: [t.imageId, t.day, t.renditionId] })],
);

/** Transforms per tenant per UTC day, flushed from isolate counters (approximate: see src/usage/counters.ts). */
export const usageDaily = sqliteTable(
  "usage_daily",
  {
    tenantId: text("tenant_id").notNull(),
    /** UTC day as YYYY-MM-DD. */
    day: text("day").notNull(),
    transformsServed: integer("transforms_served").notNull().default(0),
    transformsRendered: integer("transforms_rendered").notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.day] })],
);
