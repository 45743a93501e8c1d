/// <reference types="vite/client" />
import fc from "fast-check";
import { imageSize } from "image-size";
import { describe, expect, it } from "vitest";
import { ProblemError } from "../../src/errors";
import type { ImageFormat } from "../../src/images/format";
import { type ImageProbe, PROBE_WINDOW_BYTES, probeImage, sniffImageFormat } from "../../src/images/probe";
import licenses from "../fixtures/LICENSES.tsv?raw";
import { fixtureNames, hasFixture, loadCorpus, loadCorpusHead, loadCorpusText, loadFixture, loadImage } from "./fixtures";
import { crc32 } from "../../src/images/crc32";

// ---------------------------------------------------------------------------------------------
// Helpers

type Outcome = { readonly probe: ImageProbe } | { readonly status: number; readonly code: string; readonly detail: string };

/** probeImage's result, or its ProblemError; anything else fails the test. */
function outcome(head: Uint8Array, totalBytes?: number): Outcome {
  try {
    return { probe: probeImage(head, totalBytes) };
  } catch (error) {
    if (error instanceof ProblemError) return { status: error.status, code: error.code, detail: error.detail };
    throw new Error(`probeImage threw a non-ProblemError: ${String(error)}`, { cause: error });
  }
}

function problemOf(head: Uint8Array, totalBytes?: number): ProblemError {
  try {
    probeImage(head, totalBytes);
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
  throw new Error("expected a ProblemError, but the probe succeeded");
}

type Part = readonly number[] | Uint8Array | string;

/** Concatenate byte arrays and Latin-1 strings. */
function bytes(...parts: Part[]): Uint8Array {
  const arrays = parts.map((part) => (typeof part === "string" ? Uint8Array.from(part, (c) => c.charCodeAt(0)) : Uint8Array.from(part)));
  const out = new Uint8Array(arrays.reduce((sum, array) => sum + array.length, 0));
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

const u16be = (n: number): number[] => [(n >>> 8) & 255, n & 255];
const u32be = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
const u16le = (n: number): number[] => [n & 255, (n >>> 8) & 255];
const u24le = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255];
const u32le = (n: number): number[] => [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, (n >>> 24) & 255];

// JPEG ---------------------------------------------------------------------------------------
function segment(marker: number, ...payload: Part[]): Uint8Array {
  const body = bytes(...payload);
  return bytes([0xff, marker], u16be(body.length + 2), body);
}
function sof(width: number, height: number, options: { marker?: number; components?: number; precision?: number } = {}): Uint8Array {
  const components = options.components ?? 3;
  const specs = Array.from({ length: components }, (_, i) => [i + 1, 0x11, 0]).flat();
  return segment(options.marker ?? 0xc0, [options.precision ?? 8], u16be(height), u16be(width), [components], specs);
}
function exif(orientation: number, options: { littleEndian?: boolean; ifdOffset?: number; type?: number } = {}): Uint8Array {
  const le = options.littleEndian ?? false;
  const w16 = le ? u16le : u16be;
  const w32 = le ? u32le : u32be;
  const ifdOffset = options.ifdOffset ?? 8;
  const value = options.type === 4 ? w32(orientation) : [...w16(orientation), 0, 0];
  const tiff = bytes(
    le ? "II" : "MM",
    w16(42),
    w32(ifdOffset),
    new Array<number>(ifdOffset - 8).fill(0),
    w16(2),
    [...w16(0x010f), ...w16(2), ...w32(4), ..."Cam\0".split("").map((c) => c.charCodeAt(0))], // Make
    [...w16(0x0112), ...w16(options.type ?? 3), ...w32(1), ...value],
    w32(0),
  );
  return segment(0xe1, "Exif\0\0", tiff);
}
const SOI = [0xff, 0xd8];
const SCAN = bytes(segment(0xda, [1, 1, 0, 0, 63, 0]), [0x12, 0x34, 0xff, 0x00, 0x56], [0xff, 0xd9]);
function jpeg(...segments: Part[]): Uint8Array {
  return bytes(SOI, ...segments, SCAN);
}

// PNG ----------------------------------------------------------------------------------------
function chunk(type: string, ...data: Part[]): Uint8Array {
  const body = bytes(type, ...data);
  return bytes(u32be(body.length - 4), body, u32be(crc32(body)));
}
function ihdr(width: number, height: number, depth = 8, colorType = 2, interlace = 0): Uint8Array {
  return chunk("IHDR", u32be(width), u32be(height), [depth, colorType, 0, 0, interlace]);
}
const PNG_SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
/** A copy of `data` with one byte replaced. */
function withByte(data: Uint8Array, offset: number, value: number): Uint8Array {
  const copy = data.slice();
  copy[offset] = value;
  return copy;
}
function png(header: Uint8Array, ...chunks: Uint8Array[]): Uint8Array {
  return bytes(PNG_SIG, header, ...chunks, chunk("IDAT", [0x78, 0x9c, 0x63, 0, 0, 0, 1, 0, 1]), chunk("IEND"));
}

// GIF ----------------------------------------------------------------------------------------
function gif(width: number, height: number, ...blocks: Part[]): Uint8Array {
  return bytes("GIF89a", u16le(width), u16le(height), [0x80, 0, 0], [0, 0, 0, 255, 255, 255], ...blocks, [0x3b]);
}
function gifFrame(left: number, top: number, width: number, height: number, flags = 0): number[] {
  return [0x2c, ...u16le(left), ...u16le(top), ...u16le(width), ...u16le(height), flags, 2, 2, 0x44, 0x01, 0];
}
const gce = (transparent: boolean): number[] => [0x21, 0xf9, 4, transparent ? 1 : 0, 0, 0, 0, 0];
const NETSCAPE = [0x21, 0xff, 11, ...Array.from("NETSCAPE2.0", (c) => c.charCodeAt(0)), 3, 1, 0, 0, 0];

// WebP ---------------------------------------------------------------------------------------
function riffChunk(type: string, ...data: Part[]): Uint8Array {
  const body = bytes(...data);
  return bytes(type, u32le(body.length), body, body.length % 2 ? [0] : []);
}
function webp(...chunks: Uint8Array[]): Uint8Array {
  const body = bytes("WEBP", ...chunks);
  return bytes("RIFF", u32le(body.length), body);
}
const vp8 = (width: number, height: number, tag = [0x10, 0x02, 0x00], start = [0x9d, 0x01, 0x2a]): Uint8Array =>
  riffChunk("VP8 ", tag, start, u16le(width), u16le(height), [0, 0]);
const vp8l = (width: number, height: number, alpha: boolean, signature = 0x2f): Uint8Array =>
  riffChunk("VP8L", [signature], u32le(((width - 1) | ((height - 1) << 14) | ((alpha ? 1 : 0) << 28)) >>> 0), [0, 0]);
const vp8x = (flags: number, width: number, height: number): Uint8Array => riffChunk("VP8X", [flags, 0, 0, 0], u24le(width - 1), u24le(height - 1));

// ISO-BMFF / AVIF ----------------------------------------------------------------------------
function box(type: string, ...content: Part[]): Uint8Array {
  const body = bytes(...content);
  return bytes(u32be(body.length + 8), type, body);
}
const fullBox = (type: string, version: number, flags: number, ...content: Part[]): Uint8Array =>
  box(type, [version, ...u24le(flags).reverse()], ...content);
const ftyp = (major: string, ...compatible: string[]): Uint8Array => box("ftyp", major, u32be(0), ...compatible);
const ispe = (width: number, height: number): Uint8Array => fullBox("ispe", 0, 0, u32be(width), u32be(height));
const ALPHA_URN = "urn:mpeg:mpegB:cicp:systems:auxiliary:alpha\0";

interface AvifOptions {
  brands?: readonly string[];
  itemType?: string;
  width?: number;
  height?: number;
  /** Extra properties of the primary item. */
  props?: readonly Uint8Array[];
  alpha?: boolean;
  /** An extra, larger, non-primary item (e.g. an alternate). */
  bigger?: readonly [number, number];
  pitm?: boolean;
}
function avif(options: AvifOptions = {}): Uint8Array {
  const [major = "avif", ...compatible] = options.brands ?? ["avif", "mif1", "miaf"];
  const props: Uint8Array[] = [ispe(options.width ?? 64, options.height ?? 32), ...(options.props ?? [])];
  const primaryProps = props.map((_, i) => i + 1);
  const items: [number, string, number[]][] = [[1, options.itemType ?? "av01", primaryProps]];
  const refs: Uint8Array[] = [];
  if (options.alpha === true) {
    props.push(fullBox("auxC", 0, 0, ALPHA_URN));
    items.push([2, "av01", [1, props.length]]);
    refs.push(box("auxl", u16be(2), u16be(1), u16be(1)));
  }
  if (options.bigger !== undefined) {
    props.push(ispe(...options.bigger));
    items.push([3, "av01", [props.length]]);
  }
  const meta = fullBox(
    "meta",
    0,
    0,
    fullBox("hdlr", 0, 0, u32be(0), "pict", new Array<number>(12).fill(0), [0]),
    options.pitm === false ? [] : fullBox("pitm", 0, 0, u16be(1)),
    fullBox("iinf", 0, 0, u16be(items.length), ...items.map(([id, type]) => fullBox("infe", 2, 0, u16be(id), u16be(0), type, [0]))),
    refs.length > 0 ? fullBox("iref", 0, 0, ...refs) : [],
    box(
      "iprp",
      box("ipco", ...props),
      fullBox("ipma", 0, 0, u32be(items.length), ...items.map(([id, , list]) => [...u16be(id), list.length, ...list])),
    ),
  );
  return bytes(ftyp(major, ...compatible), meta, box("mdat", [0, 0, 0, 0]));
}

// ---------------------------------------------------------------------------------------------
// The corpus table: every file of the shared corpus (its MANIFEST.tsv) and every fixture made here
// (test/fixtures/LICENSES.tsv, the same columns).

interface Row {
  /** Where the file is: the shared corpus, or test/fixtures. */
  readonly source: "corpus" | "fixture";
  readonly file: string;
  /** The file's size. */
  readonly bytes: number;
  readonly format: string;
  readonly width: number | undefined;
  readonly height: number | undefined;
  readonly what: string;
}

function tableRows(table: string, source: Row["source"]): Row[] {
  return table
    .trimEnd()
    .split("\n")
    .slice(1)
    .map((line) => {
      const [file = "", size = "", format = "", width = "", height = "", what = ""] = line.split("\t");
      return {
        source,
        file,
        bytes: Number(size),
        format,
        width: width === "" ? undefined : Number(width),
        height: height === "" ? undefined : Number(height),
        what,
      };
    });
}

const fixtureRows = tableRows(licenses, "fixture");
const rows: Row[] = [...tableRows(await loadCorpusText("MANIFEST.tsv"), "corpus"), ...fixtureRows];

/** The bytes of a row's file: a fixture whole, a corpus file up to twice the probe window. */
function rowBytes(row: Row): Promise<Uint8Array> {
  return row.source === "fixture" ? loadFixture(row.file) : loadCorpusHead(row.file, 2 * PROBE_WINDOW_BYTES);
}

const MANIFEST_FORMATS: Readonly<Record<string, ImageFormat>> = { JPEG: "jpeg", PNG: "png", GIF: "gif", WEBP: "webp", AVIF: "avif" };
const HEIC_DETAIL = "HEIC/HEIF is not supported; convert to JPEG or AVIF";

type Expectation =
  | { readonly kind: "probe"; readonly format: ImageFormat; readonly width: number; readonly height: number; readonly orientation: number }
  | { readonly kind: "problem"; readonly status: 415 | 422; readonly detail?: RegExp };

function expectationFor(row: Row): Expectation {
  const name = row.file;
  const format = MANIFEST_FORMATS[row.format];
  if (format !== undefined) {
    if (row.width === undefined || row.height === undefined) return { kind: "problem", status: 422 };
    const match = /^orientation-(?:landscape|portrait)-(\d)\.jpg$/.exec(name) ?? /^(?:gen-)?orientation-(\d)[-.]/.exec(name);
    const orientation = match?.[1] === undefined ? 1 : Math.max(1, Number(match[1]));
    return { kind: "probe", format, width: row.width, height: row.height, orientation };
  }
  switch (row.format) {
    case "HEIC":
      return { kind: "problem", status: 415, detail: new RegExp(`^${HEIC_DETAIL.replace("/", "\\/")}$`) };
    case "EMPTY":
      return { kind: "problem", status: 415, detail: /^The file is empty/ };
    case "SVG":
      return { kind: "problem", status: 415, detail: /^SVG is not accepted/ };
    case "HTML":
      return { kind: "problem", status: 415, detail: /^HTML is not accepted/ };
    case "TEXT":
    case "ICC": // a colour profile kept for the colour tests: not an image either
      return { kind: "problem", status: 415 };
    default:
      throw new Error(`${row.source === "corpus" ? "MANIFEST.tsv" : "LICENSES.tsv"}: unknown format ${row.format} for ${row.file}`);
  }
}

/** Traits checked beyond format and size, keyed by file name. */
const TRAITS: Readonly<Record<string, Partial<ImageProbe>>> = {
  "photo-small-aero1.jpg": { frames: 1, animated: false, hasAlpha: false },
  "photo-large-sunset-12mp.jpg": { progressive: true },
  "photo-portrait-friends.jpg": { progressive: true },
  "jpeg-progressive-picture1a.jpg": { progressive: true },
  "jpeg-gps-real-colorfulcups.jpg": { progressive: true, iccProfile: true },
  "jpeg-icc-adobergb.jpg": { iccProfile: true },
  "jpeg-cmyk.jpg": { colorSpace: "cmyk" },
  "jpeg-grayscale-grey.jpg": { colorSpace: "gray" },
  "png-alpha-watermark-debian.png": { hasAlpha: true, colorSpace: "rgb" },
  "png-alpha-opencv-logo.png": { hasAlpha: true },
  "png-16bit-rgba-cylinder.png": { hasAlpha: true },
  "png-16bit-rgb-imagemagick.png": { hasAlpha: false },
  "png-palette-photo-building.png": { hasAlpha: false },
  "png-gray-basketball.png": { hasAlpha: false, colorSpace: "gray" },
  "hostile-png-bomb-50000x50000.png": { hasAlpha: false, colorSpace: "gray" },
  "png-interlaced-photo-kite.png": { progressive: true },
  "png-large-cascade.png": { progressive: false, hasAlpha: false },
  "pngsuite-exif2c08.png": { orientation: 1 },
  "gif-animated-opencv-houghlines.gif": { frames: 88, animated: true },
  "gif-animated-photo-pan.gif": { animated: true },
  "hostile-gif-65535x65535-screen.gif": { frames: 1, animated: false },
  "webp-lossless-alpha-opencv-logo.webp": { hasAlpha: true, animated: false },
  "webp-lossy-photo-bythewater.webp": { hasAlpha: false, animated: false },
  "webp-real-gnome-truchet.webp": { hasAlpha: false },
  "avif-photo-kite.avif": { hasAlpha: false, animated: false, iccProfile: false, colorSpace: "rgb" },
  "gen-1x1.gif": { frames: 1, animated: false },
  "gen-progressive.jpg": { progressive: true },
  "jpegtran-restart-progressive.jpg": { progressive: true },
  "gen-alpha.webp": { hasAlpha: true, animated: false },
  "gen-alpha.avif": { hasAlpha: true },
  "gen-alpha.gif": { hasAlpha: true },
  "gen-1x1.avif": { hasAlpha: false },
  "gen-1x1-lossless.webp": { hasAlpha: false },
  "gen-interlaced.png": { progressive: true },
  "gen-animated.gif": { frames: 3, animated: true },
  "gen-animated.webp": { frames: 3, animated: true },
  "gen-icc.png": { iccProfile: true },
  "gen-icc.webp": { iccProfile: true },
  "gen-icc.avif": { iccProfile: true },
};

/** JPEG defaults from the corpus (checked by segment dump): no ICC, not progressive, YCbCr. */
const JPEG_DEFAULTS: Partial<ImageProbe> = { progressive: false, iccProfile: false, colorSpace: "rgb", hasAlpha: false };

/** PngSuite names encode interlace, colour type and transparency. */
function pngSuiteTraits(name: string): Partial<ImageProbe> {
  const match = /^pngsuite-([a-z0-9]{3})([ni])([0-6])[a-z]\d\d\.png$/.exec(name);
  if (match === null) return {};
  const [, test = "", interlace, colorType = ""] = match;
  const type = Number(colorType);
  const trns = test.startsWith("tb") || test.startsWith("tm") || test === "tp1";
  return { progressive: interlace === "i", colorSpace: type === 0 || type === 4 ? "gray" : "rgb", hasAlpha: type === 4 || type === 6 || trns };
}

function traitsFor(row: Row): Partial<ImageProbe> {
  const name = row.file;
  const defaults = row.format === "JPEG" && !name.startsWith("gen-") ? JPEG_DEFAULTS : {};
  return { ...defaults, ...pngSuiteTraits(name), ...TRAITS[name] };
}

describe("corpus (../shared/corpus/MANIFEST.tsv and test/fixtures/LICENSES.tsv)", () => {
  it("lists exactly the fixtures on disk, and covers every kind of file", () => {
    const listed = new Set(fixtureRows.map((row) => row.file));
    const onDisk = fixtureNames().filter((name) => !/\.(tsv|mjs|md|json)$/.test(name));
    expect(onDisk.filter((name) => !listed.has(name)), "fixtures without a licence line").toEqual([]);
    expect(fixtureRows.filter((row) => !hasFixture(row.file)).map((row) => row.file), "licence lines without a fixture").toEqual([]);
    const formats = new Set(rows.map((row) => row.format));
    for (const format of ["JPEG", "PNG", "GIF", "WEBP", "AVIF", "HEIC", "SVG", "HTML", "TEXT", "EMPTY"]) expect(formats).toContain(format);
    expect(rows.length).toBeGreaterThan(250);
  });

  for (const row of rows) {
    it(`${row.file}: ${row.format} ${row.width ?? ""}x${row.height ?? ""}`, async () => {
      const data = await rowBytes(row);
      const total = Math.max(row.bytes, data.length);
      const expected = expectationFor(row);
      const result = outcome(data, total);
      if (expected.kind === "problem") {
        expect(result).toMatchObject({ status: expected.status, code: expected.status === 415 ? "unsupported-format" : "invalid-image" });
        if (expected.detail !== undefined && "detail" in result) expect(result.detail).toMatch(expected.detail);
        return;
      }
      if (!("probe" in result)) throw new Error(`${row.file} was refused: ${result.status} ${result.detail}`);
      const probe = result.probe;
      expect(probe).toMatchObject({ format: expected.format, width: expected.width, height: expected.height, orientation: expected.orientation });
      expect(probe).toMatchObject(traitsFor(row));
      expect(probe.frames).toBeGreaterThanOrEqual(probe.animated ? 2 : 1);
      // Only the window counts: handing in more bytes than PROBE_WINDOW_BYTES changes nothing.
      expect(probeImage(data.subarray(0, PROBE_WINDOW_BYTES), total)).toEqual(probe);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// image-size as an oracle, and where it is wrong.

describe("image-size 2.1.0 as an oracle", () => {
  it("agrees on the size (and JPEG orientation) of every fixture we accept", async () => {
    let compared = 0;
    for (const row of rows) {
      const data = (await rowBytes(row)).slice(0, PROBE_WINDOW_BYTES);
      const ours = outcome(data, Math.max(row.bytes, data.length));
      if (!("probe" in ours)) continue;
      const theirs = imageSize(data);
      expect({ file: row.file, width: theirs.width, height: theirs.height }).toEqual({ file: row.file, width: ours.probe.width, height: ours.probe.height });
      if (ours.probe.format === "jpeg") expect({ file: row.file, orientation: theirs.orientation ?? 1 }).toEqual({ file: row.file, orientation: ours.probe.orientation });
      compared++;
    }
    expect(compared).toBeGreaterThan(200);
  });

  it("accepts corrupt PngSuite files that we refuse (bad IHDR CRC, colour type, bit depth, signature)", async () => {
    const cases: [string, number][] = [
      ["pngsuite-xhdn0g08.png", 422], // IHDR CRC
      ["pngsuite-xc1n0g08.png", 422], // colour type 1
      ["pngsuite-xc9n2c08.png", 422], // colour type 9
      ["pngsuite-xd0n2c08.png", 422], // bit depth 0
      ["pngsuite-xd3n2c08.png", 422], // bit depth 3
      ["pngsuite-xd9n2c08.png", 422], // bit depth 99
      ["pngsuite-xs1n0g01.png", 415], // first signature byte 0x09: image-size never checks byte 0
    ];
    for (const [file, status] of cases) {
      const data = await loadCorpus(file);
      expect(imageSize(data), file).toMatchObject({ type: "png", width: 32, height: 32 });
      expect(outcome(data), file).toMatchObject({ status });
    }
  });

  it("reads past the end of a subarray; we never look outside the view we are given", async () => {
    const full = await loadCorpus("pngsuite-basn0g01.png");
    const head = full.subarray(0, 17); // signature + IHDR header, no width/height
    expect(imageSize(head)).toMatchObject({ width: 32, height: 32 });
    expect(outcome(head)).toMatchObject({ status: 422 });
    const gifHead = (await loadCorpus("gif-animated-opencv-houghlines.gif")).subarray(0, 7);
    expect(imageSize(gifHead)).toMatchObject({ width: 300, height: 148 });
    expect(outcome(gifHead)).toMatchObject({ status: 422 });
  });

  it("calls random zero bytes a 0x0 TGA; we call them unsupported", () => {
    expect(imageSize(new Uint8Array(64))).toMatchObject({ type: "tga", width: 0, height: 0 });
    expect(outcome(new Uint8Array(64))).toMatchObject({ status: 415, code: "unsupported-format" });
  });

  it("rejects legal 0xFF fill bytes before a JPEG marker", () => {
    const data = jpeg(segment(0xdb, new Array<number>(65).fill(1)), [0xff, 0xff, 0xff], sof(640, 480));
    expect(() => imageSize(data)).toThrow(/Corrupt JPG/);
    expect(probeImage(data)).toMatchObject({ format: "jpeg", width: 640, height: 480 });
  });

  it("rejects arithmetic-coded JPEG (SOF9/SOF10), which libjpeg-turbo decodes", () => {
    for (const marker of [0xc9, 0xca]) {
      const data = jpeg(sof(300, 200, { marker }));
      expect(() => imageSize(data)).toThrow();
      expect(probeImage(data)).toMatchObject({ width: 300, height: 200, progressive: marker === 0xca });
    }
  });

  it("assumes EXIF IFD0 sits at offset 8 instead of reading the offset", () => {
    const data = jpeg(exif(6, { ifdOffset: 20 }), sof(40, 30));
    expect(imageSize(data).orientation).not.toBe(6);
    expect(probeImage(data).orientation).toBe(6);
  });

  it("reports the largest ispe of an AVIF, not the primary item's", () => {
    const data = avif({ width: 100, height: 50, bigger: [400, 300] });
    expect(imageSize(data)).toMatchObject({ width: 400, height: 300 });
    expect(probeImage(data)).toMatchObject({ width: 100, height: 50 });
  });

  it("subtracts the clap width denominator from the AVIF width", () => {
    // clap: widthN/widthD, heightN/heightD, horizOffN/D, vertOffN/D; a 60/1 x 30/1 clean aperture.
    const clap = box("clap", u32be(60), u32be(1), u32be(30), u32be(1), u32be(0), u32be(1), u32be(0), u32be(1));
    const data = avif({ width: 64, height: 32, props: [clap] });
    expect(imageSize(data)).toMatchObject({ width: 63, height: 32 });
    // We report the coded size (what a decoder allocates), like libavif's image size.
    expect(probeImage(data)).toMatchObject({ width: 64, height: 32 });
  });
});

// ---------------------------------------------------------------------------------------------
// Sniffing and what we refuse.

describe("sniffing by magic bytes", () => {
  it("finds each format whatever the file would be called", async () => {
    expect(sniffImageFormat(await loadCorpus("mismatch-jpeg-named.png"))).toBe("jpeg");
    expect(sniffImageFormat(bytes(PNG_SIG))).toBe("png");
    expect(sniffImageFormat(bytes("GIF87a"))).toBe("gif");
    expect(sniffImageFormat(bytes("RIFF", u32le(4), "WEBP"))).toBe("webp");
    expect(sniffImageFormat(ftyp("mif1", "miaf", "avif"))).toBe("avif");
    expect(sniffImageFormat(ftyp("avis", "msf1", "avif"))).toBe("avif");
  });

  it("refuses HEIC/HEIF by brand with a conversion hint (415)", () => {
    for (const brands of [["heic"], ["heix"], ["hevc"], ["mif1", "heic"], ["msf1", "hevc"], ["mif1", "miaf"], ["heim", "avif"]]) {
      const [major = "", ...compatible] = brands;
      const problem = problemOf(ftyp(major, ...compatible));
      expect(problem, brands.join(",")).toMatchObject({ status: 415, code: "unsupported-format", detail: HEIC_DETAIL });
      expect(problem.extras.received).toBe("heic");
    }
  });

  it("refuses an 'avif'-branded file whose primary image is HEVC as HEIC", () => {
    expect(problemOf(avif({ itemType: "hvc1" }))).toMatchObject({ status: 415, detail: HEIC_DETAIL });
  });

  const refused: [string, Uint8Array, RegExp][] = [
    ["empty", new Uint8Array(0), /^The file is empty/],
    ["SVG", bytes("<svg xmlns='http://www.w3.org/2000/svg'/>"), /^SVG is not accepted/],
    ["SVG after XML prolog and BOM", bytes([0xef, 0xbb, 0xbf], '<?xml version="1.0"?>\n<!-- x -->\n<svg/>'), /^SVG is not accepted/],
    ["HTML", bytes("<!doctype html><p>hi"), /^HTML is not accepted/],
    ["HTML fragment", bytes("  <script>alert(1)</script>"), /^HTML is not accepted/],
    ["XML", bytes('<?xml version="1.0"?><feed/>'), /^XML is not accepted/],
    ["text", bytes("GIF? no, just words\n"), /^Plain text is not accepted/],
    ["PDF", bytes("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"), /^PDF is not accepted/],
    ["TIFF", bytes("II*\0", u32le(8)), /^TIFF/],
    ["BMP", bytes("BM", u32le(70), new Array<number>(10).fill(0)), /^BMP/],
    ["JPEG XL codestream", bytes([0xff, 0x0a, 0xfa, 0x7f]), /^JPEG XL/],
    ["JPEG 2000", bytes([0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20, 0x0d, 0x0a, 0x87, 0x0a]), /^JPEG 2000/],
    ["MP4", ftyp("isom", "iso2", "mp41"), /^An MP4-family file \(brand "isom"\)/],
    ["QuickTime", ftyp("qt  "), /^QuickTime video/],
    ["AVI", bytes("RIFF", u32le(4), "AVI "), /AVI video/],
    ["zip", bytes([0x50, 0x4b, 3, 4, 20, 0]), /^A ZIP archive/],
    ["damaged PNG signature", bytes([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0d, 0x0a, 0x1a]), /signature is damaged/],
    ["GIF of unknown version", bytes("GIF88a", new Array<number>(10).fill(0)), /^A GIF of unknown version/],
    ["too short: JPEG magic cut", bytes([0xff, 0xd8]), /too short to identify \(2 bytes\)/],
    ["too short: PNG magic cut", bytes(PNG_SIG.slice(0, 5)), /too short/],
    ["too short: RIFF without form type", bytes("RIFF", u32le(4)), /too short/],
    ["binary junk", bytes([0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]), /^Unrecognised file format \(first bytes de ad be ef\)/],
  ];
  for (const [name, data, detail] of refused) {
    it(`refuses ${name} with 415 unsupported-format`, () => {
      const problem = problemOf(data);
      expect(problem).toMatchObject({ status: 415, code: "unsupported-format" });
      expect(problem.detail).toMatch(detail);
      expect(problem.extras.expected).toBe("JPEG, PNG, GIF, WebP or AVIF");
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Format readers on hand-built headers.

describe("JPEG", () => {
  it("reads EXIF orientation in either byte order; 0, 9 and non-SHORT values count as 1", () => {
    for (let value = 0; value <= 9; value++) {
      const expected = value >= 1 && value <= 8 ? value : 1;
      expect(probeImage(jpeg(exif(value), sof(4, 3))).orientation, `MM ${value}`).toBe(expected);
      expect(probeImage(jpeg(exif(value, { littleEndian: true }), sof(4, 3))).orientation, `II ${value}`).toBe(expected);
    }
    expect(probeImage(jpeg(exif(6, { type: 4 }), sof(4, 3))).orientation).toBe(1);
  });

  it("ignores broken EXIF instead of failing the image", () => {
    const broken = segment(0xe1, "Exif\0\0", "MM", u16be(42), u32be(0xfffffff0));
    expect(probeImage(jpeg(broken, sof(4, 3)))).toMatchObject({ width: 4, height: 3, orientation: 1 });
  });

  it("uses the first EXIF segment and tolerates stray bytes before a marker (like libjpeg)", () => {
    expect(probeImage(jpeg(exif(3), exif(6), sof(4, 3))).orientation).toBe(3);
    expect(probeImage(jpeg(segment(0xe0, "JFIF\0"), [0x00, 0x00], sof(4, 3)))).toMatchObject({ width: 4, height: 3 });
  });

  it("tells CMYK, YCCK, grayscale and ICC apart", () => {
    const adobe = (transform: number): Uint8Array => segment(0xee, "Adobe", u16be(100), u16be(0), u16be(0), [transform]);
    expect(probeImage(jpeg(sof(8, 8, { components: 4 }))).colorSpace).toBe("cmyk");
    expect(probeImage(jpeg(adobe(0), sof(8, 8, { components: 4 }))).colorSpace).toBe("cmyk");
    expect(probeImage(jpeg(adobe(2), sof(8, 8, { components: 4 }))).colorSpace).toBe("ycck");
    expect(probeImage(jpeg(sof(8, 8, { components: 1 }))).colorSpace).toBe("gray");
    expect(probeImage(jpeg(segment(0xe2, "ICC_PROFILE\0", [1, 1], new Array<number>(40).fill(0)), sof(8, 8))).iccProfile).toBe(true);
  });

  it("returns absurd sizes exactly; pixel limits are the caller's", () => {
    expect(probeImage(jpeg(sof(65535, 65535)))).toMatchObject({ width: 65535, height: 65535 });
  });

  const broken: [string, Uint8Array, number, RegExp][] = [
    ["width 0", jpeg(sof(0, 10)), 422, /width of 0/],
    ["height 0 (DNL)", jpeg(sof(10, 0)), 422, /height of 0/],
    ["SOF length disagreeing with components", jpeg(segment(0xc0, [8], u16be(1), u16be(1), [3], [1, 0x11, 0])), 422, /declares 3 components/],
    ["two SOF", jpeg(sof(4, 3), sof(4, 3)), 422, /second frame header/],
    ["second SOI", bytes(SOI, [0xff, 0xd8], sof(4, 3), SCAN), 422, /second start-of-image/],
    ["scan before SOF", bytes(SOI, SCAN), 422, /scan data starts before/],
    ["EOI before SOF", bytes(SOI, segment(0xdb, [0]), [0xff, 0xd9]), 422, /EOI marker/],
    ["segment length 1", bytes(SOI, [0xff, 0xe0, 0x00, 0x01], sof(4, 3)), 422, /impossible length/],
    ["nothing after SOI", bytes(SOI, [0xff]), 422, /truncated/],
    ["lossless SOF3", jpeg(sof(4, 3, { marker: 0xc3 })), 415, /Lossless and hierarchical JPEG \(SOF3\)/],
    ["hierarchical SOF5", jpeg(sof(4, 3, { marker: 0xc5 })), 415, /SOF5/],
    ["12-bit", jpeg(sof(4, 3, { precision: 12 })), 415, /12-bit JPEG/],
    ["2 components", jpeg(sof(4, 3, { components: 2 })), 415, /2 colour components/],
  ];
  for (const [name, data, status, detail] of broken) {
    it(`refuses ${name} with ${status}`, () => {
      const problem = problemOf(data);
      expect(problem.status).toBe(status);
      expect(problem.detail).toMatch(detail);
      if (status === 422) expect(problem.extras.format).toBe("jpeg");
    });
  }

  it("finds the SOF behind large APP segments within the window, and says so when it is beyond", () => {
    const app = (n: number): Uint8Array[] => Array.from({ length: n }, () => segment(0xe2, "MPF\0", new Array<number>(65529).fill(7)));
    const inside = jpeg(...app(7), sof(1000, 800)); // SOF at ~459 KiB
    expect(probeImage(inside)).toMatchObject({ width: 1000, height: 800 });
    const beyond = jpeg(...app(9), sof(1000, 800)); // SOF at ~576 KiB
    expect(beyond.length).toBeGreaterThan(PROBE_WINDOW_BYTES);
    expect(problemOf(beyond).detail).toMatch(/not within the first 512 KiB/);
    expect(problemOf(beyond.subarray(0, PROBE_WINDOW_BYTES), beyond.length).detail).toMatch(/not within the first 512 KiB/);
    // The same bytes as a whole (truncated) file read as truncated.
    expect(problemOf(beyond.slice(0, 1000)).detail).toMatch(/truncated/);
  });
});

describe("PNG", () => {
  it("reads IHDR, tRNS, iCCP, eXIf and APNG acTL", () => {
    expect(probeImage(png(ihdr(3, 2, 8, 6)))).toMatchObject({ width: 3, height: 2, hasAlpha: true, colorSpace: "rgb", frames: 1, animated: false });
    expect(probeImage(png(ihdr(3, 2, 8, 3), chunk("PLTE", [0, 0, 0]), chunk("tRNS", [0])))).toMatchObject({ hasAlpha: true });
    expect(probeImage(png(ihdr(3, 2, 16, 0), chunk("iCCP", "x\0", [0, 1, 2])))).toMatchObject({ colorSpace: "gray", iccProfile: true, hasAlpha: false });
    const tiff = exif(8).subarray(10); // the TIFF structure without APP1 and "Exif\0\0"
    expect(probeImage(png(ihdr(3, 2), chunk("eXIf", tiff))).orientation).toBe(8);
    expect(probeImage(png(ihdr(3, 2), chunk("acTL", u32be(5), u32be(0))))).toMatchObject({ frames: 5, animated: true });
    expect(probeImage(png(ihdr(3, 2, 8, 2, 1)))).toMatchObject({ progressive: true });
  });

  it("returns the 2^31-1 maximum exactly and refuses more", () => {
    expect(probeImage(png(ihdr(0x7fffffff, 1)))).toMatchObject({ width: 0x7fffffff, height: 1 });
    expect(problemOf(png(ihdr(0x80000000, 1)))).toMatchObject({ status: 422 });
  });

  const broken: [string, Uint8Array, number, RegExp][] = [
    ["zero width", png(ihdr(0, 5)), 422, /size of 0x5/],
    ["zero height", png(ihdr(5, 0)), 422, /size of 5x0/],
    ["colour type 5", png(ihdr(5, 5, 8, 5)), 422, /invalid colour type \(5\)/],
    ["RGB at 4 bits", png(ihdr(5, 5, 4, 2)), 422, /invalid bit depth \(4\) for colour type 2/],
    ["interlace method 2", png(ihdr(5, 5, 8, 2, 2)), 422, /interlace method/],
    ["bad IHDR CRC", withByte(png(ihdr(5, 5)), 30, 0x77), 422, /CRC/],
    ["first chunk not IHDR", bytes(PNG_SIG, chunk("gAMA", u32be(45455)), ihdr(5, 5)), 422, /"gAMA" chunk instead of IHDR/],
    ["IHDR of 14 bytes", bytes(PNG_SIG, chunk("IHDR", u32be(5), u32be(5), [8, 2, 0, 0, 0, 0])), 422, /14 bytes long/],
    ["signature only", bytes(PNG_SIG), 422, /ends before its IHDR/],
    ["Apple CgBI", bytes(PNG_SIG, chunk("CgBI", [0x50, 0, 0x20, 2]), ihdr(5, 5)), 415, /CgBI/],
  ];
  for (const [name, data, status, detail] of broken) {
    it(`refuses ${name} with ${status}`, () => {
      const problem = problemOf(data);
      expect(problem.status).toBe(status);
      expect(problem.detail).toMatch(detail);
    });
  }
});

describe("GIF", () => {
  it("counts frames, transparency and loops", () => {
    const still = gif(10, 8, gifFrame(0, 0, 10, 8));
    expect(probeImage(still)).toMatchObject({ width: 10, height: 8, frames: 1, animated: false, hasAlpha: false, progressive: false });
    const animated = gif(10, 8, NETSCAPE, gce(true), gifFrame(0, 0, 10, 8, 0x40), gce(false), gifFrame(2, 2, 4, 4), gifFrame(0, 0, 1, 1));
    expect(probeImage(animated)).toMatchObject({ frames: 3, animated: true, hasAlpha: true, progressive: true });
  });

  it("counts the frames in the window as a lower bound when the file is longer", () => {
    const head = gif(10, 8, NETSCAPE, gifFrame(0, 0, 10, 8)).slice(0, -1); // no trailer yet
    expect(probeImage(head, 1_000_000)).toMatchObject({ frames: 1, animated: true }); // loop extension: more to come
    expect(probeImage(head)).toMatchObject({ frames: 1, animated: false }); // whole file: one frame
  });

  it("grows the canvas to hold frames that overflow the logical screen", () => {
    expect(probeImage(gif(1, 1, gifFrame(0, 0, 1, 1), gifFrame(100, 50, 60000, 40000)))).toMatchObject({ width: 60100, height: 40050, frames: 2 });
  });

  it("refuses a GIF without an image, or with garbage before it", () => {
    expect(problemOf(gif(10, 8)).detail).toMatch(/contains no image/);
    expect(problemOf(gif(10, 8, [0x99, 1, 2, 3])).detail).toMatch(/unknown block \(0x99\)/);
    expect(problemOf(bytes("GIF89a", u16le(0), u16le(8), [0, 0, 0], gifFrame(0, 0, 1, 1), [0x3b])).status).toBe(422);
    expect(problemOf(bytes("GIF89a", [1, 0, 1])).detail).toMatch(/logical screen descriptor/);
  });
});

describe("WebP", () => {
  it("reads VP8, VP8L and VP8X headers", () => {
    expect(probeImage(webp(vp8(16383, 16383)))).toMatchObject({ width: 16383, height: 16383, hasAlpha: false });
    expect(probeImage(webp(vp8l(16384, 1, true)))).toMatchObject({ width: 16384, height: 1, hasAlpha: true });
    expect(probeImage(webp(vp8x(0x10, 300, 200), riffChunk("ALPH", [0]), vp8(300, 200)))).toMatchObject({ width: 300, height: 200, hasAlpha: true, animated: false });
    const anmf = riffChunk("ANMF", new Array<number>(16).fill(0));
    expect(probeImage(webp(vp8x(0x02 | 0x20, 64, 48), riffChunk("ANIM", new Array<number>(6).fill(0)), anmf, anmf))).toMatchObject({
      width: 64,
      height: 48,
      frames: 2,
      animated: true,
      iccProfile: true,
      hasAlpha: false,
    });
    expect(probeImage(webp(vp8x(0x08, 8, 8), vp8(8, 8), riffChunk("EXIF", "Exif\0\0", exif(5).subarray(10)))).orientation).toBe(5);
  });

  const broken: [string, Uint8Array, RegExp][] = [
    ["an interframe", webp(vp8(4, 4, [0x11, 0x02, 0x00])), /key frame/],
    ["no VP8 start code", webp(vp8(4, 4, undefined, [1, 2, 3])), /start code/],
    ["zero VP8 size", webp(vp8(0, 4)), /size of 0x4/],
    ["a VP8L without signature", webp(vp8l(4, 4, false, 0x2e)), /signature/],
    ["an unknown first chunk", webp(riffChunk("VP9 ", [1, 2, 3, 4])), /"VP9 " chunk instead of VP8/],
    ["a canvas over 2^32-1 pixels", webp(vp8x(0, 1 << 24, 1 << 24)), /exceeds 2\^32-1/],
    ["no chunk", bytes("RIFF", u32le(4), "WEBP"), /ends before its first chunk/],
  ];
  for (const [name, data, detail] of broken) {
    it(`refuses ${name} with 422`, () => {
      const problem = problemOf(data);
      expect(problem).toMatchObject({ status: 422, code: "invalid-image" });
      expect(problem.detail).toMatch(detail);
    });
  }
});

describe("AVIF", () => {
  it("reads the primary item's size, alpha, ICC and monochrome", () => {
    expect(probeImage(avif({ width: 1920, height: 1080 }))).toMatchObject({ format: "avif", width: 1920, height: 1080, hasAlpha: false, orientation: 1 });
    expect(probeImage(avif({ alpha: true }))).toMatchObject({ hasAlpha: true });
    expect(probeImage(avif({ props: [box("colr", "prof", [0, 0, 0, 0])] }))).toMatchObject({ iccProfile: true });
    expect(probeImage(avif({ props: [box("colr", "nclx", [0, 1, 0, 13, 0, 6, 0x80])] }))).toMatchObject({ iccProfile: false });
    expect(probeImage(avif({ props: [box("av1C", [0x81, 0x08, 0x1c, 0])] }))).toMatchObject({ colorSpace: "gray" });
    expect(probeImage(avif({ itemType: "grid", width: 8000, height: 6000 }))).toMatchObject({ width: 8000, height: 6000 });
    expect(probeImage(avif({ brands: ["avis", "msf1", "avif"] }))).toMatchObject({ animated: true, frames: 1 });
  });

  it("maps irot/imir to EXIF orientation as libavif does", () => {
    // [irot, imir, orientation]: irot counts anti-clockwise quarter turns; imir 0 flips top-bottom, 1 left-right.
    const table: [number | undefined, number | undefined, number][] = [
      [undefined, undefined, 1],
      [undefined, 1, 2],
      [2, undefined, 3],
      [undefined, 0, 4],
      [1, 0, 5],
      [3, undefined, 6],
      [3, 0, 7],
      [1, undefined, 8],
      [1, 1, 7],
      [2, 0, 2],
      [2, 1, 4],
      [3, 1, 5],
      [0, undefined, 1],
    ];
    for (const [irot, imir, orientation] of table) {
      const props = [...(irot === undefined ? [] : [box("irot", [irot])]), ...(imir === undefined ? [] : [box("imir", [imir])])];
      expect(probeImage(avif({ props })).orientation, `irot ${irot} imir ${imir}`).toBe(orientation);
    }
  });

  it("refuses broken metadata with 422", () => {
    expect(problemOf(avif({ pitm: false })).detail).toMatch(/no primary item/);
    expect(problemOf(avif({ width: 0 })).detail).toMatch(/size of 0x32/);
    expect(problemOf(bytes(ftyp("avif", "mif1"), box("mdat", [0]))).detail).toMatch(/no metadata/);
    expect(problemOf(avif({ itemType: "jpeg" }))).toMatchObject({ status: 415 });
    const full = avif();
    expect(problemOf(full.subarray(0, 60)).status).toBe(422);
  });

  it("says when the metadata is not within the window", () => {
    const mdat = box("mdat", new Uint8Array(PROBE_WINDOW_BYTES));
    const data = bytes(ftyp("avif", "mif1"), mdat, avif().subarray(ftyp("avif", "mif1", "miaf").length));
    expect(problemOf(data).detail).toMatch(/not within the first 512 KiB/);
  });
});

// ---------------------------------------------------------------------------------------------
// Robustness: truncation at every length, random bytes, mutated headers.

const SWEEP_FILES = [
  "photo-small-aero1.jpg",
  "hostile-jpeg-65500x65500.jpg",
  "gen-orientation-6.jpg",
  "gen-1x1.jpg",
  "gen-1x1.png",
  "pngsuite-basn6a08.png",
  "gen-orientation-6.png",
  "gen-1x1.gif",
  "hostile-gif-65535x65535-screen.gif",
  "gen-animated.gif",
  "gen-1x1.webp",
  "gen-1x1-lossless.webp",
  "gen-animated.webp",
  "gen-orientation-6.webp",
  "gen-1x1.avif",
  "gen-alpha.avif",
  "avif-photo-kite.avif",
  "heic-photo-path.heic",
];

describe("truncated after every N of the first 320 bytes", () => {
  for (const file of SWEEP_FILES) {
    it(file, async () => {
      const full = await loadImage(file);
      const reference = outcome(full, 10_000_000);
      for (let n = 0; n <= Math.min(full.length, 320); n++) {
        for (const total of [n, 10_000_000]) {
          const viaSlice = outcome(full.slice(0, n), total);
          // A view into the bigger buffer must give the same answer: nothing past the view is read.
          expect(outcome(full.subarray(0, n), total), `${file} n=${n} total=${total}`).toEqual(viaSlice);
          if ("probe" in viaSlice) {
            if (!("probe" in reference)) throw new Error(`${file}: prefix ${n} probes but the whole file does not`);
            const { format, width, height } = reference.probe;
            expect(viaSlice.probe, `${file} n=${n}`).toMatchObject({ format, width, height });
          } else {
            expect([415, 422], `${file} n=${n}`).toContain(viaSlice.status);
          }
        }
      }
    });
  }
});

/** A probe result that makes sense, or a 415/422 ProblemError. */
function assertSane(data: Uint8Array, total?: number): void {
  const result = outcome(data, total);
  if ("probe" in result) {
    const { width, height, orientation, frames } = result.probe;
    expect(Number.isInteger(width) && width > 0 && Number.isInteger(height) && height > 0).toBe(true);
    expect(orientation >= 1 && orientation <= 8).toBe(true);
    expect(Number.isInteger(frames) && frames >= 1).toBe(true);
  } else {
    expect([415, 422]).toContain(result.status);
  }
}

describe("random input", () => {
  it("random bytes only ever give a ProblemError or a sane probe", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (data) => assertSane(data)),
      { numRuns: 3000 },
    );
  });

  const MAGICS: readonly Uint8Array[] = [
    bytes([0xff, 0xd8, 0xff]),
    bytes(PNG_SIG, u32be(13), "IHDR"),
    bytes("GIF89a"),
    bytes("RIFF", u32le(1000), "WEBPVP8X"),
    bytes("RIFF", u32le(1000), "WEBPVP8L"),
    bytes("RIFF", u32le(1000), "WEBPVP8 "),
    ftyp("avif", "mif1", "miaf"),
    bytes(ftyp("avif", "mif1", "miaf"), u32be(200), "meta", [0, 0, 0, 0]),
  ];
  it("a valid magic followed by random bytes only ever gives a ProblemError or a sane probe", () => {
    fc.assert(
      fc.property(fc.constantFrom(...MAGICS), fc.uint8Array({ maxLength: 1024 }), fc.boolean(), (magic, tail, partial) =>
        assertSane(bytes(magic, tail), partial ? 1e9 : undefined),
      ),
      { numRuns: 5000 },
    );
  });

  it("real headers with random bytes overwritten only ever give a ProblemError or a sane probe", async () => {
    const sources = await Promise.all(SWEEP_FILES.map(async (file) => (await loadImage(file)).slice(0, 4096)));
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: sources.length - 1 }),
        fc.array(fc.tuple(fc.nat(400), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        (index, edits) => {
          const data = (sources[index] ?? new Uint8Array(0)).slice();
          for (const [offset, value] of edits) if (offset < data.length) data[offset] = value;
          assertSane(data);
        },
      ),
      { numRuns: 5000 },
    );
  });

  it("a window of pathological bytes is probed without hanging", () => {
    const cases = [
      bytes([0xff, 0xd8], new Uint8Array(PROBE_WINDOW_BYTES).fill(0xff)),
      bytes([0xff, 0xd8, 0xff], new Uint8Array(PROBE_WINDOW_BYTES)),
      bytes("GIF89a", [1, 0, 1, 0, 0, 0, 0], new Uint8Array(PROBE_WINDOW_BYTES).fill(0x21)),
      bytes("RIFF", u32le(0), "WEBPVP8X", u32le(10), [0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0], new Uint8Array(PROBE_WINDOW_BYTES)),
    ];
    // workerd's clock stands still during synchronous code, so the test timeout is the bound here.
    for (const data of cases) assertSane(data);
  });
});
