/**
 * The codec layer: bytes <-> RGBA pixels, and resampling. Everything else in the service sees
 * only `decode`, `encode` and `resize`; which library does the work is decided by the three
 * tables below, so a codec (say, our own WASM JPEG decoder or resizer) is swapped by changing
 * one entry.
 *
 * Encoders write raw pixels into a fresh file, so outputs carry no EXIF, XMP, GPS, ICC or
 * comments from the source (the pipeline tests check this on a photo with real GPS EXIF).
 */
import { ProblemError } from "../errors";
import { decodeAvif, encodeAvif } from "./avif";
import { decodeJpeg, encodeJpeg } from "./jpeg";
import { decodePng, encodePng } from "./png";
import { nativeMemoryBytes, openNativeSession } from "./native";
import { resizeLanczos } from "./resize";
import type { DecodeHint, Decoder, Encoder, ImageFormat, OutputFormat, Resizer, RgbaImage } from "./types";
import { wasmMemory as jsquashMemory } from "./wasm";
import { decodeWebp, encodeWebp } from "./webp";

export type { DecodeHint, RgbaImage } from "./types";
export { hasTranslucentPixel } from "./util";
export { nativeMemoryBytes } from "./native";

/** Bytes of linear memory held by each live codec instance in this isolate (ours as "native"). */
export function wasmMemory(): Record<string, number> {
  const held = jsquashMemory();
  const native = nativeMemoryBytes();
  if (native > 0) held["native"] = native;
  return held;
}

/** Total of `wasmMemory()`. */
export function wasmMemoryBytes(): number {
  return Object.values(wasmMemory()).reduce((sum, bytes) => sum + bytes, 0);
}

const DECODERS: Readonly<Record<ImageFormat, Decoder>> = {
  jpeg: decodeJpeg,
  png: decodePng,
  webp: decodeWebp,
  avif: decodeAvif,
  // Loaded on first use: most isolates never see a GIF.
  gif: async (bytes) => (await import("./gif")).decodeGif(bytes),
};

const ENCODERS: Readonly<Record<OutputFormat, Encoder>> = {
  jpeg: encodeJpeg,
  png: encodePng,
  webp: encodeWebp,
  avif: encodeAvif,
};

/** Lanczos3 in sRGB, box-shrinking large reductions first: ours (./native) or @jsquash/resize. */
const RESIZERS: Readonly<Record<"native" | "jsquash", Resizer>> = {
  native: async (image, width, height) => {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`resize to ${width}x${height}`);
    }
    if (width === image.width && height === image.height) return image;
    const session = openNativeSession();
    try {
      return session.resize(image, {
        base: 0,
        stepU: 1,
        stepV: image.width,
        windowWidth: image.width,
        windowHeight: image.height,
        x: 0,
        y: 0,
        width: image.width,
        height: image.height,
        outWidth: width,
        outHeight: height,
      });
    } finally {
      session.release();
    }
  },
  jsquash: resizeLanczos,
};

/**
 * Default quality per output format (1..100 on each encoder's own scale), used when the
 * request gives none. Set so the formats look alike, by luma SSIM on three photos scaled to
 * 800 px (storm, cups, waterside) against mozjpeg at 80, the usual web setting:
 * - jpeg 80: SSIM 0.991 / 0.978 / 0.979.
 * - webp 80: about the same SSIM (0.988 / 0.980 / 0.979) at 46-76% of the JPEG's bytes.
 * - avif 65 (libavif's scale, not JPEG-like): same SSIM (0.989 / 0.978 / 0.980) at 35-68% of
 *   the JPEG's bytes; SSIM undersells AV1's smoothing, so this errs on the sharp side.
 * - png: lossless, quality is ignored.
 */
export const DEFAULT_QUALITY: Readonly<Record<OutputFormat, number>> = {
  jpeg: 80,
  webp: 80,
  avif: 65,
  png: 100,
};

/**
 * Decodes `bytes` of `format` to RGBA8. A file the decoder cannot read becomes a 422
 * ProblemError "invalid-image" (the cause keeps the decoder's message for logs).
 */
export async function decode(bytes: Uint8Array, format: ImageFormat, hint?: DecodeHint): Promise<RgbaImage> {
  let image: RgbaImage;
  try {
    image = await DECODERS[format](bytes, hint);
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    throw new ProblemError(422, "invalid-image", `The stored ${format.toUpperCase()} image could not be decoded.`, {}, { cause: error });
  }
  if (image.width < 1 || image.height < 1 || image.data.length !== image.width * image.height * 4) {
    throw new ProblemError(422, "invalid-image", `The stored ${format.toUpperCase()} image could not be decoded.`);
  }
  return image;
}

/**
 * Encodes RGBA8 as `format`. `quality` 1..100 (ignored by PNG). `path` picks the JPEG encoder
 * (see ./jpeg `encodeJpeg`): ours for baseline outputs ("native"), or mozjpeg for all ("jsquash").
 */
export async function encode(image: RgbaImage, format: OutputFormat, quality: number, path: "native" | "jsquash" = "native"): Promise<Uint8Array> {
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  return format === "jpeg" ? encodeJpeg(image, q, path) : ENCODERS[format](image, q);
}

/** Resamples to exactly `width` x `height` (Lanczos3, sRGB; the caller keeps the aspect ratio). */
export function resize(image: RgbaImage, width: number, height: number, path: "native" | "jsquash" = "native"): Promise<RgbaImage> {
  return RESIZERS[path](image, width, height);
}
