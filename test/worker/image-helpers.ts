/**
 * Pixel helpers for the codec and pipeline tests: synthetic images, pixel reads.
 */
import { encode } from "../../src/codecs";
import type { RgbaImage } from "../../src/codecs/types";
import type { SourceImage } from "../../src/pipeline";
import { DEFAULT_TRANSFORM } from "../../src/transform/params";
import type { TransformOptions } from "../../src/transform/options";

export type Px = readonly [r: number, g: number, b: number, a: number];

export function synthetic(width: number, height: number, colourAt: (x: number, y: number) => Px): RgbaImage {
  const data = new Uint8ClampedArray(width * height * 4);
  let hasAlpha = false;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b, a] = colourAt(x, y);
      const i = (y * width + x) * 4;
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = a;
      if (a < 255) hasAlpha = true;
    }
  }
  return { width, height, data, hasAlpha };
}

export const RED: Px = [255, 0, 0, 255];
export const GREEN: Px = [0, 255, 0, 255];
export const BLUE: Px = [0, 0, 255, 255];
export const WHITE: Px = [255, 255, 255, 255];

/** Quadrants: red top-left, green top-right, blue bottom-left, white bottom-right. */
export function quadrants(width: number, height: number): RgbaImage {
  return synthetic(width, height, (x, y) => {
    const right = x >= width / 2;
    const bottom = y >= height / 2;
    return bottom ? (right ? WHITE : BLUE) : right ? GREEN : RED;
  });
}

/** Every pixel unique: R = x, G = y, B = 255 - x. */
export function coordinates(width: number, height: number): RgbaImage {
  return synthetic(width, height, (x, y) => [x, y, 255 - x, 255]);
}

export function solidImage(width: number, height: number, colour: Px): RgbaImage {
  return synthetic(width, height, () => colour);
}

export function pixel(image: RgbaImage, x: number, y: number): Px {
  const i = (y * image.width + x) * 4;
  return [image.data[i]!, image.data[i + 1]!, image.data[i + 2]!, image.data[i + 3]!];
}

/** Colours at the centres of the four quadrants: [top-left, top-right, bottom-left, bottom-right]. */
export function quadrantColours(image: RgbaImage): Px[] {
  const { width: w, height: h } = image;
  const xs = [Math.floor(w / 4), Math.floor((3 * w) / 4)] as const;
  const ys = [Math.floor(h / 4), Math.floor((3 * h) / 4)] as const;
  return [pixel(image, xs[0], ys[0]), pixel(image, xs[1], ys[0]), pixel(image, xs[0], ys[1]), pixel(image, xs[1], ys[1])];
}

/** A lossless (PNG) source for the pipeline. */
export async function pngSource(image: RgbaImage, orientation = 1): Promise<SourceImage> {
  return { bytes: await encode(image, "png", 100), format: "png", orientation };
}

export function options(overrides: Partial<TransformOptions> = {}): TransformOptions {
  return { ...DEFAULT_TRANSFORM, format: "png", ...overrides };
}

export function maxChannelDifference(a: Px, b: Px): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]), Math.abs(a[2] - b[2]), Math.abs(a[3] - b[3]));
}

/** Mean absolute difference per channel (RGB) between two same-sized images. */
export function meanAbsoluteDifference(a: RgbaImage, b: RgbaImage): number {
  let total = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    total += Math.abs(a.data[i]! - b.data[i]!) + Math.abs(a.data[i + 1]! - b.data[i + 1]!) + Math.abs(a.data[i + 2]! - b.data[i + 2]!);
  }
  return total / ((a.data.length / 4) * 3);
}

/** JPEG marker segments before the first scan: [marker, length] pairs. */
export function jpegSegments(bytes: Uint8Array): Array<[number, number]> {
  const segments: Array<[number, number]> = [];
  let p = 2;
  while (p + 4 <= bytes.length && bytes[p] === 0xff) {
    const marker = bytes[p + 1]!;
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    segments.push([marker, length]);
    if (marker === 0xda) break;
    p += 2 + length;
  }
  return segments;
}

export function containsAscii(bytes: Uint8Array, text: string): boolean {
  const needle = new TextEncoder().encode(text);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}
