/**
 * Our baseline JPEG encoder (wasm/jpeg/encode.c) inside workerd, through the pipeline: the
 * native path writes small JPEG outputs with it (SOF0, our quantisation tables), the @jsquash
 * path keeps mozjpeg for every JPEG, and outputs above PROGRESSIVE_MIN_PIXELS stay progressive
 * mozjpeg on both paths. Files are told apart by their DQT segment (the tables depend only on
 * the encoder and the quality).
 */
import { describe, expect, it } from "vitest";
import { encode } from "../../src/codecs";
import { encodeJpeg, PROGRESSIVE_MIN_PIXELS } from "../../src/codecs/jpeg";
import { encodeNativeJpeg, openNativeSession } from "../../src/codecs/native";
import type { RgbaImage } from "../../src/codecs/types";
import { runPipeline, type PipelineContext, type SourceImage } from "../../src/pipeline";
import { loadCorpus } from "./fixtures";
import { options, synthetic } from "./image-helpers";

const LIMITS = { maxSide: 8192, maxPixels: 50_000_000 };

/** Marker of every segment before the scan, and the DQT payloads. */
function headers(bytes: Uint8Array): { markers: number[]; dqt: string } {
  const markers: number[] = [];
  const dqt: number[] = [];
  let p = 2;
  while (p + 4 <= bytes.length && bytes[p] === 0xff) {
    const marker = bytes[p + 1]!;
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    markers.push(marker);
    if (marker === 0xdb) dqt.push(...bytes.subarray(p + 4, p + 2 + length));
    if (marker === 0xda) break;
    p += 2 + length;
  }
  return { markers, dqt: dqt.join(",") };
}

function texture(width: number, height: number): RgbaImage {
  return synthetic(width, height, (x, y) => [(x * 7 + y * 3) % 256, (x * y) % 256, (255 - x + y * 5) % 256, 255]);
}

/** Our DQT at `quality` (any image gives it) and mozjpeg's. */
async function tables(quality: number): Promise<{ ours: string; mozjpeg: string }> {
  const image = texture(32, 32);
  return { ours: headers(encodeNativeJpeg(image, quality)).dqt, mozjpeg: headers(await encodeJpeg(image, quality, "jsquash")).dqt };
}

async function thumbnail(codecPath: PipelineContext["codecPath"], width: number): Promise<Uint8Array> {
  const bytes = await loadCorpus("photo-medium-storm.jpg"); // 1920x1280 baseline
  const source: SourceImage = { bytes, format: "jpeg", orientation: 1, width: 1920, height: 1280 };
  const result = await runPipeline(source, options({ width, format: "jpeg" }), { limits: LIMITS, codecPath });
  expect(result.format).toBe("jpeg");
  return result.bytes;
}

describe("native JPEG encoder in the pipeline", () => {
  it("writes a small thumbnail on the native path: baseline (SOF0), our tables, decodes with our decoder at the right size", async () => {
    const bytes = await thumbnail("native", 200);
    const { markers, dqt } = headers(bytes);
    expect(markers).toEqual([0xe0, 0xdb, 0xc0, 0xc4, 0xda]);
    const { ours, mozjpeg } = await tables(80);
    expect(ours).not.toBe(mozjpeg);
    expect(dqt).toBe(ours);
    const session = openNativeSession();
    try {
      expect(session.probeJpeg(bytes)).toMatchObject({ width: 200, height: 133, progressive: false, supported: true });
      const image = session.decodeJpeg(0);
      expect([image.width, image.height, image.complete]).toEqual([200, 133, true]);
    } finally {
      session.release();
    }
  });

  it("keeps mozjpeg for every JPEG on the @jsquash path", async () => {
    const bytes = await thumbnail("jsquash", 200);
    const { markers, dqt } = headers(bytes);
    expect(markers).toContain(0xc0);
    expect(dqt).toBe((await tables(80)).mozjpeg);
  });

  it("follows the requested quality (tables and size)", async () => {
    const image = texture(160, 120);
    const low = await encode(image, "jpeg", 40);
    const high = await encode(image, "jpeg", 95);
    expect(headers(low).dqt).toBe((await tables(40)).ours);
    expect(headers(high).dqt).toBe((await tables(95)).ours);
    expect(high.length).toBeGreaterThan(low.length);
  });

  it("hands outputs above PROGRESSIVE_MIN_PIXELS to progressive mozjpeg, on both paths", async () => {
    expect(PROGRESSIVE_MIN_PIXELS).toBe(500_000);
    // 708x706 = 499,848 px: ours (baseline); 708x707 = 500,556 px: mozjpeg (progressive).
    const atLimit = await encode(texture(708, 706), "jpeg", 80);
    expect(headers(atLimit).markers).toContain(0xc0);
    expect(headers(atLimit).dqt).toBe((await tables(80)).ours);
    const above = await encode(texture(708, 707), "jpeg", 80);
    expect(headers(above).markers).toContain(0xc2);
    expect(headers(above).dqt).toBe((await tables(80)).mozjpeg);
    // Through the pipeline: 1000x667 from the 1920x1280 photo.
    for (const path of ["native", "jsquash"] as const) {
      const { markers } = headers(await thumbnail(path, 1000));
      expect(markers, path).toContain(0xc2);
      expect(markers, path).not.toContain(0xc0);
    }
  });
});
