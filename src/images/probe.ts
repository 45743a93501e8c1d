/**
 * Header-only image probe: identify an upload by its magic bytes (never its name or
 * Content-Type) and read its size and a few traits from the first PROBE_WINDOW_BYTES,
 * without decoding pixels. Pure: bytes in, plain object out; every failure is a ProblemError
 * (415 unsupported-format for things we do not take, 422 invalid-image for a recognised
 * format whose header is broken or cut short).
 *
 * Pixel limits are the caller's job: dimensions are reported exactly, however absurd
 * (a 65500x65500 JPEG header probes fine), so the caller can refuse them before decoding.
 *
 * Why our own readers and not `image-size` (v2.1.0), which the tests keep as an oracle
 * (test/worker/probe.test.ts pins each point):
 * - it reads past the end of a subarray (DataView over the whole underlying buffer), so a
 *   12-byte view of a bigger buffer can "probe" successfully;
 * - it accepts a PNG whose first signature byte is wrong and never checks IHDR (CRC, colour
 *   type, bit depth), and its fallback detector calls zero bytes a 0x0 TGA;
 * - JPEG: it knows only SOF0-2 (rejects arithmetic-coded SOF9/10), chokes on legal 0xFF
 *   fill bytes before a marker, and looks for the EXIF IFD0 at offset 8 instead of reading it;
 * - AVIF/HEIF: it takes the largest `ispe`, not the primary item's, and its `clap` maths
 *   subtracts the wrong field;
 * - it knows nothing of frames, alpha, CMYK, progressive scans or HEIC-vs-AVIF brands.
 */
import { ProblemError } from "../errors";
import { crc32 } from "./crc32";
import type { ImageFormat } from "./format";

/**
 * How many leading bytes callers must hand in (fewer is fine when the file is shorter).
 * JPEG's frame header can sit behind large EXIF/XMP/ICC/MPF/Photoshop segments (up to 64 KiB
 * each), so we look this far; a JPEG whose SOF lies beyond it is refused with a 422.
 * Bytes past the window are ignored, so the result depends only on the window.
 */
export const PROBE_WINDOW_BYTES = 512 * 1024;

/** EXIF orientation: 1 = as stored; 2-8 = mirrored and/or rotated (5-8 swap width and height). */
export type Orientation = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8;

export type ProbeColorSpace = "cmyk" | "ycck" | "gray" | "rgb";

export interface ImageProbe {
  readonly format: ImageFormat;
  /** Stored pixel width, before `orientation` is applied (GIF: canvas covering every frame seen). */
  readonly width: number;
  /** Stored pixel height, before `orientation` is applied. */
  readonly height: number;
  /**
   * EXIF orientation, 1 when absent or invalid (0 counts as 1). JPEG APP1 EXIF, PNG eXIf,
   * WebP EXIF chunk (when inside the window), AVIF irot/imir mapped to the EXIF value.
   */
  readonly orientation: Orientation;
  /**
   * Frame count: exact for APNG (acTL) and for GIF/animated WebP files that fit in the window;
   * for longer GIF/WebP files it is the count seen in the window (a lower bound). AVIF image
   * sequences report 1 (see `animated`). Always >= 1.
   */
  readonly frames: number;
  /** GIF with more than one frame (or a loop extension when the file is longer than the window), APNG, animated WebP, AVIF sequence brand. */
  readonly animated: boolean;
  /** PNG colour type 4/6 or tRNS; WebP alpha flag/ALPH/VP8L alpha hint; GIF transparency; AVIF alpha auxiliary image. JPEG: false. */
  readonly hasAlpha: boolean;
  /** Pixels arrive in several passes: progressive JPEG (SOF2/SOF10), Adam7 PNG, interlaced first GIF frame. */
  readonly progressive?: boolean;
  /** Colour model of the stored pixels (JPEG YCbCr counts as "rgb"). */
  readonly colorSpace?: ProbeColorSpace;
  /** An embedded ICC profile (JPEG APP2, PNG iCCP, WebP ICCP flag, AVIF colr prof/rICC). */
  readonly iccProfile?: boolean;
}

const ACCEPTED = "JPEG, PNG, GIF, WebP or AVIF";
const WINDOW_KIB = PROBE_WINDOW_BYTES / 1024;

/**
 * Probe the first bytes of an upload.
 * @param head the file's first bytes: at least PROBE_WINDOW_BYTES of them, or the whole file.
 * @param totalBytes the whole file's size when `head` is only its beginning (default: head.length).
 */
export function probeImage(head: Uint8Array, totalBytes?: number): ImageProbe {
  const window = head.byteLength > PROBE_WINDOW_BYTES ? head.subarray(0, PROBE_WINDOW_BYTES) : head;
  const total =
    totalBytes !== undefined && Number.isFinite(totalBytes) && totalBytes > head.byteLength ? totalBytes : head.byteLength;
  const bytes = new Bytes(window);
  const format = sniff(bytes);
  const complete = window.byteLength >= total;
  try {
    switch (format) {
      case "jpeg":
        return probeJpeg(bytes, complete);
      case "png":
        return probePng(bytes);
      case "gif":
        return probeGif(bytes, complete);
      case "webp":
        return probeWebp(bytes);
      case "avif":
        return probeAvif(bytes, complete, total);
    }
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    // A bounds-checked read ran off the window: the header is cut short.
    if (error instanceof RangeError) throw invalid(format, `The ${NAMES[format]} header is truncated.`, error);
    throw error;
  }
}

/** Identify the format from magic bytes alone; throws the same 415 problems as probeImage. */
export function sniffImageFormat(head: Uint8Array): ImageFormat {
  return sniff(new Bytes(head));
}

const NAMES: Readonly<Record<ImageFormat, string>> = { jpeg: "JPEG", png: "PNG", gif: "GIF", webp: "WebP", avif: "AVIF" };

function invalid(format: ImageFormat, detail: string, cause?: unknown): ProblemError {
  return new ProblemError(422, "invalid-image", detail, { format }, cause === undefined ? undefined : { cause });
}

function unsupported(received: string, detail: string): ProblemError {
  return new ProblemError(415, "unsupported-format", detail, { received, expected: ACCEPTED });
}

function notAccepted(received: string, what: string): ProblemError {
  return unsupported(received, `${what} is not accepted; upload a ${ACCEPTED} image.`);
}

/** A bounds-checked view: reads outside the window throw RangeError, never read neighbours. */
class Bytes {
  readonly length: number;
  private readonly view: DataView;

  constructor(readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.length = data.byteLength;
  }

  has(offset: number, count: number): boolean {
    return offset >= 0 && count >= 0 && offset + count <= this.length;
  }
  u8(offset: number): number {
    return this.view.getUint8(offset);
  }
  u16be(offset: number): number {
    return this.view.getUint16(offset, false);
  }
  u16le(offset: number): number {
    return this.view.getUint16(offset, true);
  }
  u24le(offset: number): number {
    return this.view.getUint16(offset, true) + this.view.getUint8(offset + 2) * 0x10000;
  }
  u32be(offset: number): number {
    return this.view.getUint32(offset, false);
  }
  u32le(offset: number): number {
    return this.view.getUint32(offset, true);
  }
  /** Latin-1 text of [offset, offset + count), clipped to the window. */
  ascii(offset: number, count: number): string {
    let text = "";
    const end = Math.min(offset + count, this.length);
    for (let i = offset; i < end; i++) text += String.fromCharCode(this.view.getUint8(i));
    return text;
  }
  startsWith(offset: number, signature: readonly number[]): boolean {
    if (!this.has(offset, signature.length)) return false;
    return signature.every((byte, i) => this.view.getUint8(offset + i) === byte);
  }
}

function ascii(text: string): number[] {
  return Array.from(text, (char) => char.charCodeAt(0));
}

/** A four-character code made safe for a message. */
function fourcc(text: string): string {
  return JSON.stringify(text.replace(/[^\x20-\x7e]/g, "?"));
}

// ---------------------------------------------------------------------------------------------
// Sniffing

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;
const AVIF_BRANDS = new Set(["avif", "avis"]);
const HEIC_BRANDS = new Set(["heic", "heix", "hevc", "hevx", "heim", "heis", "hevm", "hevs"]);
const HEIF_BRANDS = new Set(["mif1", "msf1", "mif2", "mif3"]);
const HEIC_DETAIL = "HEIC/HEIF is not supported; convert to JPEG or AVIF";

function sniff(b: Bytes): ImageFormat {
  if (b.length === 0) return emptyFile();
  if (b.startsWith(0, [0xff, 0xd8, 0xff])) return "jpeg";
  if (b.startsWith(0, PNG_SIGNATURE)) return "png";
  const head6 = b.ascii(0, 6);
  if (head6 === "GIF87a" || head6 === "GIF89a") return "gif";
  if (b.ascii(0, 4) === "RIFF" && b.length >= 12) {
    const kind = b.ascii(8, 4);
    if (kind === "WEBP") return "webp";
    throw notAccepted("riff", `A RIFF ${fourcc(kind)} file (${kind === "AVI " ? "AVI video" : kind === "WAVE" ? "WAV audio" : "not WebP"})`);
  }
  if (b.ascii(4, 4) === "ftyp") return sniffIsoBmff(b);
  throw describeUnsupported(b);
}

function emptyFile(): never {
  throw unsupported("empty", `The file is empty; upload a ${ACCEPTED} image.`);
}

/** ISO-BMFF: AVIF by brand; HEIC/HEIF refused with its own message; anything else named. */
function sniffIsoBmff(b: Bytes): ImageFormat {
  const brands = isoBrands(b);
  const major = brands[0];
  if (major === undefined) throw unsupported("isobmff", "The file is too short to identify (an ISO-BMFF file cut inside its ftyp box).");
  const compatible = new Set(brands.slice(1));
  const listsAnyOf = (set: ReadonlySet<string>): boolean => [...compatible].some((brand) => set.has(brand));
  if (AVIF_BRANDS.has(major)) return "avif";
  if (HEIC_BRANDS.has(major)) throw unsupported("heic", HEIC_DETAIL);
  if (listsAnyOf(AVIF_BRANDS)) return "avif";
  if (listsAnyOf(HEIC_BRANDS) || HEIF_BRANDS.has(major) || listsAnyOf(HEIF_BRANDS)) throw unsupported("heic", HEIC_DETAIL);
  if (major === "qt  ") throw notAccepted("video", "QuickTime video");
  if (major === "crx ") throw notAccepted("raw", "Canon CR3 raw");
  if (major === "jxl ") throw notAccepted("jxl", "JPEG XL");
  throw notAccepted("video", `An MP4-family file (brand ${fourcc(major)})`);
}

/** Major brand then compatible brands, as far as the window holds the ftyp box. */
function isoBrands(b: Bytes): string[] {
  if (!b.has(8, 4)) return [];
  const size = b.u32be(0);
  const end = Math.min(size >= 16 ? size : 16, b.length, 4096);
  const brands = [b.ascii(8, 4)];
  for (let offset = 16; offset + 4 <= end; offset += 4) brands.push(b.ascii(offset, 4));
  return brands;
}

/** Name what was seen when we can; 415 either way. */
function describeUnsupported(b: Bytes): ProblemError {
  const prefixOf = (signature: readonly number[]): boolean =>
    b.length < signature.length && signature.slice(0, b.length).every((byte, i) => b.u8(i) === byte);
  const signatures = [[0xff, 0xd8, 0xff], PNG_SIGNATURE, ascii("GIF87a"), ascii("GIF89a"), ascii("RIFF")];
  const cutMagic = (b.ascii(0, 4) === "RIFF" || b.ascii(4, 4) === "ftyp") && b.length < 12;
  if (signatures.some(prefixOf) || cutMagic) {
    return unsupported("truncated", `The file is too short to identify (${b.length} bytes).`);
  }
  if (b.startsWith(0, [0xff, 0x0a]) || b.startsWith(0, [0, 0, 0, 0x0c, 0x4a, 0x58, 0x4c, 0x20, 0x0d, 0x0a, 0x87, 0x0a])) {
    return notAccepted("jxl", "JPEG XL");
  }
  if (b.startsWith(0, [0, 0, 0, 0x0c, 0x6a, 0x50, 0x20, 0x20]) || b.startsWith(0, [0xff, 0x4f, 0xff, 0x51])) {
    return notAccepted("jp2", "JPEG 2000");
  }
  if (b.startsWith(0, [0x49, 0x49, 0x2a, 0x00]) || b.startsWith(0, [0x4d, 0x4d, 0x00, 0x2a]) || b.startsWith(0, [0x49, 0x49, 0x2b, 0x00]) || b.startsWith(0, [0x4d, 0x4d, 0x00, 0x2b])) {
    return notAccepted("tiff", "TIFF (or a TIFF-based camera raw file)");
  }
  if (b.ascii(0, 4) === "GIF8") return notAccepted("gif", `A GIF of unknown version ${fourcc(b.ascii(0, 6))}`);
  if (b.ascii(1, 3) === "PNG") {
    return unsupported("png-damaged", "The file starts like a PNG but its signature is damaged (was it transferred as text?).");
  }
  if (b.ascii(0, 2) === "BM") return notAccepted("bmp", "BMP");
  if (b.ascii(0, 4) === "8BPS") return notAccepted("psd", "Photoshop PSD");
  if (b.ascii(0, 5) === "%PDF-") return notAccepted("pdf", "PDF");
  if (b.ascii(0, 4) === "%!PS") return notAccepted("postscript", "PostScript");
  if (b.startsWith(0, [0x50, 0x4b, 0x03, 0x04])) return notAccepted("zip", "A ZIP archive");
  if (b.startsWith(0, [0x1f, 0x8b])) return notAccepted("gzip", "A gzip archive");
  if (b.startsWith(0, [0, 0, 1, 0]) || b.startsWith(0, [0, 0, 2, 0])) return notAccepted("ico", "An ICO/CUR icon");
  const text = asText(b);
  if (text !== undefined) {
    const start = text.replace(/^\ufeff/, "").trimStart().toLowerCase();
    if (start.startsWith("<")) {
      if (start.startsWith("<svg") || (/^<(\?xml|!--|!doctype svg)/.test(start) && start.includes("<svg"))) return notAccepted("svg", "SVG");
      if (/^<!doctype html|^<html|<html[\s>]|<head[\s>]|<body[\s>]|<script[\s>]/.test(start)) return notAccepted("html", "HTML");
      if (start.startsWith("<?xml")) return notAccepted("xml", "XML");
    }
    return notAccepted("text", "Plain text");
  }
  const hex = Array.from(b.data.subarray(0, 4), (byte) => byte.toString(16).padStart(2, "0")).join(" ");
  return unsupported("unknown", `Unrecognised file format (first bytes ${hex}); upload a ${ACCEPTED} image.`);
}

/** The first KiB as text if it is UTF-8 without control characters, else undefined. */
function asText(b: Bytes): string | undefined {
  const sample = b.data.subarray(0, 1024);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(sample, { stream: true });
  } catch {
    return undefined;
  }
  return /[\x00-\x08\x0b\x0e-\x1f\x7f]/.test(text) ? undefined : text;
}

// ---------------------------------------------------------------------------------------------
// EXIF (TIFF structure): only IFD0's Orientation tag.

function isOrientation(value: number): value is Orientation {
  return Number.isInteger(value) && value >= 1 && value <= 8;
}

/** Orientation from a TIFF header at [start, end); 1 when missing, malformed or out of range. */
function tiffOrientation(b: Bytes, start: number, end: number): Orientation {
  const limit = Math.min(end, b.length);
  if (start < 0 || start + 8 > limit) return 1;
  const order = b.ascii(start, 2);
  if (order !== "II" && order !== "MM") return 1;
  const le = order === "II";
  const u16 = (offset: number): number => (le ? b.u16le(offset) : b.u16be(offset));
  const u32 = (offset: number): number => (le ? b.u32le(offset) : b.u32be(offset));
  if (u16(start + 2) !== 42) return 1;
  const ifd = start + u32(start + 4);
  if (ifd < start + 8 || ifd + 2 > limit) return 1;
  const count = u16(ifd);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > limit) return 1;
    if (u16(entry) !== 0x0112) continue;
    // Orientation is one SHORT.
    if (u16(entry + 2) !== 3 || u32(entry + 4) !== 1) return 1;
    const value = u16(entry + 8);
    return isOrientation(value) ? value : 1;
  }
  return 1;
}

/** An EXIF payload that may or may not start with the "Exif\0\0" identifier. */
function exifOrientation(b: Bytes, start: number, end: number): Orientation {
  const skip = b.ascii(start, 6) === "Exif\0\0" ? 6 : 0;
  return tiffOrientation(b, start + skip, end);
}

// ---------------------------------------------------------------------------------------------
// JPEG: walk the marker segments up to the first scan.

/** SOF markers a common decoder (libjpeg-turbo/mozjpeg) handles: baseline, extended, progressive, arithmetic. */
const SOF_DECODABLE = new Set([0xc0, 0xc1, 0xc2, 0xc9, 0xca]);
/** Lossless and hierarchical processes. */
const SOF_UNSUPPORTED = new Set([0xc3, 0xc5, 0xc6, 0xc7, 0xcb, 0xcd, 0xce, 0xcf]);

interface JpegFrame {
  readonly width: number;
  readonly height: number;
  readonly components: number;
  readonly progressive: boolean;
}

function probeJpeg(b: Bytes, complete: boolean): ImageProbe {
  let pos = 2;
  let frame: JpegFrame | undefined;
  let orientation: Orientation | undefined;
  let icc = false;
  let adobeTransform: number | undefined;
  for (;;) {
    // Like libjpeg, skip stray bytes before a marker and any 0xFF fill bytes.
    while (pos < b.length && b.u8(pos) !== 0xff) pos++;
    while (pos < b.length && b.u8(pos) === 0xff) pos++;
    if (pos >= b.length) break;
    const marker = b.u8(pos);
    const at = pos - 1;
    pos++;
    if (marker === 0x00 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) continue;
    if (marker === 0xd8) throw invalid("jpeg", `The JPEG has a second start-of-image marker at offset ${at}.`);
    if (marker === 0xd9) {
      if (frame === undefined) throw invalid("jpeg", "The JPEG ends (EOI marker) before its frame header (SOF).");
      break;
    }
    if (!b.has(pos, 2)) break;
    const length = b.u16be(pos);
    if (length < 2) throw invalid("jpeg", `The JPEG segment at offset ${at} has an impossible length (${length}).`);
    const body = pos + 2;
    const end = pos + length;
    if (marker === 0xda) {
      if (frame === undefined) throw invalid("jpeg", "The JPEG's scan data starts before its frame header (SOF).");
      break;
    }
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (frame !== undefined) throw invalid("jpeg", `The JPEG has a second frame header (SOF) at offset ${at}.`);
      if (!b.has(body, 6)) break;
      frame = jpegFrame(b, marker, body, length);
    } else if (marker === 0xe1 && orientation === undefined && b.ascii(body, 6) === "Exif\0\0") {
      orientation = tiffOrientation(b, body + 6, end);
    } else if (marker === 0xe2 && b.ascii(body, 12) === "ICC_PROFILE\0") {
      icc = true;
    } else if (marker === 0xee && b.has(body, 12) && b.ascii(body, 5) === "Adobe") {
      adobeTransform = b.u8(body + 11);
    }
    pos = end;
  }
  if (frame === undefined) {
    throw invalid(
      "jpeg",
      complete
        ? "The JPEG ends before its frame header (SOF): the file is truncated or not a JPEG image."
        : `The JPEG's frame header (SOF) is not within the first ${WINDOW_KIB} KiB (metadata segments before it are too large).`,
    );
  }
  const colorSpace: ProbeColorSpace =
    frame.components === 1 ? "gray" : frame.components === 3 ? "rgb" : adobeTransform === 2 ? "ycck" : "cmyk";
  return {
    format: "jpeg",
    width: frame.width,
    height: frame.height,
    orientation: orientation ?? 1,
    frames: 1,
    animated: false,
    hasAlpha: false,
    progressive: frame.progressive,
    colorSpace,
    iccProfile: icc,
  };
}

function jpegFrame(b: Bytes, marker: number, body: number, length: number): JpegFrame {
  const precision = b.u8(body);
  const height = b.u16be(body + 1);
  const width = b.u16be(body + 3);
  const components = b.u8(body + 5);
  const kind = `SOF${marker - 0xc0}`;
  if (SOF_UNSUPPORTED.has(marker)) {
    throw unsupported("jpeg-variant", `Lossless and hierarchical JPEG (${kind}) are not supported; upload a baseline or progressive JPEG.`);
  }
  if (!SOF_DECODABLE.has(marker)) throw invalid("jpeg", `The JPEG has an unknown frame header ${kind}.`);
  if (length !== 8 + 3 * components) {
    throw invalid("jpeg", `The JPEG frame header is ${length} bytes long but declares ${components} components.`);
  }
  if (precision !== 8) throw unsupported("jpeg-variant", `${precision}-bit JPEG is not supported; upload an 8-bit JPEG.`);
  if (width === 0) throw invalid("jpeg", "The JPEG declares a width of 0.");
  if (height === 0) throw invalid("jpeg", "The JPEG declares a height of 0 (a height given later by a DNL marker is not supported).");
  if (components !== 1 && components !== 3 && components !== 4) {
    throw unsupported("jpeg-variant", `JPEG with ${components} colour components is not supported.`);
  }
  return { width, height, components, progressive: marker === 0xc2 || marker === 0xca };
}

// ---------------------------------------------------------------------------------------------
// PNG: IHDR (checked in full) then the chunks before the first IDAT.

/** Allowed bit depths per colour type (PNG spec, table 11.1). */
const PNG_DEPTHS: ReadonlyMap<number, readonly number[]> = new Map([
  [0, [1, 2, 4, 8, 16]],
  [2, [8, 16]],
  [3, [1, 2, 4, 8]],
  [4, [8, 16]],
  [6, [8, 16]],
]);

function probePng(b: Bytes): ImageProbe {
  if (!b.has(8, 8)) throw invalid("png", "The PNG ends before its IHDR chunk.");
  const first = b.ascii(12, 4);
  if (first === "CgBI") throw unsupported("png-cgbi", "Apple-optimised PNG (CgBI) is not supported; re-save it as a standard PNG.");
  if (first !== "IHDR") throw invalid("png", `The PNG starts with a ${fourcc(first)} chunk instead of IHDR.`);
  if (b.u32be(8) !== 13) throw invalid("png", `The PNG's IHDR chunk is ${b.u32be(8)} bytes long instead of 13.`);
  if (!b.has(8, 25)) throw invalid("png", "The PNG's IHDR chunk is truncated.");
  if (crc32(b.data.subarray(12, 29)) !== b.u32be(29)) throw invalid("png", "The PNG's IHDR chunk fails its CRC check.");
  const width = b.u32be(16);
  const height = b.u32be(20);
  const depth = b.u8(24);
  const colorType = b.u8(25);
  if (width === 0 || height === 0) throw invalid("png", `The PNG declares a size of ${width}x${height}.`);
  if (width > 0x7fffffff || height > 0x7fffffff) throw invalid("png", "The PNG declares a width or height above 2^31-1.");
  const depths = PNG_DEPTHS.get(colorType);
  if (depths === undefined) throw invalid("png", `The PNG declares an invalid colour type (${colorType}).`);
  if (!depths.includes(depth)) throw invalid("png", `The PNG declares an invalid bit depth (${depth}) for colour type ${colorType}.`);
  if (b.u8(26) !== 0 || b.u8(27) !== 0) throw invalid("png", "The PNG declares an unknown compression or filter method.");
  const interlace = b.u8(28);
  if (interlace > 1) throw invalid("png", `The PNG declares an unknown interlace method (${interlace}).`);

  let transparency = false;
  let icc = false;
  let frames: number | undefined;
  let orientation: Orientation = 1;
  // Ancillary chunks that matter come before the image data; a damaged one only ends the walk.
  for (let pos = 33; b.has(pos, 8); ) {
    const length = b.u32be(pos);
    const type = b.ascii(pos + 4, 4);
    if (length > 0x7fffffff || type === "IDAT" || type === "IEND") break;
    const body = pos + 8;
    if (type === "tRNS") transparency = true;
    else if (type === "iCCP") icc = true;
    else if (type === "acTL" && b.has(body, 8)) frames = b.u32be(body);
    else if (type === "eXIf" && b.has(body, length)) orientation = exifOrientation(b, body, body + length);
    pos = body + length + 4;
  }
  const animated = frames !== undefined && frames > 1;
  return {
    format: "png",
    width,
    height,
    orientation,
    frames: animated && frames !== undefined ? frames : 1,
    animated,
    hasAlpha: colorType === 4 || colorType === 6 || transparency,
    progressive: interlace === 1,
    colorSpace: colorType === 0 || colorType === 4 ? "gray" : "rgb",
    iccProfile: icc,
  };
}

// ---------------------------------------------------------------------------------------------
// GIF: logical screen, then blocks (extensions and image descriptors) as far as the window goes.

function probeGif(b: Bytes, complete: boolean): ImageProbe {
  if (!b.has(0, 13)) throw invalid("gif", "The GIF ends inside its logical screen descriptor.");
  let width = b.u16le(6);
  let height = b.u16le(8);
  if (width === 0 || height === 0) throw invalid("gif", `The GIF declares a screen of ${width}x${height}.`);
  const flags = b.u8(10);
  let pos = 13 + (flags & 0x80 ? 3 * (2 << (flags & 7)) : 0);
  let frames = 0;
  let transparency = false;
  let loops = false;
  let interlaced = false;
  while (pos < b.length) {
    const introducer = b.u8(pos);
    if (introducer === 0x3b) break;
    if (introducer === 0x21) {
      if (!b.has(pos, 2)) break;
      const label = b.u8(pos + 1);
      const body = pos + 2;
      if (label === 0xf9 && b.has(body, 2) && b.u8(body) >= 4 && (b.u8(body + 1) & 1) === 1) transparency = true;
      if (label === 0xff && b.has(body, 12) && b.u8(body) === 11) {
        const application = b.ascii(body + 1, 11);
        if (application === "NETSCAPE2.0" || application === "ANIMEXTS1.0") loops = true;
      }
      const next = skipSubBlocks(b, body);
      if (next === undefined) break;
      pos = next;
    } else if (introducer === 0x2c) {
      if (!b.has(pos, 10)) break;
      frames++;
      // Decoders disagree on frames that overflow the screen; report a canvas that holds them.
      width = Math.max(width, b.u16le(pos + 1) + b.u16le(pos + 5));
      height = Math.max(height, b.u16le(pos + 3) + b.u16le(pos + 7));
      const imageFlags = b.u8(pos + 9);
      if (frames === 1) interlaced = (imageFlags & 0x40) !== 0;
      const data = pos + 10 + (imageFlags & 0x80 ? 3 * (2 << (imageFlags & 7)) : 0) + 1;
      const next = skipSubBlocks(b, data);
      if (next === undefined) break;
      pos = next;
    } else {
      if (frames === 0) throw invalid("gif", `The GIF has an unknown block (0x${introducer.toString(16)}) at offset ${pos}.`);
      break; // decoders stop at garbage after the last frame
    }
  }
  if (frames === 0) {
    throw invalid(
      "gif",
      complete ? "The GIF contains no image." : `The GIF's first image is not within the first ${WINDOW_KIB} KiB.`,
    );
  }
  return {
    format: "gif",
    width,
    height,
    orientation: 1,
    frames,
    animated: frames > 1 || (loops && !complete),
    hasAlpha: transparency,
    progressive: interlaced,
    colorSpace: "rgb",
    iccProfile: false,
  };
}

/** Offset after a run of data sub-blocks, or undefined when the window ends first. */
function skipSubBlocks(b: Bytes, start: number): number | undefined {
  let pos = start;
  while (pos < b.length) {
    const size = b.u8(pos);
    pos += 1 + size;
    if (size === 0) return pos;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// WebP: the first chunk says it all for simple files; VP8X files list their chunks.

function probeWebp(b: Bytes): ImageProbe {
  if (!b.has(12, 8)) throw invalid("webp", "The WebP ends before its first chunk.");
  const chunk = b.ascii(12, 4);
  const body = 20;
  const still = { orientation: 1, frames: 1, animated: false, progressive: false, colorSpace: "rgb", iccProfile: false } as const;
  if (chunk === "VP8 ") {
    if (!b.has(body, 10)) throw invalid("webp", "The WebP's VP8 frame header is truncated.");
    if ((b.u8(body) & 1) !== 0) throw invalid("webp", "The WebP's VP8 data does not start with a key frame.");
    if (!b.startsWith(body + 3, [0x9d, 0x01, 0x2a])) throw invalid("webp", "The WebP's VP8 start code is missing.");
    const width = b.u16le(body + 6) & 0x3fff;
    const height = b.u16le(body + 8) & 0x3fff;
    if (width === 0 || height === 0) throw invalid("webp", `The WebP declares a size of ${width}x${height}.`);
    return { format: "webp", width, height, hasAlpha: false, ...still };
  }
  if (chunk === "VP8L") {
    if (!b.has(body, 5)) throw invalid("webp", "The WebP's VP8L header is truncated.");
    if (b.u8(body) !== 0x2f) throw invalid("webp", "The WebP's VP8L signature is missing.");
    const bits = b.u32le(body + 1);
    if (bits >>> 29 !== 0) throw invalid("webp", "The WebP's VP8L header has an unknown version.");
    const width = (bits & 0x3fff) + 1;
    const height = ((bits >>> 14) & 0x3fff) + 1;
    return { format: "webp", width, height, hasAlpha: ((bits >>> 28) & 1) === 1, ...still };
  }
  if (chunk !== "VP8X") throw invalid("webp", `The WebP starts with a ${fourcc(chunk)} chunk instead of VP8, VP8L or VP8X.`);
  if (!b.has(body, 10)) throw invalid("webp", "The WebP's VP8X header is truncated.");
  const flags = b.u8(body);
  const width = b.u24le(body + 4) + 1;
  const height = b.u24le(body + 7) + 1;
  if (width * height > 0xffffffff) throw invalid("webp", `The WebP canvas ${width}x${height} exceeds 2^32-1 pixels.`);
  const animated = (flags & 0x02) !== 0;
  let alpha = (flags & 0x10) !== 0;
  let frames = 0;
  let orientation: Orientation = 1;
  for (let pos = 12; b.has(pos, 8); ) {
    const type = b.ascii(pos, 4);
    const size = b.u32le(pos + 4);
    const data = pos + 8;
    if (type === "ANMF") frames++;
    else if (type === "ALPH") alpha = true;
    else if (type === "VP8L" && b.has(data, 5) && ((b.u32le(data + 1) >>> 28) & 1) === 1) alpha = true;
    else if (type === "EXIF" && b.has(data, size)) orientation = exifOrientation(b, data, data + size);
    pos = data + size + (size & 1);
  }
  return {
    format: "webp",
    width,
    height,
    orientation,
    frames: animated ? Math.max(1, frames) : 1,
    animated,
    hasAlpha: alpha,
    progressive: false,
    colorSpace: "rgb",
    iccProfile: (flags & 0x20) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// AVIF (HEIF container): the primary item's properties in meta/iprp.

interface Box {
  readonly type: string;
  readonly start: number;
  /** First byte after the box header. */
  readonly body: number;
  readonly end: number;
}

/** One box header at `pos`; size 0 runs to `limit`. Undefined when the header is not in the window. */
function readBox(b: Bytes, pos: number, limit: number): Box | undefined {
  if (!b.has(pos, 8) || pos + 8 > limit) return undefined;
  const type = b.ascii(pos + 4, 4);
  let size = b.u32be(pos);
  let body = pos + 8;
  if (size === 1) {
    if (!b.has(pos + 8, 8)) return undefined;
    size = b.u32be(pos + 8) * 2 ** 32 + b.u32be(pos + 12);
    body = pos + 16;
  } else if (size === 0) {
    size = limit - pos;
  }
  if (size < body - pos) throw invalid("avif", `The AVIF box ${fourcc(type)} at offset ${pos} has an impossible size.`);
  return { type, start: pos, body, end: pos + size };
}

/** The child boxes of [from, to), which must lie inside the window. */
function childBoxes(b: Bytes, from: number, to: number): Box[] {
  const boxes: Box[] = [];
  for (let pos = from; pos < to; ) {
    const box = readBox(b, pos, to);
    if (box === undefined) break;
    if (box.end > to) throw invalid("avif", `The AVIF box ${fourcc(box.type)} at offset ${pos} overruns its parent.`);
    boxes.push(box);
    pos = box.end;
  }
  return boxes;
}

const ALPHA_AUX_TYPES = ["urn:mpeg:mpegB:cicp:systems:auxiliary:alpha", "urn:mpeg:hevc:2015:auxid:1"];

function probeAvif(b: Bytes, complete: boolean, total: number): ImageProbe {
  const animated = isoBrands(b).includes("avis");
  let meta: Box | undefined;
  for (let pos = 0; pos < b.length; ) {
    const box = readBox(b, pos, total);
    if (box === undefined) break;
    if (box.type === "meta") {
      meta = box;
      break;
    }
    pos = box.end;
  }
  if (meta === undefined) {
    if (!complete) throw invalid("avif", `The AVIF's metadata (meta box) is not within the first ${WINDOW_KIB} KiB.`);
    if (animated) throw unsupported("avif-sequence", "AVIF image sequences without a still image are not supported.");
    throw invalid("avif", "The AVIF has no metadata (meta box).");
  }
  if (meta.end > b.length) {
    throw invalid("avif", complete ? "The AVIF's metadata is truncated." : `The AVIF's metadata runs past the first ${WINDOW_KIB} KiB.`);
  }
  const children = childBoxes(b, meta.body + 4, meta.end);
  const find = (type: string): Box | undefined => children.find((box) => box.type === type);

  const pitm = find("pitm");
  if (pitm === undefined) throw invalid("avif", "The AVIF has no primary item (pitm box).");
  const primary = b.u8(pitm.body) === 0 ? b.u16be(pitm.body + 4) : b.u32be(pitm.body + 4);

  const itemType = avifItemTypes(b, find("iinf")).get(primary);
  if (itemType === undefined) throw invalid("avif", "The AVIF's primary item is not described (iinf box).");
  if (itemType === "hvc1" || itemType === "hev1") throw unsupported("heic", HEIC_DETAIL);
  if (itemType !== "av01" && itemType !== "grid") {
    throw unsupported("avif-variant", `An AVIF whose primary image is ${fourcc(itemType)} is not supported.`);
  }

  const iprp = find("iprp");
  const iprpChildren = iprp === undefined ? [] : childBoxes(b, iprp.body, iprp.end);
  const ipco = iprpChildren.find((box) => box.type === "ipco");
  const properties = ipco === undefined ? [] : childBoxes(b, ipco.body, ipco.end);
  const associations = avifAssociations(b, iprpChildren.filter((box) => box.type === "ipma"));
  const propertiesOf = (item: number): Box[] =>
    (associations.get(item) ?? []).flatMap((index) => {
      const box = properties[index - 1];
      return box === undefined ? [] : [box];
    });

  let size: { width: number; height: number } | undefined;
  let rotation: number | undefined;
  let mirror: number | undefined;
  let icc = false;
  let gray = false;
  for (const box of propertiesOf(primary)) {
    if (box.type === "ispe") {
      if (box.end - box.body < 12) throw invalid("avif", "The AVIF's ispe property is truncated.");
      size = { width: b.u32be(box.body + 4), height: b.u32be(box.body + 8) };
    } else if (box.type === "irot") rotation = b.u8(box.body) & 3;
    else if (box.type === "imir") mirror = b.u8(box.body) & 1;
    else if (box.type === "colr" && ["prof", "rICC"].includes(b.ascii(box.body, 4))) icc = true;
    else if (box.type === "av1C") gray = (b.u8(box.body + 2) & 0x10) !== 0;
  }
  if (size === undefined) throw invalid("avif", "The AVIF's primary image has no size (ispe property).");
  if (size.width === 0 || size.height === 0) throw invalid("avif", `The AVIF declares a size of ${size.width}x${size.height}.`);

  // Alpha lives in an auxiliary image that points at the primary one ('auxl') with an alpha auxC.
  const hasAlpha = avifAuxiliaries(b, find("iref"), primary).some((item) =>
    propertiesOf(item).some((box) => {
      if (box.type !== "auxC") return false;
      const text = b.ascii(box.body + 4, box.end - box.body - 4);
      const nul = text.indexOf("\0");
      return ALPHA_AUX_TYPES.includes(nul < 0 ? text : text.slice(0, nul));
    }),
  );

  return {
    format: "avif",
    width: size.width,
    height: size.height,
    orientation: irotImirToOrientation(rotation, mirror),
    frames: 1,
    animated,
    hasAlpha,
    progressive: false,
    colorSpace: gray ? "gray" : "rgb",
    iccProfile: icc,
  };
}

/** item_ID -> item_type from iinf/infe (versions 2 and 3). */
function avifItemTypes(b: Bytes, iinf: Box | undefined): Map<number, string> {
  const types = new Map<number, string>();
  if (iinf === undefined) return types;
  const first = iinf.body + 4 + (b.u8(iinf.body) === 0 ? 2 : 4);
  for (const infe of childBoxes(b, first, iinf.end)) {
    if (infe.type !== "infe") continue;
    const version = b.u8(infe.body);
    if (version < 2) continue;
    const idBytes = version === 2 ? 2 : 4;
    const id = idBytes === 2 ? b.u16be(infe.body + 4) : b.u32be(infe.body + 4);
    if (!types.has(id)) types.set(id, b.ascii(infe.body + 4 + idBytes + 2, 4));
  }
  return types;
}

/** item_ID -> 1-based ipco indices, from every ipma box. */
function avifAssociations(b: Bytes, boxes: readonly Box[]): Map<number, number[]> {
  const associations = new Map<number, number[]>();
  for (const ipma of boxes) {
    const version = b.u8(ipma.body);
    const wide = (b.u8(ipma.body + 3) & 1) === 1;
    const count = b.u32be(ipma.body + 4);
    let pos = ipma.body + 8;
    for (let i = 0; i < count; i++) {
      if (pos + (version < 1 ? 3 : 5) > ipma.end) throw invalid("avif", "The AVIF's property associations (ipma) are truncated.");
      const item = version < 1 ? b.u16be(pos) : b.u32be(pos);
      pos += version < 1 ? 2 : 4;
      const n = b.u8(pos);
      pos += 1;
      if (pos + n * (wide ? 2 : 1) > ipma.end) throw invalid("avif", "The AVIF's property associations (ipma) are truncated.");
      const list = associations.get(item) ?? [];
      for (let j = 0; j < n; j++) {
        list.push(wide ? b.u16be(pos) & 0x7fff : b.u8(pos) & 0x7f);
        pos += wide ? 2 : 1;
      }
      associations.set(item, list);
    }
  }
  return associations;
}

/** Items that are auxiliary images ('auxl' references) of `primary`. */
function avifAuxiliaries(b: Bytes, iref: Box | undefined, primary: number): number[] {
  if (iref === undefined) return [];
  const wide = b.u8(iref.body) !== 0;
  const idBytes = wide ? 4 : 2;
  const read = (offset: number): number => (wide ? b.u32be(offset) : b.u16be(offset));
  const items: number[] = [];
  for (const reference of childBoxes(b, iref.body + 4, iref.end)) {
    if (reference.type !== "auxl") continue;
    const from = read(reference.body);
    const count = b.u16be(reference.body + idBytes);
    for (let i = 0; i < count; i++) {
      const offset = reference.body + idBytes + 2 + i * idBytes;
      if (offset + idBytes > reference.end) break;
      if (read(offset) === primary) items.push(from);
    }
  }
  return items;
}

/**
 * HEIF irot (anti-clockwise quarter turns) and imir (0: top-bottom, 1: left-right) as an EXIF
 * orientation, as libavif's avifImageIrotImirToExifOrientation maps them.
 */
function irotImirToOrientation(rotation: number | undefined, mirror: number | undefined): Orientation {
  // Rows: irot 0-3; columns: no imir, imir 0, imir 1.
  const table: readonly (readonly Orientation[])[] = [
    [1, 4, 2],
    [8, 5, 7],
    [3, 2, 4],
    [6, 7, 5],
  ];
  return table[rotation ?? 0]?.[mirror === undefined ? 0 : mirror + 1] ?? 1;
}
