import type { ImageRow } from "../db/schema";

/** The public JSON shape of an image. Width and height are as displayed (after EXIF orientation). */
export interface ImageView {
  readonly id: string;
  readonly url: string;
  readonly width: number;
  readonly height: number;
  readonly format: ImageRow["format"];
  readonly bytes: number;
  readonly sha256: string;
  readonly filename: string | null;
  readonly metadata: Record<string, string>;
  /** ThumbHash (base64) to show while the image loads, or null. */
  readonly placeholder: string | null;
  readonly orientation: number;
  readonly hasAlpha: boolean;
  readonly frames: number;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly duplicate?: boolean;
}

export function imageView(row: ImageRow, origin: string, duplicate?: boolean): ImageView {
  return {
    id: row.id,
    url: `${origin}/i/${row.id}`,
    width: row.width,
    height: row.height,
    format: row.format,
    bytes: row.bytes,
    sha256: row.sha256,
    filename: row.filename,
    metadata: row.metadata,
    placeholder: row.placeholder,
    orientation: row.orientation,
    hasAlpha: row.hasAlpha,
    frames: row.frames,
    createdAt: new Date(row.createdAt).toISOString(),
    updatedAt: new Date(row.updatedAt).toISOString(),
    ...(duplicate === undefined ? {} : { duplicate }),
  };
}
