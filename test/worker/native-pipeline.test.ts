/**
 * The native codec path of the pipeline (our JPEG decoder with shrink-on-load + our resampler
 * in one WASM memory) against the previous @jsquash path: same output sizes, nearly the same
 * pixels, for plain resizes, crops, EXIF orientations and rotations (the crop rectangle and
 * fit are computed at full resolution and mapped onto the reduced decode); the native session
 * is released after every transform; sources that cannot be bounded are refused from headers.
 */
import { describe, expect, it } from "vitest";
import { decode, nativeMemoryBytes } from "../../src/codecs";
import type { RgbaImage } from "../../src/codecs/types";
import { runPipeline, type PipelineContext, type SourceImage } from "../../src/pipeline";
import type { TransformOptions } from "../../src/transform/options";
import { loadCorpus } from "./fixtures";
import { options, pngSource, synthetic } from "./image-helpers";

const LIMITS = { maxSide: 8192, maxPixels: 50_000_000 };

async function render(source: SourceImage, opts: TransformOptions, codecPath: PipelineContext["codecPath"]): Promise<RgbaImage> {
  const result = await runPipeline(source, opts, { limits: LIMITS, codecPath });
  return decode(result.bytes, "png");
}

function psnr(a: RgbaImage, b: RgbaImage): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let se = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    for (let c = 0; c < 3; c++) {
      const d = a.data[i + c]! - b.data[i + c]!;
      se += d * d;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / ((a.data.length / 4) * 3)));
}

describe("native path vs @jsquash path", () => {
  const cases: Array<[string, Partial<TransformOptions>, number]> = [
    ["w=400", { width: 400 }, 1],
    ["w=200 (shrink 1/8)", { width: 200 }, 1],
    ["w=300 h=300 cover", { width: 300, height: 300, fit: "cover" }, 1],
    ["crop then w=250", { crop: { x: 301, y: 117, width: 1203, height: 803 }, width: 250 }, 1],
    ["orientation 6, crop, w=150", { crop: { x: 99, y: 403, width: 777, height: 1001 }, width: 150 }, 6],
    ["orientation 5, rotate 90, flip h, w=180", { rotate: 90, flip: "h", width: 180 }, 5],
    ["orientation 3, cover, point gravity", { width: 160, height: 300, fit: "cover", gravity: { mode: "point", x: 0.3, y: 0.7 } }, 3],
    ["no resize, crop only", { crop: { x: 10, y: 20, width: 333, height: 222 } }, 8],
  ];
  it.each(cases)("%s: same size, PSNR >= 38 dB", async (_label, overrides, orientation) => {
    const bytes = await loadCorpus("photo-medium-storm.jpg"); // 1920x1280 baseline
    const source: SourceImage = { bytes, format: "jpeg", orientation, width: 1920, height: 1280 };
    const opts = options(overrides);
    const before = await render(source, opts, "jsquash");
    const after = await render(source, opts, "native");
    const db = psnr(after, before);
    expect(db, `${after.width}x${after.height}: ${db.toFixed(1)} dB`).toBeGreaterThanOrEqual(38);
  });

  it("auto gravity on a reduced decode: same size, a nearby window (saliency is sampled on the reduced pixels)", async () => {
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const source: SourceImage = { bytes, format: "jpeg", orientation: 3, width: 1920, height: 1280 };
    const opts = options({ width: 160, height: 300, fit: "cover", gravity: { mode: "auto" } });
    const before = await render(source, opts, "jsquash");
    const after = await render(source, opts, "native");
    expect(psnr(after, before)).toBeGreaterThanOrEqual(20);
  });

  it("releases the native session after each transform and keeps little WASM memory", async () => {
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const source: SourceImage = { bytes, format: "jpeg", orientation: 1, width: 1920, height: 1280 };
    for (let i = 0; i < 3; i++) await runPipeline(source, options({ width: 800, format: "webp" }), { limits: LIMITS });
    expect(nativeMemoryBytes()).toBeGreaterThan(0);
    expect(nativeMemoryBytes()).toBeLessThanOrEqual(16 * 1024 * 1024);
  });

  it("resizes non-JPEG sources with the native resampler too (alpha premultiplied)", async () => {
    const image = synthetic(300, 200, (x, y) => (x < 150 ? [255, 0, 0, 255] : [0, 0, 255, y < 100 ? 0 : 255]));
    const source = await pngSource(image);
    const opts = options({ width: 97 });
    const before = await render(source, opts, "jsquash");
    const after = await render(source, opts, "native");
    expect([after.width, after.height]).toEqual([97, 65]);
    // Fully transparent pixels are (0,0,0,0) in both; compare alpha and the opaque parts.
    let worstAlpha = 0;
    for (let i = 3; i < after.data.length; i += 4) worstAlpha = Math.max(worstAlpha, Math.abs(after.data[i]! - before.data[i]!));
    expect(worstAlpha).toBeLessThanOrEqual(8);
  });

  it("refuses a source it cannot decode small enough, from its header (422 image-too-large)", async () => {
    // A WebP whose recorded size is 13 MP: refused before the WebP decoder runs (the bytes are junk).
    const junk: SourceImage = { bytes: new TextEncoder().encode("RIFF\0\0\0\0WEBP"), format: "webp", orientation: 1, width: 4000, height: 3250 };
    await expect(runPipeline(junk, options({ width: 200 }), { limits: LIMITS })).rejects.toMatchObject({ status: 422, code: "image-too-large" });
    // A JPEG that must be decoded at full size (no resize) above the limit: refused from its header.
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const source: SourceImage = { bytes, format: "jpeg", orientation: 1, width: 1920, height: 1280 };
    await expect(
      runPipeline(source, options({ format: "webp" }), { limits: LIMITS, maxFullDecodePixels: 1_000_000 }),
    ).rejects.toMatchObject({ status: 422, code: "image-too-large" });
    // The same with a resize shrinks on load (1920x1280 -> 480x320 decode) and passes.
    const ok = await runPipeline(source, options({ width: 400, format: "webp" }), { limits: LIMITS, maxFullDecodePixels: 1_000_000 });
    expect(ok.width).toBe(400);
  });
});
