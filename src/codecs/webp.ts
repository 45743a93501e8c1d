/**
 * WebP through libwebp (squoosh build; the SIMD encoder, which workerd's V8 runs). Decoding
 * handles lossy, lossless and alpha; an animated WebP is refused by this decoder.
 */
import type { RgbaImage } from "./types";
import { detach, hasTranslucentPixel } from "./util";
import type { WebpOptions } from "./wasm";
import { webpDecoder, webpEncoder, withInstance } from "./wasm";

export async function decodeWebp(bytes: Uint8Array): Promise<RgbaImage> {
  const decoded = await withInstance(webpDecoder, (codec) => codec.decode(bytes));
  if (decoded === null) throw new Error("libwebp could not decode the image");
  return { width: decoded.width, height: decoded.height, data: decoded.data, hasAlpha: hasTranslucentPixel(decoded.data) };
}

/**
 * libwebp defaults (method 4: the speed/size balance cwebp ships with), lossy; alpha is kept
 * lossless (alpha_quality 100) so logos keep clean edges.
 */
const WEBP_OPTIONS: WebpOptions = {
  quality: 80,
  target_size: 0,
  target_PSNR: 0,
  method: 4,
  sns_strength: 50,
  filter_strength: 60,
  filter_sharpness: 0,
  filter_type: 1,
  partitions: 0,
  segments: 4,
  pass: 1,
  show_compressed: 0,
  preprocessing: 0,
  autofilter: 0,
  partition_limit: 0,
  alpha_compression: 1,
  alpha_filtering: 1,
  alpha_quality: 100,
  lossless: 0,
  exact: 0,
  image_hint: 0,
  emulate_jpeg_size: 0,
  thread_level: 0,
  low_memory: 0,
  near_lossless: 100,
  use_delta_palette: 0,
  use_sharp_yuv: 0,
};

export async function encodeWebp(image: RgbaImage, quality: number): Promise<Uint8Array> {
  const options: WebpOptions = { ...WEBP_OPTIONS, quality };
  const out = await withInstance(webpEncoder, (codec) => {
    const encoded = codec.encode(image.data, image.width, image.height, options);
    return encoded === null ? null : detach(encoded);
  });
  if (out === null) throw new Error("libwebp could not encode the image");
  return out;
}
