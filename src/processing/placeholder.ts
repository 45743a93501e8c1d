import { rgbaToThumbHash } from "thumbhash";
import { decode } from "../codecs";
import type { Db } from "../db/client";
import { setImagePlaceholder } from "../db/images";
import type { ImageRow } from "../db/schema";
import { runPipeline } from "../pipeline";
import { originalKey } from "../storage/objects";
import { DEFAULT_TRANSFORM } from "../transform/params";
import { loadSource, type RenderLimits } from "../transform/render";

/** ThumbHash works on images of at most 100x100. */
const PLACEHOLDER_SIDE = 100;

/**
 * Makes the image's ThumbHash (a ~25-byte blurred preview the web app shows while the real
 * image loads) through the same pipeline as transforms, and stores it on the row. Never
 * fails an upload: an image that cannot be previewed simply has none.
 */
export async function makePlaceholder(db: Db, bucket: R2Bucket, limits: RenderLimits, row: ImageRow): Promise<string | null> {
  try {
    const source = await loadSource(bucket, originalKey(row.tenantId, row.id), limits);
    if (!source) return null;
    const small = await runPipeline(
      source,
      { ...DEFAULT_TRANSFORM, width: PLACEHOLDER_SIDE, height: PLACEHOLDER_SIDE, fit: "scale-down", format: "png" },
      { limits },
    );
    const pixels = await decode(small.bytes, "png");
    const placeholder = toBase64(rgbaToThumbHash(pixels.width, pixels.height, pixels.data));
    await setImagePlaceholder(db, row.tenantId, row.id, placeholder);
    return placeholder;
  } catch (error) {
    console.error(JSON.stringify({ level: "warn", message: "no placeholder", image: row.id, error: String(error).slice(0, 300) }));
    return null;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
