/**
 * Streamed decode (the decoder's rows go straight into the resampler, so no decoded copy of the
 * image exists) against decode-then-resize on the same native path: the same pixels for every
 * EXIF orientation, crops, rotations, fits, progressive and greyscale files and embedded
 * profiles (converted per row); less memory; and decoder errors still come out as 422.
 */
import { describe, expect, it } from "vitest";
import { decode, nativeMemoryBytes } from "../../src/codecs";
import { nativePool } from "../../src/codecs/native";
import type { RgbaImage } from "../../src/codecs/types";
import { ProblemError } from "../../src/errors";
import { runPipeline, type SourceImage } from "../../src/pipeline";
import type { TransformOptions } from "../../src/transform/options";
import { loadCorpus, loadImage } from "./fixtures";
import { options } from "./image-helpers";

const LIMITS = { maxSide: 8192, maxPixels: 50_000_000 };

async function render(source: SourceImage, opts: TransformOptions, streamDecode: boolean): Promise<RgbaImage> {
  const result = await runPipeline(source, opts, { limits: LIMITS, streamDecode });
  return decode(result.bytes, "png");
}

/** Largest difference of any channel. */
function maxDiff(a: RgbaImage, b: RgbaImage): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

async function source(name: string, orientation = 1): Promise<SourceImage> {
  return { bytes: await loadImage(name), format: "jpeg", orientation };
}

describe("streamed decode = decode then resize", () => {
  const geometry: Array<[string, Partial<TransformOptions>]> = [
    ["w=400", { width: 400 }],
    ["w=200", { width: 200 }],
    ["w=333 h=251 squeeze", { width: 333, height: 251, fit: "squeeze" }],
    ["cover 300x300, point gravity", { width: 300, height: 300, fit: "cover", gravity: { mode: "point", x: 0.2, y: 0.8 } }],
    ["crop then w=250", { crop: { x: 301, y: 117, width: 603, height: 403 }, width: 250 }],
    ["crop only", { crop: { x: 10, y: 20, width: 333, height: 222 } }],
    ["rotate 90, flip h, w=180", { rotate: 90, flip: "h", width: 180 }],
    ["pad 300x300", { width: 300, height: 300, fit: "pad" }],
    ["no parameters", {}],
  ];
  for (const orientation of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it.each(geometry)(`orientation ${orientation}, %s`, async (_label, overrides) => {
      const src = await source("photo-medium-storm.jpg", orientation);
      const opts = options(overrides);
      const streamed = await render(src, opts, true);
      const buffered = await render(src, opts, false);
      expect(maxDiff(streamed, buffered)).toBeLessThanOrEqual(1);
    });
  }

  it.each([
    ["progressive", "gen-progressive.jpg"],
    ["greyscale", "jpeg-grayscale-grey.jpg"],
    ["Adobe RGB profile (converted per row)", "jpeg-icc-adobergb.jpg"],
    ["restart markers", "jpegtran-restart-baseline.jpg"],
    ["progressive with restart markers", "jpegtran-restart-progressive.jpg"],
    ["4:2:0 photo", "photo-small-fruits.jpg"],
  ])("%s", async (_label, name) => {
    const src = await source(name);
    for (const overrides of [{ width: 120 }, { width: 97, height: 61, fit: "cover" as const }, {}]) {
      const opts = options(overrides);
      expect(maxDiff(await render(src, opts, true), await render(src, opts, false)), JSON.stringify(overrides)).toBeLessThanOrEqual(1);
    }
  });

  it("keeps no decoded copy: a small crop of a 1920x1280 photo needs far less memory than its RGBA", async () => {
    const src = await source("photo-medium-storm.jpg");
    const opts = options({ crop: { x: 0, y: 0, width: 200, height: 200 } });
    const peak = async (streamDecode: boolean): Promise<number> => {
      nativePool().clear();
      await render(src, opts, streamDecode);
      return nativeMemoryBytes(); // the released instance stays pooled (below the retain size)
    };
    const buffered = await peak(false);
    const streamed = await peak(true);
    expect(buffered).toBeGreaterThan(1920 * 1280 * 4);
    expect(streamed).toBeLessThan(buffered - 1920 * 1280 * 4 + 1024 * 1024);
  });

  it("a truncated file is still a 422 invalid-image", async () => {
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const src: SourceImage = { bytes: bytes.subarray(0, Math.floor(bytes.length * 0.6)), format: "jpeg", orientation: 1 };
    const error = await runPipeline(src, options({ width: 100 }), { limits: LIMITS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).status).toBe(422);
  });
});
