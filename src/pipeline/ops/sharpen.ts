/**
 * Unsharp mask on luminance: L' = L + amount·(L - blur(L)), with blur a 3x3 binomial kernel
 * (σ ≈ 0.7 px: crispens edges softened by downscaling without halos), and the change in L
 * added to R, G and B alike, so colours do not fringe. Alpha is untouched.
 */
import type { RgbaImage } from "../../codecs/types";

/** Cloudflare's `sharpen` (0..10, 1 recommended after downscaling) as the unsharp amount. */
export function sharpenAmount(strength: number): number {
  return strength * 0.6;
}

export function unsharpLuma(image: RgbaImage, amount: number): RgbaImage {
  if (!(amount > 0)) return image;
  const { width: w, height: h, data } = image;
  const n = w * h;
  // Luma (Rec. 601 weights, fixed point ×4: 0..1020) in one plane.
  const luma = new Uint16Array(n);
  for (let p = 0, i = 0; p < n; p++, i += 4) {
    luma[p] = (data[i]! * 1224 + data[i + 1]! * 2404 + data[i + 2]! * 467 + 512) >> 10;
  }
  // Horizontal [1 2 1] then vertical [1 2 1] (sum ×16), edges extended.
  const horizontal = new Uint16Array(n);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      const left = luma[row + (x > 0 ? x - 1 : 0)]!;
      const right = luma[row + (x < w - 1 ? x + 1 : x)]!;
      horizontal[row + x] = left + 2 * luma[row + x]! + right;
    }
  }
  const out = new Uint8ClampedArray(data.length);
  const k = amount / 4; // luma is ×4
  for (let y = 0; y < h; y++) {
    const up = (y > 0 ? y - 1 : 0) * w;
    const row = y * w;
    const down = (y < h - 1 ? y + 1 : y) * w;
    for (let x = 0; x < w; x++) {
      const p = row + x;
      const blurred = (horizontal[up + x]! + 2 * horizontal[p]! + horizontal[down + x]!) / 16;
      const delta = (luma[p]! - blurred) * k;
      const i = p * 4;
      out[i] = data[i]! + delta;
      out[i + 1] = data[i + 1]! + delta;
      out[i + 2] = data[i + 2]! + delta;
      out[i + 3] = data[i + 3]!;
    }
  }
  return { width: w, height: h, data: out, hasAlpha: image.hasAlpha };
}
