import { and, desc, eq, gte, lt, lte, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "./client";
import { images, type ImageRow, type NewImageRow } from "./schema";

export interface ImageListQuery {
  readonly limit: number;
  readonly cursor?: { readonly createdAt: number; readonly id: string };
  readonly filenamePrefix?: string;
  /** Exact match on the SHA-256 (lowercase hex) of the bytes: "does the tenant have this file already?" */
  readonly sha256?: string;
  readonly metadata?: ReadonlyArray<readonly [key: string, value: string]>;
  readonly createdAfter?: number;
  readonly createdBefore?: number;
}

/** Inserts the row unless the tenant already has these bytes; returns the row that won. */
export async function insertImageOrExisting(db: Db, row: NewImageRow): Promise<{ row: ImageRow; inserted: boolean }> {
  const inserted = await db.insert(images).values(row).onConflictDoNothing({ target: [images.tenantId, images.sha256] }).returning();
  if (inserted[0]) return { row: inserted[0], inserted: true };
  const existing = await findImageBySha256(db, row.tenantId, row.sha256);
  if (!existing) throw new Error("image insert conflicted but no existing row was found");
  return { row: existing, inserted: false };
}

export async function findImage(db: Db, tenantId: string, id: string): Promise<ImageRow | undefined> {
  return db.query.images.findFirst({ where: and(eq(images.tenantId, tenantId), eq(images.id, id)) });
}

export async function findImageBySha256(db: Db, tenantId: string, sha256: string): Promise<ImageRow | undefined> {
  return db.query.images.findFirst({ where: and(eq(images.tenantId, tenantId), eq(images.sha256, sha256)) });
}

/** Newest first, keyset-paginated on (createdAt, id). Fetches one extra row to know whether more follow. */
export async function listImages(db: Db, tenantId: string, query: ImageListQuery): Promise<{ rows: ImageRow[]; more: boolean }> {
  const conditions: SQL[] = [eq(images.tenantId, tenantId)];
  if (query.cursor) {
    const { createdAt, id } = query.cursor;
    const after = or(lt(images.createdAt, createdAt), and(eq(images.createdAt, createdAt), lt(images.id, id)));
    if (after) conditions.push(after);
  }
  if (query.filenamePrefix !== undefined) {
    // substr instead of LIKE: no wildcard escaping, and case-sensitive like the names themselves.
    conditions.push(sql`substr(${images.filename}, 1, ${query.filenamePrefix.length}) = ${query.filenamePrefix}`);
  }
  if (query.sha256 !== undefined) conditions.push(eq(images.sha256, query.sha256));
  for (const [key, value] of query.metadata ?? []) {
    conditions.push(sql`json_extract(${images.metadata}, ${metadataPath(key)}) = ${value}`);
  }
  if (query.createdAfter !== undefined) conditions.push(gte(images.createdAt, query.createdAfter));
  if (query.createdBefore !== undefined) conditions.push(lte(images.createdAt, query.createdBefore));

  const rows = await db
    .select()
    .from(images)
    .where(and(...conditions))
    .orderBy(desc(images.createdAt), desc(images.id))
    .limit(query.limit + 1);
  return { rows: rows.slice(0, query.limit), more: rows.length > query.limit };
}

export async function updateImageMetadata(
  db: Db,
  tenantId: string,
  id: string,
  metadata: Record<string, string>,
  now = Date.now(),
): Promise<ImageRow | undefined> {
  const rows = await db
    .update(images)
    .set({ metadata, updatedAt: now })
    .where(and(eq(images.tenantId, tenantId), eq(images.id, id)))
    .returning();
  return rows[0];
}

export async function deleteImageRow(db: Db, tenantId: string, id: string): Promise<ImageRow | undefined> {
  const rows = await db.delete(images).where(and(eq(images.tenantId, tenantId), eq(images.id, id))).returning();
  return rows[0];
}

/** JSON path for a metadata key; keys are validated to a safe alphabet, the quotes allow dots and dashes. */
function metadataPath(key: string): string {
  return `$."${key}"`;
}

export async function setImagePlaceholder(db: Db, tenantId: string, id: string, placeholder: string): Promise<void> {
  await db.update(images).set({ placeholder }).where(and(eq(images.tenantId, tenantId), eq(images.id, id)));
}
