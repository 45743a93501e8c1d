// Our own JPEG decoder (wasm/jpeg/jpeg.wasm through src/codecs/native-jpeg.ts) against sharp
// (libvips + libjpeg-turbo): pixels at 1/1 (PSNR >= 45 dB), sizes and pixels at 1/2, 1/4, 1/8,
// fuzzing (truncated, bit-flipped and crafted files). Decode time is not measured here: the
// bench (`npm run bench`) times our decode (shrink-on-load included) beside sharp's full decode.
//
// The wrapper statically imports the .wasm (a WebAssembly.Module under wrangler and in
// workerd), which Node cannot import: the import is mocked with a module compiled here, and
// the wrapper is loaded with a dynamic import so `tsc -p test/node` does not typecheck it (the
// `*.wasm` module declaration lives in the worker types). Its API is restated below.
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import sharp from "sharp";
import { decode as jpegJsDecode } from "jpeg-js";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { ProblemError } from "../../src/errors";
import { corpusFiles, readCorpus, readCorpusFile, readTestImage } from "./corpus";
import { mulberry32 } from "../mulberry32";

const WASM_PATH = resolve(import.meta.dirname, "../../wasm/jpeg/jpeg.wasm");

vi.mock("../../wasm/jpeg/jpeg.wasm", async () => {
  const fs = await import("node:fs");
  const path = await import("node:path");
  return { default: new WebAssembly.Module(fs.readFileSync(path.resolve(import.meta.dirname, "../../wasm/jpeg/jpeg.wasm"))) };
});

type ScaleShift = 0 | 1 | 2 | 3;
interface Probe {
  width: number;
  height: number;
  components: number;
  progressive: boolean;
  color: string;
  supported: boolean;
  reason?: string;
}
interface Decoded {
  width: number;
  height: number;
  data: Uint8ClampedArray;
  complete: boolean;
  release(): void;
}
interface NativeJpeg {
  probe(bytes: Uint8Array): Probe;
  decode(bytes: Uint8Array, scaleShift: ScaleShift, options?: { allowCorrupt?: boolean }): Decoded;
  memoryBytes(): number;
}
interface Wrapper {
  createNativeJpeg(module: WebAssembly.Module): NativeJpeg;
  chooseScaleShift(srcW: number, srcH: number, targetW: number, targetH: number): ScaleShift;
  probeNativeJpeg(bytes: Uint8Array): Probe;
  decodeNativeJpeg(bytes: Uint8Array, scaleShift: ScaleShift, options?: { allowCorrupt?: boolean }): Decoded;
  nativeJpegMemoryBytes(): number;
}

const WRAPPER_PATH: string = "../../src/codecs/native-jpeg";
let wrapper: Wrapper;
let jpeg: NativeJpeg;

beforeAll(async () => {
  wrapper = (await import(/* @vite-ignore */ WRAPPER_PATH)) as Wrapper;
  jpeg = wrapper.createNativeJpeg(new WebAssembly.Module(readFileSync(WASM_PATH)));
});

const isJpeg = (b: Uint8Array): boolean => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

function jpegCorpus(): { dir: string; names: string[] } {
  const { dir, names } = corpusFiles((n) => !n.startsWith("hostile-"));
  return { dir, names: names.filter((n) => isJpeg(readCorpusFile(dir, n))) };
}

/** PSNR over RGB of our RGBA against a reference with `channels` per pixel (3 or 4). */
function psnr(ours: Uint8ClampedArray, ref: Uint8Array, pixels: number, channels: number): number {
  let se = 0;
  for (let i = 0; i < pixels; i++) {
    for (let c = 0; c < 3; c++) {
      const d = (ours[i * 4 + c] ?? 0) - (ref[i * channels + c] ?? 0);
      se += d * d;
    }
  }
  const mse = se / (pixels * 3);
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/** Reference decode at 1/1: sharp without colour management (keepIccProfile), or jpeg-js for CMYK (the service's CMYK path; sharp applies a CMYK ICC profile instead of the naive formula). */
async function reference(bytes: Uint8Array, cmyk: boolean): Promise<{ width: number; height: number; data: Uint8Array; channels: number; by: string }> {
  if (cmyk) {
    const d = jpegJsDecode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP: 200, maxMemoryUsageInMB: 2048 });
    return { width: d.width, height: d.height, data: d.data, channels: 4, by: "jpeg-js" };
  }
  const { data, info } = await sharp(bytes, { failOn: "none" }).keepIccProfile().removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.length), channels: info.channels, by: "sharp" };
}

/** Box-average of a full decode down by 2^s (what a DCT-domain downscale approximates). */
function boxDown(ref: { width: number; height: number; data: Uint8Array; channels: number }, s: number): Uint8Array {
  const n = 1 << s;
  const w = Math.ceil(ref.width / n);
  const h = Math.ceil(ref.height / n);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        let k = 0;
        for (let dy = 0; dy < n && y * n + dy < ref.height; dy++) {
          for (let dx = 0; dx < n && x * n + dx < ref.width; dx++) {
            sum += ref.data[((y * n + dy) * ref.width + x * n + dx) * ref.channels + c] ?? 0;
            k++;
          }
        }
        out[(y * w + x) * 3 + c] = Math.round(sum / k);
      }
    }
  }
  return out;
}

describe("native JPEG decoder: pixels against sharp", () => {
  const { names } = jpegCorpus();
  const fixtureNames = ["jpegtran-restart-baseline.jpg", "jpegtran-restart-progressive.jpg", "gen-progressive.jpg", "gen-1x1.jpg"];
  const all = [...names, ...fixtureNames];

  it("decodes every corpus JPEG at 1/1 with PSNR >= 45 dB, and at 1/2, 1/4, 1/8 with the right size and PSNR >= 30 dB against a box-filtered reference", async () => {
    const rows: string[] = [];
    const failures: string[] = [];
    for (const name of all) {
      const bytes = await readTestImage(name);
      const probe = jpeg.probe(bytes);
      expect(probe.supported, `${name}: ${probe.reason ?? ""}`).toBe(true);
      const cmyk = probe.color === "cmyk" || probe.color === "ycck";
      const ref = await reference(bytes, cmyk);
      const cells: string[] = [];
      for (const s of [0, 1, 2, 3] as const) {
        const img = jpeg.decode(bytes, s);
        const w = Math.ceil(ref.width / 2 ** s);
        const h = Math.ceil(ref.height / 2 ** s);
        expect([img.width, img.height], `${name} at 1/${2 ** s}`).toEqual([w, h]);
        const p = s === 0 ? psnr(img.data, ref.data, w * h, ref.channels) : psnr(img.data, boxDown(ref, s), w * h, 3);
        img.release();
        cells.push(p === Infinity ? "inf" : p.toFixed(1));
        const min = s === 0 ? 45 : 30;
        if (!(p >= min)) failures.push(`${name} 1/${2 ** s}: ${p.toFixed(2)} dB < ${min}`);
      }
      rows.push(`${name.padEnd(42)} ${`${probe.width}x${probe.height}`.padEnd(10)} ${(probe.progressive ? "prog" : "base").padEnd(5)} ${probe.color.padEnd(6)} ${ref.by.padEnd(8)} ${cells.map((c) => c.padStart(6)).join(" ")}`);
    }
    console.log(`PSNR (dB) of the native decoder; 1/1 against the reference decode, 1/2..1/8 against its box-filtered reduction\n${"file".padEnd(42)} ${"size".padEnd(10)} ${"mode".padEnd(5)} ${"colour".padEnd(6)} ${"ref".padEnd(8)} ${["1/1", "1/2", "1/4", "1/8"].map((c) => c.padStart(6)).join(" ")}\n${rows.join("\n")}`);
    expect(failures).toEqual([]);
  });

  it("reports arithmetic-coded, lossless and 12-bit files as unsupported from the header (fallback)", () => {
    // A baseline file turned into SOF9 (arithmetic) and SOF3 (lossless) by its marker byte.
    const base = readCorpus("photo-small-aero1.jpg");
    const sof = findMarker(base, 0xc0);
    expect(sof).toBeGreaterThan(0);
    for (const [marker, reason] of [[0xc9, /arithmetic/], [0xc3, /lossless/]] as const) {
      const copy = base.slice();
      copy[sof + 1] = marker;
      const probe = jpeg.probe(copy);
      expect(probe.supported).toBe(false);
      expect(probe.reason).toMatch(reason);
      expect(probe.width).toBe(640);
    }
    const twelve = base.slice();
    twelve[sof + 4] = 12;
    expect(jpeg.probe(twelve)).toMatchObject({ supported: false, reason: expect.stringMatching(/precision/) });
  });

  it("chooses the largest power-of-two shrink that still covers the target", () => {
    expect(wrapper.chooseScaleShift(6536, 3676, 800, 450)).toBe(3);
    expect(wrapper.chooseScaleShift(4272, 2848, 800, 0)).toBe(2);
    expect(wrapper.chooseScaleShift(1600, 1000, 800, 500)).toBe(1);
    expect(wrapper.chooseScaleShift(1601, 1001, 801, 0)).toBe(1);
    expect(wrapper.chooseScaleShift(1599, 999, 801, 0)).toBe(0);
    expect(wrapper.chooseScaleShift(640, 480, 2000, 2000)).toBe(0);
    expect(wrapper.chooseScaleShift(8, 8, 1, 1)).toBe(3);
  });

  it("the default export instantiates the imported module lazily and hands out views into WASM memory", () => {
    const bytes = readCorpus("photo-small-aero1.jpg");
    expect(wrapper.nativeJpegMemoryBytes()).toBe(0);
    expect(wrapper.probeNativeJpeg(bytes)).toMatchObject({ width: 640, height: 480, supported: true, progressive: false, color: "ycbcr" });
    const img = wrapper.decodeNativeJpeg(bytes, 2);
    expect([img.width, img.height, img.data.length]).toEqual([160, 120, 160 * 120 * 4]);
    expect(wrapper.nativeJpegMemoryBytes()).toBeGreaterThan(0);
    img.release();
  });
});

function findMarker(b: Uint8Array, marker: number): number {
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const m = b[p + 1] ?? 0;
    if (m === marker) return p;
    if (m === 0xda) return -1;
    p += 2 + (((b[p + 2] ?? 0) << 8) | (b[p + 3] ?? 0));
  }
  return -1;
}

/** Offsets of marker segments before the first scan: [marker, offset of 0xFF, segment end]. */
function segments(b: Uint8Array): [number, number, number][] {
  const out: [number, number, number][] = [];
  let p = 2;
  while (p + 4 <= b.length && b[p] === 0xff) {
    const m = b[p + 1] ?? 0;
    const end = p + 2 + (((b[p + 2] ?? 0) << 8) | (b[p + 3] ?? 0));
    out.push([m, p, Math.min(end, b.length)]);
    if (m === 0xda) break;
    p = end;
  }
  return out;
}

/** Deterministic PRNG so failures can be replayed. */
const rng = mulberry32;

function mutate(src: Uint8Array, rand: () => number): { bytes: Uint8Array; what: string } {
  const int = (n: number): number => Math.floor(rand() * n);
  const segs = segments(src);
  const headerEnd = segs.length > 0 ? (segs[segs.length - 1]?.[2] ?? 2) : 2;
  const b = src.slice();
  const kind = int(8);
  switch (kind) {
    case 0: {
      const cut = 2 + int(src.length - 2);
      return { bytes: src.slice(0, cut), what: `truncate at ${cut}` };
    }
    case 1: {
      const n = 1 + int(8);
      for (let i = 0; i < n; i++) {
        const at = int(b.length);
        b[at] = (b[at] ?? 0) ^ (1 << int(8));
      }
      return { bytes: b, what: `${n} bit flips` };
    }
    case 2: {
      const n = 1 + int(4);
      for (let i = 0; i < n; i++) b[2 + int(headerEnd - 2)] = int(256);
      return { bytes: b, what: `${n} random header bytes` };
    }
    case 3: {
      const sof = segs.find(([m]) => m >= 0xc0 && m <= 0xc2);
      if (!sof) return { bytes: b, what: "no SOF" };
      const p = sof[1] + 5;
      const choice = int(4);
      const dims = [0, 1, 7, 8, 9, 15, 16, 17, 255, 4095, 16384, 65535];
      if (choice === 0) { b[p] = int(256); b[p + 1] = int(256); }
      else if (choice === 1) { const d = dims[int(dims.length)] ?? 0; b[p + 2] = d >> 8; b[p + 3] = d & 255; }
      else if (choice === 2) { const d = dims[int(dims.length)] ?? 0; b[p] = d >> 8; b[p + 1] = d & 255; }
      else { b[p + 4] = int(6); }
      return { bytes: b, what: `SOF geometry (${choice})` };
    }
    case 4: {
      const sof = segs.find(([m]) => m >= 0xc0 && m <= 0xc2);
      if (!sof) return { bytes: b, what: "no SOF" };
      const ncomp = b[sof[1] + 9] ?? 0;
      const c = int(Math.max(1, ncomp));
      const at = sof[1] + 10 + 3 * c + 1;
      const samplings = [0x00, 0x01, 0x10, 0x11, 0x12, 0x21, 0x22, 0x33, 0x44, 0x41, 0x14, 0xff];
      b[at] = samplings[int(samplings.length)] ?? 0;
      if (rand() < 0.3) b[at + 1] = int(6);
      return { bytes: b, what: `sampling/quant selector of component ${c}` };
    }
    case 5: {
      const dhts = segs.filter(([m]) => m === 0xc4);
      const dht = dhts[int(dhts.length)];
      if (!dht) return { bytes: b, what: "no DHT" };
      const n = 1 + int(3);
      for (let i = 0; i < n; i++) {
        const at = dht[1] + 4 + int(Math.min(17, dht[2] - dht[1] - 4));
        b[at] = rand() < 0.5 ? int(256) : 0xff;
      }
      return { bytes: b, what: "bad Huffman table" };
    }
    case 6: {
      const sos = segs.find(([m]) => m === 0xda);
      if (!sos) return { bytes: b, what: "no SOS" };
      const at = sos[1] + 4 + int(sos[2] - sos[1] - 4);
      b[at] = int(256);
      return { bytes: b, what: "SOS header byte" };
    }
    default: {
      // random bytes in the scan data, including 0xFF markers
      const n = 1 + int(16);
      for (let i = 0; i < n; i++) b[headerEnd + int(Math.max(1, b.length - headerEnd))] = rand() < 0.3 ? 0xff : int(256);
      return { bytes: b, what: `${n} scan bytes` };
    }
  }
}

describe("native JPEG decoder: fuzzing", () => {
  const seeds = [
    "jpegtran-restart-baseline.jpg",
    "jpegtran-restart-progressive.jpg",
    "gen-progressive.jpg",
    "photo-small-aero1.jpg",
    "jpeg-grayscale-grey.jpg",
  ];

  it("never traps, hangs or throws anything but a 4xx ProblemError on mutated files (300 per seed)", async () => {
    // Extra seeds made with sharp: progressive 4:4:4 and baseline 4:2:0 of odd sizes.
    const photo = readCorpus("photo-small-fruits.jpg");
    const made = [
      new Uint8Array(await sharp(photo).resize(77, 51).jpeg({ progressive: true, chromaSubsampling: "4:4:4", quality: 90 }).toBuffer()),
      new Uint8Array(await sharp(photo).resize(45, 83).jpeg({ progressive: false, chromaSubsampling: "4:2:0", quality: 70 }).toBuffer()),
    ];
    const inputs = [...(await Promise.all(seeds.map(readTestImage))), ...made];
    const counts = { ok: 0, partial: 0, rejected: 0 };
    const statuses = new Map<number, number>();
    let slowest = 0;
    for (const [si, seed] of inputs.entries()) {
      const rand = rng(1000 + si);
      for (let i = 0; i < 300; i++) {
        const { bytes, what } = mutate(seed, rand);
        const shift = Math.floor(rand() * 4) as ScaleShift;
        const allowCorrupt = rand() < 0.5;
        const started = performance.now();
        try {
          const probe = jpeg.probe(bytes);
          if (probe.supported && probe.width * probe.height <= 50_000_000) {
            const img = jpeg.decode(bytes, shift, { allowCorrupt });
            expect(img.data.length).toBe(img.width * img.height * 4);
            if (img.complete) counts.ok++;
            else counts.partial++;
            img.release();
          } else {
            counts.rejected++;
          }
        } catch (err) {
          if (!(err instanceof ProblemError) || err.status < 400 || err.status >= 500) {
            throw new Error(`seed ${si} mutation ${i} (${what}, shift ${shift}): ${String(err)}`, { cause: err });
          }
          counts.rejected++;
          statuses.set(err.status, (statuses.get(err.status) ?? 0) + 1);
        }
        const ms = performance.now() - started;
        slowest = Math.max(slowest, ms);
        expect(ms, `seed ${si} mutation ${i} (${what}) took ${ms.toFixed(0)} ms`).toBeLessThan(3000);
      }
    }
    console.log(`fuzz: ${inputs.length * 300} mutated files: ${counts.ok} decoded, ${counts.partial} decoded partially (allowCorrupt), ${counts.rejected} rejected (${[...statuses].map(([s, n]) => `${n}x ${s}`).join(", ")}); slowest ${slowest.toFixed(0)} ms`);
  });

  it("rejects the hostile corpus files with a 4xx, and truncated files unless allowCorrupt", () => {
    const { dir, names } = corpusFiles((n) => n.startsWith("hostile-") && n.endsWith(".jpg"));
    for (const name of names) {
      const bytes = readCorpusFile(dir, name);
      let outcome: string;
      try {
        const probe = jpeg.probe(bytes);
        if (!probe.supported || probe.width * probe.height > 100_000_000) outcome = `refused by probe (${probe.width}x${probe.height})`;
        else {
          const img = jpeg.decode(bytes, 0);
          outcome = `decoded ${img.width}x${img.height}`;
          img.release();
        }
      } catch (err) {
        expect(err).toBeInstanceOf(ProblemError);
        outcome = `${(err as ProblemError).status} ${(err as ProblemError).message}`;
      }
      console.log(`${name}: ${outcome}`);
      if (name === "hostile-php-in-exif.jpg") expect(outcome).toMatch(/^decoded/);
      else expect(outcome).not.toMatch(/^decoded/);
    }
    const truncated = readCorpusFile(dir, "hostile-truncated.jpg");
    if (truncated.length > 0 && isJpeg(truncated)) {
      const img = jpeg.decode(truncated, 1, { allowCorrupt: true });
      expect(img.complete).toBe(false);
      expect([img.width, img.height]).toEqual([1280, 800]);
      img.release();
    }
  });
});
