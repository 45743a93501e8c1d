/**
 * Damaged files through the streamed decode (JPEG and PNG rows pushed into the resampler):
 * truncations, bit flips, random bytes in the entropy/zlib data and in the headers, with
 * random sizes, fits and orientations. Every outcome is an image of exactly the asked width and
 * height (fit squeeze, cover or pad: each gives the w x h box whatever the source's size; checked
 * on the result and on the encoded PNG's header) or a 4xx ProblemError; never another error, a
 * trap or a hang. (Stored files passed the upload's
 * integrity check, so this is defence in depth: CRCs are not re-checked here.)
 */
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import { runPipeline, type SourceImage } from "../../src/pipeline";
import type { ImageFormat } from "../../src/images/format";
import type { Fit } from "../../src/transform/options";
import { loadImage } from "./fixtures";
import { options } from "./image-helpers";
import { mulberry32 } from "../mulberry32";

const LIMITS = { maxSide: 4096, maxPixels: 16_000_000 };

function mutate(src: Uint8Array, rand: () => number, headerEnd: number): { bytes: Uint8Array; what: string } {
  const int = (n: number): number => Math.floor(rand() * n);
  const b = src.slice();
  switch (int(4)) {
    case 0: {
      const cut = 8 + int(src.length - 8);
      return { bytes: src.slice(0, cut), what: `truncated at ${cut}` };
    }
    case 1: {
      const n = 1 + int(8);
      for (let i = 0; i < n; i++) {
        const at = int(b.length);
        b[at] = b[at]! ^ (1 << int(8));
      }
      return { bytes: b, what: `${n} bit flips` };
    }
    case 2: {
      const n = 1 + int(4);
      for (let i = 0; i < n; i++) b[8 + int(headerEnd - 8)] = int(256);
      return { bytes: b, what: `${n} random header bytes` };
    }
    default: {
      const n = 1 + int(16);
      for (let i = 0; i < n; i++) b[headerEnd + int(b.length - headerEnd)] = rand() < 0.3 ? 0xff : int(256);
      return { bytes: b, what: `${n} random data bytes` };
    }
  }
}

/** The fits whose output is the w x h box exactly, whatever the source's size. */
const BOX_FITS = ["squeeze", "cover", "pad"] as const satisfies readonly Fit[];

/** Width and height from a PNG's IHDR (bytes 16..23, big-endian). */
function pngSize(png: Uint8Array): [number, number] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}

async function fuzz(name: string, format: ImageFormat, headerEnd: (bytes: Uint8Array) => number, seed: number, rounds: number): Promise<string> {
  const original = await loadImage(name);
  const rand = mulberry32(seed); // seeded: a failure can be replayed
  const outcomes = new Map<string, number>();
  for (let i = 0; i < rounds; i++) {
    const { bytes, what } = mutate(original, rand, headerEnd(original));
    const width = 1 + Math.floor(rand() * 300);
    const height = 1 + Math.floor(rand() * 300);
    const fit = BOX_FITS[Math.floor(rand() * BOX_FITS.length)]!;
    const source: SourceImage = { bytes, format, orientation: 1 + Math.floor(rand() * 8) };
    let outcome: string;
    try {
      const result = await runPipeline(source, options({ width, height, fit, format: "png" }), { limits: LIMITS });
      const label = `${name} mutation ${i} (${what}, ${width}x${height} fit=${fit})`;
      expect([result.width, result.height], label).toEqual([width, height]);
      expect(pngSize(result.bytes), label).toEqual([width, height]);
      outcome = "image";
    } catch (error) {
      if (!(error instanceof ProblemError) || error.status < 400 || error.status >= 500) {
        throw new Error(`${name} mutation ${i} (${what}, ${width}x${height} fit=${fit}): ${String(error)}`, { cause: error });
      }
      outcome = `${error.status} ${error.code}`;
    }
    outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
  }
  return [...outcomes].map(([o, n]) => `${n}x ${o}`).join(", ");
}

/** Offset of the first JPEG scan (SOS) or PNG IDAT: before it, "header" bytes. */
function firstData(bytes: Uint8Array, marker: readonly number[]): number {
  for (let i = 2; i + marker.length <= bytes.length; i++) {
    if (marker.every((v, k) => bytes[i + k] === v)) return i;
  }
  return Math.min(bytes.length, 64);
}
const jpegHeaderEnd = (b: Uint8Array): number => firstData(b, [0xff, 0xda]);
const pngHeaderEnd = (b: Uint8Array): number => firstData(b, [0x49, 0x44, 0x41, 0x54]); // "IDAT"

describe("streamed decode of damaged files: an image or a 4xx, nothing else", () => {
  it.each([
    ["photo-small-fruits.jpg", 1],
    ["jpegtran-restart-baseline.jpg", 2],
    ["jpegtran-restart-progressive.jpg", 3],
    ["gen-progressive.jpg", 4],
  ])("%s", async (name, seed) => {
    console.log(`${name}: ${await fuzz(name, "jpeg", jpegHeaderEnd, seed, 120)}`);
  });

  it.each([
    ["png-alpha-opencv-logo.png", 11],
    ["pngsuite-basn3p04.png", 12],
    ["pngsuite-basn0g16.png", 13],
    ["pngsuite-f99n0g04.png", 14],
    ["pngsuite-tbrn2c08.png", 15],
    ["png-16bit-rgba-cylinder.png", 16],
  ])("%s", async (name, seed) => {
    console.log(`${name}: ${await fuzz(name, "png", pngHeaderEnd, seed, 150)}`);
  });
});
