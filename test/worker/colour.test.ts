// Colour management: embedded ICC profiles (and AVIF nclx) are found in every container,
// parsed, and the decoded pixels converted to sRGB by the pipeline's colour step; sRGB-tagged
// and untagged images are left exactly as decoded; LUT-based RGB profiles are left alone. CMYK
// and YCCK JPEGs are converted through their CMYK profile's A2B0 table (or libvips' default one).
//
// References: the published Adobe RGB (1998), Display P3 and sRGB matrices (D65, independent of
// the module's D50 route), and lcms2 (sharp 0.35.5 / libvips 8.18.7, colour-managed decode of
// the same PNGs, computed beforehand and written down below).
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { decode, encode } from "../../src/codecs";
import type { RgbaImage } from "../../src/codecs/types";
import type { ImageFormat } from "../../src/images/format";
import { crc32 } from "../../src/images/crc32";
import { decodeNativeJpeg } from "../../src/codecs/native-jpeg";
import {
  applyCmykTransform,
  applyColourTransform,
  avifColour,
  cmykTransformForProfile,
  evaluateCmykLut,
  jpegCmykTransform,
  parseCmykLut,
  evaluateCurve,
  extractIccProfile,
  inflate,
  type IccProfile,
  MAX_ICC_BYTES,
  nclxTransform,
  P3_PRIMARIES,
  parseIccProfile,
  rgbToXyzD50,
  SRGB_TO_XYZ_D50,
  sourceColourTransform,
  srgbDecode,
  srgbEncode,
  srgbTransform,
  type ToneCurve,
} from "../../src/images/icc";
import { type PipelineContext, runPipeline, STEPS, type StepName } from "../../src/pipeline";
import { loadCorpus, loadCorpusHead, loadFixture, loadImage } from "./fixtures";
import { options } from "./image-helpers";

const CTX: PipelineContext = { limits: { maxSide: 8192, maxPixels: 50_000_000 } };

// ---------------------------------------------------------------------------------------------
// Byte helpers: PNG chunks, JPEG APP2, ICC profiles built from tags

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const latin1 = (text: string): Uint8Array => Uint8Array.from(text, (c) => c.charCodeAt(0));

function u32be(v: number): Uint8Array {
  return new Uint8Array([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const body = concat(latin1(type), data);
  return concat(u32be(data.length), body, u32be(crc32(body)));
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes.slice()]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** `png` with an iCCP chunk (named "icc") holding `profile`, right after IHDR. */
async function withIccp(png: Uint8Array, profile: Uint8Array): Promise<Uint8Array> {
  const chunk = pngChunk("iCCP", concat(latin1("icc\0\0"), await deflate(profile)));
  return concat(png.subarray(0, 33), chunk, png.subarray(33));
}

/** `jpeg` with APP2 ICC_PROFILE segments [seq, count, data] right after SOI. */
function withApp2(jpeg: Uint8Array, parts: ReadonlyArray<readonly [seq: number, count: number, data: Uint8Array]>): Uint8Array {
  const segments = parts.map(([seq, count, data]) => {
    const payload = concat(latin1("ICC_PROFILE\0"), new Uint8Array([seq, count]), data);
    return concat(new Uint8Array([0xff, 0xe2, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]), payload);
  });
  return concat(jpeg.subarray(0, 2), ...segments, jpeg.subarray(2));
}

function s15f16(v: number): Uint8Array {
  return u32be(Math.round(v * 65536) >>> 0);
}
const xyzTag = (x: number, y: number, z: number): Uint8Array => concat(latin1("XYZ \0\0\0\0"), s15f16(x), s15f16(y), s15f16(z));
const curvGamma = (gamma: number): Uint8Array => concat(latin1("curv\0\0\0\0"), u32be(1), new Uint8Array([Math.floor(gamma), Math.round((gamma % 1) * 256), 0, 0]));
const curvIdentity = (): Uint8Array => concat(latin1("curv\0\0\0\0"), u32be(0));
function curvTable(values: readonly number[]): Uint8Array {
  const table = new Uint8Array(values.length * 2);
  values.forEach((v, i) => {
    table[2 * i] = v >> 8;
    table[2 * i + 1] = v & 0xff;
  });
  return concat(latin1("curv\0\0\0\0"), u32be(values.length), table);
}
const para = (fn: number, params: readonly number[]): Uint8Array => concat(latin1("para\0\0\0\0"), new Uint8Array([fn >> 8, fn & 0xff, 0, 0]), ...params.map(s15f16));

/** An ICC profile with the given header fields and tags (each tag's data 4-byte aligned). */
function buildProfile(tags: ReadonlyArray<readonly [string, Uint8Array]>, header: { space?: string; pcs?: string; version?: number } = {}): Uint8Array {
  const tableEnd = 132 + tags.length * 12;
  let offset = tableEnd;
  const entries: Uint8Array[] = [];
  const data: Uint8Array[] = [];
  for (const [signature, bytes] of tags) {
    entries.push(concat(latin1(signature), u32be(offset), u32be(bytes.length)));
    const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
    padded.set(bytes);
    data.push(padded);
    offset += padded.length;
  }
  const head = new Uint8Array(128);
  head.set(u32be(offset), 0);
  head[8] = header.version ?? 4;
  head.set(latin1("mntr"), 12);
  head.set(latin1(header.space ?? "RGB "), 16);
  head.set(latin1(header.pcs ?? "XYZ "), 20);
  head.set(latin1("acsp"), 36);
  head.set(concat(s15f16(0.9642), s15f16(1), s15f16(0.8249)), 68);
  return concat(head, u32be(tags.length), ...entries, ...data);
}

/** An RGB matrix/TRC profile with rXYZ/gXYZ/bXYZ from a row-major matrix and one TRC for all channels. */
function rgbProfile(matrix: readonly number[], trc: Uint8Array): Uint8Array {
  const column = (c: number): Uint8Array => xyzTag(matrix[c]!, matrix[3 + c]!, matrix[6 + c]!);
  return buildProfile([
    ["rXYZ", column(0)],
    ["gXYZ", column(1)],
    ["bXYZ", column(2)],
    ["rTRC", trc],
    ["gTRC", trc],
    ["bTRC", trc],
  ]);
}

// ---------------------------------------------------------------------------------------------
// Independent reference: published D65 matrices

type Rgb = readonly [number, number, number];

const XYZ_TO_SRGB_D65 = [3.2404542, -1.5371385, -0.4985314, -0.969266, 1.8760108, 0.041556, 0.0556434, -0.2040259, 1.0572252];
const ADOBE_RGB_TO_XYZ_D65 = [0.5767309, 0.185554, 0.1881852, 0.2973769, 0.6273491, 0.0752741, 0.0270343, 0.0706872, 0.9911085];
const P3_TO_XYZ_D65 = [0.4865709, 0.2656677, 0.1982173, 0.2289746, 0.6917385, 0.0792869, 0, 0.0451134, 1.0439444];

function mul(m: readonly number[], v: readonly number[]): number[] {
  return [0, 1, 2].map((r) => m[r * 3]! * v[0]! + m[r * 3 + 1]! * v[1]! + m[r * 3 + 2]! * v[2]!);
}

function expectedSrgb(colour: Rgb, toXyz: readonly number[], toLinear: (v: number) => number): Rgb {
  const [r, g, b] = mul(XYZ_TO_SRGB_D65, mul(toXyz, colour.map((v) => toLinear(v / 255)))).map((v) => Math.round(srgbEncode(Math.min(1, Math.max(0, v))) * 255));
  return [r!, g!, b!];
}

const ADOBE_GAMMA = 563 / 256; // the profile's curv: 2.19921875

/** Test colours, and what lcms2 (sharp, colour-managed) makes of them. */
const PATCHES: ReadonlyArray<{ colour: Rgb; adobeRgbByLcms: Rgb; p3ByLcms: Rgb }> = [
  { colour: [200, 100, 50], adobeRgbByLcms: [227, 100, 42], p3ByLcms: [215, 93, 32] },
  { colour: [50, 180, 90], adobeRgbByLcms: [0, 181, 83], p3ByLcms: [0, 183, 78] },
  { colour: [120, 120, 200], adobeRgbByLcms: [121, 121, 204], p3ByLcms: [120, 120, 206] },
  { colour: [128, 128, 128], adobeRgbByLcms: [129, 129, 129], p3ByLcms: [128, 128, 128] },
  { colour: [0, 255, 0], adobeRgbByLcms: [0, 255, 0], p3ByLcms: [0, 255, 0] },
  { colour: [255, 0, 0], adobeRgbByLcms: [255, 0, 0], p3ByLcms: [255, 0, 0] },
  { colour: [30, 60, 90], adobeRgbByLcms: [0, 57, 91], p3ByLcms: [17, 61, 93] },
  { colour: [240, 200, 160], adobeRgbByLcms: [254, 201, 159], p3ByLcms: [248, 198, 154] },
  { colour: [255, 255, 255], adobeRgbByLcms: [255, 255, 255], p3ByLcms: [255, 255, 255] },
  { colour: [0, 0, 0], adobeRgbByLcms: [0, 0, 0], p3ByLcms: [0, 0, 0] },
  { colour: [10, 10, 10], adobeRgbByLcms: [3, 3, 3], p3ByLcms: [10, 10, 10] },
  { colour: [100, 50, 200], adobeRgbByLcms: [114, 46, 205], p3ByLcms: [108, 47, 208] },
  { colour: [180, 40, 60], adobeRgbByLcms: [210, 35, 58], p3ByLcms: [196, 10, 56] },
  { colour: [60, 160, 200], adobeRgbByLcms: [0, 163, 204], p3ByLcms: [0, 163, 204] },
];

/** One pixel per patch; alpha varies (it must come out untouched). */
function patchImage(): RgbaImage {
  const data = new Uint8ClampedArray(PATCHES.length * 4);
  PATCHES.forEach(({ colour }, i) => data.set([...colour, 255 - i * 10], i * 4));
  return { width: PATCHES.length, height: 1, data, hasAlpha: true };
}

function rgbAt(image: RgbaImage, i: number): Rgb {
  return [image.data[i * 4]!, image.data[i * 4 + 1]!, image.data[i * 4 + 2]!];
}

function maxDiff(a: Rgb, b: Rgb): number {
  return Math.max(Math.abs(a[0] - b[0]), Math.abs(a[1] - b[1]), Math.abs(a[2] - b[2]));
}

async function pipelinePixels(bytes: Uint8Array, format: ImageFormat, query: Parameters<typeof options>[0] = {}, trace?: (step: StepName) => void): Promise<RgbaImage> {
  const result = await runPipeline({ bytes, format, orientation: 1 }, options({ format: "png", ...query }), { ...CTX, ...(trace ? { trace } : {}) });
  return decode(result.bytes, "png");
}

/** The profiles used below, from the fixtures. */
async function profiles(): Promise<{ adobeRgb: Uint8Array; p3: Uint8Array; srgbV4: Uint8Array; srgbLcmsV2: Uint8Array }> {
  const adobeRgb = await extractIccProfile(await loadCorpus("jpeg-icc-adobergb.jpg"), "jpeg");
  const p3 = await extractIccProfile(await loadFixture("gen-icc.png"), "png");
  const srgbV4 = await extractIccProfile(await loadFixture("gen-orientation-6.png"), "png");
  const srgbLcmsV2 = await extractIccProfile(await loadCorpusHead("jpeg-gps-real-colorfulcups.jpg", 65536), "jpeg");
  if (!adobeRgb || !p3 || !srgbV4 || !srgbLcmsV2) throw new Error("a fixture lost its profile");
  return { adobeRgb, p3, srgbV4, srgbLcmsV2 };
}

function parsed(bytes: Uint8Array): IccProfile {
  const profile = parseIccProfile(bytes);
  if (profile === undefined) throw new Error("profile did not parse");
  return profile;
}

// ---------------------------------------------------------------------------------------------


/** libvips' "Chemical proof" CMYK profile (A2B0 only), taken from a CMYK JPEG sharp writes (test/node/corpus.ts). */
let chemicalProof: Uint8Array;
beforeAll(async () => {
  chemicalProof = await loadCorpus("cmyk-chemical-proof-a2b0.icc");
});

describe("extracting the embedded ICC profile", () => {
  it("JPEG: the APP2 profile of the Adobe RGB photo (also from its 4 KiB head)", async () => {
    const icc = await extractIccProfile(await loadCorpus("jpeg-icc-adobergb.jpg"), "jpeg");
    expect(icc?.length).toBe(580);
    expect(parseIccProfile(icc!)?.description).toBe("Compatible with Adobe RGB (1998)");
    expect(await extractIccProfile(await loadCorpusHead("jpeg-icc-adobergb.jpg", 4096), "jpeg")).toEqual(icc);
  });

  it("JPEG: a profile split over several APP2 segments is joined in sequence order", async () => {
    const { adobeRgb } = await profiles();
    const jpeg = await loadFixture("gen-1x1.jpg");
    expect(await extractIccProfile(jpeg, "jpeg")).toBeUndefined();
    const [a, b, c] = [adobeRgb.subarray(0, 200), adobeRgb.subarray(200, 201), adobeRgb.subarray(201)];
    const split = withApp2(jpeg, [
      [2, 3, b],
      [3, 3, c],
      [1, 3, a],
    ]);
    expect(await extractIccProfile(split, "jpeg")).toEqual(adobeRgb);
    // The file still decodes, and the pipeline reads the joined profile.
    expect((await decode(split, "jpeg")).width).toBe(1);
    expect(await sourceColourTransform(split, "jpeg")).toBeDefined();
  });

  it("JPEG: a missing, repeated or inconsistent part gives no profile", async () => {
    const jpeg = await loadFixture("gen-1x1.jpg");
    const part = new Uint8Array(40).fill(7);
    const broken: Array<ReadonlyArray<readonly [number, number, Uint8Array]>> = [
      [[1, 2, part]], // part 2 of 2 missing
      [
        [1, 2, part],
        [1, 2, part],
      ], // repeated
      [
        [1, 2, part],
        [2, 3, part],
      ], // counts disagree
      [[0, 1, part]], // sequence numbers start at 1
      [[2, 1, part]], // beyond the count
    ];
    for (const parts of broken) expect(await extractIccProfile(withApp2(jpeg, parts), "jpeg")).toBeUndefined();
  });

  it("PNG: iCCP is inflated (the Display P3 fixture)", async () => {
    const icc = await extractIccProfile(await loadFixture("gen-icc.png"), "png");
    expect(icc?.length).toBe(480);
    expect(parseIccProfile(icc!)).toMatchObject({ colourSpace: "RGB ", pcs: "XYZ ", version: 4, description: "sP3C" });
  });

  it("PNG: an iCCP that inflates past 1 MiB, is corrupt, or comes after IDAT gives no profile", async () => {
    const png = await loadFixture("gen-1x1.png");
    const bomb = await withIccp(png, new Uint8Array(MAX_ICC_BYTES + 1));
    expect(await extractIccProfile(bomb, "png")).toBeUndefined();
    expect(await inflate(await deflate(new Uint8Array(MAX_ICC_BYTES)), MAX_ICC_BYTES)).toHaveLength(MAX_ICC_BYTES);
    // A 32 MiB bomb (32 KiB compressed) stops after about 1 MiB: the input is fed 1 KiB at a time.
    const bigBomb = await deflate(new Uint8Array(32 * MAX_ICC_BYTES));
    expect(await inflate(bigBomb, MAX_ICC_BYTES)).toBeUndefined();
    // Incompressible data, fed in many slices, comes back intact.
    const noise = Uint8Array.from({ length: 200_000 }, (_, i) => (Math.imul(i + 1, 2654435761) >>> 23) & 0xff);
    expect(await inflate(await deflate(noise), MAX_ICC_BYTES)).toEqual(noise);
    const corrupt = concat(png.subarray(0, 33), pngChunk("iCCP", concat(latin1("icc\0\0"), new Uint8Array([0x78, 0x9c, 1, 2, 3, 4, 5]))), png.subarray(33));
    expect(await extractIccProfile(corrupt, "png")).toBeUndefined();
    const { p3 } = await profiles();
    const tagged = await withIccp(png, p3);
    expect(await extractIccProfile(tagged, "png")).toEqual(p3);
    const iend = png.length - 12;
    const late = concat(png.subarray(0, iend), pngChunk("iCCP", concat(latin1("icc\0\0"), await deflate(p3))), png.subarray(iend));
    expect(await extractIccProfile(late, "png")).toBeUndefined();
  });

  it("WebP: the ICCP chunk of a VP8X file, only with the ICC flag set", async () => {
    const webp = await loadFixture("gen-icc.webp");
    const { p3 } = await profiles();
    expect(await extractIccProfile(webp, "webp")).toEqual(p3);
    const unflagged = webp.slice();
    unflagged[20] = unflagged[20]! & ~0x20;
    expect(await extractIccProfile(unflagged, "webp")).toBeUndefined();
    expect(await extractIccProfile(await loadFixture("gen-1x1.webp"), "webp")).toBeUndefined();
    expect(await extractIccProfile(await loadFixture("gen-alpha.webp"), "webp")).toBeUndefined();
  });

  it("AVIF: colr rICC/prof of the primary item; nclx read as code points", async () => {
    const { p3 } = await profiles();
    expect(await extractIccProfile(await loadFixture("gen-icc.avif"), "avif")).toEqual(p3);
    const kite = await loadCorpus("avif-photo-kite.avif");
    expect(await extractIccProfile(kite, "avif")).toBeUndefined();
    expect(avifColour(kite)).toEqual({ nclx: { primaries: 1, transfer: 13, matrix: 6, fullRange: true } });
    expect(await sourceColourTransform(kite, "avif")).toBeUndefined(); // BT.709 primaries + sRGB transfer = sRGB
    expect(await extractIccProfile(await loadFixture("gen-alpha.avif"), "avif")).toBeUndefined();
  });

  it("files without a profile (and GIF) have none, and need no transform", async () => {
    const files: Array<[string, ImageFormat]> = [
      ["gen-1x1.jpg", "jpeg"],
      ["gen-1x1.png", "png"],
      ["gen-1x1.webp", "webp"],
      ["gen-1x1.avif", "avif"],
      ["gen-1x1.gif", "gif"],
      ["photo-small-aero1.jpg", "jpeg"],
      ["jpeg-cmyk.jpg", "jpeg"],
    ];
    for (const [name, format] of files) {
      const bytes = await loadImage(name);
      expect(await extractIccProfile(bytes, format), name).toBeUndefined();
      expect(await sourceColourTransform(bytes, format), name).toBeUndefined();
    }
  });

  it("never throws on truncated or corrupted files", async () => {
    const files: Array<[string, ImageFormat]> = [
      ["jpeg-icc-adobergb.jpg", "jpeg"],
      ["gen-icc.png", "png"],
      ["gen-icc.webp", "webp"],
      ["gen-icc.avif", "avif"],
    ];
    for (const [name, format] of files) {
      const original = (await loadImage(name)).slice(0, 4096);
      const length = Math.min(original.length, 1200);
      // Every truncation within the headers.
      for (let n = 0; n <= length; n += format === "jpeg" ? 7 : 1) {
        const result = await sourceColourTransform(original.subarray(0, n), format);
        expect(result === undefined || typeof result === "object").toBe(true);
      }
      // Random byte changes.
      await fc.assert(
        fc.asyncProperty(fc.array(fc.tuple(fc.nat({ max: length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 12 }), async (edits) => {
          const bytes = original.slice();
          for (const [at, value] of edits) bytes[at] = value;
          const icc = await extractIccProfile(bytes, format);
          expect(icc === undefined || icc instanceof Uint8Array).toBe(true);
          if (icc !== undefined) parseIccProfile(icc);
          await sourceColourTransform(bytes, format);
        }),
        { numRuns: 150 },
      );
    }
  });
});

describe("parsing ICC profiles", () => {
  it("Adobe RGB (1998): v2 matrix/TRC, matrix close to the published primaries (D50), gamma 563/256", async () => {
    const profile = parsed((await profiles()).adobeRgb);
    expect(profile).toMatchObject({ version: 2, deviceClass: "mntr", colourSpace: "RGB ", pcs: "XYZ ", hasLut: false });
    // Adobe RGB (1998) -> XYZ D50 (Bradford), as published (Lindbloom).
    const published = [0.6097559, 0.2052401, 0.149224, 0.3111242, 0.625656, 0.0632197, 0.0194811, 0.0608902, 0.7448387];
    profile.matrix!.forEach((v, i) => expect(v).toBeCloseTo(published[i]!, 3));
    for (const curve of profile.curves!) expect(curve).toEqual({ type: "gamma", gamma: ADOBE_GAMMA });
    // wtpt is D65 (reported only: the matrix is already adapted to D50).
    expect(profile.whitePoint![0]).toBeCloseTo(0.9505, 3);
    expect(profile.whitePoint![2]).toBeCloseTo(1.089, 3);
  });

  it("Display P3: v4 matrix/TRC, matrix close to the published primaries (D50), sRGB parametric curve", async () => {
    const profile = parsed((await profiles()).p3);
    const published = [0.5151, 0.292, 0.1571, 0.2412, 0.6922, 0.0666, -0.0011, 0.0419, 0.7841];
    profile.matrix!.forEach((v, i) => expect(Math.abs(v - published[i]!)).toBeLessThan(0.0015));
    rgbToXyzD50(P3_PRIMARIES).forEach((v, i) => expect(v).toBeCloseTo(published[i]!, 4));
    for (const curve of profile.curves!) {
      expect(curve).toMatchObject({ type: "parametric", fn: 3 });
      for (let v = 0; v <= 255; v += 15) expect(evaluateCurve(curve, v / 255)).toBeCloseTo(srgbDecode(v / 255), 4);
    }
  });

  it("the sRGB -> XYZ D50 matrix is the standard one", () => {
    const published = [0.4360747, 0.3850649, 0.1430804, 0.2225045, 0.7168786, 0.0606169, 0.0139322, 0.0971045, 0.7141733];
    SRGB_TO_XYZ_D50.forEach((v, i) => expect(Math.abs(v - published[i]!)).toBeLessThan(3e-4));
  });

  it("curve types: identity, gamma, sampled table, parametric functions 0-4", () => {
    const curveOf = (tag: Uint8Array): ToneCurve | undefined => parsed(rgbProfile([...SRGB_TO_XYZ_D50], tag)).curves?.[0];
    const at = (tag: Uint8Array, x: number): number => evaluateCurve(curveOf(tag)!, x);
    expect(at(curvIdentity(), 0.3)).toBeCloseTo(0.3, 6);
    expect(at(curvGamma(1.75), 0.5)).toBeCloseTo(Math.pow(0.5, 1.75), 6); // u8Fixed8
    expect(at(curvTable([0, 65535]), 0.25)).toBeCloseTo(0.25, 4);
    expect(at(curvTable([0, 0, 65535]), 0.75)).toBeCloseTo(0.5, 4);
    expect(at(curvTable([65535, 0]), 0.25)).toBeCloseTo(0.75, 4); // decreasing tables are allowed
    expect(at(para(0, [2.2]), 0.5)).toBeCloseTo(Math.pow(0.5, 2.2), 4);
    expect(at(para(1, [2, 2, -0.5]), 0.2)).toBe(0); // below -b/a
    expect(at(para(1, [2, 2, -0.5]), 0.75)).toBeCloseTo(1, 4);
    expect(at(para(2, [1, 1, -0.5, 0.1]), 0.2)).toBeCloseTo(0.1, 4);
    expect(at(para(2, [1, 1, -0.5, 0.1]), 0.8)).toBeCloseTo(0.4, 4);
    const srgb = [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045];
    for (const x of [0, 0.02, 0.04, 0.3, 0.7, 1]) expect(at(para(3, srgb), x)).toBeCloseTo(srgbDecode(x), 4);
    expect(at(para(4, [1, 0.5, 0, 0.5, 0.5, 0.25, 0.1]), 0.2)).toBeCloseTo(0.2, 4); // cX + f
    expect(at(para(4, [1, 0.5, 0, 0.5, 0.5, 0.25, 0.1]), 0.8)).toBeCloseTo(0.65, 4); // (aX+b)^g + e
    expect(curveOf(para(5, [1]))).toBeUndefined(); // no function 5: no curves at all
  });

  it("malformed profiles: undefined or partial, never an exception", async () => {
    const { adobeRgb, p3 } = await profiles();
    const noMagic = adobeRgb.slice();
    noMagic[36] = 0;
    expect(parseIccProfile(noMagic)).toBeUndefined();
    const v5 = p3.slice();
    v5[8] = 5;
    expect(parseIccProfile(v5)).toBeUndefined();
    const manyTags = p3.slice();
    manyTags.set(u32be(0xffffffff), 128);
    expect(parseIccProfile(manyTags)).toBeUndefined();
    const outside = p3.slice();
    outside.set(u32be(0x7fffffff), 132 + 4); // first tag's offset far outside: that tag is ignored
    expect(parseIccProfile(outside)).toBeDefined();
    for (let n = 0; n <= adobeRgb.length; n++) parseIccProfile(adobeRgb.subarray(0, n));
    for (const profile of [adobeRgb, p3]) {
      fc.assert(
        fc.property(fc.array(fc.tuple(fc.nat({ max: profile.length - 1 }), fc.nat({ max: 255 })), { minLength: 1, maxLength: 16 }), (edits) => {
          const bytes = profile.slice();
          for (const [at, value] of edits) bytes[at] = value;
          const result = parseIccProfile(bytes);
          if (result !== undefined) srgbTransform(result);
        }),
        { numRuns: 500 },
      );
    }
  });
});

describe("transforms to sRGB", () => {
  it("sRGB profiles (v4 by sharp, v2 by lcms with 1024-entry tables, synthetic) need none", async () => {
    const { srgbV4, srgbLcmsV2 } = await profiles();
    expect(parsed(srgbLcmsV2).curves![0]).toMatchObject({ type: "table" });
    expect(srgbTransform(parsed(srgbV4))).toBeUndefined();
    expect(srgbTransform(parsed(srgbLcmsV2))).toBeUndefined();
    expect(srgbTransform(parsed(rgbProfile([...SRGB_TO_XYZ_D50], para(3, [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045]))))).toBeUndefined();
    // ...but gamma 2.2 with sRGB primaries is not sRGB (up to 4 levels apart in the shadows).
    expect(srgbTransform(parsed(rgbProfile([...SRGB_TO_XYZ_D50], curvGamma(2.2))))).toBeDefined();
  });

  it("left as decoded: CMYK, Lab PCS, LUT-only (A2B0) and matrix-less profiles", async () => {
    const trc = curvGamma(2.2);
    const unsupported = [
      buildProfile([["A2B0", new Uint8Array(32)]], { space: "CMYK", pcs: "Lab ", version: 2 }),
      buildProfile([["kTRC", trc]], { space: "CMYK" }),
      buildProfile([["A2B0", new Uint8Array(32)]], { space: "RGB ", pcs: "Lab " }),
      buildProfile([["A2B0", new Uint8Array(32)]]), // RGB, XYZ, but LUT only
      buildProfile([
        ["rTRC", trc],
        ["gTRC", trc],
        ["bTRC", trc],
      ]), // no matrix
      rgbProfile([1, 0, 0, 0, 0, 0, 0, 0, 1], trc), // singular matrix
      rgbProfile([...SRGB_TO_XYZ_D50], curvGamma(0)), // gamma 0
    ];
    for (const bytes of unsupported) {
      const profile = parseIccProfile(bytes);
      expect(profile).toBeDefined();
      expect(srgbTransform(profile!)).toBeUndefined();
    }
    expect(parseIccProfile(buildProfile([["A2B0", new Uint8Array(32)]], { space: "CMYK", pcs: "Lab " }))?.hasLut).toBe(true);
  });

  it("GRAY: grayTRC to the sRGB curve (linear 128 -> sRGB 188); an sRGB-like grayTRC needs none", () => {
    const linear = srgbTransform(parsed(buildProfile([["kTRC", curvIdentity()]], { space: "GRAY" })));
    expect(linear?.kind).toBe("gray");
    const data = new Uint8ClampedArray([128, 128, 128, 77, 0, 0, 0, 255, 255, 255, 255, 255]);
    applyColourTransform(data, linear!);
    expect([...data]).toEqual([188, 188, 188, 77, 0, 0, 0, 255, 255, 255, 255, 255]);
    const srgbLike = parsed(buildProfile([["kTRC", para(3, [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045])]], { space: "GRAY" }));
    expect(srgbTransform(srgbLike)).toBeUndefined();
  });

  it("AVIF nclx: P3 (12) and BT.2020 (9) primaries with the sRGB transfer; nothing else", async () => {
    const p3Nclx = nclxTransform({ primaries: 12, transfer: 13, matrix: 6, fullRange: true });
    const p3Icc = srgbTransform(parsed((await profiles()).p3));
    expect(p3Nclx?.kind).toBe("matrix");
    // Same conversion as the ICC profile, within the profile's s15Fixed16 rounding.
    const a = patchImage().data;
    const b = a.slice();
    applyColourTransform(a, p3Nclx!);
    applyColourTransform(b, p3Icc!);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThanOrEqual(1);
    expect(nclxTransform({ primaries: 9, transfer: 13, matrix: 9, fullRange: true })?.kind).toBe("matrix");
    expect(nclxTransform({ primaries: 1, transfer: 13, matrix: 6, fullRange: true })).toBeUndefined();
    expect(nclxTransform({ primaries: 12, transfer: 1, matrix: 6, fullRange: true })).toBeUndefined();
    expect(nclxTransform({ primaries: 2, transfer: 2, matrix: 2, fullRange: false })).toBeUndefined();

    // The kite photo relabelled as Display P3: the pipeline converts it like the P3 profile.
    const kite = await loadCorpus("avif-photo-kite.avif");
    const at = findAscii(kite, "colrnclx") + 8;
    expect(at).toBeGreaterThan(8);
    const relabelled = kite.slice();
    relabelled[at + 1] = 12;
    const transform = await sourceColourTransform(relabelled, "avif");
    expect(transform).toEqual(p3Nclx);
  });
});

function findAscii(bytes: Uint8Array, text: string): number {
  const needle = latin1(text);
  outer: for (let i = 0; i + needle.length <= bytes.length; i++) {
    for (let j = 0; j < needle.length; j++) if (bytes[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

describe("the colour step in the pipeline", () => {
  it("runs right after decode", () => {
    expect(STEPS.slice(0, 3).map((step) => step.name)).toEqual(["decode", "colour", "orient"]);
  });

  it("Adobe RGB and Display P3 PNGs: sRGB matches the published matrices and lcms2 within 1, alpha untouched", async () => {
    const { adobeRgb, p3 } = await profiles();
    const png = await encode(patchImage(), "png", 100);
    const cases: Array<[string, Uint8Array, readonly number[], (v: number) => number, (p: (typeof PATCHES)[number]) => Rgb]> = [
      ["Adobe RGB", adobeRgb, ADOBE_RGB_TO_XYZ_D65, (v) => Math.pow(v, ADOBE_GAMMA), (p) => p.adobeRgbByLcms],
      ["Display P3", p3, P3_TO_XYZ_D65, srgbDecode, (p) => p.p3ByLcms],
    ];
    for (const [name, profile, toXyz, toLinear, byLcms] of cases) {
      const steps: StepName[] = [];
      const out = await pipelinePixels(await withIccp(png, profile), "png", {}, (step) => steps.push(step));
      expect(steps.slice(0, 2)).toEqual(["decode", "colour"]);
      let worst = 0;
      PATCHES.forEach((patch, i) => {
        const got = rgbAt(out, i);
        const standard = expectedSrgb(patch.colour, toXyz, toLinear);
        worst = Math.max(worst, maxDiff(got, standard));
        expect(maxDiff(got, standard), `${name} ${patch.colour} -> ${got}, published matrices give ${standard}`).toBeLessThanOrEqual(2);
        expect(maxDiff(got, byLcms(patch)), `${name} ${patch.colour} -> ${got}, lcms2 gives ${byLcms(patch)}`).toBeLessThanOrEqual(2);
        expect(out.data[i * 4 + 3]).toBe(255 - i * 10);
      });
      console.log(`[colour] ${name} patches: max error ${worst} vs the published matrices`);
      // A mid-saturated orange really moves: Adobe RGB (200,100,50) is sRGB (227,100,42).
      expect(maxDiff(rgbAt(out, 0), [200, 100, 50])).toBeGreaterThan(10);
    }
  });

  it("sRGB-tagged, CMYK-tagged and untagged images come out exactly as decoded", async () => {
    const { srgbV4, srgbLcmsV2 } = await profiles();
    const png = await encode(patchImage(), "png", 100);
    const untagged = await pipelinePixels(png, "png");
    expect([...untagged.data]).toEqual([...patchImage().data]);
    const cmyk = buildProfile([["A2B0", new Uint8Array(32)]], { space: "CMYK", pcs: "Lab " });
    for (const profile of [srgbV4, srgbLcmsV2, cmyk]) {
      const out = await pipelinePixels(await withIccp(png, profile), "png");
      expect([...out.data]).toEqual([...untagged.data]);
    }
  });

  it("the Adobe RGB photo at 400 px matches sharp's colour-managed resize, not the profile-ignoring one", async () => {
    const out = await pipelinePixels(await loadCorpus("jpeg-icc-adobergb.jpg"), "jpeg", { width: 400 });
    expect([out.width, out.height]).toEqual([400, 250]);
    // Region means of sharp(file).resize(400) with the profile applied (lcms2) and ignored.
    const regions: Array<[x: number, y: number, w: number, h: number, managed: Rgb, ignored: Rgb]> = [
      [272, 114, 8, 6, [198, 115, 55], [181, 115, 66]], // ladybird
      [40, 70, 10, 10, [212, 202, 119], [208, 201, 129]], // flower centre
      [140, 160, 10, 10, [127, 140, 54], [130, 139, 64]], // leaf
      [200, 50, 10, 10, [108, 138, 37], [117, 137, 51]], // stem
      [78, 40, 8, 8, [208, 172, 220], [198, 171, 218]], // pink bud
      [250, 180, 10, 10, [199, 228, 253], [207, 227, 252]], // blue flower
      [340, 30, 10, 10, [105, 132, 42], [113, 131, 55]], // background
    ];
    const report: string[] = [];
    for (const [x, y, w, h, managed, ignored] of regions) {
      const sum = [0, 0, 0];
      for (let j = y; j < y + h; j++) for (let i = x; i < x + w; i++) for (let c = 0; c < 3; c++) sum[c]! += out.data[(j * out.width + i) * 4 + c]!;
      const mean: Rgb = [Math.round(sum[0]! / (w * h)), Math.round(sum[1]! / (w * h)), Math.round(sum[2]! / (w * h))];
      report.push(`${mean} (managed ${managed}, ignored ${ignored})`);
      expect(maxDiff(mean, managed), `region ${x},${y}: ${mean} vs ${managed}`).toBeLessThanOrEqual(4);
      expect(maxDiff(mean, managed)).toBeLessThan(maxDiff(mean, ignored));
    }
    console.log(`[colour] jpeg-icc-adobergb.jpg w=400 region means: ${report.join("; ")}`);
  });

  it("full size: the pipeline's pixels are the same file's without the profile, converted", async () => {
    const bytes = await loadCorpus("jpeg-icc-adobergb.jpg");
    const transform = await sourceColourTransform(bytes, "jpeg");
    expect(transform?.kind).toBe("matrix");
    // The same file with its APP2 segment turned into an APP3 one (ignored by every reader).
    const at = findAscii(bytes, "ICC_PROFILE") - 4;
    expect([bytes[at], bytes[at + 1]]).toEqual([0xff, 0xe2]);
    const stripped = bytes.slice();
    stripped[at + 1] = 0xe3;
    expect(await sourceColourTransform(stripped, "jpeg")).toBeUndefined();
    const expected = await pipelinePixels(stripped, "jpeg");
    applyColourTransform(expected.data, transform!);
    const out = await pipelinePixels(bytes, "jpeg");
    expect([out.width, out.height]).toEqual([1600, 1000]);
    let differing = 0;
    for (let i = 0; i < out.data.length; i++) if (out.data[i] !== expected.data[i]) differing++;
    expect(differing).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------
// CMYK through a CMYK profile (A2B0)

/** Ink (0 = none) patches -> sRGB through libvips' default CMYK profile ("Chemical proof"), by
 * lcms2 2.14 (CMYK_8 -> Lab float -> sRGB, perceptual intent: the route sharp/libvips take). */
const CMYK_PATCHES: ReadonlyArray<readonly [ink: readonly [number, number, number, number], srgb: Rgb]> = [
  [[0, 0, 0, 0], [255, 255, 255]], // paper white
  [[0, 0, 0, 255], [18, 4, 23]], // 100% K
  [[255, 0, 0, 0], [0, 153, 228]], // 100% C
  [[0, 255, 0, 0], [234, 0, 130]], // 100% M
  [[0, 0, 255, 0], [255, 240, 0]], // 100% Y
  [[255, 255, 255, 255], [0, 0, 24]], // all inks
  [[128, 64, 32, 16], [116, 146, 175]],
  [[0, 255, 255, 0], [232, 0, 21]], // M + Y: red
  [[0, 254, 254, 96], [157, 4, 23]], // the flower of jpeg-cmyk.jpg
  [[2, 52, 197, 83], [175, 140, 57]],
];

function cmykPixels(inks: ReadonlyArray<readonly number[]>): Uint8ClampedArray {
  return new Uint8ClampedArray(inks.flat());
}

describe("CMYK through a CMYK ICC profile", () => {
  it("the default CMYK profile parses: A2B0 lut16 (mft2), 9-point grid, Lab PCS", () => {
    const lut = parseCmykLut(chemicalProof);
    expect(lut).toBeDefined();
    expect([lut!.type, lut!.pcs, lut!.grid]).toEqual(["mft2", "Lab ", [9, 9, 9, 9]]);
    // Relative colorimetric Lab of 100% K and of paper (lcms2: 14.68 3.98 -4.25; 100 0 0): the
    // legacy 16-bit Lab encoding of lut16 (L* 100 = 0xFF00) decoded right.
    const toLab = (xyz: readonly number[]): number[] => {
      const f = (t: number): number => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
      const fx = f(xyz[0]! / 0.9642), fy = f(xyz[1]!), fz = f(xyz[2]! / 0.8249);
      return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
    };
    const k = toLab(evaluateCmykLut(lut!, [0, 0, 0, 1]));
    const paper = toLab(evaluateCmykLut(lut!, [0, 0, 0, 0]));
    [14.68, 3.98, -4.25].forEach((v, i) => expect(Math.abs(k[i]! - v)).toBeLessThan(0.05));
    [100, 0, 0].forEach((v, i) => expect(Math.abs(paper[i]! - v)).toBeLessThan(0.05));
  });

  it("CMYK patches convert like lcms2 (within 2 levels): paper white, 100% K, C, M, Y, mixes", () => {
    const transform = cmykTransformForProfile(chemicalProof);
    expect(transform).toBeDefined();
    const data = cmykPixels(CMYK_PATCHES.map(([ink]) => ink));
    applyCmykTransform(data, transform!);
    CMYK_PATCHES.forEach(([ink, expected], i) => {
      expect(maxDiff([data[4 * i]!, data[4 * i + 1]!, data[4 * i + 2]!], expected), `ink ${ink.join(",")}`).toBeLessThanOrEqual(2);
      expect(data[4 * i + 3]).toBe(255);
    });
  });

  it("lut8 (mft1) with the 8-bit Lab encoding: a 2-point K ramp from white to black", () => {
    // mft1: 4 in, 3 out, grid 2, identity matrix, identity 256-entry curves; CLUT: L* 100 where
    // K = 0, L* 0 where K = 1 (a* = b* = 0 is 128), C, M, Y ignored.
    const ramp = Uint8Array.from({ length: 256 }, (_, i) => i);
    const clut: number[] = [];
    for (let node = 0; node < 16; node++) clut.push(node & 1 ? 0 : 255, 128, 128);
    const matrix = concat(s15f16(1), s15f16(0), s15f16(0), s15f16(0), s15f16(1), s15f16(0), s15f16(0), s15f16(0), s15f16(1));
    const mft1 = concat(latin1("mft1"), new Uint8Array(4), Uint8Array.of(4, 3, 2, 0), matrix, ...Array(4).fill(ramp), Uint8Array.from(clut), ramp, ramp, ramp);
    const profile = buildProfile([["A2B0", mft1]], { space: "CMYK", pcs: "Lab ", version: 2 });
    const transform = cmykTransformForProfile(profile);
    expect(transform).toBeDefined();
    const data = cmykPixels([[0, 0, 0, 0], [255, 255, 255, 255], [0, 0, 0, 128], [200, 100, 50, 128]]);
    applyCmykTransform(data, transform!);
    // K 128: L* 100 x 127/255 = 49.8 (Y 0.1826), sRGB 118.4.
    const expected = [255, 255, 255, 255, 0, 0, 0, 255, 118.4, 118.4, 118.4, 255, 118.4, 118.4, 118.4, 255];
    expected.forEach((v, i) => expect(Math.abs(data[i]! - v), `byte ${i}: ${data[i]}`).toBeLessThanOrEqual(1));
  });

  it("malformed or non-CMYK profiles give no transform and never throw", () => {
    const good = chemicalProof;
    expect(cmykTransformForProfile(good.subarray(0, 5000))).toBeUndefined(); // A2B0 cut off
    expect(cmykTransformForProfile(new Uint8Array(200))).toBeUndefined();
    expect(cmykTransformForProfile(buildProfile([["A2B0", new Uint8Array(32)]], { space: "CMYK", pcs: "Lab " }))).toBeUndefined();
    expect(parseCmykLut(rgbProfile([...SRGB_TO_XYZ_D50], curvGamma(2.2)))).toBeUndefined();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: good.length }), (at, value, cut) => {
        const bytes = good.slice(0, cut);
        if (at < bytes.length) bytes[at] = value;
        expect(() => parseCmykLut(bytes)).not.toThrow();
      }),
      { numRuns: 60 },
    );
  });

  it("the native decoder's raw CMYK output holds the ink amounts (Adobe inversion undone)", async () => {
    const bytes = await loadCorpus("jpeg-cmyk.jpg");
    const image = decodeNativeJpeg(bytes, 0, { rawCmyk: true });
    try {
      const at = (x: number, y: number): number[] => [...image.data.subarray((y * image.width + x) * 4, (y * image.width + x) * 4 + 4)];
      // sharp's CMYK samples of the file at these pixels.
      expect(at(800, 500)).toEqual([0, 254, 254, 96]);
      expect(at(10, 10)).toEqual([2, 52, 197, 83]);
    } finally {
      image.release();
    }
  });

  it("a CMYK JPEG with an embedded CMYK profile is converted through it; an untagged one keeps the standard formula", async () => {
    const untagged = await loadCorpus("jpeg-cmyk.jpg");
    expect(await jpegCmykTransform(untagged)).toBeUndefined();
    const bytes = withIccSegment(untagged, chemicalProof);
    expect(await jpegCmykTransform(bytes)).toBe(cmykTransformForProfile(chemicalProof));
    for (const shrink of [undefined, { width: 400 }] as const) {
      const out = shrink === undefined ? await decode(bytes, "jpeg") : await pipelinePixels(bytes, "jpeg", shrink);
      const f = out.width / 1600;
      const px = (x: number, y: number): Rgb => {
        const i = (Math.round(y * f) * out.width + Math.round(x * f)) * 4;
        return [out.data[i]!, out.data[i + 1]!, out.data[i + 2]!];
      };
      // lcms2 values of the ink there (perceptual intent with black point compensation).
      expect(maxDiff(px(800, 500), [157, 4, 23])).toBeLessThanOrEqual(shrink === undefined ? 2 : 12);
      expect(maxDiff(px(10, 10), [175, 140, 57])).toBeLessThanOrEqual(shrink === undefined ? 2 : 12);
    }
  });
});

/** The JPEG with an APP2 ICC_PROFILE segment (one chunk) right after SOI. */
function withIccSegment(jpeg: Uint8Array, icc: Uint8Array): Uint8Array {
  const header = new TextEncoder().encode("ICC_PROFILE\0");
  const length = 2 + header.length + 2 + icc.length;
  const segment = new Uint8Array(2 + length);
  segment.set([0xff, 0xe2, length >> 8, length & 0xff]);
  segment.set(header, 4);
  segment.set([1, 1], 4 + header.length);
  segment.set(icc, 6 + header.length);
  const out = new Uint8Array(jpeg.length + segment.length);
  out.set(jpeg.subarray(0, 2));
  out.set(segment, 2);
  out.set(jpeg.subarray(2), 2 + segment.length);
  return out;
}
