// Our own baseline JPEG encoder (wasm/jpeg/encode.c through NativeSession.encodeJpeg in
// src/codecs/native.ts), decoded by sharp (libvips + libjpeg-turbo, an independent decoder):
// structure (baseline JFIF, chroma sampling by quality), sizes 1x1 .. 65535, solid colours,
// photos against mozjpeg (the @jsquash build the service used before, same settings) at equal
// quality for PSNR and file size, and argument checks. Encode time is not measured here: the
// bench (`npm run bench`, op jpeg200: a 200 px JPEG thumbnail) times the encode step.
//
// As in native-jpeg.test.ts, the module's static `.wasm` import is mocked with a module compiled
// here and the wrapper is loaded with a dynamic import (its types are restated below).
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import sharp from "sharp";
import mozjpegFactory from "@jsquash/jpeg/codec/enc/mozjpeg_enc.js";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { corpusPath } from "./corpus";
import { decodeRgba, maxAbsDiff, noise, psnr, ssim, synthesize, type RawImage } from "./image-compare";

const WASM_PATH = resolve(import.meta.dirname, "../../wasm/jpeg/jpeg.wasm");

vi.mock("../../wasm/jpeg/jpeg.wasm", async () => {
  const fs = await import("node:fs");
  const path = await import("node:path");
  return { default: new WebAssembly.Module(fs.readFileSync(path.resolve(import.meta.dirname, "../../wasm/jpeg/jpeg.wasm"))) };
});

interface RgbaImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8ClampedArray;
  readonly hasAlpha: boolean;
}
interface Session {
  encodeJpeg(image: RgbaImage, quality: number): Uint8Array;
  probeJpeg(bytes: Uint8Array): unknown;
  decodeJpeg(shift: 0): RgbaImage;
  release(): void;
}
interface Native {
  createNativePool(module: WebAssembly.Module): { open(): Session };
}

/** The raw exports the encoder adds to the module (for argument checks below the wrapper). */
interface EncoderExports {
  readonly memory: WebAssembly.Memory;
  alloc(n: number): number;
  reset(): void;
  jpeg_encode(rgba: number, width: number, height: number, quality: number): number;
  jpeg_encoded_size(): number;
  jpeg_encode_status(): number;
}

const NATIVE_PATH: string = "../../src/codecs/native";
let pool: { open(): Session };

beforeAll(async () => {
  const native = (await import(/* @vite-ignore */ NATIVE_PATH)) as Native;
  pool = native.createNativePool(new WebAssembly.Module(readFileSync(WASM_PATH)));
});

/** Our own decoder (jpeg.c), for sizes sharp refuses. */
async function decodeOurs(bytes: Uint8Array): Promise<RawImage> {
  const session = pool.open();
  try {
    session.probeJpeg(bytes);
    const image = session.decodeJpeg(0);
    return { width: image.width, height: image.height, data: new Uint8Array(image.data) };
  } finally {
    session.release();
  }
}

function encodeOurs(image: RawImage, quality: number): Uint8Array {
  const session = pool.open();
  try {
    return session.encodeJpeg({ width: image.width, height: image.height, data: new Uint8ClampedArray(image.data), hasAlpha: false }, quality);
  } finally {
    session.release();
  }
}

// mozjpeg as src/codecs/jpeg.ts runs it (JPEG_OPTIONS, baseline: outputs up to 0.5 MP).
interface MozJpegModule {
  encode(data: Uint8Array, width: number, height: number, options: Record<string, number | boolean>): Uint8Array;
}
type EmscriptenFactory = (options: {
  noInitialRun: boolean;
  instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => WebAssembly.Exports;
}) => Promise<MozJpegModule>;
const MOZJPEG_OPTIONS = {
  baseline: false, arithmetic: false, progressive: false, optimize_coding: true, smoothing: 0, color_space: 3, quant_table: 3,
  trellis_multipass: false, trellis_opt_zero: false, trellis_opt_table: false, trellis_loops: 1, auto_subsample: true,
  chroma_subsample: 2, separate_chroma_quality: false,
};
let mozjpeg: MozJpegModule | undefined;
async function encodeMozjpeg(image: RawImage, quality: number): Promise<Uint8Array> {
  if (mozjpeg === undefined) {
    const bytes = readFileSync(resolve(import.meta.dirname, "../../node_modules/@jsquash/jpeg/codec/enc/mozjpeg_enc.wasm"));
    const module = new WebAssembly.Module(bytes);
    mozjpeg = await (mozjpegFactory as unknown as EmscriptenFactory)({
      noInitialRun: true,
      instantiateWasm: (imports, done) => {
        const instance = new WebAssembly.Instance(module, imports);
        done(instance);
        return instance.exports;
      },
    });
  }
  return mozjpeg.encode(image.data, image.width, image.height, { ...MOZJPEG_OPTIONS, quality, chroma_quality: quality });
}

/** Marker segments up to SOS, with their payloads. */
function segments(bytes: Uint8Array): { marker: number; body: Uint8Array }[] {
  expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8]);
  const out: { marker: number; body: Uint8Array }[] = [];
  let p = 2;
  while (p + 4 <= bytes.length) {
    expect(bytes[p], `marker at ${p}`).toBe(0xff);
    const marker = bytes[p + 1]!;
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    out.push({ marker, body: bytes.subarray(p + 4, p + 2 + length) });
    p += 2 + length;
    if (marker === 0xda) break;
  }
  return out;
}

/** Luma sampling factors (h, v) and size from the frame header (SOF0 unless `markers` says). */
function frame(bytes: Uint8Array, markers: readonly number[] = [0xc0]): { width: number; height: number; components: number; h: number; v: number } {
  const sof = segments(bytes).find((s) => markers.includes(s.marker));
  if (sof === undefined) throw new Error(`no frame header among ${markers.join(", ")}`);
  const b = sof.body;
  return { height: (b[1]! << 8) | b[2]!, width: (b[3]! << 8) | b[4]!, components: b[5]!, h: b[7]! >> 4, v: b[7]! & 15 };
}

/** Smooth colour gradients with some edges: content a JPEG encodes well at any size. */
function gradient(width: number, height: number): RawImage {
  return synthesize(width, height, (x, y) => {
    const u = width > 1 ? x / (width - 1) : 0.5;
    const v = height > 1 ? y / (height - 1) : 0.5;
    const edge = (Math.floor(x / 7) + Math.floor(y / 5)) % 2 === 0 ? 20 : 0;
    return [Math.round(40 + 160 * u) + edge, Math.round(200 - 150 * v), Math.round(100 + 100 * u * v), 255];
  });
}

/** The top-left `width` x `height` pixels. */
function crop(image: RawImage, width: number, height: number): RawImage {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) data.set(image.data.subarray(y * image.width * 4, (y * image.width + width) * 4), y * width * 4);
  return { width, height, data };
}

async function photo(name: string, width: number): Promise<RawImage> {
  return decodeRgba(sharp(corpusPath(name)).rotate().resize({ width, withoutEnlargement: true }));
}

describe("native JPEG encoder: file structure", () => {
  it("writes baseline JFIF: SOI, APP0, DQT, SOF0, DHT, SOS, entropy data, EOI; no restart markers", async () => {
    const bytes = encodeOurs(gradient(200, 150), 80);
    expect(segments(bytes).map((s) => s.marker)).toEqual([0xe0, 0xdb, 0xc0, 0xc4, 0xda]);
    expect(new TextDecoder().decode(segments(bytes)[0]!.body.subarray(0, 4))).toBe("JFIF");
    expect([bytes[bytes.length - 2], bytes[bytes.length - 1]]).toEqual([0xff, 0xd9]);
    // Every 0xFF inside the entropy-coded data is stuffed (followed by 0x00): no markers there.
    const sosAt = bytes.findIndex((b, i) => b === 0xff && bytes[i + 1] === 0xda);
    const dataStart = sosAt + 2 + ((bytes[sosAt + 2]! << 8) | bytes[sosAt + 3]!);
    for (let i = dataStart; i < bytes.length - 2; i++) {
      if (bytes[i] === 0xff) expect(bytes[i + 1], `byte after 0xFF at ${i}`).toBe(0x00);
    }
    const { info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([200, 150, 3]);
  });

  it("picks the chroma sampling as mozjpeg's auto_subsample does: 4:2:0 below q80, 4:2:2 up to q89, 4:4:4 from q90", async () => {
    const image = gradient(64, 48);
    for (const [quality, h, v] of [[1, 2, 2], [50, 2, 2], [79, 2, 2], [80, 2, 1], [89, 2, 1], [90, 1, 1], [100, 1, 1]] as const) {
      const ours = frame(encodeOurs(image, quality));
      // mozjpeg writes SOF1 (extended) where its tables exceed 8 bits, below about q60.
      const theirs = frame(await encodeMozjpeg(image, quality), [0xc0, 0xc1]);
      expect({ quality, h: ours.h, v: ours.v, components: ours.components }).toEqual({ quality, h, v, components: 3 });
      expect({ quality, h: theirs.h, v: theirs.v }).toEqual({ quality, h, v });
    }
  });
});

describe("native JPEG encoder: pixels (decoded by sharp)", () => {
  it("encodes odd sizes with the right dimensions and a PSNR at most 1.5 dB below mozjpeg's (or at least 40 dB) on synthetic edges (MCU padding replicates the edges)", async () => {
    const rows: string[] = [];
    for (const [width, height] of [[1, 1], [1, 9], [9, 1], [15, 17], [16, 16], [17, 8], [1000, 3], [3, 1000], [33, 31]] as const) {
      const source = gradient(width, height);
      for (const quality of [50, 80, 95]) {
        const bytes = encodeOurs(source, quality);
        const decoded = await decodeRgba(bytes);
        expect([decoded.width, decoded.height], `${width}x${height} q${quality}`).toEqual([width, height]);
        const db = psnr(decoded, source);
        const dbMozjpeg = psnr(await decodeRgba(await encodeMozjpeg(source, quality)), source);
        rows.push(`${`${width}x${height}`.padEnd(8)} q${quality}: ${String(bytes.length).padStart(5)} B, ${db.toFixed(1)} dB (mozjpeg ${dbMozjpeg.toFixed(1)} dB)`);
        expect(db, `${width}x${height} q${quality}`).toBeGreaterThanOrEqual(Math.min(dbMozjpeg - 1.5, 40));
      }
    }
    console.log(`Odd sizes (colour gradients with a checker pattern), PSNR against the source:\n${rows.join("\n")}`);
  });

  it("keeps solid colours within +-2 from quality 75 (+-3 at 50, whose DC step is 18)", async () => {
    const colours = [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128], [12, 200, 99], [250, 5, 250]] as const;
    for (const [width, height] of [[1, 1], [7, 5], [16, 16], [37, 21]] as const) {
      for (const [r, g, b] of colours) {
        for (const quality of [50, 75, 80, 90, 95, 100]) {
          const bytes = encodeOurs(synthesize(width, height, () => [r, g, b, 255]), quality);
          const decoded = await decodeRgba(bytes);
          let worst = 0;
          for (let i = 0; i < decoded.data.length; i += 4) {
            worst = Math.max(worst, Math.abs(decoded.data[i]! - r), Math.abs(decoded.data[i + 1]! - g), Math.abs(decoded.data[i + 2]! - b));
          }
          expect(worst, `rgb(${r},${g},${b}) ${width}x${height} q${quality}`).toBeLessThanOrEqual(quality >= 75 ? 2 : 3);
        }
      }
    }
  });

  it("encodes grey input as three components whose decode stays grey", async () => {
    const grey = synthesize(120, 80, (x, y) => {
      const v = (x * 2 + y) % 256;
      return [v, v, v, 255];
    });
    const bytes = encodeOurs(grey, 80);
    expect(frame(bytes).components).toBe(3);
    const decoded = await decodeRgba(bytes);
    let spread = 0;
    for (let i = 0; i < decoded.data.length; i += 4) {
      spread = Math.max(spread, Math.abs(decoded.data[i]! - decoded.data[i + 1]!), Math.abs(decoded.data[i + 2]! - decoded.data[i + 1]!));
    }
    expect(spread).toBeLessThanOrEqual(2);
    expect(psnr(decoded, grey)).toBeGreaterThan(35);
  });

  it("ignores alpha", async () => {
    const opaque = gradient(40, 30);
    const translucent: RawImage = { ...opaque, data: opaque.data.map((v, i) => (i % 4 === 3 ? (i * 7) % 256 : v)) };
    expect(encodeOurs(translucent, 80)).toEqual(encodeOurs(opaque, 80));
  });

  it("handles the largest sides (65535; sharp reads up to 65500) and noise at quality 100 (the largest output per pixel)", async () => {
    for (const [width, height] of [[65500, 2], [2, 65500]] as const) {
      const source = gradient(width, height);
      const decoded = await decodeRgba(encodeOurs(source, 90));
      expect([decoded.width, decoded.height]).toEqual([width, height]);
      expect(psnr(decoded, source)).toBeGreaterThan(30);
    }
    // 65535: the frame header says so, and our own decoder reads it back.
    for (const [width, height] of [[65535, 3], [3, 65535]] as const) {
      const source = gradient(width, height);
      const bytes = encodeOurs(source, 90);
      expect(frame(bytes)).toMatchObject({ width, height });
      const decoded = await decodeOurs(bytes);
      expect(psnr(decoded, source)).toBeGreaterThan(30);
    }
    const rough = noise(301, 203);
    const bytes = encodeOurs(rough, 100);
    const decoded = await decodeRgba(bytes);
    expect(psnr(decoded, rough)).toBeGreaterThan(40);
    console.log(`Noise 301x203 at q100: ${bytes.length} B (${(bytes.length / (301 * 203)).toFixed(2)} B/px)`);
  });

  it("recomputes the blocks in its second pass when keeping them would take over 16 MiB, to the same pixels", async () => {
    // 2400x2400 at q95 (4:4:4) needs 33 MiB of coefficients: the recomputing path. Its top-left
    // 1200x1200 (whole blocks, 8 MiB: the keeping path) must decode to exactly the same pixels
    // when encoded on its own, since blocks are quantised independently.
    const big = gradient(2400, 2400);
    const bytes = encodeOurs(big, 95);
    const decoded = await decodeRgba(bytes);
    expect([decoded.width, decoded.height]).toEqual([2400, 2400]);
    expect(psnr(decoded, big)).toBeGreaterThan(38);
    const corner = crop(big, 1200, 1200);
    const alone = await decodeRgba(encodeOurs(corner, 95));
    expect(maxAbsDiff(crop(decoded, 1200, 1200), alone)).toBe(0);
  });
});

describe("native JPEG encoder: arguments", () => {
  it("refuses bad arguments through the session (RangeError) and the raw export (status -8, no output)", async () => {
    const image = gradient(8, 8);
    const session = pool.open();
    try {
      const rgba = { width: 8, height: 8, data: new Uint8ClampedArray(image.data), hasAlpha: false };
      for (const quality of [0, 101, 50.5, Number.NaN]) expect(() => session.encodeJpeg(rgba, quality), `quality ${quality}`).toThrow(RangeError);
      expect(() => session.encodeJpeg({ ...rgba, width: 9 }, 80)).toThrow(RangeError);
    } finally {
      session.release();
    }
    const x = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(WASM_PATH)), {}).exports as unknown as EncoderExports;
    const ptr = x.alloc(64 * 4);
    for (const [w, h, q, p] of [[0, 8, 80, ptr], [8, 0, 80, ptr], [65536, 1, 80, ptr], [8, 8, 0, ptr], [8, 8, 101, ptr], [8, 8, 80, 0], [8, 8, 80, x.memory.buffer.byteLength - 16]] as const) {
      expect(x.jpeg_encode(p, w, h, q), `${w}x${h} q${q} at ${p}`).toBe(0);
      expect(x.jpeg_encode_status()).toBe(-8);
    }
    expect(x.jpeg_encode(ptr, 8, 8, 80)).toBeGreaterThan(0);
    expect(x.jpeg_encode_status()).toBe(0);
    expect(x.jpeg_encoded_size()).toBeGreaterThan(100);
  });
});

describe("native JPEG encoder against mozjpeg (the encoder it replaces for baseline outputs)", () => {
  const PHOTOS = ["photo-small-aero1.jpg", "photo-medium-storm.jpg", "photo-small-fruits.jpg", "jpeg-gps-real-colorfulcups.jpg", "webp-lossy-photo-bythewater.webp", "jpeg-icc-adobergb.jpg"];
  // Resized: a photo narrower than a width skips it (re-encoding a JPEG on its own block grid
  // favours tables shaped like its own, a different question).
  const WIDTHS = [200, 400, 700];
  const QUALITIES = [50, 80, 95];

  it("gives photos (200..700 px) at q50/80/95 a PSNR at most 1 dB below mozjpeg's and a size within 25% of its (geometric mean within 10%)", async () => {
    const rows: string[] = [];
    const failures: string[] = [];
    const logRatios = new Map<number, number[]>();
    for (const name of PHOTOS) {
      for (const width of WIDTHS) {
        const { width: photoWidth = 0 } = await sharp(corpusPath(name)).metadata();
        if (photoWidth <= width) continue;
        const source = await photo(name, width);
        for (const quality of QUALITIES) {
          const ours = encodeOurs(source, quality);
          const theirs = await encodeMozjpeg(source, quality);
          const decodedOurs = await decodeRgba(ours);
          expect([decodedOurs.width, decodedOurs.height]).toEqual([source.width, source.height]);
          const dbOurs = psnr(decodedOurs, source);
          const dbTheirs = psnr(await decodeRgba(theirs), source);
          const ssimOurs = ssim(decodedOurs, source);
          const ratio = ours.length / theirs.length;
          (logRatios.get(quality) ?? logRatios.set(quality, []).get(quality)!).push(Math.log(ratio));
          rows.push(
            `${`${name} ${source.width}x${source.height}`.padEnd(46)} q${quality}  ${String(ours.length).padStart(7)} ${String(theirs.length).padStart(7)} ${`${((ratio - 1) * 100).toFixed(1)}%`.padStart(7)}  ${dbOurs.toFixed(2).padStart(6)} ${dbTheirs.toFixed(2).padStart(6)} ${(dbOurs - dbTheirs).toFixed(2).padStart(6)}  ${ssimOurs.toFixed(4)}`,
          );
          if (dbOurs < dbTheirs - 1) failures.push(`${name} ${width} q${quality}: ${dbOurs.toFixed(2)} dB vs mozjpeg ${dbTheirs.toFixed(2)} dB`);
          if (ratio > 1.25 || ratio < 0.75) failures.push(`${name} ${width} q${quality}: ${ours.length} B vs mozjpeg ${theirs.length} B`);
        }
      }
    }
    const summary = QUALITIES.map((q) => {
      const logs = logRatios.get(q) ?? [];
      const mean = Math.exp(logs.reduce((s, v) => s + v, 0) / logs.length);
      if (mean > 1.1 || mean < 0.9) failures.push(`q${q}: mean size ratio ${mean.toFixed(3)}`);
      return `q${q}: ours/mozjpeg size ${((mean - 1) * 100).toFixed(1)}% (geometric mean of ${logs.length})`;
    });
    console.log(
      `Ours vs mozjpeg baseline (same quality; PSNR over RGB against the source, decoded by sharp)\n${"photo".padEnd(46)} q    ours B   moz B    size    ours    moz     dB   ours SSIM\n${rows.join("\n")}\n${summary.join("\n")}`,
    );
    expect(failures).toEqual([]);
  });
});
