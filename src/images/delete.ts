import { forgetRenditions } from "../abuse/rate-limit";
import type { Db } from "../db/client";
import { deleteImageRow } from "../db/images";
import { tenantOfImage } from "../ids";
import { deleteObjectsUnder, imagePrefix } from "../storage/objects";
import { originalCacheKey, DERIVED_CACHE_KEY_META } from "../storage/cache";

export interface DeleteDeps {
  readonly db: Db;
  readonly bucket: R2Bucket;
  readonly cache: Cache;
}

/**
 * Removes an image's row, its original and everything derived from it, and their cache
 * entries. The row goes first: a failure later leaves only unreferenced objects, never a
 * row pointing at nothing, and calling again finishes the job (idempotent).
 */
export async function deleteImageEverywhere(deps: DeleteDeps, tenantId: string, imageId: string, origin: string): Promise<void> {
  if (tenantOfImage(imageId) !== tenantId) return;
  await deleteImageRow(deps.db, tenantId, imageId);
  await deleteObjectsUnder(deps.bucket, imagePrefix(tenantId, imageId), (object) => {
    const cacheKey = object.customMetadata?.[DERIVED_CACHE_KEY_META];
    return cacheKey === undefined ? undefined : deps.cache.delete(new URL(cacheKey, origin).toString()).then(() => undefined);
  });
  await deps.cache.delete(originalCacheKey(origin, imageId));
  await forgetRenditions(deps.db, imageId);
}
