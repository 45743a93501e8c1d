/**
 * The two pure-JS decoders, loaded on demand: omggif (GIF, first frame) and jpeg-js (CMYK /
 * YCCK JPEG, which mozjpeg's RGBA output refuses).
 */
import { describe, expect, it } from "vitest";
import { decode } from "../../src/codecs";
import { jpegComponentCount } from "../../src/codecs/jpeg";
import { runPipeline } from "../../src/pipeline";
import { loadCorpus } from "./fixtures";
import { maxChannelDifference, options, pixel } from "./image-helpers";

describe("GIF", () => {
  it("decodes the first frame exactly as libvips does", async () => {
    const image = await decode(await loadCorpus("gif-animated-opencv-houghlines.gif"), "gif");
    expect([image.width, image.height]).toEqual([300, 148]);
    let sum = 0;
    for (const value of image.data) sum += value;
    // Sum of sharp's first-frame RGBA (ensureAlpha) for the same file.
    expect(sum).toBe(11_572_129);
    expect(image.hasAlpha).toBe(false);
  });

  it("without fmt becomes PNG", async () => {
    const bytes = await loadCorpus("gif-animated-opencv-houghlines.gif");
    const result = await runPipeline({ bytes, format: "gif", orientation: 1 }, { ...options({ width: 150 }), format: undefined }, { limits: { maxSide: 8192, maxPixels: 50e6 } });
    expect([result.format, result.width, result.height]).toEqual(["png", 150, 74]);
  });

  it("refuses a 35-byte GIF claiming a 65535x65535 screen without allocating it", async () => {
    await expect(decode(await loadCorpus("hostile-gif-65535x65535-screen.gif"), "gif")).rejects.toMatchObject({ status: 422 });
  });

  it("refuses a broken GIF with a 422", async () => {
    const bytes = new TextEncoder().encode("GIF89a\x01\x00\x01\x00");
    await expect(decode(bytes, "gif")).rejects.toMatchObject({ status: 422, code: "invalid-image" });
  });
});

describe("CMYK JPEG", () => {
  it("is recognised by its frame header", async () => {
    expect(jpegComponentCount(await loadCorpus("jpeg-cmyk.jpg"))).toBe(4);
    expect(jpegComponentCount(await loadCorpus("photo-small-aero1.jpg"))).toBe(3);
    expect(jpegComponentCount(await loadCorpus("jpeg-grayscale-grey.jpg"))).toBe(1);
  });

  it("converts to RGB with the right colours (not inverted)", async () => {
    const image = await decode(await loadCorpus("jpeg-cmyk.jpg"), "jpeg");
    expect([image.width, image.height, image.hasAlpha]).toEqual([1600, 1000, false]);
    // A red-orange flower on green: sharp (with an ICC CMYK profile) gives these; the naive
    // conversion is within ~30 per channel and the same hue. An inverted decode would be cyan.
    expect(maxChannelDifference(pixel(image, 800, 500), [157, 5, 1, 255])).toBeLessThanOrEqual(30);
    expect(maxChannelDifference(pixel(image, 1200, 600), [173, 22, 12, 255])).toBeLessThanOrEqual(30);
    let r = 0;
    let g = 0;
    let b = 0;
    for (let i = 0; i < image.data.length; i += 4) {
      r += image.data[i]!;
      g += image.data[i + 1]!;
      b += image.data[i + 2]!;
    }
    const n = image.data.length / 4;
    // Means with sharp: 175, 120, 49.
    expect(Math.abs(r / n - 175)).toBeLessThan(10);
    expect(Math.abs(g / n - 120)).toBeLessThan(10);
    expect(Math.abs(b / n - 49)).toBeLessThan(10);
  });
});

describe("GIF with corrupt LZW data", () => {
  it("decodes what it can and ends (a bit flip made omggif's own LZW loop run forever)", async () => {
    const image = await decode(await loadCorpus("fuzz-gif-lzw-hang.gif"), "gif");
    expect([image.width, image.height]).toEqual([300, 148]);
  });
});
