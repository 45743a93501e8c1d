// Pixel comparison helpers for the Node-side tests: decode with sharp (an independent decoder,
// libvips), PSNR, a windowed luma SSIM, region colours, bounding boxes, synthetic images, and
// metadata walkers for JPEG/PNG/WebP files.
import sharp, { type Sharp } from "sharp";

/** 8-bit RGBA pixels, row-major, no padding. */
export interface RawImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export type Rgb = readonly [r: number, g: number, b: number];
export type Rgba = readonly [r: number, g: number, b: number, a: number];

/**
 * Decodes a file (or finishes a sharp pipeline) to 8-bit sRGB RGBA. Grey and 16-bit inputs are
 * converted by libvips (`toColourspace("srgb")` maps 16-bit to 8-bit by scaling, not clipping).
 */
export async function decodeRgba(input: Uint8Array | Sharp): Promise<RawImage> {
  const pipeline = input instanceof Uint8Array ? sharp(input) : input;
  const { data, info } = await pipeline.toColourspace("srgb").ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 4 || data.length !== info.width * info.height * 4) {
    throw new Error(`expected 8-bit RGBA from sharp, got ${info.channels} channels, ${data.length} bytes for ${info.width}x${info.height}`);
  }
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length) };
}

/** Builds an RGBA image from a colour function. */
export function synthesize(width: number, height: number, colourAt: (x: number, y: number) => Rgba): RawImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = colourAt(x, y);
      data.set(c, (y * width + x) * 4);
    }
  }
  return { width, height, data };
}

/** A sharp pipeline reading raw RGBA pixels. */
export function sharpFromRaw(image: RawImage): Sharp {
  return sharp(image.data, { raw: { width: image.width, height: image.height, channels: 4 } });
}

export async function encodePng(image: RawImage): Promise<Uint8Array> {
  return new Uint8Array(await sharpFromRaw(image).png().toBuffer());
}

/** Deterministic pseudo-random bytes (xorshift32): noise images catch any misplaced pixel. */
export function noise(width: number, height: number, seed = 0x9e3779b9): RawImage {
  let s = seed >>> 0;
  const next = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s & 0xff;
  };
  return synthesize(width, height, () => [next(), next(), next(), 255]);
}

export function pixel(image: RawImage, x: number, y: number): Rgba {
  if (x < 0 || y < 0 || x >= image.width || y >= image.height) throw new RangeError(`pixel ${x},${y} outside ${image.width}x${image.height}`);
  const i = (y * image.width + x) * 4;
  const d = image.data;
  return [d[i]!, d[i + 1]!, d[i + 2]!, d[i + 3]!];
}

/** Mean colour of the rectangle [x, x + w) x [y, y + h), rounded. */
export function meanColour(image: RawImage, x: number, y: number, w: number, h: number): Rgba {
  const sums = [0, 0, 0, 0];
  for (let v = y; v < y + h; v++) {
    for (let u = x; u < x + w; u++) {
      const p = pixel(image, u, v);
      for (let c = 0; c < 4; c++) sums[c] = sums[c]! + p[c]!;
    }
  }
  const n = w * h;
  return [Math.round(sums[0]! / n), Math.round(sums[1]! / n), Math.round(sums[2]! / n), Math.round(sums[3]! / n)];
}

/** Largest per-channel difference between two colours (alpha included when both have it). */
export function colourDistance(a: readonly number[], b: readonly number[]): number {
  let max = 0;
  for (let c = 0; c < Math.min(a.length, b.length); c++) max = Math.max(max, Math.abs(a[c]! - b[c]!));
  return max;
}

/** Largest per-channel difference over two images of the same size. */
export function maxAbsDiff(a: RawImage, b: RawImage): number {
  assertSameSize(a, b);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

export interface Box {
  readonly x0: number;
  readonly y0: number;
  /** Exclusive. */
  readonly x1: number;
  readonly y1: number;
}

/** Bounding box of pixels differing from `colour` by more than `tolerance` in some channel, or null. */
export function changedBox(image: RawImage, colour: Rgba, tolerance: number): Box | null {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      if (colourDistance(pixel(image, x, y), colour) > tolerance) {
        x0 = Math.min(x0, x);
        y0 = Math.min(y0, y);
        x1 = Math.max(x1, x + 1);
        y1 = Math.max(y1, y + 1);
      }
    }
  }
  return x0 === Infinity ? null : { x0, y0, x1, y1 };
}

/** The RGB of each pixel composited over mid grey, so transparent areas compare by what shows. */
function flattenedRgb(image: RawImage): Float64Array {
  const out = new Float64Array(image.width * image.height * 3);
  const d = image.data;
  for (let p = 0, i = 0; i < d.length; p += 3, i += 4) {
    const a = d[i + 3]! / 255;
    out[p] = d[i]! * a + 128 * (1 - a);
    out[p + 1] = d[i + 1]! * a + 128 * (1 - a);
    out[p + 2] = d[i + 2]! * a + 128 * (1 - a);
  }
  return out;
}

function assertSameSize(a: RawImage, b: RawImage): void {
  if (a.width !== b.width || a.height !== b.height) throw new Error(`size differs: ${a.width}x${a.height} vs ${b.width}x${b.height}`);
}

/**
 * PSNR in dB over R, G, B (alpha composited over grey); Infinity for identical images.
 * Pixels inside `exclude` are left out.
 */
export function psnr(a: RawImage, b: RawImage, exclude?: Box): number {
  assertSameSize(a, b);
  const fa = flattenedRgb(a);
  const fb = flattenedRgb(b);
  let sum = 0;
  let n = 0;
  for (let y = 0; y < a.height; y++) {
    for (let x = 0; x < a.width; x++) {
      if (exclude && x >= exclude.x0 && x < exclude.x1 && y >= exclude.y0 && y < exclude.y1) continue;
      for (let c = 0, i = (y * a.width + x) * 3; c < 3; c++, i++) {
        const d = fa[i]! - fb[i]!;
        sum += d * d;
      }
      n += 3;
    }
  }
  const mse = sum / n;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

function luma(image: RawImage): Float64Array {
  const rgb = flattenedRgb(image);
  const out = new Float64Array(image.width * image.height);
  for (let p = 0; p < out.length; p++) out[p] = 0.299 * rgb[p * 3]! + 0.587 * rgb[p * 3 + 1]! + 0.114 * rgb[p * 3 + 2]!;
  return out;
}

/**
 * Mean SSIM on luma (Rec. 601) over 8x8 windows with stride 4 (Wang et al. 2004 with a box
 * window instead of the Gaussian; K1 = 0.01, K2 = 0.03, L = 255). 1 means identical.
 */
export function ssim(a: RawImage, b: RawImage, window = 8, stride = 4): number {
  assertSameSize(a, b);
  const la = luma(a);
  const lb = luma(b);
  const { width, height } = a;
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  const win = Math.min(window, width, height);
  let total = 0;
  let count = 0;
  for (let y = 0; y + win <= height; y += stride) {
    for (let x = 0; x + win <= width; x += stride) {
      let sa = 0;
      let sb = 0;
      let saa = 0;
      let sbb = 0;
      let sab = 0;
      for (let v = y; v < y + win; v++) {
        for (let u = x; u < x + win; u++) {
          const pa = la[v * width + u]!;
          const pb = lb[v * width + u]!;
          sa += pa;
          sb += pb;
          saa += pa * pa;
          sbb += pb * pb;
          sab += pa * pb;
        }
      }
      const n = win * win;
      const ma = sa / n;
      const mb = sb / n;
      const va = saa / n - ma * ma;
      const vb = sbb / n - mb * mb;
      const cov = sab / n - ma * mb;
      total += ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma * ma + mb * mb + c1) * (va + vb + c2));
      count++;
    }
  }
  return total / count;
}

// ---------------------------------------------------------------------------------------------
// Metadata walkers (independent of the service's own probe).

export interface JpegSegments {
  /** Marker bytes (0xE0 = APP0 ... 0xFE = COM, 0xDA = SOS) of every segment, in order. */
  readonly markers: number[];
  /** APPn/COM payload identifiers, e.g. "JFIF", "Exif", "http://ns.adobe.com/xap/1.0/". */
  readonly identifiers: string[];
  /** Bytes after the EOI marker that ends the image (0 when the file ends there). */
  readonly trailingBytes: number;
}

/** Walks the marker segments of a JPEG, then scans entropy-coded data for the EOI. */
export function jpegSegments(bytes: Uint8Array): JpegSegments {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error("not a JPEG");
  const markers: number[] = [];
  const identifiers: string[] = [];
  let p = 2;
  let eoi = -1;
  while (p + 4 <= bytes.length) {
    if (bytes[p] !== 0xff) throw new Error(`no marker at ${p}`);
    const marker = bytes[p + 1]!;
    if (marker === 0xff) {
      p++;
      continue;
    }
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    markers.push(marker);
    if ((marker >= 0xe0 && marker <= 0xef) || marker === 0xfe) {
      const body = bytes.subarray(p + 4, p + 2 + length);
      const nul = body.indexOf(0);
      identifiers.push(new TextDecoder("latin1").decode(body.subarray(0, nul < 0 ? Math.min(32, body.length) : Math.min(nul, 32))));
    }
    p += 2 + length;
    if (marker === 0xda) {
      // Entropy-coded data: FF 00 is a stuffed byte, FF D0-D7 restart markers; anything else is a marker.
      while (p + 1 < bytes.length) {
        if (bytes[p] === 0xff && bytes[p + 1] !== 0x00 && !(bytes[p + 1]! >= 0xd0 && bytes[p + 1]! <= 0xd7) && bytes[p + 1] !== 0xff) break;
        p++;
      }
      if (bytes[p + 1] === 0xd9) {
        eoi = p + 2;
        break;
      }
    }
  }
  return { markers, identifiers, trailingBytes: eoi < 0 ? -1 : bytes.length - eoi };
}

/** Chunk types of a PNG, in order. */
export function pngChunks(bytes: Uint8Array): string[] {
  const types: string[] = [];
  let p = 8;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (p + 8 <= bytes.length) {
    const length = view.getUint32(p);
    types.push(String.fromCharCode(...bytes.subarray(p + 4, p + 8)));
    p += 12 + length;
  }
  return types;
}

/** Chunk FourCCs of a WebP (RIFF) file, in order. */
export function webpChunks(bytes: Uint8Array): string[] {
  const types: string[] = [];
  let p = 12;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (p + 8 <= bytes.length) {
    const length = view.getUint32(p + 4, true);
    types.push(String.fromCharCode(...bytes.subarray(p, p + 4)));
    p += 8 + length + (length & 1);
  }
  return types;
}

/** True when `needle` (ASCII) occurs in `bytes`. */
export function containsAscii(bytes: Uint8Array, needle: string): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes(Buffer.from(needle, "latin1"));
}

// ---------------------------------------------------------------------------------------------
// A reference resampler and geometry checks.

function lanczos3(x: number): number {
  if (x === 0) return 1;
  if (x <= -3 || x >= 3) return 0;
  const p = Math.PI * x;
  return (3 * Math.sin(p) * Math.sin(p / 3)) / (p * p);
}

/**
 * Resamples `rows` rows of `srcLength` pixels of `channels` floats to `dstLength`, writing
 * transposed (so two calls do x, then y, and return to row order).
 */
function lanczosPass(src: Float32Array, channels: 3 | 4, srcLength: number, rows: number, dstLength: number): Float32Array {
  const out = new Float32Array(rows * dstLength * channels);
  const scale = srcLength / dstLength;
  const stretch = Math.max(1, scale); // widen the kernel when reducing (anti-aliasing)
  const support = 3 * stretch;
  // Per output pixel: its taps (source offsets, edges clamped) and normalised weights.
  const taps = Math.floor(2 * support) + 2;
  const offsets = new Int32Array(dstLength * taps);
  const weights = new Float32Array(dstLength * taps);
  for (let x = 0; x < dstLength; x++) {
    const centre = (x + 0.5) * scale - 0.5; // pixel centres aligned, as in libvips, Pillow and the resize crate
    const first = Math.ceil(centre - support);
    let total = 0;
    for (let k = 0; k < taps; k++) {
      const i = first + k;
      const w = lanczos3((i - centre) / stretch);
      offsets[x * taps + k] = Math.min(srcLength - 1, Math.max(0, i)) * channels;
      weights[x * taps + k] = w;
      total += w;
    }
    for (let k = 0; k < taps; k++) weights[x * taps + k] = weights[x * taps + k]! / total;
  }
  for (let r = 0; r < rows; r++) {
    const row = r * srcLength * channels;
    for (let x = 0; x < dstLength; x++) {
      let a0 = 0;
      let a1 = 0;
      let a2 = 0;
      let a3 = 0;
      const end = (x + 1) * taps;
      if (channels === 3) {
        for (let k = x * taps; k < end; k++) {
          const w = weights[k]!;
          const s = row + offsets[k]!;
          a0 += w * src[s]!;
          a1 += w * src[s + 1]!;
          a2 += w * src[s + 2]!;
        }
      } else {
        for (let k = x * taps; k < end; k++) {
          const w = weights[k]!;
          const s = row + offsets[k]!;
          a0 += w * src[s]!;
          a1 += w * src[s + 1]!;
          a2 += w * src[s + 2]!;
          a3 += w * src[s + 3]!;
        }
      }
      const o = (x * rows + r) * channels;
      out[o] = a0;
      out[o + 1] = a1;
      out[o + 2] = a2;
      if (channels === 4) out[o + 3] = a3;
    }
  }
  return out;
}

/**
 * A plain separable Lanczos3 resize in sRGB (premultiplied alpha when there is any), edges
 * clamped, pixel centres aligned: the textbook filter, straight from the full-size pixels (no
 * box pre-shrink), as a yardstick independent of both the service's resizer and libvips.
 */
export function lanczos3Resize(image: RawImage, width: number, height: number): RawImage {
  const n = image.width * image.height;
  const d = image.data;
  let opaque = true;
  for (let p = 3; p < d.length; p += 4) {
    if (d[p] !== 255) {
      opaque = false;
      break;
    }
  }
  const channels = opaque ? 3 : 4;
  const input = new Float32Array(n * channels);
  for (let p = 0, i = 0; p < n * 4; p += 4, i += channels) {
    const a = opaque ? 1 : d[p + 3]! / 255;
    input[i] = d[p]! * a;
    input[i + 1] = d[p + 1]! * a;
    input[i + 2] = d[p + 2]! * a;
    if (!opaque) input[i + 3] = d[p + 3]!;
  }
  const horizontal = lanczosPass(input, channels, image.width, image.height, width);
  const both = lanczosPass(horizontal, channels, image.height, width, height);
  const data = new Uint8Array(width * height * 4);
  const clamp = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));
  for (let p = 0, i = 0; p < width * height * 4; p += 4, i += channels) {
    const alpha = opaque ? 255 : both[i + 3]!;
    const k = opaque ? 1 : alpha > 0 ? 255 / alpha : 0;
    data[p] = clamp(both[i]! * k);
    data[p + 1] = clamp(both[i + 1]! * k);
    data[p + 2] = clamp(both[i + 2]! * k);
    data[p + 3] = clamp(alpha);
  }
  return { width, height, data };
}

/** The rectangle [x, x + w) x [y, y + h) of an image. */
export function extract(image: RawImage, x: number, y: number, w: number, h: number): RawImage {
  const data = new Uint8Array(w * h * 4);
  for (let v = 0; v < h; v++) data.set(image.data.subarray(((y + v) * image.width + x) * 4, ((y + v) * image.width + x + w) * 4), v * w * 4);
  return { width: w, height: h, data };
}

/** Largest channel difference between each pixel and its left-right mirror image. 0 for a symmetric image. */
export function mirrorError(image: RawImage): { error: number; x: number; y: number } {
  let worst = { error: 0, x: -1, y: -1 };
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width / 2; x++) {
      const d = colourDistance(pixel(image, x, y), pixel(image, image.width - 1 - x, y));
      if (d > worst.error) worst = { error: d, x, y };
    }
  }
  return worst;
}
