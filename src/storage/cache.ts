/** Custom-metadata field of a derived R2 object that names its Cache API key (a path), so deletes can purge it. */
export const DERIVED_CACHE_KEY_META = "cacheKey";

/** Cache API key of an original: its public URL without any query. */
export function originalCacheKey(origin: string, imageId: string): string {
  return `${origin}/i/${imageId}`;
}
