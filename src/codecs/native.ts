/**
 * Our own WASM module (wasm/jpeg/jpeg.wasm, built from wasm/jpeg/jpeg.c + resize.c): the JPEG
 * decoder with shrink-on-load and the box + Lanczos3 resampler share ONE linear memory, so a
 * photo is decoded at 1/1..1/8 straight into that memory and resized where it lies; only the
 * output-sized RGBA crosses to JS.
 *
 * Sessions: a transform takes a session (`openNativeSession`), an instance of the module that
 * is its own until `release()`. Concurrent requests therefore never share an arena, even with
 * `await`s between pipeline steps (the decoded image stays valid from the decode step to the
 * resize step). Instances come from a small pool: a released instance is rewound and kept for
 * the next session only while its memory is at most POOL_RETAIN_BYTES and the pool holds fewer
 * than POOL_SIZE; otherwise it is dropped (WASM memory never shrinks: the garbage collector
 * frees the whole instance) and the next session instantiates a fresh one (~1 ms, from the
 * already compiled module).
 *
 * An `RgbaImage` whose `data` is a view of a session's memory is "resident": the resizer reads
 * it in place. Any other image is copied in once.
 */
import codecWasm from "../../wasm/jpeg/jpeg.wasm";
import { ProblemError } from "../errors";
import { srgbEncodeTable, type ColourTransform } from "../images/icc";
import type { PngLayout } from "./png-layout";
import type { RgbaImage } from "./types";
import { hasTranslucentPixel } from "./util";

/** A released instance larger than this is dropped instead of pooled. */
export const POOL_RETAIN_BYTES = 16 * 1024 * 1024;
/** Idle instances kept warm. */
const POOL_SIZE = 1;

export type ScaleShift = 0 | 1 | 2 | 3;
export type NativeJpegColor = "gray" | "ycbcr" | "rgb" | "cmyk" | "ycck";

export interface NativeJpegProbe {
  readonly width: number;
  readonly height: number;
  readonly components: number;
  readonly progressive: boolean;
  readonly color: NativeJpegColor;
  /** False when the decoder cannot handle the file; `reason` says why (use the fallback). */
  readonly supported: boolean;
  readonly reason?: string;
}

export interface NativeDecodeOptions {
  /** Tolerate corrupt or truncated entropy data (default false: 422). */
  readonly allowCorrupt?: boolean;
  /**
   * CMYK and YCCK files only: output the ink amounts C, M, Y, K (0 = no ink; Adobe's inverted
   * storage undone, YCCK converted to CMYK) in the R, G, B, A bytes instead of naive RGB, for
   * conversion through a CMYK profile (applyCmykTransform in src/images/icc.ts). Ignored for
   * 1- and 3-component files.
   */
  readonly rawCmyk?: boolean;
}

export interface NativeDecoded extends RgbaImage {
  /** False when corrupt or truncated entropy data was tolerated (`allowCorrupt`). */
  readonly complete: boolean;
}

/** A window of `windowWidth` x `windowHeight` pixels and, within it, the rectangle (fractions allowed) mapped onto `outWidth` x `outHeight`. */
interface NativeResampling {
  readonly windowWidth: number;
  readonly windowHeight: number;
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly outWidth: number;
  readonly outHeight: number;
}

/**
 * What to resample: a window of the resident (or copied-in) image seen through a view (pixel
 * (u, v) of the window is stored pixel `base + u * stepU + v * stepV`).
 */
export interface NativeResizeRequest extends NativeResampling {
  readonly base: number;
  readonly stepU: number;
  readonly stepV: number;
}

/**
 * A resampling the decoder streams into, in the decoded image's stored (unturned) frame: the
 * window starts at (`windowX`, `windowY`) of the decoded rows.
 */
export interface NativeStreamRequest extends NativeResampling {
  readonly windowX: number;
  readonly windowY: number;
}

export interface NativeSession {
  /** Copies the file in and reads its headers (kept for `decodeJpeg`). */
  probeJpeg(bytes: Uint8Array): NativeJpegProbe;
  /** Decodes the file given to `probeJpeg` at 1/2^shift; the pixels stay in session memory. */
  decodeJpeg(shift: ScaleShift, options?: NativeDecodeOptions): NativeDecoded;
  /**
   * Decodes the file given to `probeJpeg` at 1/2^shift straight into the resampling `request`
   * (rows converted to sRGB through `colour` on the way): no decoded copy of the image exists,
   * memory follows the output. Not for CMYK/YCCK files. The result is a JS copy of output size,
   * in the stored frame.
   */
  decodeJpegResized(shift: ScaleShift, request: NativeStreamRequest, colour?: ColourTransform): RgbaImage;
  /**
   * Inflates a non-interlaced PNG's image data (the platform's DecompressionStream) and streams
   * its scanlines, unfiltered and expanded to RGBA8, straight into the resampling `request`
   * (rows through `colour`): memory follows the output, not the PNG's size. 422 for corrupt or
   * truncated data. The result is a JS copy of output size.
   */
  decodePngResized(png: PngLayout, request: NativeStreamRequest, colour?: ColourTransform): Promise<RgbaImage>;
  /** Resamples `image` (resident or not); the result is a JS copy of output size. */
  resize(image: RgbaImage, request: NativeResizeRequest): RgbaImage;
  /**
   * Encodes `image` (resident or not; alpha ignored) as a baseline JPEG of `quality` 1..100
   * (wasm/jpeg/encode.c); the result is a JS copy of the file.
   */
  encodeJpeg(image: RgbaImage, quality: number): Uint8Array;
  /** True when `image.data` lies in this session's memory. */
  holds(image: RgbaImage): boolean;
  memoryBytes(): number;
  /** Rewinds the arena and returns the instance to the pool (or drops it). Idempotent. */
  release(): void;
}

interface CodecExports {
  readonly memory: WebAssembly.Memory;
  alloc(n: number): number;
  reset(): void;
  jpeg_header(ptr: number, len: number): number;
  jpeg_width(): number;
  jpeg_height(): number;
  jpeg_components(): number;
  jpeg_progressive(): number;
  jpeg_color(): number;
  jpeg_unsupported_reason(): number;
  jpeg_decode(ptr: number, len: number, shift: number, flags: number): number;
  jpeg_status(): number;
  jpeg_out_width(): number;
  jpeg_out_height(): number;
  resize_rgba(
    src: number, sw: number, sh: number, base: number, su: number, sv: number, rw: number, rh: number,
    x0: number, y0: number, fw: number, fh: number, dw: number, dh: number, alpha: number,
  ): number;
  resize_status(): number;
  resize_stream_begin(
    rw: number, rh: number, wx: number, wy: number, x0: number, y0: number, fw: number, fh: number, dw: number, dh: number, alpha: number,
  ): number;
  resize_stream_end(): number;
  jpeg_decode_stream(ptr: number, len: number, shift: number, flags: number): number;
  colour_clear(): void;
  colour_set_matrix(curves: number, matrix: number, table: number, tableMax: number): void;
  colour_set_gray(table: number): void;
  png_rows_begin(width: number, height: number, type: number, depth: number, palette: number, paletteN: number, trns: number, trnsN: number): number;
  png_rows_feed(ptr: number, len: number): number;
  jpeg_encode(rgba: number, width: number, height: number, quality: number): number;
  jpeg_encoded_size(): number;
  jpeg_encode_status(): number;
}

const EXPORT_NAMES = [
  "alloc", "reset", "jpeg_header", "jpeg_width", "jpeg_height", "jpeg_components", "jpeg_progressive",
  "jpeg_color", "jpeg_unsupported_reason", "jpeg_decode", "jpeg_status", "jpeg_out_width", "jpeg_out_height",
  "resize_rgba", "resize_status", "resize_stream_begin", "resize_stream_end", "jpeg_decode_stream",
  "colour_clear", "colour_set_matrix", "colour_set_gray", "png_rows_begin", "png_rows_feed",
  "jpeg_encode", "jpeg_encoded_size", "jpeg_encode_status",
] as const;

/** Inflated PNG bytes are copied into the module in pieces of at most this size. */
const PNG_FEED_BYTES = 64 * 1024;

// Status codes of jpeg.c.
const ST_OK = 0;
const ST_WARN_CORRUPT = 1;
const ER_NOT_JPEG = -1;
const ER_TRUNCATED = -2;
const ER_BAD_HEADER = -3;
const ER_UNSUPPORTED = -4;
const ER_NO_MEMORY = -5;
const ER_CORRUPT_DATA = -6;
const ER_TOO_LARGE = -7;
const FLAG_STRICT = 1;
const FLAG_RAW_CMYK = 2;

const COLORS: readonly NativeJpegColor[] = ["gray", "ycbcr", "rgb", "cmyk", "ycck"];

const UNSUPPORTED_REASONS: Readonly<Record<number, string>> = {
  1: "arithmetic coding",
  2: "lossless or hierarchical JPEG",
  3: "sample precision other than 8 bits",
  4: "unsupported sampling factors",
  5: "unsupported number of components",
  6: "height defined by a DNL marker",
  7: "4 components without an Adobe marker",
  8: "no frame header",
};

function exportsOf(instance: WebAssembly.Instance): CodecExports {
  const ex = instance.exports;
  if (!(ex["memory"] instanceof WebAssembly.Memory)) throw new Error("jpeg.wasm: no exported memory");
  for (const name of EXPORT_NAMES) {
    if (typeof ex[name] !== "function") throw new Error(`jpeg.wasm: missing export ${name}`);
  }
  return ex as unknown as CodecExports;
}

/** Copies `bytes` into the arena; 0 when memory cannot grow. */
function copyIn(x: CodecExports, bytes: Uint8Array): number {
  const ptr = x.alloc(bytes.byteLength);
  if (ptr !== 0) new Uint8Array(x.memory.buffer, ptr, bytes.byteLength).set(bytes);
  return ptr;
}

/** Hands a profile -> sRGB conversion to the module, for rows streamed into a resampling. */
function setColour(x: CodecExports, colour: ColourTransform | undefined): void {
  x.colour_clear();
  if (colour === undefined) return;
  const noMemory = (): ProblemError => tooLarge("The image is too large to convert.");
  if (colour.kind === "gray") {
    const table = copyIn(x, colour.table);
    if (table === 0) throw noMemory();
    x.colour_set_gray(table);
    return;
  }
  const curves = new Float64Array(768);
  colour.curves.forEach((curve, i) => curves.set(curve.subarray(0, 256), i * 256));
  const encode = srgbEncodeTable();
  const curvesPtr = copyIn(x, new Uint8Array(curves.buffer));
  const matrixPtr = copyIn(x, new Uint8Array(Float64Array.from(colour.matrix).buffer));
  const tablePtr = copyIn(x, encode);
  if (curvesPtr === 0 || matrixPtr === 0 || tablePtr === 0) throw noMemory();
  x.colour_set_matrix(curvesPtr, matrixPtr, tablePtr, encode.length - 1);
}

function invalid(detail: string): ProblemError {
  return new ProblemError(422, "invalid-image", detail);
}

function tooLarge(detail: string): ProblemError {
  return new ProblemError(413, "image-too-large", detail);
}

export function jpegStatusError(status: number): ProblemError {
  switch (status) {
    case ER_NOT_JPEG:
      return invalid("The file is not a JPEG image.");
    case ER_TRUNCATED:
      return invalid("The JPEG file is truncated.");
    case ER_BAD_HEADER:
      return invalid("The JPEG file has malformed headers.");
    case ER_CORRUPT_DATA:
      return invalid("The JPEG image data is corrupt or truncated.");
    case ER_UNSUPPORTED:
      return new ProblemError(415, "unsupported-format", "This JPEG variant is not supported by the native decoder.");
    case ER_NO_MEMORY:
    case ER_TOO_LARGE:
      return tooLarge("The JPEG image is too large to decode.");
    default:
      return invalid(`The JPEG file could not be decoded (status ${status}).`);
  }
}

/**
 * Inflates the IDAT bodies and feeds the bytes to png_rows_feed until every scanline arrived
 * (the rest, if any, is never inflated). Returns the rows fed, or a negative png.c status.
 * A zlib error after the last row (say a bad Adler-32) does not matter; before it, the rows
 * fed so far tell the caller the data is short.
 */
async function feedInflated(x: CodecExports, png: PngLayout, feed: number): Promise<number> {
  const parts = png.idat;
  const compressed = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const part of parts) controller.enqueue(part);
      controller.close();
    },
  });
  const reader = compressed.pipeThrough(new DecompressionStream("deflate")).getReader();
  let rows = 0;
  try {
    while (rows >= 0 && rows < png.height) {
      const { done, value } = await reader.read();
      if (done) break;
      for (let at = 0; at < value.length && rows >= 0 && rows < png.height; at += PNG_FEED_BYTES) {
        const piece = value.subarray(at, at + PNG_FEED_BYTES);
        new Uint8Array(x.memory.buffer, feed, piece.length).set(piece);
        rows = x.png_rows_feed(feed, piece.length);
      }
    }
  } catch {
    // Corrupt or truncated zlib data: `rows` says how far it went.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return rows;
}

/** Starts the resampling a decoder then pushes its rows into (resize.c's stream). */
function beginStream(x: CodecExports, r: NativeStreamRequest, alpha: boolean): void {
  const started = x.resize_stream_begin(r.windowWidth, r.windowHeight, r.windowX, r.windowY, r.x, r.y, r.width, r.height, r.outWidth, r.outHeight, alpha ? 1 : 0);
  if (started === 0) throw resizeRefused(x, r);
}

/** The output of a resampling every row was pushed into, as a JS copy. */
function endStream(x: CodecExports, r: NativeStreamRequest): Uint8ClampedArray {
  const out = x.resize_stream_end();
  if (out === 0) throw resizeRefused(x, r);
  return new Uint8ClampedArray(x.memory.buffer, out, r.outWidth * r.outHeight * 4).slice();
}

/** Why a resampling did not start or finish: no memory (413), or a bug on our side. */
function resizeRefused(x: CodecExports, request: object, image?: RgbaImage): Error {
  if (x.resize_status() === ER_NO_MEMORY) return tooLarge("The image is too large to resize.");
  const of = image === undefined ? "" : ` of ${image.width}x${image.height}`;
  return new RangeError(`native resize refused its arguments (${JSON.stringify(request)}${of}, status ${x.resize_status()})`);
}

/** A pool of instances of one compiled module. */
export interface NativePool {
  open(): NativeSession;
  /** Linear memory of every live instance (pooled or in a session). */
  memoryBytes(): number;
  /** Drops the pooled (idle) instances (benchmarks: start as a fresh isolate). */
  clear(): void;
}

export function createNativePool(module: WebAssembly.Module): NativePool {
  const idle: CodecExports[] = [];
  const busy = new Set<CodecExports>();

  const take = (): CodecExports => idle.pop() ?? exportsOf(new WebAssembly.Instance(module, {}));
  const give = (e: CodecExports, healthy: boolean): void => {
    busy.delete(e);
    if (!healthy) return;
    e.reset();
    if (e.memory.buffer.byteLength <= POOL_RETAIN_BYTES && idle.length < POOL_SIZE) idle.push(e);
  };

  return {
    open(): NativeSession {
      const e = take();
      busy.add(e);
      let released = false;
      let file = { ptr: 0, len: 0 };
      const live = (): CodecExports => {
        if (released) throw new Error("native session used after release()");
        return e;
      };
      /** Where `image`'s pixels lie in this instance: in place when resident, else copied in. */
      const pixelsIn = (x: CodecExports, image: RgbaImage, purpose: string): number => {
        if (session.holds(image)) return image.data.byteOffset;
        const ptr = copyIn(x, new Uint8Array(image.data.buffer, image.data.byteOffset, image.data.byteLength));
        if (ptr === 0) throw tooLarge(`The image is too large to ${purpose}.`);
        return ptr;
      };
      const session: NativeSession = {
        probeJpeg(bytes) {
          const x = live();
          x.reset();
          const ptr = x.alloc(bytes.length);
          if (ptr === 0) throw tooLarge("The image file is too large to decode.");
          new Uint8Array(x.memory.buffer, ptr, bytes.length).set(bytes);
          file = { ptr, len: bytes.length };
          const status = x.jpeg_header(ptr, bytes.length);
          const reasonCode = x.jpeg_unsupported_reason();
          const probe = {
            width: x.jpeg_width(),
            height: x.jpeg_height(),
            components: x.jpeg_components(),
            progressive: x.jpeg_progressive() === 1,
            color: COLORS[x.jpeg_color()] ?? "ycbcr",
          };
          if (status < 0 && reasonCode === 0) throw jpegStatusError(status);
          if (reasonCode !== 0) return { ...probe, supported: false, reason: UNSUPPORTED_REASONS[reasonCode] ?? "unsupported" };
          return { ...probe, supported: true };
        },

        decodeJpeg(shift, options = {}) {
          const x = live();
          if (!Number.isInteger(shift) || shift < 0 || shift > 3) throw new RangeError(`scaleShift ${shift}`);
          if (file.len === 0) throw new Error("decodeJpeg before probeJpeg");
          const out = x.jpeg_decode(file.ptr, file.len, shift, (options.allowCorrupt === true ? 0 : FLAG_STRICT) | (options.rawCmyk === true ? FLAG_RAW_CMYK : 0));
          const status = x.jpeg_status();
          if (out === 0 || (status !== ST_OK && status !== ST_WARN_CORRUPT)) {
            throw jpegStatusError(status === ST_OK ? ER_CORRUPT_DATA : status);
          }
          const width = x.jpeg_out_width();
          const height = x.jpeg_out_height();
          return {
            width,
            height,
            data: new Uint8ClampedArray(x.memory.buffer, out, width * height * 4),
            hasAlpha: false,
            complete: status === ST_OK,
          };
        },

        decodeJpegResized(shift, r, colour) {
          const x = live();
          if (!Number.isInteger(shift) || shift < 0 || shift > 3) throw new RangeError(`scaleShift ${shift}`);
          if (file.len === 0) throw new Error("decodeJpegResized before probeJpeg");
          setColour(x, colour);
          beginStream(x, r, false);
          if (x.jpeg_decode_stream(file.ptr, file.len, shift, FLAG_STRICT) === 0) {
            const status = x.jpeg_status();
            throw jpegStatusError(status === ST_OK ? ER_CORRUPT_DATA : status);
          }
          return { width: r.outWidth, height: r.outHeight, data: endStream(x, r), hasAlpha: false };
        },

        async decodePngResized(png, r, colour) {
          const x = live();
          setColour(x, colour);
          const palette = png.palette.length > 0 ? copyIn(x, png.palette) : 0;
          const trns = png.transparency.length > 0 ? copyIn(x, png.transparency) : 0;
          const feed = x.alloc(PNG_FEED_BYTES);
          if (feed === 0 || (png.palette.length > 0 && palette === 0) || (png.transparency.length > 0 && trns === 0)) {
            throw tooLarge("The image is too large to decode.");
          }
          beginStream(x, r, png.hasAlpha);
          if (x.png_rows_begin(png.width, png.height, png.colourType, png.bitDepth, palette, png.palette.length / 3, trns, png.transparency.length) === 0) {
            throw invalid("The PNG header declares an impossible image.");
          }
          const rows = await feedInflated(x, png, feed);
          if (rows < 0) throw invalid("The PNG image data is corrupt (unknown scanline filter).");
          if (rows < png.height) throw invalid("The PNG image data is corrupt or truncated.");
          const data = endStream(x, r);
          return { width: r.outWidth, height: r.outHeight, data, hasAlpha: png.hasAlpha && hasTranslucentPixel(data) };
        },

        holds(image) {
          return !released && image.data.buffer === e.memory.buffer && image.data.byteLength > 0;
        },

        resize(image, r) {
          const x = live();
          const ptr = pixelsIn(x, image, "resize");
          const out = x.resize_rgba(
            ptr, image.width, image.height, r.base, r.stepU, r.stepV, r.windowWidth, r.windowHeight,
            r.x, r.y, r.width, r.height, r.outWidth, r.outHeight, image.hasAlpha ? 1 : 0,
          );
          if (out === 0) throw resizeRefused(x, r, image);
          const data = new Uint8ClampedArray(x.memory.buffer, out, r.outWidth * r.outHeight * 4).slice();
          return { width: r.outWidth, height: r.outHeight, data, hasAlpha: image.hasAlpha };
        },

        encodeJpeg(image, quality) {
          const x = live();
          if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new RangeError(`JPEG quality ${quality}`);
          if (image.data.length !== image.width * image.height * 4) {
            throw new RangeError(`RGBA data of ${image.data.length} bytes for ${image.width}x${image.height}`);
          }
          const ptr = pixelsIn(x, image, "encode");
          const out = x.jpeg_encode(ptr, image.width, image.height, quality);
          if (out === 0) {
            const status = x.jpeg_encode_status();
            if (status === ER_NO_MEMORY) throw tooLarge("The image is too large to encode.");
            throw new RangeError(`native JPEG encoder refused ${image.width}x${image.height} at quality ${quality} (status ${status})`);
          }
          return new Uint8Array(x.memory.buffer, out, x.jpeg_encoded_size()).slice();
        },

        memoryBytes() {
          return e.memory.buffer.byteLength;
        },

        release() {
          if (released) return;
          released = true;
          give(e, true);
        },
      };
      return session;
    },

    clear(): void {
      idle.length = 0;
    },

    memoryBytes(): number {
      let total = 0;
      for (const e of idle) total += e.memory.buffer.byteLength;
      for (const e of busy) total += e.memory.buffer.byteLength;
      return total;
    },
  };
}

let shared: NativePool | undefined;
/** The pool over the imported module (created on first use). */
export function nativePool(): NativePool {
  return (shared ??= createNativePool(codecWasm));
}

/** A session of the shared pool; call `release()` when done (a `finally`). */
export function openNativeSession(): NativeSession {
  return nativePool().open();
}

/** Encodes `image` as a baseline JPEG in a session of its own (see NativeSession.encodeJpeg). */
export function encodeNativeJpeg(image: RgbaImage, quality: number): Uint8Array {
  const session = openNativeSession();
  try {
    return session.encodeJpeg(image, quality);
  } finally {
    session.release();
  }
}

/** Linear memory held by our module's instances in this isolate (0 before first use). */
export function nativeMemoryBytes(): number {
  return shared === undefined ? 0 : shared.memoryBytes();
}
