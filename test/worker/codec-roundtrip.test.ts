/**
 * The codec layer inside workerd: round trips through every encoder, real files through every
 * WASM decoder (pixels compared with sharp/libvips on the same files, sampled in Node), and
 * recovery from files that do not decode.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_QUALITY, decode, encode, hasTranslucentPixel, resize } from "../../src/codecs";
import { boxShrink } from "../../src/codecs/resize";
import type { RgbaImage } from "../../src/codecs/types";
import { ProblemError } from "../../src/errors";
import type { ImageFormat, OutputFormat } from "../../src/images/format";
import { loadCorpus } from "./fixtures";
import { coordinates, maxChannelDifference, meanAbsoluteDifference, pixel, type Px, synthetic } from "./image-helpers";

/** A smooth photo-like test card with a translucent band at the bottom. */
function testCard(withAlpha: boolean): RgbaImage {
  return synthetic(96, 64, (x, y) => [
    Math.round((x / 95) * 255),
    Math.round((y / 63) * 255),
    Math.round(128 + 100 * Math.sin(x / 9) * Math.cos(y / 7)),
    withAlpha && y >= 48 ? 96 : 255,
  ]);
}

describe("round trip", () => {
  it.each([
    ["png", 0],
    ["webp", 4],
    ["avif", 5],
    ["jpeg", 4],
  ] as const)("%s keeps the pixels (mean error <= %d)", async (format, tolerance) => {
    const card = testCard(false);
    const bytes = await encode(card, format, DEFAULT_QUALITY[format]);
    const back = await decode(bytes, format);
    expect([back.width, back.height]).toEqual([96, 64]);
    expect(back.hasAlpha).toBe(false);
    expect(meanAbsoluteDifference(card, back)).toBeLessThanOrEqual(tolerance);
  });

  it.each(["png", "webp", "avif"] as const)("%s keeps alpha", async (format) => {
    const card = testCard(true);
    const back = await decode(await encode(card, format, 90), format);
    expect(back.hasAlpha).toBe(true);
    expect(Math.abs(pixel(back, 40, 56)[3] - 96)).toBeLessThanOrEqual(format === "png" ? 0 : 3);
    expect(pixel(back, 40, 10)[3]).toBe(255);
  });

  it("png is lossless, every pixel", async () => {
    const card = testCard(true);
    const back = await decode(await encode(card, "png", 100), "png");
    expect(Array.from(back.data)).toEqual(Array.from(card.data));
  });

  it("quality trades bytes for fidelity", async () => {
    const card = testCard(false);
    for (const format of ["jpeg", "webp", "avif"] as const) {
      const low = await encode(card, format, 20);
      const high = await encode(card, format, 95);
      expect(low.length).toBeLessThan(high.length);
    }
  });
});

describe("decoding real files", () => {
  interface Expectation {
    readonly format: ImageFormat;
    readonly size: readonly [number, number];
    readonly alpha: boolean;
    /** Samples from sharp 0.35 (libvips) on the same file: x, y, RGBA. */
    readonly samples: ReadonlyArray<readonly [number, number, Px]>;
    /** Largest per-channel difference allowed (0 for lossless formats). */
    readonly tolerance: number;
  }
  const files: Record<string, Expectation> = {
    "photo-small-aero1.jpg": {
      format: "jpeg", size: [640, 480], alpha: false, tolerance: 3,
      samples: [[64, 48, [135, 134, 148, 255]], [320, 240, [150, 169, 173, 255]], [576, 96, [125, 142, 152, 255]], [480, 288, [80, 93, 99, 255]]],
    },
    "jpeg-grayscale-grey.jpg": {
      format: "jpeg", size: [2560, 1600], alpha: false, tolerance: 2,
      samples: [[256, 160, [10, 10, 10, 255]], [2304, 320, [40, 40, 40, 255]], [1920, 960, [181, 181, 181, 255]]],
    },
    "jpeg-gps-real-colorfulcups.jpg": {
      // Progressive, with EXIF/GPS and an sRGB ICC profile.
      format: "jpeg", size: [2560, 1600], alpha: false, tolerance: 3,
      samples: [[256, 160, [143, 197, 207, 255]], [1280, 800, [38, 6, 45, 255]], [1920, 960, [175, 133, 155, 255]]],
    },
    "png-16bit-rgba-cylinder.png": {
      format: "png", size: [320, 200], alpha: false, tolerance: 0,
      samples: [[160, 100, [125, 251, 0, 255]], [96, 160, [30, 158, 0, 255]], [240, 120, [219, 218, 218, 255]]],
    },
    "pngsuite-basi6a16.png": {
      // RGBA, 16 bits per channel, Adam7 interlaced.
      format: "png", size: [32, 32], alpha: true, tolerance: 0,
      samples: [[3, 3, [255, 255, 0, 49]], [16, 16, [0, 0, 255, 247]], [9, 25, [215, 0, 40, 99]]],
    },
    "pngsuite-basn3p08.png": {
      format: "png", size: [32, 32], alpha: false, tolerance: 0,
      samples: [[3, 3, [51, 0, 0, 255]], [16, 16, [1, 255, 1, 255]], [24, 19, [51, 51, 255, 255]]],
    },
    "pngsuite-tbbn3p08.png": {
      // Palette with tRNS transparency.
      format: "png", size: [32, 32], alpha: true, tolerance: 0,
      samples: [[3, 3, [255, 255, 255, 0]], [16, 16, [158, 158, 158, 255]], [24, 19, [1, 1, 111, 255]]],
    },
    "pngsuite-basi0g01.png": {
      format: "png", size: [32, 32], alpha: false, tolerance: 0,
      samples: [[3, 3, [255, 255, 255, 255]], [16, 16, [0, 0, 0, 255]], [24, 19, [255, 255, 255, 255]]],
    },
    "pngsuite-basn0g16.png": {
      format: "png", size: [32, 32], alpha: false, tolerance: 0,
      samples: [[3, 3, [33, 33, 33, 255]], [16, 16, [176, 176, 176, 255]], [24, 19, [254, 254, 254, 255]]],
    },
    "pngsuite-basn2c16.png": {
      format: "png", size: [32, 32], alpha: false, tolerance: 0,
      samples: [[3, 3, [231, 231, 0, 255]], [16, 16, [123, 123, 8, 255]], [9, 25, [181, 49, 24, 255]]],
    },
    "png-alpha-watermark-debian.png": {
      format: "png", size: [788, 256], alpha: true, tolerance: 0,
      samples: [[78, 25, [0, 0, 0, 0]], [394, 128, [0, 0, 0, 0]]],
    },
    "webp-lossless-alpha-opencv-logo.webp": {
      format: "webp", size: [600, 794], alpha: true, tolerance: 0,
      samples: [[60, 79, [0, 0, 0, 0]], [450, 476, [18, 141, 255, 255]]],
    },
    "webp-lossy-photo-bythewater.webp": {
      format: "webp", size: [1920, 1200], alpha: false, tolerance: 3,
      samples: [[192, 120, [96, 116, 104, 255]], [960, 600, [253, 244, 144, 255]], [1440, 720, [235, 200, 132, 255]]],
    },
    "avif-photo-kite.avif": {
      format: "avif", size: [1920, 1200], alpha: false, tolerance: 3,
      samples: [[192, 120, [189, 198, 207, 255]], [960, 600, [1, 61, 123, 255]], [1728, 240, [79, 111, 162, 255]]],
    },
  };

  it.each(Object.entries(files))("%s", async (name, expected) => {
    const image = await decode(await loadCorpus(name), expected.format);
    expect([image.width, image.height]).toEqual(expected.size);
    expect(image.data.length).toBe(image.width * image.height * 4);
    expect(image.hasAlpha).toBe(expected.alpha);
    for (const [x, y, colour] of expected.samples) {
      expect(maxChannelDifference(pixel(image, x, y), colour), `pixel ${x},${y}`).toBeLessThanOrEqual(expected.tolerance);
    }
  });

  it("grayscale JPEG comes out with R = G = B", async () => {
    const image = await decode(await loadCorpus("jpeg-grayscale-grey.jpg"), "jpeg");
    for (let i = 0; i < image.data.length; i += 4 * 997) {
      expect(image.data[i]).toBe(image.data[i + 1]);
      expect(image.data[i + 1]).toBe(image.data[i + 2]);
    }
  });
});

describe("files that do not decode", () => {
  const broken: Array<[string, OutputFormat, Uint8Array]> = [
    ["empty JPEG", "jpeg", new Uint8Array(0)],
    ["JPEG header only", "jpeg", new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0])],
    ["text as PNG", "png", new TextEncoder().encode("<html>not a png</html>")],
    ["text as WebP", "webp", new TextEncoder().encode("RIFF....WEBPVP8 nonsense")],
    ["text as AVIF", "avif", new TextEncoder().encode("....ftypavif nonsense")],
  ];

  it.each(broken)("%s is a 422 invalid-image, and the codec keeps working", async (_name, format, bytes) => {
    const error = await decode(bytes, format).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ProblemError);
    expect((error as ProblemError).status).toBe(422);
    expect((error as ProblemError).code).toBe("invalid-image");
    // The same decoder still decodes a good file afterwards.
    const good = await encode(testCard(false), format, 90);
    expect((await decode(good, format)).width).toBe(96);
  });

  it.each([
    ["hostile-png-bomb-50000x50000.png", "png"],
    ["hostile-jpeg-65500x65500.jpg", "jpeg"],
    ["pngsuite-xd9n2c08.png", "png"],
    ["pngsuite-xc1n0g08.png", "png"],
    ["pngsuite-xs2n0g01.png", "png"],
  ] as const)("refuses %s (hostile corpus) with a 422", async (name, format) => {
    await expect(decode(await loadCorpus(name), format)).rejects.toMatchObject({ status: 422, code: "invalid-image" });
    expect((await decode(await encode(testCard(false), format, 90), format)).width).toBe(96);
  });

  it("a truncated JPEG is refused or decoded, never fatal", async () => {
    const whole = await loadCorpus("photo-small-aero1.jpg");
    for (const cut of [200, 2000, whole.length >> 1]) {
      await decode(whole.subarray(0, cut), "jpeg").catch((e: unknown) => {
        expect(e).toBeInstanceOf(ProblemError);
      });
    }
    expect((await decode(whole, "jpeg")).width).toBe(640);
  });
});

describe("resize", () => {
  it("keeps the image when the size does not change", async () => {
    const card = testCard(false);
    expect(await resize(card, 96, 64)).toBe(card);
  });

  it("resamples opaque images without touching alpha", async () => {
    const out = await resize(testCard(false), 40, 30);
    expect([out.width, out.height]).toEqual([40, 30]);
    expect(hasTranslucentPixel(out.data)).toBe(false);
  });

  it("does not bleed the colour of transparent pixels into edges (premultiplied)", async () => {
    // Opaque white next to transparent *black*: a straight-alpha filter would grey the edge.
    const image = synthetic(64, 16, (x) => (x < 32 ? [255, 255, 255, 255] : [0, 0, 0, 0]));
    const out = await resize(image, 16, 4);
    for (let x = 0; x < 16; x++) {
      const [r, , , a] = pixel(out, x, 2);
      if (a > 16) expect(r).toBeGreaterThanOrEqual(245);
    }
  });

  it("box pre-shrink averages blocks, edges included", () => {
    const image = coordinates(10, 7);
    const out = boxShrink(image, 4, 3);
    expect([out.width, out.height]).toEqual([3, 3]);
    // First block: x 0..3, y 0..2 -> mean x 1.5, mean y 1.
    expect(pixel(out, 0, 0)).toEqual([2, 1, 254, 255]);
    // Last block is partial: x 8..9, y 6 -> mean x 8.5, y 6.
    expect(pixel(out, 2, 2)).toEqual([8, 6, 246, 255]);
  });

  it("large reductions match a direct Lanczos resize closely", async () => {
    const photo = await decode(await loadCorpus("photo-small-aero1.jpg"), "jpeg");
    // 640 -> 80 takes the box path (factor 4), then Lanczos 160 -> 80.
    const viaBox = await resize(photo, 80, 60);
    const { resizer } = await import("../../src/codecs/wasm");
    const input = new Uint8Array(photo.data.buffer, photo.data.byteOffset, photo.data.byteLength);
    const data = (await resizer()).resize(input, 640, 480, 80, 60, 3, false, false);
    const direct: RgbaImage = { width: 80, height: 60, data, hasAlpha: false };
    expect(meanAbsoluteDifference(viaBox, direct)).toBeLessThan(2.5);
  });
});
