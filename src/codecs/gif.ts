/**
 * GIF, first frame only, through omggif (pure JS, ~800 lines, no dependencies; the GIF reader
 * inside jimp/gifwrap). Its output for our corpus matches libvips/libnsgif (sharp) exactly.
 * The frame is drawn on a transparent canvas the size of the logical screen, as browsers show
 * the first frame; the transparent palette index becomes alpha 0. Loaded with a dynamic
 * import by ./index, so isolates that never see a GIF do not load it.
 */
import { GifReader } from "omggif";
import { MAX_DECODE_PIXELS, type RgbaImage } from "./types";
import { hasTranslucentPixel } from "./util";

export function decodeGif(bytes: Uint8Array): RgbaImage {
  const reader = new GifReader(bytes);
  if (reader.numFrames() < 1) throw new Error("GIF has no image");
  const { width, height } = reader;
  if (width < 1 || height < 1) throw new Error("GIF has an empty logical screen");
  // The screen size is all a hostile 35-byte GIF needs to claim 65535x65535 (17 GB of RGBA).
  if (width * height > MAX_DECODE_PIXELS) throw new Error(`GIF screen ${width}x${height} is too large to decode`);
  const frame = reader.frameInfo(0);
  // omggif writes rows with the screen's stride: a frame outside the screen would wrap.
  if (frame.x + frame.width > width || frame.y + frame.height > height) {
    throw new Error("GIF frame lies outside the logical screen");
  }
  const data = new Uint8ClampedArray(width * height * 4);
  reader.decodeAndBlitFrameRGBA(0, data);
  return { width, height, data, hasAlpha: hasTranslucentPixel(data) };
}
