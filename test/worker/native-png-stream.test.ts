/**
 * PNG rows streamed into the resampler (inflated by the platform's DecompressionStream,
 * unfiltered and expanded in WASM) against the full decode by @jsquash/png then our resize:
 * the same pixels for every non-interlaced PngSuite colour type and bit depth (palette, tRNS,
 * 16-bit, 1/2/4-bit grey), every filter type, with and without resizing; interlaced files keep
 * the full decode; damaged data is a 422; memory follows the output, not the PNG.
 */
import { describe, expect, it } from "vitest";
import { decode, nativeMemoryBytes } from "../../src/codecs";
import { nativePool } from "../../src/codecs/native";
import { pngLayout } from "../../src/codecs/png-layout";
import type { RgbaImage } from "../../src/codecs/types";
import { ProblemError } from "../../src/errors";
import { crc32 } from "../../src/images/crc32";
import { runPipeline, type SourceImage } from "../../src/pipeline";
import type { TransformOptions } from "../../src/transform/options";
import { corpusNames, loadCorpus, loadImage } from "./fixtures";
import { options } from "./image-helpers";

const LIMITS = { maxSide: 8192, maxPixels: 50_000_000 };

async function render(source: SourceImage, opts: TransformOptions, streamDecode: boolean): Promise<RgbaImage> {
  const result = await runPipeline(source, { ...opts, format: "png" }, { limits: LIMITS, streamDecode });
  return decode(result.bytes, "png");
}

/** Largest difference of any channel; colour of fully transparent pixels does not count. */
function maxDiff(a: RgbaImage, b: RgbaImage): number {
  expect([a.width, a.height]).toEqual([b.width, b.height]);
  let max = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    const channels = a.data[i + 3] === 0 && b.data[i + 3] === 0 ? [3] : [0, 1, 2, 3];
    for (const c of channels) max = Math.max(max, Math.abs(a.data[i + c]! - b.data[i + c]!));
  }
  return max;
}

async function pngSource(name: string): Promise<SourceImage> {
  return { bytes: await loadImage(name), format: "png", orientation: 1 };
}

const suite = (await corpusNames()).filter((n) => n.startsWith("pngsuite-") && !n.startsWith("pngsuite-x"));

describe("streamed PNG = full decode then resize", () => {
  it.each(suite)("%s", async (name) => {
    const src = await pngSource(name);
    const layout = pngLayout(src.bytes);
    for (const overrides of [{}, { width: 13 }, { width: 50, height: 20, fit: "squeeze" as const }, { rotate: 90 as const, width: 21 }]) {
      const opts = options(overrides);
      const streamed = await render(src, opts, true);
      const buffered = await render(src, opts, false);
      // 16-bit samples: the full decoder rounds to 8 bits where the stream keeps the high byte.
      const tolerance = layout.bitDepth === 16 ? 1 : 0;
      expect(maxDiff(streamed, buffered), `${name} ${JSON.stringify(overrides)} (interlaced: ${layout.interlaced})`).toBeLessThanOrEqual(Object.keys(overrides).length === 0 ? tolerance : tolerance + 1);
    }
  });

  it.each(["png-alpha-opencv-logo.png", "png-16bit-rgba-cylinder.png", "gen-icc.png", "png-alpha-watermark-debian.png"])("%s", async (name) => {
    const src = await pngSource(name);
    for (const overrides of [{ width: 120 }, { width: 64, height: 64, fit: "cover" as const }, { flip: "v" as const }]) {
      const opts = options(overrides);
      expect(maxDiff(await render(src, opts, true), await render(src, opts, false)), JSON.stringify(overrides)).toBeLessThanOrEqual(1);
    }
  });

  it("damaged image data is a 422 invalid-image, never a crash", async () => {
    const bytes = await loadCorpus("png-alpha-opencv-logo.png");
    const layout = pngLayout(bytes);
    const firstIdat = layout.idat[0]!;
    const start = firstIdat.byteOffset - bytes.byteOffset;
    for (const damage of [
      (b: Uint8Array) => b.subarray(0, start + Math.floor(firstIdat.length / 2)), // truncated
      (b: Uint8Array) => { const c = b.slice(); c.fill(0x55, start + 10, start + 60); return c; }, // scrambled deflate
      (b: Uint8Array) => { const c = b.slice(); c.fill(0, start, start + firstIdat.length); return c; }, // zeroed
    ]) {
      const src: SourceImage = { bytes: damage(bytes), format: "png", orientation: 1 };
      const error = await runPipeline(src, options({ width: 50 }), { limits: LIMITS }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ProblemError);
      expect((error as ProblemError).status).toBe(422);
    }
  });

  it("streams PNGs far beyond the full-decode limit, and refuses from IHDR what no decoder takes", async () => {
    // 13 MP: more than the 12 MP a full decode may take, fine streamed.
    const src: SourceImage = { bytes: await encodeTestPng(4000, 3250), format: "png", orientation: 1 };
    const result = await runPipeline(src, options({ width: 200 }), { limits: LIMITS });
    expect([result.width, result.height]).toEqual([200, 163]);
    // An IHDR declaring 120 MP: 422 image-too-large before anything is inflated.
    const huge = src.bytes.slice();
    new DataView(huge.buffer).setUint32(16, 20_000);
    new DataView(huge.buffer).setUint32(20, 6_000);
    await expect(runPipeline({ ...src, bytes: huge }, options({ width: 200 }), { limits: LIMITS })).rejects.toMatchObject({ status: 422, code: "image-too-large" });
    // Interlaced (Adam7) rows do not arrive in order: the full decode and its limit apply.
    const interlaced = src.bytes.slice();
    interlaced[28] = 1;
    await expect(runPipeline({ ...src, bytes: interlaced }, options({ width: 200 }), { limits: LIMITS })).rejects.toMatchObject({ status: 422, code: "image-too-large" });
  });

  it("keeps no decoded copy: memory follows the output, not the PNG", async () => {
    // 2000 x 1500 RGBA (12 MB decoded) generated here, shrunk to 100 px.
    const big = await encodeTestPng(2000, 1500);
    const src: SourceImage = { bytes: big, format: "png", orientation: 1 };
    const peak = async (streamDecode: boolean): Promise<number> => {
      nativePool().clear();
      await runPipeline(src, options({ width: 100 }), { limits: LIMITS, streamDecode });
      return nativeMemoryBytes();
    };
    const streamed = await peak(true);
    expect(streamed).toBeLessThan(4 * 1024 * 1024);
    expect(await peak(false)).toBeGreaterThan(2000 * 1500 * 4); // the decoded copy, resampled in our memory
    const image = await render(src, options({ width: 100 }), true);
    expect([image.width, image.height]).toEqual([100, 75]);
  });
});

/** A gradient PNG made with the platform's CompressionStream (filter 0 rows). */
async function encodeTestPng(width: number, height: number): Promise<Uint8Array> {
  const raw = new Uint8Array((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    const row = y * (width * 4 + 1);
    for (let x = 0; x < width; x++) {
      const p = row + 1 + x * 4;
      raw[p] = x & 255;
      raw[p + 1] = y & 255;
      raw[p + 2] = (x + y) & 255;
      raw[p + 3] = 255;
    }
  }
  const zlib = new Uint8Array(await new Response(new Blob([raw]).stream().pipeThrough(new CompressionStream("deflate"))).arrayBuffer());
  const chunk = (type: string, body: Uint8Array): Uint8Array => {
    const out = new Uint8Array(12 + body.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, body.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(body, 8);
    view.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, width);
  new DataView(ihdr.buffer).setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const parts = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", ihdr), chunk("IDAT", zlib), chunk("IEND", new Uint8Array(0))];
  return new Uint8Array(await new Blob(parts).arrayBuffer());
}
