import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decode, encode, wasmMemory } from "../../src/codecs";
import type { RgbaImage } from "../../src/codecs/types";
import { ProblemError } from "../../src/errors";
import type { OutputFormat } from "../../src/images/format";
import {
  computeOutputGeometry,
  negotiateFormat,
  type OutputGeometry,
  type PipelineContext,
  type PipelineResult,
  runPipeline,
  type SourceImage,
  type StepName,
} from "../../src/pipeline";
import { watermarkPlacements } from "../../src/pipeline/steps/watermark";
import type { Fit, Gravity, TransformOptions } from "../../src/transform/options";
import { loadCorpus } from "./fixtures";
import {
  BLUE,
  coordinates,
  containsAscii,
  GREEN,
  jpegSegments,
  maxChannelDifference,
  options,
  pixel,
  pngSource,
  type Px,
  quadrantColours,
  quadrants,
  RED,
  solidImage,
  synthetic,
  WHITE,
} from "./image-helpers";

const LIMITS = { maxSide: 8192, maxPixels: 50_000_000 };
const CTX: PipelineContext = { limits: LIMITS };
const CENTRE: Gravity = { mode: "point", x: 0.5, y: 0.5 };

async function run(source: SourceImage, overrides: Partial<TransformOptions>, ctx: PipelineContext = CTX): Promise<PipelineResult> {
  return runPipeline(source, options(overrides), ctx);
}

async function runToPixels(source: SourceImage, overrides: Partial<TransformOptions>, ctx: PipelineContext = CTX): Promise<RgbaImage> {
  const result = await run(source, { format: "png", ...overrides }, ctx);
  const image = await decode(result.bytes, result.format);
  expect([image.width, image.height]).toEqual([result.width, result.height]);
  return image;
}

async function problemOf(promise: Promise<unknown>): Promise<ProblemError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof ProblemError)) throw new Error(`expected a ProblemError, got ${String(error)}`);
  return error;
}

// ---------------------------------------------------------------------------------------------
// Geometry: pure maths, exhaustively

describe("computeOutputGeometry", () => {
  interface Case {
    readonly src: readonly [number, number];
    readonly fit: Fit;
    readonly w?: number;
    readonly h?: number;
    readonly gravity?: Gravity;
    /** region x, y, w, h -> resample w, h -> canvas w, h at offset x, y */
    readonly expected: readonly [region: readonly [number, number, number, number], size: readonly [number, number], canvas?: readonly [number, number, number, number]];
  }
  const point = (x: number, y: number): Gravity => ({ mode: "point", x, y });
  const cases: Case[] = [
    // No size: nothing happens, whatever the fit.
    { src: [1000, 500], fit: "scale-down", expected: [[0, 0, 1000, 500], [1000, 500]] },
    { src: [1000, 500], fit: "cover", expected: [[0, 0, 1000, 500], [1000, 500]] },
    { src: [1000, 500], fit: "pad", expected: [[0, 0, 1000, 500], [1000, 500]] },
    // scale-down: contain that never enlarges.
    { src: [1000, 500], fit: "scale-down", w: 500, h: 500, expected: [[0, 0, 1000, 500], [500, 250]] },
    { src: [1000, 500], fit: "scale-down", w: 2000, h: 2000, expected: [[0, 0, 1000, 500], [1000, 500]] },
    { src: [1000, 500], fit: "scale-down", w: 2000, h: 250, expected: [[0, 0, 1000, 500], [500, 250]] },
    { src: [1000, 500], fit: "scale-down", w: 400, expected: [[0, 0, 1000, 500], [400, 200]] },
    { src: [1000, 500], fit: "scale-down", h: 100, expected: [[0, 0, 1000, 500], [200, 100]] },
    { src: [1000, 500], fit: "scale-down", w: 2000, expected: [[0, 0, 1000, 500], [1000, 500]] },
    // contain: may enlarge.
    { src: [1000, 500], fit: "contain", w: 500, h: 500, expected: [[0, 0, 1000, 500], [500, 250]] },
    { src: [1000, 500], fit: "contain", w: 2000, h: 2000, expected: [[0, 0, 1000, 500], [2000, 1000]] },
    { src: [1000, 500], fit: "contain", w: 2000, expected: [[0, 0, 1000, 500], [2000, 1000]] },
    { src: [1000, 500], fit: "contain", h: 1000, expected: [[0, 0, 1000, 500], [2000, 1000]] },
    { src: [500, 1000], fit: "contain", w: 300, h: 300, expected: [[0, 0, 500, 1000], [150, 300]] },
    // cover: exactly w x h, crop the overflow around the gravity, may enlarge.
    { src: [1000, 500], fit: "cover", w: 500, h: 500, expected: [[250, 0, 500, 500], [500, 500]] },
    { src: [1000, 500], fit: "cover", w: 200, h: 400, expected: [[375, 0, 250, 500], [200, 400]] },
    { src: [1000, 500], fit: "cover", w: 2000, h: 2000, expected: [[250, 0, 500, 500], [2000, 2000]] },
    { src: [1000, 500], fit: "cover", w: 1000, h: 100, expected: [[0, 200, 1000, 100], [1000, 100]] },
    { src: [1000, 500], fit: "cover", w: 500, expected: [[0, 0, 1000, 500], [500, 250]] },
    { src: [1000, 500], fit: "cover", h: 1000, expected: [[0, 0, 1000, 500], [2000, 1000]] },
    // crop: cover that never enlarges.
    { src: [1000, 500], fit: "crop", w: 500, h: 500, expected: [[250, 0, 500, 500], [500, 500]] },
    { src: [1000, 500], fit: "crop", w: 400, h: 100, expected: [[0, 125, 1000, 250], [400, 100]] },
    { src: [1000, 500], fit: "crop", w: 2000, h: 2000, expected: [[0, 0, 1000, 500], [1000, 500]] },
    { src: [1000, 500], fit: "crop", w: 800, h: 800, expected: [[100, 0, 800, 500], [800, 500]] },
    { src: [1000, 500], fit: "crop", w: 1200, h: 300, expected: [[0, 100, 1000, 300], [1000, 300]] },
    { src: [1000, 500], fit: "crop", h: 100, expected: [[0, 0, 1000, 500], [200, 100]] },
    { src: [1000, 500], fit: "crop", w: 3000, expected: [[0, 0, 1000, 500], [1000, 500]] },
    // pad: contain (may enlarge), then centred on a w x h canvas.
    { src: [1000, 500], fit: "pad", w: 500, h: 500, expected: [[0, 0, 1000, 500], [500, 250], [500, 500, 0, 125]] },
    { src: [1000, 500], fit: "pad", w: 2000, h: 2000, expected: [[0, 0, 1000, 500], [2000, 1000], [2000, 2000, 0, 500]] },
    { src: [500, 1000], fit: "pad", w: 301, h: 300, expected: [[0, 0, 500, 1000], [150, 300], [301, 300, 75, 0]] },
    { src: [1000, 500], fit: "pad", w: 500, expected: [[0, 0, 1000, 500], [500, 250]] },
    // squeeze: exactly w x h, aspect ignored.
    { src: [1000, 500], fit: "squeeze", w: 300, h: 300, expected: [[0, 0, 1000, 500], [300, 300]] },
    { src: [1000, 500], fit: "squeeze", w: 3000, h: 10, expected: [[0, 0, 1000, 500], [3000, 10]] },
    { src: [1000, 500], fit: "squeeze", w: 300, expected: [[0, 0, 1000, 500], [300, 150]] },
    // Gravity points (Cloudflare's remainder rule: x of the overflow is cut on the left).
    { src: [1000, 500], fit: "cover", w: 500, h: 500, gravity: point(0, 0.5), expected: [[0, 0, 500, 500], [500, 500]] },
    { src: [1000, 500], fit: "cover", w: 500, h: 500, gravity: point(1, 0.5), expected: [[500, 0, 500, 500], [500, 500]] },
    { src: [1000, 500], fit: "cover", w: 500, h: 500, gravity: point(0.25, 0), expected: [[125, 0, 500, 500], [500, 500]] },
    { src: [500, 1000], fit: "cover", w: 500, h: 500, gravity: point(0.5, 0), expected: [[0, 0, 500, 500], [500, 500]] },
    { src: [500, 1000], fit: "cover", w: 500, h: 500, gravity: point(0.5, 1), expected: [[0, 500, 500, 500], [500, 500]] },
    { src: [500, 1000], fit: "cover", w: 250, h: 250, gravity: point(0.5, 0.2), expected: [[0, 100, 500, 500], [250, 250]] },
    { src: [1000, 500], fit: "crop", w: 800, h: 800, gravity: point(1, 1), expected: [[200, 0, 800, 500], [800, 500]] },
    // Auto gravity without a computed focus falls back to the centre.
    { src: [1000, 500], fit: "cover", w: 500, h: 500, gravity: { mode: "auto" }, expected: [[250, 0, 500, 500], [500, 500]] },
    // Rounding and degenerate sizes.
    { src: [1001, 333], fit: "contain", w: 100, expected: [[0, 0, 1001, 333], [100, 33]] },
    { src: [1000, 1], fit: "scale-down", w: 10, expected: [[0, 0, 1000, 1], [10, 1]] },
    { src: [1, 1000], fit: "cover", w: 10, h: 10, expected: [[0, 500, 1, 1], [10, 10]] },
    { src: [3, 2], fit: "contain", w: 1, h: 1, expected: [[0, 0, 3, 2], [1, 1]] },
  ];

  it.each(cases.map((c) => [describeCase(c), c] as const))("%s", (_name, c) => {
    const geometry = computeOutputGeometry(c.src[0], c.src[1], {
      ...(c.w === undefined ? {} : { width: c.w }),
      ...(c.h === undefined ? {} : { height: c.h }),
      fit: c.fit,
      gravity: c.gravity ?? CENTRE,
    });
    const [region, size, canvas] = c.expected;
    const expected: OutputGeometry = {
      region: { x: region[0], y: region[1], width: region[2], height: region[3] },
      width: size[0],
      height: size[1],
      canvasWidth: canvas?.[0] ?? size[0],
      canvasHeight: canvas?.[1] ?? size[1],
      offsetX: canvas?.[2] ?? 0,
      offsetY: canvas?.[3] ?? 0,
    };
    expect(geometry).toEqual(expected);
  });

  function describeCase(c: Case): string {
    const size = `${c.w ?? "-"}x${c.h ?? "-"}`;
    const gravity = c.gravity === undefined ? "" : c.gravity.mode === "auto" ? " g=auto" : ` g=${c.gravity.x},${c.gravity.y}`;
    return `${c.src[0]}x${c.src[1]} fit=${c.fit} ${size}${gravity}`;
  }

  it("properties hold for any size, fit and focal point", () => {
    const fits: Fit[] = ["scale-down", "contain", "cover", "crop", "pad", "squeeze"];
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5000 }),
        fc.integer({ min: 1, max: 5000 }),
        fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 5000 }), { nil: undefined }),
        fc.constantFrom(...fits),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (sw, sh, w, h, fit, gx, gy) => {
          const g = computeOutputGeometry(sw, sh, {
            ...(w === undefined ? {} : { width: w }),
            ...(h === undefined ? {} : { height: h }),
            fit,
            gravity: { mode: "point", x: gx, y: gy },
          });
          const { region } = g;
          // The region lies inside the input and everything is a positive integer.
          expect(region.x).toBeGreaterThanOrEqual(0);
          expect(region.y).toBeGreaterThanOrEqual(0);
          expect(region.x + region.width).toBeLessThanOrEqual(sw);
          expect(region.y + region.height).toBeLessThanOrEqual(sh);
          for (const n of [region.x, region.y, region.width, region.height, g.width, g.height, g.canvasWidth, g.canvasHeight]) {
            expect(Number.isInteger(n)).toBe(true);
          }
          expect(Math.min(region.width, region.height, g.width, g.height)).toBeGreaterThanOrEqual(1);
          // The output never exceeds a given box (pad/cover/squeeze fill it exactly).
          if (w !== undefined && h !== undefined) {
            expect(g.canvasWidth).toBeLessThanOrEqual(w);
            expect(g.canvasHeight).toBeLessThanOrEqual(h);
            if (fit === "cover" || fit === "pad" || fit === "squeeze") expect([g.canvasWidth, g.canvasHeight]).toEqual([w, h]);
          }
          // Never enlarged: scale-down and crop.
          if (fit === "scale-down" || fit === "crop") {
            expect(g.width).toBeLessThanOrEqual(region.width);
            expect(g.height).toBeLessThanOrEqual(region.height);
          }
          // Remainder rule: the focal point keeps its relative position (to the pixel).
          if (region.width < sw) expect(Math.abs(region.x - gx * (sw - region.width))).toBeLessThanOrEqual(0.5);
          if (region.height < sh) expect(Math.abs(region.y - gy * (sh - region.height))).toBeLessThanOrEqual(0.5);
          // Aspect ratio kept (within rounding) except for squeeze.
          // (Sizes of 1 px are clamped up from less and cannot keep it.)
          if (fit !== "squeeze" && Math.min(g.width, g.height, region.width, region.height) >= 2) {
            const expected = region.width / region.height;
            const actual = g.width / g.height;
            // A side rounded from an exact s* is off by <= 0.5, i.e. by 0.5 / s* relatively, and s* >= s - 0.5.
            const rounding = 0.5 / (Math.min(g.width, g.height) - 0.5) + 0.5 / (Math.min(region.width, region.height) - 0.5);
            expect(Math.abs(actual - expected)).toBeLessThanOrEqual(expected * rounding * 1.01 + 1e-9);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Orientation, crop, rotate, flip: pixel level

describe("orient", () => {
  // Stored quadrants: R G / B W. Expected upright quadrants per EXIF orientation.
  const expectations: Record<number, readonly [Px, Px, Px, Px]> = {
    1: [RED, GREEN, BLUE, WHITE],
    2: [GREEN, RED, WHITE, BLUE], // mirrored left-right
    3: [WHITE, BLUE, GREEN, RED], // 180°
    4: [BLUE, WHITE, RED, GREEN], // mirrored top-bottom
    5: [RED, BLUE, GREEN, WHITE], // transposed
    6: [BLUE, RED, WHITE, GREEN], // stored rotated: turn 90° clockwise
    7: [WHITE, GREEN, BLUE, RED], // transverse
    8: [GREEN, WHITE, RED, BLUE], // turn 90° counter-clockwise
  };
  it.each(Object.entries(expectations))("EXIF orientation %s", async (value, expected) => {
    const orientation = Number(value);
    const out = await runToPixels(await pngSource(quadrants(40, 20), orientation), {});
    expect([out.width, out.height]).toEqual(orientation >= 5 ? [20, 40] : [40, 20]);
    expect(quadrantColours(out)).toEqual(expected);
  });

  it("treats 0 and unknown values as 1", async () => {
    for (const orientation of [0, 9, -1]) {
      const out = await runToPixels(await pngSource(quadrants(40, 20), orientation), {});
      expect(quadrantColours(out)).toEqual([RED, GREEN, BLUE, WHITE]);
    }
  });
});

describe("rotate and flip", () => {
  const cases: Array<[string, Partial<TransformOptions>, readonly [Px, Px, Px, Px], readonly [number, number]]> = [
    ["rot=90 (clockwise)", { rotate: 90 }, [BLUE, RED, WHITE, GREEN], [20, 40]],
    ["rot=180", { rotate: 180 }, [WHITE, BLUE, GREEN, RED], [40, 20]],
    ["rot=270", { rotate: 270 }, [GREEN, WHITE, RED, BLUE], [20, 40]],
    ["flip=h", { flip: "h" }, [GREEN, RED, WHITE, BLUE], [40, 20]],
    ["flip=v", { flip: "v" }, [BLUE, WHITE, RED, GREEN], [40, 20]],
    ["flip=hv", { flip: "hv" }, [WHITE, BLUE, GREEN, RED], [40, 20]],
    // Flip first, then rotate (Cloudflare's order): h then 90° = transverse.
    ["flip=h rot=90", { flip: "h", rotate: 90 }, [WHITE, GREEN, BLUE, RED], [20, 40]],
    ["flip=v rot=90", { flip: "v", rotate: 90 }, [RED, BLUE, GREEN, WHITE], [20, 40]],
  ];
  it.each(cases)("%s", async (_name, overrides, expected, size) => {
    const out = await runToPixels(await pngSource(quadrants(40, 20)), overrides);
    expect([out.width, out.height]).toEqual(size);
    expect(quadrantColours(out)).toEqual(expected);
  });

  it("applies after EXIF orientation (orientation 6 then rot=270 is upright-as-stored)", async () => {
    const out = await runToPixels(await pngSource(quadrants(40, 20), 6), { rotate: 270 });
    expect([out.width, out.height]).toEqual([40, 20]);
    expect(quadrantColours(out)).toEqual([RED, GREEN, BLUE, WHITE]);
  });
});

describe("crop", () => {
  it("keeps the rectangle, pixel for pixel", async () => {
    const out = await runToPixels(await pngSource(coordinates(64, 48)), { crop: { x: 10, y: 5, width: 20, height: 12 } });
    expect([out.width, out.height]).toEqual([20, 12]);
    for (const [x, y] of [[0, 0], [19, 0], [0, 11], [19, 11], [7, 3]] as const) {
      expect(pixel(out, x, y)).toEqual([10 + x, 5 + y, 255 - (10 + x), 255]);
    }
  });

  it("measures the rectangle in the upright image (after EXIF orientation)", async () => {
    // Stored 64x48, orientation 6: upright is 48x64 and upright (u, v) shows stored (v, 47 - u).
    const out = await runToPixels(await pngSource(coordinates(64, 48), 6), { crop: { x: 4, y: 30, width: 40, height: 20 } });
    expect([out.width, out.height]).toEqual([40, 20]);
    for (const [u, v] of [[0, 0], [39, 0], [0, 19], [39, 19]] as const) {
      const sx = 30 + v;
      const sy = 47 - (4 + u);
      expect(pixel(out, u, v)).toEqual([sx, sy, 255 - sx, 255]);
    }
  });

  it("happens before rotate, flip and resize", async () => {
    // Crop the top-left quadrant (red) plus the top-right (green) of 40x20, rotate 90: red on top.
    const out = await runToPixels(await pngSource(quadrants(40, 20)), {
      crop: { x: 0, y: 0, width: 40, height: 10 },
      rotate: 90,
      width: 5,
      fit: "contain",
    });
    expect([out.width, out.height]).toEqual([5, 20]);
    expect(maxChannelDifference(pixel(out, 2, 2), RED)).toBeLessThanOrEqual(2);
    expect(maxChannelDifference(pixel(out, 2, 17), GREEN)).toBeLessThanOrEqual(2);
  });

  it.each([
    [{ x: 60, y: 0, width: 10, height: 10 }],
    [{ x: 0, y: 40, width: 10, height: 10 }],
    [{ x: 0, y: 0, width: 65, height: 1 }],
    [{ x: -1, y: 0, width: 5, height: 5 }],
  ])("refuses %o outside the 64x48 image with a 400 naming crop", async (rect) => {
    const problem = await problemOf(run(await pngSource(coordinates(64, 48)), { crop: rect }));
    expect(problem.status).toBe(400);
    expect(problem.code).toBe("invalid-parameter");
    expect(problem.extras.parameter).toBe("crop");
    expect(problem.detail).toContain("64x48");
  });

  it("checks bounds against the upright size", async () => {
    // 0,0,60,10 fits the stored 64x48 but not the upright 48x64.
    const problem = await problemOf(run(await pngSource(coordinates(64, 48), 6), { crop: { x: 0, y: 0, width: 60, height: 10 } }));
    expect(problem.extras.parameter).toBe("crop");
    expect(problem.detail).toContain("48x64");
  });

  it("fails before decoding when the stored size is known", async () => {
    const source: SourceImage = { bytes: new Uint8Array([1, 2, 3]), format: "jpeg", orientation: 1, width: 64, height: 48 };
    const problem = await problemOf(run(source, { crop: { x: 0, y: 0, width: 100, height: 10 } }));
    expect(problem.code).toBe("invalid-parameter");
    // Without the size, the same request reaches the decoder.
    const undecodable = await problemOf(run({ ...source, width: undefined, height: undefined }, { crop: { x: 0, y: 0, width: 100, height: 10 } }));
    expect(undecodable.status).toBe(422);
    expect(undecodable.code).toBe("invalid-image");
  });
});

// ---------------------------------------------------------------------------------------------
// Resize, gravity, pad

describe("resize", () => {
  it("cover keeps the side the gravity names", async () => {
    const source = await pngSource(quadrants(80, 40));
    const left = await runToPixels(source, { width: 40, height: 40, fit: "cover", gravity: { mode: "point", x: 0, y: 0.5 } });
    expect(quadrantColours(left)).toEqual([RED, RED, BLUE, BLUE]);
    const right = await runToPixels(source, { width: 40, height: 40, fit: "cover", gravity: { mode: "point", x: 1, y: 0.5 } });
    expect(quadrantColours(right)).toEqual([GREEN, GREEN, WHITE, WHITE]);
  });

  it("scale-down never enlarges and contain does", async () => {
    const source = await pngSource(quadrants(40, 20));
    expect((await run(source, { width: 100, height: 100 })).width).toBe(40);
    const contained = await run(source, { width: 100, height: 100, fit: "contain" });
    expect([contained.width, contained.height]).toEqual([100, 50]);
  });

  it("squeeze stretches to exactly w x h", async () => {
    const out = await runToPixels(await pngSource(quadrants(40, 20)), { width: 20, height: 40, fit: "squeeze" });
    expect([out.width, out.height]).toEqual([20, 40]);
    expect(quadrantColours(out)).toEqual([RED, GREEN, BLUE, WHITE]);
  });

  it("pad fills the rest of the box with the background colour", async () => {
    const background = { r: 255, g: 0, b: 0, a: 255 };
    const out = await runToPixels(await pngSource(solidImage(40, 20, BLUE)), { width: 40, height: 40, fit: "pad", background });
    expect([out.width, out.height]).toEqual([40, 40]);
    expect(pixel(out, 20, 2)).toEqual(RED); // band above
    expect(pixel(out, 20, 37)).toEqual(RED); // band below
    expect(pixel(out, 20, 20)).toEqual(BLUE); // the image, centred (rows 10..29)
    expect(pixel(out, 0, 10)).toEqual(BLUE);
    expect(pixel(out, 0, 9)).toEqual(RED);
  });

  it("pad with a transparent background keeps the padding transparent", async () => {
    const out = await runToPixels(await pngSource(solidImage(20, 40, GREEN)), {
      width: 40,
      height: 40,
      fit: "pad",
      background: { r: 0, g: 0, b: 0, a: 0 },
    });
    expect(pixel(out, 2, 20)).toEqual([0, 0, 0, 0]);
    expect(pixel(out, 20, 20)).toEqual(GREEN);
  });

  it("gravity auto keeps the detailed part of the image", async () => {
    // Flat grey with a contrasty checkerboard in the right quarter.
    const image = synthetic(200, 100, (x, y) => (x >= 150 ? (((x >> 2) + (y >> 2)) % 2 === 0 ? [0, 0, 0, 255] : WHITE) : [128, 128, 128, 255]));
    const out = await runToPixels(await pngSource(image), { width: 100, height: 100, fit: "cover", gravity: { mode: "auto" } });
    // The window is pushed right: its right half shows the checkerboard.
    let distinct = 0;
    for (let x = 60; x < 100; x++) if (pixel(out, x, 50)[0] !== 128) distinct++;
    expect(distinct).toBeGreaterThan(30);
    // Same image mirrored: the window moves left.
    const mirrored = await runToPixels(await pngSource(image), { width: 100, height: 100, fit: "cover", gravity: { mode: "auto" }, flip: "h" });
    let left = 0;
    for (let x = 0; x < 40; x++) if (pixel(mirrored, x, 50)[0] !== 128) left++;
    expect(left).toBeGreaterThan(30);
  });

  it("downscales smoothly: a 1-px checkerboard averages to grey", async () => {
    const checker = synthetic(400, 400, (x, y) => ((x + y) % 2 === 0 ? [0, 0, 0, 255] : WHITE));
    const out = await runToPixels(await pngSource(checker), { width: 50 });
    expect([out.width, out.height]).toEqual([50, 50]);
    for (const [x, y] of [[10, 10], [25, 25], [40, 5]] as const) {
      expect(Math.abs(pixel(out, x, y)[0] - 128)).toBeLessThanOrEqual(3);
    }
  });

  it("refuses an output over the side cap with a 400, before decoding when it can", async () => {
    const ctx: PipelineContext = { limits: { maxSide: 100, maxPixels: 1_000_000 } };
    const source = await pngSource(quadrants(40, 20));
    const enlarged = await problemOf(run(source, { width: 300, fit: "contain" }, ctx));
    expect([enlarged.status, enlarged.code]).toEqual([400, "output-too-large"]);
    // No size asked, but the source itself is over the cap: never served silently.
    const big = await problemOf(run(await pngSource(quadrants(150, 20)), {}, ctx));
    expect(big.code).toBe("output-too-large");
    // Known stored size: refused without decoding (these bytes would not decode).
    const early = await problemOf(run({ bytes: new Uint8Array(8), format: "png", orientation: 1, width: 4000, height: 10 }, {}, ctx));
    expect(early.code).toBe("output-too-large");
  });

  it("refuses an output over the pixel cap with a 400", async () => {
    const ctx: PipelineContext = { limits: { maxSide: 1000, maxPixels: 10_000 } };
    const problem = await problemOf(run(await pngSource(quadrants(40, 20)), { width: 200, height: 200, fit: "pad" }, ctx));
    expect(problem.code).toBe("output-too-large");
    expect(problem.detail).toContain("200x200");
  });
});

// ---------------------------------------------------------------------------------------------
// Blur, sharpen

describe("blur and sharpen", () => {
  it("blur averages fine detail and leaves flat areas alone", async () => {
    const checker = synthetic(32, 32, (x, y) => ((x + y) % 2 === 0 ? [0, 0, 0, 255] : WHITE));
    const out = await runToPixels(await pngSource(checker), { blur: 4 });
    for (const [x, y] of [[5, 5], [16, 16], [0, 0], [31, 31]] as const) {
      expect(Math.abs(pixel(out, x, y)[0] - 128)).toBeLessThanOrEqual(12);
    }
    const flat = await runToPixels(await pngSource(solidImage(16, 16, [10, 200, 30, 255])), { blur: 10 });
    expect(pixel(flat, 8, 8)).toEqual([10, 200, 30, 255]);
  });

  it("blur does not darken edges next to transparent pixels (premultiplied)", async () => {
    const half = synthetic(20, 10, (x) => (x < 10 ? WHITE : [0, 0, 0, 0]));
    const out = await runToPixels(await pngSource(half), { blur: 3 });
    for (let x = 6; x < 16; x++) {
      const [r, g, b, a] = pixel(out, x, 5);
      if (a > 8) expect(Math.min(r, g, b)).toBeGreaterThanOrEqual(250);
    }
    const [, , , edgeAlpha] = pixel(out, 10, 5);
    expect(edgeAlpha).toBeGreaterThan(60);
    expect(edgeAlpha).toBeLessThan(200);
  });

  it("sharpen raises edge contrast and leaves flat areas alone", async () => {
    const edge = synthetic(20, 8, (x) => (x < 10 ? [100, 100, 100, 255] : [150, 150, 150, 255]));
    const out = await runToPixels(await pngSource(edge), { sharpen: 2 });
    expect(pixel(out, 9, 4)[0]).toBeLessThan(100);
    expect(pixel(out, 10, 4)[0]).toBeGreaterThan(150);
    expect(pixel(out, 2, 4)).toEqual([100, 100, 100, 255]);
    expect(pixel(out, 17, 4)).toEqual([150, 150, 150, 255]);
  });
});

// ---------------------------------------------------------------------------------------------
// Watermark

describe("watermark", () => {
  const GREY: Px = [100, 100, 100, 255];
  // 40x20 red at alpha 128: scaled to 0.2 of a 100 px output -> 20x10.
  const mark = solidImage(40, 20, [255, 0, 0, 128]);

  async function withMark(overrides: Partial<NonNullable<TransformOptions["watermark"]>>, base: RgbaImage = solidImage(100, 100, GREY)): Promise<RgbaImage> {
    const markSource = await pngSource(mark);
    const ctx: PipelineContext = {
      limits: LIMITS,
      loadWatermark: async (id) => (id === "logo" ? markSource : null),
    };
    return runToPixels(await pngSource(base), {
      watermark: { imageId: "logo", position: "bottom-right", scale: 0.2, opacity: 0.5, padding: 5, ...overrides },
    }, ctx);
  }

  /** Source-over of red at alpha a (0..1) on an opaque colour. */
  function blend(alpha: number, under: Px): Px {
    return [255 * alpha + under[0] * (1 - alpha), under[1] * (1 - alpha), under[2] * (1 - alpha), 255].map(Math.round) as unknown as Px;
  }

  it("sits in the corner, padding px in, blended with the requested opacity", async () => {
    const out = await withMark({});
    // Watermark occupies x 75..94, y 85..94.
    const expected = blend((128 / 255) * 0.5, GREY);
    for (const [x, y] of [[75, 85], [85, 90], [94, 94]] as const) {
      expect(maxChannelDifference(pixel(out, x, y), expected)).toBeLessThanOrEqual(1);
    }
    for (const [x, y] of [[74, 90], [95, 90], [85, 84], [85, 95], [10, 10]] as const) expect(pixel(out, x, y)).toEqual(GREY);
  });

  it("opacity 1 gives the watermark's own alpha", async () => {
    const out = await withMark({ opacity: 1, position: "top-left", padding: 0 });
    expect(maxChannelDifference(pixel(out, 5, 5), blend(128 / 255, GREY))).toBeLessThanOrEqual(1);
    expect(pixel(out, 25, 5)).toEqual(GREY);
  });

  it("composites over translucent pixels with premultiplied maths", async () => {
    const out = await withMark({ opacity: 1, position: "center", padding: 0 }, solidImage(100, 100, [0, 0, 255, 128]));
    // src red a=128/255 over dst blue a=128/255: outA = a + a(1-a); colour = (red·a + blue·a(1-a)) / outA.
    const a = 128 / 255;
    const outA = a + a * (1 - a);
    const expected: Px = [Math.round((255 * a) / outA), 0, Math.round((255 * a * (1 - a)) / outA), Math.round(outA * 255)];
    expect(maxChannelDifference(pixel(out, 50, 50), expected)).toBeLessThanOrEqual(1);
  });

  it("tiles across the whole image", async () => {
    const out = await withMark({ position: "tile", padding: 10, opacity: 1 });
    // Tiles of 20x10 every 30 px across and 20 px down, starting at 10,10: 3 columns, 5 rows.
    expect(watermarkPlacements(100, 100, 20, 10, "tile", 10)).toHaveLength(3 * 5);
    const marked = blend(128 / 255, GREY);
    for (const [x, y] of [[15, 15], [45, 35], [75, 95], [85, 55]] as const) {
      expect(maxChannelDifference(pixel(out, x, y), marked)).toBeLessThanOrEqual(1);
    }
    for (const [x, y] of [[5, 5], [35, 15], [15, 25]] as const) expect(pixel(out, x, y)).toEqual(GREY);
  });

  it("places each named position", () => {
    const at = (position: Parameters<typeof watermarkPlacements>[4]) => watermarkPlacements(100, 80, 20, 10, position, 4)[0];
    expect(at("top-left")).toEqual([4, 4]);
    expect(at("top")).toEqual([40, 4]);
    expect(at("top-right")).toEqual([76, 4]);
    expect(at("left")).toEqual([4, 35]);
    expect(at("center")).toEqual([40, 35]);
    expect(at("right")).toEqual([76, 35]);
    expect(at("bottom-left")).toEqual([4, 66]);
    expect(at("bottom")).toEqual([40, 66]);
    expect(at("bottom-right")).toEqual([76, 66]);
  });

  it("follows the watermark's own EXIF orientation", async () => {
    const markSource = await pngSource(quadrants(40, 20), 6); // upright 20x40
    const ctx: PipelineContext = { limits: LIMITS, loadWatermark: async () => markSource };
    const out = await runToPixels(await pngSource(solidImage(100, 100, [0, 0, 0, 255])), {
      watermark: { imageId: "q", position: "top-left", scale: 0.2, opacity: 1, padding: 0 },
    }, ctx);
    // 20 px wide, 40 px tall, upright quadrants B R / W G.
    expect(pixel(out, 5, 10)).toEqual(BLUE);
    expect(pixel(out, 15, 10)).toEqual(RED);
    expect(pixel(out, 5, 30)).toEqual(WHITE);
    expect(pixel(out, 15, 30)).toEqual(GREEN);
    expect(pixel(out, 25, 10)).toEqual([0, 0, 0, 255]);
  });

  it("never grows taller than the image", async () => {
    const tall = await pngSource(solidImage(10, 400, RED));
    const ctx: PipelineContext = { limits: LIMITS, loadWatermark: async () => tall };
    const out = await runToPixels(await pngSource(solidImage(100, 50, [0, 0, 0, 255])), {
      watermark: { imageId: "tall", position: "top-left", scale: 1, opacity: 1, padding: 0 },
    }, ctx);
    // scale 1 would make it 100x4000; it is fitted to the height instead: 1x50 (10 * 50 / 400 rounds to 1).
    expect(pixel(out, 0, 25)).toEqual(RED);
    expect(pixel(out, 0, 49)).toEqual(RED);
    expect(pixel(out, 2, 25)).toEqual([0, 0, 0, 255]);
  });

  it("refuses an unknown watermark id with a 400 naming wm", async () => {
    const ctx: PipelineContext = { limits: LIMITS, loadWatermark: async () => null };
    const problem = await problemOf(
      run(await pngSource(solidImage(10, 10, RED)), { watermark: { imageId: "nope", position: "center", scale: 0.5, opacity: 1, padding: 0 } }, ctx),
    );
    expect([problem.status, problem.code, problem.extras.parameter]).toEqual([400, "invalid-parameter", "wm"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Output format, flatten, metadata

describe("output format", () => {
  it("negotiates fmt=auto from Accept", () => {
    expect(negotiateFormat("image/avif,image/webp,image/apng,*/*;q=0.8", false)).toBe("avif");
    expect(negotiateFormat("image/webp,*/*", true)).toBe("webp");
    expect(negotiateFormat("image/avif;q=0, image/webp", false)).toBe("webp");
    expect(negotiateFormat("*/*", true)).toBe("png");
    expect(negotiateFormat("image/*", false)).toBe("jpeg");
    expect(negotiateFormat(undefined, false)).toBe("jpeg");
  });

  it("fmt=auto picks PNG for transparency and JPEG otherwise when neither AVIF nor WebP is accepted", async () => {
    const translucent = await pngSource(solidImage(8, 8, [1, 2, 3, 100]));
    const opaque = await pngSource(solidImage(8, 8, RED));
    expect((await run(translucent, { format: "auto" }, { ...CTX, acceptHeader: "text/html,*/*" })).format).toBe("png");
    expect((await run(opaque, { format: "auto" }, { ...CTX, acceptHeader: "text/html,*/*" })).format).toBe("jpeg");
    expect((await run(opaque, { format: "auto" }, { ...CTX, acceptHeader: "image/webp" })).format).toBe("webp");
    expect((await run(opaque, { format: "auto" }, { ...CTX, acceptHeader: "image/avif,image/webp" })).format).toBe("avif");
    // A crop that removes every translucent pixel makes it opaque: JPEG.
    const partly = await pngSource(synthetic(8, 8, (x) => (x < 4 ? RED : [0, 0, 0, 0])));
    expect((await run(partly, { format: "auto", crop: { x: 0, y: 0, width: 4, height: 8 } })).format).toBe("jpeg");
  });

  it("keeps the stored format when none is asked", async () => {
    const image = solidImage(8, 8, RED);
    for (const format of ["jpeg", "webp", "avif", "png"] as const) {
      const source: SourceImage = { bytes: await encode(image, format, 90), format, orientation: 1 };
      const result = await runPipeline(source, { ...options(), format: undefined }, CTX);
      expect(result.format).toBe(format);
      const magic = result.bytes.subarray(0, 12);
      const text = String.fromCharCode(...magic);
      const signature: Record<OutputFormat, boolean> = {
        jpeg: magic[0] === 0xff && magic[1] === 0xd8,
        png: text.startsWith("\x89PNG"),
        webp: text.startsWith("RIFF") && text.endsWith("WEBP"),
        avif: text.slice(4, 12) === "ftypavif",
      };
      expect(signature[format]).toBe(true);
    }
  });

  it("flattens transparency onto the background for JPEG", async () => {
    const translucent = await pngSource(solidImage(32, 32, [255, 0, 0, 128]));
    const onWhite = await decode((await run(translucent, { format: "jpeg", quality: 95 })).bytes, "jpeg");
    expect(maxChannelDifference(pixel(onWhite, 16, 16), [255, 127, 127, 255])).toBeLessThanOrEqual(3);
    const onBlack = await decode((await run(translucent, { format: "jpeg", quality: 95, background: { r: 0, g: 0, b: 0, a: 255 } })).bytes, "jpeg");
    expect(maxChannelDifference(pixel(onBlack, 16, 16), [128, 0, 0, 255])).toBeLessThanOrEqual(3);
    // PNG keeps the alpha.
    const png = await runToPixels(translucent, { format: "png" });
    expect(pixel(png, 16, 16)).toEqual([255, 0, 0, 128]);
  });

  it("writes no EXIF, GPS or XMP from a photo that has them", async () => {
    const bytes = await loadCorpus("jpeg-gps-real-colorfulcups.jpg");
    expect(containsAscii(bytes, "Exif")).toBe(true); // the source does carry them
    const source: SourceImage = { bytes, format: "jpeg", orientation: 1 };
    const jpeg = await run(source, { width: 320, format: "jpeg" });
    const markers = jpegSegments(jpeg.bytes).map(([marker]) => marker);
    expect(markers.some((m) => m >= 0xe1 && m <= 0xef)).toBe(false); // only APP0 (JFIF) may remain
    for (const format of ["jpeg", "webp", "avif", "png"] as const) {
      const out = await run(source, { width: 320, format });
      for (const text of ["Exif", "GPS", "http://ns.adobe.com/xap", "SONY", "NEX-3N"]) expect(containsAscii(out.bytes, text)).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Real photos

describe("real photos", () => {
  it("decodes, resizes and encodes a 2.5 MP JPEG to an 800x533 WebP whose pixels match sharp's within 12", async () => {
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const runs: number[] = [];
    let steps: string[] = [];
    let result: PipelineResult | undefined;
    for (let i = 0; i < 3; i++) {
      const timings: Array<[StepName, number]> = [];
      const started = performance.now();
      result = await runPipeline({ bytes, format: "jpeg", orientation: 1, width: 1920, height: 1280 }, options({ width: 800, format: "webp" }), {
        ...CTX,
        trace: (step, ms) => timings.push([step, ms]),
      });
      runs.push(performance.now() - started);
      steps = timings.filter(([, ms]) => ms >= 0.5).map(([step, ms]) => `${step} ${ms.toFixed(0)}`);
    }
    console.log(
      `1920x1280 JPEG -> 800x533 WebP: ${runs.map((ms) => ms.toFixed(0)).join(" / ")} ms (last: ${steps.join(", ")}); ` +
        `${result?.bytes.length} bytes; WASM memory held after: ${Object.entries(wasmMemory()).map(([codec, bytes]) => `${codec} ${(bytes / 2 ** 20).toFixed(1)} MiB`).join(", ")}`,
    );
    expect(result?.format).toBe("webp");
    expect([result?.width, result?.height]).toEqual([800, 533]);
    // Matches sharp (libvips, Lanczos3 in sRGB) at the same size, within WebP's loss.
    const back = await decode(result!.bytes, "webp");
    const reference: Array<[number, number, Px]> = [
      [400, 20, [141, 155, 190, 255]],
      [100, 500, [22, 27, 32, 255]],
      [700, 300, [157, 167, 198, 255]],
    ];
    for (const [x, y, expected] of reference) expect(maxChannelDifference(pixel(back, x, y), expected)).toBeLessThanOrEqual(12);
  });

  it("stops at the next step once its abort signal fires (timeouts included)", async () => {
    const bytes = await loadCorpus("photo-medium-storm.jpg");
    const source: SourceImage = { bytes, format: "jpeg", orientation: 1 };
    const steps: StepName[] = [];
    const error = await runPipeline(source, options({ width: 800, format: "avif" }), {
      ...CTX,
      signal: AbortSignal.timeout(20),
      trace: (step) => steps.push(step),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DOMException);
    expect((error as DOMException).name).toBe("TimeoutError");
    expect(steps).not.toContain("encode");
    // An explicit abort before the start runs nothing.
    const controller = new AbortController();
    controller.abort();
    const none: StepName[] = [];
    await expect(runPipeline(source, options(), { ...CTX, signal: controller.signal, trace: (step) => none.push(step) })).rejects.toThrow();
    expect(none).toEqual([]);
  });

  it("cover-crops a progressive 4 MP JPEG with auto gravity to AVIF", async () => {
    const bytes = await loadCorpus("jpeg-gps-real-colorfulcups.jpg");
    const started = performance.now();
    const result = await run({ bytes, format: "jpeg", orientation: 1 }, { width: 400, height: 400, fit: "cover", gravity: { mode: "auto" }, format: "avif", sharpen: 1 });
    console.log(`2560x1600 progressive JPEG -> 400x400 AVIF (cover, auto, sharpen): ${(performance.now() - started).toFixed(0)} ms, ${result.bytes.length} bytes`);
    expect([result.width, result.height, result.format]).toEqual([400, 400, "avif"]);
  });

  it("watermarks a photo with a real transparent logo", async () => {
    const logo: SourceImage = { bytes: await loadCorpus("png-alpha-watermark-debian.png"), format: "png", orientation: 1 };
    const photo: SourceImage = { bytes: await loadCorpus("photo-small-aero1.jpg"), format: "jpeg", orientation: 1 };
    const ctx: PipelineContext = { limits: LIMITS, loadWatermark: async () => logo };
    const plain = await runToPixels(photo, { width: 320 });
    const marked = await runToPixels(photo, { width: 320, watermark: { imageId: "logo", position: "center", scale: 0.5, opacity: 1, padding: 0 } }, ctx);
    // The logo (160x52, centred) changes pixels there and nowhere near the corners.
    let changed = 0;
    for (let y = 110; y < 130; y++) for (let x = 80; x < 240; x++) if (maxChannelDifference(pixel(plain, x, y), pixel(marked, x, y)) > 20) changed++;
    expect(changed).toBeGreaterThan(100);
    expect(pixel(marked, 5, 5)).toEqual(pixel(plain, 5, 5));
  });
});
