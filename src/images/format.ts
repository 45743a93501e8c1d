/** Raster formats we accept as uploads, identified by magic bytes. */
export type ImageFormat = "jpeg" | "png" | "webp" | "avif" | "gif";

/** Formats we can write. */
export type OutputFormat = "jpeg" | "png" | "webp" | "avif";

export const CONTENT_TYPES: Readonly<Record<ImageFormat, string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
  avif: "image/avif",
  gif: "image/gif",
};
