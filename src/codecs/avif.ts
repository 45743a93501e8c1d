/**
 * AVIF through libavif + libaom (squoosh build, single-threaded: Workers have no threads).
 * Decoding returns 8-bit RGBA; libavif does not apply irot/imir, which the probe reports as
 * an EXIF orientation for the pipeline's orient step.
 */
import type { RgbaImage } from "./types";
import { detach, hasTranslucentPixel } from "./util";
import type { AvifOptions } from "./wasm";
import { avifDecoder, avifEncoder, withInstance } from "./wasm";

export async function decodeAvif(bytes: Uint8Array): Promise<RgbaImage> {
  const decoded = await withInstance(avifDecoder, (codec) => codec.decode(bytes, 8));
  if (decoded === null) throw new Error("libavif could not decode the image");
  return { width: decoded.width, height: decoded.height, data: decoded.data, hasAlpha: hasTranslucentPixel(decoded.data) };
}

/**
 * libaom speed for a synchronous request. Measured in workerd on 800x533 photos at quality 65:
 * speed 9 (10 gives the same file) ~160-240 ms, speed 8 ~310-340 ms, 7 ~580-700 ms,
 * 6 (libavif's default) ~0.9-1.6 s. Speed 8 files are 30-45% smaller than speed 9's at equal
 * SSIM (9 was larger than WebP 80 on one photo), and 7 gains only ~3% more. So: 8, and 9
 * for outputs above AVIF_FAST_ABOVE_PIXELS to bound the worst-case latency.
 */
export const AVIF_SPEED = 8;
export const AVIF_FAST_SPEED = 9;
export const AVIF_FAST_ABOVE_PIXELS = 1_000_000;

const AVIF_OPTIONS: AvifOptions = {
  quality: 65,
  qualityAlpha: -1, // same as quality
  denoiseLevel: 0,
  tileColsLog2: 0,
  tileRowsLog2: 0,
  speed: AVIF_SPEED,
  subsample: 1, // 4:2:0
  chromaDeltaQ: false,
  sharpness: 0,
  tune: 0, // auto
  enableSharpYUV: false,
  bitDepth: 8,
  lossless: false,
};

export async function encodeAvif(image: RgbaImage, quality: number): Promise<Uint8Array> {
  const speed = image.width * image.height > AVIF_FAST_ABOVE_PIXELS ? AVIF_FAST_SPEED : AVIF_SPEED;
  const options: AvifOptions = { ...AVIF_OPTIONS, quality, speed };
  const view = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  const out = await withInstance(avifEncoder, (codec) => {
    const encoded = codec.encode(view, image.width, image.height, options);
    return encoded === null ? null : detach(encoded);
  });
  if (out === null) throw new Error("libavif could not encode the image");
  return out;
}
