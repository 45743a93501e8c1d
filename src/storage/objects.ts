import type { ImageFormat } from "../images/format";

/**
 * R2 layout: everything of an image lives under `<tenant>/<image>/`, so a tenant's data is
 * one prefix and deleting an image is one prefix listing.
 */
export function imagePrefix(tenantId: string, imageId: string): string {
  return `${tenantId}/${imageId}/`;
}

export function originalKey(tenantId: string, imageId: string): string {
  return imagePrefix(tenantId, imageId) + "original";
}

/** Custom metadata stored with an original, so serving and transforms need no D1 read. */
export interface OriginalObjectMetadata {
  readonly format: ImageFormat;
  readonly width: string;
  readonly height: string;
  readonly orientation: string;
}

/**
 * Deletes every object under the prefix (original and derived), calling `beforeDelete`
 * for each (e.g. to drop its cache entry); returns the deleted keys.
 */
export async function deleteObjectsUnder(
  bucket: R2Bucket,
  prefix: string,
  beforeDelete?: (object: R2Object) => Promise<void> | undefined,
): Promise<string[]> {
  const deleted: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await bucket.list({ prefix, cursor, include: ["customMetadata"] });
    if (beforeDelete) await Promise.all(page.objects.map((object) => beforeDelete(object)));
    const keys = page.objects.map((object) => object.key);
    if (keys.length > 0) await bucket.delete(keys);
    deleted.push(...keys);
    cursor = page.truncated ? page.cursor : undefined;
  } while (cursor);
  return deleted;
}
