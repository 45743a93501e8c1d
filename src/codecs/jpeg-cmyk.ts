/**
 * CMYK and YCCK JPEGs (4 components), which mozjpeg's RGBA output refuses (the full-size decode
 * path; the pipeline's native path handles them in ../pipeline/steps/decode.ts).
 *
 * Colour-managed when possible: our WASM decoder (./native) outputs the ink amounts, converted
 * to sRGB through the file's embedded CMYK ICC profile (see jpegCmykTransform in
 * ../images/icc.ts). Otherwise (no embedded profile, or a variant our decoder does not
 * handle) jpeg-js (pure JS) decodes them: it reads the Adobe APP14 marker (transform 0 = CMYK,
 * 2 = YCCK), undoes Adobe's inverted storage, and converts with R = (255 - C)(255 - K) / 255
 * (and likewise G, B), the naive conversion without a profile (jpeg-js has no API for the raw
 * components). A 4-component file without an Adobe marker is refused as undecodable. Loaded
 * with a dynamic import, so only isolates that meet a CMYK file pay for it; ~0.4 s for 1.6 MP.
 */
import { decode } from "jpeg-js";
import { applyCmykTransform, jpegCmykTransform } from "../images/icc";
import { openNativeSession } from "./native";
import { MAX_DECODE_PIXELS, type RgbaImage } from "./types";

export async function decodeCmykJpeg(bytes: Uint8Array): Promise<RgbaImage> {
  const managed = await decodeManaged(bytes);
  if (managed !== undefined) return managed;
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

/** Raw CMYK from the native decoder (full size), through the CMYK profile; undefined when either is unavailable. */
async function decodeManaged(bytes: Uint8Array): Promise<RgbaImage | undefined> {
  const transform = await jpegCmykTransform(bytes);
  if (transform === undefined) return undefined;
  const session = openNativeSession();
  try {
    const probe = session.probeJpeg(bytes);
    if (!probe.supported || (probe.color !== "cmyk" && probe.color !== "ycck") || probe.width * probe.height > MAX_DECODE_PIXELS) return undefined;
    const image = session.decodeJpeg(0, { rawCmyk: true, allowCorrupt: true });
    const data = image.data.slice(); // out of WASM memory before the session is released
    applyCmykTransform(data, transform);
    return { width: image.width, height: image.height, data, hasAlpha: false };
  } catch {
    return undefined; // jpeg-js decides (and reports corrupt files)
  } finally {
    session.release();
  }
}
