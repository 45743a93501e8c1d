/**
 * PNG through squoosh's Rust `png` crate. Decoding expands every PNG type to RGBA8: palette
 * (with tRNS alpha), grayscale 1/2/4/8/16-bit, 16-bit channels (reduced to 8), Adam7
 * interlacing. gAMA/iCCP are ignored (the pixels are taken as sRGB). APNG: the default image.
 */
import { MAX_DECODE_PIXELS, type RgbaImage } from "./types";
import { detach, hasTranslucentPixel } from "./util";
import { pngCodec, withInstance } from "./wasm";

export async function decodePng(bytes: Uint8Array): Promise<RgbaImage> {
  // A decompression bomb makes the Rust decoder abort on allocation; refuse it from IHDR.
  if (bytes.length >= 24) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const width = view.getUint32(16);
    const height = view.getUint32(20);
    if (width * height > MAX_DECODE_PIXELS) throw new Error(`PNG of ${width}x${height} is too large to decode`);
  }
  const decoded = await withInstance(pngCodec, (codec) => codec.decode(bytes));
  return {
    width: decoded.width,
    height: decoded.height,
    data: decoded.data,
    hasAlpha: hasTranslucentPixel(decoded.data),
  };
}

/** Lossless, 8-bit RGBA; `quality` does not apply. */
export async function encodePng(image: RgbaImage, _quality: number): Promise<Uint8Array> {
  const view = new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength);
  return withInstance(pngCodec, (codec) => detach(codec.encode(view, image.width, image.height, 8)));
}
