/**
 * The forward DCT and quantiser of our JPEG encoder (wasm/jpeg/encode.c) against T.81 A.3.3's
 * formula evaluated directly (the O(n^4) double sum per block, in double precision). The file
 * is read back here to its quantised coefficients (DQT, DHT and the Huffman-coded scan, T.81
 * F.2.2), so every coefficient of every block is compared with F(u, v) / Q(u, v): it must be
 * that value rounded to nearest, within the float error of the encoder (a few thousandths).
 * Quality 90 and above give 4:4:4, so the chroma blocks are unaveraged pixels too.
 */
import { describe, expect, it } from "vitest";
import { encodeNativeJpeg } from "../../src/codecs/native";
import type { RgbaImage } from "../../src/codecs/types";
import { mulberry32 } from "../mulberry32";
import { synthetic, type Px } from "./image-helpers";

/** Zigzag position -> natural index (row * 8 + column), walking the anti-diagonals (T.81 Figure A.6). */
const ZIGZAG: number[] = [];
for (let diagonal = 0; diagonal < 15; diagonal++) {
  const rows: number[] = [];
  for (let row = 0; row < 8; row++) if (diagonal - row >= 0 && diagonal - row < 8) rows.push(row);
  if (diagonal % 2 === 0) rows.reverse(); // even diagonals run from bottom-left to top-right
  for (const row of rows) ZIGZAG.push(row * 8 + diagonal - row);
}

interface HuffmanTable {
  /** "length:code" -> symbol. */
  readonly codes: Map<string, number>;
}

interface Scan {
  /** Quantisation table (natural order) per component. */
  readonly quant: number[][];
  /** Per component, its blocks in scan order, coefficients in natural order. */
  readonly blocks: number[][][];
}

/** The quantised coefficients of a baseline 4:4:4 file (each MCU: one block per component) of `blockCount` MCUs. */
function readCoefficients(bytes: Uint8Array, blockCount: number): Scan {
  const tables = new Map<number, number[]>();
  const huffman = new Map<number, HuffmanTable>(); // class << 4 | id
  const quantOf: number[] = [];
  const tablesOf: { dc: number; ac: number }[] = [];
  let p = 2;
  for (;;) {
    expect(bytes[p]).toBe(0xff);
    const marker = bytes[p + 1]!;
    const length = (bytes[p + 2]! << 8) | bytes[p + 3]!;
    const body = bytes.subarray(p + 4, p + 2 + length);
    p += 2 + length;
    if (marker === 0xdb) {
      for (let i = 0; i < body.length; i += 65) {
        const natural = new Array<number>(64);
        for (let k = 0; k < 64; k++) natural[ZIGZAG[k]!] = body[i + 1 + k]!;
        tables.set(body[i]! & 15, natural);
      }
    } else if (marker === 0xc0) {
      for (let c = 0; c < body[5]!; c++) {
        expect(body[7 + c * 3]).toBe(0x11); // 4:4:4
        quantOf.push(body[8 + c * 3]!);
      }
    } else if (marker === 0xc4) {
      for (let i = 0; i < body.length; ) {
        const codes = new Map<string, number>();
        let code = 0;
        let v = i + 17;
        for (let len = 1; len <= 16; len++) {
          for (let n = 0; n < body[i + len]!; n++) codes.set(`${len}:${code++}`, body[v++]!);
          code <<= 1;
        }
        huffman.set(body[i]!, { codes });
        i = v;
      }
    } else if (marker === 0xda) {
      for (let c = 0; c < body[0]!; c++) tablesOf.push({ dc: body[2 + c * 2]! >> 4, ac: body[2 + c * 2]! & 15 });
      break;
    }
  }

  // Entropy-coded data, unstuffed (0xFF 0x00 -> 0xFF), up to EOI.
  const data: number[] = [];
  for (; p < bytes.length; p++) {
    if (bytes[p] === 0xff) {
      if (bytes[p + 1] !== 0x00) break;
      p++; // the stuffed zero
      data.push(0xff);
    } else {
      data.push(bytes[p]!);
    }
  }
  let bit = 0;
  const readBit = (): number => {
    const b = data[bit >> 3];
    if (b === undefined) throw new Error("scan data ends inside a block");
    return (b >> (7 - (bit++ & 7))) & 1;
  };
  const decode = (table: HuffmanTable): number => {
    let code = 0;
    for (let len = 1; len <= 16; len++) {
      code = (code << 1) | readBit();
      const symbol = table.codes.get(`${len}:${code}`);
      if (symbol !== undefined) return symbol;
    }
    throw new Error("no Huffman code matches");
  };
  // F.2.2.1: `size` extra bits, values below 2^(size-1) stand for negative ones.
  const receiveExtend = (size: number): number => {
    let value = 0;
    for (let i = 0; i < size; i++) value = (value << 1) | readBit();
    return size > 0 && value < 1 << (size - 1) ? value - (1 << size) + 1 : value;
  };

  const components = tablesOf.length;
  const blocks: number[][][] = Array.from({ length: components }, () => []);
  const previousDc = new Array<number>(components).fill(0);
  for (let b = 0; b < blockCount; b++) {
    for (let c = 0; c < components; c++) {
      const dcTable = huffman.get(tablesOf[c]!.dc)!;
      const acTable = huffman.get(0x10 | tablesOf[c]!.ac)!;
      const block = new Array<number>(64).fill(0);
      previousDc[c]! += receiveExtend(decode(dcTable));
      block[0] = previousDc[c]!;
      for (let k = 1; k < 64; ) {
        const rs = decode(acTable);
        const run = rs >> 4;
        const size = rs & 15;
        if (size === 0) {
          if (run === 15) {
            k += 16;
            continue;
          }
          break; // end of block
        }
        k += run;
        block[ZIGZAG[k]!] = receiveExtend(size);
        k++;
      }
      blocks[c]!.push(block);
    }
  }
  return { quant: quantOf.map((id) => tables.get(id)!), blocks };
}

/** JFIF's full-range YCbCr of a pixel, level-shifted (Y - 128; Cb, Cr centred on 0). */
function ycc(r: number, g: number, b: number): [number, number, number] {
  return [
    0.299 * r + 0.587 * g + 0.114 * b - 128,
    -0.168735892 * r - 0.331264108 * g + 0.5 * b,
    0.5 * r - 0.418687589 * g - 0.081312411 * b,
  ];
}

/** T.81 A.3.3, term by term: F(u, v) of samples s[y * 8 + x]; result in natural order (v * 8 + u). */
function referenceDct(s: readonly number[]): number[] {
  const out = new Array<number>(64);
  for (let v = 0; v < 8; v++) {
    for (let u = 0; u < 8; u++) {
      let sum = 0;
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) sum += s[y * 8 + x]! * Math.cos(((2 * x + 1) * u * Math.PI) / 16) * Math.cos(((2 * y + 1) * v * Math.PI) / 16);
      }
      out[v * 8 + u] = (0.25 * (u === 0 ? Math.SQRT1_2 : 1) * (v === 0 ? Math.SQRT1_2 : 1)) * sum;
    }
  }
  return out;
}

/** Worst |coefficient - F / Q| over every block and component of `image` encoded at `quality`. */
function worstError(image: RgbaImage, quality: number): { worst: number; where: string; largest: number } {
  const blockCount = image.width / 8;
  const scan = readCoefficients(encodeNativeJpeg(image, quality), blockCount);
  let worst = 0;
  let where = "";
  let largest = 0;
  for (let b = 0; b < blockCount; b++) {
    const planes: number[][] = [[], [], []];
    for (let y = 0; y < 8; y++) {
      for (let x = 0; x < 8; x++) {
        const i = (y * image.width + b * 8 + x) * 4;
        const values = ycc(image.data[i]!, image.data[i + 1]!, image.data[i + 2]!);
        for (let c = 0; c < 3; c++) planes[c]!.push(values[c]!);
      }
    }
    for (let c = 0; c < 3; c++) {
      const exact = referenceDct(planes[c]!);
      const got = scan.blocks[c]![b]!;
      for (let n = 0; n < 64; n++) {
        // Baseline codes at most 10 bits of AC and 11 of DC difference: the encoder clamps to
        // +-1023, which only a black block's DC (-1024 at Q = 1) reaches.
        const expected = Math.max(-1023, Math.min(1023, exact[n]! / scan.quant[c]![n]!));
        const error = Math.abs(got[n]! - expected);
        largest = Math.max(largest, Math.abs(got[n]!));
        if (error > worst) {
          worst = error;
          where = `block ${b}, component ${c}, (u, v) = (${n % 8}, ${n >> 3}): ${got[n]} for ${expected}`;
        }
      }
    }
  }
  return { worst, where, largest };
}

describe("native JPEG encoder: forward DCT against T.81's formula", () => {
  // 24 blocks side by side (one MCU each at 4:4:4): uniform noise, noise within a narrow band,
  // smooth ramps, two-level patterns (the extreme coefficients) and single cosines.
  const random = mulberry32(0x0dc7);
  const kinds: ((x: number, y: number) => Px)[] = [];
  for (let i = 0; i < 6; i++) kinds.push(() => [Math.floor(random() * 256), Math.floor(random() * 256), Math.floor(random() * 256), 255]);
  for (let i = 0; i < 6; i++) {
    const base = Math.floor(random() * 200);
    kinds.push(() => [base + Math.floor(random() * 40), base + Math.floor(random() * 40), base + Math.floor(random() * 40), 255]);
  }
  for (let i = 0; i < 4; i++) {
    const [a, b, c] = [random() * 30 - 15, random() * 30 - 15, random() * 30 - 15];
    kinds.push((x, y) => [128 + Math.round(a * (x - 3.5) + b * (y - 3.5)), 128 + Math.round(b * (x - 3.5) - c * (y - 3.5)), 128 + Math.round(c * x - a * y), 255]);
  }
  kinds.push((x, y) => ((x + y) % 2 === 0 ? [255, 255, 255, 255] : [0, 0, 0, 255]));
  kinds.push((x) => (x < 4 ? [255, 0, 255, 255] : [0, 255, 0, 255]));
  kinds.push((x, y) => (((x >> 1) + y) % 2 === 0 ? [255, 0, 0, 255] : [0, 0, 255, 255]));
  kinds.push(() => [0, 0, 0, 255]);
  for (let i = 0; i < 4; i++) {
    const u = 1 + Math.floor(random() * 7);
    const v = Math.floor(random() * 8);
    kinds.push((x, y) => {
      const level = Math.round(128 + 127 * Math.cos(((2 * x + 1) * u * Math.PI) / 16) * Math.cos(((2 * y + 1) * v * Math.PI) / 16));
      return [level, 255 - level, level, 255];
    });
  }
  const image = synthetic(kinds.length * 8, 8, (x, y) => kinds[x >> 3]!(x & 7, y));

  it("gives round(F(u, v) / Q(u, v)) for every coefficient at quality 100 (Q = 1: the transform itself to +-0.5)", () => {
    const { worst, where, largest } = worstError(image, 100);
    expect(largest).toBeGreaterThan(1000);
    expect(worst, where).toBeLessThanOrEqual(0.5 + 2e-3);
  });

  it("gives round(F(u, v) / Q(u, v)) at qualities 90 and 95 (the encoder's own tables)", () => {
    for (const quality of [90, 95]) {
      const { worst, where } = worstError(image, quality);
      expect(worst, `q${quality} ${where}`).toBeLessThanOrEqual(0.5 + 2e-3);
    }
  });
});
