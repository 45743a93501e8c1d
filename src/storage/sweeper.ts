import { inArray } from "drizzle-orm";
import type { Db } from "../db/client";
import { images } from "../db/schema";
import { deleteObjectsUnder } from "./objects";

/**
 * Removes originals that have no row (and everything under their prefix). Uploads write the
 * object first and the row second and delete the object when the row fails, so an orphan
 * only survives if that cleanup itself failed. Objects younger than `minAgeMs` are left
 * alone: they may belong to an upload still in flight. Rows never lack their object: a
 * row is written only after its object, and deletes remove the row first.
 */
export async function sweepOrphans(db: Db, bucket: R2Bucket, minAgeMs = 60 * 60 * 1000, now = Date.now()): Promise<{ checked: number; removed: string[] }> {
  const removed: string[] = [];
  let checked = 0;
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ cursor, limit: 500 });
    const originals = page.objects.filter((object) => object.key.endsWith("/original") && now - object.uploaded.getTime() >= minAgeMs);
    checked += originals.length;
    const ids = originals.map((object) => object.key.split("/")[1] ?? "");
    const known = new Set<string>();
    for (let i = 0; i < ids.length; i += 90) {
      const rows = await db.select({ id: images.id }).from(images).where(inArray(images.id, ids.slice(i, i + 90)));
      for (const row of rows) known.add(row.id);
    }
    for (const object of originals) {
      const [tenantId, imageId] = object.key.split("/");
      if (!tenantId || !imageId || known.has(imageId)) continue;
      removed.push(...(await deleteObjectsUnder(bucket, `${tenantId}/${imageId}/`)));
    }
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return { checked, removed };
}
