/**
 * CMYK and YCCK JPEGs (4 components), which mozjpeg's RGBA output refuses. jpeg-js (pure JS)
 * decodes them: it reads the Adobe APP14 marker (transform 0 = CMYK, 2 = YCCK), undoes
 * Adobe's inverted storage, and converts with R = (255 - C)(255 - K) / 255 (and likewise G, B),
 * the naive conversion without an ICC profile: colours match what `-colorspace CMYK` and
 * most web tools produce, not a press proof. A 4-component file without an Adobe marker is
 * refused as undecodable. Loaded with a dynamic import, so only isolates that meet a CMYK
 * file pay for it; ~0.4 s for 1.6 MP.
 */
import { decode } from "jpeg-js";
import { MAX_DECODE_PIXELS, type RgbaImage } from "./types";

export function decodeCmykJpeg(bytes: Uint8Array): RgbaImage {
  const decoded = decode(bytes, {
    useTArray: true,
    formatAsRGBA: true,
    tolerantDecoding: true,
    maxResolutionInMP: MAX_DECODE_PIXELS / 1_000_000,
    maxMemoryUsageInMB: 1024,
  });
  const data = new Uint8ClampedArray(decoded.data.buffer, decoded.data.byteOffset, decoded.data.byteLength);
  return { width: decoded.width, height: decoded.height, data, hasAlpha: false };
}
