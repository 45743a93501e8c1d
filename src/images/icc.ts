/**
 * Embedded colour profiles, and the conversion of decoded pixels to sRGB.
 *
 * Outputs carry no metadata (no ICC profile) and browsers show an untagged image as sRGB, so a
 * photo whose pixels are in another colour space (Adobe RGB, Display P3) must be converted to
 * sRGB before it is encoded, or its colours come out dull or shifted. This module:
 *
 * 1. finds the profile in the stored file: JPEG APP2 `ICC_PROFILE` segments (joined in sequence
 *    order), PNG `iCCP` (zlib, inflated with DecompressionStream, at most 1 MiB), WebP `ICCP`
 *    (VP8X files with the ICC flag), AVIF `colr` of type `prof`/`rICC` (the primary item's, else
 *    the first), and AVIF `colr` `nclx` with Display P3 (12) or BT.2020 (9) primaries and the
 *    sRGB transfer (13), built from the published primaries;
 * 2. parses ICC.1 (v2 and v4) matrix/TRC profiles: rXYZ/gXYZ/bXYZ and rTRC/gTRC/bTRC (curveType:
 *    identity, gamma, sampled table; parametricCurveType functions 0-4), and GRAY profiles
 *    (grayTRC);
 * 3. builds a transform to sRGB: per channel a 256-entry table to linear light, a 3x3 matrix
 *    (profile RGB -> PCS XYZ D50 -> linear sRGB), clipping, and a fine table for the sRGB
 *    encoding. A profile whose transform moves no probe colour by more than one level is
 *    treated as sRGB and gets no transform, so the usual sRGB-tagged photo costs nothing.
 *
 * Rendering intent: media-relative colorimetric, as browsers apply matrix/TRC profiles: the
 * profile's matrix maps its white to PCS D50, which is sRGB white; the white point tag (`wtpt`)
 * is only reported. Colours outside sRGB are clipped per channel.
 *
 * 4. CMYK/YCCK JPEGs (section 4): the A2B0 (else A2B1) table of the CMYK profile, lut8 `mft1`,
 *    lut16 `mft2` or lutAtoB `mAB `, with a Lab or XYZ PCS; libvips' default CMYK profile when
 *    the file has none, as sharp does. Applied by the decoders to the ink amounts (see
 *    ../pipeline/steps/decode.ts), not by the colour step. Perceptual intent as sharp asks
 *    for, which lcms2 turns into black point compensation for these v2 output profiles.
 *
 * Not converted (the pixels stay as decoded, i.e. are taken as sRGB):
 * - LUT-based RGB profiles (only A2B0, no matrix/TRC), Lab PCS, and ICC v5 (iccMAX). A profile with
 *   both A2B0 and matrix/TRC is converted with its matrix/TRC;
 * - GIF (no ICC support), PNG gAMA/cHRM without iCCP, AVIF nclx other than the above.
 *
 * Everything here reads user files: malformed input yields undefined, never an exception, and
 * every loop is bounded by the size of its input.
 */
import type { ImageFormat } from "./format";

/** Largest ICC profile read (after inflating, for PNG); matrix/TRC profiles are a few KB. */
export const MAX_ICC_BYTES = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Byte helpers (all reads are bounds-checked by the callers)

function u16be(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function u32be(b: Uint8Array, o: number): number {
  return b[o]! * 0x1000000 + ((b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!);
}

function u32le(b: Uint8Array, o: number): number {
  return b[o + 3]! * 0x1000000 + ((b[o + 2]! << 16) | (b[o + 1]! << 8) | b[o]!);
}

/** s15Fixed16Number. */
function s15f16(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) / 65536;
}

function ascii(b: Uint8Array, o: number, n: number): string {
  if (o < 0 || o + n > b.length) return "";
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[o + i]!);
  return s;
}

// ---------------------------------------------------------------------------------------------
// 1. Extraction

/** Colour description of an AVIF `colr` box of type `nclx` (ISO/IEC 23091-2 code points). */
export interface Nclx {
  readonly primaries: number;
  readonly transfer: number;
  readonly matrix: number;
  readonly fullRange: boolean;
}

/**
 * The ICC profile embedded in a stored file, or undefined (none, unsupported container, or
 * malformed). The result may be a view into `bytes`.
 */
export async function extractIccProfile(bytes: Uint8Array, format: ImageFormat): Promise<Uint8Array | undefined> {
  try {
    switch (format) {
      case "jpeg":
        return jpegIccProfile(bytes);
      case "png":
        return await pngIccProfile(bytes);
      case "webp":
        return webpIccProfile(bytes);
      case "avif":
        return avifColour(bytes)?.icc;
      default:
        return undefined;
    }
  } catch {
    return undefined;
  }
}

/** JPEG: APP2 segments `ICC_PROFILE\0`, seq (1-based), count, data; all before the first scan. */
export function jpegIccProfile(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  const chunks: Array<Uint8Array | undefined> = [];
  let count = 0;
  let total = 0;
  let pos = 2;
  while (pos + 4 <= bytes.length) {
    if (bytes[pos] !== 0xff) break; // lost sync: keep what was read
    const marker = bytes[pos + 1]!;
    if (marker === 0xff) {
      pos++; // fill byte
      continue;
    }
    pos += 2;
    if (marker === 0x01 || marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7)) continue; // no length
    if (marker === 0xda || marker === 0xd9) break; // SOS, EOI: the profile precedes the scans
    const length = u16be(bytes, pos);
    if (length < 2 || pos + length > bytes.length) break;
    if (marker === 0xe2 && length >= 16 && ascii(bytes, pos + 2, 12) === "ICC_PROFILE\0") {
      const seq = bytes[pos + 14]!;
      const n = bytes[pos + 15]!;
      if (n === 0 || seq === 0 || seq > n || (count !== 0 && n !== count) || chunks[seq - 1] !== undefined) return undefined;
      count = n;
      const data = bytes.subarray(pos + 16, pos + length);
      total += data.length;
      if (total > MAX_ICC_BYTES) return undefined;
      chunks[seq - 1] = data;
    }
    pos += length;
  }
  if (count === 0) return undefined;
  if (count === 1) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const chunk = chunks[i];
    if (chunk === undefined) return undefined; // a missing part
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** PNG: `iCCP` = name (1-79 bytes), NUL, method 0, zlib stream; before PLTE and IDAT. */
async function pngIccProfile(bytes: Uint8Array): Promise<Uint8Array | undefined> {
  if (bytes.length < 8 || PNG_SIGNATURE.some((v, i) => bytes[i] !== v)) return undefined;
  let pos = 8;
  while (pos + 12 <= bytes.length) {
    const length = u32be(bytes, pos);
    const type = ascii(bytes, pos + 4, 4);
    if (length > bytes.length - pos - 12) return undefined;
    if (type === "iCCP") {
      const data = bytes.subarray(pos + 8, pos + 8 + length);
      const nul = data.indexOf(0);
      if (nul < 1 || nul > 79 || nul + 2 >= data.length || data[nul + 1] !== 0) return undefined;
      return inflate(data.subarray(nul + 2), MAX_ICC_BYTES);
    }
    if (type === "IDAT" || type === "PLTE" || type === "IEND") return undefined;
    pos += 12 + length;
  }
  return undefined;
}

/**
 * Compressed bytes fed to the inflater at a time. workerd's DecompressionStream inflates each
 * write completely before anyone reads (it has no backpressure), and deflate expands at most
 * ~1032:1, so 1 KiB writes keep a zip bomb to about 1 MiB of output past `limit`.
 */
const INFLATE_SLICE = 1024;

/** zlib -> bytes, or undefined when malformed or longer than `limit`. */
export async function inflate(data: Uint8Array, limit: number): Promise<Uint8Array | undefined> {
  let stream: DecompressionStream;
  try {
    stream = new DecompressionStream("deflate");
  } catch {
    return undefined;
  }
  const writer = stream.writable.getWriter();
  const reader = stream.readable.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  let over = false;
  const reading = (async (): Promise<void> => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.length;
      if (total > limit) {
        over = true;
        await reader.cancel(); // errors the writable side: a pending write rejects
        return;
      }
      parts.push(value);
    }
  })();
  const writing = (async (): Promise<void> => {
    for (let at = 0; at < data.length && !over; at += INFLATE_SLICE) await writer.write(data.slice(at, at + INFLATE_SLICE));
    if (!over) await writer.close();
  })();
  try {
    await Promise.all([reading, writing]);
  } catch {
    return undefined;
  } finally {
    reader.cancel().catch(() => undefined);
    writer.abort().catch(() => undefined);
  }
  if (over) return undefined;
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** WebP: the `ICCP` chunk of an extended (VP8X) file whose ICC flag is set; it precedes the image data. */
function webpIccProfile(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length < 30 || ascii(bytes, 0, 4) !== "RIFF" || ascii(bytes, 8, 4) !== "WEBP" || ascii(bytes, 12, 4) !== "VP8X") return undefined;
  if ((bytes[20]! & 0x20) === 0) return undefined;
  let pos = 12;
  while (pos + 8 <= bytes.length) {
    const fourcc = ascii(bytes, pos, 4);
    const size = u32le(bytes, pos + 4);
    if (size > bytes.length - pos - 8) return undefined;
    if (fourcc === "ICCP") return size === 0 || size > MAX_ICC_BYTES ? undefined : bytes.subarray(pos + 8, pos + 8 + size);
    if (fourcc === "VP8 " || fourcc === "VP8L" || fourcc === "ALPH" || fourcc === "ANIM" || fourcc === "ANMF") return undefined;
    pos += 8 + size + (size & 1);
  }
  return undefined;
}

interface Box {
  readonly type: string;
  /** Payload (after the header), clipped to the parent. */
  readonly start: number;
  readonly end: number;
}

/** ISOBMFF boxes in [start, end); stops at the first malformed header. */
function boxes(b: Uint8Array, start: number, end: number): Box[] {
  const out: Box[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = u32be(b, pos);
    const type = ascii(b, pos + 4, 4);
    let header = 8;
    if (size === 1) {
      if (pos + 16 > end) break;
      const high = u32be(b, pos + 8);
      size = high > 0 ? end - pos : u32be(b, pos + 12); // beyond 4 GiB: runs to the end
      header = 16;
    } else if (size === 0) {
      size = end - pos; // to the end of the container
    }
    if (size < header || size > end - pos) break;
    out.push({ type, start: pos + header, end: pos + size });
    pos += size;
  }
  return out;
}

/** AVIF (HEIF): `meta` > `iprp` > `ipco` `colr` boxes; the primary item's (via `pitm`, `ipma`) first. */
export function avifColour(bytes: Uint8Array): { readonly icc?: Uint8Array; readonly nclx?: Nclx } | undefined {
  const meta = boxes(bytes, 0, bytes.length).find((box) => box.type === "meta");
  if (meta === undefined || meta.end - meta.start < 4) return undefined;
  const inMeta = boxes(bytes, meta.start + 4, meta.end); // FullBox: version and flags
  const iprp = inMeta.find((box) => box.type === "iprp");
  if (iprp === undefined) return undefined;
  const inIprp = boxes(bytes, iprp.start, iprp.end);
  const ipco = inIprp.find((box) => box.type === "ipco");
  if (ipco === undefined) return undefined;
  const properties = boxes(bytes, ipco.start, ipco.end);

  // Properties associated with the primary item (1-based indices into ipco), if that can be read.
  const primary = primaryItemProperties(bytes, inMeta.find((box) => box.type === "pitm"), inIprp.find((box) => box.type === "ipma"));
  const ordered = primary === undefined ? properties : [...primary.map((i) => properties[i - 1]).filter((box) => box !== undefined), ...properties];

  let icc: Uint8Array | undefined;
  let nclx: Nclx | undefined;
  for (const box of ordered) {
    if (box.type !== "colr" || box.end - box.start < 4) continue;
    const kind = ascii(bytes, box.start, 4);
    if (icc === undefined && (kind === "prof" || kind === "rICC")) {
      const size = box.end - box.start - 4;
      if (size > 0 && size <= MAX_ICC_BYTES) icc = bytes.subarray(box.start + 4, box.end);
    } else if (nclx === undefined && kind === "nclx" && box.end - box.start >= 11) {
      nclx = {
        primaries: u16be(bytes, box.start + 4),
        transfer: u16be(bytes, box.start + 6),
        matrix: u16be(bytes, box.start + 8),
        fullRange: (bytes[box.start + 10]! & 0x80) !== 0,
      };
    }
  }
  if (icc === undefined && nclx === undefined) return undefined;
  return { ...(icc !== undefined ? { icc } : {}), ...(nclx !== undefined ? { nclx } : {}) };
}

function primaryItemProperties(b: Uint8Array, pitm: Box | undefined, ipma: Box | undefined): number[] | undefined {
  if (pitm === undefined || ipma === undefined || pitm.end - pitm.start < 6 || ipma.end - ipma.start < 8) return undefined;
  const primaryId = b[pitm.start] === 0 ? u16be(b, pitm.start + 4) : pitm.end - pitm.start >= 8 ? u32be(b, pitm.start + 4) : -1;
  const version = b[ipma.start]!;
  const wideIndex = (b[ipma.start + 3]! & 1) !== 0;
  const entries = u32be(b, ipma.start + 4);
  let pos = ipma.start + 8;
  for (let e = 0; e < entries && pos < ipma.end; e++) {
    const idSize = version < 1 ? 2 : 4;
    if (pos + idSize + 1 > ipma.end) return undefined;
    const itemId = idSize === 2 ? u16be(b, pos) : u32be(b, pos);
    const associations = b[pos + idSize]!;
    pos += idSize + 1;
    const entrySize = wideIndex ? 2 : 1;
    if (pos + associations * entrySize > ipma.end) return undefined;
    if (itemId === primaryId) {
      const indices: number[] = [];
      for (let a = 0; a < associations; a++) {
        indices.push(wideIndex ? u16be(b, pos + 2 * a) & 0x7fff : b[pos + a]! & 0x7f);
      }
      return indices;
    }
    pos += associations * entrySize;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// 2. ICC parsing

export type Xyz = readonly [x: number, y: number, z: number];
/** Row-major 3x3. */
export type Matrix3 = readonly [number, number, number, number, number, number, number, number, number];

/** A tone reproduction curve: device value in [0, 1] -> linear light in [0, 1]. */
export type ToneCurve =
  | { readonly type: "gamma"; readonly gamma: number }
  | { readonly type: "table"; readonly table: Uint16Array }
  | { readonly type: "parametric"; readonly fn: number; readonly params: readonly number[] };

export interface IccProfile {
  /** Major version (2, 4). */
  readonly version: number;
  /** Device class signature: "mntr", "scnr", "prtr", "spac", ... */
  readonly deviceClass: string;
  /** Colour space signature: "RGB ", "GRAY", "CMYK", ... */
  readonly colourSpace: string;
  /** Profile connection space: "XYZ " or "Lab ". */
  readonly pcs: string;
  readonly description?: string;
  /** Columns rXYZ, gXYZ, bXYZ (PCS, D50): device linear RGB -> XYZ. */
  readonly matrix?: Matrix3;
  /** rTRC, gTRC, bTRC. */
  readonly curves?: readonly [ToneCurve, ToneCurve, ToneCurve];
  /** grayTRC (GRAY profiles). */
  readonly grayCurve?: ToneCurve;
  /** Media white point (`wtpt`); reported only. */
  readonly whitePoint?: Xyz;
  /** Has an A2B0 (LUT-based) transform. */
  readonly hasLut: boolean;
}

const MAX_TAGS = 1024;

/** Parses an ICC profile's header and the tags used here; undefined when malformed. */
export function parseIccProfile(bytes: Uint8Array): IccProfile | undefined {
  try {
    return parseIcc(bytes);
  } catch {
    return undefined;
  }
}

function parseIcc(bytes: Uint8Array): IccProfile | undefined {
  if (bytes.length < 132 || ascii(bytes, 36, 4) !== "acsp") return undefined;
  const declared = u32be(bytes, 0);
  const size = declared >= 132 && declared < bytes.length ? declared : bytes.length;
  const version = bytes[8]!;
  if (version < 2 || version > 4) return undefined;
  const tagCount = u32be(bytes, 128);
  if (tagCount > MAX_TAGS || 132 + tagCount * 12 > size) return undefined;
  const tags = new Map<string, Uint8Array>();
  for (let i = 0; i < tagCount; i++) {
    const at = 132 + i * 12;
    const signature = ascii(bytes, at, 4);
    const offset = u32be(bytes, at + 4);
    const length = u32be(bytes, at + 8);
    if (offset < 128 || length < 8 || offset > size || length > size - offset) continue; // a broken tag: ignored
    if (!tags.has(signature)) tags.set(signature, bytes.subarray(offset, offset + length));
  }
  const colourSpace = ascii(bytes, 16, 4);
  const tag = (signature: string): Uint8Array | undefined => tags.get(signature);

  const r = xyzTag(tag("rXYZ"));
  const g = xyzTag(tag("gXYZ"));
  const b = xyzTag(tag("bXYZ"));
  const rc = curveTag(tag("rTRC"));
  const gc = curveTag(tag("gTRC"));
  const bc = curveTag(tag("bTRC"));
  const gray = curveTag(tag("kTRC"));
  const white = xyzTag(tag("wtpt"));
  const description = textTag(tag("desc"));
  return {
    version,
    deviceClass: ascii(bytes, 12, 4),
    colourSpace,
    pcs: ascii(bytes, 20, 4),
    ...(description !== undefined ? { description } : {}),
    ...(r && g && b ? { matrix: [r[0], g[0], b[0], r[1], g[1], b[1], r[2], g[2], b[2]] as const } : {}),
    ...(rc && gc && bc ? { curves: [rc, gc, bc] as const } : {}),
    ...(gray ? { grayCurve: gray } : {}),
    ...(white ? { whitePoint: white } : {}),
    hasLut: tags.has("A2B0"),
  };
}

function xyzTag(t: Uint8Array | undefined): Xyz | undefined {
  if (t === undefined || t.length < 20 || ascii(t, 0, 4) !== "XYZ ") return undefined;
  return [s15f16(t, 8), s15f16(t, 12), s15f16(t, 16)];
}

const PARAMETRIC_COUNTS = [1, 3, 4, 5, 7];

function curveTag(t: Uint8Array | undefined): ToneCurve | undefined {
  if (t === undefined || t.length < 12) return undefined;
  const type = ascii(t, 0, 4);
  if (type === "curv") {
    const n = u32be(t, 8);
    if (n === 0) return { type: "gamma", gamma: 1 };
    if (n === 1) return t.length >= 14 ? { type: "gamma", gamma: u16be(t, 12) / 256 } : undefined;
    if (n > (t.length - 12) / 2) return undefined;
    const table = new Uint16Array(n);
    for (let i = 0; i < n; i++) table[i] = u16be(t, 12 + 2 * i);
    return { type: "table", table };
  }
  if (type === "para") {
    const fn = u16be(t, 8);
    const count = PARAMETRIC_COUNTS[fn];
    if (count === undefined || t.length < 12 + 4 * count) return undefined;
    const params: number[] = [];
    for (let i = 0; i < count; i++) params.push(s15f16(t, 12 + 4 * i));
    return { type: "parametric", fn, params };
  }
  return undefined;
}

/** v2 textDescriptionType (ASCII part) or v4 multiLocalizedUnicodeType (first record). */
function textTag(t: Uint8Array | undefined): string | undefined {
  if (t === undefined || t.length < 12) return undefined;
  const type = ascii(t, 0, 4);
  if (type === "desc") {
    const n = Math.min(u32be(t, 8), t.length - 12, 256);
    const text = ascii(t, 12, n);
    const nul = text.indexOf("\0");
    return nul >= 0 ? text.slice(0, nul) : text;
  }
  if (type === "mluc" && t.length >= 28) {
    const length = u32be(t, 20);
    const offset = u32be(t, 24);
    if (offset > t.length || length > t.length - offset) return undefined;
    let text = "";
    for (let i = 0; i + 1 < Math.min(length, 512); i += 2) text += String.fromCharCode(u16be(t, offset + i));
    return text;
  }
  return undefined;
}

/** Evaluates a tone curve at x in [0, 1]; the result is clipped to [0, 1] (NaN -> 0). */
export function evaluateCurve(curve: ToneCurve, x: number): number {
  let y: number;
  switch (curve.type) {
    case "gamma":
      y = curve.gamma === 1 ? x : Math.pow(x, curve.gamma);
      break;
    case "table": {
      const t = curve.table;
      const pos = x * (t.length - 1);
      const i = Math.min(t.length - 2, Math.max(0, Math.floor(pos)));
      const f = pos - i;
      y = (t[i]! * (1 - f) + t[i + 1]! * f) / 65535;
      break;
    }
    case "parametric":
      y = parametric(curve.fn, curve.params, x);
      break;
  }
  return y > 0 ? (y < 1 ? y : 1) : 0;
}

function parametric(fn: number, p: readonly number[], x: number): number {
  const g = p[0] ?? 1;
  const a = p[1] ?? 1;
  const b = p[2] ?? 0;
  const c = p[3] ?? 0;
  const d = p[4] ?? 0;
  const e = p[5] ?? 0;
  const f = p[6] ?? 0;
  const power = (base: number): number => (base > 0 ? Math.pow(base, g) : 0);
  switch (fn) {
    case 0:
      return power(x);
    case 1: // (aX+b)^g for X >= -b/a, else 0
      return a * x + b >= 0 ? power(a * x + b) : 0;
    case 2: // (aX+b)^g + c for X >= -b/a, else c
      return a * x + b >= 0 ? power(a * x + b) + c : c;
    case 3: // (aX+b)^g for X >= d, else cX
      return x >= d ? power(a * x + b) : c * x;
    case 4: // (aX+b)^g + e for X >= d, else cX + f
      return x >= d ? power(a * x + b) + e : c * x + f;
    default:
      return x;
  }
}

function curveIsUsable(curve: ToneCurve): boolean {
  switch (curve.type) {
    case "gamma":
      return Number.isFinite(curve.gamma) && curve.gamma > 0;
    case "table":
      return curve.table.length >= 2;
    case "parametric":
      return curve.params.every(Number.isFinite) && (curve.params[0] ?? 0) > 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Colorimetry

/** The ICC PCS illuminant (D50) as profiles encode it. */
export const D50: Xyz = [0.9642, 1, 0.8249];
const D65_XY = [0.3127, 0.329] as const;

const BRADFORD: Matrix3 = [0.8951, 0.2664, -0.1614, -0.7502, 1.7135, 0.0367, 0.0389, -0.0685, 1.0296];

export function multiply(a: Matrix3, b: Matrix3): Matrix3 {
  const m: number[] = [];
  for (let r = 0; r < 3; r++) {
    for (let c = 0; c < 3; c++) m.push(a[r * 3]! * b[c]! + a[r * 3 + 1]! * b[3 + c]! + a[r * 3 + 2]! * b[6 + c]!);
  }
  return m as unknown as Matrix3;
}

function apply3(m: Matrix3, v: Xyz): Xyz {
  return [m[0] * v[0] + m[1] * v[1] + m[2] * v[2], m[3] * v[0] + m[4] * v[1] + m[5] * v[2], m[6] * v[0] + m[7] * v[1] + m[8] * v[2]];
}

/** Inverse, or undefined when (nearly) singular. */
export function invert(m: Matrix3): Matrix3 | undefined {
  const [a, b, c, d, e, f, g, h, i] = m;
  const A = e * i - f * h;
  const B = -(d * i - f * g);
  const C = d * h - e * g;
  const det = a * A + b * B + c * C;
  if (!Number.isFinite(det) || Math.abs(det) < 1e-9) return undefined;
  const k = 1 / det;
  return [A * k, -(b * i - c * h) * k, (b * f - c * e) * k, B * k, (a * i - c * g) * k, -(a * f - c * d) * k, C * k, -(a * h - b * g) * k, (a * e - b * d) * k];
}

function xyToXyz(x: number, y: number): Xyz {
  return [x / y, 1, (1 - x - y) / y];
}

/**
 * RGB -> XYZ relative to the ICC D50 illuminant, from chromaticities and a white point,
 * adapted with Bradford: what an ICC profile's rXYZ/gXYZ/bXYZ hold.
 */
export function rgbToXyzD50(primaries: readonly [xr: number, yr: number, xg: number, yg: number, xb: number, yb: number], white: readonly [x: number, y: number] = D65_XY): Matrix3 {
  const [xr, yr, xg, yg, xb, yb] = primaries;
  const R = xyToXyz(xr, yr);
  const G = xyToXyz(xg, yg);
  const B = xyToXyz(xb, yb);
  const W = xyToXyz(white[0], white[1]);
  const P: Matrix3 = [R[0], G[0], B[0], R[1], G[1], B[1], R[2], G[2], B[2]];
  const s = apply3(invert(P)!, W);
  const rgbToXyz: Matrix3 = [P[0] * s[0], P[1] * s[1], P[2] * s[2], P[3] * s[0], P[4] * s[1], P[5] * s[2], P[6] * s[0], P[7] * s[1], P[8] * s[2]];
  const from = apply3(BRADFORD, W);
  const to = apply3(BRADFORD, D50);
  const scale: Matrix3 = [to[0] / from[0], 0, 0, 0, to[1] / from[1], 0, 0, 0, to[2] / from[2]];
  const adapt = multiply(invert(BRADFORD)!, multiply(scale, BRADFORD));
  return multiply(adapt, rgbToXyz);
}

export const SRGB_PRIMARIES = [0.64, 0.33, 0.3, 0.6, 0.15, 0.06] as const;
export const P3_PRIMARIES = [0.68, 0.32, 0.265, 0.69, 0.15, 0.06] as const;
export const BT2020_PRIMARIES = [0.708, 0.292, 0.17, 0.797, 0.131, 0.046] as const;

/** sRGB -> XYZ (D50, Bradford): 0.4361 0.3851 0.1431 / 0.2225 0.7169 0.0606 / 0.0139 0.0971 0.7141. */
export const SRGB_TO_XYZ_D50: Matrix3 = rgbToXyzD50(SRGB_PRIMARIES);
const XYZ_D50_TO_SRGB: Matrix3 = invert(SRGB_TO_XYZ_D50)!;

/** The sRGB transfer as an ICC parametric curve (function 3). */
export const SRGB_CURVE: ToneCurve = { type: "parametric", fn: 3, params: [2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045] };

/** Linear light -> sRGB-encoded, both in [0, 1]. */
export function srgbEncode(v: number): number {
  return v <= 0.0031308 ? 12.92 * v : 1.055 * Math.pow(v, 1 / 2.4) - 0.055;
}

/** sRGB-encoded -> linear light, both in [0, 1]. */
export function srgbDecode(v: number): number {
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

// ---------------------------------------------------------------------------------------------
// 3. Transforms to sRGB

/** Decoded RGBA8 -> sRGB. Apply with applyColourTransform. */
export type ColourTransform =
  | {
      readonly kind: "matrix";
      /** Per channel, 8-bit value -> linear light. */
      readonly curves: readonly [Float64Array, Float64Array, Float64Array];
      /** Linear profile RGB -> linear sRGB, row-major. */
      readonly matrix: Matrix3;
    }
  | {
      readonly kind: "gray";
      /** 8-bit value -> 8-bit sRGB, applied to R, G and B alike. */
      readonly table: Uint8Array;
    };

/** sRGB encoding of linear light, sampled at ENCODE_SIZE points over [0, 1]. */
const ENCODE_SIZE = 1 << 14;
const ENCODE_MAX = ENCODE_SIZE - 1;
let encodeTable: Uint8Array | undefined;

/** The sRGB encoding table (index / (length - 1) = linear light), shared with our WASM module's row conversion. */
export function srgbEncodeTable(): Uint8Array {
  if (encodeTable === undefined) {
    encodeTable = new Uint8Array(ENCODE_SIZE);
    for (let i = 0; i < ENCODE_SIZE; i++) encodeTable[i] = Math.round(srgbEncode(i / ENCODE_MAX) * 255);
  }
  return encodeTable;
}

/**
 * The transform from a profile's colour space to sRGB; undefined when the profile is (close
 * to) sRGB, or unsupported (CMYK, LUT-only, Lab PCS, malformed curves or matrix).
 */
export function srgbTransform(profile: IccProfile): ColourTransform | undefined {
  if (profile.pcs !== "XYZ ") return undefined; // matrix/TRC needs the XYZ PCS
  if (profile.colourSpace === "RGB " && profile.matrix !== undefined && profile.curves !== undefined) {
    return rgbTransform(profile.matrix, profile.curves);
  }
  if (profile.colourSpace === "GRAY" && profile.grayCurve !== undefined && curveIsUsable(profile.grayCurve)) {
    const curve = profile.grayCurve;
    const table = new Uint8Array(256);
    let moved = false;
    for (let i = 0; i < 256; i++) {
      table[i] = Math.round(srgbEncode(evaluateCurve(curve, i / 255)) * 255);
      if (Math.abs(table[i]! - i) > 1) moved = true;
    }
    return moved ? { kind: "gray", table } : undefined;
  }
  // CMYK (converted by the decoders, see jpegCmykTransform), LUT-based and other profiles: left as decoded.
  return undefined;
}

/** Transform for RGB with the given rXYZ/gXYZ/bXYZ matrix (D50) and TRCs; undefined when sRGB or unusable. */
export function rgbTransform(toXyzD50: Matrix3, curves: readonly [ToneCurve, ToneCurve, ToneCurve]): ColourTransform | undefined {
  if (!curves.every(curveIsUsable) || !toXyzD50.every((v) => Number.isFinite(v) && Math.abs(v) < 8)) return undefined;
  if (invert(toXyzD50) === undefined) return undefined;
  const matrix = multiply(XYZ_D50_TO_SRGB, toXyzD50);
  if (!matrix.every(Number.isFinite)) return undefined;
  const tables = curves.map((curve) => {
    const table = new Float64Array(256);
    for (let i = 0; i < 256; i++) table[i] = evaluateCurve(curve, i / 255);
    return table;
  });
  const transform: ColourTransform = { kind: "matrix", curves: [tables[0]!, tables[1]!, tables[2]!], matrix };
  return movesColours(transform) ? transform : undefined;
}

let probes: Uint8ClampedArray | undefined;

/** Probe colours: a 6x6x6 grid, every grey, and ramps of each primary. */
function probeColours(): Uint8ClampedArray {
  if (probes === undefined) {
    const list: number[] = [];
    const levels = [0, 51, 102, 153, 204, 255];
    for (const r of levels) for (const g of levels) for (const b of levels) list.push(r, g, b, 255);
    for (let v = 0; v < 256; v++) list.push(v, v, v, 255, v, 0, 0, 255, 0, v, 0, 255, 0, 0, v, 255);
    probes = new Uint8ClampedArray(list);
  }
  return probes;
}

/** True when the transform changes some probe colour by more than one level. */
function movesColours(transform: ColourTransform): boolean {
  const before = probeColours();
  const after = before.slice();
  applyColourTransform(after, transform);
  for (let i = 0; i < before.length; i++) if (Math.abs(after[i]! - before[i]!) > 1) return true;
  return false;
}

/**
 * Converts RGBA8 pixels in place (alpha untouched). Per pixel: three table lookups to linear
 * light, a 3x3 multiply, clipping, and three lookups in the sRGB encoding table.
 */
export function applyColourTransform(data: Uint8ClampedArray, transform: ColourTransform): void {
  const n = data.length - (data.length % 4);
  if (transform.kind === "gray") {
    const t = transform.table;
    for (let i = 0; i < n; i += 4) {
      data[i] = t[data[i]!]!;
      data[i + 1] = t[data[i + 1]!]!;
      data[i + 2] = t[data[i + 2]!]!;
    }
    return;
  }
  const enc = srgbEncodeTable();
  const [lr, lg, lb] = transform.curves;
  const s = ENCODE_MAX;
  const m = transform.matrix;
  // Scaled to table indices; +0.5 rounds to the nearest entry.
  const m0 = m[0] * s, m1 = m[1] * s, m2 = m[2] * s;
  const m3 = m[3] * s, m4 = m[4] * s, m5 = m[5] * s;
  const m6 = m[6] * s, m7 = m[7] * s, m8 = m[8] * s;
  for (let i = 0; i < n; i += 4) {
    const r = lr[data[i]!]!;
    const g = lg[data[i + 1]!]!;
    const b = lb[data[i + 2]!]!;
    const x = m0 * r + m1 * g + m2 * b + 0.5;
    const y = m3 * r + m4 * g + m5 * b + 0.5;
    const z = m6 * r + m7 * g + m8 * b + 0.5;
    data[i] = enc[x <= 0 ? 0 : x >= s ? s : x | 0]!;
    data[i + 1] = enc[y <= 0 ? 0 : y >= s ? s : y | 0]!;
    data[i + 2] = enc[z <= 0 ? 0 : z >= s ? s : z | 0]!;
  }
}

// ---------------------------------------------------------------------------------------------
// From a stored file

/** nclx code points handled: Display P3 and BT.2020 primaries with the sRGB transfer. */
const NCLX_PRIMARIES: Readonly<Record<number, readonly [number, number, number, number, number, number]>> = {
  9: BT2020_PRIMARIES,
  12: P3_PRIMARIES,
};
const NCLX_TRANSFER_SRGB = 13;

/** The transform for an AVIF nclx description, or undefined (sRGB, or not handled). */
export function nclxTransform(nclx: Nclx): ColourTransform | undefined {
  const primaries = NCLX_PRIMARIES[nclx.primaries];
  if (primaries === undefined || nclx.transfer !== NCLX_TRANSFER_SRGB) return undefined;
  return rgbTransform(rgbToXyzD50(primaries), [SRGB_CURVE, SRGB_CURVE, SRGB_CURVE]);
}

/**
 * What the decoded pixels of a stored file need to become sRGB: undefined for no profile, an
 * sRGB or unsupported one. Reads only the file's headers (the profile precedes the image data).
 */
export async function sourceColourTransform(bytes: Uint8Array, format: ImageFormat): Promise<ColourTransform | undefined> {
  try {
    if (format === "avif") {
      // An ICC profile overrides nclx primaries and transfer; a malformed one falls back to nclx.
      const colour = avifColour(bytes);
      const profile = colour?.icc === undefined ? undefined : parseIccProfile(colour.icc);
      if (profile !== undefined) return srgbTransform(profile);
      return colour?.nclx === undefined ? undefined : nclxTransform(colour.nclx);
    }
    const icc = await extractIccProfile(bytes, format);
    if (icc === undefined) return undefined;
    const profile = parseIccProfile(icc);
    return profile === undefined ? undefined : srgbTransform(profile);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// 4. CMYK through a LUT-based profile (A2B0)

/**
 * A device -> PCS LUT of a CMYK profile (A2B0 of type lut8 `mft1`, lut16 `mft2` or lutAtoB
 * `mAB `), everything normalised to [0, 1]. Evaluation: input curves, CLUT (multilinear),
 * output curves ("M" curves, matrix and "B" curves for mAB), then the PCS decoding.
 */
export interface CmykLut {
  readonly type: "mft1" | "mft2" | "mAB ";
  readonly pcs: "Lab " | "XYZ ";
  /** Per input channel; undefined = identity. */
  readonly inputCurves: readonly (ToneCurve | undefined)[];
  readonly grid: readonly number[];
  /** grid[0] x ... x grid[3] nodes (first input varies slowest), `outputs` values each, in [0, 1]. */
  readonly clut: Float32Array;
  readonly outputs: 3;
  readonly mCurves?: readonly (ToneCurve | undefined)[];
  /** mAB: 3x3 + offset (12 values), applied after the M curves. */
  readonly matrix?: readonly number[];
  readonly outputCurves: readonly (ToneCurve | undefined)[];
}

const MAX_CLUT_VALUES = 1 << 22;

/** The A2B0 (else A2B1) LUT of a CMYK profile with a Lab or XYZ PCS; undefined when absent or malformed. */
export function parseCmykLut(bytes: Uint8Array): CmykLut | undefined {
  try {
    if (bytes.length < 132 || ascii(bytes, 36, 4) !== "acsp" || ascii(bytes, 16, 4) !== "CMYK") return undefined;
    const pcs = ascii(bytes, 20, 4);
    if (pcs !== "Lab " && pcs !== "XYZ ") return undefined;
    const declared = u32be(bytes, 0);
    const size = declared >= 132 && declared < bytes.length ? declared : bytes.length;
    const tagCount = u32be(bytes, 128);
    if (tagCount > MAX_TAGS || 132 + tagCount * 12 > size) return undefined;
    const tags = new Map<string, Uint8Array>();
    for (let i = 0; i < tagCount; i++) {
      const at = 132 + i * 12;
      const offset = u32be(bytes, at + 4);
      const length = u32be(bytes, at + 8);
      if (offset < 128 || length < 8 || offset > size || length > size - offset) continue;
      const signature = ascii(bytes, at, 4);
      if (!tags.has(signature)) tags.set(signature, bytes.subarray(offset, offset + length));
    }
    for (const signature of ["A2B0", "A2B1"]) {
      const t = tags.get(signature);
      const lut = t === undefined ? undefined : lutTag(t, pcs);
      if (lut !== undefined) return lut;
    }
    return undefined;
  } catch {
    return undefined;
  }
}

function lutTag(t: Uint8Array, pcs: "Lab " | "XYZ "): CmykLut | undefined {
  const type = ascii(t, 0, 4);
  if (type === "mft1" || type === "mft2") {
    if (t.length < 52) return undefined;
    const inputs = t[8]!;
    const outputs = t[9]!;
    const g = t[10]!;
    if (inputs !== 4 || outputs !== 3 || g < 2) return undefined;
    const wide = type === "mft2";
    const inEntries = wide ? u16be(t, 48) : 256;
    const outEntries = wide ? u16be(t, 50) : 256;
    if (inEntries < 2 || inEntries > 4096 || outEntries < 2 || outEntries > 4096) return undefined;
    const w = wide ? 2 : 1;
    let at = wide ? 52 : 48;
    const nodes = g ** inputs;
    if (nodes * outputs > MAX_CLUT_VALUES) return undefined;
    const need = at + w * (inputs * inEntries + nodes * outputs + outputs * outEntries);
    if (t.length < need) return undefined;
    const read = (o: number): number => (wide ? u16be(t, o) : t[o]! * 257);
    const table = (n: number): ToneCurve => {
      const v = new Uint16Array(n);
      for (let i = 0; i < n; i++) v[i] = read(at + w * i);
      at += w * n;
      return { type: "table", table: v };
    };
    const inputCurves: ToneCurve[] = [];
    for (let c = 0; c < inputs; c++) inputCurves.push(table(inEntries));
    const clut = new Float32Array(nodes * outputs);
    for (let i = 0; i < clut.length; i++) clut[i] = read(at + w * i) / 65535;
    at += w * clut.length;
    const outputCurves: ToneCurve[] = [];
    for (let c = 0; c < outputs; c++) outputCurves.push(table(outEntries));
    // The 3x3 matrix of mft1/mft2 applies only to XYZ input: ignored for CMYK.
    return { type, pcs, inputCurves, grid: [g, g, g, g], clut, outputs: 3, outputCurves };
  }
  if (type === "mAB ") {
    if (t.length < 32 || t[8] !== 4 || t[9] !== 3) return undefined;
    const offB = u32be(t, 12);
    const offMatrix = u32be(t, 16);
    const offM = u32be(t, 20);
    const offClut = u32be(t, 24);
    const offA = u32be(t, 28);
    if (offA === 0 || offClut === 0 || offB === 0) return undefined; // 4 -> 3 needs A curves and a CLUT
    const inputCurves = curveSequence(t, offA, 4);
    const outputCurves = curveSequence(t, offB, 3);
    if (inputCurves === undefined || outputCurves === undefined) return undefined;
    if (offClut + 20 > t.length) return undefined;
    const grid: number[] = [];
    for (let i = 0; i < 4; i++) grid.push(t[offClut + i]!);
    if (grid.some((n) => n < 2)) return undefined;
    const precision = t[offClut + 16];
    if (precision !== 1 && precision !== 2) return undefined;
    const nodes = grid[0]! * grid[1]! * grid[2]! * grid[3]!;
    if (nodes * 3 > MAX_CLUT_VALUES || offClut + 20 + nodes * 3 * precision > t.length) return undefined;
    const clut = new Float32Array(nodes * 3);
    for (let i = 0; i < clut.length; i++) {
      const o = offClut + 20 + precision * i;
      clut[i] = precision === 2 ? u16be(t, o) / 65535 : t[o]! / 255;
    }
    let mCurves: readonly (ToneCurve | undefined)[] | undefined;
    let matrix: number[] | undefined;
    if (offM !== 0 && offMatrix !== 0) {
      mCurves = curveSequence(t, offM, 3);
      if (mCurves === undefined || offMatrix + 48 > t.length) return undefined;
      matrix = [];
      for (let i = 0; i < 12; i++) matrix.push(s15f16(t, offMatrix + 4 * i));
      if (!matrix.every((v) => Number.isFinite(v))) return undefined;
    }
    return { type: "mAB ", pcs, inputCurves, grid, clut, outputs: 3, ...(mCurves !== undefined ? { mCurves } : {}), ...(matrix !== undefined ? { matrix } : {}), outputCurves };
  }
  return undefined;
}

/** `n` curv/para curves from `offset`, each padded to 4 bytes; undefined entries are identity. */
function curveSequence(t: Uint8Array, offset: number, n: number): (ToneCurve | undefined)[] | undefined {
  const out: (ToneCurve | undefined)[] = [];
  let at = offset;
  for (let i = 0; i < n; i++) {
    if (at + 12 > t.length) return undefined;
    const type = ascii(t, at, 4);
    let length: number;
    if (type === "curv") length = 12 + 2 * u32be(t, at + 8);
    else if (type === "para") length = 12 + 4 * (PARAMETRIC_COUNTS[u16be(t, at + 8)] ?? 0);
    else return undefined;
    if (length > t.length - at) return undefined;
    const curve = curveTag(t.subarray(at, at + length));
    if (curve === undefined || !curveIsUsable(curve)) return undefined;
    out.push(curve.type === "gamma" && curve.gamma === 1 ? undefined : curve);
    at += (length + 3) & ~3;
  }
  return out;
}

/** Evaluates the LUT at ink values in [0, 1] (0 = no ink) -> PCS XYZ D50 (relative). */
export function evaluateCmykLut(lut: CmykLut, ink: readonly number[], out: number[] = [0, 0, 0]): number[] {
  const g = lut.grid;
  const pos: number[] = [0, 0, 0, 0];
  const base: number[] = [0, 0, 0, 0];
  const stride: number[] = [0, 0, 0, 0];
  let s = 3;
  for (let d = 3; d >= 0; d--) {
    stride[d] = s;
    s *= g[d]!;
  }
  let origin = 0;
  for (let d = 0; d < 4; d++) {
    const curve = lut.inputCurves[d];
    const x = curve === undefined ? clamp01(ink[d]!) : evaluateCurve(curve, clamp01(ink[d]!));
    const p = x * (g[d]! - 1);
    const i = Math.min(g[d]! - 2, Math.floor(p));
    base[d] = i;
    pos[d] = p - i;
    origin += i * stride[d]!;
  }
  let v0 = 0;
  let v1 = 0;
  let v2 = 0;
  for (let corner = 0; corner < 16; corner++) {
    let w = 1;
    let o = origin;
    for (let d = 0; d < 4; d++) {
      if (corner & (8 >> d)) {
        w *= pos[d]!;
        o += stride[d]!;
      } else {
        w *= 1 - pos[d]!;
      }
    }
    if (w === 0) continue;
    v0 += w * lut.clut[o]!;
    v1 += w * lut.clut[o + 1]!;
    v2 += w * lut.clut[o + 2]!;
  }
  const v = [v0, v1, v2];
  for (let c = 0; c < 3; c++) {
    const curve = lut.mCurves?.[c];
    v[c] = curve === undefined ? clamp01(v[c]!) : evaluateCurve(curve, clamp01(v[c]!));
  }
  if (lut.matrix !== undefined) {
    const m = lut.matrix;
    const [a, b, c] = v as [number, number, number];
    v[0] = m[0]! * a + m[1]! * b + m[2]! * c + m[9]!;
    v[1] = m[3]! * a + m[4]! * b + m[5]! * c + m[10]!;
    v[2] = m[6]! * a + m[7]! * b + m[8]! * c + m[11]!;
  }
  for (let c = 0; c < 3; c++) {
    const curve = lut.outputCurves[c];
    v[c] = curve === undefined ? clamp01(v[c]!) : evaluateCurve(curve, clamp01(v[c]!));
  }
  if (lut.pcs === "XYZ ") {
    // u1Fixed15: 1.0 = 0x8000.
    const k = 65535 / 32768;
    out[0] = v[0]! * k;
    out[1] = v[1]! * k;
    out[2] = v[2]! * k;
    return out;
  }
  // PCS Lab. lut16 (mft2) uses the legacy 16-bit encoding in v2 and v4 profiles alike
  // (L* 100 = 0xFF00, a* b* 0 = 0x8000); lut8 and lutAtoB use the v4 one (L* 100 = 0xFFFF).
  let L: number, a: number, b: number;
  if (lut.type === "mft2") {
    L = (v[0]! * 65535 * 100) / 0xff00;
    a = (v[1]! * 65535) / 256 - 128;
    b = (v[2]! * 65535) / 256 - 128;
  } else {
    L = v[0]! * 100;
    a = v[1]! * 255 - 128;
    b = v[2]! * 255 - 128;
  }
  const fy = (L + 16) / 116;
  const finv = (f: number): number => (f > 6 / 29 ? f * f * f : 3 * (6 / 29) * (6 / 29) * (f - 4 / 29));
  out[0] = D50[0] * finv(fy + a / 500);
  out[1] = D50[1] * finv(fy);
  out[2] = D50[2] * finv(fy - b / 200);
  return out;
}

function clamp01(x: number): number {
  return x > 0 ? (x < 1 ? x : 1) : 0;
}

/** Nodes per axis of the precomputed CMYK -> sRGB table. */
export const CMYK_GRID = 17;

/**
 * CMYK (ink, 0 = none; as 8-bit C, M, Y, K in the RGBA slots) -> sRGB8: the profile's Lab (D50,
 * black point compensated) precomputed on a CMYK_GRID^4 grid (3 floats per node, C slowest,
 * K fastest); per pixel interpolated, then Lab -> XYZ -> linear sRGB, clipped and encoded.
 */
export interface CmykTransform {
  readonly kind: "cmyk";
  readonly table: Float32Array;
}

/** The table for a CMYK LUT: sRGB of each grid node (PCS -> XYZ D50 -> linear sRGB, clipped, encoded). */
export function cmykTransformFromLut(lut: CmykLut): CmykTransform | undefined {
  const G = CMYK_GRID;
  const table = new Float32Array(G * G * G * G * 3);
  const xyz = [0, 0, 0];
  const ink = [0, 0, 0, 0];
  // Black point compensation (as lcms, which sharp/libvips use with it): the profile's black
  // (all inks at 100%, taken as neutral) maps to sRGB black, scaling XYZ towards the D50 white.
  evaluateCmykLut(lut, [1, 1, 1, 1], xyz);
  const blackY = xyz[1]! > 0 && xyz[1]! < 0.5 ? xyz[1]! : 0; // the neutral of that lightness
  const scale = 1 / (1 - blackY);
  let at = 0;
  for (let c = 0; c < G; c++) {
    ink[0] = c / (G - 1);
    for (let mm = 0; mm < G; mm++) {
      ink[1] = mm / (G - 1);
      for (let y = 0; y < G; y++) {
        ink[2] = y / (G - 1);
        for (let k = 0; k < G; k++) {
          ink[3] = k / (G - 1);
          evaluateCmykLut(lut, ink, xyz);
          // To Lab (D50) after the compensation: the table is interpolated in Lab, like the
          // profile's own CLUT, and clipped to sRGB only per pixel.
          const fx = labF(((xyz[0]! - blackY * D50[0]) * scale) / D50[0]);
          const fy = labF(((xyz[1]! - blackY * D50[1]) * scale) / D50[1]);
          const fz = labF(((xyz[2]! - blackY * D50[2]) * scale) / D50[2]);
          const L = 116 * fy - 16;
          const a = 500 * (fx - fy);
          const b = 200 * (fy - fz);
          if (!Number.isFinite(L) || !Number.isFinite(a) || !Number.isFinite(b)) return undefined;
          table[at++] = L;
          table[at++] = a;
          table[at++] = b;
        }
      }
    }
  }
  return { kind: "cmyk", table };
}

function labF(t: number): number {
  return t > 216 / 24389 ? Math.cbrt(t) : (24389 / 27 * t + 16) / 116;
}

/** Per 8-bit value: the lower grid node and the fraction towards the next. */
let cmykAxis: { readonly node: Uint8Array; readonly frac: Float32Array } | undefined;

function cmykAxisTables(): { readonly node: Uint8Array; readonly frac: Float32Array } {
  if (cmykAxis === undefined) {
    const node = new Uint8Array(256);
    const frac = new Float32Array(256);
    for (let v = 0; v < 256; v++) {
      const p = (v * (CMYK_GRID - 1)) / 255;
      const i = Math.min(CMYK_GRID - 2, Math.floor(p));
      node[v] = i;
      frac[v] = p - i;
    }
    cmykAxis = { node, frac };
  }
  return cmykAxis;
}

/**
 * Converts pixels holding C, M, Y, K ink (0 = none) in the R, G, B, A slots to opaque sRGB
 * RGBA in place: tetrahedral interpolation (Kasson, Nin, Plouffe and Hafner, "Performing color
 * space conversions with three-dimensional linear interpolation", J. Electronic Imaging 4(3),
 * 1995) over C, M, Y in the two K slices around K, then linear in K between the two results.
 * (Our choice of axis: the table keeps K outermost.)
 */
export function applyCmykTransform(data: Uint8ClampedArray, transform: CmykTransform): void {
  const t = transform.table;
  const { node, frac } = cmykAxisTables();
  const G = CMYK_GRID;
  const sK = 3;
  const sY = G * sK;
  const sM = G * sY;
  const sC = G * sM;
  const n = data.length - (data.length % 4);
  const enc = srgbEncodeTable();
  const s = ENCODE_MAX;
  // XYZ_D50_TO_SRGB with the D50 white folded in (Lab gives XYZ / white), scaled to table indices.
  const x = XYZ_D50_TO_SRGB;
  const m0 = x[0] * D50[0] * s, m1 = x[1] * D50[1] * s, m2 = x[2] * D50[2] * s;
  const m3 = x[3] * D50[0] * s, m4 = x[4] * D50[1] * s, m5 = x[5] * D50[2] * s;
  const m6 = x[6] * D50[0] * s, m7 = x[7] * D50[1] * s, m8 = x[8] * D50[2] * s;
  for (let i = 0; i < n; i += 4) {
    const c = data[i]!, m = data[i + 1]!, y = data[i + 2]!, k = data[i + 3]!;
    const rx = frac[c]!, ry = frac[m]!, rz = frac[y]!, rk = frac[k]!;
    const o = node[c]! * sC + node[m]! * sM + node[y]! * sY + node[k]! * sK;
    // Tetrahedron: weights w0..w3 for vertices 0, a, b, 111 (offsets from o).
    let a: number, b: number, w1: number, w2: number, w3: number, w0: number;
    if (rx >= ry) {
      if (ry >= rz) { a = sC; b = sC + sM; w0 = 1 - rx; w1 = rx - ry; w2 = ry - rz; w3 = rz; }
      else if (rx >= rz) { a = sC; b = sC + sY; w0 = 1 - rx; w1 = rx - rz; w2 = rz - ry; w3 = ry; }
      else { a = sY; b = sC + sY; w0 = 1 - rz; w1 = rz - rx; w2 = rx - ry; w3 = ry; }
    } else if (rx >= rz) { a = sM; b = sC + sM; w0 = 1 - ry; w1 = ry - rx; w2 = rx - rz; w3 = rz; }
    else if (ry >= rz) { a = sM; b = sM + sY; w0 = 1 - ry; w1 = ry - rz; w2 = rz - rx; w3 = rx; }
    else { a = sY; b = sM + sY; w0 = 1 - rz; w1 = rz - ry; w2 = ry - rx; w3 = rx; }
    const d = sC + sM + sY;
    const kk = 1 - rk;
    const p = o;
    const q = o + sK;
    const L = kk * (w0 * t[p]! + w1 * t[p + a]! + w2 * t[p + b]! + w3 * t[p + d]!) + rk * (w0 * t[q]! + w1 * t[q + a]! + w2 * t[q + b]! + w3 * t[q + d]!);
    const A = kk * (w0 * t[p + 1]! + w1 * t[p + a + 1]! + w2 * t[p + b + 1]! + w3 * t[p + d + 1]!) + rk * (w0 * t[q + 1]! + w1 * t[q + a + 1]! + w2 * t[q + b + 1]! + w3 * t[q + d + 1]!);
    const B = kk * (w0 * t[p + 2]! + w1 * t[p + a + 2]! + w2 * t[p + b + 2]! + w3 * t[p + d + 2]!) + rk * (w0 * t[q + 2]! + w1 * t[q + a + 2]! + w2 * t[q + b + 2]! + w3 * t[q + d + 2]!);
    // Lab (D50) -> XYZ -> linear sRGB, scaled to encoding-table indices.
    const fy = (L + 16) / 116;
    const fx = fy + A / 500;
    const fz = fy - B / 200;
    const X = fx > 6 / 29 ? fx * fx * fx : (fx - 16 / 116) * (108 / 841);
    const Y = fy > 6 / 29 ? fy * fy * fy : (fy - 16 / 116) * (108 / 841);
    const Z = fz > 6 / 29 ? fz * fz * fz : (fz - 16 / 116) * (108 / 841);
    const r = m0 * X + m1 * Y + m2 * Z + 0.5;
    const g = m3 * X + m4 * Y + m5 * Z + 0.5;
    const bl = m6 * X + m7 * Y + m8 * Z + 0.5;
    data[i] = enc[r <= 0 ? 0 : r >= s ? s : r | 0]!;
    data[i + 1] = enc[g <= 0 ? 0 : g >= s ? s : g | 0]!;
    data[i + 2] = enc[bl <= 0 ? 0 : bl >= s ? s : bl | 0]!;
    data[i + 3] = 255;
  }
}

/**
 * Transforms built per profile; a few at most. Looked up by a 32-bit FNV-1a hash of the profile
 * (Fowler, Noll and Vo; offset basis 0x811C9DC5, prime 0x01000193, as the algorithm defines
 * them), and an entry is used only when its profile's bytes are equal, so two profiles that share
 * a hash can never share a transform.
 */
const cmykCache = new Map<number, { profile: Uint8Array; transform: CmykTransform | undefined }>();
const CMYK_CACHE_SIZE = 4;

function fnv1a32(bytes: Uint8Array): number {
  let hash = 0x811c9dc5;
  for (const byte of bytes) hash = Math.imul(hash ^ byte, 0x01000193);
  return hash >>> 0;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The CMYK -> sRGB transform of a CMYK profile (cached); undefined when it has no usable A2B0/A2B1. */
export function cmykTransformForProfile(profile: Uint8Array): CmykTransform | undefined {
  try {
    const key = fnv1a32(profile);
    const known = cmykCache.get(key);
    if (known !== undefined && sameBytes(known.profile, profile)) return known.transform;
    const lut = parseCmykLut(profile);
    const transform = lut === undefined ? undefined : cmykTransformFromLut(lut);
    cmykCache.delete(key);
    if (cmykCache.size >= CMYK_CACHE_SIZE) cmykCache.delete(cmykCache.keys().next().value!);
    cmykCache.set(key, { profile: profile.slice(), transform });
    return transform;
  } catch {
    return undefined;
  }
}

/**
 * The transform for a CMYK or YCCK JPEG through its embedded CMYK profile. Undefined when it
 * has none or an unusable one: the decoders' standard inverted-CMYK formula stays. (libvips
 * assumes a built-in default CMYK profile for untagged files; we ship no third-party profile.)
 */
export async function jpegCmykTransform(bytes: Uint8Array): Promise<CmykTransform | undefined> {
  try {
    const icc = jpegIccProfile(bytes);
    return icc === undefined ? undefined : cmykTransformForProfile(icc);
  } catch {
    return undefined;
  }
}
