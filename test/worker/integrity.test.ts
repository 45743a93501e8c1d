import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import type { ImageFormat } from "../../src/images/format";
import { integrityCheck } from "../../src/images/integrity";
import { loadCorpus, loadFixture, loadImage } from "./fixtures";
import { mulberry32 } from "../mulberry32";

// ---------------------------------------------------------------------------------------------
// Helpers

/** What feeding chunks to a fresh walker gives: "whole", or the ProblemError finish() threw. */
type Outcome = { readonly whole: true } | { readonly whole: false; readonly problem: ProblemError };

/**
 * Feeds the chunks, then calls finish(). push() must never throw (a walker records failures
 * and reports them from finish()); finish() may throw only a ProblemError. Anything else is
 * rethrown as a test failure naming the call that threw it.
 */
function feed(format: ImageFormat, chunks: Iterable<Uint8Array>): Outcome {
  const check = integrityCheck(format);
  let index = 0;
  for (const chunk of chunks) {
    try {
      check.push(chunk);
    } catch (error) {
      throw new Error(`push() of chunk ${index} (${chunk.byteLength} bytes) threw: ${String(error)}`, { cause: error });
    }
    index++;
  }
  try {
    check.finish();
    return { whole: true };
  } catch (error) {
    if (error instanceof ProblemError) return { whole: false, problem: error };
    throw new Error(`finish() threw a non-ProblemError: ${String(error)}`, { cause: error });
  }
}

function expectWhole(format: ImageFormat, chunks: Iterable<Uint8Array>, what: string): void {
  const outcome = feed(format, chunks);
  if (!outcome.whole) expect.fail(`${what}: rejected: ${outcome.problem.detail}`);
}

function expectTruncated(format: ImageFormat, chunks: Iterable<Uint8Array>, what: string): ProblemError {
  const outcome = feed(format, chunks);
  if (outcome.whole) return expect.fail(`${what}: accepted as a whole file`);
  expect(outcome.problem.status, what).toBe(422);
  expect(outcome.problem.code, what).toBe("invalid-image");
  return outcome.problem;
}

/** The bytes split at the given offsets (sorted, duplicates give empty chunks). */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const sorted = [...cuts].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let start = 0;
  for (const cut of sorted) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  chunks.push(bytes.subarray(start));
  return chunks;
}

function* byteByByte(bytes: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < bytes.length; i++) yield bytes.subarray(i, i + 1);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const ascii = (text: string): Uint8Array => new TextEncoder().encode(text);
const u32be = (b: Uint8Array, i: number): number => (((b[i] ?? 0) << 24) >>> 0) + ((b[i + 1] ?? 0) << 16) + ((b[i + 2] ?? 0) << 8) + (b[i + 3] ?? 0);

function indexOfBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = from; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
const contains = (haystack: Uint8Array, needle: Uint8Array): boolean => indexOfBytes(haystack, needle) >= 0;

/** A deterministic PRNG, so the sampled truncation points are stable. */
const prng = mulberry32;

/**
 * Offsets where a structure starts (a cut there ends the file exactly between two parts, the
 * likeliest place for a walker to mistake a truncated file for a whole one): PNG chunks, ISO-BMFF
 * top-level boxes, RIFF chunks, and every JPEG marker (a naive scan for FF xx, xx not 00/FF/RSTn).
 */
function structureBoundaries(format: ImageFormat, bytes: Uint8Array): number[] {
  const out: number[] = [];
  switch (format) {
    case "png":
      for (let at = 8; at + 8 <= bytes.length; at += 12 + u32be(bytes, at)) out.push(at, at + 8);
      break;
    case "avif":
      for (let at = 0, size = 0; at + 8 <= bytes.length; at += size) {
        size = u32be(bytes, at);
        out.push(at, at + 8);
        if (size < 8) break;
      }
      break;
    case "webp":
      for (let at = 12; at + 8 <= bytes.length; at += 8 + le32(bytes, at + 4) + (le32(bytes, at + 4) & 1)) out.push(at, at + 8);
      break;
    case "jpeg":
      for (let i = 0; i + 1 < bytes.length; i++) {
        const next = bytes[i + 1] ?? 0;
        if (bytes[i] === 0xff && next !== 0x00 && next !== 0xff && !(next >= 0xd0 && next <= 0xd7)) out.push(i, i + 1, i + 2);
      }
      break;
    case "gif":
      out.push(6, 13); // after the signature, after the logical screen descriptor
      for (let i = 13; i < bytes.length; i++) if (bytes[i] === 0x21 || bytes[i] === 0x2c) out.push(i);
      break;
  }
  return out;
}
const le32 = (b: Uint8Array, i: number): number => (b[i] ?? 0) + ((b[i + 1] ?? 0) << 8) + ((b[i + 2] ?? 0) << 16) + (b[i + 3] ?? 0) * 16777216;

/** About `count` truncation lengths in [0, length): the first and last 64, structure boundaries, the rest spread at random. */
function truncationPoints(format: ImageFormat, bytes: Uint8Array, count: number, seed: number): number[] {
  const length = bytes.length;
  if (length <= count) return Array.from({ length }, (_, i) => i);
  const points = new Set<number>();
  for (let i = 0; i < 64; i++) points.add(i).add(length - 1 - i);
  const random = prng(seed);
  const boundaries = [...new Set(structureBoundaries(format, bytes))].filter((at) => at < length && !points.has(at));
  for (let i = 0; i < count / 4 && boundaries.length > 0; i++) points.add(boundaries.splice(Math.floor(random() * boundaries.length), 1)[0] ?? 0);
  while (points.size < count) points.add(Math.floor(random() * length));
  return [...points].sort((a, b) => a - b);
}

// ---------------------------------------------------------------------------------------------
// The files

interface Sample {
  readonly name: string;
  readonly format: ImageFormat;
  readonly what: string;
  /** Checks that the fixture really is what the test says it is. */
  readonly traits: (bytes: Uint8Array) => void;
}

const jpegMarker = (code: number): Uint8Array => new Uint8Array([0xff, code]);
const isBaseline = (b: Uint8Array): void => {
  expect(contains(b, jpegMarker(0xc0)) || contains(b, jpegMarker(0xc1)), "SOF0/SOF1 (sequential)").toBe(true);
  expect(contains(b, jpegMarker(0xc2)), "SOF2").toBe(false);
};
const isProgressive = (b: Uint8Array): void => expect(contains(b, jpegMarker(0xc2)), "SOF2 (progressive)").toBe(true);
const hasRestarts = (b: Uint8Array): void => {
  expect(contains(b, jpegMarker(0xdd)), "DRI").toBe(true);
  expect(contains(b, jpegMarker(0xd0)) && contains(b, jpegMarker(0xd7)), "RST0 .. RST7").toBe(true);
};
const endsWithEoi = (b: Uint8Array): void => expect([b[b.length - 2], b[b.length - 1]], "ends with EOI").toEqual([0xff, 0xd9]);
const pngInterlace = (value: number) => (b: Uint8Array): void => expect(b[28], "IHDR interlace method").toBe(value);
const gifFrames = (min: number) => (b: Uint8Array): void => {
  // Count image descriptors by walking the blocks (a byte search would also hit LZW data).
  let frames = 0;
  let at = 13 + ((b[10] ?? 0) & 0x80 ? 3 * 2 ** (((b[10] ?? 0) & 7) + 1) : 0);
  const subBlocks = (): void => {
    while (at < b.length && b[at] !== 0) at += (b[at] ?? 0) + 1;
    at++;
  };
  while (at < b.length && b[at] !== 0x3b) {
    if (b[at] === 0x21) {
      at += 2;
      subBlocks();
    } else {
      frames++;
      const flags = b[at + 9] ?? 0;
      at += 10 + (flags & 0x80 ? 3 * 2 ** ((flags & 7) + 1) : 0) + 1;
      subBlocks();
    }
  }
  expect(frames, "frames").toBeGreaterThanOrEqual(min);
};
const webpChunk = (fourcc: string, present = true) => (b: Uint8Array): void => expect(contains(b, ascii(fourcc)), `${fourcc} chunk`).toBe(present);
const all = (...checks: Array<(b: Uint8Array) => void>) => (b: Uint8Array): void => checks.forEach((check) => check(b));
const avifBoxes = (b: Uint8Array): void => {
  expect(String.fromCharCode(...b.subarray(4, 8)), "ftyp").toBe("ftyp");
  expect(contains(b, ascii("mdat")), "mdat").toBe(true);
};

const SAMPLES: readonly Sample[] = [
  { name: "gen-1x1.jpg", format: "jpeg", what: "baseline JPEG, 1x1", traits: all(isBaseline, endsWithEoi) },
  { name: "photo-small-aero1.jpg", format: "jpeg", what: "baseline JPEG, real photo", traits: all(isBaseline, endsWithEoi) },
  { name: "gen-orientation-6.jpg", format: "jpeg", what: "baseline JPEG with EXIF (APP1)", traits: all(isBaseline, endsWithEoi) },
  { name: "jpeg-cmyk.jpg", format: "jpeg", what: "CMYK JPEG (Adobe APP14)", traits: endsWithEoi },
  { name: "gen-progressive.jpg", format: "jpeg", what: "progressive JPEG", traits: all(isProgressive, endsWithEoi) },
  { name: "jpeg-gps-real-colorfulcups.jpg", format: "jpeg", what: "progressive JPEG, real photo", traits: all(isProgressive, endsWithEoi) },
  { name: "jpegtran-restart-baseline.jpg", format: "jpeg", what: "baseline JPEG with restart markers", traits: all(isBaseline, hasRestarts, endsWithEoi) },
  { name: "jpegtran-restart-progressive.jpg", format: "jpeg", what: "progressive JPEG with restart markers", traits: all(isProgressive, hasRestarts, endsWithEoi) },
  { name: "gen-1x1.png", format: "png", what: "PNG, 1x1", traits: pngInterlace(0) },
  { name: "png-alpha-opencv-logo.png", format: "png", what: "PNG with alpha", traits: pngInterlace(0) },
  { name: "gen-interlaced.png", format: "png", what: "interlaced PNG (Adam7)", traits: pngInterlace(1) },
  { name: "pngsuite-basi6a16.png", format: "png", what: "interlaced 16-bit RGBA PNG", traits: pngInterlace(1) },
  { name: "gen-icc.png", format: "png", what: "PNG with an iCCP chunk", traits: pngInterlace(0) },
  { name: "gen-1x1.gif", format: "gif", what: "GIF, 1x1", traits: gifFrames(1) },
  { name: "gen-animated.gif", format: "gif", what: "animated GIF, 3 frames", traits: gifFrames(3) },
  { name: "gif-animated-opencv-houghlines.gif", format: "gif", what: "animated GIF, 88 frames", traits: gifFrames(88) },
  { name: "gen-1x1.webp", format: "webp", what: "lossy WebP, 1x1", traits: all(webpChunk("VP8 "), webpChunk("VP8L", false)) },
  { name: "webp-lossy-photo-bythewater.webp", format: "webp", what: "lossy WebP, real photo", traits: all(webpChunk("VP8 "), webpChunk("VP8L", false)) },
  { name: "gen-alpha.webp", format: "webp", what: "lossy WebP with alpha (VP8X, ALPH)", traits: all(webpChunk("VP8X"), webpChunk("ALPH")) },
  { name: "gen-animated.webp", format: "webp", what: "animated WebP", traits: all(webpChunk("VP8X"), webpChunk("ANIM")) },
  { name: "gen-1x1-lossless.webp", format: "webp", what: "lossless WebP, 1x1", traits: all(webpChunk("VP8L"), webpChunk("VP8 ", false)) },
  { name: "webp-lossless-alpha-opencv-logo.webp", format: "webp", what: "lossless WebP with alpha", traits: all(webpChunk("VP8L"), webpChunk("VP8 ", false)) },
  { name: "gen-1x1.avif", format: "avif", what: "AVIF, 1x1", traits: avifBoxes },
  { name: "gen-alpha.avif", format: "avif", what: "AVIF with alpha", traits: avifBoxes },
  { name: "avif-photo-kite.avif", format: "avif", what: "AVIF, real photo", traits: avifBoxes },
];

/** Byte-by-byte feeding is for the small files only. */
const BYTE_BY_BYTE_LIMIT = 64 * 1024;
const TRUNCATION_POINTS = 200;

// ---------------------------------------------------------------------------------------------
// Tests

describe.each(SAMPLES)("$what ($name)", ({ name, format, traits }) => {
  const bytes = (): Promise<Uint8Array> => loadImage(name);

  it("is the kind of file this case is about", async () => {
    traits(await bytes());
  });

  it("passes when fed in one chunk", async () => {
    expectWhole(format, [await bytes()], name);
  });

  it("passes in random chunk splits, empty chunks included", async () => {
    const file = await bytes();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: file.length }), { maxLength: 40 }), (cuts) => {
        expectWhole(format, split(file, cuts), `${name} split at ${cuts.join(",")}`);
      }),
      { numRuns: 60 },
    );
  });

  it("passes when fed byte by byte (small files)", async () => {
    const file = await bytes();
    if (file.length > BYTE_BY_BYTE_LIMIT) {
      // A big file: its first 64 KiB (every header) byte by byte, the rest in one chunk.
      expectWhole(format, [...byteByByte(file.subarray(0, BYTE_BY_BYTE_LIMIT)), file.subarray(BYTE_BY_BYTE_LIMIT)], name);
      return;
    }
    expectWhole(format, byteByByte(file), name);
  });

  it(`fails with a 422 invalid-image at every sampled truncation point (about ${TRUNCATION_POINTS}, incl. the last bytes and structure boundaries)`, async () => {
    const file = await bytes();
    const points = truncationPoints(format, file, TRUNCATION_POINTS, file.length);
    expect(points).toEqual(expect.arrayContaining([0, 1, file.length - 3, file.length - 2, file.length - 1]));
    for (const length of points) expectTruncated(format, [file.subarray(0, length)], `${name} cut to ${length} of ${file.length} bytes`);
  });

  it("fails for a random truncation fed in random chunks", async () => {
    const file = await bytes();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: file.length - 1 }).chain((length) =>
          fc.tuple(fc.constant(length), fc.array(fc.integer({ min: 0, max: length }), { maxLength: 20 })),
        ),
        ([length, cuts]) => {
          expectTruncated(format, split(file.subarray(0, length), cuts), `${name} cut to ${length}, split at ${cuts.join(",")}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it("fails when the tail arrives byte by byte and the last 1-3 bytes are withheld", async () => {
    const file = await bytes();
    const tail = Math.max(0, file.length - 200);
    for (const drop of [1, 2, 3]) {
      const chunks = [file.subarray(0, tail), ...byteByByte(file.subarray(tail, file.length - drop))];
      expectTruncated(format, chunks, `${name} without its last ${drop} byte(s), tail byte by byte`);
    }
  });

  if (format !== "avif") {
    // AVIF's end is a box boundary, so bytes after it read as a (broken) box; every other format has an end marker or length.
    it("passes with trailing bytes after the end (camera trailers), in random splits", async () => {
      const file = await bytes();
      fc.assert(
        fc.property(fc.uint8Array({ minLength: 1, maxLength: 600 }), fc.array(fc.integer({ min: 0, max: file.length + 600 }), { maxLength: 10 }), (trailer, cuts) => {
          const whole = concat(file, trailer);
          expectWhole(format, split(whole, cuts.map((cut) => Math.min(cut, whole.length))), `${name} + ${trailer.length} trailing bytes`);
        }),
        { numRuns: 60 },
      );
    });
  }

  it("never throws anything but a ProblemError for a valid prefix followed by random bytes", async () => {
    const file = await bytes();
    const noisy = fc.oneof(
      fc.integer({ min: 0, max: 255 }),
      // Bytes that mean something to some walker: JPEG markers and stuffing, GIF introducers, small sizes.
      fc.constantFrom(0xff, 0x00, 0xd8, 0xd9, 0xda, 0xd0, 0xd7, 0xc4, 0x01, 0x21, 0x2c, 0x3b, 0x80, 0x08),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: Math.min(file.length, 2048) }),
        fc.array(noisy, { maxLength: 2000 }),
        fc.array(fc.integer({ min: 0, max: 4096 }), { maxLength: 12 }),
        (prefixLength, noise, cuts) => {
          const data = concat(file.subarray(0, prefixLength), Uint8Array.from(noise));
          feed(format, split(data, cuts.map((cut) => Math.min(cut, data.length)))); // throws on anything but a ProblemError
        },
      ),
      { numRuns: 150 },
    );
  });

  it("never throws anything but a ProblemError for the file with random bytes overwritten", async () => {
    const file = await bytes();
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: file.length - 1 }), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }),
        fc.array(fc.integer({ min: 0, max: file.length }), { maxLength: 8 }),
        (edits, cuts) => {
          const data = file.slice();
          for (const [at, value] of edits) data[at] = value;
          feed(format, split(data, cuts));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe("every format, whatever the bytes", () => {
  const FORMATS: readonly ImageFormat[] = ["jpeg", "png", "gif", "webp", "avif"];

  it.each(FORMATS)("%s: random bytes (any length, random chunks) give whole or a 422 invalid-image, nothing else", (format) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), fc.array(fc.integer({ min: 0, max: 3000 }), { maxLength: 12 }), (data, cuts) => {
        const outcome = feed(format, split(data, cuts.map((cut) => Math.min(cut, data.length))));
        if (!outcome.whole) {
          expect(outcome.problem.status).toBe(422);
          expect(outcome.problem.code).toBe("invalid-image");
        }
      }),
      { numRuns: 300 },
    );
  });

  it.each(FORMATS)("%s: an empty upload is not whole", (format) => {
    expectTruncated(format, [], `${format}, no chunks`);
    expectTruncated(format, [new Uint8Array(0)], `${format}, one empty chunk`);
  });
});

describe("specific structures", () => {
  it("JPEG: an end-of-image marker before any scan data is not an image", () => {
    const problem = expectTruncated("jpeg", [Uint8Array.of(0xff, 0xd8, 0xff, 0xd9)], "SOI EOI");
    expect(problem.detail).toMatch(/before any image data/);
  });

  it("JPEG: a truncated file says the image data stops before the end-of-image marker", async () => {
    const file = await loadCorpus("photo-small-aero1.jpg");
    expect(expectTruncated("jpeg", [file.subarray(0, file.length - 2)], "cut EOI").detail).toMatch(/before the end-of-image marker/);
  });

  it("JPEG: fill bytes (FF FF ...) before a marker and the EOI are accepted", async () => {
    const file = await loadFixture("gen-1x1.jpg");
    const padded = concat(file.subarray(0, file.length - 2), Uint8Array.of(0xff, 0xff, 0xff), file.subarray(file.length - 2));
    expectWhole("jpeg", [padded], "fill before EOI");
    expectWhole("jpeg", byteByByte(padded), "fill before EOI, byte by byte");
  });

  it("JPEG: an EOI-looking pair inside a skipped segment (an EXIF thumbnail) does not end the file", async () => {
    const file = await loadFixture("gen-1x1.jpg");
    // An APP1 segment holding FF D8 ... FF D9 right after SOI.
    const app1 = Uint8Array.of(0xff, 0xe1, 0x00, 0x08, 0xff, 0xd8, 0xff, 0xd9, 0xff, 0xd9);
    const withThumb = concat(file.subarray(0, 2), app1, file.subarray(2));
    expectWhole("jpeg", [withThumb], "APP1 with FF D9 inside");
    expectTruncated("jpeg", [withThumb.subarray(0, 2 + app1.length + 20)], "cut after the APP1");
  });

  it("JPEG: the PHP-in-EXIF corpus file (21 bytes after EOI) passes", async () => {
    expectWhole("jpeg", [await loadCorpus("hostile-php-in-exif.jpg")], "hostile-php-in-exif.jpg");
  });

  it("JPEG: the corpus's truncated files fail", async () => {
    for (const name of ["hostile-truncated.jpg", "hostile-truncated-header.jpg"]) expectTruncated("jpeg", [await loadCorpus(name)], name);
  });

  it("PNG: a file missing only IEND's CRC is truncated", async () => {
    const file = await loadFixture("gen-1x1.png");
    for (const drop of [1, 2, 3, 4]) expectTruncated("png", [file.subarray(0, file.length - drop)], `drop ${drop}`);
    expectTruncated("png", [file.subarray(0, file.length - 12)], "no IEND at all");
  });

  it("PNG: one or a few bytes after IEND are a trailer, not a broken chunk", async () => {
    const file = await loadFixture("gen-1x1.png");
    for (const trailer of [Uint8Array.of(0), Uint8Array.of(0xff, 0xff, 0xff), ascii("garbage after the end")]) {
      expectWhole("png", [concat(file, trailer)], `+${trailer.length}`);
      expectWhole("png", byteByByte(concat(file, trailer)), `+${trailer.length}, byte by byte`);
    }
  });

  it("PNG: a critical chunk whose CRC does not match (damaged image data) is refused, in any chunking", async () => {
    // PngSuite's own broken files: a wrong IDAT checksum, a wrong IHDR checksum.
    for (const name of ["pngsuite-xcsn0g01.png", "pngsuite-xhdn0g08.png"]) {
      const problem = expectTruncated("png", [await loadCorpus(name)], name);
      expect(problem.detail).toContain("CRC does not match");
    }
    // One bit flipped inside IDAT's data of a valid file (what the fuzzer found being accepted).
    const file = await loadCorpus("png-alpha-opencv-logo.png");
    const idat = findChunk(file, "IDAT");
    const damaged = file.slice();
    damaged[idat + 8 + 10] = (damaged[idat + 8 + 10] ?? 0) ^ 0x10;
    expect(expectTruncated("png", [damaged], "bit flip").detail).toContain("IDAT chunk is damaged");
    expectTruncated("png", byteByByte(damaged), "bit flip, byte by byte");
    expectWhole("png", byteByByte(file), "intact, byte by byte");
  });

  it("PNG: an ancillary chunk with a wrong CRC passes (decoders skip it too)", async () => {
    const file = await loadFixture("gen-icc.png");
    const iccp = findChunk(file, "iCCP");
    const length = ((file[iccp] ?? 0) << 24) | ((file[iccp + 1] ?? 0) << 16) | ((file[iccp + 2] ?? 0) << 8) | (file[iccp + 3] ?? 0);
    const damaged = file.slice();
    damaged[iccp + 8 + length] = (damaged[iccp + 8 + length] ?? 0) ^ 0xff; // first CRC byte
    expectWhole("png", [damaged], "iCCP CRC");
  });

  it("GIF: a block that is neither extension, image nor trailer is malformed", async () => {
    const file = await loadFixture("gen-1x1.gif");
    const broken = file.slice();
    broken[broken.length - 1] = 0x00; // the trailer 0x3B replaced
    expectTruncated("gif", [concat(broken, Uint8Array.of(0x99))], "unknown block");
  });

  it("WebP: a RIFF length beyond the bytes sent is truncated; bytes beyond it are a trailer", async () => {
    const file = await loadFixture("gen-1x1.webp");
    const longer = file.slice();
    new DataView(longer.buffer).setUint32(4, file.length - 8 + 2, true);
    expect(expectTruncated("webp", [longer], "RIFF +2").detail).toMatch(/shorter than its RIFF header/);
    expectWhole("webp", [longer, Uint8Array.of(0, 0)], "RIFF +2 with 2 more bytes");
  });

  it("AVIF: a file cut after its metadata, before the media data box, is truncated", async () => {
    for (const name of ["gen-1x1.avif", "avif-photo-kite.avif"]) {
      const file = await loadImage(name);
      const mdat = indexOfBytes(file, ascii("mdat")) - 4;
      expect(mdat).toBeGreaterThan(0);
      const problem = expectTruncated("avif", [file.subarray(0, mdat)], `${name} without mdat`);
      expect(problem.detail).toMatch(/stops inside a box/);
      expectTruncated("avif", [file.subarray(0, mdat + 8)], `${name} with only mdat's header`);
    }
  });

  it("AVIF: a box size below its header, or a 64-bit size below 16, is malformed", async () => {
    const file = await loadFixture("gen-1x1.avif");
    const ftypSize = u32be(file, 0);
    const small = file.slice();
    new DataView(small.buffer).setUint32(ftypSize, 7);
    expect(expectTruncated("avif", [small], "box size 7").detail).toMatch(/below its header/);
    const large = concat(file.subarray(0, ftypSize), Uint8Array.of(0, 0, 0, 1), ascii("free"), new Uint8Array([0, 0, 0, 0, 0, 0, 0, 15]));
    expect(expectTruncated("avif", [large], "largesize 15").detail).toMatch(/below its header/);
  });

  it("AVIF: a 64-bit box size and a last box running to the end (size 0) are walked", async () => {
    const file = await loadFixture("gen-1x1.avif");
    const mdatAt = indexOfBytes(file, ascii("mdat")) - 4;
    const payload = file.subarray(mdatAt + 8);
    const head = file.subarray(0, mdatAt);
    const size64 = new Uint8Array(16);
    new DataView(size64.buffer).setUint32(0, 1);
    size64.set(ascii("mdat"), 4);
    new DataView(size64.buffer).setUint32(12, 16 + payload.length);
    const withLargeSize = concat(head, size64, payload);
    expectWhole("avif", [withLargeSize], "mdat with a 64-bit size");
    expectWhole("avif", byteByByte(withLargeSize), "mdat with a 64-bit size, byte by byte");
    expectTruncated("avif", [withLargeSize.subarray(0, withLargeSize.length - 1)], "64-bit mdat cut");

    const toEnd = concat(head, Uint8Array.of(0, 0, 0, 0), ascii("mdat"), payload);
    expectWhole("avif", [toEnd], "mdat of size 0");
  });
});

/** Offset of the first chunk of this type (its length field). */
function findChunk(png: Uint8Array, type: string): number {
  for (let at = 8; at + 8 <= png.length; ) {
    const length = ((png[at] ?? 0) << 24) | ((png[at + 1] ?? 0) << 16) | ((png[at + 2] ?? 0) << 8) | (png[at + 3] ?? 0);
    if (String.fromCharCode(...png.subarray(at + 4, at + 8)) === type) return at;
    at += 12 + length;
  }
  throw new Error(`no ${type} chunk`);
}
