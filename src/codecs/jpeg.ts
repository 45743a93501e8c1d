/**
 * JPEG through mozjpeg (squoosh build). Baseline, progressive and grayscale decode in WASM;
 * mozjpeg's RGBA output cannot convert CMYK/YCCK ("Unsupported color conversion request"),
 * so 4-component files go to a pure-JS decoder (./jpeg-cmyk), loaded only when one shows up.
 * On the native codec path, baseline outputs come from our own encoder (wasm/jpeg/encode.c).
 */
import { encodeNativeJpeg } from "./native";
import type { MozJpegOptions } from "./wasm";
import { jpegDecoder, jpegEncoder, withInstance } from "./wasm";
import type { RgbaImage } from "./types";
import { detach } from "./util";

export async function decodeJpeg(bytes: Uint8Array): Promise<RgbaImage> {
  if (jpegComponentCount(bytes) === 4) {
    const { decodeCmykJpeg } = await import("./jpeg-cmyk");
    return decodeCmykJpeg(bytes);
  }
  // false: pixels as stored; the pipeline applies EXIF orientation itself.
  const decoded = await withInstance(jpegDecoder, (codec) => codec.decode(bytes, false));
  if (decoded === null) throw new Error("mozjpeg could not decode the image");
  return { width: decoded.width, height: decoded.height, data: decoded.data, hasAlpha: false };
}

/**
 * mozjpeg settings (the @jsquash defaults): progressive (for large outputs, see below) with
 * optimised Huffman tables and chroma sampling chosen by quality (auto_subsample: 4:2:0 below
 * 80, 4:2:2 to 89, 4:4:4 from 90). The trellis_* fields below do not turn trellis quantisation
 * off in this build (measured: with mozjpeg's own table our encoder's output is ~10% larger at
 * the same quality, which is trellis' gain). `quality` is always given by the caller.
 */
const JPEG_OPTIONS: MozJpegOptions = {
  quality: 80,
  baseline: false,
  arithmetic: false,
  progressive: true,
  optimize_coding: true,
  smoothing: 0,
  color_space: 3, // YCbCr
  quant_table: 3, // ImageMagick's table, mozjpeg's default
  trellis_multipass: false,
  trellis_opt_zero: false,
  trellis_opt_table: false,
  trellis_loops: 1,
  auto_subsample: true,
  chroma_subsample: 2,
  separate_chroma_quality: false,
  chroma_quality: 80,
};

/**
 * Up to this many output pixels JPEGs are baseline: measured on photos, progressive mozjpeg
 * costs 2.5-6x the encode time there for files of the same size or larger (200 px thumbnail:
 * 3.5 ms vs 21 ms warm, 2774 vs 2812 bytes); above it progressive saves ~9% and renders early.
 */
export const PROGRESSIVE_MIN_PIXELS = 500_000;

/**
 * Encodes RGB; alpha is ignored (flatten first). Path "native" (the default): outputs up to
 * PROGRESSIVE_MIN_PIXELS by our baseline encoder, larger ones by mozjpeg (progressive); path
 * "jsquash": mozjpeg for every size (baseline up to PROGRESSIVE_MIN_PIXELS), as before.
 */
export async function encodeJpeg(image: RgbaImage, quality: number, path: "native" | "jsquash" = "native"): Promise<Uint8Array> {
  const progressive = image.width * image.height > PROGRESSIVE_MIN_PIXELS;
  if (path === "native" && !progressive) return encodeNativeJpeg(image, quality);
  const options: MozJpegOptions = { ...JPEG_OPTIONS, quality, chroma_quality: quality, progressive };
  return withInstance(jpegEncoder, (codec) => detach(codec.encode(image.data, image.width, image.height, options)));
}

/**
 * Number of colour components in the first frame header (SOFn), or 0 when none is found.
 * Walks marker segments only; never reads entropy-coded data.
 */
export function jpegComponentCount(bytes: Uint8Array): number {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return 0;
  let p = 2;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) return 0;
    const marker = bytes[p + 1]!;
    if (marker === 0xff) {
      p += 1; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      p += 2; // markers without a length
      continue;
    }
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isSof) return p + 9 < bytes.length ? bytes[p + 9]! : 0;
    if (marker === 0xda || marker === 0xd9 || length < 2) return 0; // scan or end before any frame header
    p += 2 + length;
  }
  return 0;
}
