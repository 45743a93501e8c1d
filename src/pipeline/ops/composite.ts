/**
 * Alpha compositing on RGBA8, straight (non-premultiplied) storage, premultiplied maths.
 */
import type { RgbaImage } from "../../codecs/types";
import type { Rgba } from "../../transform/options";

/** A width x height image filled with `colour`. */
export function solid(width: number, height: number, colour: Rgba): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  // Little-endian: the first byte of each 32-bit word is red.
  const packed = (colour.r | (colour.g << 8) | (colour.b << 16) | (colour.a << 24)) >>> 0;
  new Uint32Array(data.buffer).fill(packed);
  return { width, height, data, hasAlpha: colour.a < 255 };
}

/**
 * Draws `top` over `base` (Porter-Duff source-over) with its top-left corner at (left, topY),
 * scaling top's alpha by `opacity` (0..1). Parts outside `base` are clipped. Writes into
 * `base.data` and returns `base` with hasAlpha updated (drawing over opaque pixels keeps them
 * opaque).
 */
export function drawOver(base: RgbaImage, top: RgbaImage, left: number, topY: number, opacity = 1): RgbaImage {
  const x0 = Math.max(0, left);
  const y0 = Math.max(0, topY);
  const x1 = Math.min(base.width, left + top.width);
  const y1 = Math.min(base.height, topY + top.height);
  if (x0 >= x1 || y0 >= y1 || opacity <= 0) return base;
  const dst = base.data;
  const src = top.data;
  const k = opacity / 255; // top alpha byte -> coverage 0..1
  for (let y = y0; y < y1; y++) {
    let d = (y * base.width + x0) * 4;
    let s = ((y - topY) * top.width + (x0 - left)) * 4;
    for (let x = x0; x < x1; x++, d += 4, s += 4) {
      const sa = src[s + 3]! * k;
      if (sa === 0) continue;
      const da = dst[d + 3]!;
      if (da === 255) {
        // Opaque base (the usual case): out = top·sa + base·(1 - sa).
        const keep = 1 - sa;
        dst[d] = src[s]! * sa + dst[d]! * keep;
        dst[d + 1] = src[s + 1]! * sa + dst[d + 1]! * keep;
        dst[d + 2] = src[s + 2]! * sa + dst[d + 2]! * keep;
      } else {
        const baseCover = (da / 255) * (1 - sa);
        const outA = sa + baseCover;
        dst[d] = (src[s]! * sa + dst[d]! * baseCover) / outA;
        dst[d + 1] = (src[s + 1]! * sa + dst[d + 1]! * baseCover) / outA;
        dst[d + 2] = (src[s + 2]! * sa + dst[d + 2]! * baseCover) / outA;
        dst[d + 3] = outA * 255;
      }
    }
  }
  return base;
}

/** Composites `image` onto an opaque `colour` (its alpha is ignored), in place; the result is opaque. */
export function flattenOnto(image: RgbaImage, colour: Rgba): RgbaImage {
  const data = image.data;
  for (let i = 0; i < data.length; i += 4) {
    const a = data[i + 3]!;
    if (a === 255) continue;
    const t = a / 255;
    const u = 1 - t;
    data[i] = data[i]! * t + colour.r * u;
    data[i + 1] = data[i + 1]! * t + colour.g * u;
    data[i + 2] = data[i + 2]! * t + colour.b * u;
    data[i + 3] = 255;
  }
  return { width: image.width, height: image.height, data, hasAlpha: false };
}
