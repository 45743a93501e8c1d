/**
 * Gaussian blur approximated by three box blurs (W. Wells, "Efficient synthesis of Gaussian
 * filters by cascaded uniform filters", 1986): each pass is a running sum, so the cost is
 * independent of the radius (~6 linear passes). Works on 16-bit fixed point, premultiplied
 * when the image has alpha (transparent pixels' colours do not bleed in), edges extended.
 */
import type { RgbaImage } from "../../codecs/types";

/** Blur `radius` as Cloudflare's `blur` (1..250): treated as 2 standard deviations. */
export function blurRadiusToSigma(radius: number): number {
  return radius / 2;
}

export function gaussianBlur(image: RgbaImage, sigma: number): RgbaImage {
  if (!(sigma > 0)) return image;
  const { width, height } = image;
  const fixed = toFixed(image);
  const scratch = new Uint16Array(fixed.length);
  const sums = new Float64Array(width * 4);
  for (const radius of boxRadii(sigma, 3)) {
    if (radius === 0) continue;
    boxRows(fixed, scratch, width, height, radius);
    boxColumns(scratch, fixed, width, height, radius, sums);
  }
  return fromFixed(fixed, image.hasAlpha, width, height);
}

/**
 * Radii of `count` box filters whose cascade has the variance of a Gaussian of `sigma`.
 *
 * Worked out from the variances (convolution adds them): a box of radius r (width 2r + 1,
 * uniform over the integers -r..r) has variance (1/(2r+1)) * sum k^2 = r(r + 1) / 3. With all
 * boxes of one radius, count * r(r + 1) / 3 = sigma^2 has the real root
 * r* = (sqrt(1 + 12 sigma^2 / count) - 1) / 2, which is rarely a whole number. So take
 * `small` = floor(r*) and use radius small + 1 for `big` of the boxes: each swap adds
 * ((small + 1)(small + 2) - small(small + 1)) / 3 = 2(small + 1) / 3 of variance, and `big` is
 * the count of swaps that brings the total closest to sigma^2. Cascading boxes to approximate a
 * Gaussian is W. Wells (1986), cited above.
 */
export function boxRadii(sigma: number, count: number): number[] {
  const target = 3 * sigma * sigma; // sum over the boxes of r(r + 1)
  const small = Math.floor((Math.sqrt(1 + (4 * target) / count) - 1) / 2);
  const swaps = Math.round((target - count * small * (small + 1)) / (2 * (small + 1)));
  const big = Math.min(count, Math.max(0, swaps));
  return Array.from({ length: count }, (_, i) => (i < count - big ? small : small + 1));
}

/** RGBA8 -> 16-bit: premultiplied (C·A, A·256) when the image has alpha, else C·256. */
export function toFixed(image: RgbaImage): Uint16Array {
  const src = image.data;
  const out = new Uint16Array(src.length);
  if (image.hasAlpha) {
    for (let i = 0; i < src.length; i += 4) {
      const alpha = src[i + 3]!;
      out[i] = src[i]! * alpha;
      out[i + 1] = src[i + 1]! * alpha;
      out[i + 2] = src[i + 2]! * alpha;
      out[i + 3] = alpha << 8;
    }
  } else {
    for (let i = 0; i < src.length; i++) out[i] = src[i]! << 8;
  }
  return out;
}

export function fromFixed(fixed: Uint16Array, hasAlpha: boolean, width: number, height: number): RgbaImage {
  const data = new Uint8ClampedArray(fixed.length);
  if (hasAlpha) {
    for (let i = 0; i < fixed.length; i += 4) {
      const a = fixed[i + 3]!;
      if (a === 0) continue; // stays 0,0,0,0
      // C·A / (A·256) · 256 = C
      const k = 256 / a;
      data[i] = fixed[i]! * k;
      data[i + 1] = fixed[i + 1]! * k;
      data[i + 2] = fixed[i + 2]! * k;
      data[i + 3] = a / 256;
    }
  } else {
    for (let i = 0; i < fixed.length; i++) data[i] = fixed[i]! / 256;
  }
  return { width, height, data, hasAlpha };
}

/** Horizontal box blur of radius r from `src` into `dst`, edges extended. */
export function boxRows(src: Uint16Array, dst: Uint16Array, width: number, height: number, r: number): void {
  const inv = 1 / (2 * r + 1);
  const last = width - 1;
  for (let y = 0; y < height; y++) {
    const row = y * width * 4;
    for (let c = 0; c < 4; c++) {
      const first = src[row + c]!;
      let sum = first * (r + 1);
      for (let i = 1; i <= r; i++) sum += src[row + Math.min(i, last) * 4 + c]!;
      for (let x = 0; x < width; x++) {
        dst[row + x * 4 + c] = sum * inv + 0.5;
        sum += src[row + Math.min(x + r + 1, last) * 4 + c]! - src[row + Math.max(x - r, 0) * 4 + c]!;
      }
    }
  }
}

/** Vertical box blur of radius r, row by row with a running sum per column (cache friendly). */
export function boxColumns(
  src: Uint16Array,
  dst: Uint16Array,
  width: number,
  height: number,
  r: number,
  sums: Float64Array,
): void {
  const inv = 1 / (2 * r + 1);
  const stride = width * 4;
  const last = height - 1;
  for (let i = 0; i < stride; i++) sums[i] = src[i]! * (r + 1);
  for (let k = 1; k <= r; k++) {
    const row = Math.min(k, last) * stride;
    for (let i = 0; i < stride; i++) sums[i] = sums[i]! + src[row + i]!;
  }
  for (let y = 0; y < height; y++) {
    const out = y * stride;
    const add = Math.min(y + r + 1, last) * stride;
    const remove = Math.max(y - r, 0) * stride;
    for (let i = 0; i < stride; i++) {
      const s = sums[i]!;
      dst[out + i] = s * inv + 0.5;
      sums[i] = s + src[add + i]! - src[remove + i]!;
    }
  }
}
